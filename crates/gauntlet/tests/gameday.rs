//! The gameday's faults end to end on the demo shop: a clock skew through libfaketime
//! (Debian's `faketime`, installed by scripts/test), in force, tolerated by a service that
//! allows clock drift, caught in one that does not, and undone.

mod common;
use common::{Scratch, check, heavy_turn, report, text};

/// The clock-skew drill on its own, with the candidate's defects as given.
fn skew_drill(defects: &str) -> (std::process::Output, serde_json::Value) {
    drill("clock-skew", defects)
}

/// One of the demo's drills on its own.
fn drill(name: &str, defects: &str) -> (std::process::Output, serde_json::Value) {
    let s = Scratch::new();
    s.write("gauntlet.yaml", include_str!("../../../examples/demo.yaml"));
    let out = s.drill("gauntlet.yaml", name, defects);
    let report = report(&s.run_dirs().pop().unwrap());
    (out, report)
}

#[test]
fn a_skewed_clock_is_in_force_tolerated_and_undone() {
    let _turn = heavy_turn();
    let (out, report) = skew_drill("");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let in_force = check(&report, "chaos.clock-skew: faults in force");
    assert_eq!(in_force["outcome"], "pass", "{in_force}");
    let said = in_force["reason"].as_str().unwrap();
    // The provider's own Date header shows its clock 45 s behind gauntlet's.
    assert!(said.contains("quotes-primary's Date is -4"), "{said}");
    let accepted = check(
        &report,
        "chaos.clock-skew: side effect primary-quotes-accepted",
    );
    assert_eq!(accepted["outcome"], "pass", "{accepted}");
    let undone = check(&report, "chaos.clock-skew: faults undone");
    assert_eq!(undone["outcome"], "pass", "{undone}");
    assert!(
        undone["reason"]
            .as_str()
            .unwrap()
            .contains("host's clock again"),
        "{undone}"
    );
}

#[test]
fn a_service_without_clock_leeway_fails_the_skew_drill() {
    let _turn = heavy_turn();
    let (out, report) = skew_drill("no-clock-leeway");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let accepted = check(
        &report,
        "chaos.clock-skew: side effect primary-quotes-accepted",
    );
    assert_eq!(accepted["outcome"], "fail", "{accepted}");
    assert_eq!(
        check(&report, "chaos.clock-skew: faults undone")["outcome"],
        "pass"
    );
}

#[test]
fn a_url_target_cannot_have_its_clock_skewed() {
    let s = Scratch::new();
    let spec = include_str!("../../../examples/demo.yaml")
        .replace(
            "faults: [{kind: clock_skew, target: quotes-primary, skew: -45s}]",
            "faults: [{kind: clock_skew, target: quotes-secondary, skew: 45s}, {kind: clock_skew, target: quotes-primary, skew: '+1.5s'}]",
        )
        .replace(
            r#"command: ["{gauntlet}", "demo-service", "provider", "--port", "{port}", "--name", "secondary"]"#,
            "url: http://127.0.0.1:9",
        );
    s.write("gauntlet.yaml", &spec);
    let out = s.run(&["validate", "gauntlet.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let said = text(&out.stderr);
    assert!(
        said.contains("runs the process under libfaketime"),
        "{said}"
    );
    assert!(
        said.contains("not a whole, non-zero number of seconds"),
        "{said}"
    );
}

#[test]
fn a_disk_io_load_is_measured_beside_the_latency_and_cleaned_up() {
    let _turn = heavy_turn();
    let (out, report) = drill("disk-io", "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let in_force = check(&report, "chaos.disk-io: faults in force");
    let said = in_force["reason"].as_str().unwrap();
    assert!(
        said.contains("(fsynced, ") && said.contains("read back"),
        "{said}"
    );
    let m = &report["measurements"];
    let written = m["chaos.disk-io.io.write_bytes_per_second"]
        .as_f64()
        .unwrap();
    let fsyncs = m["chaos.disk-io.io.fsyncs_per_second"].as_f64().unwrap();
    // The rate asked (16 MiB/s) is a ceiling the load keeps to; it achieved something.
    assert!(
        written > 0.0 && written <= 17.0 * 1024.0 * 1024.0,
        "{written}"
    );
    assert!(fsyncs > 0.0, "{fsyncs}");
    assert!(m["chaos.disk-io.probe_latency_p95"].as_f64().unwrap() > 0.0);
    let undone = check(&report, "chaos.disk-io: faults undone");
    assert_eq!(undone["outcome"], "pass", "{undone}");
    assert!(
        undone["reason"].as_str().unwrap().contains("removed"),
        "{undone}"
    );
}

/// The rollback rehearsal executes the demo's rollback runbook; its manual step waits for an
/// operator, who confirms it from another shell with `gauntlet confirm`.
#[test]
fn the_rollback_runbook_is_timed_and_an_operator_confirms_its_manual_step() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    let spec = include_str!("../../../examples/demo.yaml");
    let unattended = ", responder_after: 1s}";
    assert!(spec.contains(unattended));
    s.write("gauntlet.yaml", &spec.replace(unattended, "}"));
    let mut run = s
        .command()
        .args(["run", "gauntlet.yaml", "--only", "rollback-rehearsal"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let waiting = loop {
        let found = s
            .run_dirs()
            .pop()
            .map(|d| d.join("runbooks/waiting/on-call-confirms.json"))
            .filter(|p| p.exists());
        if let Some(found) = found {
            break found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never asked for a confirmation"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let said: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&waiting).unwrap()).unwrap();
    assert_eq!(said["runbook"], "rollback");
    let wrong = s.run(&["confirm", "latest", "drain the pool"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(text(&wrong.stderr).contains("it waits for `on-call confirms`"));
    let confirmed = s.run(&["confirm", "latest", "on-call confirms", "--by", "ana"]);
    assert_eq!(
        confirmed.status.code(),
        Some(0),
        "{}",
        text(&confirmed.stderr)
    );
    assert_eq!(run.wait().unwrap().code(), Some(0));
    let report = report(&s.run_dirs().pop().unwrap());
    let runbook = &report["runbooks"][0];
    assert_eq!(runbook["name"], "rollback");
    assert_eq!(runbook["outcome"], "pass", "{runbook}");
    let steps = runbook["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    assert_eq!(steps[4]["detail"], "confirmed by ana");
    assert!(steps.iter().all(|s| s["took_ms"].as_u64().is_some()));
    // What the runbook changed (the candidate out of rotation) was put back.
    let undone = check(&report, "rollback-rehearsal.faults undone");
    assert!(
        undone["reason"]
            .as_str()
            .unwrap()
            .contains("put back: POST"),
        "{undone}"
    );
}

/// `gauntlet gameday RUN` after a rag gameday whose cache never warms: one action item per
/// expectation not met, owned by the step's owner and due by the spec's policy; the required
/// matrix shows the cache scenario failed and the scenarios this run did not cover.
#[test]
fn the_gameday_report_turns_failed_expectations_into_owned_action_items() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    let out = s.run(&["demo", "rag", "--defect", "cache-off", "--only", "chaos"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let written = s.run(&["gameday", "latest"]);
    assert_eq!(written.status.code(), Some(0), "{}", text(&written.stderr));
    let run_dir = s.run_dirs().pop().unwrap();
    let gameday: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("gameday.json")).unwrap()).unwrap();
    assert_eq!(gameday["schema"], "gauntlet.gameday/v1");
    let items = gameday["action_items"].as_array().unwrap();
    let cache = items
        .iter()
        .find(|a| a["expectation"] == "chaos.cache-cold-start: side effect cache-warms-again")
        .unwrap_or_else(|| panic!("{items:#?}"));
    assert_eq!(cache["owner"], "sre-oncall@example.com");
    assert_eq!(cache["owner_role"], "sre");
    // Due 7 days (hard_eta) after the gameday was held.
    let held = gameday["held_at"].as_str().unwrap();
    let held = humantime::parse_rfc3339(held).unwrap();
    let due = humantime::format_rfc3339_seconds(held + std::time::Duration::from_secs(7 * 86400));
    assert_eq!(cache["due"].as_str().unwrap(), &due.to_string()[..10]);
    // Only chaos ran: the PII scenario was covered by nothing, and says so.
    assert!(
        items
            .iter()
            .any(|a| a["expectation"] == "required scenario: PII leakage probe"),
        "{items:#?}"
    );
    let matrix = gameday["matrix"].as_array().unwrap();
    let row = |name: &str| matrix.iter().find(|r| r["scenario"] == name).unwrap();
    assert_eq!(row("cache cold start")["outcome"], "fail");
    assert_eq!(row("vector store latency spike")["outcome"], "pass");
    let md = std::fs::read_to_string(run_dir.join("gameday.md")).unwrap();
    assert!(
        md.contains("## Action items") && md.contains("**Residual risk:** not shown to be safe")
    );
}

/// `gauntlet slo-rules` turns an OpenSLO SLO into multi-window, multi-burn-rate rules that
/// the stock promtool accepts; what cannot be mapped is invalid input, said by name.
#[test]
fn openslo_becomes_burn_rate_rules_promtool_accepts() {
    let s = Scratch::new();
    let slo = include_str!("../../../examples/slos/shop.openslo.yaml");
    s.write("slo.yaml", slo);
    let out = s.run(&["slo-rules", "slo.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rules = s.write("slo.rules.yml", &text(&out.stdout));
    let said = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("promtool (scripts/test installs prometheus)");
    assert!(
        said.status.success(),
        "{}",
        text(&said.stdout) + &text(&said.stderr)
    );
    let printed = text(&out.stdout);
    for (factor, long, short) in [("14.4", "1h", "5m"), ("6", "6h", "30m"), ("1", "3d", "6h")] {
        assert!(
            printed.contains(&format!(
                "burn_rate: \"{factor}\", long_window: {long}, short_window: {short}"
            )),
            "{printed}"
        );
    }
    s.write(
        "bad.yaml",
        &slo.replace("type: Prometheus", "type: Datadog"),
    );
    let bad = s.run(&["slo-rules", "bad.yaml"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("comes from `Datadog`"),
        "{}",
        text(&bad.stderr)
    );
}

/// A drill that breaks the service runs its response runbook: the decision and the action on
/// its timeline, the runbook timed, and the restoration held to the MTTR bound.
#[test]
fn a_drill_responds_with_its_runbook_and_is_held_to_the_mttr() {
    let _turn = heavy_turn();
    let (out, report) = drill("candidate-crash", "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let runbook = check(&report, "chaos.candidate-crash: runbook crash-response");
    assert_eq!(runbook["outcome"], "pass", "{runbook}");
    assert_eq!(report["runbooks"][0]["ran_in"], "chaos");
    let events = report["drills"][0]["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    let at = |kind: &str| {
        kinds
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_else(|| panic!("{kind}: {kinds:?}"))
    };
    assert!(at("fault-applied") < at("detected") && at("detected") < at("decision"));
    // (the supervisor's restart is an action too; the runbook's follows the decision)
    assert!(kinds[at("decision")..].contains(&"action"), "{kinds:?}");
    let mttr = check(&report, "chaos.candidate-crash: MTTR");
    assert_eq!(mttr["outcome"], "pass", "{mttr}");
    assert!(
        report["measurements"]["chaos.candidate-crash.mttr"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}
