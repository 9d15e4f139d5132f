//! Step 2, the rollback rehearsal: before the real canary, a controlled regression goes into
//! the candidate arm (errors or latency added by the split, real faults that break the
//! candidate, or both) and the canary's judges must (a) reject it within the detection bound,
//! (b) the rollback must run, and (c) the baseline must serve all traffic with good requests
//! again within the RTO. With `sli`, the service's own SLI must also see the regression
//! (`sli.rs`). The split's fault lives in the split, dropped with the step; real faults are
//! journaled and undone however the step ends.

mod sli;

use std::time::Duration;

use tokio::time::Instant;

use gauntlet_net::{ArmFault, TrafficSplit};
use gauntlet_report::{Check, Outcome, Severity};
use gauntlet_spec::{RehearsalPlan, StepMeta};
use gauntlet_stats::{Arm, Observation, Verdict};
use tokio::sync::mpsc::UnboundedReceiver;

use super::canary::{Load, Panel, RunningLoad, observations_gz, run_action};
use super::{Step, StepFuture, StepOutput, severity};
use crate::context::RunContext;
use crate::faults::inject::{self, Applied};
use sli::{SLI_BEFORE_BOUND, SliReading};

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

/// Phases: **start** the split and its load, **inject** the regression, **detect** it,
/// **roll back**, **recover**; then the evidence and the alerts it must have raised.
async fn run(ctx: &RunContext, plan: &RehearsalPlan) -> StepOutput {
    let checks = Checks::new(plan);
    let mut rehearsal = match InProgress::start(ctx, plan).await {
        Ok(started) => started,
        Err(why) => return checks.not_run(why).into(),
    };
    if let Err(why) = rehearsal.inject().await {
        let mut not_run = checks.not_run(why);
        rehearsal.stop(&mut not_run).await;
        return not_run.into();
    }
    let detection = rehearsal.detect().await;
    let sli = rehearsal.read_sli().await;
    let Some(detected_after) = detection else {
        return rehearsal.undetected(checks, sli).await;
    };
    let mut done = vec![rehearsal.detected_check(&checks, detected_after)];
    done.push(rehearsal.roll_back(&checks).await);
    done.extend(rehearsal.run_runbook().await);
    done.push(rehearsal.recover(&checks).await);
    done.extend(sli);
    rehearsal.attach_evidence(&mut done);
    rehearsal.finish(done).await
}

/// The three checks every rehearsal makes, before they have outcomes.
struct Checks {
    detected: Check,
    rolled_back: Check,
    recovered: Check,
}

impl Checks {
    fn new(plan: &RehearsalPlan) -> Self {
        let severity = severity(&plan.meta);
        let rolled_back =
            Check::new(STEP, "rollback ran", severity).threshold(match &plan.canary.rollback {
                Some(_) => "the rollback hook succeeds",
                None => "gauntlet's split sends every request to the baseline",
            });
        Self {
            detected: Check::new(STEP, "regression detected", severity)
                .threshold(format!("the judges reject within {}", plan.detect_within)),
            rolled_back,
            recovered: Check::new(STEP, "recovered", severity).threshold(format!(
                "{} consecutive good requests within the RTO of {}",
                plan.recovery_samples, plan.rto
            )),
        }
    }

    /// The rehearsal could not run: detection inconclusive, the rest skipped.
    fn not_run(self, why: String) -> Vec<Check> {
        vec![
            self.detected.outcome(Outcome::Inconclusive, why.clone()),
            self.rolled_back.outcome(Outcome::Skipped, why.clone()),
            self.recovered.outcome(Outcome::Skipped, why),
        ]
    }
}

/// A rehearsal in progress: the split and its load, the regression, what the judges saw.
struct InProgress<'a> {
    ctx: &'a RunContext,
    plan: &'a RehearsalPlan,
    severity: Severity,
    panel: Panel,
    split: TrafficSplit,
    observations: UnboundedReceiver<Observation>,
    load: RunningLoad,
    sli: Option<SliReading>,
    applied: Vec<Applied>,
    /// Each real fault's undo: what was done, and whether it was verified.
    undone: Vec<(String, bool)>,
    injected: Instant,
    seen: Vec<Observation>,
    /// What it measured so far (its checks come at the end).
    output: StepOutput,
    /// When the judges decided to roll back.
    decided: Instant,
    /// What the golden set said (`quality: true`): its verdict and explanation.
    quality: Option<(Verdict, String)>,
    /// What the rollback runbook changed, to put back once the rehearsal is over.
    runbook_undo: Vec<(u64, crate::calls::Resolved)>,
    /// From the regression going in to the baseline serving well (when it recovered), and
    /// whether a rollback was tried at all.
    restored: Option<Option<Duration>>,
}

impl<'a> InProgress<'a> {
    /// Start: the judges, the split (the candidate at the rehearsal's weight), its load, and
    /// the SLI's reading before anything is broken.
    async fn start(ctx: &'a RunContext, plan: &'a RehearsalPlan) -> Result<Self, String> {
        let canary = &plan.canary;
        let baseline = ctx
            .baseline
            .as_ref()
            .ok_or("the rehearsal needs `targets.baseline` to roll back to")?;
        let panel = Panel::new(&canary.judges, canary.alpha.ratio(), canary.beta.ratio(), 0)
            .map_err(|e| format!("no judge can be built: {e}"))?;
        let (split, mut observations) = TrafficSplit::start(
            baseline,
            &ctx.candidate,
            None,
            None,
            plan.seed.derive("split", 0),
        )
        .await
        .map_err(|e| format!("cannot start the traffic split: {e}"))?;
        let sli_budget = match plan.sli {
            Some(_) => SLI_BEFORE_BOUND,
            None => Duration::ZERO,
        };
        let budget =
            plan.detect_within.as_std() + plan.rto.as_std() + sli_budget + Duration::from_secs(5);
        let load = Load {
            rate: canary.rate.per_second(),
            connections: canary.connections as usize,
            seed: plan.seed.derive("load", 0),
        };
        let load = RunningLoad::start(ctx, &split, load, budget);
        split.set_weight(plan.weight.ratio());
        let sli = match &plan.sli {
            Some(spec) => Some(SliReading::before(ctx, spec, &mut observations).await),
            None => None,
        };
        Ok(Self {
            ctx,
            plan,
            severity: severity(&plan.meta),
            panel,
            split,
            observations,
            load,
            sli,
            applied: Vec::new(),
            undone: Vec::new(),
            injected: Instant::now(),
            seen: Vec::new(),
            decided: Instant::now(),
            quality: None,
            runbook_undo: Vec::new(),
            restored: None,
            output: StepOutput::default(),
        })
    }

    fn event(&self, kind: &str, message: impl Into<String>) {
        self.ctx.recorder.event(Some(STEP), kind, message);
    }

    /// Inject: the real faults through the journal, then the split's own errors and latency.
    async fn inject(&mut self) -> Result<(), String> {
        for (i, fault) in self.plan.faults.iter().enumerate() {
            let seed = self.plan.seed.derive("fault", i as u64);
            match inject::apply(self.ctx, STEP, i, fault, seed).await {
                Ok((done, line)) => {
                    self.event("fault-applied", line);
                    self.applied.push(done);
                }
                Err(e) => return Err(format!("a fault could not be applied: {e}")),
            }
        }
        let plan = self.plan;
        if plan.error_rate.ratio() > 0.0 || !plan.latency.as_std().is_zero() {
            self.split.set_fault(Some(ArmFault {
                error_rate: plan.error_rate.ratio(),
                added_latency: plan.latency.as_std(),
            }));
        }
        self.injected = Instant::now();
        self.event(
            "regression-injected",
            format!(
                "candidate arm at {}: {} errors, +{} latency from the split, {} real fault(s)",
                plan.weight,
                plan.error_rate,
                plan.latency,
                plan.faults.len()
            ),
        );
        Ok(())
    }

    /// Detect: every outcome to the judges until they reject, or the bound runs out; with
    /// `quality: true` the golden set is asked of both arms meanwhile, and its judge's reject
    /// counts too. Returns how long after the injection they rejected.
    async fn detect(&mut self) -> Option<Duration> {
        let deadline = tokio::time::Instant::now() + self.plan.detect_within.as_std();
        let (ctx, golden) = (self.ctx, self.plan.quality.as_ref());
        let asking = async move {
            match golden {
                Some(plan) => super::quality::detect(ctx, plan).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(asking);
        let mut asked = golden.is_none();
        loop {
            let next = tokio::select! {
                next = self.observations.recv() => next,
                said = &mut asking, if !asked => {
                    asked = true;
                    let (verdict, said) = match said {
                        Ok((verdict, said, items)) => (verdict, format!("{said} ({items} items)")),
                        Err(why) => (Verdict::Continue, format!("the golden set could not be asked: {why}")),
                    };
                    self.event("golden-set", said.clone());
                    self.quality = Some((verdict, said));
                    if verdict == Verdict::Reject {
                        return Some(self.injected.elapsed());
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(deadline) => return None,
            };
            let observation = next?;
            if let Some(reading) = self.sli.as_mut() {
                reading.sent(&observation);
            }
            self.seen.push(observation);
            self.panel.observe(&observation);
            if self.panel.verdict() == Verdict::Reject {
                return Some(self.injected.elapsed());
            }
        }
    }

    /// The SLI's reading during the regression, as a check (with `sli:` only).
    async fn read_sli(&mut self) -> Option<Check> {
        let spec = self.plan.sli.as_ref()?;
        let mut reading = self.sli.take()?;
        reading.during(self.ctx, spec).await;
        Some(reading.check(spec, self.severity, &mut self.output))
    }

    /// The regression went unnoticed: it comes out, and the rollback is never tried.
    async fn undetected(mut self, checks: Checks, sli: Option<Check>) -> StepOutput {
        self.remove_regression("regression removed; it was never detected")
            .await;
        let mut explained: Vec<String> =
            self.panel.seats.iter().map(|s| s.judge.explain()).collect();
        match &self.quality {
            Some((_, said)) => explained.push(said.clone()),
            None if self.plan.quality.is_some() => {
                explained.push("the golden set had not decided".into())
            }
            None => {}
        }
        let mut done = vec![
            checks.detected.samples(self.seen.len() as u64).outcome(
                Outcome::Fail,
                format!(
                    "the judges did not reject an injected regression within {}: {}",
                    self.plan.detect_within,
                    explained.join("; ")
                ),
            ),
            checks
                .rolled_back
                .outcome(Outcome::Skipped, "nothing was detected"),
            checks
                .recovered
                .outcome(Outcome::Skipped, "nothing was detected"),
        ];
        done.extend(sli);
        self.finish(done).await
    }

    /// What the deciding judges said, when they rejected.
    fn detected_check(&self, checks: &Checks, after: Duration) -> Check {
        let mut deciding: Vec<String> = self
            .panel
            .seats
            .iter()
            .filter(|s| !s.dry_run && s.judge.verdict() == Verdict::Reject)
            .map(|s| s.judge.explain())
            .collect();
        if let Some((Verdict::Reject, said)) = &self.quality {
            deciding.push(said.clone());
        }
        self.event(
            "detected",
            format!("after {:.2}s: {}", after.as_secs_f64(), deciding.join("; ")),
        );
        checks
            .detected
            .clone()
            .samples(self.seen.len() as u64)
            .measured(format!("detected after {:.2}s", after.as_secs_f64()))
            .outcome(
                Outcome::Pass,
                format!(
                    "rejected {:.2}s after the regression was injected: {}",
                    after.as_secs_f64(),
                    deciding.join("; ")
                ),
            )
    }

    /// Roll back: the split sends everything to the baseline, then the rollback hook runs.
    async fn roll_back(&mut self, checks: &Checks) -> Check {
        self.event("rollback-decided", "judges rejected the regression");
        self.decided = Instant::now();
        self.split.set_weight(0.0);
        let hook = self.plan.canary.rollback.as_ref();
        match run_action(self.ctx, hook, "rollback", "rehearsal").await {
            Ok(done) => {
                self.event("rollback-done", done.clone());
                checks
                    .rolled_back
                    .clone()
                    .outcome(Outcome::Pass, format!("rolled back: {done}"))
            }
            Err(e) => {
                self.event("rollback-failed", e.clone());
                checks
                    .rolled_back
                    .clone()
                    .outcome(Outcome::Fail, format!("rollback hook failed: {e}"))
            }
        }
    }

    /// The rollback runbook, when the rehearsal names one: executed and timed as the
    /// rollback's procedure (the split has already moved); its report kept.
    async fn run_runbook(&mut self) -> Option<Check> {
        let (name, runbook) = self.plan.runbook.as_ref()?;
        let executed =
            crate::runbook::execute(self.ctx, (name, runbook), (STEP, ""), self.severity).await;
        self.output.measure(
            format!("rollback_rehearsal.runbook.{name}.total"),
            executed.report.total_ms as f64 / 1000.0,
        );
        self.output.runbooks.push(executed.report);
        self.runbook_undo = executed.undo;
        Some(executed.check)
    }

    /// Recover: consecutive good requests on the baseline after the rollback, within the
    /// RTO; then the regression comes out.
    async fn recover(&mut self, checks: &Checks) -> Check {
        let plan = self.plan;
        let deadline = tokio::time::Instant::now() + plan.rto.as_std();
        let (mut streak, mut after_rollback) = (0u32, 0u64);
        let recovery = loop {
            let next = tokio::select! {
                next = self.observations.recv() => next,
                _ = tokio::time::sleep_until(deadline) => break None,
            };
            let Some(observation) = next else { break None };
            if observation.arm == Arm::Candidate {
                continue; // answers already in flight to the candidate when it was rolled back
            }
            after_rollback += 1;
            streak = if observation.ok { streak + 1 } else { 0 };
            if streak >= plan.recovery_samples {
                break Some(self.decided.elapsed());
            }
        };
        self.remove_regression("injected regression removed").await;
        let since_injection = self.decided.duration_since(self.injected);
        self.restored = Some(recovery.map(|after| since_injection + after));
        let recovered = checks.recovered.clone();
        let n = plan.recovery_samples;
        match recovery {
            Some(after) => {
                let s = after.as_secs_f64();
                self.output.measure("rollback_rehearsal.time_to_recover", s);
                self.event(
                    "recovered",
                    format!("{n} good requests in a row {s:.2}s after the rollback decision"),
                );
                recovered
                    .samples(after_rollback)
                    .measured(format!("recovered after {s:.2}s"))
                    .outcome(
                        Outcome::Pass,
                        format!(
                            "the baseline served {n} good requests in a row {s:.2}s after the rollback decision (RTO {})",
                            plan.rto
                        ),
                    )
            }
            None if after_rollback == 0 => recovered.outcome(
                Outcome::Inconclusive,
                "no request reached the baseline after the rollback",
            ),
            None => recovered.samples(after_rollback).outcome(
                Outcome::Fail,
                format!(
                    "no {n} good requests in a row within the RTO of {} ({after_rollback} requests seen)",
                    plan.rto
                ),
            ),
        }
    }

    /// The split's fault off, the real faults out (newest first), the load stopped.
    async fn remove_regression(&mut self, why: &str) {
        self.split.set_fault(None);
        self.undo_faults().await;
        self.load.stop();
        self.event("fault-removed", why);
    }

    /// The real faults out, newest first, then what the runbook changed put back, each undo
    /// kept for the `faults undone` check.
    async fn undo_faults(&mut self) {
        let runbook = std::mem::take(&mut self.runbook_undo);
        for (line, ok) in crate::runbook::put_back(self.ctx, runbook).await {
            self.event("fault-removed", line.clone());
            self.undone.push((line, ok));
        }
        while let Some(done) = self.applied.pop() {
            let (line, ok) = inject::undo(self.ctx, done).await;
            self.event("fault-removed", line.clone());
            self.undone.push((line, ok));
        }
    }

    /// With real faults: whether each came out (first among the checks when one did not).
    fn undone_check(&self, checks: &mut Vec<Check>) {
        if self.undone.is_empty() {
            return;
        }
        let ok = self.undone.iter().all(|(_, ok)| *ok);
        let lines: Vec<&str> = self.undone.iter().map(|(l, _)| l.as_str()).collect();
        let check = Check::new(STEP, gauntlet_report::UNDONE_CHECK, self.severity)
            .threshold("every real fault out and verified")
            .outcome(
                if ok { Outcome::Pass } else { Outcome::Fail },
                lines.join("; "),
            );
        match ok {
            true => checks.push(check),
            false => checks.insert(0, check),
        }
    }

    /// What the judges saw, and each one's trajectory, as the checks' evidence.
    fn attach_evidence(&self, checks: &mut [Check]) {
        let recorder = &self.ctx.recorder;
        let mut evidence = Vec::new();
        let observed = observations_gz(&self.seen);
        if let Ok(path) = recorder.evidence(STEP, "observations.jsonl.gz", &observed) {
            evidence.push(path);
        }
        for seat in &self.panel.seats {
            let svg = gauntlet_report::svg::trajectory(
                &format!("rehearsal: {}", seat.name),
                &seat.judge.trajectory().points,
            );
            let name = format!("{}.svg", seat.name);
            if let Ok(path) = recorder.evidence(STEP, &name, svg.as_bytes()) {
                evidence.push(path);
            }
        }
        for check in checks {
            check.evidence = evidence.clone();
        }
    }

    /// Stops everything early (the faults that went in come out, their undo checked).
    async fn stop(mut self, checks: &mut Vec<Check>) {
        self.undo_faults().await;
        self.undone_check(checks);
        self.load.stop();
        self.load.finish().await;
    }

    /// The load's end, then the alerts the regression must have raised: waited for once
    /// the rollback and recovery are done (an alert that fires as the rollback happens is
    /// still the page someone gets).
    async fn finish(mut self, mut checks: Vec<Check>) -> StepOutput {
        self.undone_check(&mut checks);
        self.load.finish().await;
        let expected: Vec<_> = self.plan.alerts.iter().collect();
        let (alerts, arrivals) =
            crate::alerts::wait_for(self.ctx, STEP, "", &expected, self.injected, self.severity)
                .await;
        let paged = arrivals.iter().map(|a| a.after).min();
        for arrival in arrivals {
            let after = arrival.after.as_secs_f64();
            self.ctx.recorder.event(
                Some(STEP),
                "alert",
                format!(
                    "{} notified {after:.2}s after the regression went in (via {})",
                    arrival.name, arrival.receiver
                ),
            );
            let name = format!("rollback_rehearsal.time_to_alert.{}", arrival.name);
            self.output.measure(name, after);
        }
        self.output.checks = checks;
        self.output.checks.extend(alerts);
        if let Some(paged) = paged {
            let acked = crate::incident::acknowledged(self.ctx, STEP, self.injected + paged).await;
            if let Ok((after, by)) = &acked {
                let said = format!("the page, by {by}, {:.2}s after it", after.as_secs_f64());
                self.ctx.recorder.event(Some(STEP), "acknowledged", said);
                self.output
                    .measure("rollback_rehearsal.mtta", after.as_secs_f64());
            }
            let check = crate::incident::mtta_check(self.ctx, (STEP, ""), self.severity, &acked);
            self.output.checks.push(check);
        }
        if let Some(restored) = self.restored {
            if let Some(after) = restored {
                self.output
                    .measure("rollback_rehearsal.mttr", after.as_secs_f64());
            }
            let check = crate::incident::mttr_check(self.ctx, (STEP, ""), self.severity, restored);
            self.output.checks.push(check);
        }
        self.output
    }
}
