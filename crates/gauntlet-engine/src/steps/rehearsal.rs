//! Step 2, the rollback rehearsal: before the real canary, the split injects a controlled
//! regression into the candidate arm and the canary's judges must (a) reject it within the
//! detection bound, (b) the rollback must run, and (c) the baseline must serve all traffic
//! with good requests again within the RTO. The injected fault is removed however it ends
//! (it lives in the split, which is dropped with the step).

use std::time::{Duration, Instant};

use gauntlet_net::{ArmFault, TrafficSplit};
use gauntlet_report::{Check, Outcome, Severity};
use gauntlet_spec::{CanaryStep, RehearsalStep};
use gauntlet_stats::{Arm, Verdict};

use super::{Step, StepFuture, StepMeta};
use crate::canary::{Panel, RunningLoad, observations_gz, run_action, trajectory_svg};
use crate::context::RunContext;

const STEP: &str = "rollback-rehearsal";

pub struct Rehearsal(StepMeta);

impl Rehearsal {
    pub fn new(config: &RehearsalStep) -> Self {
        Self(StepMeta::new(config.severity, config.owner.as_ref(), "sre"))
    }
}

impl Step for Rehearsal {
    fn name(&self) -> &'static str {
        STEP
    }
    fn meta(&self) -> &StepMeta {
        &self.0
    }
    fn run<'a>(&'a self, ctx: &'a RunContext) -> StepFuture<'a> {
        Box::pin(async move {
            match (&ctx.spec.steps.rollback_rehearsal, &ctx.spec.steps.canary) {
                (Some(config), Some(canary)) => run(ctx, config, canary, self.0.severity).await,
                _ => Vec::new(),
            }
        })
    }
}

async fn run(
    ctx: &RunContext,
    config: &RehearsalStep,
    canary: &CanaryStep,
    severity: Severity,
) -> Vec<Check> {
    let recorder = &ctx.recorder;
    let detected = Check::new(STEP, "regression detected", severity)
        .threshold(format!("the judges reject within {}", config.detect_within));
    let rolled_back =
        Check::new(STEP, "rollback ran", severity).threshold("the rollback hook succeeds");
    let recovered = Check::new(STEP, "recovered", severity).threshold(format!(
        "{} consecutive good requests within the RTO of {}",
        config.recovery_samples, config.rto
    ));
    let Some(baseline) = &ctx.baseline else {
        let why = "the rehearsal needs `targets.baseline` to roll back to";
        return vec![
            detected.outcome(Outcome::Inconclusive, why),
            rolled_back.outcome(Outcome::Skipped, why),
            recovered.outcome(Outcome::Skipped, why),
        ];
    };
    let (split, mut observations) =
        match TrafficSplit::start(baseline, &ctx.candidate, None, None, ctx.seed ^ 0x5eed).await {
            Ok(started) => started,
            Err(e) => {
                let why = format!("cannot start the traffic split: {e}");
                return vec![
                    detected.outcome(Outcome::Inconclusive, why.clone()),
                    rolled_back.outcome(Outcome::Skipped, why.clone()),
                    recovered.outcome(Outcome::Skipped, why),
                ];
            }
        };
    let rate = canary.rate.unwrap_or(ctx.spec.traffic.rate).per_second();
    let budget = config.detect_within.as_std() + config.rto.as_std() + Duration::from_secs(5);
    let load = RunningLoad::start(ctx, &split, rate, canary.connections.get() as usize, budget);
    split.set_weight(config.weight.ratio());
    let fault = ArmFault {
        error_rate: config.error_rate.ratio(),
        added_latency: config.latency.as_std(),
    };
    split.set_fault(Some(fault));
    let injected = Instant::now();
    recorder.event(
        Some(STEP),
        "regression-injected",
        format!(
            "candidate arm at {}: {} errors, +{} latency",
            config.weight, config.error_rate, config.latency
        ),
    );
    let mut panel = Panel::new(&canary.judges, canary.alpha.ratio(), canary.beta.ratio(), 0);
    let mut seen = Vec::new();
    let detect_deadline = tokio::time::Instant::now() + config.detect_within.as_std();
    let detection = loop {
        let next = tokio::select! {
            next = observations.recv() => next,
            _ = tokio::time::sleep_until(detect_deadline) => break None,
        };
        let Some(observation) = next else { break None };
        seen.push(observation);
        panel.observe(&observation);
        if panel.verdict() == Verdict::Reject {
            break Some(injected.elapsed());
        }
    };
    let mut checks = Vec::new();
    let deciding: Vec<String> = panel
        .seats
        .iter()
        .filter(|s| !s.dry_run && s.judge.verdict() == Verdict::Reject)
        .map(|s| s.judge.explain())
        .collect();
    let Some(detected_after) = detection else {
        split.set_fault(None);
        load.stop();
        recorder.event(
            Some(STEP),
            "fault-removed",
            "regression removed; it was never detected",
        );
        let explained: Vec<String> = panel.seats.iter().map(|s| s.judge.explain()).collect();
        checks.push(detected.samples(seen.len() as u64).outcome(
            Outcome::Fail,
            format!(
                "the judges did not reject an injected regression within {}: {}",
                config.detect_within,
                explained.join("; ")
            ),
        ));
        checks.push(rolled_back.outcome(Outcome::Skipped, "nothing was detected"));
        checks.push(recovered.outcome(Outcome::Skipped, "nothing was detected"));
        load.finish().await;
        return checks;
    };
    recorder.event(
        Some(STEP),
        "detected",
        format!(
            "after {:.2}s: {}",
            detected_after.as_secs_f64(),
            deciding.join("; ")
        ),
    );
    recorder.event(
        Some(STEP),
        "rollback-decided",
        "judges rejected the regression",
    );
    let decided = Instant::now();
    split.set_weight(0.0);
    let action = run_action(ctx, canary.rollback.as_ref(), "rollback", "rehearsal").await;
    checks.push(
        detected
            .samples(seen.len() as u64)
            .measured(format!(
                "detected after {:.2}s",
                detected_after.as_secs_f64()
            ))
            .outcome(
                Outcome::Pass,
                format!(
                    "rejected {:.2}s after the regression was injected: {}",
                    detected_after.as_secs_f64(),
                    deciding.join("; ")
                ),
            ),
    );
    match &action {
        Ok(done) => {
            recorder.event(Some(STEP), "rollback-done", done.clone());
            checks.push(rolled_back.outcome(Outcome::Pass, format!("rolled back: {done}")));
        }
        Err(e) => {
            recorder.event(Some(STEP), "rollback-failed", e.clone());
            checks.push(rolled_back.outcome(Outcome::Fail, format!("rollback hook failed: {e}")));
        }
    }
    // Recovery: consecutive good requests on the baseline after the rollback.
    let rto_deadline = tokio::time::Instant::now() + config.rto.as_std();
    let mut streak = 0u32;
    let mut after_rollback = 0u64;
    let recovery = loop {
        let next = tokio::select! {
            next = observations.recv() => next,
            _ = tokio::time::sleep_until(rto_deadline) => break None,
        };
        let Some(observation) = next else { break None };
        if observation.arm == Arm::Candidate {
            continue; // answers already in flight to the candidate when it was rolled back
        }
        after_rollback += 1;
        streak = if observation.ok { streak + 1 } else { 0 };
        if streak >= config.recovery_samples {
            break Some(decided.elapsed());
        }
    };
    split.set_fault(None);
    load.stop();
    recorder.event(Some(STEP), "fault-removed", "injected regression removed");
    checks.push(match recovery {
        Some(after) => {
            recorder.measure("rollback_rehearsal.time_to_recover", after.as_secs_f64());
            recorder.event(Some(STEP), "recovered", format!("{} good requests in a row {:.2}s after the rollback decision", config.recovery_samples, after.as_secs_f64()));
            recovered
                .samples(after_rollback)
                .measured(format!("recovered after {:.2}s", after.as_secs_f64()))
                .outcome(Outcome::Pass, format!("the baseline served {} good requests in a row {:.2}s after the rollback decision (RTO {})", config.recovery_samples, after.as_secs_f64(), config.rto))
        }
        None if after_rollback == 0 => recovered.outcome(Outcome::Inconclusive, "no request reached the baseline after the rollback"),
        None => recovered
            .samples(after_rollback)
            .outcome(Outcome::Fail, format!("no {} good requests in a row within the RTO of {} ({after_rollback} requests seen)", config.recovery_samples, config.rto)),
    });
    let mut evidence = Vec::new();
    if let Ok(path) = recorder.evidence(STEP, "observations.jsonl.gz", &observations_gz(&seen)) {
        evidence.push(path);
    }
    for seat in &panel.seats {
        let svg = trajectory_svg(&format!("rehearsal: {}", seat.name), seat.judge.as_ref());
        if let Ok(path) = recorder.evidence(STEP, &format!("{}.svg", seat.name), svg.as_bytes()) {
            evidence.push(path);
        }
    }
    for check in &mut checks {
        check.evidence = evidence.clone();
    }
    load.finish().await;
    checks
}
