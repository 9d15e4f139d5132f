//! Step 8, the canary: shadow → small weights → promotion, judged continuously at every
//! stage through gauntlet's traffic split. Any reject or abort trigger rolls back at once;
//! acceptance moves to the next stage early; a stage that runs out of bake time without a
//! decision is inconclusive (a truncated sequential test is never a pass).
//!
//! The rollback rehearsal runs the same parts: `panel.rs` (the judges), `stage.rs` (a stage
//! through the split), `load.rs` (its traffic), `recording.rs` (what the panel saw, for
//! `gauntlet judge`), `hooks.rs` (promotion and rollback), `evidence.rs` (checks and files).

mod evidence;
mod hooks;
mod load;
mod panel;
mod recording;
mod stage;

pub(crate) use evidence::{judge_checks, stage_evidence};
pub(crate) use hooks::run_action;
pub(crate) use load::{Load, RunningLoad, mix_for};
pub use panel::{Panel, Seat};
pub use recording::{Observations, Recording, observations_gz, read_observations};
pub(crate) use stage::run_stage;
pub use stage::{ArmTotals, LatencySample, StageEnd, StageJudge, StageRun};

use gauntlet_net::TrafficSplit;
use gauntlet_report::{Check, Outcome};
use gauntlet_spec::{CanaryPlan, StageWeight, StepMeta};

use super::{Step, StepFuture, severity};
use crate::context::RunContext;

const STEP: &str = gauntlet_spec::StepName::Canary.as_str();

pub struct Canary(pub(crate) CanaryPlan);

impl Step for Canary {
    fn step(&self) -> gauntlet_spec::StepName {
        gauntlet_spec::StepName::Canary
    }
    fn meta(&self) -> &StepMeta {
        &self.0.meta
    }
    fn run<'a>(&'a self, ctx: &'a RunContext) -> StepFuture<'a> {
        Box::pin(run(ctx, &self.0))
    }
}

async fn run(ctx: &RunContext, config: &CanaryPlan) -> Vec<Check> {
    let severity = severity(&config.meta);
    let recorder = &ctx.recorder;
    let Some(baseline) = &ctx.baseline else {
        return vec![Check::new(STEP, "baseline", severity).outcome(
            Outcome::Inconclusive,
            "the canary compares the candidate with a baseline, and `targets.baseline` is not set",
        )];
    };
    let (split, mut observations) = match TrafficSplit::start(
        baseline,
        &ctx.candidate,
        config.sticky_header.clone(),
        config.mirror.clone(),
        config.seed.derive("split", 0),
    )
    .await
    {
        Ok(started) => started,
        Err(e) => {
            return vec![Check::new(STEP, "traffic split", severity).outcome(
                Outcome::Inconclusive,
                format!("cannot start the traffic split: {e}"),
            )];
        }
    };
    recorder.event(
        Some(STEP),
        "split",
        format!("traffic split on {}", split.addr()),
    );
    let mut checks = Vec::new();
    let mut totals: [ArmTotals; 2] = Default::default();
    let stages = &config.stages;
    for (index, stage) in stages.iter().enumerate() {
        let label = format!("stage {} ({})", index + 1, stage.weight);
        let share = match &stage.weight {
            StageWeight::Shadow => None,
            StageWeight::Share(p) => Some(p.ratio()),
        };
        if share == Some(1.0) {
            break; // the 100% stage is the promotion, below
        }
        match share {
            None => split.set_shadow(),
            Some(weight) => split.set_weight(weight),
        }
        recorder.event(
            Some(STEP),
            "stage",
            format!(
                "{label} started: bake up to {}, at least {} candidate samples",
                stage.bake, stage.min_samples
            ),
        );
        let mut panel = match Panel::new(
            &config.judges,
            config.alpha.ratio(),
            config.beta.ratio(),
            u64::from(stage.min_samples),
        ) {
            Ok(panel) => panel,
            Err(e) => {
                checks.push(
                    Check::new(STEP, &format!("{label} judges"), severity)
                        .outcome(Outcome::Inconclusive, format!("no judge can be built: {e}")),
                );
                return checks;
            }
        };
        let run = run_stage(
            ctx,
            &split,
            &mut observations,
            &mut panel,
            Load {
                rate: config.rate.per_second(),
                connections: config.connections as usize,
                seed: config.seed.derive("load", index as u64),
            },
            stage.bake.as_std(),
            u64::from(stage.min_samples),
            config.abort.as_ref(),
        )
        .await;
        for (total, stage) in totals.iter_mut().zip(&run.arms) {
            total.add(stage);
        }
        measure(recorder, &totals);
        let evidence = stage_evidence(ctx, STEP, &label, &panel, &run);
        let mut stage_checks = judge_checks(
            STEP,
            &label,
            &panel,
            &run,
            severity,
            &stage.weight.to_string(),
        );
        for check in &mut stage_checks {
            check.evidence = evidence.clone();
        }
        let summary = format!(
            "{label}: {:?} after {:.1}s ({} candidate, {} baseline observations)",
            run.end,
            run.elapsed.as_secs_f64(),
            run.candidate_samples,
            run.baseline_samples
        );
        recorder.event(Some(STEP), "stage", summary);
        recorder.event(
            Some(STEP),
            "stage-latency",
            format!("{label}: {}", run.latency_summary),
        );
        checks.extend(stage_checks);
        match &run.end {
            StageEnd::Accepted => continue,
            StageEnd::Rejected | StageEnd::Aborted(_) | StageEnd::TimedOut => {
                if let StageEnd::Aborted(reason) = &run.end {
                    checks.push(
                        Check::new(STEP, &format!("{label} abort triggers"), severity)
                            .samples(run.candidate_samples)
                            .outcome(Outcome::Fail, reason.clone()),
                    );
                }
                let why = match &run.end {
                    StageEnd::Rejected => "a judge rejected the candidate",
                    StageEnd::TimedOut => "the stage ended without a decision",
                    _ => "an abort trigger fired",
                };
                recorder.event(Some(STEP), "rollback-decided", format!("{label}: {why}"));
                split.set_weight(0.0);
                let action = run_action(ctx, config.rollback.as_ref(), "rollback", &label).await;
                let check = Check::new(STEP, "rollback", severity).threshold(hook_threshold(
                    config.rollback.as_ref(),
                    "the rollback hook succeeds",
                    "gauntlet's split sends every request to the baseline",
                ));
                checks.push(match action {
                    Ok(done) => {
                        recorder.event(
                            Some(STEP),
                            "rollback-done",
                            format!("all traffic on the baseline; {done}"),
                        );
                        check.outcome(Outcome::Pass, format!("rolled back after {label}: {done}"))
                    }
                    Err(e) => {
                        recorder.event(Some(STEP), "rollback-failed", e.clone());
                        check.outcome(Outcome::Fail, format!("rollback hook failed: {e}"))
                    }
                });
                for later in stages.iter().skip(index + 1) {
                    checks.push(
                        Check::new(
                            STEP,
                            &format!("stage ({}) not reached", later.weight),
                            severity,
                        )
                        .outcome(Outcome::Skipped, format!("rolled back at {label}")),
                    );
                }
                recorder.failed_requests(STEP, split.failures());
                return checks;
            }
        }
    }
    split.set_weight(1.0);
    recorder.event(
        Some(STEP),
        "promotion",
        "every stage accepted: all traffic on the candidate",
    );
    let check = Check::new(STEP, "promotion", severity).threshold(hook_threshold(
        config.promote.as_ref(),
        "the promotion hook succeeds",
        "gauntlet's split sends every request to the candidate",
    ));
    checks.push(
        match run_action(ctx, config.promote.as_ref(), "promote", "100%").await {
            Ok(done) => check.outcome(Outcome::Pass, format!("promoted to 100%: {done}")),
            Err(e) => check.outcome(Outcome::Fail, format!("promotion hook failed: {e}")),
        },
    );
    recorder.failed_requests(STEP, split.failures());
    checks
}

/// The canary's totals so far, per arm, for the gates: `canary.candidate.latency_p99`
/// (seconds), `canary.baseline.error_rate` (a ratio), `canary.candidate.requests`, ….
fn measure(recorder: &crate::context::Recorder, totals: &[ArmTotals; 2]) {
    for (arm, total) in ["baseline", "candidate"].iter().zip(totals) {
        for (name, q) in [
            ("latency_p50", 0.5),
            ("latency_p90", 0.9),
            ("latency_p95", 0.95),
            ("latency_p99", 0.99),
        ] {
            if let Some(v) = total.latency(q) {
                recorder.measure(&format!("{STEP}.{arm}.{name}"), v);
            }
        }
        if let Some(rate) = total.error_rate() {
            recorder.measure(&format!("{STEP}.{arm}.error_rate"), rate);
        }
        recorder.measure(&format!("{STEP}.{arm}.requests"), total.requests as f64);
    }
}

/// What a rollback or promotion check asks: the hook, when there is one; else only what
/// gauntlet's own split does (and the reason says nothing outside it moved).
fn hook_threshold(hook: Option<&gauntlet_spec::Action>, with: &str, without: &str) -> String {
    match hook {
        Some(_) => with.to_string(),
        None => without.to_string(),
    }
}
