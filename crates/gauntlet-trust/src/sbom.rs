//! The SBOM snapshot: a CycloneDX 1.5 document generated from the lock files a project has
//! (Cargo.lock, package-lock.json, requirements.txt, poetry.lock, go.sum), or one the user
//! already produces, validated either way. Generation is deterministic (the serial number
//! derives from the content, no timestamp), so the same dependencies give the same digest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use cyclonedx_bom::external_models::uri::Purl;
use cyclonedx_bom::models::bom::{Bom, SpecVersion, UrnUuid};
use cyclonedx_bom::models::component::{Classification, Component, Components};
use cyclonedx_bom::models::hash::{Hash, HashAlgorithm, HashValue, Hashes};
use cyclonedx_bom::models::metadata::Metadata;
use cyclonedx_bom::models::property::{Properties, Property};
use cyclonedx_bom::validation::Validate;
use gauntlet_report::sha256_hex;
use sha2::{Digest, Sha256};

use crate::TrustError;

/// The lock file names gauntlet reads, and the package ecosystem each stands for.
pub const LOCKFILES: &[&str] = &[
    "Cargo.lock",
    "package-lock.json",
    "requirements.txt",
    "poetry.lock",
    "go.sum",
];

/// One dependency found in a lock file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    pub ecosystem: &'static str,
    pub name: String,
    pub version: Option<String>,
    /// (algorithm, lower-case hex)
    pub hash: Option<(HashKind, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HashKind {
    Sha1,
    Sha256,
    Sha512,
}

/// A validated SBOM and its digest.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub bytes: Vec<u8>,
    pub sha256: String,
    pub spec_version: String,
    pub components: usize,
}

/// Reads the packages of one lock file; the file name picks the format.
pub fn read_lockfile(path: &Path) -> Result<Vec<Package>, TrustError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrustError::io(path, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bad = |e: String| TrustError::Input(format!("{}: {e}", path.display()));
    match name.as_str() {
        "Cargo.lock" => cargo_lock(&text).map_err(bad),
        "package-lock.json" => package_lock(&text).map_err(bad),
        "poetry.lock" => poetry_lock(&text).map_err(bad),
        "go.sum" => Ok(go_sum(&text)),
        n if n.ends_with(".txt") => Ok(requirements(&text)),
        _ => Err(TrustError::Input(format!(
            "{}: not a lock file gauntlet reads ({})",
            path.display(),
            LOCKFILES.join(", ")
        ))),
    }
}

/// The lock files among [`LOCKFILES`] present in `dir`.
pub fn discover(dir: &Path) -> Vec<PathBuf> {
    LOCKFILES
        .iter()
        .map(|name| dir.join(name))
        .filter(|p| p.is_file())
        .collect()
}

fn cargo_lock(text: &str) -> Result<Vec<Package>, String> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        package: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        name: String,
        version: String,
        source: Option<String>,
        checksum: Option<String>,
    }
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    Ok(file
        .package
        .into_iter()
        // Path dependencies are the project's own crates, not third-party components.
        .filter(|p| p.source.is_some())
        .map(|p| Package {
            ecosystem: "cargo",
            name: p.name,
            version: Some(p.version),
            hash: p
                .checksum
                .map(|c| (HashKind::Sha256, c.to_ascii_lowercase())),
        })
        .collect())
}

fn poetry_lock(text: &str) -> Result<Vec<Package>, String> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        package: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        name: String,
        version: String,
    }
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    Ok(file
        .package
        .into_iter()
        .map(|p| Package {
            ecosystem: "pypi",
            name: p.name.to_ascii_lowercase(),
            version: Some(p.version),
            hash: None,
        })
        .collect())
}

fn integrity(sri: Option<&str>) -> Option<(HashKind, String)> {
    let (alg, b64) = sri?.split_whitespace().next()?.split_once('-')?;
    let kind = match alg {
        "sha512" => HashKind::Sha512,
        "sha256" => HashKind::Sha256,
        "sha1" => HashKind::Sha1,
        _ => return None,
    };
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    Some((kind, hex::encode(bytes)))
}

fn package_lock(text: &str) -> Result<Vec<Package>, String> {
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    if let Some(packages) = doc.get("packages").and_then(|p| p.as_object()) {
        for (key, entry) in packages {
            let Some(idx) = key.rfind("node_modules/") else {
                continue; // "" is the project itself
            };
            if entry.get("link").and_then(|l| l.as_bool()) == Some(true) {
                continue;
            }
            let name = entry
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or(&key[idx + "node_modules/".len()..]);
            out.push(Package {
                ecosystem: "npm",
                name: name.to_string(),
                version: entry
                    .get("version")
                    .and_then(|v| v.as_str())
                    .map(String::from),
                hash: integrity(entry.get("integrity").and_then(|i| i.as_str())),
            });
        }
    } else if let Some(deps) = doc.get("dependencies").and_then(|d| d.as_object()) {
        fn walk(
            deps: &serde_json::Map<String, serde_json::Value>,
            out: &mut Vec<Package>,
            depth: usize,
        ) {
            if depth > 256 {
                return;
            }
            for (name, entry) in deps {
                out.push(Package {
                    ecosystem: "npm",
                    name: name.clone(),
                    version: entry
                        .get("version")
                        .and_then(|v| v.as_str())
                        .map(String::from),
                    hash: integrity(entry.get("integrity").and_then(|i| i.as_str())),
                });
                if let Some(nested) = entry.get("dependencies").and_then(|d| d.as_object()) {
                    walk(nested, out, depth + 1);
                }
            }
        }
        walk(deps, &mut out, 0);
    } else {
        return Err("neither `packages` nor `dependencies`: not an npm lock file".into());
    }
    Ok(out)
}

fn requirements(text: &str) -> Vec<Package> {
    let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let line = match line.find(" #") {
            Some(i) => &line[..i],
            None => line,
        }
        .trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('-') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let spec = parts.next().unwrap_or_default();
        let spec = spec.split(';').next().unwrap_or_default();
        let hash = parts
            .filter_map(|p| p.strip_prefix("--hash=sha256:"))
            .next()
            .map(|h| (HashKind::Sha256, h.to_ascii_lowercase()));
        let (name, version) = match spec.split_once("==") {
            Some((n, v)) => (n, Some(v.trim_start_matches('=').to_string())),
            None => (
                spec.split(['<', '>', '!', '~', '=']).next().unwrap_or(spec),
                None,
            ),
        };
        let name = name.split('[').next().unwrap_or(name).trim();
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if valid {
            out.push(Package {
                ecosystem: "pypi",
                name: name.to_ascii_lowercase(),
                version,
                hash,
            });
        }
    }
    out
}

fn go_sum(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(module), Some(version)) = (parts.next(), parts.next()) else {
            continue;
        };
        if version.ends_with("/go.mod") {
            continue;
        }
        out.push(Package {
            ecosystem: "golang",
            name: module.to_string(),
            version: Some(version.to_string()),
            hash: None,
        });
    }
    out
}

fn component(package: &Package) -> Component {
    let version = package.version.as_deref().unwrap_or_default();
    let mut c = Component::new(Classification::Library, &package.name, version, None);
    if package.version.is_none() {
        c.version = None;
    }
    c.purl = Purl::new(package.ecosystem, &package.name, version).ok();
    c.bom_ref = c.purl.as_ref().map(|p| p.to_string());
    // A digest of the wrong length or alphabet is left out rather than invalidating the SBOM.
    let well_formed = |(kind, value): &&(HashKind, String)| {
        let len = match kind {
            HashKind::Sha1 => 40,
            HashKind::Sha256 => 64,
            HashKind::Sha512 => 128,
        };
        value.len() == len && value.bytes().all(|b| b.is_ascii_hexdigit())
    };
    c.hashes = package
        .hash
        .as_ref()
        .filter(well_formed)
        .map(|(kind, value)| {
            Hashes(vec![Hash {
                alg: match kind {
                    HashKind::Sha1 => HashAlgorithm::SHA1,
                    HashKind::Sha256 => HashAlgorithm::SHA_256,
                    HashKind::Sha512 => HashAlgorithm::SHA_512,
                },
                content: HashValue(value.clone()),
            }])
        });
    c
}

/// A CycloneDX 1.5 SBOM for `name`@`version` from the packages in `lockfiles`.
pub fn generate(lockfiles: &[PathBuf], name: &str, version: &str) -> Result<Snapshot, TrustError> {
    let mut packages = Vec::new();
    for path in lockfiles {
        packages.extend(read_lockfile(path)?);
    }
    packages.sort();
    packages
        .dedup_by(|a, b| a.ecosystem == b.ecosystem && a.name == b.name && a.version == b.version);
    let mut seed = Sha256::new();
    seed.update(format!("{name}@{version}\n"));
    for p in &packages {
        seed.update(format!(
            "{}:{}@{:?}:{:?}\n",
            p.ecosystem, p.name, p.version, p.hash
        ));
    }
    let digest = seed.finalize();
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&digest[..16]);
    uuid[6] = (uuid[6] & 0x0f) | 0x50; // version 5 layout: name-based
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    let h = hex::encode(uuid);
    let serial = format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    let metadata = Metadata {
        component: Some(Component::new(
            Classification::Application,
            name,
            version,
            None,
        )),
        properties: Some(Properties(
            lockfiles
                .iter()
                .map(|p| Property::new("gauntlet:lockfile", &p.display().to_string()))
                .collect(),
        )),
        ..Metadata::default()
    };
    let bom = Bom {
        serial_number: UrnUuid::new(serial).ok(),
        metadata: Some(metadata),
        components: Some(Components(packages.iter().map(component).collect())),
        spec_version: SpecVersion::V1_5,
        ..Bom::default()
    };
    let result = bom.validate_version(SpecVersion::V1_5);
    if !result.passed() {
        return Err(TrustError::Input(format!(
            "the generated SBOM does not validate: {:?}",
            result.errors().collect::<Vec<_>>()
        )));
    }
    let mut bytes = Vec::new();
    bom.output_as_json_v1_5(&mut bytes)
        .map_err(|e| TrustError::Input(format!("writing the SBOM: {e}")))?;
    Ok(Snapshot {
        sha256: sha256_hex(&bytes),
        bytes,
        spec_version: "1.5".into(),
        components: packages.len(),
    })
}

/// Validates an SBOM the user already produces (CycloneDX JSON 1.3–1.6) and takes its digest.
pub fn load(path: &Path) -> Result<Snapshot, TrustError> {
    let bytes = std::fs::read(path).map_err(|e| TrustError::io(path, e))?;
    let bad = |e: String| TrustError::Input(format!("{}: {e}", path.display()));
    let doc: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    if doc.get("bomFormat").and_then(|f| f.as_str()) != Some("CycloneDX") {
        return Err(bad(
            "`bomFormat` is not \"CycloneDX\" (gauntlet reads CycloneDX JSON SBOMs)".into(),
        ));
    }
    let version = doc
        .get("specVersion")
        .and_then(|v| v.as_str())
        .ok_or_else(|| bad("`specVersion` is missing".into()))?
        .to_string();
    let components = match version.as_str() {
        "1.3" | "1.4" | "1.5" => {
            let spec: SpecVersion = version.parse().map_err(|e| bad(format!("{e}")))?;
            let bom = Bom::parse_json_value(doc.clone()).map_err(|e| bad(format!("{e}")))?;
            let result = bom.validate_version(spec);
            if !result.passed() {
                let errors: Vec<String> = result
                    .errors()
                    .map(|(field, e)| format!("{field}: {e:?}"))
                    .collect();
                return Err(bad(format!(
                    "invalid CycloneDX {version}: {}",
                    errors.join("; ")
                )));
            }
            bom.components.map_or(0, |c| c.0.len())
        }
        "1.6" => {
            // Newer than the model crate reads: check what the format requires of every component.
            let list = doc.get("components").and_then(|c| c.as_array());
            for (i, c) in list.into_iter().flatten().enumerate() {
                if c.get("type").and_then(|t| t.as_str()).is_none()
                    || c.get("name").and_then(|n| n.as_str()).is_none()
                {
                    return Err(bad(format!("components[{i}] needs `type` and `name`")));
                }
            }
            list.map_or(0, Vec::len)
        }
        other => {
            return Err(bad(format!(
                "CycloneDX specVersion {other} is not one gauntlet reads (1.3–1.6)"
            )));
        }
    };
    Ok(Snapshot {
        sha256: sha256_hex(&bytes),
        bytes,
        spec_version: version,
        components,
    })
}

/// Packages by ecosystem, for a one-line summary.
pub fn summary(lockfiles: &[PathBuf]) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for path in lockfiles {
        for p in read_lockfile(path).unwrap_or_default() {
            *out.entry(p.ecosystem).or_default() += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn every_supported_lock_file_yields_components() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let files = vec![
            write(
                d,
                "Cargo.lock",
                "version = 4\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\n[[package]]\nname = \"serde\"\nversion = \"1.0.200\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"ddc6f9cc94d67c0e21aaf7eda3a010fd3af78ebf6e096aa6e2e13c79749cce4f\"\n",
            ),
            write(
                d,
                "package-lock.json",
                r#"{"lockfileVersion":3,"packages":{"":{"name":"x"},"node_modules/@scope/a":{"version":"1.2.3","integrity":"sha512-AAAA"},"node_modules/b":{"version":"2.0.0"}}}"#,
            ),
            write(
                d,
                "requirements.txt",
                "# pins\nrequests[socks]==2.31.0 \\\n    --hash=sha256:ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB\nflask>=2  # unpinned\n-r other.txt\n",
            ),
            write(
                d,
                "poetry.lock",
                "[[package]]\nname = \"Django\"\nversion = \"5.0\"\n",
            ),
            write(
                d,
                "go.sum",
                "golang.org/x/net v0.1.0 h1:abc=\ngolang.org/x/net v0.1.0/go.mod h1:def=\n",
            ),
        ];
        let snap = generate(&files, "shop", "1.0.0").unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&snap.bytes).unwrap();
        assert_eq!(doc["bomFormat"], "CycloneDX");
        assert_eq!(doc["specVersion"], "1.5");
        let names: Vec<&str> = doc["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "serde",
                "golang.org/x/net",
                "@scope/a",
                "b",
                "django",
                "flask",
                "requests"
            ]
        );
        assert_eq!(snap.components, 7);
        let requests = &doc["components"][6];
        assert_eq!(requests["purl"], "pkg:pypi/requests@2.31.0");
        assert_eq!(requests["hashes"][0]["content"], "ab".repeat(32));
        assert!(
            doc["components"][2].get("hashes").is_none(),
            "a truncated digest is left out"
        );
        // Same inputs, same bytes: the digest is stable across runs.
        assert_eq!(
            generate(&files, "shop", "1.0.0").unwrap().sha256,
            snap.sha256
        );
        // What we write reads back as a valid CycloneDX 1.5 document.
        let path = write(d, "sbom.json", std::str::from_utf8(&snap.bytes).unwrap());
        assert_eq!(load(&path).unwrap().components, 7);
    }

    #[test]
    fn user_sboms_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let bad = write(d, "a.json", r#"{"bomFormat":"SPDX","specVersion":"2.3"}"#);
        assert!(load(&bad).unwrap_err().to_string().contains("bomFormat"));
        let no_name = write(
            d,
            "b.json",
            r#"{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library"}]}"#,
        );
        assert!(
            load(&no_name)
                .unwrap_err()
                .to_string()
                .contains("components[0]")
        );
        let ok = write(
            d,
            "c.json",
            r#"{"bomFormat":"CycloneDX","specVersion":"1.4","version":1,"components":[{"type":"library","name":"x","version":"1"}]}"#,
        );
        assert_eq!(load(&ok).unwrap().components, 1);
    }
}
