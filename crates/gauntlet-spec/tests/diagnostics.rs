//! What a user sees for a bad spec: snapshots of the rendered diagnostics, and a fuzz
//! property that the loader answers every input with a spec or located errors, never a panic.

use proptest::prelude::*;

const DEMO: &str = include_str!("../../../examples/demo.yaml");
/// A complete spec of its own, so these snapshots do not move when the demo changes.
const FULL: &str = include_str!("fixtures/full.yaml");

fn render(name: &str, text: &str) -> String {
    let errors = gauntlet_spec::load_str(name, text).expect_err("the spec is invalid");
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    errors
        .0
        .iter()
        .map(|d| {
            let mut out = String::new();
            handler.render_report(&mut out, d).expect("renders");
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_demo_spec_is_valid() {
    gauntlet_spec::load_str("demo.yaml", DEMO).expect("valid");
}

#[test]
fn typo_in_a_nested_field_suggests_the_right_name() {
    let text = FULL.replace("    credential_headers:", "    credentail_headers:");
    insta::assert_snapshot!(render("gauntlet.yaml", &text));
}

#[test]
fn unknown_owner_role_names_the_known_roles() {
    let text = FULL.replace("    owner: security", "    owner: secrity");
    insta::assert_snapshot!(render("gauntlet.yaml", &text));
}

#[test]
fn a_duplicate_key_is_an_error() {
    let text = FULL.replace(
        "gating:\n  mode: hard",
        "gating:\n  mode: hard\n  mode: soft",
    );
    insta::assert_snapshot!(render("gauntlet.yaml", &text));
}

#[test]
fn a_bad_percentage_and_a_bad_enum_value() {
    let text = FULL.replace("objective: 99.9%", "objective: 120%");
    insta::assert_snapshot!("percentage", render("gauntlet.yaml", &text));
    let text = FULL.replace("  mode: hard", "  mode: strict");
    insta::assert_snapshot!("gating_mode", render("gauntlet.yaml", &text));
}

#[test]
fn every_post_parse_problem_is_reported_at_once() {
    let text = FULL
        .replace("path: /items/7", "path: items/7")
        .replace("{dependencies.quotes-primary.url}\",\n              \"--secondary\", \"{dependencies.quotes-secondary.url}\",\n              \"--defect=none\"", "{dependencies.quotes-primry.url}\"");
    let errors = gauntlet_spec::load_str("gauntlet.yaml", &text).expect_err("invalid");
    assert_eq!(errors.0.len(), 2, "{errors:?}");
}

#[test]
fn a_drill_that_waits_for_an_alert_needs_a_way_for_it_to_arrive() {
    let expect = "        # alerts: [{name: DemoPrimaryProviderFailing, within: 20s}]";
    assert!(DEMO.contains(expect));
    let on = DEMO.replace(
        expect,
        "        alerts: [{name: DemoPrimaryProviderFailing, within: 20s}]",
    );
    let errors = gauntlet_spec::load_str("gauntlet.yaml", &on).expect_err("invalid");
    assert!(
        errors.0[0].message.contains("nothing delivers them"),
        "{errors:?}"
    );
    let delivered = format!("{on}prometheus: {{start: true, alertmanager: {{start: true}}}}\n");
    gauntlet_spec::load_str("gauntlet.yaml", &delivered).expect("valid with an Alertmanager");
    // A name the rule file is not checked for, with the close one suggested.
    let typo = delivered.replace(
        "{name: DemoPrimaryProviderFailing,",
        "{name: DemoPrimaryProviderFailng,",
    );
    let errors = gauntlet_spec::load_str("gauntlet.yaml", &typo).expect_err("invalid");
    assert!(
        errors.0[0]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("DemoPrimaryProviderFailing"),
        "{errors:?}"
    );
    // Alertmanager needs exactly one of start and receiver, and a receiver is an address.
    for (bad, says) in [
        (
            "alertmanager: {start: true, receiver: '127.0.0.1:9095'}",
            "exactly one",
        ),
        ("alertmanager: {receiver: 'localhost'}", "not an address"),
    ] {
        let text = delivered.replace("alertmanager: {start: true}", bad);
        let errors = gauntlet_spec::load_str("gauntlet.yaml", &text).expect_err("invalid");
        assert!(
            errors.0.iter().any(|e| e.message.contains(says)),
            "{says}: {errors:?}"
        );
    }
}

#[test]
fn a_rehearsal_must_break_something_it_can_roll_back_from() {
    let faults = "    faults: [{kind: corrupt, target: candidate, file: items.json, bytes: 8}]\n";
    assert!(DEMO.contains(faults));
    for (to, says) in [
        ("", "injects nothing"),
        (
            "    faults: [{kind: reset, target: baseline}]\n",
            "a fault on the baseline",
        ),
        (
            "    faults: [{kind: http_abort, target: candidate, status: 503}]\n",
            "reaches the candidate directly",
        ),
        (
            "    faults: [{kind: reset, target: quotes-primry}]\n",
            "did you mean `quotes-primary`",
        ),
    ] {
        let text = DEMO.replacen(faults, to, 1);
        let errors = gauntlet_spec::load_str("gauntlet.yaml", &text).expect_err("invalid");
        let all = format!("{errors:?}");
        assert!(all.contains(says), "{says}: {all}");
    }
    let ok = DEMO.replacen(
        faults,
        "    faults: [{kind: reset, target: quotes-primary}]\n",
        1,
    );
    gauntlet_spec::load_str("gauntlet.yaml", &ok).expect("a dependency fault is fine");
    let bad = DEMO.replace(
        "      bad: 'demo_http_requests_total{status=~\"5..\"}'",
        "      bad: 'demo_http_requests_total{status=~\"5..\"'",
    );
    let errors = gauntlet_spec::load_str("gauntlet.yaml", &bad).expect_err("invalid");
    assert!(
        errors.0[0].message.contains("rollback_rehearsal.sli"),
        "{errors:?}"
    );
}

#[test]
fn a_taxonomy_hint_names_a_step_that_runs() {
    let bad = DEMO.replace("    - {step: dr, hint:", "    - {step: disaster, hint:");
    let errors = gauntlet_spec::load_str("gauntlet.yaml", &bad).expect_err("invalid");
    assert!(errors.0[0].message.contains("`disaster`"), "{errors:?}");
    let ok = DEMO.replace(
        "    - {step: dr, hint:",
        "    - {step: rollback_rehearsal, hint:",
    );
    gauntlet_spec::load_str("gauntlet.yaml", &ok).expect("either spelling of a step");
}

#[test]
fn a_canary_must_judge_before_it_promotes() {
    let text = FULL.replace("      - {weight: shadow, bake: 20s, min_samples: 200}\n      - {weight: 25%, bake: 20s, min_samples: 200}\n      - {weight: 50%, bake: 20s, min_samples: 200}\n", "");
    let errors = gauntlet_spec::load_str("gauntlet.yaml", &text).expect_err("invalid");
    assert!(
        errors.0[0].message.contains("before any judged stage"),
        "{errors:?}"
    );
}

#[test]
fn alias_bombs_are_refused_by_the_budget() {
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        bomb.push_str(&format!(
            "b{i}: &b{i} [*{}, *{0}, *{0}, *{0}, *{0}, *{0}, *{0}, *{0}, *{0}, *{0}]\n",
            if i == 1 {
                "a".to_string()
            } else {
                format!("b{}", i - 1)
            }
        ));
    }
    assert!(gauntlet_spec::load_str("bomb.yaml", &bomb).is_err());
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(gauntlet_spec::load_str("deep.yaml", &deep).is_err());
}

/// One edit to the demo spec: delete, insert or replace a character, or swap two lines.
fn mutate(text: &str, kind: u8, at: usize, with: char) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = at % chars.len().max(1);
    match kind % 4 {
        0 => {
            chars.remove(at);
        }
        1 => chars.insert(at, with),
        2 => chars[at] = with,
        _ => {
            let mut lines: Vec<&str> = text.lines().collect();
            let i = at % lines.len();
            let j = (at / 7) % lines.len();
            lines.swap(i, j);
            return lines.join("\n");
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, rng_seed: proptest::test_runner::RngSeed::Fixed(0x6a75), ..ProptestConfig::default() })]

    #[test]
    fn mutated_specs_never_panic_and_errors_are_located(
        edits in proptest::collection::vec((any::<u8>(), any::<usize>(), prop_oneof![Just(':'), Just('-'), Just(' '), Just('\n'), Just('{'), Just('"'), Just('&'), Just('*'), any::<char>()]), 1..4)
    ) {
        let mut text = FULL.to_string();
        for (kind, at, with) in edits {
            text = mutate(&text, kind, at, with);
        }
        if let Err(errors) = gauntlet_spec::load_str("fuzz.yaml", &text) {
            prop_assert!(!errors.0.is_empty());
            for d in &errors.0 {
                prop_assert!(d.line >= 1 && d.column >= 1);
                prop_assert!(d.to_string().starts_with("fuzz.yaml:"));
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = gauntlet_spec::load_str("fuzz.yaml", &text);
    }
}

#[test]
fn a_role_key_is_a_minisign_public_key_of_a_known_role() {
    let sre = "    sre: RWSI48tVvRJ8SP14ek8JWqoxrx8S3Xrwbd7LEfzATM0GSUvfib0zp2jS\n";
    assert!(DEMO.contains(sre));
    let bad = DEMO.replace(sre, "    sre: keys/sre.pub\n");
    let errors = gauntlet_spec::load_str("gauntlet.yaml", &bad).expect_err("invalid");
    let said = render("gauntlet.yaml", &bad);
    assert!(
        errors.0[0]
            .message
            .contains("role `sre` is not a minisign public key"),
        "{said}"
    );
    assert!(said.contains("gauntlet.yaml:"), "{said}");
    let stranger = DEMO.replace(sre, &sre.replace("sre:", "sre_team:"));
    let errors = gauntlet_spec::load_str("gauntlet.yaml", &stranger).expect_err("invalid");
    assert!(
        errors.0[0]
            .message
            .contains("`sre_team`, which is not in `service.owners`"),
        "{errors:?}"
    );
    let help = errors.0[0].help.as_deref().unwrap_or_default();
    assert!(help.contains("`sre`"), "{help}");
}

#[test]
fn a_rehearsal_that_waits_for_an_alert_needs_it_delivered_and_checked() {
    let off = "    # alerts: [{name: DemoCandidateErrors, within: 20s}]\n";
    assert!(DEMO.contains(off));
    let on = DEMO.replace(
        off,
        "    alerts: [{name: DemoCandidateErrors, within: 20s}]\n",
    );
    let errors = gauntlet_spec::load_str("gauntlet.yaml", &on).expect_err("invalid");
    let said = render("gauntlet.yaml", &on);
    assert!(
        errors.0[0]
            .message
            .contains("rollback_rehearsal expects alerts, and nothing delivers them"),
        "{said}"
    );
    let typo = on.replace(
        "name: DemoCandidateErrors, within",
        "name: DemoCandidateError, within",
    );
    let errors = gauntlet_spec::load_str("gauntlet.yaml", &typo).expect_err("invalid");
    let unlisted = errors
        .0
        .iter()
        .find(|e| e.message.contains("`DemoCandidateError`"))
        .expect("the unlisted alert is named");
    assert_eq!(
        unlisted.help.as_deref(),
        Some("did you mean `DemoCandidateErrors`?")
    );
}

#[test]
fn a_profile_names_steps_that_runs_have() {
    let bad = DEMO.replace(
        "    only: [security]\n",
        "    only: [securty, rollback_rehearsal]\n",
    );
    assert_ne!(bad, DEMO);
    let errors = gauntlet_spec::load_str("gauntlet.yaml", &bad).expect_err("invalid");
    assert_eq!(errors.0.len(), 1, "{errors:?}");
    assert!(
        errors.0[0]
            .message
            .contains("profile `smoke` names step `securty`")
    );
    assert_eq!(
        errors.0[0].help.as_deref(),
        Some("did you mean `security`?")
    );
    let everything = DEMO.replace("    only: [security]\n", "");
    let errors = gauntlet_spec::load_str("gauntlet.yaml", &everything).expect_err("invalid");
    assert!(
        errors.0[0].message.contains("selects every step"),
        "{errors:?}"
    );
}

#[test]
fn an_action_needs_a_way_back_and_calls_say_what_they_are() {
    let faults = "    faults: [{kind: corrupt, target: candidate, file: items.json, bytes: 8}]\n";
    assert!(DEMO.contains(faults));
    for (action, says) in [
        (
            "{kind: action, apply: {http: {path: /admin/x}}}",
            "a `action` fault needs `undo`",
        ),
        (
            "{kind: action, apply: {http: {path: /x}, command: [a]}, undo: {http: {path: /y}}}",
            "either a `command` or an `http` request",
        ),
        (
            "{kind: action, apply: {command: ['./flip', '{candidate.ur}']}, undo: {command: [x]}}",
            "did you mean `{candidate.url}`",
        ),
        (
            "{kind: action, apply: {http: {target: quotes, path: /x}}, undo: {http: {path: x, status: [999]}}}",
            "no system named `quotes`",
        ),
        (
            "{kind: action, apply: {command: []}, undo: {http: {path: /x}, timeout: 0s}}",
            "the command is empty",
        ),
        (
            "{kind: action, apply: {command: [a]}, undo: {command: [b]}, latency: 1s}",
            "`latency` does not apply to a `action` fault",
        ),
    ] {
        let text = DEMO.replacen(faults, &format!("    faults: [{action}]\n"), 1);
        let errors = gauntlet_spec::load_str("gauntlet.yaml", &text).expect_err(action);
        let all = format!("{errors:?}");
        assert!(all.contains(says), "{says}: {all}");
    }
    let ok = "{kind: action, apply: {http: {path: /admin/api-key, body: '{}'}}, \
              undo: {command: ['{gauntlet}', version], timeout: 5s}, \
              verify: {http: {method: GET, path: /flags, body_contains: cache}}}";
    let text = DEMO.replacen(faults, &format!("    faults: [{ok}]\n"), 1);
    gauntlet_spec::load_str("gauntlet.yaml", &text).expect("a complete action is valid");
}

#[test]
fn a_runbook_is_checked_where_it_is_written_and_where_it_is_named() {
    assert!(DEMO.contains("    runbook: rollback\n"));
    for (from, to, says) in [
        (
            "    runbook: rollback\n",
            "    runbook: rollbak\n",
            "did you mean `rollback`",
        ),
        (
            "    target: 15m\n    max: 20m\n",
            "    target: 15m\n    max: 10m\n",
            "`max` (10m) is below `target` (15m)",
        ),
        (
            "        wait_for: {http: {method: GET, path: /ready, status: [503]}}\n",
            "        wait_for: {http: {method: GET, path: /ready, status: [503]}}\n        manual: {say: drain it}\n",
            "needs exactly one of `call`, `wait_for` or `manual`",
        ),
        (
            "responder_after: 1s}",
            "responder_after: 11m}",
            "beyond the step's budget",
        ),
        (
            "      - name: drain\n",
            "      - name: flip the flag\n",
            "two steps are named `flip the flag`",
        ),
    ] {
        assert!(DEMO.contains(from), "{from}");
        let text = DEMO.replacen(from, to, 1);
        let errors = gauntlet_spec::load_str("gauntlet.yaml", &text).expect_err(to);
        let all = format!("{errors:?}");
        assert!(all.contains(says), "{says}: {all}");
    }
}

#[test]
fn the_slicer_and_data_limit_take_their_own_fields() {
    let reset = "faults: [{kind: reset, target: quotes-primary}]";
    assert!(DEMO.contains(reset));
    let with = |fault: &str| DEMO.replacen(reset, &format!("faults: [{fault}]"), 1);
    for good in [
        "{kind: slicer, target: quotes-primary, size: 64B, variation: 32B, delay: 0.5ms}",
        "{kind: limit_data, target: quotes-primary, bytes: 4096, direction: upstream}",
        "{kind: reset, target: quotes-primary, after: 200ms, direction: upstream}",
    ] {
        gauntlet_spec::load_str("gauntlet.yaml", &with(good)).expect(good);
    }
    for (bad, says) in [
        ("{kind: slicer, target: quotes-primary}", "needs `size`"),
        (
            "{kind: slicer, target: quotes-primary, size: 64B, variation: 64B}",
            "cannot be cut",
        ),
        (
            "{kind: slicer, target: quotes-primary, size: 0B}",
            "cannot be cut",
        ),
        (
            "{kind: limit_data, target: quotes-primary, size: 1KiB}",
            "needs `bytes`",
        ),
        (
            "{kind: limit_data, target: quotes-primary, bytes: 1, variation: 1B}",
            "does not apply",
        ),
    ] {
        let errors = gauntlet_spec::load_str("gauntlet.yaml", &with(bad)).expect_err(bad);
        assert!(
            errors.0.iter().any(|e| e.message.contains(says)),
            "{bad}: {errors:?}"
        );
    }
}
