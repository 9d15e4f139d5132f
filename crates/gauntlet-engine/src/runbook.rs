//! Executing a runbook: its steps in order, each bounded by its budget (a call cut at it, a
//! wait repeated until it, a manual step waiting for an operator until it), the first
//! failure stopping the rest; each step's time against its budget and the whole against the
//! runbook's target and limit, as a report, a check and timeline events.
//!
//! A manual step waits for `RUN_DIR/runbooks/confirmed/STEP` (`gauntlet confirm RUN STEP`
//! writes it, saying who), announced by `RUN_DIR/runbooks/waiting/STEP.json`; in an
//! unattended run the spec's responder confirms after `responder_after`, recorded as such.
//! What a step changed is put back by its `undo` call, journaled before the step runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gauntlet_report::{Check, Outcome, RunbookReport, RunbookStepReport, Severity};
use gauntlet_spec::{Runbook, RunbookStep};

use crate::calls::{self, Resolved};
use crate::context::{RunContext, file_safe};
use crate::journal::Undo;

/// How often a wait repeats its call, and a manual step looks for its confirmation.
const WAIT_EVERY: Duration = Duration::from_millis(250);
const CONFIRM_EVERY: Duration = Duration::from_millis(100);

/// A runbook as executed: its report and check, and the undo calls it left to make.
pub struct Executed {
    pub report: RunbookReport,
    pub check: Check,
    pub undo: Vec<(u64, Resolved)>,
}

/// The directory manual steps wait in.
pub fn confirm_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("runbooks")
}

/// Why a confirmation could not be recorded: what the run waits for instead.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("the run is not waiting for a confirmation")]
    NothingWaiting,
    #[error("the run is not waiting for `{asked}`; it waits for {waiting}")]
    NotWaitingFor { asked: String, waiting: String },
    #[error("the run waits for {0}: name the step")]
    Ambiguous(String),
    #[error("cannot record the confirmation: {0}")]
    Io(#[from] std::io::Error),
}

/// Records `by`'s confirmation of a manual step a running run waits for (`step`, or the
/// only one waiting); returns the step's name. The CLI's `gauntlet confirm` and the server's
/// API both call it.
pub fn record_confirmation(
    run_dir: &Path,
    step: Option<&str>,
    by: &str,
) -> Result<String, ConfirmError> {
    let dir = confirm_dir(run_dir);
    let waiting: Vec<(String, String)> = std::fs::read_dir(dir.join("waiting"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let said: serde_json::Value =
                        serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
                    let slug = e.path().file_stem()?.to_str()?.to_string();
                    Some((slug, said["step"].as_str()?.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let names = || {
        waiting
            .iter()
            .map(|(_, n)| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (slug, name) =
        match (step, waiting.as_slice()) {
            (_, []) => return Err(ConfirmError::NothingWaiting),
            (None, [one]) => one,
            (None, _) => return Err(ConfirmError::Ambiguous(names())),
            (Some(step), _) => waiting.iter().find(|(_, n)| n == step).ok_or_else(|| {
                ConfirmError::NotWaitingFor {
                    asked: step.to_string(),
                    waiting: names(),
                }
            })?,
        };
    let said = serde_json::json!({"by": by, "at": crate::now_rfc3339()});
    std::fs::create_dir_all(dir.join("confirmed"))?;
    gauntlet_report::write_atomic(
        &dir.join("confirmed").join(slug),
        said.to_string().as_bytes(),
    )?;
    Ok(name.clone())
}

/// Runs `runbook` (called `name`) from the step `ran_in`; its check is `ran_in.PREFIXrunbook
/// NAME` (a drill's prefix is `DRILL: `).
pub async fn execute(
    ctx: &RunContext,
    (name, runbook): (&str, &Runbook),
    (ran_in, prefix): (&str, &str),
    severity: Severity,
) -> Executed {
    let mut steps = Vec::new();
    let mut undo = Vec::new();
    let mut first_failed = None;
    let started = Instant::now();
    event(
        ctx,
        ran_in,
        format!("runbook `{name}` started ({} steps)", runbook.steps.len()),
    );
    for step in &runbook.steps {
        if first_failed.is_some() {
            steps.push(not_run(step));
            continue;
        }
        let began = Instant::now();
        let done = match journal_undo(ctx, name, step) {
            Ok(entry) => {
                undo.extend(entry);
                run_step(ctx, name, step, ran_in).await
            }
            Err(why) => Err(why),
        };
        let took = began.elapsed();
        let (outcome, detail) = match done {
            Ok(said) => (Outcome::Pass, said),
            Err(why) => {
                first_failed = Some(step.name.clone());
                (Outcome::Fail, why)
            }
        };
        event(
            ctx,
            ran_in,
            format!(
                "runbook `{name}`: {} {} in {:.2}s (budget {}): {detail}",
                step.name,
                if outcome == Outcome::Pass {
                    "done"
                } else {
                    "FAILED"
                },
                took.as_secs_f64(),
                step.budget
            ),
        );
        steps.push(RunbookStepReport {
            name: step.name.clone(),
            kind: kind(step).into(),
            budget_ms: ms(step.budget.as_std()),
            took_ms: Some(ms(took)),
            outcome,
            detail,
        });
    }
    let total = started.elapsed();
    let report = conclude(name, runbook, ran_in, total, steps, first_failed);
    let check = check(&report, prefix, severity);
    event(
        ctx,
        ran_in,
        format!("runbook `{name}` ended: {}", check.reason),
    );
    let key = format!("runbook.{name}.total_seconds");
    ctx.recorder.event(
        Some(ran_in),
        "measured",
        format!("{key} = {:.3}", total.as_secs_f64()),
    );
    Executed {
        report,
        check,
        undo,
    }
}

/// The undo calls, newest first; each closes its journal entry when it succeeds.
pub async fn put_back(ctx: &RunContext, undo: Vec<(u64, Resolved)>) -> Vec<(String, bool)> {
    let mut done = Vec::new();
    for (id, call) in undo.into_iter().rev() {
        match call.make(&ctx.child_env, &ctx.client).await {
            Ok(said) => {
                crate::faults::inject::done(ctx, id);
                done.push((format!("put back: {said}"), true));
            }
            Err(why) => done.push((format!("could NOT put back: {why}"), false)),
        }
    }
    done
}

fn event(ctx: &RunContext, step: &str, message: String) {
    ctx.recorder.event(Some(step), "runbook", message);
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn kind(step: &RunbookStep) -> &'static str {
    match (&step.call, &step.wait_for) {
        (Some(_), _) => "call",
        (None, Some(_)) => "wait",
        (None, None) => "manual",
    }
}

fn not_run(step: &RunbookStep) -> RunbookStepReport {
    RunbookStepReport {
        name: step.name.clone(),
        kind: kind(step).into(),
        budget_ms: ms(step.budget.as_std()),
        took_ms: None,
        outcome: Outcome::Skipped,
        detail: "not run: an earlier step failed".into(),
    }
}

/// The step's undo call, journaled before the step runs (so a killed run's recover makes it).
fn journal_undo(
    ctx: &RunContext,
    runbook: &str,
    step: &RunbookStep,
) -> Result<Option<(u64, Resolved)>, String> {
    let Some(call) = &step.undo else {
        return Ok(None);
    };
    let resolved = calls::resolve(ctx, call)?;
    let entry = Undo::Call {
        label: format!("runbook `{runbook}` step `{}`", step.name),
        undo: Box::new(resolved.clone()),
        verify: None,
    };
    let id = crate::faults::inject::register(ctx, entry)?;
    Ok(Some((id, resolved)))
}

/// One step within its budget: `Ok` says what happened, `Err` why it failed.
async fn run_step(
    ctx: &RunContext,
    runbook: &str,
    step: &RunbookStep,
    ran_in: &str,
) -> Result<String, String> {
    let budget = step.budget.as_std();
    let over = || format!("not done within its budget of {}", step.budget);
    if let Some(call) = &step.call {
        let call = calls::resolve(ctx, call)?;
        return tokio::time::timeout(budget, call.make(&ctx.child_env, &ctx.client))
            .await
            .map_err(|_| over())?;
    }
    if let Some(call) = &step.wait_for {
        let call = calls::resolve(ctx, call)?;
        let deadline = tokio::time::Instant::now() + budget;
        let mut tries = 0u32;
        loop {
            tries += 1;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let last =
                match tokio::time::timeout(left, call.make(&ctx.child_env, &ctx.client)).await {
                    Ok(Ok(said)) => return Ok(format!("{said} (try {tries})")),
                    Ok(Err(why)) => why,
                    Err(_) => "still running".into(),
                };
            if tokio::time::Instant::now() + WAIT_EVERY >= deadline {
                return Err(format!("{}; last try: {last}", over()));
            }
            tokio::time::sleep(WAIT_EVERY).await;
        }
    }
    match &step.manual {
        Some(manual) => confirmed(ctx, runbook, step, manual, ran_in).await,
        None => Err("the step has nothing to do".into()),
    }
}

/// Waits for an operator's confirmation (or the responder's), within the budget.
async fn confirmed(
    ctx: &RunContext,
    runbook: &str,
    step: &RunbookStep,
    manual: &gauntlet_spec::Manual,
    ran_in: &str,
) -> Result<String, String> {
    let dir = confirm_dir(ctx.recorder.run_dir());
    let slug = file_safe(&step.name);
    let waiting = dir.join("waiting").join(format!("{slug}.json"));
    let confirmation = dir.join("confirmed").join(&slug);
    let announce = serde_json::json!({
        "runbook": runbook, "step": step.name, "say": manual.say,
        "since": crate::now_rfc3339(), "budget": step.budget.to_string(),
    });
    std::fs::create_dir_all(dir.join("confirmed")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir.join("waiting")).map_err(|e| e.to_string())?;
    gauntlet_report::write_atomic(&waiting, announce.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    event(
        ctx,
        ran_in,
        format!(
            "runbook `{runbook}`: waiting for an operator: {} (confirm: `gauntlet confirm {} '{}'`)",
            manual.say,
            ctx.recorder
                .run_dir()
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("RUN"),
            step.name
        ),
    );
    let started = tokio::time::Instant::now();
    let deadline = started + step.budget.as_std();
    let responder = manual.responder_after.map(|after| started + after.as_std());
    let result = loop {
        if let Ok(said) = std::fs::read(&confirmation) {
            let by = serde_json::from_slice::<serde_json::Value>(&said)
                .ok()
                .and_then(|v| v["by"].as_str().map(String::from))
                .unwrap_or_else(|| "an operator".into());
            break Ok(format!("confirmed by {by}"));
        }
        let now = tokio::time::Instant::now();
        if responder.is_some_and(|at| now >= at) {
            break Ok(
                "confirmed by the configured responder (unattended run; no operator confirmed)"
                    .into(),
            );
        }
        if now >= deadline {
            break Err(format!(
                "nobody confirmed `{}` within its budget of {}",
                step.name, step.budget
            ));
        }
        tokio::time::sleep(CONFIRM_EVERY).await;
    };
    let _ = std::fs::remove_file(&waiting);
    result
}

/// The report: the total against the target and limit, the first step that failed.
fn conclude(
    name: &str,
    runbook: &Runbook,
    ran_in: &str,
    total: Duration,
    steps: Vec<RunbookStepReport>,
    first_failed: Option<String>,
) -> RunbookReport {
    let (target, max) = (runbook.target.as_std(), runbook.limit().as_std());
    let outcome = if first_failed.is_some() || total > max {
        Outcome::Fail
    } else if total > target {
        Outcome::Warn
    } else {
        Outcome::Pass
    };
    RunbookReport {
        name: name.to_string(),
        ran_in: ran_in.to_string(),
        target_ms: ms(target),
        max_ms: ms(max),
        total_ms: ms(total),
        outcome,
        steps,
        first_failed,
    }
}

fn check(report: &RunbookReport, prefix: &str, severity: Severity) -> Check {
    let secs = |ms: u64| ms as f64 / 1000.0;
    let threshold = match report.max_ms == report.target_ms {
        true => format!(
            "every step done within its budget; the whole within {:.0}s",
            secs(report.target_ms)
        ),
        false => format!(
            "every step done within its budget; the whole within {:.0}–{:.0}s",
            secs(report.target_ms),
            secs(report.max_ms)
        ),
    };
    let reason = match (&report.first_failed, report.outcome) {
        (Some(step), _) => {
            let why = report
                .steps
                .iter()
                .find(|s| &s.name == step)
                .map_or(String::new(), |s| s.detail.clone());
            format!("step `{step}` failed: {why}")
        }
        (None, Outcome::Fail) => format!("took {:.2}s, beyond its limit", secs(report.total_ms)),
        (None, Outcome::Warn) => format!(
            "took {:.2}s: beyond its target, within its limit",
            secs(report.total_ms)
        ),
        _ => format!(
            "all {} steps done in {:.2}s",
            report.steps.len(),
            secs(report.total_ms)
        ),
    };
    Check::new(
        &report.ran_in,
        &format!("{prefix}runbook {}", report.name),
        severity,
    )
    .threshold(threshold)
    .measured(format!("{:.2}s", secs(report.total_ms)))
    .outcome(report.outcome, reason)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gauntlet_report::{Outcome, Severity};

    use super::*;
    use crate::testing::{FakeSystem, Harness};

    /// A harness whose spec has `runbooks` (YAML under `runbooks:`), around a fake candidate.
    async fn harness(runbooks: &str) -> (Harness, FakeSystem) {
        let spec = format!(
            "schema_version: 1
service: {{name: s, version: '2'}}
targets:
  candidate: {{url: '{{candidate}}'}}
traffic: {{rate: 1/s, requests: [{{path: /}}]}}
runbooks:
{runbooks}"
        );
        let system = FakeSystem::start(|_| (200, Duration::from_millis(1))).await;
        (Harness::new(&spec, &system, None), system)
    }

    async fn run(harness: &Harness, name: &str) -> Executed {
        let runbook = harness.ctx.plan.runbooks[name].clone();
        execute(&harness.ctx, (name, &runbook), ("test", ""), Severity::Hard).await
    }

    #[tokio::test]
    async fn steps_run_in_order_each_timed_and_a_manual_step_waits_for_its_operator() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let (harness, _system) = harness(&format!(
            "  rb:
    target: 1m
    steps:
      - {{name: change, budget: 5s, call: {{command: [touch, '{a}']}}, undo: {{command: [rm, '{a}']}}}}
      - {{name: settle, budget: 5s, wait_for: {{command: [test, -e, '{b}']}}}}
      - {{name: ask, budget: 5s, manual: {{say: look at it}}}}
      - {{name: ping, budget: 5s, call: {{http: {{method: GET, path: /}}}}}}
",
            a = a.display(),
            b = b.display()
        ))
        .await;
        // The condition comes true a little later; the operator confirms when asked.
        let run_dir = harness.ctx.recorder.run_dir().to_path_buf();
        let operator = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            std::fs::write(&b, "").unwrap();
            let waiting = confirm_dir(&run_dir).join("waiting/ask.json");
            while !waiting.exists() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            std::fs::write(
                confirm_dir(&run_dir).join("confirmed/ask"),
                r#"{"by": "ana"}"#,
            )
            .unwrap();
        });
        let done = run(&harness, "rb").await;
        operator.await.unwrap();
        let report = &done.report;
        assert_eq!(report.outcome, Outcome::Pass, "{report:#?}");
        assert_eq!(done.check.outcome, Outcome::Pass);
        let kinds: Vec<&str> = report.steps.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(kinds, ["call", "wait", "manual", "call"]);
        assert!(report.steps[1].took_ms.unwrap() >= 250, "{report:#?}");
        assert_eq!(report.steps[2].detail, "confirmed by ana");
        assert!(a.exists());
        let put = put_back(&harness.ctx, done.undo).await;
        assert!(put[0].1 && !a.exists(), "{put:?}");
        assert_eq!(harness.ctx.journal.lock().unwrap().pending().count(), 0);
    }

    #[tokio::test]
    async fn the_first_failed_step_stops_the_rest_and_fails_the_runbook() {
        let (harness, _system) = harness(
            "  rb:
    target: 1m
    steps:
      - {name: never, budget: 600ms, wait_for: {command: ['false']}}
      - {name: after, budget: 1s, call: {command: ['true']}}
",
        )
        .await;
        let done = run(&harness, "rb").await;
        let report = &done.report;
        assert_eq!(report.outcome, Outcome::Fail);
        assert_eq!(report.first_failed.as_deref(), Some("never"));
        assert!(
            report.steps[0]
                .detail
                .contains("not done within its budget of 600ms")
        );
        assert_eq!(report.steps[1].outcome, Outcome::Skipped);
        assert!(
            done.check.reason.starts_with("step `never` failed"),
            "{}",
            done.check.reason
        );
    }

    #[tokio::test]
    async fn unattended_the_responder_confirms_and_a_slow_runbook_is_flagged() {
        let (harness, _system) = harness(
            "  rb:
    target: 100ms
    max: 10s
    steps:
      - {name: ask, budget: 5s, manual: {say: confirm, responder_after: 300ms}}
",
        )
        .await;
        let done = run(&harness, "rb").await;
        assert!(done.report.steps[0].detail.contains("configured responder"));
        // 300ms: beyond the 100ms target, within the 10s limit.
        assert_eq!(done.report.outcome, Outcome::Warn, "{:#?}", done.report);
    }
}
