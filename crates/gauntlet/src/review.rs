//! `gauntlet readiness RUN` and `gauntlet certificate RUN`: the PRR checklist scored from a
//! stored run's checks, and the readiness certificate (Markdown and HTML) a release manager
//! files with the release.

use std::path::{Path, PathBuf};

use gauntlet_report::exit;
use gauntlet_report::{ReadinessReport, Report, StepReport};
use gauntlet_store::Store;

use crate::CliError;
use crate::cli::{Global, TrustArgs};

struct Stored {
    report: Report,
    run_dir: PathBuf,
    spec: Option<gauntlet_spec::Plan>,
}

/// A finished run: its summary and its report; `missing` says what an unfinished run lacks.
pub(crate) fn finished_run(
    store: &Store,
    run: &str,
    missing: &str,
) -> Result<(gauntlet_store::RunSummary, Report), CliError> {
    let summary = store.find_run(run).map_err(CliError::from_store)?;
    let report = store
        .report(&summary.id)
        .map_err(anyhow::Error::from)?
        .ok_or_else(|| CliError::Usage(format!("run {} never finished: {missing}", summary.id)))?;
    Ok((summary, report))
}

/// The spec a run executed (its copy in the run directory), if it still loads.
pub(crate) fn run_spec(run_dir: &Path) -> Option<gauntlet_spec::Plan> {
    let text = crate::read_spec(&run_dir.join("spec.yaml")).ok()?;
    gauntlet_spec::plan_str("spec.yaml", &text, &Default::default(), 1).ok()
}

fn load(store: &Store, run: &str) -> Result<Stored, CliError> {
    let (summary, report) = finished_run(store, run, "it has no checks to score")?;
    let run_dir = PathBuf::from(&summary.run_dir);
    let spec = run_spec(&run_dir);
    Ok(Stored {
        report,
        run_dir,
        spec,
    })
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The checklist scored from the run's stored checks, with waivers judged as of now (a
/// waiver that has expired since the run shows as expired).
fn score(stored: &Stored) -> Result<(ReadinessReport, StepReport), CliError> {
    stored
        .spec
        .as_ref()
        .and_then(|spec| gauntlet_review::certificate::rescore(&stored.report, spec, now_secs()))
        .ok_or_else(|| {
            CliError::Usage(format!(
                "run {} has no readiness checklist: add a `readiness` section to its spec",
                stored.report.run_id
            ))
        })
}

pub fn readiness_command(global: &Global, run: &str, json: bool) -> Result<i32, CliError> {
    let store = crate::open_store(global)?;
    let stored = load(&store, run)?;
    let (report, step) = score(&stored)?;
    let failing = step.checks.iter().any(|c| c.outcome.as_str() == "fail");
    if json {
        say!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        say!(
            "readiness of run {} ({} {}): {:.1}% (minimum {})",
            stored.report.run_id,
            stored.report.service.name,
            stored.report.service.version,
            report.score * 100.0,
            report.minimum
        );
        for category in &report.categories {
            say!(
                "\n{} (weight {}): {:.1}%",
                category.name,
                category.weight,
                category.score * 100.0
            );
            for item in &category.items {
                let owner = item.owner.as_deref().unwrap_or("no one named");
                say!(
                    "  {:<8} {} — {} ({owner}, {})",
                    item.status,
                    item.name,
                    item.owner_role,
                    item.kind
                );
                say!("           {}", item.detail);
                if !item.evidence.is_empty() {
                    say!("           evidence: {}", item.evidence.join(", "));
                }
                if let Some(w) = &item.waiver {
                    say!(
                        "           waiver by {} until {}{}: {}",
                        w.by,
                        w.expires,
                        if w.expired { " (EXPIRED)" } else { "" },
                        w.reason
                    );
                }
            }
        }
        for check in &step.checks {
            say!(
                "\n{}: {} — {}",
                check.id,
                check.outcome.as_str(),
                check.reason
            );
        }
    }
    Ok(if failing { exit::NO_GO } else { exit::GO })
}

pub fn certificate_command(global: &Global, run: &str, trust: &TrustArgs) -> Result<i32, CliError> {
    let store = crate::open_store(global)?;
    let (md_path, html_path) = write_certificate(&store, global, run, trust)?;
    say!("{}", md_path.display());
    say!("{}", html_path.display());
    Ok(exit::GO)
}

/// Renders RUN_DIR/certificate.md and certificate.html; returns their paths.
pub fn write_certificate(
    store: &Store,
    global: &Global,
    run: &str,
    trust: &TrustArgs,
) -> Result<(PathBuf, PathBuf), CliError> {
    let stored = load(store, run)?;
    let trust = crate::keys::optional_trust(global, trust)?;
    let certificate = gauntlet_review::certificate::gather(
        &stored.report,
        &stored.run_dir,
        stored.spec.as_ref(),
        trust.as_ref(),
        now_secs(),
    );
    let md_path = stored.run_dir.join("certificate.md");
    let html_path = stored.run_dir.join("certificate.html");
    for (path, text) in [
        (&md_path, certificate.to_markdown()),
        (&html_path, certificate.to_html()),
    ] {
        gauntlet_report::write_atomic(path, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok((md_path, html_path))
}
