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

/// A spec with a chaos drill and a canary, to break one value at a time.
fn bounded(target: &str, drill: &str, stage: &str) -> String {
    format!(
        "schema_version: 1
service: {{name: b, version: \"1\"}}
targets:
  candidate:
    command: [python3, -m, http.server, \"{{port}}\", --bind, 127.0.0.1]
{target}
  baseline: {{url: \"http://127.0.0.1:9\"}}
traffic: {{rate: 10/s, requests: [{{path: /}}]}}
steps:
  chaos:
    steady_state: {{probes: [{{name: home, http: {{path: /}}}}]}}
    drills:
      - {drill}
  canary:
    stages: [{stage}, {{weight: 100%}}]
    judges: {{error_rate: {{p0: 1%, delta: 3%}}}}
"
    )
}

#[test]
fn specs_that_would_hurt_the_host_or_hang_are_refused_where_they_say_so() {
    let s = Scratch::new();
    let drill =
        |faults: &str, rest: &str| format!("{{name: d, faults: [{faults}], duration: 1s{rest}}}");
    let fine = drill("{kind: latency, latency: 10ms}", "");
    let stage = "{weight: 10%, bake: 10s}";
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "ready",
            bounded("    ready_timeout: 1000h", &fine, stage),
            "6:5",
            "`ready_timeout` is 1000h",
        ),
        (
            "ready-zero",
            bounded("    ready_timeout: 0s", &fine, stage),
            "6:5",
            "it must be above zero",
        ),
        (
            "duration",
            bounded(
                "",
                &drill("{kind: latency, latency: 10ms}", "")
                    .replace("duration: 1s", "duration: 1000h"),
                stage,
            ),
            "13:",
            "`duration` is 1000h",
        ),
        (
            "corrupt",
            bounded(
                "",
                &drill("{kind: corrupt, file: x, bytes: 1000000000000}", ""),
                stage,
            ),
            "13:",
            "`bytes` is 1000000000000",
        ),
        (
            "memory",
            bounded("", &drill("{kind: memory, size: 1024GiB}", ""), stage),
            "13:",
            "three quarters of this host's memory",
        ),
        (
            "threads",
            bounded("", &drill("{kind: cpu, threads: 100000}", ""), stage),
            "13:",
            "`threads` is 100000",
        ),
        (
            "disk",
            bounded("", &drill("{kind: disk, size: 1000GiB}", ""), stage),
            "13:",
            "`size` is",
        ),
        (
            "bake",
            bounded("", &fine, "{weight: 10%, bake: 0s}"),
            "15:",
            "`bake` is",
        ),
        (
            "connections",
            bounded("", &fine, stage)
                .replace("  canary:\n", "  canary:\n    connections: 1000000000\n"),
            "15:5",
            "`connections` is 1000000000",
        ),
        (
            "rate",
            bounded("", &fine, stage).replace("rate: 10/s", "rate: 0.0001/h"),
            "8:11",
            "less than one request a minute",
        ),
        (
            "interval",
            bounded("", &fine, stage).replace("  chaos:\n", "  chaos:\n    interval: 1000h\n"),
            "11:5",
            "`interval` is 1000h",
        ),
        (
            "before",
            bounded("", &fine, stage).replace(
                "steady_state: {probes",
                "steady_state: {before: 1000h, probes",
            ),
            "11:20",
            "`before` is 1000h",
        ),
        (
            "ceiling",
            bounded("", &fine, "{weight: 10%, bake: 20h}"),
            "1:1",
            "past its ceiling of 2h",
        ),
    ];
    for (name, spec, place, message) in cases {
        let file = format!("{name}.yaml");
        s.write(&file, &spec);
        for command in [
            &["validate", file.as_str()][..],
            &["run", file.as_str()][..],
        ] {
            let out = s.run(command);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {command:?}: {stderr}");
            assert!(
                stderr.contains(&format!("{file}:{place}")),
                "{name}: no `{file}:{place}` in {stderr}"
            );
            assert!(
                stderr.contains(message),
                "{name}: no `{message}` in {stderr}"
            );
        }
    }
    assert!(!s.runs_dir().exists(), "nothing was run or written");
    // The ceiling can be raised, where every reader sees it.
    s.write(
        "raised.yaml",
        &format!(
            "timeout: 3d\n{}",
            bounded("", &fine, "{weight: 10%, bake: 20h}")
        ),
    );
    assert_eq!(s.run(&["validate", "raised.yaml"]).status.code(), Some(0));
}

#[test]
fn files_a_spec_names_stay_under_its_directory_and_their_content_is_never_repeated() {
    let s = Scratch::new();
    let base = quiet_spec("  observability:\n    required: []\n    alerts: {rules: RULES}\n");
    // Named outside, lexically: refused at validation, at the key.
    for (name, rules) in [
        ("absolute", "/etc/passwd"),
        ("climbing", "../../outside.yml"),
    ] {
        let file = format!("{name}.yaml");
        s.write(&file, &base.replace("RULES", rules));
        let out = s.run(&["validate", &file]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(&format!("{file}:15:")),
            "{}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains("stay under its directory"));
    }
    let trusted = quiet_spec("  preflight: {}\n").replace(
        "traffic:",
        "trust:\n  protected: [ok.txt, ../../etc/hosts]\n  artifacts: [/bin/sh]\ntraffic:",
    );
    s.write("trusted.yaml", &trusted);
    let out = s.run(&["validate", "trusted.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    for place in ["trusted.yaml:12:23", "trusted.yaml:13:15"] {
        assert!(
            text(&out.stderr).contains(place),
            "{place}: {}",
            text(&out.stderr)
        );
    }
    // Named inside, but a symbolic link out of the project to a file only its owner may
    // read: refused when read, and not one byte of it anywhere.
    let secret = "root:$6$gauntlet-secret-9f3c$:19000:0:99999:7:::";
    let outside = tempfile::tempdir().unwrap();
    let shadow = outside.path().join("shadow");
    std::fs::write(&shadow, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&shadow, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&shadow, s.path().join("rules.yml")).unwrap();
    s.write("linked.yaml", &base.replace("RULES", "rules.yml"));
    let out = s.run(&["run", "linked.yaml"]);
    let report = latest(&s);
    let check = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|st| st["checks"].as_array().unwrap())
        .find(|c| c["id"] == "observability.alert rules valid")
        .unwrap();
    assert!(
        check["reason"]
            .as_str()
            .unwrap()
            .contains("outside the spec's directory"),
        "{check}"
    );
    let mut seen = vec![text(&out.stdout), text(&out.stderr)];
    let mut stack = vec![s.path().join(".gauntlet")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            match entry.file_type().unwrap().is_dir() {
                true => stack.push(entry.path()),
                false => seen.push(
                    String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap_or_default())
                        .into_owned(),
                ),
            }
        }
    }
    assert!(
        seen.iter().all(|t| !t.contains("gauntlet-secret-9f3c")),
        "the secret was repeated"
    );
    // The run store and the run's files are for their owner only.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    use std::os::unix::fs::PermissionsExt;
    let run_dir = s.runs_dir().join(report["run_id"].as_str().unwrap());
    assert_eq!(mode(&s.path().join(".gauntlet/gauntlet.db")), 0o600);
    assert_eq!(mode(&s.path().join(".gauntlet")), 0o700);
    assert_eq!(mode(&run_dir), 0o700);
    assert_eq!(mode(&run_dir.join("report.json")) & 0o077, 0);
}
