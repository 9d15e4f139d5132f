//! Step 3, chaos drills. For each drill: the steady-state hypothesis must hold before
//! (else the drill is inconclusive — we do not break a broken system); the faults go in,
//! each through the cleanup journal; the probes run every interval while they are in;
//! the faults come out; the hypothesis must hold again. The gameday timeline (start,
//! fault applied, detection, action, recovery, fault removed) gives the time to detect and
//! the time to recover, in the report and as an SVG in the run directory.
//!
//! `drill.rs` holds a drill's phases, `rounds.rs` the probe rounds, `expect.rs` the judging
//! of `hold` and `recover within`.

mod drill;
mod expect;
mod rounds;

use gauntlet_spec::{ChaosPlan, StepMeta};

use super::{Step, StepFuture, StepOutput};
use crate::context::RunContext;

const STEP: &str = gauntlet_spec::StepName::Chaos.as_str();

pub struct Chaos(pub(crate) ChaosPlan);

impl Step for Chaos {
    fn step(&self) -> gauntlet_spec::StepName {
        gauntlet_spec::StepName::Chaos
    }
    fn meta(&self) -> &StepMeta {
        &self.0.meta
    }
    fn run<'a>(&'a self, ctx: &'a RunContext) -> StepFuture<'a> {
        Box::pin(async move {
            let mut output = StepOutput::default();
            for drill in &self.0.drills {
                output.extend(drill::run(ctx, &self.0, drill).await);
            }
            output
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gauntlet_report::Outcome;
    use gauntlet_spec::StepName;

    use super::StepOutput;
    use crate::testing::{FakeSystem, Harness};

    /// One drill on the candidate's proxy, `fault` in for 2s, the steady state probed every
    /// 100ms, `expect` what the drill expects.
    async fn drill(fault: &str, expect: &str) -> (StepOutput, Harness) {
        let spec = format!(
            "schema_version: 1
service: {{name: s, version: '2'}}
targets:
  candidate: {{url: '{{candidate}}'}}
traffic: {{rate: 1/s, requests: [{{path: /}}]}}
steps:
  chaos:
    interval: 100ms
    steady_state:
      before: 500ms
      after: 2s
      probes: [{{name: up, http: {{path: /, status: [200], within: 200ms}}}}]
    drills:
      - {{name: d, faults: [{fault}], duration: 2s, expect: {expect}}}
"
        );
        let system = FakeSystem::start(|_| (200, Duration::from_millis(1))).await;
        let harness = Harness::new(&spec, &system, None).with_proxy().await;
        let output = harness.step(StepName::Chaos).run(&harness.ctx).await;
        (output, harness)
    }

    #[tokio::test(start_paused = true)]
    async fn a_fault_the_service_does_not_survive_fails_the_drill_and_is_undone() {
        let (output, harness) =
            drill("{kind: http_abort, target: candidate, status: 503}", "hold").await;
        assert_eq!(output.outcome_of("d: hold"), Outcome::Fail);
        assert_eq!(output.outcome_of("d: faults undone"), Outcome::Pass);
        let proxy = harness.ctx.systems["candidate"].proxy.as_ref().unwrap();
        assert!(proxy.faults().is_empty(), "the fault is out of the proxy");
        let drill = &output.drills[0];
        assert!(
            drill.events.iter().any(|e| e.kind == "fault-removed"),
            "{:?}",
            drill.events
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_fault_within_the_probes_bounds_holds() {
        let latency = "{kind: latency, target: candidate, latency: 50ms}";
        let (output, _harness) = drill(latency, "hold").await;
        let failed = output.not_passed();
        assert!(failed.is_empty(), "{failed:#?}");
        assert_eq!(output.drills[0].outcome, Outcome::Pass);
    }

    #[tokio::test(start_paused = true)]
    async fn a_recovery_is_timed_and_handed_back_as_a_measurement() {
        // The fault takes itself out after 500ms of the drill's 2s.
        let abort = "{kind: http_abort, target: candidate, status: 503, duration: 500ms}";
        let (output, _harness) = drill(abort, "recover within 1s").await;
        assert_eq!(
            output.outcome_of("d: recover within 1s"),
            Outcome::Pass,
            "{:#?}",
            output.checks
        );
        let recovered = output.measurements["chaos.d.time_to_recover"];
        assert!((0.4..=1.0).contains(&recovered), "{recovered}");
    }
}
