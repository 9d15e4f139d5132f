//! The canary on traffic gauntlet did not send: the demo's baseline and candidate run as
//! separate processes, gauntlet's load generator drives each (as a controller's split
//! would), a real Prometheus (Debian's, installed by scripts/test) scrapes both, and
//! `gauntlet run --only canary` judges from Prometheus alone. A candidate failing 5% of
//! reads is rejected, a clean one accepted, also when the traffic comes from Locust's
//! distributed mode (a master and two workers); a reading that cannot be trusted is
//! INCONCLUSIVE, never a pass and never a reject.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{Scratch, Served, heavy_turn, latest, text, token};

/// A child killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} never listened on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The demo service at `version`, with its defect knobs.
fn demo(s: &Scratch, version: &str, defects: &[&str]) -> (Running, u16) {
    let port = free_port();
    let dir = s.path().join(format!("data-{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = s.command();
    command.args([
        "demo-service",
        "app",
        "--port",
        &port.to_string(),
        "--data-dir",
        &dir.display().to_string(),
        "--service-version",
        version,
        "--rate-limit",
        "100000",
    ]);
    for defect in defects {
        command.args(["--defect", defect]);
    }
    let child = command.stdout(Stdio::null()).spawn().unwrap();
    wait_listening(port, "the demo service");
    (Running(child), port)
}

/// Prometheus scraping both arms every second.
fn prometheus(s: &Scratch, ports: [u16; 2]) -> (Running, u16) {
    let port = free_port();
    let dir = s.path().join("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: demo\n    static_configs: [{{targets: ['127.0.0.1:{}', '127.0.0.1:{}']}}]\n",
        ports[0], ports[1]
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("`prometheus` is installed (scripts/test installs it)");
    wait_listening(port, "Prometheus");
    (Running(child), port)
}

/// Waits until Prometheus holds the `/items` request counters of both arms: the canary's
/// first reading needs them (a missing series is inconclusive, by design).
fn until_scraped(prometheus: u16) {
    let query = "count(demo_http_requests_total{route=\"/items/{id}\"}) by (version)";
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = http_get(prometheus, &format!("/api/v1/query?query={encoded}"));
        if answer.matches("\"version\"").count() >= 2 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped both arms: {answer}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let mut answer = String::new();
    if stream.write_all(request.as_bytes()).is_ok() {
        let _ = stream.read_to_string(&mut answer);
    }
    answer
}

/// Load on one arm: bounded in rate and time.
fn load(s: &Scratch, port: u16, seconds: u32) -> Running {
    let url = format!("http://127.0.0.1:{port}/items/1");
    let child = s
        .command()
        .args(["load", &url, "--rate", "150/s", "--duration"])
        .arg(format!("{seconds}s"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Running(child)
}

/// A spec whose canary reads the two arms from Prometheus.
fn spec(s: &Scratch, candidate: u16, prometheus: u16, errors: &str, bake: &str) -> String {
    let text = format!(
        r#"schema_version: 1
service: {{name: shop, version: '1.4.0'}}
targets:
  candidate: {{url: 'http://127.0.0.1:{candidate}'}}
traffic: {{rate: 1/s, requests: [{{path: /items/1}}]}}
steps:
  security:
    auth:
      requests:
        - {{method: POST, path: /items, headers: {{x-api-key: demo-key}}, body: '{{"name": "probe"}}'}}
      credential_headers: [x-api-key]
  canary:
    source:
      prometheus:
        url: http://127.0.0.1:{prometheus}
        tenant: team-shop
        interval: 1s
        requests: 'sum(demo_http_requests_total{{version="$arm",route="/items/{{id}}"}})'
        errors: '{errors}'
        arms: {{baseline: '1.3.0', candidate: '1.4.0'}}
    stages:
      - {{weight: 50%, bake: {bake}, min_samples: 300}}
      - {{weight: 100%}}
    judges:
      error_rate: {{p0: 1%, delta: 3%}}
      two_sample: {{delta: 3%}}
"#
    );
    s.write("canary.yaml", &text);
    "canary.yaml".into()
}

const ERRORS: &str = r#"sum(demo_http_requests_total{version="$arm",route="/items/{id}",status=~"5.."}) or vector(0)"#;

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap())
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {report:#}"))
}

/// Both arms under load, scraped, and the canary run from Prometheus; the report.
fn judged(defects: &[&str]) -> (Option<i32>, Value, String) {
    judged_with(defects, |s, [baseline, candidate]| {
        vec![load(s, baseline, 90), load(s, candidate, 90)]
    })
}

/// Both arms under the load `traffic` starts (kept until the end), scraped, and the canary
/// run from Prometheus; the report.
fn judged_with(
    defects: &[&str],
    traffic: impl FnOnce(&Scratch, [u16; 2]) -> Vec<Running>,
) -> (Option<i32>, Value, String) {
    let s = Scratch::new();
    let (_baseline, baseline_port) = demo(&s, "1.3.0", &[]);
    let (_candidate, candidate_port) = demo(&s, "1.4.0", defects);
    let (_prometheus, prometheus_port) = prometheus(&s, [baseline_port, candidate_port]);
    let _traffic = traffic(&s, [baseline_port, candidate_port]);
    until_scraped(prometheus_port);
    let file = spec(&s, candidate_port, prometheus_port, ERRORS, "80s");
    let out = s.run(&["run", &file, "--only", "canary"]);
    let report = latest(&s);
    (out.status.code(), report, text(&out.stderr))
}

/// Locust's distributed mode (a master and two workers, from PyPI) sends the traffic: 30
/// users, half on each arm, 10 requests a second each, for `seconds` at most.
fn locust(s: &Scratch, ports: [u16; 2], seconds: u32) -> Vec<Running> {
    let pydeps = std::env::var("GAUNTLET_PYDEPS").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/pydeps").to_string()
    });
    let locustfile = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/locustfile.py");
    let master_port = free_port();
    let run = |role: &[&str]| {
        let child = Command::new("python3")
            .args(["-m", "locust", "-f", locustfile])
            .args(role)
            .current_dir(s.path())
            .env("PYTHONPATH", &pydeps)
            .env("BASELINE_URL", format!("http://127.0.0.1:{}", ports[0]))
            .env("CANDIDATE_URL", format!("http://127.0.0.1:{}", ports[1]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("locust (scripts/test installs it)");
        Running(child)
    };
    let master = run(&[
        "--master",
        "--headless",
        "--expect-workers",
        "2",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        &master_port.to_string(),
        "--users",
        "30",
        "--spawn-rate",
        "30",
        "--run-time",
        &format!("{seconds}s"),
    ]);
    let worker = || {
        run(&[
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            &master_port.to_string(),
        ])
    };
    vec![master, worker(), worker()]
}

/// As [`judged`], with Locust's master and two workers sending the traffic.
fn judged_under_locust(defects: &[&str]) -> (Option<i32>, Value, String) {
    judged_with(defects, |s, ports| locust(s, ports, 120))
}

#[test]
fn under_locusts_distributed_load_a_failing_candidate_is_rejected_and_a_clean_one_accepted() {
    let _turn = heavy_turn();
    let (code, report, stderr) = judged_under_locust(&["errors=5%"]);
    assert_eq!(code, Some(1), "{stderr}\n{report:#}");
    assert_eq!(report["decision"], "NO-GO");
    let judges =
        ["error-rate", "two-sample"].map(|j| check(&report, &format!("stage 1 (50%) {j}")));
    assert!(judges.iter().any(|c| c["outcome"] == "fail"), "{judges:#?}");
    let (code, report, stderr) = judged_under_locust(&[]);
    assert_eq!(code, Some(0), "{stderr}\n{report:#}");
    assert_eq!(report["decision"], "GO");
    for judge in ["error-rate", "two-sample"] {
        let c = check(&report, &format!("stage 1 (50%) {judge}"));
        assert_eq!(c["outcome"], "pass", "{c:#}");
        assert!(c["samples"].as_u64().unwrap() >= 300, "{c:#}");
    }
}

#[test]
fn a_candidate_failing_five_percent_is_rejected_from_prometheus_alone() {
    let _turn = heavy_turn();
    let (code, report, stderr) = judged(&["errors=5%"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(report["decision"], "NO-GO", "{report:#}");
    // Whichever judge crossed first rejected; the other stopped undecided.
    let judges =
        ["error-rate", "two-sample"].map(|j| check(&report, &format!("stage 1 (50%) {j}")));
    assert!(judges.iter().any(|c| c["outcome"] == "fail"), "{judges:#?}");
    assert!(judges.iter().all(|c| c["outcome"] != "pass"), "{judges:#?}");
    // Nothing outside gauntlet moved: the controller rolls back on this answer.
    let rollback = check(&report, "rollback");
    assert_eq!(rollback["outcome"], "skipped", "{rollback:#}");
    assert!(
        rollback["reason"].as_str().unwrap().contains("controller"),
        "{rollback:#}"
    );
}

#[test]
fn a_clean_candidate_is_accepted_from_prometheus_alone() {
    let _turn = heavy_turn();
    let (code, report, stderr) = judged(&[]);
    assert_eq!(code, Some(0), "{stderr}\n{report:#}");
    assert_eq!(report["decision"], "GO");
    for judge in ["error-rate", "two-sample"] {
        let c = check(&report, &format!("stage 1 (50%) {judge}"));
        assert_eq!(c["outcome"], "pass", "{c:#}");
        assert!(c["samples"].as_u64().unwrap() >= 300, "{c:#}");
    }
    // Counts carry no latency: no percentile is reported as if measured.
    let measured = &report["measurements"];
    assert!(
        measured.get("canary.candidate.latency_p99").is_none(),
        "{measured:#}"
    );
    assert!(measured["canary.candidate.requests"].as_f64().unwrap() >= 300.0);
}

/// Readings that cannot be trusted: a missing series, a Prometheus that is not there, and
/// no traffic at all. Each is INCONCLUSIVE with its reason.
#[test]
fn a_reading_that_cannot_be_trusted_is_inconclusive() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    let (_baseline, baseline_port) = demo(&s, "1.3.0", &[]);
    let (_candidate, candidate_port) = demo(&s, "1.4.0", &[]);
    let (_prometheus, prometheus_port) = prometheus(&s, [baseline_port, candidate_port]);
    // A few requests on each arm, then none: the series exist, the traffic has stopped.
    for port in [baseline_port, candidate_port] {
        let url = format!("http://127.0.0.1:{port}/items/1");
        let out = s.run(&["load", &url, "--rate", "20/s", "--duration", "1s"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    until_scraped(prometheus_port);
    let missing = r#"sum(demo_http_requests_total{version="$arm",status=~"5.."})"#;
    let closed = free_port();
    let cases = [
        (prometheus_port, missing, "no series"),
        (closed, ERRORS, "unavailable"),
        (prometheus_port, ERRORS, "no candidate request was counted"),
    ];
    for (port, errors, why) in cases {
        let file = spec(&s, candidate_port, port, errors, "4s");
        let out = s.run(&["run", &file, "--only", "canary"]);
        let report = latest(&s);
        assert_eq!(out.status.code(), Some(3), "{why}: {}", text(&out.stderr));
        assert_eq!(report["decision"], "INCONCLUSIVE", "{why}");
        let counts = check(&report, "stage 1 (50%) counts");
        assert_eq!(counts["outcome"], "inconclusive", "{counts:#}");
        assert!(
            counts["reason"].as_str().unwrap().contains(why),
            "{why}: {counts:#}"
        );
    }
}

#[test]
fn a_source_that_cannot_work_is_refused_at_validation() {
    let s = Scratch::new();
    let file = spec(&s, 1, 2, "sum(x_total)", "4s");
    let text_of = |path: &Path| std::fs::read_to_string(path).unwrap();
    let edited =
        text_of(&s.path().join(&file)).replace("two_sample: {delta: 3%}", "latency: {delta: 10%}");
    s.write("bad.yaml", &edited);
    let out = s.run(&["validate", "bad.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out.stderr);
    assert!(said.contains("does not contain `$arm`"), "{said}");
    assert!(
        said.contains("latency judge needs each request's latency"),
        "{said}"
    );
    assert!(said.contains("bad.yaml:"), "{said}");
}

/// Asks `hook` until it answers 200 (bounded), as Flagger does every analysis interval.
fn until_yes(served: &Served, hook: &str, token: &str, payload: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = served.call("POST", hook, token, Some(payload));
        if status == 200 {
            return body;
        }
        assert_eq!(status, 409, "{hook}: {body}");
        assert!(Instant::now() < deadline, "{hook} never said yes: {body}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Flagger against `gauntlet serve`, the canary judged from Prometheus: confirm-rollout
/// runs the pre-traffic steps; confirm-traffic-increase says yes to the first traffic, no
/// while stage 1 judges (its judges live in /metrics meanwhile), yes once it accepts; then
/// confirm-promotion says yes.
#[test]
fn flagger_moves_traffic_only_when_a_stage_accepts() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    let (_baseline, baseline_port) = demo(&s, "1.3.0", &[]);
    let (_candidate, candidate_port) = demo(&s, "1.4.0", &[]);
    let (_prometheus, prometheus_port) = prometheus(&s, [baseline_port, candidate_port]);
    let _loads = [load(&s, baseline_port, 90), load(&s, candidate_port, 90)];
    until_scraped(prometheus_port);
    let file = spec(&s, candidate_port, prometheus_port, ERRORS, "80s");
    s.write(
        "server.yaml",
        &format!("listen: 127.0.0.1:0\nservices:\n  shop: {{spec: {file}}}\n"),
    );
    let token = token(&s, "operator");
    let served = Served::start(&s);
    let payload = r#"{"name":"shop","namespace":"prod","phase":"Progressing","checksum":"c0ffee","metadata":{}}"#;
    let hook = |name: &str| format!("/v1/judge/flagger/{name}");

    until_yes(&served, &hook("confirm-rollout"), &token, payload);
    let increase = hook("confirm-traffic-increase");
    let (status, first) = served.call("POST", &increase, &token, Some(payload));
    assert_eq!(status, 200, "the first traffic starts stage 1: {first}");
    let (status, held) = served.call("POST", &increase, &token, Some(payload));
    assert_eq!(status, 409, "stage 1 has not accepted yet: {held}");
    assert_eq!(held["decision"], "CONTINUE", "{held}");
    let run = first["run"].as_str().unwrap().to_string();

    // The live judges, by run and stage, while stage 1 judges.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = http_get_served(&served, "/metrics");
        let live = format!("gauntlet_canary_judge_samples{{service=\"shop\",run=\"{run}\"");
        if metrics.contains(&live) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no live judge series for {run}:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let granted = until_yes(&served, &increase, &token, payload);
    assert_ne!(granted["decision"], "NO-GO", "{granted}");
    let promoted = until_yes(&served, &hook("confirm-promotion"), &token, payload);
    assert_eq!(promoted["decision"], "GO", "{promoted}");
    // The canary's judge series went with its run.
    let metrics = http_get_served(&served, "/metrics");
    assert!(!metrics.contains(&format!("run=\"{run}\"")), "{metrics}");
}

fn http_get_served(served: &Served, path: &str) -> String {
    let port: u16 = served.base.rsplit(':').next().unwrap().parse().unwrap();
    http_get(port, path)
}
