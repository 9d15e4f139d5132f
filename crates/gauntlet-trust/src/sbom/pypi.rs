//! Python: requirements files (pip's format: continuation lines, extras, markers, exact pins
//! with or without spaces, every `--hash`, editable and direct VCS or URL requirements) and
//! poetry.lock (groups and the old `category`, optional packages, file hashes, git and URL
//! sources, dependencies), read as cyclonedx-py reads them. Names keep their spelling; purls
//! use the normalised name. Hashes belong to distribution files, so they are kept on
//! `distribution` external references, as cyclonedx-py does.

use std::collections::BTreeMap;
use std::path::Path;

use super::purl::normal_name;
use super::{Contents, Digest, Ecosystem, Package, Scope, Source};

/// The simple index a distribution of `name` comes from.
fn index_url(name: &str) -> String {
    format!("https://pypi.org/simple/{name}/")
}

pub fn requirements(text: &str) -> Contents {
    let mut out = Contents::default();
    for (number, line) in logical_lines(text) {
        let line = strip_comment(&line);
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let Some(first) = tokens.first() else {
            continue;
        };
        let editable = match *first {
            "-e" | "--editable" => tokens.get(1).copied(),
            other => other
                .strip_prefix("--editable=")
                .or_else(|| other.strip_prefix("-e").filter(|r| !r.is_empty())),
        };
        if let Some(target) = editable {
            match url_requirement(target) {
                Some(p) => out.packages.push(p),
                None => out.warnings.push(format!(
                    "line {number}: editable `{target}` names no package (add #egg=NAME); left out of the SBOM"
                )),
            }
            continue;
        }
        if first.starts_with('-') {
            continue; // -r, -c, --index-url and other options
        }
        // Options such as --hash follow the requirement.
        let split = tokens
            .iter()
            .position(|t| t.starts_with("--"))
            .unwrap_or(tokens.len());
        let requirement = tokens[..split].join(" ");
        let mut hashes = Vec::new();
        let mut options = tokens[split..].iter();
        while let Some(option) = options.next() {
            let value = match option.strip_prefix("--hash=") {
                Some(v) => Some(v),
                None if *option == "--hash" => options.next().copied(),
                None => None,
            };
            hashes.extend(value.and_then(Digest::parse_prefixed));
        }
        // A bare URL (`git+https://…#egg=name`) or a PEP 508 requirement.
        let parsed = if tokens[0].contains("://") {
            url_requirement(&requirement)
        } else {
            pep508(&requirement)
        };
        match parsed {
            Some(mut p) => {
                if !hashes.is_empty() {
                    p.distributions.push((index_url(&p.name), hashes));
                }
                out.packages.push(p);
            }
            None => out.warnings.push(format!(
                "line {number}: `{requirement}` is not a requirement gauntlet understands; left out of the SBOM"
            )),
        }
    }
    out.direct = Some(out.packages.iter().map(super::purl::purl).collect());
    out
}

/// Joins backslash continuations; yields (first line number, logical line).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (number, mut line) = current.take().unwrap_or((i + 1, String::new()));
        let raw = raw.trim_end();
        match raw.strip_suffix('\\') {
            Some(start) => {
                line.push_str(start);
                line.push(' ');
                current = Some((number, line));
            }
            None => {
                line.push_str(raw);
                out.push((number, line));
            }
        }
    }
    out.extend(current);
    out
}

fn strip_comment(line: &str) -> String {
    let trimmed = line.trim();
    if trimmed.starts_with('#') {
        return String::new();
    }
    match trimmed.find(" #").or_else(|| trimmed.find("\t#")) {
        Some(i) => trimmed[..i].trim().to_string(),
        None => trimmed.to_string(),
    }
}

/// `git+https://…#egg=NAME` (or any URL with an `egg` fragment): a package from a VCS or a
/// download, named by its egg.
fn url_requirement(target: &str) -> Option<Package> {
    let (_, fragment) = target.split_once('#')?;
    let name = fragment
        .split('&')
        .find_map(|kv| kv.strip_prefix("egg="))
        .map(|n| n.split('[').next().unwrap_or(n))
        .filter(|n| valid_name(n))?;
    let source = if is_vcs(target) {
        Source::Vcs(target.to_string())
    } else {
        Source::Download(target.to_string())
    };
    Some(Package {
        source: Some(source),
        ..Package::new(Ecosystem::Pypi, name)
    })
}

fn is_vcs(url: &str) -> bool {
    ["git+", "hg+", "svn+", "bzr+"]
        .iter()
        .any(|p| url.starts_with(p))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A PEP 508 requirement: `name[extras] specifiers ; marker` or `name[extras] @ url ; marker`.
/// Only an exact pin (`==1.2.3`, `===1.2.3`) gives a version.
fn pep508(text: &str) -> Option<Package> {
    let (body, url) = match text.split_once('@') {
        Some((body, rest)) if rest.contains("://") => {
            let url = rest.trim();
            let url = url.split(" ;").next().unwrap_or(url).trim();
            (body, Some(url.to_string()))
        }
        _ => (text.split(';').next().unwrap_or(text), None),
    };
    let body: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let name_end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(body.len());
    let name = &body[..name_end];
    if !valid_name(name) {
        return None;
    }
    let mut rest = &body[name_end..];
    let mut extras = Vec::new();
    if let Some(after) = rest.strip_prefix('[') {
        let (inside, tail) = after.split_once(']')?;
        extras = inside
            .split(',')
            .filter(|e| !e.is_empty())
            .map(String::from)
            .collect();
        rest = tail;
    }
    let rest = rest.trim_start_matches('(').trim_end_matches(')');
    let version = (!rest.contains(','))
        .then(|| rest.strip_prefix("===").or_else(|| rest.strip_prefix("==")))
        .flatten()
        .filter(|v| !v.is_empty() && !v.contains('*'))
        .map(String::from);
    if url.is_none() && !rest.is_empty() && !rest.starts_with(['<', '>', '=', '!', '~']) {
        return None;
    }
    Some(Package {
        version,
        extras,
        source: url.map(|u| {
            if is_vcs(&u) {
                Source::Vcs(u)
            } else {
                Source::Download(u)
            }
        }),
        ..Package::new(Ecosystem::Pypi, name)
    })
}

#[derive(serde::Deserialize)]
struct PoetryFile {
    #[serde(default)]
    package: Vec<PoetryEntry>,
}

#[derive(serde::Deserialize)]
struct PoetryEntry {
    name: String,
    version: String,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    groups: Option<Vec<String>>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    files: Vec<PoetryFileHash>,
    #[serde(default)]
    dependencies: BTreeMap<String, toml::Value>,
    #[serde(default)]
    source: Option<PoetrySource>,
}

#[derive(serde::Deserialize)]
struct PoetryFileHash {
    file: String,
    hash: String,
}

#[derive(serde::Deserialize)]
struct PoetrySource {
    #[serde(rename = "type")]
    kind: String,
    url: String,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    resolved_reference: Option<String>,
}

pub fn poetry(text: &str, path: &Path) -> Result<Contents, String> {
    let file: PoetryFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut packages: Vec<Package> = file.package.iter().map(poetry_package).collect();
    let by_name = |name: &str| -> Vec<String> {
        let wanted = normal_name(Ecosystem::Pypi, name).replace('.', "-");
        packages
            .iter()
            .filter(|p| normal_name(Ecosystem::Pypi, &p.name).replace('.', "-") == wanted)
            .map(super::purl::purl)
            .collect()
    };
    let depends: Vec<Vec<String>> = file
        .package
        .iter()
        .map(|e| e.dependencies.keys().flat_map(|d| by_name(d)).collect())
        .collect();
    let project = pyproject(path);
    let direct = project
        .as_ref()
        .map(|(_, _, deps)| deps.iter().flat_map(|d| by_name(d)).collect());
    for (p, deps) in packages.iter_mut().zip(depends) {
        p.depends_on = deps;
    }
    Ok(Contents {
        packages,
        direct,
        project: project.map(|(name, version, _)| (name, version)),
        warnings: Vec::new(),
    })
}

fn poetry_package(entry: &PoetryEntry) -> Package {
    let main = match (&entry.groups, &entry.category) {
        (Some(groups), _) => groups.iter().any(|g| g == "main"),
        (None, Some(category)) => category != "dev",
        (None, None) => true,
    };
    let scope = match (main, entry.optional) {
        (false, _) => Scope::Excluded,
        (true, true) => Scope::Optional,
        (true, false) => Scope::Required,
    };
    let distributions = entry
        .files
        .iter()
        .filter_map(|f| {
            let digest = Digest::parse_prefixed(&f.hash)?;
            Some((
                format!("{}#{}", index_url(&entry.name), f.file),
                vec![digest],
            ))
        })
        .collect();
    let source = entry.source.as_ref().and_then(|s| match s.kind.as_str() {
        "git" => {
            let reference = s.resolved_reference.as_ref().or(s.reference.as_ref());
            Some(Source::Vcs(match reference {
                Some(r) => format!("git+{}@{r}", s.url),
                None => format!("git+{}", s.url),
            }))
        }
        "url" => Some(Source::Download(s.url.clone())),
        _ => None,
    });
    Package {
        version: Some(entry.version.clone()),
        scope,
        distributions,
        source,
        ..Package::new(Ecosystem::Pypi, &entry.name)
    }
}

/// The project beside a poetry.lock: (name, version, direct dependency names) from its
/// pyproject.toml, in PEP 621 or Poetry's own tables.
fn pyproject(lock: &Path) -> Option<(String, Option<String>, Vec<String>)> {
    let text = std::fs::read_to_string(lock.with_file_name("pyproject.toml")).ok()?;
    let doc: toml::Table = toml::from_str(&text).ok()?;
    let project = doc.get("project").and_then(|p| p.as_table());
    let poetry = doc
        .get("tool")
        .and_then(|t| t.get("poetry"))
        .and_then(|p| p.as_table());
    let field = |key: &str| {
        project
            .and_then(|p| p.get(key))
            .or_else(|| poetry.and_then(|p| p.get(key)))
            .and_then(|v| v.as_str())
            .map(String::from)
    };
    let name = field("name")?;
    let mut deps: Vec<String> = project
        .and_then(|p| p.get("dependencies"))
        .and_then(|d| d.as_array())
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str())
        .filter_map(|d| pep508(d).map(|p| p.name))
        .collect();
    let tables = poetry.into_iter().flat_map(|p| {
        let groups = p
            .get("group")
            .and_then(|g| g.as_table())
            .into_iter()
            .flat_map(|g| g.values())
            .filter_map(|g| g.get("dependencies"));
        ["dependencies", "dev-dependencies"]
            .into_iter()
            .filter_map(|k| p.get(k))
            .chain(groups)
    });
    for table in tables.filter_map(|t| t.as_table()) {
        deps.extend(table.keys().filter(|k| *k != "python").cloned());
    }
    Some((name, field("version"), deps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_keep_every_hash_pin_and_vcs_package() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let text = format!(
            "requests[socks,use_chardet]==2.31.0 \\\n  --hash=sha256:{a} \\\n  --hash=sha256:{b}\n\
                    numpy == 1.26.4  # spaced\nFlask>=2.0\n-e git+https://github.com/psf/black.git@24.1.0#egg=black\n\
                    -e ./local\n-r other.txt\nurllib3==2.2.1; python_version >= \"3.8\"\n\
                    pip @ https://example.com/pip-24.0.whl\n"
        );
        let got = requirements(&text);
        let names: Vec<(&str, Option<&str>)> = got
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("requests", Some("2.31.0")),
                ("numpy", Some("1.26.4")),
                ("Flask", None),
                ("black", None),
                ("urllib3", Some("2.2.1")),
                ("pip", None),
            ]
        );
        assert_eq!(got.packages[0].extras, ["socks", "use_chardet"]);
        assert_eq!(
            got.packages[0].distributions[0].1.len(),
            2,
            "every --hash is kept"
        );
        assert!(
            matches!(&got.packages[3].source, Some(Source::Vcs(u)) if u.starts_with("git+https"))
        );
        assert!(matches!(&got.packages[5].source, Some(Source::Download(_))));
        assert_eq!(got.warnings.len(), 1, "{:?}", got.warnings);
        assert!(got.warnings[0].contains("line 7") && got.warnings[0].contains("./local"));
    }
}
