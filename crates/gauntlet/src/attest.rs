//! `gauntlet attest verify` and `gauntlet attest item`: checking a signed decision, and
//! vouching for an attested checklist item.
//!
//! A signature alone proves only that *some* run of a trusted key decided GO; an attestation
//! copied from another run verifies just as well. So `attest verify` must bind it to what is
//! about to ship: each `--artifact` must be a subject, and the release subject must be the
//! signed release manifest given (or found beside the attestation). Unbound, it is refused.

use std::path::{Path, PathBuf};

use gauntlet_report::exit;
use gauntlet_trust::{Keyring, attest};

use crate::CliError;
use crate::cli::{AttestCommand, Global};

pub fn attest_command(global: &Global, command: AttestCommand) -> Result<i32, CliError> {
    match command {
        AttestCommand::Verify {
            file,
            trust,
            artifact,
            manifest,
            strict,
            json,
        } => {
            let trust = crate::keys::trust_from(global, &trust)?;
            verify(&file, &trust, &artifact, manifest.as_deref(), strict, json)
        }
        AttestCommand::Item { item, spec } => attest_item(global, &item, &spec),
    }
}

/// One thing the attestation was (or was not) tied to.
struct Binding {
    bound: bool,
    line: String,
}

fn sha256_of(path: &Path) -> Result<String, CliError> {
    std::fs::read(path)
        .map(|bytes| gauntlet_report::sha256_hex(&bytes))
        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
}

/// What the attestation is bound to: each artifact, and the release manifest (given, or the
/// `release.lock` beside the attestation).
fn bindings(
    file: &Path,
    attested: &attest::Attested,
    artifacts: &[PathBuf],
    manifest: Option<&Path>,
) -> Result<Vec<Binding>, CliError> {
    let mut out = Vec::new();
    for path in artifacts {
        let sha = sha256_of(path)?;
        out.push(match attested.has_subject(&sha) {
            true => Binding {
                bound: true,
                line: format!(
                    "BOUND      artifact {} (sha256 {sha}) is a subject",
                    path.display()
                ),
            },
            false => Binding {
                bound: false,
                line: format!(
                    "NOT BOUND  artifact {} (sha256 {sha}) is not among the subjects",
                    path.display()
                ),
            },
        });
    }
    let beside = file
        .parent()
        .map(|d| d.join(gauntlet_engine::trust::MANIFEST_FILE))
        .filter(|p| p.is_file());
    let (manifest, how) = match (manifest, &beside) {
        (Some(m), _) => (Some(m.to_path_buf()), "given"),
        (None, Some(b)) => (Some(b.clone()), "beside the attestation"),
        (None, None) => (None, ""),
    };
    match manifest {
        Some(path) => {
            let sha = sha256_of(&path)?;
            let bound = attested.release_digest() == Some(sha.as_str());
            out.push(Binding {
                bound,
                line: match bound {
                    true => format!("BOUND      release manifest {} ({how}, sha256 {sha}) is the release subject", path.display()),
                    false => format!(
                        "NOT BOUND  release manifest {} ({how}, sha256 {sha}) is not the release subject (sha256 {}): the attestation is from another run or release",
                        path.display(),
                        attested.release_digest().unwrap_or("none")
                    ),
                },
            });
        }
        None if artifacts.is_empty() => out.push(Binding {
            bound: false,
            line: "NOT BOUND  nothing to bind to: no --artifact, no --manifest, and no release.lock beside the attestation, so it could be any run's".into(),
        }),
        None => out.push(Binding {
            bound: true,
            line: "note       release manifest not checked (none given, none beside the attestation)".into(),
        }),
    }
    Ok(out)
}

fn verify(
    file: &Path,
    trust: &gauntlet_trust::Trust,
    artifacts: &[PathBuf],
    manifest: Option<&Path>,
    strict: bool,
    json: bool,
) -> Result<i32, CliError> {
    let bytes =
        std::fs::read(file).map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let attested = match attest::verify(&bytes, trust, &file.display().to_string()) {
        Ok(a) => a,
        Err(gauntlet_trust::TrustError::Verify(m)) => {
            if json {
                say!("{}", serde_json::json!({"verified": false, "refused": m}));
            }
            note!("REFUSED: {m}");
            return Ok(exit::NO_GO);
        }
        Err(e) => return Err(e.into()),
    };
    let bindings = bindings(file, &attested, artifacts, manifest)?;
    let bound = bindings.iter().all(|b| b.bound);
    let decision = attested.decision().to_string();
    let extension = attested.extension();
    if json {
        say!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "verified": true,
                "bound": bound,
                "bindings": bindings.iter().map(|b| b.line.clone()).collect::<Vec<_>>(),
                "key": attested.key_id,
                "decision": decision,
                "statement": attested.statement,
            }))
            .unwrap_or_default()
        );
    } else {
        let predicate = &attested.statement.predicate;
        say!("verified: signed by key {}", attested.key_id);
        say!("decision: {decision}");
        say!("predicate: {}", attested.statement.predicate_type);
        say!(
            "release:  {}",
            attested
                .statement
                .subject
                .first()
                .map_or("?", |s| s.name.as_str())
        );
        say!(
            "green fingerprint: {}",
            extension["greenFingerprint"].as_str().unwrap_or("none")
        );
        say!(
            "spec sha256: {}",
            extension["specDigest"]["sha256"].as_str().unwrap_or("?")
        );
        match predicate["timeVerified"].as_str() {
            Some(at) => say!("run: {}  at {at}", extension["run"].as_str().unwrap_or("?")),
            None => say!("run: {}", extension["run"].as_str().unwrap_or("?")),
        }
        for b in &bindings {
            say!("{}", b.line);
        }
    }
    if !bound {
        note!("REFUSED: the attestation is not bound to what you gave (see NOT BOUND above)");
        return Ok(exit::NO_GO);
    }
    Ok(match decision.as_str() {
        "GO" => exit::GO,
        "CONDITIONAL" if !strict => exit::GO,
        "INCONCLUSIVE" => exit::INCONCLUSIVE,
        _ => exit::NO_GO,
    })
}

/// `gauntlet attest item`: signs one attested item's claim with the keyring's key.
fn attest_item(global: &Global, name: &str, spec_path: &Path) -> Result<i32, CliError> {
    use gauntlet_review::vouch;
    let spec = crate::signing::load_spec(spec_path)?;
    let item = vouch::find(&spec, name)?;
    let signing = Keyring::open(&crate::keys::keyring_dir(global)?)?.signing_key()?;
    let dir = spec_path.parent().unwrap_or(Path::new("."));
    let path = vouch::sign(&spec, dir, item, &signing)?;
    let status = item
        .attested
        .as_ref()
        .map_or("", |a| vouch::status_word(a.status));
    say!(
        "signed the attestation of `{name}` ({status}, owner {}) with key {}: {}",
        item.owner,
        signing.id,
        path.display()
    );
    if spec
        .signoffs
        .as_ref()
        .and_then(|s| s.key_of(&item.owner))
        .is_none()
    {
        note!(
            "note: the spec names no key for role `{}` (`signoffs.keys`), so runs do not ask for this signature",
            item.owner
        );
    }
    Ok(exit::GO)
}
