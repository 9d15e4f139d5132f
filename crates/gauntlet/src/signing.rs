//! `gauntlet lock`, `verify`, `sbom` and `signoff`: signing and checking what ships.

use std::path::{Path, PathBuf};

use gauntlet_engine::trust::Project;
use gauntlet_report::exit;
use gauntlet_trust::lock::{self, Bump, Lock, Release};
use gauntlet_trust::{Keyring, TrustError, sbom};

use crate::CliError;
use crate::cli::{BumpArg, Global, TrustArgs};

impl From<TrustError> for CliError {
    fn from(e: TrustError) -> Self {
        match e {
            TrustError::Input(m) | TrustError::Key(m) => CliError::Usage(m),
            TrustError::Verify(m) => CliError::Refused(m),
            TrustError::Write(m) => CliError::Internal(anyhow::anyhow!(m)),
        }
    }
}

/// The plan of a whole run of the spec at `path` (every step it configures, checked).
pub(crate) fn load_spec(path: &Path) -> Result<gauntlet_spec::Plan, CliError> {
    let text = crate::read_spec(path)?;
    crate::plan(path, &text, &Default::default(), 1)
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
            let project = Project::of(spec.trust.as_ref(), spec_path);
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

pub fn verify_command(
    global: &Global,
    spec: Option<&Path>,
    lock_path: Option<&Path>,
    trust: &TrustArgs,
    semantic: bool,
    json: bool,
) -> Result<i32, CliError> {
    let project = spec
        .map(|path| load_spec(path).map(|s| Project::of(s.trust.as_ref(), path)))
        .transpose()?;
    // A run's release.lock records the project's files; --spec says where the project is.
    let lock_path = match (lock_path, &project) {
        (Some(lock), _) => lock.to_path_buf(),
        (None, Some(project)) => project.lock_path.clone(),
        (None, None) => PathBuf::from("gauntlet.lock"),
    };
    let protected = project.as_ref();
    let trust = crate::keys::trust_from(global, trust)?;
    let verification = lock::verify(
        &lock_path,
        protected.map(Project::lock_dir),
        &trust,
        semantic,
    )?;
    let unlocked = protected
        .map(|p| not_locked(p, &verification))
        .transpose()?
        .unwrap_or_default();
    let passed = verification.passed() && unlocked.is_empty();
    if json {
        let summary = verify_json(&lock_path, &verification, &unlocked, passed)?;
        say!("{summary}");
    } else {
        for line in verification.lines() {
            say!("{line}");
        }
        for rel in &unlocked {
            say!("  NOT LOCKED {rel}: protected by the spec but not in the signed lock");
        }
    }
    let relock = spec
        .map(|s| format!(" --spec {}", s.display()))
        .unwrap_or_default();
    if passed {
        note!("verify: OK — every protected file is exactly as signed");
    } else if verification.signature.is_err() {
        note!(
            "verify: FAILED — the lock's signature is refused, so no file was compared against it; if you changed the lock, re-sign it with `gauntlet lock{relock}`"
        );
    } else {
        let changed = verification.changed().count() + unlocked.len();
        note!(
            "verify: FAILED — {changed} file(s) differ from the signed lock; if the change is intended, re-sign with `gauntlet lock{relock}`"
        );
        let release_manifest = verification.lock.as_ref().is_some_and(|l| l.run.is_some());
        if release_manifest && protected.is_none() {
            note!(
                "note: {} is a run's release manifest: its files are the project's; give the project with --spec PROJECT/gauntlet.yaml",
                lock_path.display()
            );
        }
    }
    Ok(if passed { exit::GO } else { exit::NO_GO })
}

/// The files the spec protects that a lock whose signature holds does not cover.
fn not_locked(
    project: &Project,
    verification: &lock::Verification,
) -> Result<Vec<String>, CliError> {
    let (Some(locked), Ok(_)) = (&verification.lock, &verification.signature) else {
        return Ok(Vec::new());
    };
    let mut unlocked = Vec::new();
    for path in &project.protected {
        let rel = lock::relative(project.lock_dir(), path)?;
        if !locked.files.iter().any(|f| f.path == rel) {
            unlocked.push(rel);
        }
    }
    Ok(unlocked)
}

/// `verify --json`: the lock, its signer, and every file's status and changes.
fn verify_json(
    lock_path: &Path,
    verification: &lock::Verification,
    unlocked: &[String],
    passed: bool,
) -> Result<String, CliError> {
    let files: Vec<serde_json::Value> = verification.files.iter().map(file_json).collect();
    let summary = serde_json::json!({
        "lock": lock_path.display().to_string(),
        "passed": passed,
        "version": verification.lock.as_ref().map(|l| l.version.clone()),
        "signed_by": verification.signature.as_ref().ok().map(|v| v.key_id.clone()),
        "signature_error": verification.signature.as_ref().err(),
        "files": files,
        "compared": verification.signature.is_ok(),
        "not_locked": unlocked,
    });
    let bytes = gauntlet_trust::json_document(&summary, "verification")?;
    Ok(String::from_utf8_lossy(&bytes).trim_end().to_string())
}

fn file_json(f: &lock::FileCheck) -> serde_json::Value {
    let (status, changes) = match &f.outcome {
        lock::FileOutcome::Unchanged => ("unchanged", vec![]),
        lock::FileOutcome::Missing => ("missing", vec![]),
        lock::FileOutcome::Unreadable(e) => ("unreadable", vec![serde_json::json!({"error": e})]),
        lock::FileOutcome::ChangedBytes { .. } => ("changed", vec![]),
        lock::FileOutcome::Reformatted => ("reformatted", vec![]),
        lock::FileOutcome::Changed(c) => (
            "changed",
            c.iter()
                .map(|c| serde_json::json!({"path": c.path, "old": c.old, "new": c.new}))
                .collect(),
        ),
        lock::FileOutcome::DigestDiffers { locked, found } => (
            "changed",
            vec![serde_json::json!({"sha256": found, "signed": locked})],
        ),
    };
    serde_json::json!({"path": f.path, "status": status, "changes": changes})
}

/// `gauntlet sbom`: the application the SBOM describes comes from `--name`, else the spec's
/// service (`--spec`, or `gauntlet.yaml` here), else the project a lock file names, else the
/// current directory.
pub fn sbom_command(
    lockfiles: &[PathBuf],
    name: Option<&str>,
    version: Option<&str>,
    spec: Option<&Path>,
    out: Option<&Path>,
) -> Result<i32, CliError> {
    let here = Path::new("gauntlet.yaml");
    let spec_path = spec.or_else(|| here.is_file().then_some(here));
    let service = spec_path
        .map(load_spec)
        .transpose()?
        .map(|s| (s.service.name, s.service.version));
    let named = sbom::project_of(lockfiles);
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()));
    let name = name
        .map(str::to_string)
        .or_else(|| service.as_ref().map(|s| s.0.clone()))
        .or_else(|| named.as_ref().map(|n| n.0.clone()))
        .or(cwd)
        .unwrap_or_else(|| "app".into());
    let version = version
        .map(str::to_string)
        .or_else(|| service.map(|s| s.1))
        .or_else(|| named.and_then(|n| n.1));
    let snapshot = sbom::generate(lockfiles, &name, version.as_deref())?;
    for warning in &snapshot.warnings {
        note!("warning: {warning}");
    }
    match out {
        Some(path) => {
            gauntlet_report::write_atomic(path, &snapshot.bytes).map_err(|e| {
                CliError::Internal(anyhow::anyhow!("cannot write {}: {e}", path.display()))
            })?;
            note!(
                "wrote CycloneDX {} SBOM of {name} with {} components to {} (sha256 {})",
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

pub fn signoff_command(
    global: &Global,
    store: &gauntlet_store::Store,
    run: &str,
    role: Option<&str>,
    by: Option<String>,
    verify_only: bool,
    trust: &TrustArgs,
) -> Result<i32, CliError> {
    use gauntlet_review::signoff;
    let (summary, report) = crate::review::finished_run(store, run, "there is no report to sign")?;
    let run_dir = Path::new(&summary.run_dir);
    let spec = crate::review::run_spec(run_dir);
    if !verify_only && let Some(role) = role {
        let signing = Keyring::open(&crate::keys::keyring_dir(global)?)?.signing_key()?;
        let made = signoff::sign_as(run_dir, &summary.id, spec.as_ref(), role, by, &signing)?;
        say!(
            "signed off run {} as {role} ({}) with key {}: report sha256 {}",
            summary.id,
            made.by,
            signing.id,
            made.report_sha256
        );
    }
    // Roles with a key in the spec verify against it; the others against the keyring.
    let trust = crate::keys::optional_trust(global, trust)?;
    let checked = signoff::verify_all(
        run_dir,
        &summary.id,
        spec.as_ref().and_then(|s| s.signoffs.as_ref()),
        trust.as_ref(),
    );
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
