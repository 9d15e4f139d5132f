//! What is locked and signed (the `trust` section), and steps 1 (preflight) and 5 (rotation).
//!
//! The keyring is deliberately not here: the spec is one of the things being verified, so
//! the keys that verify it come from the machine (`--keyring`, `GAUNTLET_KEYRING`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// Paths are relative to the spec's directory.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustSection {
    /// The signed lock of the protected files (its signature is `LOCK.minisig`).
    #[serde(default = "default_lock")]
    pub lock: String,
    /// Files that must ship exactly as tested: threshold files, prompts, profiles. The spec
    /// itself is always protected.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub protected: Vec<Spanned<String>>,
    /// Where the feature flags come from; preflight freezes a snapshot into the manifest.
    #[serde(default)]
    pub flags: Option<FlagSource>,
    /// The SBOM: generated from lock files, or one the project already produces.
    #[serde(default)]
    pub sbom: Option<SbomSource>,
    /// Release artifacts whose digests become the attestation's subjects.
    #[serde(default)]
    pub artifacts: Vec<String>,
    /// Where this project publishes its run directories (CI artifacts, a bucket, `gauntlet
    /// serve`), e.g. `https://ci.example.com/gauntlet/runs/{run}/`: the attestations name the
    /// spec and the release manifest by URIs under it. Without it they are `file:` URIs of
    /// the run directory on this machine.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub evidence_url: Option<Spanned<String>>,
}

/// Why a path a spec names cannot be one of its project's files: absolute, empty, or
/// climbing out with `..`. Files a spec names live beside it or below.
pub fn outside_project(path: &str) -> Option<String> {
    let p = std::path::Path::new(path);
    if path.trim().is_empty() {
        return Some("the path is empty".into());
    }
    if p.is_absolute() {
        return Some(format!("`{path}` is an absolute path"));
    }
    let mut depth: i64 = 0;
    for part in p.components() {
        match part {
            std::path::Component::ParentDir => depth -= 1,
            std::path::Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Some(format!("`{path}` climbs out of the spec's directory"));
        }
    }
    None
}

/// Why a file a spec names cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ProjectPathError {
    /// Written to climb out, or absolute.
    #[error("{0}: files a spec names stay under its directory")]
    Outside(String),
    /// Written inside, but a symbolic link leads out.
    #[error(
        "{0} resolves outside the spec's directory (a symbolic link?); files a spec names stay under it"
    )]
    LinksOutside(String),
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// `rel` under `dir`, once it is sure to be there: symbolic links included, it must resolve
/// to a file below `dir` (a link to /etc/shadow in the project is refused, not read).
pub fn resolve_in(
    dir: &std::path::Path,
    rel: &str,
) -> Result<std::path::PathBuf, ProjectPathError> {
    if let Some(why) = outside_project(rel) {
        return Err(ProjectPathError::Outside(why));
    }
    let unreadable = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| ProjectPathError::Unreadable { path, source }
    };
    let joined = dir.join(rel);
    let real = joined.canonicalize().map_err(unreadable(&joined))?;
    let root = dir.canonicalize().map_err(unreadable(dir))?;
    if !real.starts_with(&root) {
        return Err(ProjectPathError::LinksOutside(rel.to_string()));
    }
    Ok(real)
}

/// Whether `text` is an absolute URI: a scheme, `:`, and no whitespace.
pub fn is_absolute_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !text.chars().any(char::is_whitespace)
}

fn default_lock() -> String {
    "gauntlet.lock".to_string()
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum FlagSource {
    /// A JSON or YAML file (also locked like a protected file).
    File(String),
    /// A path on the candidate that answers with the flags as JSON: `/flags`.
    Endpoint(String),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SbomSource {
    /// Lock files to read: Cargo.lock, package-lock.json, requirements.txt, poetry.lock, go.sum.
    Lockfiles(Vec<String>),
    /// A CycloneDX JSON SBOM the project produces; validated and digested.
    File(String),
}

/// Roles that must sign off a run (`gauntlet signoff RUN --role ROLE`) before it is GO.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignoffSection {
    /// Roles from `service.owners`; until each has signed the run's report, the decision is
    /// at best CONDITIONAL ("awaiting sign-off: security").
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub required: Vec<Spanned<String>>,
    /// The minisign public key (its base64 line, `RW…`) that speaks for each role. A role
    /// named here signs off, and signs the attested readiness items it owns, with that key
    /// only; other roles sign with any key the verifier's keyring trusts. The keys are part
    /// of the spec, so the signed lock covers them.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub keys: BTreeMap<String, Spanned<String>>,
}

impl SignoffSection {
    /// The public key line that speaks for `role`, if the spec names one.
    pub fn key_of(&self, role: &str) -> Option<&str> {
        self.keys.get(role).map(|k| k.value.trim())
    }
}

/// Whether `text` has the shape of a minisign public key line: base64 of 42 bytes that begin
/// with the Ed25519 algorithm tag `Ed`.
pub fn looks_like_public_key(text: &str) -> bool {
    let text = text.trim();
    text.len() == 56
        && text.starts_with("RW")
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}
