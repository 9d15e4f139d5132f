//! What preflight, rotation and the end of a run share: the files a spec protects, the
//! thresholds in force, the green fingerprint, and the signed decision.

use std::path::{Path, PathBuf};

use gauntlet_report::{Decision, StepReport, TrustInfo, sha256_hex, write_atomic};
use gauntlet_spec::{FlagSource, Plan};
use gauntlet_trust::attest::{CheckRecord, DecisionRecord};
use gauntlet_trust::canonical::{self, Form};
use gauntlet_trust::lock::LockedFile;
use gauntlet_trust::{Keyring, TrustError};
use serde_json::{Value, json};

/// Where the attestation of a run is written, relative to its directory.
pub const ATTESTATION_FILE: &str = "attestation.dsse.json";
/// The same decision as an in-toto test result.
pub const TEST_RESULT_FILE: &str = "test-result.dsse.json";
/// The signed release manifest preflight writes, relative to the run directory.
pub use gauntlet_trust::lock::MANIFEST_FILE;

/// A spec's protected files and its lock, with paths resolved against the spec's directory.
#[derive(Debug, Clone)]
pub struct Project {
    pub spec_path: PathBuf,
    pub lock_path: PathBuf,
    /// The spec first, then `trust.protected`, then a flags file.
    pub protected: Vec<PathBuf>,
    pub spec_dir: PathBuf,
}

impl Project {
    /// The project of the spec at `spec_path`, whose `trust` section is `trust`.
    pub fn of(trust: Option<&gauntlet_spec::Trust>, spec_path: &Path) -> Project {
        let spec_dir = spec_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let mut protected = vec![spec_path.to_path_buf()];
        let mut lock = "gauntlet.lock".to_string();
        if let Some(trust) = trust {
            lock = trust.lock.clone();
            protected.extend(trust.protected.iter().map(|p| spec_dir.join(p)));
            if let Some(FlagSource::File(file)) = &trust.flags {
                protected.push(spec_dir.join(file));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        protected.retain(|p| seen.insert(p.clone()));
        Project {
            spec_path: spec_path.to_path_buf(),
            lock_path: spec_dir.join(lock),
            protected,
            spec_dir,
        }
    }

    /// The lock's directory: locked paths are relative to it.
    pub fn lock_dir(&self) -> &Path {
        self.lock_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }
}

/// The thresholds in force: the spec's `slos`, `steps` and `gating`, as canonical JSON values.
pub fn thresholds(spec_text: &str) -> Result<Value, TrustError> {
    let parsed = canonical::canonicalize(Path::new("spec.yaml"), spec_text.as_bytes())?;
    let value = parsed.value.unwrap_or(Value::Null);
    Ok(json!({
        "slos": value.get("slos").cloned().unwrap_or(Value::Null),
        "steps": value.get("steps").cloned().unwrap_or(Value::Null),
        "gating": value.get("gating").cloned().unwrap_or(Value::Null),
    }))
}

/// sha256 over the manifest's file digests, the thresholds in force, the SBOM digest, the
/// flags and the protected prompts (the raw-form files): one value that names a green
/// configuration, unchanged by reformatting and by anything that is not shipped.
pub fn green_fingerprint(
    files: &[LockedFile],
    thresholds: &Value,
    sbom_sha256: Option<&str>,
    flags_sha256: Option<&str>,
) -> Result<String, TrustError> {
    let digests: serde_json::Map<String, Value> = files
        .iter()
        .map(|f| (f.path.clone(), Value::String(f.sha256.clone())))
        .collect();
    let prompts: serde_json::Map<String, Value> = files
        .iter()
        .filter(|f| f.form == Form::Raw)
        .map(|f| (f.path.clone(), Value::String(f.sha256.clone())))
        .collect();
    let input = json!({
        "manifest": digests,
        "thresholds": thresholds,
        "sbom": sbom_sha256,
        "flags": flags_sha256,
        "prompts": prompts,
    });
    Ok(sha256_hex(&canonical::canonical_json(&input)?))
}

/// What preflight found, for the attestation and the report.
#[derive(Debug, Clone, Default)]
pub struct ReleaseFacts {
    pub green_fingerprint: Option<String>,
    /// Relative to the run directory.
    pub manifest: Option<String>,
    pub manifest_sha256: Option<String>,
    pub manifest_version: Option<String>,
}

/// Signs the decision into `RUN/attestation.dsse.json` (a SLSA verification summary) and
/// `RUN/test-result.dsse.json` (an in-toto test result) with the keyring's signing key. A run
/// without a signing key still finishes; its report says why there is no attestation.
#[allow(clippy::too_many_arguments)]
pub fn attest(
    spec: &Plan,
    spec_path: &Path,
    spec_sha256: &str,
    run_id: &str,
    run_dir: &Path,
    keyring_dir: &Path,
    decision: Decision,
    steps: &[StepReport],
    facts: ReleaseFacts,
) -> TrustInfo {
    let mut info = TrustInfo {
        green_fingerprint: facts.green_fingerprint.clone(),
        manifest: facts.manifest.clone(),
        manifest_version: facts.manifest_version.clone(),
        ..TrustInfo::default()
    };
    let spec_dir = Project::of(spec.trust.as_ref(), spec_path).spec_dir;
    let signed = (|| -> Result<(PathBuf, String), TrustError> {
        let keyring = Keyring::open(keyring_dir)?;
        let key = keyring.signing_key()?;
        let artifacts = spec
            .trust
            .as_ref()
            .map(|t| t.artifacts.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|a| {
                let path = gauntlet_spec::resolve_in(&spec_dir, &a)
                    .map_err(|e| TrustError::Input(e.to_string()))?;
                std::fs::read(&path)
                    .map(|bytes| (a.clone(), sha256_hex(&bytes)))
                    .map_err(|e| TrustError::io(&path, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let record = DecisionRecord {
            release_name: spec.service.name.clone(),
            release_version: spec.service.version.clone(),
            manifest_sha256: facts.manifest_sha256.clone(),
            artifacts,
            decision: decision.as_str().to_string(),
            green_fingerprint: facts.green_fingerprint.clone(),
            spec_sha256: spec_sha256.to_string(),
            run_id: run_id.to_string(),
            time: crate::now_rfc3339(),
            steps: steps
                .iter()
                .map(|s| {
                    (
                        s.name.clone(),
                        s.outcome.as_str().to_string(),
                        s.checks.len(),
                    )
                })
                .collect(),
            checks: steps
                .iter()
                .flat_map(|s| &s.checks)
                .map(|c| CheckRecord {
                    id: c.id.clone(),
                    outcome: c.outcome.as_str().to_string(),
                    deciding: !c.dry_run,
                })
                .collect(),
            gauntlet_version: env!("CARGO_PKG_VERSION").to_string(),
            evidence_uri: evidence_uri(spec, run_id, run_dir),
        };
        for (file, bytes) in [
            (ATTESTATION_FILE, record.sign(&key)?),
            (TEST_RESULT_FILE, record.sign_test_result(&key)?),
        ] {
            let path = run_dir.join(file);
            write_atomic(&path, &bytes).map_err(|e| TrustError::write(&path, e))?;
        }
        Ok((keyring.public_key_path(&key.id), key.id))
    })();
    match signed {
        Ok((public, key)) => {
            info.attestation = Some(ATTESTATION_FILE.to_string());
            info.test_result = Some(TEST_RESULT_FILE.to_string());
            info.public_key = Some(public.display().to_string());
            info.signing_key = Some(key);
        }
        Err(e) => info.note = Some(format!("not signed: {e}")),
    }
    info
}

/// Where a run's files resolve, ending in `/`: the spec's `trust.evidence_url` for this run
/// (`{run}` is its id; without it the id is appended), else the run directory as a `file:` URI.
pub fn evidence_uri(plan: &Plan, run_id: &str, run_dir: &Path) -> String {
    let published = plan.trust.as_ref().and_then(|t| t.evidence_url.as_deref());
    let uri = match published {
        Some(url) if url.contains("{run}") => url.replace("{run}", run_id),
        Some(url) => format!("{}/{run_id}", url.trim_end_matches('/')),
        None => file_uri(run_dir),
    };
    if uri.ends_with('/') {
        uri
    } else {
        format!("{uri}/")
    }
}

/// An absolute path as a `file:` URI (RFC 8089), each byte outside a path's safe set escaped.
pub fn file_uri(path: &Path) -> String {
    use percent_encoding::{AsciiSet, CONTROLS, percent_encode};
    const PATH: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'%')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'[')
        .add(b']')
        .add(b'^')
        .add(b'`')
        .add(b'{')
        .add(b'|')
        .add(b'}');
    use std::os::unix::ffi::OsStrExt;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    format!(
        "file://{}",
        percent_encode(absolute.as_os_str().as_bytes(), PATH)
    )
}
