//! Step 1, preflight: what is about to be tested must be exactly what was signed.
//!
//! The protected files (the spec as this run executes it, threshold files, prompts,
//! profiles, a flags file) are checked against the project's signed lock; the feature flags
//! are snapshotted; the SBOM is taken; all of it is frozen into a release manifest signed
//! into the run directory; and the green fingerprint is computed over it.

use std::path::Path;

use gauntlet_net::Outgoing;
use gauntlet_report::{Check, Outcome, Severity, sha256_hex};
use gauntlet_spec::{FlagSource, PreflightPlan, SbomSource, StepMeta};
use gauntlet_trust::lock::{self, FileOutcome, FlagSnapshot, Lock, Release, SbomRecord};
use gauntlet_trust::{Keyring, Trust, canonical, sbom};

use super::{Step, StepFuture, StepOutput, severity};
use crate::context::RunContext;
use crate::trust::{MANIFEST_FILE, Project, ReleaseFacts, green_fingerprint, thresholds};

const STEP: &str = gauntlet_spec::StepName::Preflight.as_str();

pub struct Preflight(pub(crate) PreflightPlan);

impl Step for Preflight {
    fn step(&self) -> gauntlet_spec::StepName {
        gauntlet_spec::StepName::Preflight
    }
    fn meta(&self) -> &StepMeta {
        &self.0.meta
    }
    fn run<'a>(&'a self, ctx: &'a RunContext) -> StepFuture<'a> {
        Box::pin(run(ctx, severity(&self.0.meta)))
    }
}

/// Phases: the protected files are there; the lock is signed by a trusted key and nothing
/// changed since; the flags are frozen; the SBOM is taken; all of it goes into a release
/// manifest signed into the run directory; the green fingerprint names it.
async fn run(ctx: &RunContext, severity: Severity) -> StepOutput {
    let check = |name: &str| Check::new(STEP, name, severity);
    let project = Project::of(ctx.plan.trust.as_ref(), &ctx.spec_path);
    let keyring = Keyring::open(&ctx.keyring).map_err(|e| e.to_string());
    let mut checks = vec![protected_files(&project, check("protected-files"))];
    let (signature, changes, locked) = lock_checks(ctx, &project, keyring.clone(), &check);
    checks.extend([signature, changes]);
    let (flags_check, flags) =
        snapshot_flags(ctx, &project, locked.as_ref(), check("flags-snapshot")).await;
    checks.push(flags_check);
    let (sbom_check, sbom) = take_sbom(ctx, &project, check("sbom"));
    checks.push(sbom_check);
    let files = manifest_files(ctx, &project);
    let mut manifest = Lock::new(
        locked
            .as_ref()
            .map_or_else(|| "0.0.0".to_string(), |l| l.version.clone()),
        Some(Release {
            name: ctx.plan.service.name.clone(),
            version: ctx.plan.service.version.clone(),
        }),
        files,
    );
    manifest.flags = flags;
    manifest.sbom = sbom;
    manifest.run = ctx
        .recorder
        .run_dir()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let mut facts = ReleaseFacts::default();
    checks.push(sign_manifest(
        ctx,
        keyring,
        &manifest,
        &mut facts,
        check("release-manifest"),
    ));
    facts.green_fingerprint = fingerprint(ctx, &manifest);
    StepOutput {
        release: Some(facts),
        ..checks.into()
    }
}

/// Every protected file is there.
fn protected_files(project: &Project, check: Check) -> Check {
    let missing: Vec<String> = project
        .protected
        .iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        let why = format!("missing protected files: {}", missing.join(", "));
        return check.outcome(Outcome::Fail, why);
    }
    let count = project.protected.len();
    check
        .outcome(
            Outcome::Pass,
            format!("all {count} protected files are present"),
        )
        .measured(format!("{count} files"))
}

/// The lock is signed by a trusted key (`signed-lock`), and nothing changed since
/// (`unsigned-changes`); with the lock, when it verified.
fn lock_checks(
    ctx: &RunContext,
    project: &Project,
    keyring: Result<Keyring, String>,
    check: &dyn Fn(&str) -> Check,
) -> (Check, Check, Option<Lock>) {
    let lock_name = project.lock_path.display().to_string();
    let verification = keyring.and_then(|k| {
        lock::verify(&project.lock_path, None, &Trust::Keyring(k), false).map_err(|e| e.to_string())
    });
    let v = match verification {
        Ok(v) => v,
        Err(e) => {
            return (
                check("signed-lock").outcome(Outcome::Fail, e),
                check("unsigned-changes")
                    .outcome(Outcome::Inconclusive, "no lock to compare with".to_string()),
                None,
            );
        }
    };
    let signature = match &v.signature {
        Ok(who) => check("signed-lock")
            .outcome(
                Outcome::Pass,
                format!(
                    "{lock_name} (manifest {}) is signed by trusted key {}",
                    v.lock.as_ref().map_or("?", |l| l.version.as_str()),
                    who.key_id
                ),
            )
            .measured(who.key_id.clone()),
        Err(e) => check("signed-lock").outcome(Outcome::Fail, e.clone()),
    };
    let changes = unsigned_changes(ctx, project, &v, check("unsigned-changes"));
    (signature, changes, v.lock)
}

/// The protected files as the manifest holds them; the spec as this run executes it, which
/// is what was tested.
fn manifest_files(ctx: &RunContext, project: &Project) -> Vec<lock::LockedFile> {
    let spec_rel = relative_spec(project);
    project
        .protected
        .iter()
        .filter_map(|p| {
            if *p == project.spec_path {
                lock::lock_entry_bytes(&spec_rel.to_string_lossy(), p, ctx.spec_text.as_bytes())
                    .ok()
            } else {
                lock::lock_entry(project.lock_dir(), p).ok()
            }
        })
        .collect()
}

/// The release manifest, signed into the run directory and verified back.
fn sign_manifest(
    ctx: &RunContext,
    keyring: Result<Keyring, String>,
    manifest: &Lock,
    facts: &mut ReleaseFacts,
    check: Check,
) -> Check {
    let manifest_path = ctx.recorder.run_dir().join(MANIFEST_FILE);
    let signed = keyring.and_then(|k| {
        let key = k.signing_key().map_err(|e| e.to_string())?;
        manifest
            .write_signed(&manifest_path, &key)
            .map_err(|e| e.to_string())?;
        let bytes = std::fs::read(&manifest_path).map_err(|e| e.to_string())?;
        let sig = std::fs::read_to_string(lock::signature_path(&manifest_path))
            .map_err(|e| e.to_string())?;
        k.verify(&bytes, sig.as_bytes(), MANIFEST_FILE)
            .map_err(|e| e.to_string())?;
        Ok((key.id, bytes))
    });
    let (key, bytes) = match signed {
        Ok(signed) => signed,
        Err(e) => {
            let why = format!("the release manifest could not be signed: {e}");
            return check.outcome(Outcome::Fail, why);
        }
    };
    ctx.recorder.index(MANIFEST_FILE, &bytes);
    facts.manifest = Some(MANIFEST_FILE.to_string());
    facts.manifest_sha256 = Some(sha256_hex(&bytes));
    facts.manifest_version = Some(manifest.version.clone());
    check
        .outcome(
            Outcome::Pass,
            format!(
                "{} files, flags and SBOM frozen into {MANIFEST_FILE}, signed by key {key} and verified back",
                manifest.files.len()
            ),
        )
        .measured(key)
}

/// The green fingerprint names this configuration; it is a fact, not a check.
fn fingerprint(ctx: &RunContext, manifest: &Lock) -> Option<String> {
    let computed = thresholds(&ctx.spec_text).and_then(|t| {
        green_fingerprint(
            &manifest.files,
            &t,
            manifest.sbom.as_ref().map(|s| s.sha256.as_str()),
            manifest.flags.as_ref().map(|f| f.sha256.as_str()),
        )
    });
    let said = match &computed {
        Ok(fp) => format!("green fingerprint {fp}"),
        Err(e) => format!("not computed: {e}"),
    };
    ctx.recorder.event(Some(STEP), "green-fingerprint", said);
    computed.ok()
}

fn relative_spec(project: &Project) -> std::path::PathBuf {
    lock::relative(project.lock_dir(), &project.spec_path)
        .map(std::path::PathBuf::from)
        .unwrap_or_default()
}

/// Compares the protected files (the spec as executed) with the signed lock.
fn unsigned_changes(
    ctx: &RunContext,
    project: &Project,
    v: &lock::Verification,
    c: Check,
) -> Check {
    let Some(locked) = &v.lock else {
        return c.outcome(Outcome::Inconclusive, "the lock is unreadable");
    };
    let spec_rel = relative_spec(project);
    let mut findings = Vec::new();
    let mut compared = 0usize;
    for file in &v.files {
        let outcome = if Path::new(&file.path) == spec_rel.as_path() {
            locked
                .files
                .iter()
                .find(|e| e.path == file.path)
                .map(|entry| lock::compare(entry, &project.spec_path, ctx.spec_text.as_bytes()))
                .unwrap_or(FileOutcome::Missing)
        } else {
            file.outcome.clone()
        };
        compared += 1;
        match outcome {
            FileOutcome::Unchanged => {}
            FileOutcome::Changed(changes) if !changes.is_empty() => findings.extend(
                changes
                    .iter()
                    .take(10)
                    .map(|c| format!("{}: {c}", file.path)),
            ),
            FileOutcome::Changed(_) | FileOutcome::ChangedBytes { .. } => {
                findings.push(format!("{}: content changed", file.path))
            }
            FileOutcome::Reformatted => findings.push(format!(
                "{}: reformatted since it was signed (same content, different bytes)",
                file.path
            )),
            FileOutcome::Missing => findings.push(format!("{}: missing", file.path)),
            FileOutcome::DigestDiffers { found, .. } => {
                findings.push(format!("{}: content changed (sha256 {found})", file.path))
            }
            FileOutcome::Unreadable(e) => findings.push(format!("{}: unreadable: {e}", file.path)),
        }
    }
    // A file protected now but absent from the lock was never signed.
    for path in &project.protected {
        if let Ok(rel) = lock::relative(project.lock_dir(), path)
            && !locked.files.iter().any(|e| e.path == rel)
        {
            findings.push(format!("{rel}: protected but not in the signed lock"));
        }
    }
    if findings.is_empty() {
        c.outcome(
            Outcome::Pass,
            format!("all {compared} locked files match the signed lock byte for byte"),
        )
        .samples(compared as u64)
    } else {
        let n = findings.len();
        c.outcome(
            Outcome::Fail,
            format!(
                "{n} unsigned change(s) since the lock was signed: {}; re-sign with `gauntlet lock --spec` if intended",
                findings.join("; ")
            ),
        )
        .measured(format!("{n} changes"))
    }
}

async fn snapshot_flags(
    ctx: &RunContext,
    project: &Project,
    locked: Option<&Lock>,
    c: Check,
) -> (Check, Option<FlagSnapshot>) {
    let Some(source) = ctx.plan.trust.as_ref().and_then(|t| t.flags.as_ref()) else {
        return (
            c.outcome(
                Outcome::Inconclusive,
                "no flag source in `trust.flags`: the flags that ship are not frozen",
            ),
            None,
        );
    };
    let fetched = fetch_flags(ctx, project, source).await;
    let (source, values) = match fetched {
        Ok(v) => v,
        Err(e) => {
            return (
                c.outcome(Outcome::Inconclusive, format!("flags not snapshotted: {e}")),
                None,
            );
        }
    };
    // The digest that is frozen, and the file beside the manifest that `gauntlet verify`
    // checks against it: without either, the flags are not frozen.
    let frozen = canonical::canonical_json(&values)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            let pretty =
                gauntlet_trust::json_document(&values, "flags").map_err(|e| e.to_string())?;
            let path = ctx
                .recorder
                .evidence(STEP, "flags.json", &pretty)
                .map_err(|e| e.to_string())?;
            Ok((sha256_hex(&bytes), path))
        });
    let (sha, path) = match frozen {
        Ok((sha, path)) => (sha, Some(path)),
        Err(e) => {
            return (
                c.outcome(Outcome::Inconclusive, format!("flags not frozen: {e}")),
                None,
            );
        }
    };
    let count = values.as_object().map_or(0, |m| m.len());
    // Flags frozen into the signed lock must still be the flags in force.
    let drift: Vec<String> = locked
        .and_then(|l| l.flags.as_ref())
        .filter(|f| f.sha256 != sha)
        .map(|f| {
            canonical::diff(&f.values, &values)
                .iter()
                .map(ToString::to_string)
                .collect()
        })
        .unwrap_or_default();
    let snapshot = FlagSnapshot {
        source: source.clone(),
        sha256: sha.clone(),
        values,
        path,
    };
    let finish = if drift.is_empty() {
        c.outcome(
            Outcome::Pass,
            format!(
                "{count} flags from {source} frozen into the manifest (sha256 {})",
                &sha[..12]
            ),
        )
        .measured(format!("{count} flags"))
    } else {
        c.outcome(
            Outcome::Fail,
            format!("flags differ from the signed lock: {}", drift.join("; ")),
        )
    };
    (finish, Some(snapshot))
}

/// The flags in force and where they were read: the spec's flag file, or the candidate's
/// flag endpoint.
async fn fetch_flags(
    ctx: &RunContext,
    project: &Project,
    source: &FlagSource,
) -> Result<(String, serde_json::Value), String> {
    match source {
        FlagSource::File(file) => {
            // Resolved inside the spec's directory, symbolic links included.
            let path =
                gauntlet_spec::resolve_in(&project.spec_dir, file).map_err(|e| e.to_string())?;
            let raw = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let c = canonical::canonicalize(&path, &raw).map_err(|e| e.to_string())?;
            Ok((path.display().to_string(), c.value.unwrap_or_default()))
        }
        FlagSource::Endpoint(path) => {
            let out = Outgoing::get(&ctx.candidate, path);
            match ctx.client.send(&out).await {
                Ok(r) if r.is_success() => serde_json::from_slice(&r.body)
                    .map(|v| (format!("candidate {path}"), v))
                    .map_err(|e| format!("GET {path} did not answer JSON: {e}")),
                Ok(r) => Err(format!("GET {path} answered {}", r.status)),
                Err(e) => Err(format!("GET {path}: {e}")),
            }
        }
    }
}

fn take_sbom(ctx: &RunContext, project: &Project, c: Check) -> (Check, Option<SbomRecord>) {
    let source = ctx.plan.trust.as_ref().and_then(|t| t.sbom.as_ref());
    let taken = match source {
        None => {
            let found = sbom::discover(&project.spec_dir);
            if found.is_empty() {
                return (
                    c.outcome(
                        Outcome::Inconclusive,
                        "no SBOM: no `trust.sbom` and no lock file beside the spec",
                    ),
                    None,
                );
            }
            sbom::generate(
                &found,
                &ctx.plan.service.name,
                Some(&ctx.plan.service.version),
            )
            .map(|s| (s, format!("generated from {}", names(&found))))
        }
        Some(SbomSource::Lockfiles(files)) => {
            let paths = match files
                .iter()
                .map(|f| gauntlet_spec::resolve_in(&project.spec_dir, f))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(paths) => paths,
                Err(e) => return (c.outcome(Outcome::Fail, format!("SBOM: {e}")), None),
            };
            sbom::generate(
                &paths,
                &ctx.plan.service.name,
                Some(&ctx.plan.service.version),
            )
            .map(|s| (s, format!("generated from {}", names(&paths))))
        }
        Some(SbomSource::File(file)) => match gauntlet_spec::resolve_in(&project.spec_dir, file) {
            Ok(path) => sbom::load(&path).map(|s| (s, format!("{file}, validated"))),
            Err(e) => return (c.outcome(Outcome::Fail, format!("SBOM: {e}")), None),
        },
    };
    match taken {
        Ok((snap, how)) => {
            let path = match ctx.recorder.evidence(STEP, "sbom.cdx.json", &snap.bytes) {
                Ok(path) => path,
                Err(e) => {
                    return (
                        c.outcome(Outcome::Inconclusive, format!("SBOM not kept: {e}")),
                        None,
                    );
                }
            };
            let record = SbomRecord {
                path: path.clone(),
                sha256: snap.sha256.clone(),
                spec_version: snap.spec_version.clone(),
                components: snap.components,
            };
            let left_out = match snap.warnings.len() {
                0 => String::new(),
                n => format!("; {n} left out: {}", snap.warnings.join("; ")),
            };
            (
                c.outcome(
                    Outcome::Pass,
                    format!(
                        "CycloneDX {} SBOM with {} components ({how}), sha256 {}{left_out}",
                        snap.spec_version,
                        snap.components,
                        &snap.sha256[..12]
                    ),
                )
                .measured(format!("{} components", snap.components)),
                Some(record),
            )
        }
        Err(e) => (c.outcome(Outcome::Fail, format!("SBOM: {e}")), None),
    }
}

fn names(paths: &[std::path::PathBuf]) -> String {
    paths
        .iter()
        .map(|p| {
            p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
