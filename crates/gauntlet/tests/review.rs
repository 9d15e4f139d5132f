//! The readiness review end to end: gates over a real Prometheus (Debian's `prometheus`,
//! started by the run on a loopback port and scraping the demo system), the PRR checklist
//! with its waivers, and the certificate.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use common::{DEMO_DEFECTS_ENV, Scratch, assert_nothing_running_under, heavy_turn, latest, text};
use serde_json::Value;

const DEMO: &str = include_str!("../../../examples/demo.yaml");
const PROMPT: &str = include_str!("../../../examples/prompts/support-reply.txt");

fn gate<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["gates"]["gates"]
        .as_array()
        .expect("gates in the report")
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("gate {name} in {}", report["gates"]))
}

/// The run's report, once it exited 0 (else the test fails with its summary and stderr).
fn went_through(s: &Scratch, out: &std::process::Output) -> Value {
    let report = latest(s);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        report["summary"],
        text(&out.stderr)
    );
    report
}

#[test]
fn promql_gates_read_the_real_prometheus_and_pass_on_a_good_candidate() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    // The checklist would count the skipped drills as pending: this test is about gates.
    let out = s.run(&[
        "demo",
        "--prometheus",
        "--skip",
        "chaos",
        "--skip",
        "readiness",
        "--quiet",
    ]);
    let report = went_through(&s, &out);
    assert_eq!(report["decision"], "GO", "{}", report["summary"]);
    let fast = gate(&report, "requests under 100ms (Prometheus)");
    assert_eq!(fast["outcome"], "pass", "{fast}");
    let query = fast["query"].as_str().unwrap();
    assert!(
        query.starts_with(
            "promql: sum(rate(demo_http_request_duration_seconds_bucket{job=\"candidate\""
        ),
        "{query}"
    );
    assert!(
        fast["raw"].as_array().is_some_and(|r| !r.is_empty()),
        "{fast}"
    );
    let share = fast["value"].as_f64().unwrap();
    assert!((0.9..=1.0).contains(&share), "{share}");
    let p99 = gate(&report, "p99 latency (Prometheus)");
    assert_eq!(p99["outcome"], "pass", "{p99}");
    let errors5xx = gate(&report, "5xx ratio (Prometheus)");
    assert!(
        !errors5xx["query"]
            .as_str()
            .unwrap()
            .contains("{run_seconds}"),
        "resolved: {errors5xx}"
    );
    let errors = gate(&report, "5xx ratio (Prometheus)");
    assert_eq!(errors["outcome"], "pass", "{errors}");
    // The built-in twin read gauntlet's own canary measurements.
    let builtin = gate(&report, "p99 latency");
    assert_eq!(builtin["outcome"], "pass", "{builtin}");
    assert!(report["measurements"]["canary.candidate.latency_p99"].is_number());
    // No history yet: that gate is inconclusive, never a pass, and the score says so.
    assert_eq!(gate(&report, "p99 trend")["outcome"], "inconclusive");
    let score = report["gates"]["score"].as_f64().unwrap();
    assert!((0.9..1.0).contains(&score), "{score}");
    let setup = &report["steps"][0]["checks"];
    assert!(
        setup
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "prometheus ready" && c["outcome"] == "pass"),
        "{setup}"
    );
    // The OpenSLO SLO's multi-window, multi-burn-rate rules were made, accepted by promtool
    // and loaded by the run's Prometheus.
    let checks: Vec<&serde_json::Value> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap())
        .collect();
    for id in [
        "observability.SLO burn-rate rules",
        "observability.SLO burn-rate rules loaded by Prometheus",
    ] {
        let check = checks
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("{id}"));
        assert_eq!(check["outcome"], "pass", "{check}");
    }
    let rules =
        std::fs::read_to_string(s.run_dirs().pop().unwrap().join("slo-burn-rate.rules.yml"))
            .unwrap();
    assert!(
        rules.contains("ShopAvailabilityErrorBudgetBurnFast"),
        "{rules}"
    );
    // Nothing of the run's Prometheus is left running.
    assert_nothing_running_under(s.path());
}

#[test]
fn prometheus_stopped_mid_run_makes_the_gates_inconclusive_never_go() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    let mut child = s
        .command()
        .args([
            "demo",
            "--prometheus",
            "--skip",
            "chaos",
            "--skip",
            "dr",
            "--skip",
            "rotation",
            "--skip",
            "security",
            "--skip",
            "readiness",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let config = s.path().join(".gauntlet/runs");
    let mut killed = false;
    let mut seen = String::new();
    for line in stderr.lines().map_while(Result::ok) {
        seen.push_str(&line);
        seen.push('\n');
        if !killed && line.contains("canary: started") {
            // The run's Prometheus is the process whose config lives in this scratch's runs.
            let pattern = format!("{}.*prometheus.yml", config.display());
            let stop = std::process::Command::new("pkill")
                .args(["-TERM", "-f", &pattern])
                .status()
                .unwrap();
            assert!(stop.success(), "no Prometheus to stop:\n{seen}");
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(killed, "the canary never started:\n{seen}");
    let report = latest(&s);
    assert_eq!(status.code(), Some(3), "{}\n{seen}", report["summary"]);
    assert_eq!(report["decision"], "INCONCLUSIVE", "{}", report["summary"]);
    let fast = gate(&report, "requests under 100ms (Prometheus)");
    assert_eq!(fast["outcome"], "inconclusive", "{fast}");
    let reason = fast["reason"].as_str().unwrap();
    assert!(reason.contains("unavailable"), "{reason}");
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap())
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}: {}", report["summary"]))
}

/// A string field of a report says `needle`.
fn assert_says(field: &Value, needle: &str) {
    let said = field
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {field}"));
    assert!(said.contains(needle), "{needle:?} not in {said:?}");
}

/// Asserts a check's outcome and that its reason contains `says`.
fn assert_check(report: &Value, id: &str, outcome: &str, says: &str) {
    let c = check(report, id);
    assert_eq!(c["outcome"], outcome, "{c}");
    let reason = c["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(says), "{c}");
}

#[test]
fn the_outage_alert_fires_and_reaches_gauntlet_through_a_real_alertmanager() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    // The rehearsal through the demo, then the outage drill on its own against the demo
    // project's spec (the whole chaos step is ten more drills this test does not read: #22).
    let only = ["--only", "rollback-rehearsal", "--quiet"];
    let out = s.run(&[&["demo", "--prometheus"][..], &only].concat());
    let report = went_through(&s, &out);
    let am = check(&report, "setup.alertmanager ready");
    assert_eq!(am["outcome"], "pass", "{am}");
    // The rehearsal's broken candidate pages: its 5xx alert arrives after the fault.
    let paged = "rollback-rehearsal.alert DemoCandidateErrors";
    assert_check(&report, paged, "pass", "Alertmanager delivered it");
    let key = "rollback_rehearsal.time_to_alert.DemoCandidateErrors";
    let seconds = report["measurements"][key].as_f64().expect("measured");
    assert!(seconds > 0.0 && seconds < 20.0, "{seconds}");

    let spec = ".gauntlet/demo/gauntlet.yaml";
    let drill = ["chaos", spec, "--drill", "primary-outage", "--quiet"];
    let out = s.run(&drill);
    let report = went_through(&s, &out);
    let alert = check(
        &report,
        "chaos.primary-outage: alert DemoPrimaryProviderFailing",
    );
    assert_eq!(alert["outcome"], "pass", "{alert}");
    assert!(
        alert["measured"]
            .as_str()
            .unwrap()
            .contains("firing in Prometheus after"),
        "{alert}"
    );
    let key = "chaos.primary-outage.time_to_alert.DemoPrimaryProviderFailing";
    let seconds = report["measurements"][key]
        .as_f64()
        .expect("time to alert measured");
    assert!(seconds > 0.0 && seconds < 20.0, "{seconds}");
    let outage = report["drills"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "primary-outage")
        .unwrap();
    assert_eq!(
        outage["time_to_alert_ms"]["DemoPrimaryProviderFailing"].as_u64(),
        Some((seconds * 1000.0).round() as u64)
    );
    let run_dir = s.run_dirs().pop().unwrap();
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        md.contains("time to alert `DemoPrimaryProviderFailing`"),
        "{md}"
    );

    // An alert that cannot fire in time fails the drill; it is not assumed.
    // The demo project's spec edited, and the outage drill run on its own against it.
    let outage_with = |from: &str, to: &str| {
        let path = s.path().join(spec);
        let before = std::fs::read_to_string(&path).unwrap();
        assert!(before.contains(from), "{from}");
        std::fs::write(&path, before.replace(from, to)).unwrap();
        let out = s.run(&drill);
        (out.status.code(), latest(&s))
    };
    let (code, report) = outage_with(
        "alerts: [{name: DemoPrimaryProviderFailing, within: 20s}]",
        "alerts: [{name: DemoCandidateDown, within: 3s}]",
    );
    assert_eq!(code, Some(1), "{}", report["summary"]);
    let missed = check(&report, "chaos.primary-outage: alert DemoCandidateDown");
    assert_eq!(missed["outcome"], "fail", "{missed}");
    assert!(
        missed["reason"]
            .as_str()
            .unwrap()
            .contains("did not reach the receiver within 3s"),
        "{missed}"
    );
    // With no Prometheus to evaluate the rules, nothing could fire: inconclusive, not failed.
    let interval = "  scrape_interval: 1s\n";
    let (code, report) = outage_with(
        interval,
        &format!("{interval}  binary: gauntlet-test-no-such-prometheus\n"),
    );
    assert_eq!(code, Some(3), "{}", report["summary"]);
    let unknown = check(&report, "chaos.primary-outage: alert DemoCandidateDown");
    assert_eq!(unknown["outcome"], "inconclusive", "{unknown}");
    assert!(
        check(&report, "setup.prometheus ready")["reason"]
            .as_str()
            .unwrap()
            .contains("apt-get install prometheus"),
        "{}",
        report["summary"]
    );
    // Prometheus and Alertmanager went with the run.
    assert_nothing_running_under(s.path());
}

#[test]
fn a_broken_rule_file_fails_observability_with_its_place() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    // Written and signed by the demo; then edited as a careless release would.
    let out = s.run(&["demo", "--only", "observability", "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // --quiet silences progress and notes, not the result: the outcome is on stdout.
    let stdout = text(&out.stdout);
    assert!(stdout.trim_start().starts_with("GO "), "{stdout}");
    assert!(stdout.contains("run id:"), "{stdout}");
    assert_eq!(text(&out.stderr), "", "nothing but the outcome");
    let rules = s.path().join(".gauntlet/demo/alerts/demo.rules.yml");
    let good = std::fs::read_to_string(&rules).unwrap();
    let broken = good.replacen("        for: 5s\n", "        fore: 5s\n", 1);
    let line = 1 + broken.lines().position(|l| l.contains("fore:")).unwrap();
    std::fs::write(&rules, broken).unwrap();
    let spec = ".gauntlet/demo/gauntlet.yaml";
    let out = s.run(&["run", spec, "--only", "observability", "--quiet"]);
    let report = latest(&s);
    assert_eq!(out.status.code(), Some(1), "{}", report["summary"]);
    let valid = check(&report, "observability.alert rules valid");
    assert_eq!(valid["outcome"], "fail", "{valid}");
    let reason = valid["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("alerts/demo.rules.yml:{line}:9:")) && reason.contains("fore"),
        "{reason}"
    );
    // A rule file that parses and lacks a required alert.
    let renamed = good.replace("alert: DemoHighErrorRate", "alert: DemoErrorsHigh");
    std::fs::write(&rules, renamed).unwrap();
    let out = s.run(&["run", spec, "--only", "observability", "--quiet"]);
    let report = latest(&s);
    assert_eq!(out.status.code(), Some(1), "{}", report["summary"]);
    let defined = check(
        &report,
        "observability.alert rules define the required alerts",
    );
    assert_eq!(defined["outcome"], "fail", "{defined}");
    let reason = defined["reason"].as_str().unwrap();
    assert!(
        reason.contains("does not define DemoHighErrorRate") && reason.contains("DemoErrorsHigh"),
        "{reason}"
    );
}

/// `YYYY-MM-DD`, `days` from today (UTC).
fn day(days: i64) -> String {
    let now = SystemTime::now();
    let at = if days >= 0 {
        now + Duration::from_secs(days as u64 * 86_400)
    } else {
        now - Duration::from_secs((-days) as u64 * 86_400)
    };
    humantime::format_rfc3339_seconds(at).to_string()[..10].to_string()
}

/// The demo spec with a small checklist of its own: the security step's checks and one
/// attested item that is not done, waived from `granted` to `expires`.
fn with_waiver(granted: &str, expires: &str) -> String {
    let head = &DEMO[..DEMO
        .find("\nreadiness:\n")
        .expect("the demo has a checklist")];
    format!(
        "{head}\nreadiness:\n  minimum: 50%\n  categories:\n    - name: security\n      weight: 2\n      items:\n\
         \x20       - {{name: abuse probes refused, owner: security, automated: [security.*]}}\n\
         \x20   - name: documentation\n      items:\n\
         \x20       - name: release notes\n          owner: product\n\
         \x20         attested: {{by: shop-pm@example.com, evidence: 'https://wiki.example.com/notes'}}\n\
         \x20         waiver: {{by: product, reason: written after the freeze, granted: {granted}, expires: {expires}}}\n"
    )
}

fn project(s: &Scratch, spec: &str) {
    s.write("gauntlet.yaml", spec);
    s.write("prompts/support-reply.txt", PROMPT);
}

/// `gauntlet run gauntlet.yaml` with `args`: its exit code and the stored report.
fn run_project(s: &Scratch, args: &[&str]) -> (Option<i32>, Value) {
    let out = s.run(&[&["run", "gauntlet.yaml"][..], args].concat());
    (out.status.code(), latest(s))
}

#[test]
fn a_waiver_longer_than_14_days_is_refused_at_validation() {
    let s = Scratch::new();
    project(&s, &with_waiver(&day(0), &day(20)));
    let out = s.run(&["validate", "gauntlet.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out.stderr);
    assert!(
        said.contains("the waiver runs 20 days; a waiver may run at most 14 days"),
        "{said}"
    );
    assert!(said.contains("gauntlet.yaml:"), "located: {said}");
    // The spec can only lower the limit.
    let lowered =
        with_waiver(&day(0), &day(5)).replace("minimum: 50%", "minimum: 50%\n  max_waiver: 3d");
    project(&s, &lowered);
    let out = s.run(&["validate", "gauntlet.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("at most 3 days"),
        "{}",
        text(&out.stderr)
    );
    assert!(s.run_dirs().is_empty(), "nothing ran");
}

#[test]
fn a_live_waiver_is_conditional_with_its_deadline_and_an_expired_one_fails() {
    let s = Scratch::new();
    let only = ["--only", "security", "--only", "readiness", "--quiet"];
    assert_eq!(s.run(&["keys", "generate"]).status.code(), Some(0));
    project(&s, &with_waiver(&day(-2), &day(5)));
    let (code, live) = run_project(&s, &only);
    assert_eq!(code, Some(0), "{}", live["summary"]);
    assert_eq!(live["decision"], "CONDITIONAL", "{}", live["summary"]);
    let condition = &live["conditions"][0];
    assert_eq!(condition["check"], "readiness.waiver: release notes");
    assert_eq!(condition["owner"], "shop-pm@example.com");
    let deadline = condition["deadline"].as_str().unwrap();
    assert!(deadline.starts_with(&day(5)), "{deadline}");
    let readiness = &live["readiness"];
    // security done (weight 2), documentation waived (not done): 2/3.
    let score = readiness["score"].as_f64().unwrap();
    assert!((score - 2.0 / 3.0).abs() < 1e-9, "{readiness}");
    let run_id = live["run_id"].as_str().unwrap().to_string();

    // `gauntlet readiness` scores the stored checks the same way.
    let printed = s.run(&["readiness", &run_id]);
    assert_eq!(printed.status.code(), Some(0), "{}", text(&printed.stderr));
    let said = text(&printed.stdout);
    assert!(said.contains("66.7% (minimum 50%)"), "{said}");
    assert!(
        said.contains("waived   release notes — product (shop-pm@example.com"),
        "{said}"
    );
    let json: Value =
        serde_json::from_slice(&s.run(&["readiness", &run_id, "--json"]).stdout).unwrap();
    assert_eq!(json["score"], readiness["score"]);

    // The certificate: decision, the condition with its owner and deadline, the score.
    let cert = s.run(&["certificate", &run_id]);
    assert_eq!(cert.status.code(), Some(0), "{}", text(&cert.stderr));
    let run_dir = s.runs_dir().join(&run_id);
    let md = std::fs::read_to_string(run_dir.join("certificate.md")).unwrap();
    assert!(md.contains("**Decision: CONDITIONAL**"), "{md}");
    assert!(md.contains("## Readiness — 66.7% (minimum 50%)"), "{md}");
    assert!(md.contains("| security | 2 | 100.0% |"), "{md}");
    assert!(md.contains(deadline), "{md}");
    assert!(md.contains("shop-pm@example.com (product)"), "{md}");
    assert!(
        md.contains("Attestation: `attestation.dsse.json`, sha256 `"),
        "{md}"
    );
    let html = std::fs::read_to_string(run_dir.join("certificate.html")).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("<table>") && html.contains("66.7%"), "{html}");

    // The same waiver, expired: the run fails, naming it.
    project(&s, &with_waiver(&day(-12), &day(-1)));
    let (code, expired) = run_project(&s, &only);
    assert_eq!(code, Some(1), "{}", expired["summary"]);
    assert_eq!(expired["decision"], "NO-GO");
    let summary = expired["summary"].as_str().unwrap();
    assert!(
        summary.contains("readiness.waiver: release notes"),
        "{summary}"
    );
    assert!(summary.contains("expired"), "{summary}");
}

#[test]
fn repeat_runs_gate_on_the_share_of_go_runs() {
    let s = Scratch::new();
    project(&s, DEMO);
    let args = [
        "run",
        "gauntlet.yaml",
        "--profile",
        "smoke",
        "--repeat",
        "3",
        "--min-success",
        "70%",
        "--quiet",
    ];
    let out = s.command().args(args).output().unwrap();
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", text(&out.stderr));
    assert!(
        said.contains("3 runs of gauntlet.yaml (profile smoke): 3 GO (100.0%), min-success 70%"),
        "{said}"
    );
    assert!(said.contains("repeat: PASS"), "{said}");
    for seed in ["seed 1  GO", "seed 2  GO", "seed 3  GO"] {
        assert!(said.contains(seed), "{seed}: {said}");
    }
    // The smoke profile ran the security step and nothing else.
    let ran: Vec<String> = latest(&s)["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|step| step["outcome"] != "skipped")
        .map(|step| step["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ran, ["setup", "security"], "{ran:?}");
    // A candidate that lets requests without credentials through is NO-GO every time.
    let out = s
        .command()
        .args(args)
        .env(DEMO_DEFECTS_ENV, "auth-bypass")
        .output()
        .unwrap();
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("0 GO (0.0%)") && said.contains("repeat: FAIL"),
        "{said}"
    );
    assert_eq!(s.run_dirs().len(), 6);
    // Bad input: exit 2 before anything runs.
    let bad = s.run(&[
        "run",
        "gauntlet.yaml",
        "--repeat",
        "2",
        "--min-success",
        "70",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    let typo = s.run(&["run", "gauntlet.yaml", "--profile", "smok", "--repeat", "2"]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        text(&typo.stderr).contains("did you mean `smoke`?"),
        "{}",
        text(&typo.stderr)
    );
    assert_eq!(s.run_dirs().len(), 6);
}

#[test]
fn the_rehearsal_fails_an_sli_that_does_not_see_the_service_break() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    // The demo's rehearsal corrupts the candidate's data for real: its own counters see it.
    let out = s.run(&["demo", "--only", "rollback-rehearsal", "--quiet"]);
    let report = latest(&s);
    assert_eq!(out.status.code(), Some(0), "{}", report["summary"]);
    let sli = check(&report, "rollback-rehearsal.SLI drops");
    assert_eq!(sli["outcome"], "pass", "{sli}");
    let drop = report["measurements"]["rollback_rehearsal.sli_drop"]
        .as_f64()
        .expect("the drop is measured");
    assert!(drop >= 0.10, "{sli}");
    assert!(report["measurements"]["rollback_rehearsal.sli_before"].as_f64() > Some(0.99));
    // The corrupted file was put back, byte for byte.
    let run_dir = s.run_dirs().pop().unwrap();
    let restored = report["timeline"].to_string();
    assert!(
        restored.contains("items.json (sha256 matches the original)"),
        "{restored}"
    );
    let journal = std::fs::read_to_string(run_dir.join("cleanup.jsonl")).unwrap();
    let opened = journal.matches("\"op\":\"register\"").count();
    let closed = journal.matches("\"op\":\"done\"").count();
    assert_eq!(opened, closed, "every journaled undo ran: {journal}");

    let spec = ".gauntlet/demo/gauntlet.yaml";
    let edit = |from: &str, to: &str| {
        let path = s.path().join(spec);
        let before = std::fs::read_to_string(&path).unwrap();
        assert!(before.contains(from), "{from}");
        std::fs::write(&path, before.replacen(from, to, 1)).unwrap();
    };
    // Errors made up by the split never reach the service: the judges and the rollback
    // still work, and the SLI that did not move fails the step.
    edit(
        "    error_rate: 0%\n    faults: [{kind: corrupt, target: candidate, file: items.json, bytes: 8}]\n",
        "    error_rate: 30%\n",
    );
    let out = s.run(&["run", spec, "--only", "rollback-rehearsal", "--quiet"]);
    let report = latest(&s);
    assert_eq!(out.status.code(), Some(1), "{}", report["summary"]);
    assert_eq!(
        check(&report, "rollback-rehearsal.regression detected")["outcome"],
        "pass"
    );
    let sli = check(&report, "rollback-rehearsal.SLI drops");
    assert_eq!(sli["outcome"], "fail", "{sli}");
    assert_says(&sli["reason"], "the SLI does not see the service break");
    // A counter that never moves (a typo in its name) fails as well, saying so.
    edit(
        "      total: demo_http_requests_total\n",
        "      total: demo_http_request_total\n",
    );
    let out = s.run(&["run", spec, "--only", "rollback-rehearsal", "--quiet"]);
    let report = latest(&s);
    assert_eq!(out.status.code(), Some(1), "{}", report["summary"]);
    let sli = check(&report, "rollback-rehearsal.SLI drops");
    assert!(
        sli["reason"].as_str().unwrap().contains("did not move"),
        "{sli}"
    );
    // Anything but a series selector is refused before the run, with its place.
    edit(
        "      total: demo_http_request_total\n",
        "      total: 'rate(demo_http_requests_total[1m])'\n",
    );
    let out = s.run(&["validate", spec]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("gauntlet.yaml:") && stderr.contains("not a plain series selector"),
        "{stderr}"
    );
    assert_nothing_running_under(s.path());
}

#[test]
fn the_dashboard_must_cover_each_area_with_valid_queries() {
    let s = Scratch::new();
    let out = s.run(&["demo", "--only", "observability", "--quiet"]);
    let report = latest(&s);
    assert_eq!(out.status.code(), Some(0), "{}", report["summary"]);
    let covers = "observability.dashboard dashboards/demo.json covers";
    let canary = "canary (panels or rows titled so): demo_http_request_duration_seconds ← p95 latency by version";
    assert_check(&report, covers, "pass", canary);
    let board = s.path().join(".gauntlet/demo/dashboards/demo.json");
    let good = std::fs::read_to_string(&board).unwrap();
    let spec = ".gauntlet/demo/gauntlet.yaml";
    let run_with = |text: &str| {
        std::fs::write(&board, text).unwrap();
        let out = s.run(&["run", spec, "--only", "observability", "--quiet"]);
        let report = latest(&s);
        assert_eq!(out.status.code(), Some(1), "{}", report["summary"]);
        report
    };
    // Without the dependency panel, the failure-taxonomy row no longer reads that metric.
    let dependency = "rate(demo_dependency_requests_total[$__rate_interval])";
    assert!(good.contains(dependency));
    let report = run_with(&good.replace(dependency, "rate(demo_http_requests_total[5m])"));
    let lacks = "no panel reads demo_dependency_requests for failure taxonomy";
    assert_check(&report, covers, "fail", lacks);
    // A query that is not PromQL is named with its panel.
    let report = run_with(&good.replace("sum by (version) (rate(", "sum by (version) (rate(("));
    let valid = "observability.dashboard dashboards/demo.json valid";
    assert_check(&report, valid, "fail", "panel `5xx ratio by version`");
    // A file that is not JSON is refused with its place.
    let report = run_with(&good.replacen("\"panels\": [", "\"panels\": [,", 1));
    assert_check(&report, valid, "fail", "dashboards/demo.json:11:");
}

#[test]
fn an_attested_item_counts_only_signed_by_its_owner_role_as_the_spec_states_it() {
    let s = Scratch::new();
    s.run(&["demo", "--only", "readiness", "--quiet"]);
    let report = latest(&s);
    let runbook = "readiness.attested: on-call runbook";
    assert_check(&report, runbook, "pass", "sre's key 487C12BD55CBE388");
    let threat = "readiness.attested: threat model reviewed";
    assert_check(&report, threat, "pass", "security's key A40541CF3244D6CD");
    let demo = s.path().join(".gauntlet/demo");
    let spec = ".gauntlet/demo/gauntlet.yaml";
    let readiness_only = ["run", spec, "--only", "readiness", "--quiet"];

    // The spec now claims the runbook is done; what sre signed says partial.
    let yaml = std::fs::read_to_string(demo.join("gauntlet.yaml")).unwrap();
    let claim = "runbook\", status: partial}";
    assert!(yaml.contains(claim), "the demo's runbook item moved");
    let done = yaml.replace(claim, "runbook\", status: done}");
    std::fs::write(demo.join("gauntlet.yaml"), &done).unwrap();
    s.run(&readiness_only);
    let report = latest(&s);
    let moved = "status `partial` where the spec says `done`";
    assert_check(&report, runbook, "fail", moved);
    let item = &report["readiness"]["categories"][3]["items"][1];
    assert_eq!(item["name"], "on-call runbook", "{item}");
    assert_eq!(item["status"], "failed", "{item}");

    // Only sre's key may sign it; sre signs, and the claim counts again.
    let as_role = |role: &str| {
        let keyring = format!(".gauntlet/demo/keys/{role}");
        let args = ["--keyring", &keyring, "attest", "item", "on-call runbook"];
        s.run(&[&args[..], &["--spec", spec]].concat())
    };
    let refused = as_role("security");
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("owned by sre, whose key is 487C12BD55CBE388"));
    let signed = as_role("sre");
    assert_eq!(signed.status.code(), Some(0), "{}", text(&signed.stderr));
    s.run(&readiness_only);
    let report = latest(&s);
    assert_check(&report, runbook, "pass", "sre's key 487C12BD55CBE388");
    // The stock minisign tool checks the statement with sre's public key from the spec.
    let statement = demo.join("attestations/on-call-runbook.json");
    let stock = std::process::Command::new("minisign")
        .args(["-Vm", statement.to_str().unwrap(), "-P"])
        .arg("RWSI48tVvRJ8SP14ek8JWqoxrx8S3Xrwbd7LEfzATM0GSUvfib0zp2jS")
        .output()
        .expect("minisign is installed by scripts/test");
    assert!(stock.status.success(), "{}", text(&stock.stderr));
    // The stored run scores the same: `gauntlet readiness` reads the signature checks back.
    let scored = s.run(&["readiness", "latest", "--json"]);
    let scored: Value = serde_json::from_slice(&scored.stdout).unwrap();
    let item = &scored["categories"][3]["items"][1];
    assert_eq!(item["status"], "done", "{item}");
    assert!(
        item["detail"]
            .as_str()
            .unwrap()
            .contains("signed by sre-oncall@example.com")
    );

    // No statement at all: the claim does not count.
    std::fs::remove_file(&statement).unwrap();
    s.run(&readiness_only);
    assert_check(&latest(&s), runbook, "fail", "no signed attestation");
}

/// The demo spec with gates of its own over the rollback rehearsal's recovery time: an
/// absolute one, and two against the service's earlier GO runs.
fn with_history_gates() -> String {
    let head = &DEMO[..DEMO.find("\ngates:\n").expect("the demo has gates")];
    format!(
        "{head}\ngates:\n  pass: 90%\n  warn: 75%\n  history: 5\n  checks:\n\
         \x20   - {{name: recovery, query: {{metric: rollback_rehearsal.time_to_recover}}, pass: '< 10s', weight: 10}}\n\
         \x20   - {{name: recovery against history, query: {{metric: rollback_rehearsal.time_to_recover}}, pass: '<= history * 2 + 10s'}}\n\
         \x20   - {{name: recovery 1000 times history, query: {{metric: rollback_rehearsal.time_to_recover}}, pass: '>= history * 1000', weight: 0.1}}\n"
    )
}

#[test]
fn history_gates_compare_with_the_median_of_earlier_go_runs_and_never_pass_without_them() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    assert_eq!(s.run(&["keys", "generate"]).status.code(), Some(0));
    project(&s, &with_history_gates());
    let only = ["--only", "rollback-rehearsal", "--only", "gates", "--quiet"];
    let run = || run_project(&s, &only);

    // The first run has no history: both history gates are inconclusive (scored as zero), the
    // absolute gate carries the score, and the summary names what went unmeasured.
    let (code, first) = run();
    assert_eq!(code, Some(0), "{}", first["summary"]);
    assert_eq!(first["decision"], "GO", "{}", first["summary"]);
    for name in ["recovery against history", "recovery 1000 times history"] {
        let g = gate(&first, name);
        assert_eq!(g["outcome"], "inconclusive", "{g}");
        assert_says(&g["reason"], "no history");
    }
    let summary = first["summary"].as_str().unwrap();
    assert!(
        summary.contains("`recovery against history` inconclusive"),
        "{summary}"
    );
    let earlier = gate(&first, "recovery against history")["value"]
        .as_f64()
        .expect("the first run measured the recovery");

    // The second run compares with the first: the reference is that run's value, the limit
    // is computed from it, and a threshold no real run can meet fails (weighted: in the score).
    let (code, second) = run();
    assert_eq!(code, Some(0), "{}", second["summary"]);
    let against = gate(&second, "recovery against history");
    assert_eq!(against["outcome"], "pass", "{against}");
    assert_eq!(against["reference"].as_f64(), Some(earlier), "{against}");
    let limit = against["limit"].as_f64().unwrap();
    assert!((limit - (earlier * 2.0 + 10.0)).abs() < 1e-9, "{against}");
    assert!(
        against["raw"].as_array().unwrap().iter().any(|r| r
            .as_str()
            .unwrap()
            .starts_with("history: median of 1 earlier GO run(s)")),
        "{against}"
    );
    let impossible = gate(&second, "recovery 1000 times history");
    assert_eq!(impossible["outcome"], "fail", "{impossible}");
    assert_says(&second["summary"], "`recovery 1000 times history` fail");
    let score = second["gates"]["score"].as_f64().unwrap();
    assert!((score - 11.0 / 11.1).abs() < 1e-9, "{}", second["gates"]);
}
