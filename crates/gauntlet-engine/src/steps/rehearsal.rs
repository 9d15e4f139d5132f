//! Step 2, the rollback rehearsal: before the real canary, a controlled regression goes into
//! the candidate arm (errors or latency added by the split, real faults that break the
//! candidate, or both) and the canary's judges must (a) reject it within the detection bound,
//! (b) the rollback must run, and (c) the baseline must serve all traffic with good requests
//! again within the RTO. With `sli`, the service's own SLI must also see the regression: a
//! metric that does not move when the service breaks would page no one. The split's fault
//! lives in the split, dropped with the step; real faults are journaled and undone however
//! the step ends.

use std::time::{Duration, Instant};

use gauntlet_metrics::promql::Selector;
use gauntlet_net::{ArmFault, Outgoing, TrafficSplit};
use gauntlet_report::{Check, Outcome, Severity};
use gauntlet_spec::{RehearsalPlan, Sli, StepMeta};
use gauntlet_stats::{Arm, Observation, Verdict};
use tokio::sync::mpsc::UnboundedReceiver;

use super::{Step, StepFuture, severity};
use crate::context::RunContext;
use crate::faults::inject::{self, Applied};
use crate::steps::canary::{Load, Panel, RunningLoad, observations_gz, run_action};

const STEP: &str = gauntlet_spec::StepName::RollbackRehearsal.as_str();

pub struct Rehearsal(pub(crate) RehearsalPlan);

impl Step for Rehearsal {
    fn step(&self) -> gauntlet_spec::StepName {
        gauntlet_spec::StepName::RollbackRehearsal
    }
    fn meta(&self) -> &StepMeta {
        &self.0.meta
    }
    fn run<'a>(&'a self, ctx: &'a RunContext) -> StepFuture<'a> {
        Box::pin(run(ctx, &self.0))
    }
}

async fn run(ctx: &RunContext, config: &RehearsalPlan) -> Vec<Check> {
    let canary = &config.canary;
    let severity = severity(&config.meta);
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
    let mut panel = match Panel::new(&canary.judges, canary.alpha.ratio(), canary.beta.ratio(), 0) {
        Ok(panel) => panel,
        Err(e) => {
            let why = format!("no judge can be built: {e}");
            return vec![
                detected.outcome(Outcome::Inconclusive, why.clone()),
                rolled_back.outcome(Outcome::Skipped, why.clone()),
                recovered.outcome(Outcome::Skipped, why),
            ];
        }
    };
    let (split, mut observations) = match TrafficSplit::start(
        baseline,
        &ctx.candidate,
        None,
        None,
        config.seed.derive("split", 0),
    )
    .await
    {
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
    let sli_budget = if config.sli.is_some() {
        SLI_BEFORE_BOUND
    } else {
        Duration::ZERO
    };
    let budget =
        config.detect_within.as_std() + config.rto.as_std() + sli_budget + Duration::from_secs(5);
    let load = Load {
        rate: canary.rate.per_second(),
        connections: canary.connections as usize,
        seed: config.seed.derive("load", 0),
    };
    let load = RunningLoad::start(ctx, &split, load, budget);
    split.set_weight(config.weight.ratio());
    let mut sli = match &config.sli {
        Some(spec) => Some(SliReading::before(ctx, spec, &mut observations).await),
        None => None,
    };
    let mut applied = Vec::new();
    for (i, fault) in config.faults.iter().enumerate() {
        match inject::apply(ctx, STEP, i, fault, config.seed.derive("fault", i as u64)).await {
            Ok((done, line)) => {
                recorder.event(Some(STEP), "fault-applied", line);
                applied.push(done);
            }
            Err(e) => {
                undo_all(ctx, &mut applied).await;
                load.stop();
                load.finish().await;
                let why = format!("a fault could not be applied: {e}");
                return vec![
                    detected.outcome(Outcome::Inconclusive, why.clone()),
                    rolled_back.outcome(Outcome::Skipped, why.clone()),
                    recovered.outcome(Outcome::Skipped, why),
                ];
            }
        }
    }
    if config.error_rate.ratio() > 0.0 || !config.latency.as_std().is_zero() {
        split.set_fault(Some(ArmFault {
            error_rate: config.error_rate.ratio(),
            added_latency: config.latency.as_std(),
        }));
    }
    let injected = Instant::now();
    recorder.event(
        Some(STEP),
        "regression-injected",
        format!(
            "candidate arm at {}: {} errors, +{} latency from the split, {} real fault(s)",
            config.weight,
            config.error_rate,
            config.latency,
            config.faults.len()
        ),
    );
    let mut seen = Vec::new();
    let detect_deadline = tokio::time::Instant::now() + config.detect_within.as_std();
    let detection = loop {
        let next = tokio::select! {
            next = observations.recv() => next,
            _ = tokio::time::sleep_until(detect_deadline) => break None,
        };
        let Some(observation) = next else { break None };
        if let Some(reading) = sli.as_mut() {
            reading.sent(&observation);
        }
        seen.push(observation);
        panel.observe(&observation);
        if panel.verdict() == Verdict::Reject {
            break Some(injected.elapsed());
        }
    };
    if let (Some(reading), Some(spec)) = (sli.as_mut(), &config.sli) {
        reading.during(ctx, spec).await;
    }
    let sli_check = sli
        .zip(config.sli.as_ref())
        .map(|(reading, spec)| reading.check(ctx, spec, severity));
    let mut checks = Vec::new();
    let deciding: Vec<String> = panel
        .seats
        .iter()
        .filter(|s| !s.dry_run && s.judge.verdict() == Verdict::Reject)
        .map(|s| s.judge.explain())
        .collect();
    let Some(detected_after) = detection else {
        split.set_fault(None);
        undo_all(ctx, &mut applied).await;
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
        checks.extend(sli_check);
        load.finish().await;
        checks.extend(expected_alerts(ctx, config, injected, severity).await);
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
    undo_all(ctx, &mut applied).await;
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
    checks.extend(sli_check);
    let mut evidence = Vec::new();
    if let Ok(path) = recorder.evidence(STEP, "observations.jsonl.gz", &observations_gz(&seen)) {
        evidence.push(path);
    }
    for seat in &panel.seats {
        let svg = gauntlet_report::svg::trajectory(
            &format!("rehearsal: {}", seat.name),
            &seat.judge.trajectory().points,
        );
        if let Ok(path) = recorder.evidence(STEP, &format!("{}.svg", seat.name), svg.as_bytes()) {
            evidence.push(path);
        }
    }
    for check in &mut checks {
        check.evidence = evidence.clone();
    }
    load.finish().await;
    checks.extend(expected_alerts(ctx, config, injected, severity).await);
    checks
}

/// The alerts the regression must have raised, waited for once the rollback and recovery are
/// done (an alert that fires as the rollback happens is still the page someone gets).
async fn expected_alerts(
    ctx: &RunContext,
    config: &RehearsalPlan,
    injected: Instant,
    severity: Severity,
) -> Vec<Check> {
    let expected: Vec<_> = config.alerts.iter().collect();
    let (checks, arrivals) =
        super::alerting::wait_for(ctx, STEP, "", &expected, injected, severity).await;
    for arrival in arrivals {
        ctx.recorder.event(
            Some(STEP),
            "alert",
            format!(
                "{} notified {:.2}s after the regression went in (via {})",
                arrival.name,
                arrival.after.as_secs_f64(),
                arrival.receiver
            ),
        );
        ctx.recorder.measure(
            &format!("rollback_rehearsal.time_to_alert.{}", arrival.name),
            arrival.after.as_secs_f64(),
        );
    }
    checks
}

/// How long the rehearsal waits for the candidate requests it measures the SLI on before the
/// regression goes in.
const SLI_BEFORE_BOUND: Duration = Duration::from_secs(10);

/// Real faults come out in reverse order, each with a line on the timeline.
async fn undo_all(ctx: &RunContext, applied: &mut Vec<Applied>) {
    while let Some(done) = applied.pop() {
        let (line, _) = inject::undo(ctx, done).await;
        ctx.recorder.event(Some(STEP), "fault-removed", line);
    }
}

/// The SLI's two counters in one scrape of the candidate, straight (not through its proxy).
async fn read_counters(ctx: &RunContext, spec: &Sli) -> Result<(f64, f64), String> {
    let total = Selector::parse(&spec.total)?;
    let bad = Selector::parse(&spec.bad)?;
    let answer = ctx
        .client
        .send(&Outgoing::get(&ctx.candidate, &spec.path))
        .await
        .map_err(|e| format!("scrape {}: {e}", spec.path))?;
    if !answer.is_success() {
        return Err(format!("scrape {}: status {}", spec.path, answer.status));
    }
    let families = gauntlet_metrics::parse_text(&answer.body_text())
        .map_err(|e| format!("scrape {}: {e}", spec.path))?;
    Ok((total.sum(&families), bad.sum(&families)))
}

/// The SLI over one window: what the service counted, and what gauntlet sent it.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    total: f64,
    bad: f64,
    sent: u64,
}

impl Window {
    fn sli(&self) -> Option<f64> {
        (self.total > 0.0).then(|| 1.0 - (self.bad / self.total).clamp(0.0, 1.0))
    }
}

/// The SLI before the regression and while it lasts, from counter increases between scrapes.
struct SliReading {
    last: Result<(f64, f64), String>,
    before: Option<Window>,
    during: Option<Window>,
    sent_during: u64,
}

impl SliReading {
    /// Scrapes, lets `spec.requests` candidate requests through with no fault, scrapes again.
    async fn before(
        ctx: &RunContext,
        spec: &Sli,
        observations: &mut UnboundedReceiver<Observation>,
    ) -> Self {
        let first = read_counters(ctx, spec).await;
        let mut sent = 0u64;
        let deadline = tokio::time::Instant::now() + SLI_BEFORE_BOUND;
        while sent < u64::from(spec.requests) {
            let next = tokio::select! {
                next = observations.recv() => next,
                _ = tokio::time::sleep_until(deadline) => break,
            };
            match next {
                Some(o) if o.arm == Arm::Candidate => sent += 1,
                Some(_) => {}
                None => break,
            }
        }
        let second = read_counters(ctx, spec).await;
        let before = match (&first, &second) {
            (Ok(a), Ok(b)) => Some(Window {
                total: b.0 - a.0,
                bad: b.1 - a.1,
                sent,
            }),
            _ => None,
        };
        ctx.recorder.event(
            Some(STEP),
            "sli-before",
            match before.and_then(|w| w.sli().map(|sli| (w, sli))) {
                Some((w, sli)) => format!(
                    "SLI {:.2}% over {} counted request(s) ({sent} sent) before the regression",
                    sli * 100.0,
                    w.total
                ),
                None => format!("no SLI before the regression ({sent} request(s) sent)"),
            },
        );
        Self {
            last: match (first, second) {
                (Err(e), _) | (_, Err(e)) => Err(e),
                (Ok(_), Ok(b)) => Ok(b),
            },
            before,
            during: None,
            sent_during: 0,
        }
    }

    /// Counts a candidate request sent while the regression is in.
    fn sent(&mut self, observation: &Observation) {
        if observation.arm == Arm::Candidate {
            self.sent_during += 1;
        }
    }

    /// Scrapes again when the regression has been judged (or the detection bound passed).
    async fn during(&mut self, ctx: &RunContext, spec: &Sli) {
        let Ok(start) = self.last.clone() else { return };
        match read_counters(ctx, spec).await {
            Ok(end) => {
                self.during = Some(Window {
                    total: end.0 - start.0,
                    bad: end.1 - start.1,
                    sent: self.sent_during,
                });
            }
            Err(e) => self.last = Err(e),
        }
    }

    fn check(self, ctx: &RunContext, spec: &Sli, severity: Severity) -> Check {
        let check = Check::new(STEP, "SLI drops", severity).threshold(format!(
            "1 − {} / {} drops by at least {} (relative) while the regression is in",
            spec.bad, spec.total, spec.drop
        ));
        let (before, during) = match (self.last, self.before, self.during) {
            (Err(e), _, _) => {
                return check.outcome(
                    Outcome::Inconclusive,
                    format!("the SLI could not be read: {e}"),
                );
            }
            (Ok(_), Some(before), Some(during)) => (before, during),
            _ => {
                return check.outcome(Outcome::Inconclusive, "the SLI could not be read");
            }
        };
        for (window, when) in [(before, "before"), (during, "during")] {
            if window.sent == 0 {
                return check.outcome(
                    Outcome::Inconclusive,
                    format!("no request reached the candidate {when} the regression"),
                );
            }
            if window.total <= 0.0 {
                return check.samples(window.sent).outcome(
                    Outcome::Fail,
                    format!(
                        "`{}` did not move {when} the regression although gauntlet sent the candidate {} request(s): a metric that does not count cannot show a breakage",
                        spec.total, window.sent
                    ),
                );
            }
        }
        let (Some(sli_before), Some(sli_during)) = (before.sli(), during.sli()) else {
            return check.outcome(Outcome::Inconclusive, "the SLI could not be computed");
        };
        let drop = if sli_before > 0.0 {
            (sli_before - sli_during) / sli_before
        } else {
            0.0
        };
        ctx.recorder
            .measure("rollback_rehearsal.sli_before", sli_before);
        ctx.recorder
            .measure("rollback_rehearsal.sli_during", sli_during);
        ctx.recorder.measure("rollback_rehearsal.sli_drop", drop);
        let moved = format!(
            "the SLI went from {:.2}% ({} of {} counted bad) to {:.2}% ({} of {} counted bad) while the regression was in: {:.1}% lower",
            sli_before * 100.0,
            before.bad,
            before.total,
            sli_during * 100.0,
            during.bad,
            during.total,
            drop * 100.0
        );
        let check = check
            .samples(before.sent + during.sent)
            .measured(format!("dropped {:.1}%", drop * 100.0));
        if drop >= spec.drop.ratio() {
            check.outcome(Outcome::Pass, moved)
        } else {
            check.outcome(
                Outcome::Fail,
                format!(
                    "{moved}, less than the {} required: the SLI does not see the service break",
                    spec.drop
                ),
            )
        }
    }
}
