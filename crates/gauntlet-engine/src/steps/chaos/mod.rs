//! Step 3, chaos drills. For each drill: the steady-state hypothesis must hold before
//! (else the drill is inconclusive — we do not break a broken system); the faults go in,
//! each through the cleanup journal; the probes run every interval while they are in;
//! the faults come out; the hypothesis must hold again. The gameday timeline (start,
//! fault applied, detection, action, recovery, fault removed) gives the time to detect and
//! the time to recover, in the report and as an SVG in the run directory.
//!
//! `drill.rs` holds a drill's phases, `rounds.rs` the probe rounds, `expect.rs` the judging
//! of `hold` and `recover within`, `chaostoolkit.rs` each drill's Chaos Toolkit journal.

mod chaostoolkit;
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
            let severity = super::severity(&self.0.meta);
            for (name, why) in &self.0.skipped {
                let check =
                    gauntlet_report::Check::new(STEP, &format!("{name}: not run"), severity)
                        .outcome(gauntlet_report::Outcome::Skipped, why.clone());
                output.checks.push(check);
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
        // Its Chaos Toolkit journal: ran to the end, the hypothesis deviated while the fault
        // was in, the fault went in and came out.
        let path = drill.chaostoolkit.as_ref().expect("a journal");
        let text = std::fs::read(harness.ctx.recorder.run_dir().join(path)).unwrap();
        let journal: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(journal["status"], "completed");
        assert_eq!(journal["deviated"], true);
        assert_eq!(journal["steady_states"]["before"]["steady_state_met"], true);
        assert_eq!(journal["steady_states"]["after"]["steady_state_met"], true);
        let during = journal["steady_states"]["during"].as_array().unwrap();
        assert!(during.iter().any(|s| s["steady_state_met"] == false));
        assert_eq!(journal["run"][0]["status"], "succeeded");
        assert_eq!(
            journal["run"][0]["activity"]["provider"]["func"],
            "http_abort"
        );
        assert_eq!(journal["rollbacks"][0]["status"], "succeeded");
        let probe = &journal["experiment"]["steady-state-hypothesis"]["probes"][0];
        assert_eq!(probe["provider"]["type"], "http");
        assert_eq!(probe["tolerance"], 200);
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

    /// A drill whose fault is an action on a file in `dir` (in with one command, out with
    /// another, verified by a third), seen by a side-effect probe while it is in.
    async fn action_drill(dir: &std::path::Path, undo: &str) -> (StepOutput, Harness) {
        let state = dir.join("state");
        let state = state.display();
        let spec = format!(
            "schema_version: 1
service: {{name: s, version: '2'}}
targets:
  candidate: {{url: '{{candidate}}'}}
traffic: {{rate: 1/s, requests: [{{path: /}}]}}
steps:
  chaos:
    interval: 50ms
    steady_state:
      before: 100ms
      after: 1s
      probes: [{{name: up, http: {{path: /, status: [200]}}}}]
    drills:
      - name: d
        duration: 300ms
        faults:
          - kind: action
            apply: {{command: [sh, -c, 'echo in > {state}'], timeout: 5s}}
            undo: {undo}
            verify: {{command: [sh, -c, 'test ! -e {state}']}}
        side_effects:
          - {{name: flag-set, command: {{run: [test, -e, '{state}']}}}}
"
        );
        let system = FakeSystem::start(|_| (200, Duration::from_millis(1))).await;
        let harness = Harness::new(&spec, &system, None);
        let output = harness.step(StepName::Chaos).run(&harness.ctx).await;
        (output, harness)
    }

    #[tokio::test]
    async fn an_action_goes_in_and_comes_out_through_its_calls() {
        let dir = tempfile::tempdir().unwrap();
        let undo = format!(
            "{{command: [rm, '{}']}}",
            dir.path().join("state").display()
        );
        let (output, harness) = action_drill(dir.path(), &undo).await;
        let failed = output.not_passed();
        assert!(failed.is_empty(), "{failed:#?}");
        assert!(output.check("d: side effect flag-set").outcome.is_pass());
        assert!(!dir.path().join("state").exists(), "the undo removed it");
        let undone = &output.check("d: faults undone").reason;
        assert!(undone.contains("verified"), "{undone}");
        let journal = harness.ctx.journal.lock().unwrap();
        assert_eq!(journal.pending().count(), 0, "the undo closed its entry");
    }

    #[tokio::test]
    async fn an_undo_that_fails_fails_the_drill_first_and_stays_in_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let (output, harness) = action_drill(dir.path(), "{command: ['false']}").await;
        let first = &output.checks[0];
        assert_eq!(first.name, "d: faults undone", "{:#?}", output.checks);
        // Unlike Chaos Toolkit's own, the journal of a drill whose undo failed is `failed`.
        let path = output.drills[0].chaostoolkit.as_ref().unwrap();
        let text = std::fs::read(harness.ctx.recorder.run_dir().join(path)).unwrap();
        let journal: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(journal["status"], "failed");
        assert_eq!(journal["rollbacks"][0]["status"], "failed");
        assert_eq!(journal["run"][0]["activity"]["provider"]["type"], "process");
        assert_eq!(first.outcome, Outcome::Fail);
        assert!(first.reason.contains("FAILED"), "{}", first.reason);
        assert_eq!(output.drills[0].outcome, Outcome::Fail);
        // The run's cleanup makes the undo again (and `gauntlet recover` would).
        let mut journal = harness.ctx.journal.lock().unwrap();
        assert_eq!(journal.pending().count(), 1);
        let again = journal.undo_calls();
        assert!(again[0].contains("could NOT undo"), "{again:?}");
        assert_eq!(journal.pending().count(), 0);
    }

    #[tokio::test]
    async fn an_apply_that_fails_is_undone_and_the_drill_proves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("undone");
        let spec = format!(
            "schema_version: 1
service: {{name: s, version: '2'}}
targets:
  candidate: {{url: '{{candidate}}'}}
traffic: {{rate: 1/s, requests: [{{path: /}}]}}
steps:
  chaos:
    steady_state:
      before: 100ms
      probes: [{{name: up, http: {{path: /, status: [200]}}}}]
    drills:
      - name: d
        duration: 300ms
        faults:
          - kind: action
            apply: {{http: {{path: /flags, status: [204]}}}}
            undo: {{command: [touch, '{}']}}
",
            marker.display()
        );
        let system = FakeSystem::start(|_| (200, Duration::from_millis(1))).await;
        let harness = Harness::new(&spec, &system, None);
        let output = harness.step(StepName::Chaos).run(&harness.ctx).await;
        let hold = output.check("d: hold");
        assert_eq!(hold.outcome, Outcome::Inconclusive);
        assert!(hold.reason.contains("answered 200"), "{}", hold.reason);
        assert!(marker.exists(), "a failed apply is undone at once");
    }

    /// A drill of 30s whose fault breaks what its safeguard watches.
    #[tokio::test(start_paused = true)]
    async fn a_breached_safeguard_stops_the_drill_at_once_and_undoes_its_faults() {
        let spec = "schema_version: 1
service: {name: s, version: '2'}
targets:
  candidate: {url: '{candidate}'}
traffic: {rate: 1/s, requests: [{path: /}]}
steps:
  chaos:
    interval: 100ms
    safeguards: [{name: still-serving, http: {path: /, status: [200]}}]
    steady_state:
      before: 300ms
      after: 2s
      probes: [{name: up, http: {path: /, status: [200, 503]}}]
    drills:
      - {name: d, faults: [{kind: http_abort, target: candidate, status: 503}], duration: 30s}
";
        let system = FakeSystem::start(|_| (200, Duration::from_millis(1))).await;
        let harness = Harness::new(spec, &system, None).with_proxy().await;
        let output = harness.step(StepName::Chaos).run(&harness.ctx).await;
        let guard = output.check("d: safeguards");
        assert_eq!(guard.outcome, Outcome::Fail, "{guard:#?}");
        assert!(guard.reason.contains("still-serving"), "{}", guard.reason);
        // The drill held by its own probes, but was stopped: not judged to the end.
        assert_eq!(output.outcome_of("d: hold"), Outcome::Inconclusive);
        assert_eq!(output.outcome_of("d: faults undone"), Outcome::Pass);
        let drill = &output.drills[0];
        let aborted = drill.events.iter().find(|e| e.kind == "aborted").unwrap();
        assert!(
            aborted.at_ms < 2_000,
            "stopped at once, not after 30s: {aborted:?}"
        );
        let proxy = harness.ctx.systems["candidate"].proxy.as_ref().unwrap();
        assert!(proxy.faults().is_empty());
    }
}
