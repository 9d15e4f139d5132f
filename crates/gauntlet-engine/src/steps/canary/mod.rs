//! Step 8, the canary: shadow → small weights → promotion, judged continuously at every
//! stage through gauntlet's traffic split. Any reject or abort trigger rolls back at once;
//! acceptance moves to the next stage early; a stage that runs out of bake time without a
//! decision is inconclusive (a truncated sequential test is never a pass).
//!
//! With `source: {prometheus: …}` the traffic is a controller's (Argo Rollouts, Flagger):
//! no split, no load; each stage is judged on the per-arm counts Prometheus holds
//! (`prometheus.rs`), and promotion and rollback are the hooks' and the controller's.
//!
//! The rollback rehearsal runs the same parts: `panel.rs` (the judges), `stage.rs` (a stage
//! through the split), `load.rs` (its traffic), `recording.rs` (what the panel saw, for
//! `gauntlet judge`), `hooks.rs` (promotion and rollback), `evidence.rs` (checks and files).

mod evidence;
mod hooks;
mod load;
mod panel;
mod prometheus;
mod recording;
mod stage;

pub(crate) use evidence::{judge_checks, stage_evidence};
pub(crate) use hooks::run_action;
pub(crate) use load::{Load, RunningLoad, mix_for};
pub use panel::{Panel, Seat};
pub use recording::{
    ObservationError, Observations, Recording, observations_gz, read_observations,
};
pub(crate) use stage::run_stage;
pub use stage::{ArmTotals, LatencySample, StageEnd, StageJudge, StageRun};

use gauntlet_net::TrafficSplit;
use gauntlet_report::{Check, Outcome, Severity};
use gauntlet_spec::{CanaryPlan, Stage as StagePlan, StageWeight, StepMeta};
use gauntlet_stats::Observation;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{Step, StepFuture, StepOutput, severity};
use crate::context::{RunContext, StageState};

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

/// Phases: start the split; per stage, set the weight, **bake** under load while the panel
/// judges, keep the evidence; on a reject, an abort trigger or a stage without a decision,
/// **roll back** at once; when every stage accepted, **promote**.
async fn run(ctx: &RunContext, config: &CanaryPlan) -> StepOutput {
    let severity = severity(&config.meta);
    let traffic = match &config.source {
        Some(plan) => Traffic::Counted(Box::new(prometheus::Source::new(plan))),
        None => match split(ctx, config, severity).await {
            Ok(traffic) => traffic,
            Err(output) => return output,
        },
    };
    let mut rollout = Rollout {
        ctx,
        config,
        severity,
        traffic,
        accepted: 0,
        totals: Default::default(),
        output: StepOutput::default(),
    };
    for (index, stage) in config.stages.iter().enumerate() {
        let label = format!("stage {} ({})", index + 1, stage.weight);
        if matches!(&stage.weight, StageWeight::Share(p) if p.ratio() == 1.0) {
            break; // the 100% stage is the promotion, below
        }
        match rollout.bake(index, stage, &label).await {
            Some(StageEnd::Accepted) => continue,
            Some(end) => {
                rollout.roll_back(index, &label, &end).await;
                return rollout.finish();
            }
            None => return rollout.finish(),
        }
    }
    rollout.promote().await;
    rollout.finish()
}

/// Where a stage's observations come from.
enum Traffic<'a> {
    /// Gauntlet's split in front of both arms, and what it observes.
    Split {
        split: TrafficSplit,
        observations: UnboundedReceiver<Observation>,
    },
    /// The traffic a controller moved, counted by Prometheus.
    Counted(Box<prometheus::Source<'a>>),
}

/// Gauntlet's own split in front of the baseline and the candidate.
async fn split(
    ctx: &RunContext,
    config: &CanaryPlan,
    severity: Severity,
) -> Result<Traffic<'static>, StepOutput> {
    let Some(baseline) = &ctx.baseline else {
        return Err(vec![Check::new(STEP, "baseline", severity).outcome(
            Outcome::Inconclusive,
            "the canary compares the candidate with a baseline, and `targets.baseline` is not set",
        )]
        .into());
    };
    let started = TrafficSplit::start(
        baseline,
        &ctx.candidate,
        config.sticky_header.clone(),
        config.mirror.clone(),
        config.seed.derive("split", 0),
    )
    .await;
    let (split, observations) = match started {
        Ok(started) => started,
        Err(e) => {
            return Err(vec![Check::new(STEP, "traffic split", severity).outcome(
                Outcome::Inconclusive,
                format!("cannot start the traffic split: {e}"),
            )]
            .into());
        }
    };
    let said = format!("traffic split on {}", split.addr());
    ctx.recorder.event(Some(STEP), "split", said);
    Ok(Traffic::Split {
        split,
        observations,
    })
}

/// The canary in progress: its split, what the stages have seen so far, and its output.
struct Rollout<'a> {
    ctx: &'a RunContext,
    config: &'a CanaryPlan,
    severity: Severity,
    traffic: Traffic<'a>,
    /// Stages accepted so far.
    accepted: usize,
    totals: [ArmTotals; 2],
    output: StepOutput,
}

impl Rollout<'_> {
    /// One stage at its weight, judged until a decision or the end of its bake; `None` when
    /// its judges cannot be built (the check says why).
    async fn bake(&mut self, index: usize, stage: &StagePlan, label: &str) -> Option<StageEnd> {
        let (config, recorder) = (self.config, &self.ctx.recorder);
        let started = format!(
            "{label} started: bake up to {}, at least {} candidate samples",
            stage.bake, stage.min_samples
        );
        recorder.event(Some(STEP), "stage", started);
        let min_samples = u64::from(stage.min_samples);
        let panel = Panel::new(
            &config.judges,
            config.alpha.ratio(),
            config.beta.ratio(),
            min_samples,
        );
        let mut panel = match panel {
            Ok(panel) => panel,
            Err(e) => {
                self.output.checks.push(
                    Check::new(STEP, &format!("{label} judges"), self.severity)
                        .outcome(Outcome::Inconclusive, format!("no judge can be built: {e}")),
                );
                return None;
            }
        };
        let run = self.judge(index, stage, label, &mut panel).await;
        recorder.stage(&StageState {
            index,
            label: label.to_string(),
            accepted: self.accepted,
            state: run.end.word(),
            judges: panel.states(),
        });
        if run.end == StageEnd::Accepted {
            self.accepted += 1;
        }
        for (total, stage) in self.totals.iter_mut().zip(&run.arms) {
            total.add(stage);
        }
        measure(&mut self.output, &self.totals);
        self.keep(label, &stage.weight, &panel, &run);
        Some(run.end)
    }

    /// The stage's observations to the panel: through the split at the stage's weight, or
    /// counted by Prometheus at whatever weight the controller set.
    async fn judge(
        &mut self,
        index: usize,
        stage: &StagePlan,
        label: &str,
        panel: &mut Panel,
    ) -> StageRun {
        let (config, recorder, accepted) = (self.config, &self.ctx.recorder, self.accepted);
        let show = |panel: &Panel| {
            recorder.stage(&StageState {
                index,
                label: label.to_string(),
                accepted,
                state: "judging",
                judges: panel.states(),
            })
        };
        show(panel);
        let bake = stage.bake.as_std();
        let judging = StageJudge::new(panel, u64::from(stage.min_samples), config.abort.as_ref())
            .recording()
            .live(&show);
        match &mut self.traffic {
            Traffic::Split {
                split,
                observations,
            } => {
                match &stage.weight {
                    StageWeight::Shadow => split.set_shadow(),
                    StageWeight::Share(p) => split.set_weight(p.ratio()),
                }
                let load = Load {
                    rate: config.rate.per_second(),
                    connections: config.connections as usize,
                    seed: config.seed.derive("load", index as u64),
                };
                run_stage(self.ctx, split, observations, judging, load, bake).await
            }
            Traffic::Counted(source) => {
                let seed = config.seed.derive("prometheus", index as u64);
                prometheus::run_stage(source, seed, judging, bake).await
            }
        }
    }

    /// A stage's checks, with its evidence files, and what it said on the timeline.
    fn keep(&mut self, label: &str, weight: &StageWeight, panel: &Panel, run: &StageRun) {
        let recorder = &self.ctx.recorder;
        let evidence = stage_evidence(self.ctx, STEP, label, panel, run);
        let weight = weight.to_string();
        let mut checks = judge_checks(STEP, label, panel, run, self.severity, &weight);
        for check in &mut checks {
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
        let latency = format!("{label}: {}", run.latency_summary);
        recorder.event(Some(STEP), "stage-latency", latency);
        self.output.checks.extend(checks);
        if let StageEnd::Aborted(reason) = &run.end {
            self.output.checks.push(
                Check::new(STEP, &format!("{label} abort triggers"), self.severity)
                    .samples(run.candidate_samples)
                    .outcome(Outcome::Fail, reason.clone()),
            );
        }
        if let StageEnd::Unmeasured(reason) = &run.end {
            self.output.checks.push(
                Check::new(STEP, &format!("{label} counts"), self.severity)
                    .samples(run.candidate_samples)
                    .threshold("every reading whole: one series per query, totals that only rise")
                    .outcome(Outcome::Inconclusive, reason.clone()),
            );
        }
    }

    /// Every request to the baseline at once, then the rollback hook; the stages not
    /// reached are skipped.
    async fn roll_back(&mut self, index: usize, label: &str, end: &StageEnd) {
        let (ctx, config, recorder) = (self.ctx, self.config, &self.ctx.recorder);
        let why = match end {
            StageEnd::Rejected => "a judge rejected the candidate",
            StageEnd::TimedOut => "the stage ended without a decision",
            StageEnd::Unmeasured(_) => "the counts could not be trusted",
            _ => "an abort trigger fired",
        };
        recorder.event(Some(STEP), "rollback-decided", format!("{label}: {why}"));
        let check = Check::new(STEP, "rollback", self.severity).threshold(hook_threshold(
            config.rollback.as_ref(),
            "the rollback hook succeeds",
            "gauntlet's split sends every request to the baseline",
        ));
        let Traffic::Split { split, .. } = &self.traffic else {
            let check = self.controllers(check, config.rollback.as_ref(), "rollback", label);
            self.output.checks.push(check.await);
            self.not_reached(index, label);
            return;
        };
        split.set_weight(0.0);
        let action = run_action(ctx, config.rollback.as_ref(), "rollback", label).await;
        self.output.checks.push(match action {
            Ok(done) => {
                let said = format!("all traffic on the baseline; {done}");
                recorder.event(Some(STEP), "rollback-done", said);
                check.outcome(Outcome::Pass, format!("rolled back after {label}: {done}"))
            }
            Err(e) => {
                recorder.event(Some(STEP), "rollback-failed", e.clone());
                check.outcome(Outcome::Fail, format!("rollback hook failed: {e}"))
            }
        });
        self.not_reached(index, label);
    }

    /// The stages after the one rolled back.
    fn not_reached(&mut self, index: usize, label: &str) {
        for later in self.config.stages.iter().skip(index + 1) {
            let name = format!("stage ({}) not reached", later.weight);
            self.output.checks.push(
                Check::new(STEP, &name, self.severity)
                    .outcome(Outcome::Skipped, format!("rolled back at {label}")),
            );
        }
    }

    /// On a controller's traffic, a promotion or rollback is the controller's (it acts on
    /// gauntlet's answer) and the hook's, when one is configured.
    async fn controllers(
        &self,
        check: Check,
        hook: Option<&gauntlet_spec::Action>,
        what: &str,
        label: &str,
    ) -> Check {
        if hook.is_none() {
            return check.outcome(
                Outcome::Skipped,
                format!("the traffic is the controller's: it acts on this decision ({what} after {label}); no {what} hook is configured"),
            );
        }
        match run_action(self.ctx, hook, what, label).await {
            Ok(done) => check.outcome(Outcome::Pass, format!("{what} after {label}: {done}")),
            Err(e) => check.outcome(Outcome::Fail, format!("{what} hook failed: {e}")),
        }
    }

    /// Every stage accepted: all traffic on the candidate, then the promotion hook.
    async fn promote(&mut self) {
        let hook = self.config.promote.as_ref();
        let Traffic::Split { split, .. } = &self.traffic else {
            let check = Check::new(STEP, "promotion", self.severity)
                .threshold("the promotion hook succeeds, or the controller promotes on GO");
            let check = self.controllers(check, hook, "promote", "every stage");
            self.output.checks.push(check.await);
            return;
        };
        split.set_weight(1.0);
        self.ctx.recorder.event(
            Some(STEP),
            "promotion",
            "every stage accepted: all traffic on the candidate",
        );
        let check = Check::new(STEP, "promotion", self.severity).threshold(hook_threshold(
            hook,
            "the promotion hook succeeds",
            "gauntlet's split sends every request to the candidate",
        ));
        self.output
            .checks
            .push(match run_action(self.ctx, hook, "promote", "100%").await {
                Ok(done) => check.outcome(Outcome::Pass, format!("promoted to 100%: {done}")),
                Err(e) => check.outcome(Outcome::Fail, format!("promotion hook failed: {e}")),
            });
    }

    fn finish(mut self) -> StepOutput {
        if let Traffic::Split { split, .. } = &self.traffic {
            self.output.failed_requests = split.failures();
        }
        self.output
    }
}

/// The canary's totals so far, per arm, for the gates: `canary.candidate.latency_p99`
/// (seconds), `canary.baseline.error_rate` (a ratio), `canary.candidate.requests`, ….
fn measure(output: &mut StepOutput, totals: &[ArmTotals; 2]) {
    for (arm, total) in ["baseline", "candidate"].iter().zip(totals) {
        for (name, q) in [
            ("latency_p50", 0.5),
            ("latency_p90", 0.9),
            ("latency_p95", 0.95),
            ("latency_p99", 0.99),
        ] {
            if let Some(v) = total.latency(q) {
                output.measure(format!("{STEP}.{arm}.{name}"), v);
            }
        }
        if let Some(rate) = total.error_rate() {
            output.measure(format!("{STEP}.{arm}.error_rate"), rate);
        }
        output.measure(format!("{STEP}.{arm}.requests"), total.requests as f64);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gauntlet_report::Outcome;
    use gauntlet_spec::StepName;

    use crate::testing::{FakeSystem, Harness};

    const SPEC: &str = "schema_version: 1
service: {name: s, version: '2'}
targets:
  candidate: {url: '{candidate}'}
  baseline: {url: '{baseline}'}
traffic: {rate: 200/s, requests: [{path: /items}]}
steps:
  canary:
    rate: 200/s
    connections: 4
    stages:
      - {weight: 25%, bake: 60s, min_samples: 100}
      - {weight: 50%, bake: 60s, min_samples: 100}
      - {weight: 100%}
    judges:
      error_rate: {p0: 1%, delta: 4%}
";

    fn healthy(_: u64) -> (u16, Duration) {
        (200, Duration::from_millis(2))
    }

    /// Every fifth request fails: 20%, far over p0 + δ.
    fn failing(n: u64) -> (u16, Duration) {
        (if n % 5 == 4 { 500 } else { 200 }, Duration::from_millis(2))
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_candidate_is_rolled_back_at_its_first_stage() {
        let (baseline, candidate) = (
            FakeSystem::start(healthy).await,
            FakeSystem::start(failing).await,
        );
        let harness = Harness::new(SPEC, &candidate, Some(&baseline));
        let output = harness.step(StepName::Canary).run(&harness.ctx).await;
        assert_eq!(output.outcome_of("stage 1 (25%) error-rate"), Outcome::Fail);
        assert_eq!(output.outcome_of("rollback"), Outcome::Pass);
        assert_eq!(
            output.outcome_of("stage (50%) not reached"),
            Outcome::Skipped
        );
        assert!(output.checks.iter().all(|c| c.name != "promotion"));
        // The failed requests are handed back for the taxonomy, and the totals for gates.
        assert!(!output.failed_requests.is_empty());
        let rate = output.measurements["canary.candidate.error_rate"];
        assert!(rate > 0.1, "{rate}");
        assert!(candidate.served() > 0 && baseline.served() > candidate.served());
    }

    #[tokio::test(start_paused = true)]
    async fn a_healthy_candidate_is_promoted_after_every_stage_accepts() {
        let (baseline, candidate) = (
            FakeSystem::start(healthy).await,
            FakeSystem::start(healthy).await,
        );
        let harness = Harness::new(SPEC, &candidate, Some(&baseline));
        let output = harness.step(StepName::Canary).run(&harness.ctx).await;
        let failed: Vec<_> = output
            .checks
            .iter()
            .filter(|c| !c.outcome.is_pass())
            .collect();
        assert!(failed.is_empty(), "{failed:#?}");
        let promotion = output
            .checks
            .iter()
            .find(|c| c.name == "promotion")
            .unwrap();
        assert!(
            promotion.reason.contains("promoted to 100%"),
            "{}",
            promotion.reason
        );
        assert_eq!(output.measurements["canary.candidate.error_rate"], 0.0);
    }
}
