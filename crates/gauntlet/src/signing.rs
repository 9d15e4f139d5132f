//! `gauntlet lock`, `verify`, `keys`, `attest verify` and `sbom`: the trust commands.

use std::path::{Path, PathBuf};

use gauntlet_engine::exit;
use gauntlet_engine::trust::Project;
use gauntlet_trust::keyring::{KeyStatus, PASSWORD_ENV};
use gauntlet_trust::lock::{self, Bump, Lock, Release};
use gauntlet_trust::{Keyring, Trust, TrustError, attest, sbom};

use crate::CliError;
use crate::cli::{AttestCommand, BumpArg, KeysCommand};

impl From<TrustError> for CliError {
    fn from(e: TrustError) -> Self {
        match e {
            TrustError::Input(m) | TrustError::Key(m) => CliError::Usage(m),
            TrustError::Verify(m) => CliError::Other(anyhow::anyhow!(m)),
        }
    }
}

fn load_spec(path: &Path) -> Result<gauntlet_spec::Spec, CliError> {
    let text = crate::read_spec(path)?;
    gauntlet_spec::load_str(&path.display().to_string(), &text).map_err(CliError::Spec)
}

/// What `lock` covers: the spec's project, or files given by hand.
fn target(
    spec: Option<&Path>,
    files: &[PathBuf],
    lock: Option<&Path>,
) -> Result<(PathBuf, Vec<PathBuf>, Option<Release>), CliError> {
    match spec {
        Some(spec_path) => {
            let spec = load_spec(spec_path)?;
            if !files.is_empty() {
                return Err(CliError::Usage(
                    "give either --spec or files, not both: the spec names its protected files"
                        .into(),
                ));
            }
            let project = Project::of(&spec, spec_path);
            Ok((
                project.lock_path,
                project.protected,
                Some(Release {
                    name: spec.service.name.clone(),
                    version: spec.service.version.clone(),
                }),
            ))
        }
        None if files.is_empty() => Err(CliError::Usage(
            "nothing to lock: give --spec gauntlet.yaml or the files to lock".into(),
        )),
        None => Ok((
            lock.map_or_else(|| PathBuf::from("gauntlet.lock"), Path::to_path_buf),
            files.to_vec(),
            None,
        )),
    }
}

/// Locks and signs; returns (lock path, version, key id, files).
pub fn lock_files(
    keyring: &Path,
    spec: Option<&Path>,
    files: &[PathBuf],
    lock_path: Option<&Path>,
    bump: Option<BumpArg>,
) -> Result<(PathBuf, String, String, usize), CliError> {
    let (lock_path, files, release) = target(spec, files, lock_path)?;
    let base = lock_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    // Read everything (and fail on anything missing or malformed) before writing anything.
    let entries = files
        .iter()
        .map(|f| lock::lock_entry(&base, f))
        .collect::<Result<Vec<_>, _>>()?;
    let key = Keyring::open(keyring)?.signing_key()?;
    let previous = std::fs::read(&lock_path)
        .ok()
        .and_then(|b| Lock::parse(&b, "the previous lock").ok());
    let changed = previous.as_ref().is_none_or(|p| {
        p.files
            .iter()
            .map(|f| (&f.path, &f.raw_sha256))
            .ne(entries.iter().map(|f| (&f.path, &f.raw_sha256)))
    });
    let version = match (&previous, bump) {
        (None, _) => "1.0.0".to_string(),
        (Some(p), Some(b)) => lock::bump_version(Some(&p.version), to_bump(b))?,
        (Some(p), None) if changed => lock::bump_version(Some(&p.version), Bump::Patch)?,
        (Some(p), None) => p.version.clone(),
    };
    let count = entries.len();
    Lock::new(version.clone(), release, entries).write_signed(&lock_path, &key)?;
    Ok((lock_path, version, key.id, count))
}

fn to_bump(b: BumpArg) -> Bump {
    match b {
        BumpArg::Major => Bump::Major,
        BumpArg::Minor => Bump::Minor,
        BumpArg::Patch => Bump::Patch,
    }
}

pub fn lock_command(
    keyring: &Path,
    spec: Option<&Path>,
    files: &[PathBuf],
    lock_path: Option<&Path>,
    bump: Option<BumpArg>,
) -> Result<i32, CliError> {
    let (path, version, key, count) = lock_files(keyring, spec, files, lock_path, bump)?;
    say!(
        "locked {count} file(s) into {} (manifest {version}), signed by key {key}; signature: {}",
        path.display(),
        lock::signature_path(&path).display()
    );
    Ok(exit::GO)
}

fn trust_from(keyring: &Path, key: Option<&str>) -> Result<Trust, CliError> {
    match key {
        Some(key) => Ok(Trust::key_from(key)?),
        None => {
            let ring = Keyring::open(keyring)?;
            if ring.keys.is_empty() {
                return Err(CliError::Usage(format!(
                    "the keyring in {} has no keys: give --keyring DIR or --key PUB",
                    keyring.display()
                )));
            }
            Ok(Trust::Keyring(ring))
        }
    }
}

pub fn verify_command(
    keyring: &Path,
    spec: Option<&Path>,
    lock_path: Option<&Path>,
    key: Option<&str>,
    semantic: bool,
    json: bool,
) -> Result<i32, CliError> {
    let (lock_path, protected) = match spec {
        Some(spec_path) => {
            let project = Project::of(&load_spec(spec_path)?, spec_path);
            (project.lock_path.clone(), Some(project))
        }
        None => (
            lock_path.map_or_else(|| PathBuf::from("gauntlet.lock"), Path::to_path_buf),
            None,
        ),
    };
    let trust = trust_from(keyring, key)?;
    let verification = lock::verify(&lock_path, &trust, semantic)?;
    let mut lines = verification.lines();
    let mut unlocked = Vec::new();
    if let (Some(project), Some(locked)) = (&protected, &verification.lock) {
        for path in &project.protected {
            let rel = lock::relative(project.lock_dir(), path)?;
            if !locked.files.iter().any(|f| f.path == rel) {
                lines.push(format!(
                    "  NOT LOCKED {rel}: protected by the spec but not in the signed lock"
                ));
                unlocked.push(rel);
            }
        }
    }
    let passed = verification.passed() && unlocked.is_empty();
    if json {
        let files: Vec<serde_json::Value> = verification
            .files
            .iter()
            .map(|f| {
                let (status, changes) = match &f.outcome {
                    lock::FileOutcome::Unchanged => ("unchanged", vec![]),
                    lock::FileOutcome::Missing => ("missing", vec![]),
                    lock::FileOutcome::Unreadable(e) => {
                        ("unreadable", vec![serde_json::json!({"error": e})])
                    }
                    lock::FileOutcome::ChangedBytes { .. } => ("changed", vec![]),
                    lock::FileOutcome::Reformatted => ("reformatted", vec![]),
                    lock::FileOutcome::Changed(c) => (
                        "changed",
                        c.iter()
                            .map(
                                |c| serde_json::json!({"path": c.path, "old": c.old, "new": c.new}),
                            )
                            .collect(),
                    ),
                };
                serde_json::json!({"path": f.path, "status": status, "changes": changes})
            })
            .collect();
        say!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "lock": lock_path.display().to_string(),
                "passed": passed,
                "version": verification.lock.as_ref().map(|l| l.version.clone()),
                "signed_by": verification.signature.as_ref().ok().map(|v| v.key_id.clone()),
                "signature_error": verification.signature.as_ref().err(),
                "files": files,
                "not_locked": unlocked,
            }))
            .unwrap_or_default()
        );
    } else {
        for line in &lines {
            say!("{line}");
        }
    }
    if passed {
        eprintln!("verify: OK — every protected file is exactly as signed");
        Ok(exit::GO)
    } else {
        let changed = verification.changed().count() + unlocked.len();
        eprintln!(
            "verify: FAILED — {}{changed} file(s) differ from the signed lock; if the change is intended, re-sign with `gauntlet lock{}`",
            if verification.signature.is_err() {
                "the lock's signature is refused; "
            } else {
                ""
            },
            spec.map(|s| format!(" --spec {}", s.display()))
                .unwrap_or_default()
        );
        Ok(exit::NO_GO)
    }
}

fn password(encrypt: bool) -> Option<String> {
    // `None` with `encrypt` makes minisign ask on the terminal.
    encrypt.then(|| std::env::var(PASSWORD_ENV).ok()).flatten()
}

pub fn keys_command(keyring: &Path, command: KeysCommand) -> Result<i32, CliError> {
    let mut ring = Keyring::open(keyring)?;
    let encrypted = |encrypt: bool| -> Result<Option<String>, CliError> {
        match (encrypt, password(encrypt)) {
            (false, _) => Ok(None),
            (true, Some(p)) => Ok(Some(p)),
            (true, None) => minisign_prompt(),
        }
    };
    match command {
        KeysCommand::Generate { encrypt } => {
            let key = ring.generate(encrypted(encrypt)?)?;
            say!(
                "generated key {}: public {}, secret {} (mode 0600)",
                key.id,
                ring.public_key_path(&key.id).display(),
                ring.secret_key_path(&key.id).display()
            );
        }
        KeysCommand::List { json } => {
            if json {
                say!(
                    "{}",
                    serde_json::to_string_pretty(&ring.keys).unwrap_or_default()
                );
            } else if ring.keys.is_empty() {
                say!("no keys in {}", keyring.display());
            } else {
                for k in &ring.keys {
                    let status = match k.status {
                        KeyStatus::Active => "active".to_string(),
                        KeyStatus::Retired => format!(
                            "retired, verifies until {}",
                            k.valid_until.as_deref().unwrap_or("?")
                        ),
                        KeyStatus::Revoked => format!(
                            "REVOKED {}{}",
                            k.revoked.as_deref().unwrap_or(""),
                            k.reason
                                .as_deref()
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default()
                        ),
                    };
                    let secret = if ring.secret_key_path(&k.id).exists() {
                        "secret here"
                    } else {
                        "public only"
                    };
                    say!(
                        "{}  {status}  created {}  {secret}  {}\n    public key {}",
                        k.id,
                        k.created,
                        ring.public_key_path(&k.id).display(),
                        k.public
                    );
                }
            }
        }
        KeysCommand::Rotate { grace, encrypt } => {
            let grace = humantime::parse_duration(&grace)
                .map_err(|e| CliError::Usage(format!("--grace `{grace}`: {e} (e.g. 7d, 12h)")))?;
            let (new, old) = ring.rotate(encrypted(encrypt)?, grace)?;
            say!(
                "new active key {} ({})",
                new.id,
                ring.public_key_path(&new.id).display()
            );
            if let Some(old) = old {
                say!(
                    "key {} retired: it verifies until {}; revoke it with `gauntlet keys revoke {}`",
                    old.id,
                    old.valid_until.as_deref().unwrap_or("?"),
                    old.id
                );
            }
        }
        KeysCommand::Revoke { id, reason } => {
            let key = ring.revoke(&id, reason)?;
            say!(
                "key {} revoked: nothing it signed verifies any more; its secret key is deleted",
                key.id
            );
        }
    }
    Ok(exit::GO)
}

fn minisign_prompt() -> Result<Option<String>, CliError> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        Ok(None)
    } else {
        Err(CliError::Usage(format!(
            "--encrypt needs a password: set {PASSWORD_ENV} or run on a terminal"
        )))
    }
}

pub fn attest_command(keyring: &Path, command: AttestCommand) -> Result<i32, CliError> {
    let (file, key, artifact, json) = match command {
        AttestCommand::Verify {
            file,
            key,
            artifact,
            json,
        } => (file, key, artifact, json),
        AttestCommand::Item { item, spec } => return attest_item(keyring, &item, &spec),
    };
    let bytes =
        std::fs::read(&file).map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let trust = trust_from(keyring, key.as_deref())?;
    let what = file.display().to_string();
    let attested = match attest::verify(&bytes, &trust, &what) {
        Ok(a) => a,
        Err(TrustError::Verify(m)) => {
            eprintln!("REFUSED: {m}");
            return Ok(exit::NO_GO);
        }
        Err(e) => return Err(e.into()),
    };
    let mut missing = Vec::new();
    for path in &artifact {
        let sha = gauntlet_report::sha256_hex(
            &std::fs::read(path)
                .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?,
        );
        if !attested
            .statement
            .subject
            .iter()
            .any(|s| s.digest.get("sha256") == Some(&sha))
        {
            missing.push(format!("{} (sha256 {sha})", path.display()));
        }
    }
    let predicate = &attested.statement.predicate;
    if json {
        say!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "verified": true,
                "key": attested.key_id,
                "decision": attested.decision(),
                "statement": attested.statement,
                "artifacts_not_in_subject": missing,
            }))
            .unwrap_or_default()
        );
    } else {
        say!("verified: signed by key {}", attested.key_id);
        say!("decision: {}", attested.decision());
        say!(
            "release:  {}",
            predicate["resourceUri"].as_str().unwrap_or("?")
        );
        say!(
            "green fingerprint: {}",
            predicate["gauntlet"]["greenFingerprint"]
                .as_str()
                .unwrap_or("none")
        );
        say!(
            "spec sha256: {}",
            predicate["policy"]["digest"]["sha256"]
                .as_str()
                .unwrap_or("?")
        );
        say!(
            "run: {}  at {}",
            predicate["gauntlet"]["run"].as_str().unwrap_or("?"),
            predicate["timeVerified"].as_str().unwrap_or("?")
        );
        for m in &missing {
            say!("NOT ATTESTED: {m}");
        }
    }
    let code = if !missing.is_empty() {
        exit::NO_GO
    } else {
        match attested.decision() {
            "GO" | "CONDITIONAL" => exit::GO,
            "INCONCLUSIVE" => exit::INCONCLUSIVE,
            _ => exit::NO_GO,
        }
    };
    Ok(code)
}

pub fn sbom_command(
    lockfiles: &[PathBuf],
    name: &str,
    version: &str,
    out: Option<&Path>,
) -> Result<i32, CliError> {
    let snapshot = sbom::generate(lockfiles, name, version)?;
    match out {
        Some(path) => {
            gauntlet_report::write_atomic(path, &snapshot.bytes)
                .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
            eprintln!(
                "wrote CycloneDX {} SBOM with {} components to {} (sha256 {})",
                snapshot.spec_version,
                snapshot.components,
                path.display(),
                snapshot.sha256
            );
        }
        None => say!("{}", String::from_utf8_lossy(&snapshot.bytes)),
    }
    Ok(exit::GO)
}

/// `gauntlet attest item`: signs one attested item's claim with the keyring's key.
fn attest_item(keyring: &Path, name: &str, spec_path: &Path) -> Result<i32, CliError> {
    use gauntlet_engine::vouch;
    let spec = load_spec(spec_path)?;
    let item = vouch::find(&spec, name).map_err(CliError::Usage)?;
    let signing = Keyring::open(keyring)?.signing_key()?;
    let dir = spec_path.parent().unwrap_or(Path::new("."));
    let path = vouch::sign(&spec, dir, item, &signing)?;
    let status = item
        .attested
        .as_ref()
        .map_or("", |a| vouch::status_word(a.status));
    say!(
        "signed the attestation of `{name}` ({status}, owner {}) with key {}: {}",
        item.owner.value,
        signing.id,
        path.display()
    );
    if spec
        .signoffs
        .as_ref()
        .and_then(|s| s.key_of(&item.owner.value))
        .is_none()
    {
        eprintln!(
            "note: the spec names no key for role `{}` (`signoffs.keys`), so runs do not ask for this signature",
            item.owner.value
        );
    }
    Ok(exit::GO)
}

pub fn signoff_command(
    keyring: &Path,
    store: &gauntlet_store::Store,
    run: &str,
    role: Option<&str>,
    by: Option<String>,
    verify_only: bool,
    key: Option<&str>,
) -> Result<i32, CliError> {
    use gauntlet_engine::signoff;
    let (summary, report) = crate::review::finished_run(store, run, "there is no report to sign")?;
    let run_dir = Path::new(&summary.run_dir);
    let spec = crate::review::run_spec(run_dir);
    if !verify_only && let Some(role) = role {
        let owners = spec
            .as_ref()
            .map(|s| s.service.owners.clone())
            .unwrap_or_default();
        if !owners.contains_key(role) {
            return Err(CliError::Usage(format!(
                "role `{role}` is not in the run's `service.owners` ({})",
                owners.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let by = by
            .or_else(|| owners.get(role).cloned())
            .unwrap_or_else(|| role.to_string());
        let signing = Keyring::open(keyring)?.signing_key()?;
        match spec.as_ref().and_then(|s| signoff::role_key(s, role)) {
            Some(Ok(gauntlet_trust::Trust::Key { id, .. })) if id != signing.id => {
                return Err(CliError::Usage(format!(
                    "the run's spec gives role `{role}` key {id} (`signoffs.keys`); this signing key is {}: sign with the {role} keyring (--keyring) or GAUNTLET_SIGNING_KEY",
                    signing.id
                )));
            }
            Some(Err(e)) => return Err(CliError::Usage(e)),
            _ => {}
        }
        let made = signoff::sign(run_dir, &summary.id, role, &by, &signing)?;
        say!(
            "signed off run {} as {role} ({by}) with key {}: report sha256 {}",
            summary.id,
            signing.id,
            made.report_sha256
        );
    }
    // Roles with a key in the spec verify against it; the others against the keyring.
    let trust = match key {
        Some(_) => Some(trust_from(keyring, key)?),
        None => trust_from(keyring, None).ok(),
    };
    let checked = signoff::verify_all(run_dir, &summary.id, spec.as_ref(), trust.as_ref());
    let mut valid = Vec::new();
    let mut refused = 0;
    for (role, result) in &checked {
        match result {
            Ok((s, key)) => {
                say!("  ok       {role}: {} at {} (key {key})", s.by, s.time);
                valid.push(role.clone());
            }
            Err(e) => {
                say!("  REFUSED  {role}: {e}");
                refused += 1;
            }
        }
    }
    let (decision, remaining) = signoff::effective(&report, &valid);
    say!(
        "decision: {decision} (recorded at the end of the run: {})",
        report.decision
    );
    for c in &remaining {
        say!("  condition: {} — {}", c.check, c.reason);
    }
    Ok(if refused > 0 { exit::NO_GO } else { exit::GO })
}
