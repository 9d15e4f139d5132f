//! The SBOM snapshot: a CycloneDX 1.5 document generated from the lock files a project has,
//! or one the user already produces, validated either way.
//!
//! Each lock file is recognised by its content (its name only breaks ties), read by the
//! module for its ecosystem (`cargo`, `npm`, `pypi`, `golang`) into [`Package`]s with their
//! dependencies, and written with the purls, hashes, scopes and dependency graph the reference
//! tools (cyclonedx-py, cyclonedx-npm) write. Generation is deterministic (the serial number
//! derives from the content, no timestamp), so the same dependencies give the same digest.

mod cargo;
mod golang;
mod npm;
pub mod purl;
mod pypi;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine;
use cyclonedx_bom::external_models::uri::{Purl, Uri};
use cyclonedx_bom::models::bom::{Bom, SpecVersion, UrnUuid};
use cyclonedx_bom::models::component::{Classification, Component, Components, Scope as CdxScope};
use cyclonedx_bom::models::dependency::{Dependencies, Dependency};
use cyclonedx_bom::models::external_reference::{
    ExternalReference, ExternalReferenceType, ExternalReferences,
};
use cyclonedx_bom::models::hash::{Hash, HashAlgorithm, HashValue, Hashes};
use cyclonedx_bom::models::metadata::Metadata;
use cyclonedx_bom::models::property::{Properties, Property};
use cyclonedx_bom::validation::Validate;
use gauntlet_report::sha256_hex;
use sha2::{Digest as _, Sha256};

use crate::TrustError;

/// The lock file names `discover` looks for beside a spec.
pub const LOCKFILES: &[&str] = &[
    "Cargo.lock",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "requirements.txt",
    "poetry.lock",
    "go.sum",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ecosystem {
    Cargo,
    Npm,
    Pypi,
    Golang,
}

impl Ecosystem {
    pub fn purl_type(self) -> &'static str {
        match self {
            Ecosystem::Cargo => "cargo",
            Ecosystem::Npm => "npm",
            Ecosystem::Pypi => "pypi",
            Ecosystem::Golang => "golang",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HashKind {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// A digest, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Digest {
    pub kind: HashKind,
    pub hex: String,
}

impl Digest {
    pub fn new(kind: HashKind, hex: &str) -> Digest {
        Digest {
            kind,
            hex: hex.to_ascii_lowercase(),
        }
    }

    /// `sha256:HEX` (pip's `--hash`, poetry's `hash`); `None` if malformed.
    pub fn parse_prefixed(text: &str) -> Option<Digest> {
        let (alg, hex) = text.split_once(':')?;
        let kind = match alg {
            "sha1" => HashKind::Sha1,
            "sha256" => HashKind::Sha256,
            "sha384" => HashKind::Sha384,
            "sha512" => HashKind::Sha512,
            _ => return None,
        };
        Some(Digest::new(kind, hex)).filter(Digest::well_formed)
    }

    fn well_formed(&self) -> bool {
        let len = match self.kind {
            HashKind::Sha1 => 40,
            HashKind::Sha256 => 64,
            HashKind::Sha384 => 96,
            HashKind::Sha512 => 128,
        };
        self.hex.len() == len && self.hex.bytes().all(|b| b.is_ascii_hexdigit())
    }

    fn to_cdx(&self) -> Hash {
        Hash {
            alg: match self.kind {
                HashKind::Sha1 => HashAlgorithm::SHA1,
                HashKind::Sha256 => HashAlgorithm::SHA_256,
                HashKind::Sha384 => HashAlgorithm::SHA_384,
                HashKind::Sha512 => HashAlgorithm::SHA_512,
            },
            content: HashValue(self.hex.clone()),
        }
    }
}

/// npm's `integrity` (Subresource Integrity: `sha512-BASE64`, several separated by spaces).
pub(crate) fn integrity(sri: Option<&str>) -> Vec<Digest> {
    let Some(sri) = sri else {
        return Vec::new();
    };
    sri.split_whitespace()
        .filter_map(|one| {
            let (alg, b64) = one.split_once('-')?;
            let kind = match alg {
                "sha512" => HashKind::Sha512,
                "sha384" => HashKind::Sha384,
                "sha256" => HashKind::Sha256,
                "sha1" => HashKind::Sha1,
                _ => return None,
            };
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
            Some(Digest::new(kind, &hex::encode(bytes))).filter(Digest::well_formed)
        })
        .collect()
}

/// How a component is used: shipped, optional, or only for development and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    #[default]
    Required,
    Optional,
    Excluded,
}

/// Where a package comes from when not from its registry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Vcs(String),
    Download(String),
}

/// One dependency found in a lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub ecosystem: Ecosystem,
    /// The npm scope (`@babel`): CycloneDX's group.
    pub group: Option<String>,
    /// As the lock file spells it; the purl normalises it.
    pub name: String,
    pub version: Option<String>,
    /// Digests of the package itself (a crate, an npm tarball).
    pub hashes: Vec<Digest>,
    /// Distribution files and their digests (PyPI wheels and sdists).
    pub distributions: Vec<(String, Vec<Digest>)>,
    pub source: Option<Source>,
    /// Extras asked for (`requests[socks]`).
    pub extras: Vec<String>,
    pub scope: Scope,
    /// The purls of the packages this one depends on.
    pub depends_on: Vec<String>,
}

impl Package {
    pub fn new(ecosystem: Ecosystem, name: &str) -> Package {
        Package {
            ecosystem,
            group: None,
            name: name.to_string(),
            version: None,
            hashes: Vec::new(),
            distributions: Vec::new(),
            source: None,
            extras: Vec::new(),
            scope: Scope::Required,
            depends_on: Vec::new(),
        }
    }
}

/// What one lock file says.
#[derive(Debug, Clone, Default)]
pub struct Contents {
    pub packages: Vec<Package>,
    /// The purls the project itself depends on; `None` when the lock file does not say.
    pub direct: Option<Vec<String>>,
    /// The project's name (and version) when the lock file (or its manifest beside) names it.
    pub project: Option<(String, Option<String>)>,
    /// What was left out, and why: nothing is dropped silently.
    pub warnings: Vec<String>,
}

/// A validated SBOM and its digest.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub bytes: Vec<u8>,
    pub sha256: String,
    pub spec_version: String,
    pub components: usize,
    pub warnings: Vec<String>,
}

/// The kinds of lock file gauntlet reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cargo,
    Npm,
    Requirements,
    Poetry,
    GoSum,
}

/// What kind of lock file `text` is: by its content, its name (`berserk-poetry.lock`,
/// `requirements-dev.txt`) breaking ties.
pub(crate) fn detect(path: &Path, text: &str) -> Result<Kind, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let start = text.trim_start();
    if start.starts_with('{') {
        let doc: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        if doc.get("lockfileVersion").is_some()
            || doc.get("packages").is_some_and(|p| p.is_object())
        {
            return Ok(Kind::Npm);
        }
        return Err("JSON without `lockfileVersion`: not an npm lock file".into());
    }
    if let Ok(doc) = toml::from_str::<toml::Table>(text)
        && let Some(packages) = doc.get("package").and_then(|p| p.as_array())
    {
        let any = |key: &str| packages.iter().any(|p| p.get(key).is_some());
        let poetry = doc
            .get("metadata")
            .is_some_and(|m| m.get("content-hash").is_some() || m.get("lock-version").is_some())
            || any("python-versions")
            || any("files")
            || any("groups");
        let cargo = any("checksum")
            || any("source")
                && packages
                    .iter()
                    .any(|p| p.get("source").is_some_and(|s| s.is_str()))
            || doc.get("version").is_some_and(|v| v.is_integer());
        return match (poetry, cargo) {
            (true, false) => Ok(Kind::Poetry),
            (false, true) => Ok(Kind::Cargo),
            _ if name.contains("poetry") => Ok(Kind::Poetry),
            _ if name.contains("cargo") => Ok(Kind::Cargo),
            _ if name.ends_with(".lock") => Ok(Kind::Cargo),
            _ => Err(
                "a TOML file with [[package]] that is neither a Cargo.lock nor a poetry.lock"
                    .into(),
            ),
        };
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let go_line = |l: &&str| {
        let parts: Vec<&str> = l.split_whitespace().collect();
        parts.len() == 3 && parts[2].starts_with("h1:")
    };
    if !lines.is_empty() && lines.iter().all(go_line) {
        return Ok(Kind::GoSum);
    }
    let requirementish =
        name.ends_with(".txt") || name.ends_with(".in") || name.contains("requirements");
    if requirementish {
        return Ok(Kind::Requirements);
    }
    Err(format!(
        "not a lock file gauntlet reads: Cargo.lock, package-lock.json (or npm-shrinkwrap.json), requirements*.txt, poetry.lock or go.sum, recognised by content{}",
        if lines.is_empty() {
            " (the file is empty)"
        } else {
            ""
        }
    ))
}

/// Reads one lock file, whatever its name.
pub fn read(path: &Path) -> Result<Contents, TrustError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrustError::io(path, e))?;
    let bad = |e: String| TrustError::Input(format!("{}: {e}", path.display()));
    match detect(path, &text).map_err(bad)? {
        Kind::Cargo => cargo::read(&text).map_err(bad),
        Kind::Npm => npm::read(&text).map_err(bad),
        Kind::Poetry => pypi::poetry(&text, path).map_err(bad),
        Kind::Requirements => Ok(pypi::requirements(&text)),
        Kind::GoSum => Ok(golang::read(&text, path)),
    }
}

/// The packages of one lock file.
pub fn read_lockfile(path: &Path) -> Result<Vec<Package>, TrustError> {
    read(path).map(|c| c.packages)
}

/// The project the lock files name (the first that names one).
pub fn project_of(lockfiles: &[PathBuf]) -> Option<(String, Option<String>)> {
    lockfiles
        .iter()
        .find_map(|p| read(p).ok().and_then(|c| c.project))
}

/// The lock files in `dir`: the usual names, and `requirements*.txt`.
pub fn discover(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = LOCKFILES
        .iter()
        .map(|name| dir.join(name))
        .filter(|p| p.is_file())
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut more: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with("requirements") && n.ends_with(".txt") && n != "requirements.txt"
                })
            })
            .collect();
        more.sort();
        found.extend(more);
    }
    found
}

/// Every package once (by purl): scopes keep the most used, dependencies add up.
fn merge(all: Vec<Package>) -> BTreeMap<String, Package> {
    let mut by_purl: BTreeMap<String, Package> = BTreeMap::new();
    for p in all {
        let key = purl::purl(&p);
        match by_purl.get_mut(&key) {
            Some(known) => {
                known.scope = known.scope.min(p.scope);
                known.depends_on.extend(p.depends_on);
                known.hashes.extend(p.hashes);
                known.distributions.extend(p.distributions);
            }
            None => {
                by_purl.insert(key, p);
            }
        }
    }
    for p in by_purl.values_mut() {
        let set: BTreeSet<String> = p.depends_on.drain(..).collect();
        p.depends_on.extend(set);
        p.hashes.sort();
        p.hashes.dedup();
        p.distributions.sort();
        p.distributions.dedup();
    }
    by_purl
}

fn component(key: &str, p: &Package) -> Component {
    let mut c = Component::new(
        Classification::Library,
        &p.name,
        p.version.as_deref().unwrap_or_default(),
        Some(key.to_string()),
    );
    if p.version.is_none() {
        c.version = None;
    }
    c.group = p
        .group
        .as_deref()
        .map(cyclonedx_bom::prelude::NormalizedString::new);
    c.purl = key.parse::<Purl>().ok();
    c.scope = match p.scope {
        Scope::Required => None,
        Scope::Optional => Some(CdxScope::Optional),
        Scope::Excluded => Some(CdxScope::Excluded),
    };
    if !p.hashes.is_empty() {
        c.hashes = Some(Hashes(p.hashes.iter().map(Digest::to_cdx).collect()));
    }
    let mut references: Vec<ExternalReference> = p
        .distributions
        .iter()
        .map(|(url, digests)| {
            let mut r = ExternalReference::new(ExternalReferenceType::Distribution, Uri::new(url));
            r.hashes = Some(Hashes(digests.iter().map(Digest::to_cdx).collect()));
            r
        })
        .collect();
    if let Some(Source::Vcs(url)) = &p.source {
        references.push(ExternalReference::new(
            ExternalReferenceType::Vcs,
            Uri::new(url),
        ));
    }
    if let Some(Source::Download(url)) = &p.source {
        references.push(ExternalReference::new(
            ExternalReferenceType::Distribution,
            Uri::new(url),
        ));
    }
    if !references.is_empty() {
        c.external_references = Some(ExternalReferences(references));
    }
    if !p.extras.is_empty() {
        c.properties = Some(Properties(
            p.extras
                .iter()
                .map(|e| Property::new("cdx:python:package:required-extra", e))
                .collect(),
        ));
    }
    c
}

/// A name-based UUID (version 5 layout) from the SBOM's content.
fn serial(digest: &[u8]) -> String {
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&digest[..16]);
    uuid[6] = (uuid[6] & 0x0f) | 0x50;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    let h = hex::encode(uuid);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A CycloneDX 1.5 SBOM for `name` (`version`) from the packages in `lockfiles`: every
/// component with its purl, hashes and scope, and the dependency graph from the application
/// down.
pub fn generate(
    lockfiles: &[PathBuf],
    name: &str,
    version: Option<&str>,
) -> Result<Snapshot, TrustError> {
    let mut all = Vec::new();
    let mut direct = BTreeSet::new();
    let mut warnings = Vec::new();
    for path in lockfiles {
        let contents = read(path)?;
        let packages = contents.packages;
        match contents.direct {
            Some(d) => direct.extend(d),
            // The lock file does not say: the packages nothing else depends on.
            None => {
                let needed: BTreeSet<&String> =
                    packages.iter().flat_map(|p| &p.depends_on).collect();
                direct.extend(
                    packages
                        .iter()
                        .map(purl::purl)
                        .filter(|k| !needed.contains(k)),
                );
            }
        }
        warnings.extend(
            contents
                .warnings
                .into_iter()
                .map(|w| format!("{}: {w}", path.display())),
        );
        all.extend(packages);
    }
    let packages = merge(all);
    let root_ref = match version {
        Some(v) => format!("{name}@{v}"),
        None => name.to_string(),
    };
    let mut seed = Sha256::new();
    seed.update(format!("{root_ref}\n"));
    for (key, p) in &packages {
        seed.update(format!(
            "{key}:{:?}:{:?}:{:?}:{:?}:{:?}\n",
            p.hashes, p.distributions, p.scope, p.extras, p.depends_on
        ));
    }
    let mut root = Component::new(
        Classification::Application,
        name,
        version.unwrap_or_default(),
        Some(root_ref.clone()),
    );
    if version.is_none() {
        root.version = None;
    }
    let metadata = Metadata {
        component: Some(root),
        properties: Some(Properties(
            lockfiles
                .iter()
                .map(|p| Property::new("gauntlet:lockfile", &p.display().to_string()))
                .collect(),
        )),
        ..Metadata::default()
    };
    let mut dependencies = vec![Dependency {
        dependency_ref: root_ref,
        dependencies: direct
            .into_iter()
            .filter(|d| packages.contains_key(d))
            .collect(),
    }];
    dependencies.extend(packages.iter().map(|(key, p)| {
        Dependency {
            dependency_ref: key.clone(),
            dependencies: p
                .depends_on
                .iter()
                .filter(|d| packages.contains_key(*d))
                .cloned()
                .collect(),
        }
    }));
    let bom = Bom {
        serial_number: UrnUuid::new(serial(&seed.finalize())).ok(),
        metadata: Some(metadata),
        components: Some(Components(
            packages.iter().map(|(k, p)| component(k, p)).collect(),
        )),
        dependencies: Some(Dependencies(dependencies)),
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
        warnings,
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
        warnings: Vec::new(),
    })
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
        let snap = generate(&files, "shop", Some("1.0.0")).unwrap();
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
                "app",
                "serde",
                "golang.org/x/net",
                "a",
                "b",
                "Django",
                "flask",
                "requests"
            ]
        );
        assert_eq!(
            snap.components, 8,
            "the workspace's own crate is a component too"
        );
        let requests = &doc["components"][7];
        assert_eq!(requests["purl"], "pkg:pypi/requests@2.31.0");
        let reference = &requests["externalReferences"][0];
        assert_eq!(reference["hashes"][0]["content"], "ab".repeat(32));
        assert_eq!(doc["components"][3]["group"], "@scope");
        assert_eq!(doc["components"][3]["purl"], "pkg:npm/%40scope/a@1.2.3");
        assert!(
            doc["components"][3].get("hashes").is_none(),
            "a truncated digest is left out"
        );
        // The application depends on what each lock file says it depends on.
        let root = &doc["dependencies"][0];
        assert_eq!(root["ref"], "shop@1.0.0");
        assert!(
            root["dependsOn"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("pkg:cargo/app@0.1.0"))
        );
        // Same inputs, same bytes: the digest is stable across runs.
        assert_eq!(
            generate(&files, "shop", Some("1.0.0")).unwrap().sha256,
            snap.sha256
        );
        // What we write reads back as a valid CycloneDX 1.5 document.
        let path = write(d, "sbom.json", std::str::from_utf8(&snap.bytes).unwrap());
        assert_eq!(load(&path).unwrap().components, 8);
    }

    #[test]
    fn lock_files_are_recognised_by_content_whatever_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let poetry = write(
            d,
            "berserk-poetry.lock",
            "[[package]]\nname = \"a\"\nversion = \"1\"\npython-versions = \"*\"\ngroups = [\"dev\"]\nfiles = []\n",
        );
        let got = read(&poetry).unwrap();
        assert_eq!(
            got.packages[0].scope,
            Scope::Excluded,
            "a dev group is excluded"
        );
        let dev = write(d, "requirements-dev.txt", "pytest==8.0\n");
        assert_eq!(
            read_lockfile(&dev).unwrap()[0].version.as_deref(),
            Some("8.0")
        );
        let sum = write(d, "deps.sum", "golang.org/x/text v0.3.0 h1:abc=\n");
        assert_eq!(read_lockfile(&sum).unwrap()[0].name, "golang.org/x/text");
        let shrink = write(
            d,
            "npm-shrinkwrap.json",
            r#"{"lockfileVersion": 3, "packages": {"node_modules/x": {"version": "1.0.0", "dev": true}}}"#,
        );
        assert_eq!(read_lockfile(&shrink).unwrap()[0].scope, Scope::Excluded);
        let notes = write(d, "notes.md", "hello\n");
        assert!(
            read(&notes)
                .unwrap_err()
                .to_string()
                .contains("not a lock file")
        );
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
