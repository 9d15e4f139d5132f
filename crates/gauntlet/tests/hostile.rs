//! What a valid spec may and may not do, and faults that must really be in force: specs that
//! would hurt the host or hang a run are refused with their place, files a spec names stay
//! under its directory, and a drill whose fault never took effect is never a drill that held.

use std::process::Command;

use serde_json::Value;

mod common;
use common::{Scratch, heavy_turn, latest, text};

/// A candidate and an idle dependency (both Python's http.server), with `steps` appended.
fn quiet_spec(steps: &str) -> String {
    format!(
        "schema_version: 1
service: {{name: quiet, version: \"1\"}}
dependencies:
  unused:
    command: [python3, -m, http.server, \"{{port}}\", --bind, 127.0.0.1]
    health: /
targets:
  candidate:
    command: [python3, -m, http.server, \"{{port}}\", --bind, 127.0.0.1]
    health: /
traffic: {{rate: 10/s, requests: [{{path: /}}]}}
steps:
{steps}"
    )
}

fn drill_check<'a>(report: &'a Value, drill: &str, check: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap())
        .find(|c| c["id"] == format!("chaos.{drill}: {check}"))
        .unwrap_or_else(|| panic!("no check {drill}: {check}"))
}

#[test]
fn a_fault_that_never_took_effect_is_never_a_drill_that_held() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    s.write(
        "quiet.yaml",
        &quiet_spec(
            "  chaos:
    steady_state:
      probes: [{name: home, http: {path: /, status: [200]}}]
    drills:
      - {name: unused-latency, faults: [{kind: latency, target: unused, latency: 200ms}], duration: 1s, expect: hold}
      - {name: live-latency, faults: [{kind: latency, target: candidate, latency: 5ms}], duration: 1s, expect: hold}
      - {name: memory, faults: [{kind: memory, target: candidate, size: 2GiB}], duration: 1s, expect: hold}
",
        ),
    );
    // Gauntlet (and so its stressor) may map at most 1.5 GiB: the 2 GiB cannot be had.
    let out = Command::new("sh")
        .current_dir(s.path())
        .arg("-c")
        .arg(format!(
            "ulimit -v 1500000 && exec {} run quiet.yaml --quiet",
            assert_cmd::cargo::cargo_bin("gauntlet").display()
        ))
        .env("XDG_CONFIG_HOME", s.path().join(".config"))
        .output()
        .unwrap();
    let report = latest(&s);
    assert_ne!(report["decision"], "GO", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{}", report["summary"]);
    // Latency on a dependency nothing calls: it never acted.
    let unused = drill_check(&report, "unused-latency", "hold");
    assert_eq!(unused["outcome"], "inconclusive", "{unused}");
    let force = drill_check(&report, "unused-latency", "faults in force");
    assert!(
        force["reason"].as_str().unwrap().contains("never acted"),
        "{force}"
    );
    // Latency on the candidate itself: in force, and the drill held.
    assert_eq!(
        drill_check(&report, "live-latency", "hold")["outcome"],
        "pass"
    );
    assert_eq!(
        drill_check(&report, "live-latency", "faults in force")["outcome"],
        "pass"
    );
    // Memory the stressor could not allocate: not applied, never "allocated and touched".
    let memory = drill_check(&report, "memory", "hold");
    assert_eq!(memory["outcome"], "inconclusive", "{memory}");
    let reason = memory["reason"].as_str().unwrap();
    assert!(
        reason.contains("never took effect") && reason.contains("cannot allocate"),
        "{reason}"
    );
    let timeline = serde_json::to_string(&report["drills"]).unwrap();
    assert!(!timeline.contains("allocated and touched ("), "{timeline}");
}
