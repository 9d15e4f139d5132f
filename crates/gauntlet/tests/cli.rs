//! End to end: the real `gauntlet` binary against the real demo system, in a scratch
//! directory per test. Every test proves one behaviour a user relies on.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{Scratch, heavy_turn, report, step_names, text};

/// Pids the run registered in its cleanup journal (every process it started).
fn started_pids(run_dir: &Path) -> Vec<(u32, String)> {
    let journal = std::fs::read_to_string(run_dir.join("cleanup.jsonl")).expect("journal");
    journal
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["op"] == "register")
        .map(|v| {
            let process = &v["undo"]["process"];
            (
                process["pid"].as_u64().unwrap_or(0) as u32,
                process["start_ticks"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Whether the process with this pid and start time still runs (zombies count as gone).
fn alive(pid: u32, start: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = stat.rfind(')') else {
        return false;
    };
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    fields.first() != Some(&"Z") && fields.get(19) == Some(&start)
}

/// Processes whose command line mentions `needle` (what `pgrep -f` would find).
fn pgrep(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline"))
                        .map(|c| text(&c).replace('\0', " ").contains(needle))
                        .unwrap_or(false)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn assert_nothing_left(run_dir: &Path) {
    let pids = started_pids(run_dir);
    assert!(pids.len() >= 4, "the demo starts four processes: {pids:?}");
    for (pid, start) in &pids {
        assert!(
            !alive(*pid, start),
            "process {pid} from {} is still running",
            run_dir.display()
        );
    }
    let needle = run_dir.display().to_string();
    assert!(pgrep(&needle).is_empty(), "leftovers mention {needle}");
    let found = Command::new("pgrep")
        .args(["-f", &needle])
        .output()
        .expect("pgrep (procps) is installed");
    assert_eq!(
        found.status.code(),
        Some(1),
        "pgrep -f finds: {}",
        text(&found.stdout)
    );
}

#[test]
fn demo_is_go_stores_the_run_and_leaves_no_process() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    let out = s.run(&["demo"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // The outcome is the command's result: on stdout, progress and notes on stderr.
    let stdout = text(&out.stdout);
    assert!(stdout.trim_start().starts_with("GO "), "{stdout}");
    let run_dir = s.run_dirs().pop().expect("a run directory");
    let report = report(&run_dir);
    assert_eq!(report["decision"], "GO");
    assert_eq!(report["schema"], "gauntlet.report/v1");
    // A first run has no history: the trend gate is unmeasured, scored as zero, and said so.
    let summary = report["summary"].as_str().unwrap();
    assert!(
        summary.ends_with(
            "weighted gates short of pass, counted in the score only: `p99 trend` inconclusive."
        ),
        "{summary}"
    );
    assert_eq!(
        step_names(&report),
        [
            "setup",
            "preflight",
            "rollback-rehearsal",
            "chaos",
            "dr",
            "rotation",
            "security",
            "observability",
            "canary",
            "gates",
            "readiness"
        ]
    );
    // The report shows the canary's stages, each judge's verdict and samples, and the
    // rehearsal's detection and recovery times.
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    for needle in [
        "`canary.stage 1 (shadow) two-sample` | ✅ pass",
        "`canary.stage 3 (50%) error-rate` | ✅ pass",
        "`canary.promotion` | ✅ pass",
        "`rollback-rehearsal.regression detected` | ✅ pass | detected after",
        "`rollback-rehearsal.recovered` | ✅ pass | recovered after",
        "(dry run)",
        ".svg)",
        "## Drill `primary-outage` (chaos) — ✅ pass",
        "## Drill `candidate-crash` (chaos) — ✅ pass",
        "expect **recover within 3s**",
        "| fault-applied | SIGKILL to candidate",
        "| action | gauntlet started candidate again",
        "## Drill `restore` (dr) — ✅ pass",
        "`dr.RPO` | ✅ pass",
        "`dr.RTO` | ✅ pass",
        "## Trust",
        "- Green fingerprint: `",
        "- Attestation: [`attestation.dsse.json`]",
        "`rotation.unsigned-threshold-refused` | ✅ pass",
        "`preflight.unsigned-changes` | ✅ pass",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle:?}:\n{md}");
    }
    // Every drill has its timeline with the derived times, and an SVG of it on disk.
    let drills = report["drills"].as_array().expect("drills in the report");
    assert_eq!(drills.len(), 12, "eleven chaos drills and the DR restore");
    let crash = drills
        .iter()
        .find(|d| d["name"] == "candidate-crash")
        .unwrap();
    let ttr = crash["time_to_recover_ms"]
        .as_u64()
        .expect("time to recover");
    assert!(ttr <= 3000, "{ttr}");
    assert!(crash["time_to_detect_ms"].as_u64().is_some());
    for drill in drills {
        let svg = run_dir.join(drill["svg"].as_str().expect("an SVG timeline"));
        assert!(std::fs::read_to_string(svg).unwrap().starts_with("<svg"));
    }
    // The decision is signed: the attestation verifies with the key the report names.
    let trust = &report["trust"];
    assert_eq!(trust["green_fingerprint"].as_str().map(str::len), Some(64));
    let verified = s.run(&[
        "attest",
        "verify",
        run_dir.join("attestation.dsse.json").to_str().unwrap(),
        "--key",
        trust["public_key"]
            .as_str()
            .expect("the signing key's public half"),
    ]);
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        text(&verified.stderr)
    );
    assert!(text(&verified.stdout).contains("decision: GO"));
    let canary = &report["steps"][8];
    assert_eq!(canary["outcome"], "pass");
    let judged: Vec<&Value> = canary["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("stage"))
        .collect();
    assert!(
        judged.iter().all(|c| c["samples"].as_u64().unwrap() > 0),
        "every judge reports its samples"
    );
    assert!(run_dir.join("spec.yaml").exists() && run_dir.join("report.md").exists());
    assert_nothing_left(&run_dir);
    // The demo renders the readiness certificate and says where; it carries the decision and
    // the checklist's score as the stored report gives it.
    let certificate = run_dir.join("certificate.md");
    assert!(
        stderr.contains(&format!("certificate: {}", certificate.display())),
        "{stderr}"
    );
    let score = report["readiness"]["score"]
        .as_f64()
        .expect("a readiness score");
    assert!(
        stdout.contains(&format!("readiness: {:.1}%", score * 100.0)),
        "{stdout}"
    );
    let cert = std::fs::read_to_string(&certificate).unwrap();
    assert!(cert.contains("GO"), "{cert}");
    assert!(
        cert.contains(&format!("{:.1}%", score * 100.0)),
        "the certificate shows the score {score}:\n{cert}"
    );
    assert!(run_dir.join("certificate.html").exists());
    // The run is also named by its directory, as the console prints it.
    let by_dir = s.run(&["readiness", &format!("{}/", run_dir.display())]);
    assert_eq!(by_dir.status.code(), Some(0), "{}", text(&by_dir.stderr));
    assert!(
        text(&by_dir.stdout).contains(&format!("{:.1}% (minimum", score * 100.0)),
        "{}",
        text(&by_dir.stdout)
    );

    // Every evidence file is indexed with the digest of what is on disk.
    for file in report["evidence"].as_array().unwrap() {
        let bytes = std::fs::read(run_dir.join(file["path"].as_str().unwrap())).unwrap();
        assert_eq!(file["bytes"].as_u64().unwrap(), bytes.len() as u64);
    }

    // history lists it; show --json returns the stored report unchanged.
    let run_id = report["run_id"].as_str().unwrap();
    let history = s.run(&["history"]);
    assert!(
        text(&history.stdout).contains(run_id),
        "{}",
        text(&history.stdout)
    );
    let shown = s.run(&["show", run_id, "--json"]);
    assert_eq!(shown.status.code(), Some(0));
    let stored: Value = serde_json::from_slice(&shown.stdout).expect("show --json is JSON");
    assert_eq!(stored, report);
}

#[test]
fn junit_has_one_testcase_per_check() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    let out = s.run(&[
        "demo",
        "--quiet",
        "--defect",
        "auth-bypass",
        "--keep-going",
        "--skip",
        "chaos",
        "--skip",
        "dr",
        "--skip",
        "gates",
        "--skip",
        "readiness",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let run_dir = s.run_dirs().pop().unwrap();
    let report = report(&run_dir);
    let checks: usize = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["checks"].as_array().unwrap().len())
        .sum();
    let xml = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut cases, mut failures, mut suites) = (0, 0, 0);
    loop {
        match reader.read_event().expect("junit.xml is well-formed XML") {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                match e.name().as_ref() {
                    b"testcase" => cases += 1,
                    b"failure" => failures += 1,
                    b"testsuite" => suites += 1,
                    _ => {}
                }
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(cases, checks);
    assert_eq!(suites, 7);
    // Every failed check is a JUnit failure: the auth bypass and the rotation drill's old
    // key still accepted among them (a canary judge on a starved machine may add one).
    let failed: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap())
        .filter(|c| c["outcome"] == "fail")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(failures, failed.len(), "{failed:?}");
    assert!(
        failed.iter().any(|id| id.starts_with("security.auth"))
            && failed.iter().any(|id| id.starts_with("rotation.")),
        "{failed:?}"
    );
}

#[test]
fn defects_are_no_go_and_name_the_failing_security_check() {
    let _turn = heavy_turn();
    for (knob, check) in [
        ("auth-bypass", "security.auth POST /items"),
        ("no-rate-limit", "security.rate-limit burst"),
    ] {
        let s = Scratch::new();
        // Rotation (step 5) would stop the run first: a bypass also keeps the old key working.
        let out = s.run(&[
            "demo", "--defect", knob, "--skip", "chaos", "--skip", "dr", "--skip", "rotation",
        ]);
        assert_eq!(out.status.code(), Some(1), "{knob}: {}", text(&out.stderr));
        let run_dir = s.run_dirs().pop().unwrap();
        assert_eq!(report(&run_dir)["decision"], "NO-GO");
        let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
        assert!(md.starts_with("# ⛔ NO-GO"), "{md}");
        assert!(md.contains(&format!("`{check}` | ❌ fail")), "{knob}: {md}");
        assert_nothing_left(&run_dir);
    }
}

#[test]
fn an_unknown_defect_is_invalid_input() {
    let s = Scratch::new();
    let out = s.run(&["demo", "--defect", "flaky"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown defect `flaky`"));
    assert!(
        !s.runs_dir().exists(),
        "nothing is written for invalid input"
    );
}

const VALID: &str = "schema_version: 1
service: {name: s, version: \"1\"}
targets:
  candidate:
    url: http://127.0.0.1:9
traffic:
  rate: 10/s
  requests: [{path: /}]
";

#[test]
fn invalid_specs_exit_2_with_located_messages_and_write_nothing() {
    let cases: &[(&str, String, &str, &str)] = &[
        (
            "typo",
            VALID.replace("service:", "servce:"),
            "typo.yaml:2:1",
            "did you mean `service`?",
        ),
        (
            "wrong-type",
            VALID.replace("rate: 10/s", "rate: [1, 2]"),
            "wrong-type.yaml:7:3",
            "expected a rate",
        ),
        (
            "bad-duration",
            VALID.replace(
                "url: http://127.0.0.1:9",
                "url: http://127.0.0.1:9\n    ready_timeout: 15 parsecs",
            ),
            "bad-duration.yaml:6:20",
            "invalid duration `15 parsecs`",
        ),
        (
            "negative-rate",
            VALID.replace("10/s", "-5/s"),
            "negative-rate.yaml:7:9",
            "a rate must be positive",
        ),
        (
            "unknown-step",
            format!("{VALID}steps:\n  smoke: {{}}\n"),
            "unknown-step.yaml:10:3",
            "unknown field `smoke`",
        ),
        (
            "fault-missing-setting",
            format!(
                "{VALID}steps:\n  chaos:\n    steady_state: {{probes: [{{name: up, http: {{path: /}}}}]}}\n    drills:\n      - name: d\n        faults: [{{kind: latency, target: candidate}}]\n        duration: 1s\n"
            ),
            "fault-missing-setting.yaml:14:19",
            "a `latency` fault needs `latency`",
        ),
        (
            "fault-unknown-target",
            format!(
                "{VALID}steps:\n  chaos:\n    steady_state: {{probes: [{{name: up, http: {{path: /}}}}]}}\n    drills:\n      - name: d\n        faults: [{{kind: reset, target: candidat}}]\n        duration: 1s\n"
            ),
            "fault-unknown-target.yaml:14:32",
            "did you mean `candidate`?",
        ),
        (
            "no-version",
            VALID.replace("schema_version: 1\n", ""),
            "no-version.yaml:1:1",
            "add `schema_version: 1`",
        ),
        (
            "future-version",
            VALID.replace("schema_version: 1", "schema_version: 9"),
            "future-version.yaml:1:17",
            "versions this gauntlet reads: 1",
        ),
        (
            // Another version's layout: the version is what is wrong, not the fields.
            "other-layout",
            "schema_version: 99\nname: s\nchecks: [a, b]\n".to_string(),
            "other-layout.yaml:1:17",
            "schema_version 99 is not one this gauntlet reads",
        ),
        (
            // A huge value is named, never echoed whole.
            "huge-value",
            VALID.replace(
                "requests: [{path: /}]",
                &format!("requests: [{{path: {}}}]", "x".repeat(200_000)),
            ),
            "huge-value.yaml:8:",
            "(200000 characters)",
        ),
        (
            "bad-placeholder",
            VALID.replace(
                "url: http://127.0.0.1:9",
                "command: [server, --port, \"{prot}\"]",
            ),
            "bad-placeholder.yaml:5:31",
            "did you mean `{port}`?",
        ),
        (
            "empty",
            String::new(),
            "empty.yaml:1:1",
            "the spec is empty",
        ),
        (
            "not-yaml",
            "{[: :\n\t- ]".to_string(),
            "not-yaml.yaml:",
            "problem(s) in the spec",
        ),
    ];
    for (name, spec, location, expected) in cases {
        let s = Scratch::new();
        let file = format!("{name}.yaml");
        s.write(&file, spec);
        for args in [vec!["validate", file.as_str()], vec!["run", file.as_str()]] {
            let out = s.run(&args);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {stderr}");
            assert!(
                stderr.contains(location),
                "{name}: expected {location} in\n{stderr}"
            );
            assert!(
                stderr.contains(expected),
                "{name}: expected {expected:?} in\n{stderr}"
            );
            assert!(!stderr.contains("panicked"), "{name}: {stderr}");
            assert!(
                stderr.len() < 20_000,
                "{name}: {} bytes of stderr",
                stderr.len()
            );
        }
        assert!(
            !s.path().join(".gauntlet").exists(),
            "{name}: nothing may be written"
        );
    }
    let s = Scratch::new();
    s.write("ok.yaml", VALID);
    let out = s.run(&["validate", "ok.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn a_target_that_never_becomes_ready_is_inconclusive_and_is_stopped() {
    let s = Scratch::new();
    let spec = VALID
        .replace(
            "url: http://127.0.0.1:9",
            // A path no other test's server answers: a stranger that took the freed port
            // (parallel tests) must not look like this target becoming ready.
            "command: [sleep, \"300\"]\n    ready_timeout: 1s\n    health: /never-ready-4f1c",
        )
        .replace("traffic:", "steps:\n  security:\n    paths: {}\ntraffic:");
    s.write("never.yaml", &spec);
    let out = s.run(&["run", "never.yaml"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let run_dir = s.run_dirs().pop().unwrap();
    let report = report(&run_dir);
    assert_eq!(report["decision"], "INCONCLUSIVE");
    let setup = &report["steps"][0]["checks"][0];
    assert_eq!(setup["outcome"], "inconclusive");
    assert!(
        setup["reason"]
            .as_str()
            .unwrap()
            .contains("did not answer 2xx"),
        "{setup}"
    );
    assert_eq!(report["steps"][1]["outcome"], "skipped");
    for (pid, start) in started_pids(&run_dir) {
        assert!(!alive(pid, &start), "sleep {pid} was left running");
    }
}

/// The demo spec made slow: the observability step sends 3,000 requests at 200/s.
fn slow_spec(s: &Scratch) -> PathBuf {
    let demo = include_str!("../../../examples/demo.yaml");
    assert!(demo.contains("requests: 60\n"));
    s.write(
        "slow.yaml",
        &demo.replace("requests: 60\n", "requests: 3000\n"),
    )
}

/// Waits (bounded) until `path` exists under the only run directory.
fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

fn wait_for(s: &Scratch, relative: &str, limit: Duration) -> PathBuf {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(dir) = s.run_dirs().pop()
            && dir.join(relative).exists()
        {
            return dir;
        }
        assert!(Instant::now() < deadline, "{relative} never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn send(pid: u32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).expect("signal sent");
}

#[test]
fn sigint_sigterm_and_sighup_stop_cleanly_with_an_aborted_partial_report() {
    use nix::sys::signal::Signal;
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let s = Scratch::new();
        slow_spec(&s);
        let mut child = s
            .command()
            .args([
                "run",
                "slow.yaml",
                "--skip",
                "chaos",
                "--skip",
                "dr",
                "--skip",
                "preflight",
                "--skip",
                "rotation",
                "--skip",
                "readiness",
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let run_dir = wait_for(
            &s,
            "evidence/observability/scrape-before.txt",
            Duration::from_secs(60),
        );
        send(child.id(), sig);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(1), "{sig}");
        let report = report(&run_dir);
        assert_eq!(report["decision"], "ABORTED");
        let expected = match sig {
            Signal::SIGINT => "interrupted (SIGINT)",
            Signal::SIGTERM => "terminated (SIGTERM)",
            _ => "hung up (SIGHUP)",
        };
        assert!(
            report["summary"].as_str().unwrap().contains(expected),
            "{}",
            report["summary"]
        );
        assert_eq!(report["steps"][2]["name"], "security");
        assert_eq!(
            report["steps"][2]["outcome"], "pass",
            "finished steps are kept"
        );
        assert_eq!(report["steps"][4]["name"], "canary");
        assert_eq!(report["steps"][4]["outcome"], "skipped");
        assert_nothing_left(&run_dir);
        let listed = text(&s.run(&["history"]).stdout);
        assert!(listed.contains("ABORTED"), "{listed}");
    }
}

#[test]
fn a_sigkilled_run_is_marked_aborted_and_recover_stops_what_it_left() {
    let s = Scratch::new();
    slow_spec(&s);
    let mut child = s
        .command()
        .args([
            "run",
            "slow.yaml",
            "--skip",
            "chaos",
            "--skip",
            "dr",
            "--skip",
            "preflight",
            "--skip",
            "rotation",
            "--skip",
            "readiness",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run_dir = wait_for(
        &s,
        "evidence/observability/scrape-before.txt",
        Duration::from_secs(60),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let left = started_pids(&run_dir);
    assert!(
        left.iter().any(|(pid, start)| alive(*pid, start)),
        "SIGKILL leaves the demo system running"
    );

    let history = s.run(&["history"]);
    assert_eq!(history.status.code(), Some(0));
    let listed = text(&history.stdout);
    assert!(listed.contains("aborted"), "{listed}");

    let recovered = s.run(&["recover"]);
    assert_eq!(recovered.status.code(), Some(0));
    assert!(
        text(&recovered.stdout).contains("stopped candidate"),
        "{}",
        text(&recovered.stdout)
    );
    assert_nothing_left(&run_dir);
    let again = s.run(&["recover"]);
    assert!(text(&again.stdout).contains("nothing to recover"));

    // The killed run is still shown, without a report.
    let shown = s.run(&["show", "latest"]);
    assert!(
        text(&shown.stdout).contains("aborted"),
        "{}",
        text(&shown.stdout)
    );
}

/// Processes working in a directory under `dir` (what a run started works in its run
/// directory), other than this test's own.
fn working_under(dir: &Path) -> Vec<(u32, PathBuf)> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| *pid != me)
                .filter_map(|pid| Some((pid, std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?)))
                .filter(|(_, cwd)| cwd.starts_with(dir))
                .collect()
        })
        .unwrap_or_default()
}

/// Pids a run's cleanup journal has recorded so far.
fn journaled(run_dir: &Path) -> Vec<u32> {
    started_pids(run_dir)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect()
}

#[test]
fn killed_between_starting_a_system_and_journaling_it_recover_still_stops_it() {
    use nix::sys::signal::Signal;
    let _turn = heavy_turn();
    let s = Scratch::new();
    slow_spec(&s);
    let root = s.path().canonicalize().unwrap();
    let runs = root.join(".gauntlet/runs");
    let (mut rounds, mut in_window) = (0, 0);
    // Each system is caught the moment it appears, and gauntlet frozen (SIGSTOP) there: if
    // its journal does not hold the new process yet, that is the window, and gauntlet is
    // SIGKILLed in it. Otherwise it goes on to the next system.
    while in_window < 3 && rounds < 40 {
        rounds += 1;
        let before: Vec<PathBuf> = std::fs::read_dir(&runs)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        let mut child = s
            .command()
            .args(["run", "slow.yaml", "--only", "security", "--quiet"])
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let gauntlet = child.id();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen: Vec<u32> = Vec::new();
        let mut hit = false;
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() && seen.len() < 4 {
            let Some(run_dir) = std::fs::read_dir(&runs)
                .ok()
                .and_then(|d| d.flatten().map(|e| e.path()).find(|p| !before.contains(p)))
            else {
                continue;
            };
            let fresh: Vec<u32> = working_under(&run_dir)
                .into_iter()
                .map(|(pid, _)| pid)
                .filter(|pid| !seen.contains(pid))
                .collect();
            if fresh.is_empty() {
                continue;
            }
            send(gauntlet, Signal::SIGSTOP);
            let recorded = journaled(&run_dir);
            if fresh.iter().any(|pid| !recorded.contains(pid)) {
                hit = true;
                break;
            }
            seen.extend(fresh);
            send(gauntlet, Signal::SIGCONT);
        }
        child.kill().unwrap();
        child.wait().unwrap();
        in_window += usize::from(hit);
        let recovered = s.run(&["recover"]);
        assert_eq!(recovered.status.code(), Some(0), "round {rounds}");
        let left = working_under(&root);
        assert!(
            left.is_empty(),
            "round {rounds} (killed {} the journal caught up): left running {left:?}; recover said {}",
            if hit { "before" } else { "after" },
            text(&recovered.stdout)
        );
    }
    assert!(
        in_window > 0,
        "no kill landed between a start and its journal line in {rounds} rounds"
    );
}

#[test]
fn json_flag_prints_the_report_on_stdout() {
    let s = Scratch::new();
    let out = s.run(&["demo", "--json", "--quiet", "--only", "security"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).expect("stdout is the report");
    assert_eq!(printed["decision"], "GO");
    let names: Vec<&str> = printed["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["setup", "security"]);
}

/// `gauntlet judge` on a stage's recorded observations reaches the live verdict with the
/// same sample count for every judge.
fn assert_replay_matches(s: &Scratch, run_dir: &Path, report: &Value, stage: usize, verdict: &str) {
    let evidence = run_dir.join("evidence/canary");
    let file = std::fs::read_dir(&evidence)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            name.starts_with(&format!("stage-{stage}-")) && name.ends_with("observations.jsonl.gz")
        })
        .expect("the stage's observations are recorded");
    let out = s.run(&["judge", file.to_str().unwrap(), "--json"]);
    let replay: Value = serde_json::from_slice(&out.stdout).expect("judge --json");
    assert_eq!(replay["verdict"], verdict, "{replay}");
    let live: Vec<&Value> = step(report, "canary")["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["name"]
                .as_str()
                .unwrap()
                .starts_with(&format!("stage {stage} "))
        })
        .collect();
    assert!(!live.is_empty());
    for check in live {
        let judge = check["name"].as_str().unwrap().rsplit(' ').next().unwrap();
        let replayed = replay["judges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == judge)
            .unwrap();
        assert_eq!(
            replayed["samples"], check["samples"],
            "{judge}: replay {replayed} vs live {check}"
        );
    }
}

#[test]
fn canary_regressions_are_no_go_with_a_rollback_at_the_first_stage() {
    let _turn = heavy_turn();
    for (knob, judge) in [
        ("errors=5%", "stage 1 (shadow)"),
        ("latency=+200ms", "stage 1 (shadow) latency"),
    ] {
        let s = Scratch::new();
        // The canary's own test: read-path regressions also (rightly) fail chaos drills.
        let out = s.run(&["demo", "--defect", knob, "--skip", "chaos", "--skip", "dr"]);
        assert_eq!(out.status.code(), Some(1), "{knob}: {}", text(&out.stderr));
        let run_dir = s.run_dirs().pop().unwrap();
        let report = report(&run_dir);
        assert_eq!(report["decision"], "NO-GO");
        let summary = report["summary"].as_str().unwrap();
        // The latency judge's "slow" is the baseline's p95 + 100 ms; when the parallel tests
        // starve these 2 cores, the baseline's p95 in the short shadow stage can pass 100 ms
        // and +200 ms is only caught at the next stage. Either way it is caught and rolled back.
        let later = judge.replace("stage 1 (shadow)", "stage 2 (25%)");
        let rejected_at =
            if knob.starts_with("latency") && summary.contains(&format!("`canary.{later}")) {
                2
            } else {
                assert!(
                    summary.contains(&format!("`canary.{judge}")),
                    "{knob}: {summary}"
                );
                1
            };
        let kinds: Vec<&str> = report["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert!(
            kinds.contains(&"rollback-decided") && kinds.contains(&"rollback-done"),
            "{knob}: {kinds:?}"
        );
        assert_replay_matches(&s, &run_dir, &report, rejected_at, "REJECT");
        let rollback = step(&report, "canary")["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "rollback")
            .cloned();
        assert_eq!(rollback.unwrap()["outcome"], "pass");
        // The failure taxonomy starts from the step that failed and names the cause.
        let taxonomy = &report["taxonomy"];
        let top = taxonomy["top"].as_array().expect("a failure taxonomy");
        assert_eq!(
            (&top[0]["kind"], &top[0]["step"], &top[0]["cause"]),
            (&"checks".into(), &"canary".into(), &"fail".into()),
            "{knob}: {taxonomy}"
        );
        assert!(top.iter().all(|c| !c["hint"].as_str().unwrap().is_empty()));
        if knob.starts_with("errors") {
            // The candidate's own 500s, by route, right after the step they failed.
            let cause = &top[1];
            assert_eq!(cause["kind"], "requests", "{taxonomy}");
            assert_eq!(cause["arm"], "candidate", "{taxonomy}");
            assert_eq!(cause["status"], 500, "{taxonomy}");
            assert!(cause["route"].as_str().unwrap().starts_with("GET /"));
            let from_spec = cause["route"] == "GET /quote" || cause["route"] == "GET /items/{id}";
            assert_eq!(
                cause["hint_from"],
                if from_spec { "spec" } else { "built-in" },
                "{cause}"
            );
            let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
            assert!(md.contains("## Failure taxonomy"), "{md}");
        }
        // The gates judge what the canary measured, after it stopped the run.
        let gates = report["gates"]["gates"].as_array().expect("gates ran");
        let p99 = gates.iter().find(|g| g["name"] == "p99 latency").unwrap();
        if knob.starts_with("latency") {
            assert_eq!(p99["outcome"], "fail", "{p99}");
            assert!(p99["value"].as_f64().unwrap() > 0.2, "{p99}");
        }
        assert_nothing_left(&run_dir);
    }
}

#[test]
fn completions_and_schema_are_generated() {
    let s = Scratch::new();
    let bash = s.run(&["completions", "bash"]);
    assert!(text(&bash.stdout).contains("gauntlet"));
    let schema: Value = serde_json::from_slice(&s.run(&["schema"]).stdout).expect("schema is JSON");
    assert!(schema["properties"]["schema_version"].is_object());
    assert!(
        schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "schema_version")
    );
}

#[test]
fn the_rollback_hook_runs_when_the_canary_rejects() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    let demo = include_str!("../../../examples/demo.yaml");
    let spec = demo
        .replace("\"--defect-env\", \"GAUNTLET_DEMO_DEFECTS\"", "\"--defect=errors=20%\"")
        .replace(
            "    abort: {p99: 1s, error_rate: 20%, min_samples: 50}",
            "    abort: {p99: 1s, error_rate: 90%, min_samples: 50}\n    rollback: {command: [sh, -c, \"echo $GAUNTLET_EVENT $GAUNTLET_STAGE > hook.txt\"]}",
        );
    assert!(spec.contains("hook.txt") && spec.contains("errors=20%"));
    s.write("hooked.yaml", &spec);
    let out = s.run(&["run", "hooked.yaml", "--only", "canary"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let hook = std::fs::read_to_string(s.path().join("hook.txt"))
        .expect("the hook ran in the working directory");
    assert_eq!(hook.trim(), "rollback stage 1 (shadow)");
}

#[test]
fn load_speaks_http1_and_http2_and_a_closed_pipe_is_not_a_panic() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = s
        .command()
        .args([
            "demo-service",
            "provider",
            "--port",
            &port.to_string(),
            "--name",
            "p",
        ])
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the provider never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    for extra in [&[][..], &["--http2"][..]] {
        let mut args = vec![
            "load",
            url.as_str(),
            "--rate",
            "200/s",
            "--duration",
            "1s",
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = s.run(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{extra:?}: {}",
            text(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            report["answered"].as_u64().unwrap() >= 190,
            "{extra:?}: {report}"
        );
        assert_eq!(report["errors"], serde_json::json!({}), "{extra:?}");
    }
    // `gauntlet load … | head -1`: the reader goes away; gauntlet must not panic.
    let mut child = s
        .command()
        .args(["load", url.as_str(), "--rate", "100/s", "--duration", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn the_rollback_webhook_is_posted_when_the_canary_rejects() {
    let _turn = heavy_turn();
    use std::io::{Read, Write};
    let s = Scratch::new();
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    // A one-shot receiver: reads one request, answers 200, hands back what it read.
    let receiver = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("}") {
            let n = stream.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&seen).into_owned()
    });
    let demo = include_str!("../../../examples/demo.yaml");
    let spec = demo.replace("\"--defect-env\", \"GAUNTLET_DEMO_DEFECTS\"", "\"--defect=errors=20%\"").replace(
        "    abort: {p99: 1s, error_rate: 20%, min_samples: 50}",
        &format!("    abort: {{p99: 1s, error_rate: 90%, min_samples: 50}}\n    rollback: {{webhook: \"http://127.0.0.1:{port}/hooks/rollback\"}}"),
    );
    s.write("webhook.yaml", &spec);
    let out = s.run(&["run", "webhook.yaml", "--only", "canary"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let request = receiver.join().unwrap();
    assert!(request.starts_with("POST /hooks/rollback "), "{request}");
    assert!(request.contains("\"event\":\"rollback\""), "{request}");
    let run_dir = s.run_dirs().pop().unwrap();
    let report = report(&run_dir);
    let canary = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "canary")
        .unwrap();
    let rollback = canary["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "rollback")
        .cloned()
        .unwrap();
    assert_eq!(rollback["outcome"], "pass", "{rollback}");
    assert!(
        rollback["reason"]
            .as_str()
            .unwrap()
            .contains("webhook answered 200")
    );
}

#[test]
fn failover_and_corruption_defects_fail_their_drills() {
    let _turn = heavy_turn();
    for (knob, check) in [
        ("no-failover", "chaos.primary-outage: hold"),
        (
            "corrupt-data",
            "chaos.data-corruption: side effect corruption-detected",
        ),
    ] {
        let s = Scratch::new();
        // The drill on its own, the knob handed to the candidate as `demo --defect` hands it:
        // the whole demo is 30 s of other drills.
        s.write("demo.yaml", include_str!("../../../examples/demo.yaml"));
        let drill = check.split(['.', ':']).nth(1).unwrap();
        let out = s.drill("demo.yaml", drill, knob);
        assert_eq!(out.status.code(), Some(1), "{knob}: {}", text(&out.stderr));
        let run_dir = s.run_dirs().pop().unwrap();
        let report = report(&run_dir);
        assert_eq!(report["decision"], "NO-GO");
        let summary = report["summary"].as_str().unwrap();
        assert!(summary.contains(&format!("`{check}`")), "{knob}: {summary}");
        let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
        assert!(md.contains(&format!("`{check}` | ❌ fail")), "{knob}: {md}");
        // The failing drill still undid its faults.
        assert!(
            md.contains(&format!("`chaos.{drill}: faults undone` | ✅ pass")),
            "{knob}: {md}"
        );
        assert_nothing_left(&run_dir);
    }
}

#[test]
fn one_drill_runs_on_its_own_with_a_live_timeline() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    s.write("demo.yaml", include_str!("../../../examples/demo.yaml"));
    let out = s.run(&["chaos", "demo.yaml", "--drill", "candidate-crash"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for needle in [
        "candidate-crash +0.00s start",
        "fault-applied: SIGKILL to candidate",
        "action: gauntlet started candidate again",
        "detected: candidate exited",
        "recovered: candidate answers its health check again",
        "restored: steady state holds again",
    ] {
        assert!(
            stderr.contains(needle),
            "the live timeline lacks {needle:?}:\n{stderr}"
        );
    }
    let run_dir = s.run_dirs().pop().unwrap();
    let report = report(&run_dir);
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["setup", "chaos"]);
    assert_eq!(report["drills"].as_array().unwrap().len(), 1);
    assert_nothing_left(&run_dir);

    let typo = s.run(&["chaos", "demo.yaml", "--drill", "candidat-crash"]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        text(&typo.stderr).contains("did you mean `candidate-crash`?"),
        "{}",
        text(&typo.stderr)
    );
}

/// Every register line in the journal has its done line.
fn journal_settled(run_dir: &Path) -> bool {
    let Ok(journal) = std::fs::read_to_string(run_dir.join("cleanup.jsonl")) else {
        return true;
    };
    let lines: Vec<Value> = journal
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    lines.iter().filter(|v| v["op"] == "register").all(|r| {
        lines
            .iter()
            .any(|d| d["op"] == "done" && d["id"] == r["id"])
    })
}

/// Files a fault leaves while it is in: corrupted originals kept aside, disk fills.
fn injected_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            injected_files(&path, found);
        } else if name.ends_with(".gauntlet-original") || name.starts_with(".gauntlet-fill-") {
            found.push(path);
        }
    }
}

fn assert_nothing_injected(run_dir: &Path) {
    for (pid, start) in started_pids(run_dir) {
        assert!(
            !alive(pid, &start),
            "process {pid} (or a stressor) still runs"
        );
    }
    assert!(pgrep(&run_dir.display().to_string()).is_empty());
    let mut left = Vec::new();
    injected_files(run_dir, &mut left);
    assert!(left.is_empty(), "fault files left: {left:?}");
    // The data file is the original, byte for byte: its digest is the manifest's.
    let data = run_dir.join("work/candidate/items.json");
    if let Ok(bytes) = std::fs::read(&data) {
        let manifest = std::fs::read_to_string(run_dir.join("work/candidate/items.json.sha256"))
            .expect("the manifest is written with the data file");
        let digest: String = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        assert_eq!(manifest.split_whitespace().next(), Some(digest.as_str()));
    }
    assert!(journal_settled(run_dir), "every journal entry is undone");
}

#[test]
fn killing_a_chaos_run_at_random_points_leaves_nothing_injected() {
    let _turn = heavy_turn();
    use nix::sys::signal::Signal;
    let drills = [
        "data-corruption",
        "disk-pressure",
        "cpu-pressure",
        "memory-pressure",
        "candidate-crash",
        "primary-outage",
    ];
    // Seeded: the kill points are the same on every run of the test.
    let mut state: u64 = 0x5eed;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    for signal in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGKILL,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGKILL,
    ] {
        let s = Scratch::new();
        s.write("demo.yaml", include_str!("../../../examples/demo.yaml"));
        let mut args = vec!["chaos", "demo.yaml"];
        for drill in drills {
            args.extend(["--drill", drill]);
        }
        let mut child = s
            .command()
            .args(&args)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let run_dir = wait_for(&s, "logs/candidate.log", Duration::from_secs(60));
        let delay = Duration::from_secs_f64(0.2 + 12.0 * next());
        // Bounded: the run ends by itself within its drills' time if the kill comes late.
        let deadline = Instant::now() + delay;
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        send(child.id(), signal);
        let status = child.wait().unwrap();
        if signal == Signal::SIGKILL {
            let recovered = s.run(&["recover"]);
            assert_eq!(
                recovered.status.code(),
                Some(0),
                "{}",
                text(&recovered.stderr)
            );
        } else {
            assert!(
                status.code().is_some(),
                "{signal} ends the run cleanly: {status}"
            );
        }
        assert_nothing_injected(&run_dir);
        eprintln!("{signal} after {delay:?}: nothing left injected");
    }
}

#[test]
fn a_health_path_that_is_not_there_is_said_at_once() {
    // A static server answers its default `/healthz` with 404: waiting never helps.
    let s = Scratch::new();
    s.write(
        "static.yaml",
        "schema_version: 1
service: {name: static, version: '1'}
targets:
  candidate:
    command: [python3, -m, http.server, '{port}', --bind, 127.0.0.1]
    ready_timeout: 5m
traffic: {rate: 10/s, requests: [{path: /}]}
steps:
  security:
    paths: {}
",
    );
    let out = s.run(&["run", "static.yaml", "--quiet"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let report = crate::common::latest(&s);
    let setup = &report["steps"][0]["checks"][0];
    let reason = setup["reason"].as_str().unwrap();
    assert!(
        reason.contains("/healthz with 404")
            && reason.contains("set `targets.candidate.health`")
            && !reason.contains("within"),
        "{reason}"
    );
    crate::common::assert_nothing_running_under(s.path());
}

#[test]
fn judge_takes_its_judges_from_flags_and_honours_time() {
    let s = Scratch::new();
    // A candidate failing 10% against a 1% baseline rate, one observation every 10 ms.
    let mut csv = String::from("arm,ok,latency_ms,t_ms\n");
    for i in 0..3000u64 {
        let arm = if i % 2 == 0 { "baseline" } else { "candidate" };
        let ok = arm == "baseline" || i % 20 != 1;
        csv.push_str(&format!("{arm},{ok},5,{}\n", i * 10));
    }
    s.write("samples.csv", &csv);
    let json = |out: &std::process::Output| -> Value {
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out.stderr)))
    };
    // No spec needed: the SPRT against p0 = 1% rejects.
    let out = s.run(&["judge", "samples.csv", "--p0", "1%", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let replay = json(&out);
    assert_eq!(replay["verdict"], "REJECT", "{replay}");
    assert_eq!(replay["judges_from"], "the flags");
    // A bake shorter than the time the judges need: the replay ends undecided, as the live
    // stage would have.
    let out = s.run(&[
        "judge",
        "samples.csv",
        "--p0",
        "1%",
        "--bake",
        "200ms",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let replay = json(&out);
    assert_eq!(replay["verdict"], "UNDECIDED", "{replay}");
    assert_eq!(replay["bake_ended"], true);
    // Times that go back are refused with their line.
    s.write(
        "backwards.csv",
        "arm,ok,latency_ms,t_ms\nbaseline,true,1,20\ncandidate,true,1,10\n",
    );
    let out = s.run(&["judge", "backwards.csv", "--judge", "two-sample"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("line 3: t_ms 10 is earlier"),
        "{}",
        text(&out.stderr)
    );
    // Parameters a judge cannot honour are refused, never clamped.
    let out = s.run(&["judge", "samples.csv", "--p0", "98%", "--delta", "5%"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("p1"), "{}", text(&out.stderr));
    // Flags and a spec are one or the other.
    let out = s.run(&["judge", "samples.csv", "--p0", "1%", "--spec", "x.yaml"]);
    assert_eq!(out.status.code(), Some(2));
}
