//! The people in an incident timeline: a page acknowledged (MTTA, from the alert reaching
//! gauntlet to its acknowledgement) and the service restored (MTTR, from the fault going in
//! to the steady state holding again), each held to the spec's `incident:` bounds.
//!
//! A page is acknowledged by `gauntlet ack RUN DRILL` (or the server's API), which writes
//! `RUN_DIR/acks/DRILL` saying who and when; a run announces what it waits for in
//! `RUN_DIR/acks/waiting/DRILL.json`. In an unattended run the spec's responder acknowledges
//! after `ack_after`, and the report says it was the responder.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use gauntlet_report::{Check, Outcome, Severity};

use crate::context::{RunContext, file_safe};

const LOOK_EVERY: Duration = Duration::from_millis(100);

/// Where acknowledgements are written and awaited.
pub fn ack_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("acks")
}

/// Records `by`'s acknowledgement of `drill`'s page in a running run's directory (the CLI's
/// `gauntlet ack` and the server's API both write it); whether the run was already waiting.
pub fn record_ack(run_dir: &Path, drill: &str, by: &str) -> std::io::Result<bool> {
    let dir = ack_dir(run_dir);
    let slug = file_safe(drill);
    let waiting = dir.join("waiting").join(format!("{slug}.json")).exists();
    let said = serde_json::json!({"by": by, "at": crate::now_rfc3339()});
    std::fs::create_dir_all(&dir)?;
    gauntlet_report::write_atomic(&dir.join(slug), said.to_string().as_bytes())?;
    Ok(waiting)
}

/// Whether a run's spec (its copy in the run directory) has something whose page can be
/// acknowledged by that name: a drill, or `rollback-rehearsal`.
pub fn pages(run_dir: &Path, name: &str) -> bool {
    name == gauntlet_spec::StepName::RollbackRehearsal.as_str()
        || std::fs::read_to_string(run_dir.join("spec.yaml"))
            .ok()
            .and_then(|text| gauntlet_spec::load_str("spec.yaml", &text).ok())
            .and_then(|spec| spec.steps.chaos)
            .is_some_and(|chaos| chaos.drills.value.iter().any(|d| d.name == name))
}

/// Who acknowledged `drill`'s page and how long after it reached gauntlet (`paged`), or why
/// nobody did within the MTTA bound.
pub async fn acknowledged(
    ctx: &RunContext,
    drill: &str,
    paged: tokio::time::Instant,
) -> Result<(Duration, String), String> {
    let incident = &ctx.plan.incident;
    let dir = ack_dir(ctx.recorder.run_dir());
    let slug = file_safe(drill);
    let waiting = dir.join("waiting").join(format!("{slug}.json"));
    let announce = serde_json::json!({"drill": drill, "since": crate::now_rfc3339()});
    std::fs::create_dir_all(dir.join("waiting")).map_err(|e| e.to_string())?;
    gauntlet_report::write_atomic(&waiting, announce.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    let paged_wall = SystemTime::now() - paged.elapsed();
    let deadline = paged + incident.mtta.as_std();
    let responder = incident
        .responder
        .as_ref()
        .map(|r| (paged + r.ack_after.as_std(), r.ack_after.as_std()));
    let result = loop {
        if let Ok(said) = std::fs::read(dir.join(&slug)) {
            break Ok(read_ack(&said, paged_wall));
        }
        let now = tokio::time::Instant::now();
        if let Some((at, after)) = responder
            && now >= at
        {
            break Ok((after, "the configured responder (unattended run)".into()));
        }
        if now >= deadline {
            break Err(format!(
                "nobody acknowledged the page within {} (`gauntlet ack RUN {drill}`)",
                incident.mtta
            ));
        }
        tokio::time::sleep(LOOK_EVERY).await;
    };
    let _ = std::fs::remove_file(&waiting);
    result
}

/// An acknowledgement's `by` and its delay after the page (`at` on the wall clock; one made
/// before the page reached gauntlet counts as immediate).
fn read_ack(said: &[u8], paged_wall: SystemTime) -> (Duration, String) {
    let said: serde_json::Value = serde_json::from_slice(said).unwrap_or_default();
    let by = said["by"].as_str().unwrap_or("an operator").to_string();
    let at = said["at"]
        .as_str()
        .and_then(|t| humantime::parse_rfc3339(t).ok())
        .unwrap_or_else(SystemTime::now);
    (at.duration_since(paged_wall).unwrap_or_default(), by)
}

/// The MTTA check of `what` (`DRILL: ` or empty), with its measurement.
pub fn mtta_check(
    ctx: &RunContext,
    (step, what): (&str, &str),
    severity: Severity,
    acked: &Result<(Duration, String), String>,
) -> Check {
    let bound = ctx.plan.incident.mtta;
    let check = Check::new(step, &format!("{what}MTTA"), severity)
        .threshold(format!("a page acknowledged within {bound}"));
    match acked {
        Ok((after, by)) => check
            .measured(format!("{:.2}s", after.as_secs_f64()))
            .outcome(
                match *after <= bound.as_std() {
                    true => Outcome::Pass,
                    false => Outcome::Fail,
                },
                format!(
                    "acknowledged by {by} {:.2}s after the page",
                    after.as_secs_f64()
                ),
            ),
        Err(why) => check.outcome(Outcome::Fail, why.clone()),
    }
}

/// The MTTR check of `what` when something broke: restored within the bound, or not at all.
pub fn mttr_check(
    ctx: &RunContext,
    (step, what): (&str, &str),
    severity: Severity,
    restored_after: Option<Duration>,
) -> Check {
    let bound = ctx.plan.incident.mttr;
    let check = Check::new(step, &format!("{what}MTTR"), severity)
        .threshold(format!("restored within {bound} of the fault"));
    match restored_after {
        Some(after) if after <= bound.as_std() => check
            .measured(format!("{:.2}s", after.as_secs_f64()))
            .outcome(
                Outcome::Pass,
                format!("restored {:.2}s after the fault", after.as_secs_f64()),
            ),
        Some(after) => check
            .measured(format!("{:.2}s", after.as_secs_f64()))
            .outcome(
                Outcome::Fail,
                format!("restored only {:.2}s after the fault", after.as_secs_f64()),
            ),
        None => check.outcome(Outcome::Fail, "never restored while it was watched"),
    }
}
