//! The gameday's faults end to end on the demo shop: a clock skew through libfaketime
//! (Debian's `faketime`, installed by scripts/test), in force, tolerated by a service that
//! allows clock drift, caught in one that does not, and undone.

mod common;
use common::{Scratch, heavy_turn, report, text};

fn check<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap())
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {report}"))
}

/// The clock-skew drill on its own, with the candidate's defects as given.
fn skew_drill(defects: &str) -> (std::process::Output, serde_json::Value) {
    drill("clock-skew", defects)
}

/// One of the demo's drills on its own.
fn drill(name: &str, defects: &str) -> (std::process::Output, serde_json::Value) {
    let s = Scratch::new();
    s.write("gauntlet.yaml", include_str!("../../../examples/demo.yaml"));
    let out = s
        .command()
        .args(["chaos", "gauntlet.yaml", "--drill", name])
        .env("GAUNTLET_DEMO_DEFECTS", defects)
        .output()
        .unwrap();
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
