//! What is locked and signed (the `trust` section), and steps 1 (preflight) and 5 (rotation).
//!
//! The keyring is deliberately not here: the spec is one of the things being verified, so
//! the keys that verify it come from the machine (`--keyring`, `GAUNTLET_KEYRING`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::model::{Method, Severity};

/// Paths are relative to the spec's directory.
#[derive(Debug, Deserialize, JsonSchema)]
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

/// `rel` under `dir`, once it is sure to be there: symbolic links included, it must resolve
/// to a file below `dir` (a link to /etc/shadow in the project is refused, not read).
pub fn resolve_in(dir: &std::path::Path, rel: &str) -> Result<std::path::PathBuf, String> {
    if let Some(why) = outside_project(rel) {
        return Err(format!(
            "{why}: files a spec names stay under its directory"
        ));
    }
    let joined = dir.join(rel);
    let real = joined
        .canonicalize()
        .map_err(|e| format!("cannot read {}: {e}", joined.display()))?;
    let root = dir
        .canonicalize()
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    if !real.starts_with(&root) {
        return Err(format!(
            "{rel} resolves outside the spec's directory (a symbolic link?); files a spec names stay under it"
        ));
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

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum FlagSource {
    /// A JSON or YAML file (also locked like a protected file).
    File(String),
    /// A path on the candidate that answers with the flags as JSON: `/flags`.
    Endpoint(String),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SbomSource {
    /// Lock files to read: Cargo.lock, package-lock.json, requirements.txt, poetry.lock, go.sum.
    Lockfiles(Vec<String>),
    /// A CycloneDX JSON SBOM the project produces; validated and digested.
    File(String),
}

/// Step 1: the protected files match their signed lock; flags and SBOM are snapshotted into
/// a signed release manifest; the green fingerprint is computed.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreflightStep {
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
}

/// Step 5: a drill of key and credential rotation, on scratch copies, never on the real keyring.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotationStep {
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
    /// How the manifest's version goes up when it is re-signed: `major`, `minor` or `patch`.
    #[serde(default)]
    pub bump: VersionBump,
    /// The key path of the threshold the drill edits without signing, e.g.
    /// `slos.latency.threshold` (default: the first SLO threshold or objective in the spec).
    #[serde(default)]
    pub threshold: Option<String>,
    /// The protected prompt file the drill edits without signing (default: the first protected
    /// file that is not YAML or JSON).
    #[serde(default)]
    pub prompt: Option<String>,
    /// The service's own credential rotation.
    #[serde(default)]
    pub credentials: Option<CredentialRotation>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VersionBump {
    Major,
    Minor,
    #[default]
    Patch,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialRotation {
    /// The header that carries the credential, e.g. `x-api-key`.
    pub header: String,
    /// The credential in use now; the drill rotates back to it afterwards.
    pub current: String,
    /// How to install a new credential: `{new}` in its arguments, path, headers or body is the
    /// new credential, `{old}` the current one.
    pub rotate: RotateBy,
    /// A request that needs the credential: with the new one it must get one of `status`, with
    /// the old one 401 or 403.
    pub probe: CredentialProbe,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RotateBy {
    /// A command; exit 0 means rotated.
    Command(Vec<String>),
    /// A request to the candidate (a webhook or admin endpoint); 2xx means rotated.
    Http(Webhook),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    #[serde(default = "post")]
    pub method: Method,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
}

fn post() -> Method {
    Method::Post
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialProbe {
    #[serde(default = "get")]
    pub method: Method,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default = "ok_statuses")]
    pub status: Vec<u16>,
}

fn get() -> Method {
    Method::Get
}

fn ok_statuses() -> Vec<u16> {
    vec![200, 201, 204]
}

/// Roles that must sign off a run (`gauntlet signoff RUN --role ROLE`) before it is GO.
#[derive(Debug, Deserialize, JsonSchema)]
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
