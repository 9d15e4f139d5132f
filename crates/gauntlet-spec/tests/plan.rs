//! From a spec to the plan of a run: what a selection checks and skips, what can never run
//! and is refused with its place, and values resolved once.

use gauntlet_spec::{PlanError, Selection, StepName, StepPlan};

const DEMO: &str = include_str!("../../../examples/demo.yaml");

/// A service reached by URL, with a drill that kills it and a DR step that restores it:
/// neither can run without a process gauntlet started.
const BY_URL: &str = "schema_version: 1
service: {name: s, version: '1'}
targets:
  baseline: {url: 'http://127.0.0.1:8081', health: /}
  candidate: {url: 'http://127.0.0.1:8082', health: /}
traffic: {rate: 10/s, requests: [{path: /}]}
steps:
  chaos:
    steady_state: {probes: [{name: up, http: {path: /}}]}
    drills:
      - {name: crash, faults: [{kind: kill}], duration: 2s}
  dr:
    sqlite: app.db
    markers: {write: {method: POST, path: /items}, read: {path: '/items/{id}'}}
  security:
    paths: {}
  canary:
    stages: [{weight: 10%, bake: 30s}, {weight: 100%}]
    judges: {two_sample: {}}
";

fn plan(text: &str, selection: &Selection) -> Result<gauntlet_spec::Plan, PlanError> {
    gauntlet_spec::plan_str("g.yaml", text, selection, 7)
}

/// `g.yaml:LINE:` of the first line holding `needle`.
fn at(text: &str, needle: &str) -> String {
    let line = 1 + text
        .lines()
        .position(|l| l.contains(needle))
        .expect("the needle is in the spec");
    format!("g.yaml:{line}:")
}

fn problems(text: &str) -> Vec<String> {
    match plan(text, &Selection::default()) {
        Err(PlanError::Spec(e)) => e.0.iter().map(|d| d.to_string()).collect(),
        other => panic!("expected spec problems, got {other:?}"),
    }
}

#[test]
fn skipped_steps_are_not_checked_and_say_why() {
    // Everything: the drill and the DR step cannot run against a URL.
    let all = problems(BY_URL);
    assert!(
        all.iter()
            .any(|p| p.starts_with(&at(BY_URL, "name: crash")) && p.contains("drill `crash`")),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|p| p.contains("dr.target: `candidate` is reached by `url`")),
        "{all:?}"
    );
    // Skipped, they are not checked: what runs is valid.
    let skip = Selection {
        skip: vec![StepName::Chaos, StepName::Dr],
        ..Default::default()
    };
    let planned = plan(BY_URL, &skip).expect("valid for what runs");
    let runs: Vec<StepName> = planned.steps.iter().map(StepPlan::step).collect();
    assert_eq!(runs, [StepName::Security, StepName::Canary]);
    assert_eq!(
        planned.skipped,
        [
            (StepName::Chaos, "skipped (--skip)".to_string()),
            (StepName::Dr, "skipped (--skip)".to_string())
        ]
    );
    // The same by --only.
    let only = Selection {
        only: vec![StepName::Canary],
        ..Default::default()
    };
    let planned = plan(BY_URL, &only).expect("valid for the canary");
    assert!(
        planned
            .skipped
            .iter()
            .all(|(_, why)| why == "skipped (not in --only)")
    );
    // A selection naming what the spec does not configure is invalid input.
    let missing = Selection {
        only: vec![StepName::Rotation],
        ..Default::default()
    };
    match plan(BY_URL, &missing) {
        Err(PlanError::Selection(why)) => {
            assert!(why.contains("`rotation` is not configured"), "{why}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_profile_selects_and_its_skips_are_named() {
    let planned = plan(
        DEMO,
        &Selection {
            profile: Some("smoke".into()),
            ..Default::default()
        },
    )
    .expect("the demo's smoke profile plans");
    assert_eq!(
        planned.steps.iter().map(StepPlan::step).collect::<Vec<_>>(),
        [StepName::Security]
    );
    assert!(
        planned
            .skipped
            .iter()
            .all(|(_, why)| why == "skipped (not in the profile)"),
        "{:?}",
        planned.skipped
    );
    match plan(
        DEMO,
        &Selection {
            profile: Some("smok".into()),
            ..Default::default()
        },
    ) {
        Err(PlanError::Selection(why)) => assert!(why.contains("did you mean `smoke`?"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn specs_that_can_never_run_are_refused_where_they_are_wrong() {
    // A canary compares with a baseline.
    let no_baseline = BY_URL.replace(
        "  baseline: {url: 'http://127.0.0.1:8081', health: /}\n",
        "",
    );
    let found = problems(&no_baseline);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with(&at(&no_baseline, "  canary:"))
                && p.contains("`targets.baseline` is missing")),
        "{found:?}"
    );
    // A shadow stage with nothing it may mirror.
    let shadow = BY_URL
        .replace(
            "requests: [{path: /}]",
            "requests: [{method: POST, path: /orders}]",
        )
        .replace("stages: [{weight: 10%", "stages: [{weight: shadow");
    let found = problems(&shadow);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with(&at(&shadow, "stages:"))
                && p.contains("mirrors only GET and HEAD")),
        "{found:?}"
    );
    // A judge whose parameters leave no room: p0 + δ ≥ 100%.
    let judge = BY_URL.replace(
        "judges: {two_sample: {}}",
        "judges: {error_rate: {p0: 98%, delta: 5%}}",
    );
    let found = problems(&judge);
    assert!(
        found.iter().any(|p| p.starts_with(&at(&judge, "judges:"))
            && p.contains("p0 + delta must stay below 100%")),
        "{found:?}"
    );
    let zero = BY_URL.replace("judges: {two_sample: {}}", "judges: {error_rate: {p0: 0%}}");
    assert!(
        problems(&zero).iter().any(|p| p.contains("`p0` is 0%")),
        "{:?}",
        problems(&zero)
    );
}

#[test]
fn a_drill_error_is_at_its_own_drill() {
    let two = BY_URL
        .replace(
            "      - {name: crash, faults: [{kind: kill}], duration: 2s}\n",
            "      - {name: first, faults: [{kind: latency, target: candidate, latency: 10ms}], duration: 5s}\n      - {name: second, faults: [{kind: latency, target: candidate, latency: 10ms}], duration: 2s, expect: recover within 3s}\n",
        );
    let found = problems(&two);
    let recover: Vec<&String> = found
        .iter()
        .filter(|p| p.contains("is longer than the drill"))
        .collect();
    assert_eq!(recover.len(), 1, "{found:?}");
    assert!(
        recover[0].starts_with(&at(&two, "name: second")) && recover[0].contains("drill `second`"),
        "{recover:?}"
    );
}

#[test]
fn the_plan_resolves_values_once_and_seeds_by_one_function() {
    let planned = plan(DEMO, &Selection::default()).expect("the demo plans");
    assert_eq!(planned.seed.0, 7);
    assert!(
        planned.systems.proxied,
        "the demo's drills put proxies in front"
    );
    let chaos = planned
        .steps
        .iter()
        .find_map(|s| match s {
            StepPlan::Chaos(c) => Some(c),
            _ => None,
        })
        .expect("chaos runs");
    // Every drill has its hypothesis (its own or the step's) and its own seed.
    let seeds: std::collections::BTreeSet<u64> = chaos.drills.iter().map(|d| d.seed.0).collect();
    assert_eq!(seeds.len(), chaos.drills.len());
    assert!(
        chaos
            .drills
            .iter()
            .all(|d| !d.steady_state.probes.is_empty())
    );
    // Another seed changes every derived one; the same seed, none.
    let again = planned.with_seed(7);
    let other = planned.with_seed(8);
    let first = |p: &gauntlet_spec::Plan| match &p.steps[2] {
        StepPlan::Chaos(c) => c.drills[0].seed,
        other => panic!("{other:?}"),
    };
    assert_eq!(first(&again), first(&planned));
    assert_ne!(first(&other), first(&planned));
    // Gate thresholds are parsed in the plan.
    if let Some(gates) = planned.gates() {
        assert!(gates.checks.iter().all(|g| !g.pass.text.is_empty()));
    }
    // `gauntlet chaos --drill NAME` plans that drill only.
    let name = chaos.drills[1].name.clone();
    let one = plan(
        DEMO,
        &Selection {
            only: vec![StepName::Chaos],
            drills: vec![name.clone()],
            ..Default::default()
        },
    )
    .expect("one drill");
    match &one.steps[0] {
        StepPlan::Chaos(c) => {
            assert_eq!(c.drills.len(), 1);
            assert_eq!(c.drills[0].name, name);
            // Its seed is the one it has in the whole plan: a drill replays alone.
            assert_eq!(c.drills[0].seed, chaos.drills[1].seed);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn gating_modes_are_named_as_the_spec_spells_them() {
    use gauntlet_spec::GatingMode;
    for mode in [GatingMode::Hard, GatingMode::Soft, GatingMode::None] {
        let spelled = serde_json::to_value(mode).unwrap();
        assert_eq!(spelled.as_str(), Some(mode.as_str()));
    }
}
