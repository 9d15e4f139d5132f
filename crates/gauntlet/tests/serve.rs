//! `gauntlet serve` as a user runs it: the real binary, its config errors, its tokens, and a
//! server SIGKILLed mid-run whose successor cleans up after it.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{Scratch, Served, text, token};

const SPEC: &str = "schema_version: 1
service: {name: web, version: '1'}
targets:
  candidate:
    command: [python3, -m, http.server, '{port}', --bind, 127.0.0.1]
    health: /
    ready_timeout: 20s
traffic: {rate: 5/s, requests: [{path: /}]}
steps:
  chaos:
    interval: 200ms
    steady_state:
      before: 200ms
      after: 2s
      probes: [{name: up, http: {path: /, status: [200], within: 1s}}]
    drills:
      - {name: slow, faults: [{kind: latency, target: candidate, latency: 5ms}], duration: 10m}
";

fn project(s: &Scratch) {
    s.write("web.yaml", SPEC);
    s.write(
        "server.yaml",
        "listen: 127.0.0.1:0\nservices:\n  web: {spec: web.yaml}\n",
    );
}

/// The pid of the first process the run journaled (its candidate).
fn candidate_pid(run_dir: &Path) -> u32 {
    let journal = std::fs::read_to_string(run_dir.join("cleanup.jsonl")).unwrap();
    journal
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v["undo"]["process"]["pid"].as_u64())
        .expect("a journaled process") as u32
}

fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn a_server_killed_mid_run_is_cleaned_up_by_the_next_one() {
    let s = Scratch::new();
    project(&s);
    let operator = token(&s, "operator");
    let mut first = Served::start(&s);
    let (status, started) = first.call("POST", "/v1/services/web/runs", &operator, None);
    assert_eq!(status, 202, "{started}");
    let run = started["run"].as_str().unwrap().to_string();
    // The run's structured log lines carry its id.
    let line: Value = serde_json::from_str(&first.wait_for("run started")).unwrap();
    assert_eq!(line["run"], run.as_str(), "{line}");
    // So do its steps' lines, with the step and the service.
    let line: Value = serde_json::from_str(&first.wait_for("step started")).unwrap();
    let fields = if line["fields"].is_object() {
        &line["fields"]
    } else {
        &line
    };
    let said = line.to_string();
    assert!(said.contains(&run) && said.contains("\"web\""), "{line}");
    assert!(fields.to_string().contains("\"step\""), "{line}");
    let run_dir = s.runs_dir().join(&run);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(run_dir.join("cleanup.jsonl")).is_ok_and(|j| j.contains("proxy"))
    {
        assert!(Instant::now() < deadline, "the drill's fault never went in");
        std::thread::sleep(Duration::from_millis(50));
    }
    let candidate = candidate_pid(&run_dir);
    // SIGKILL: nothing of the server runs any more; the candidate, in its own process
    // group, is left behind.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert!(running(candidate), "the candidate outlived the server");

    let mut second = Served::start(&s);
    let said = second.wait_for("cleanup journal was undone");
    assert!(said.contains(&run), "{said}");
    assert!(!running(candidate), "the next server stopped the candidate");
    let (status, shown) = second.call("GET", &format!("/v1/runs/{run}"), &operator, None);
    assert_eq!(status, 200);
    assert_eq!(shown["status"], "aborted", "{shown}");
    // SIGTERM ends it cleanly.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(second.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(second.child.wait().unwrap().code(), Some(0));
}

#[test]
fn a_server_config_with_problems_is_refused_with_each_located() {
    let s = Scratch::new();
    s.write("web.yaml", "schema_version: 1\nservice: {name: web}\n");
    s.write(
        "server.yaml",
        "listen: 0.0.0.0:8787\nservices:\n  web: {spec: web.yaml}\n  bad/name: {spec: web.yaml}\n",
    );
    let out = s.run(&["serve", "--config", "server.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out.stderr);
    assert!(said.contains("server.yaml:1:9"), "{said}");
    assert!(said.contains("not a loopback address"), "{said}");
    assert!(said.contains("server.yaml:3:"), "{said}");
    assert!(said.contains("the spec of `web` does not load"), "{said}");
    assert!(said.contains("`bad/name` is not a service name"), "{said}");
    let typo = s.write("typo.yaml", "listne: 127.0.0.1:1\n");
    let out = s.run(&["serve", "--config", typo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("listne"),
        "{}",
        text(&out.stderr)
    );
}

/// A service's spec is verified against its project's signed lock when the server loads it.
#[test]
fn a_service_whose_spec_is_not_as_signed_is_refused_at_start() {
    let s = Scratch::new();
    project(&s);
    let config = "listen: 127.0.0.1:0\nkeyring: keys\nrequire_lock: true\nservices:\n  web: {spec: web.yaml}\n";
    s.write("server.yaml", config);
    // No lock, and one is required.
    let out = s.run(&["serve", "--config", "server.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("has no signed lock"),
        "{}",
        text(&out.stderr)
    );
    // Signed with the server's keyring: it loads, and says what it was verified against.
    for args in [
        &["keys", "generate", "--keyring", "keys"][..],
        &["lock", "--spec", "web.yaml", "--keyring", "keys"][..],
    ] {
        let out = s.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let mut served = Served::start(&s);
    let line = served.wait_for("verified against its signed lock");
    assert!(line.contains("web"), "{line}");
    drop(served);
    // Changed after signing: refused, located at the service's spec.
    let edited = std::fs::read_to_string(s.path().join("web.yaml"))
        .unwrap()
        .replace("rate: 5/s", "rate: 6/s");
    s.write("web.yaml", &edited);
    let out = s.run(&["serve", "--config", "server.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out.stderr);
    assert!(said.contains("server.yaml:5:"), "{said}");
    assert!(said.contains("is not as signed"), "{said}");
    assert!(said.contains("web.yaml"), "{said}");
}

#[test]
fn tokens_are_shown_once_listed_without_secrets_and_audits_verify() {
    let s = Scratch::new();
    project(&s);
    let viewer = token(&s, "viewer");
    let listed = s.run(&["token", "list", "--config", "server.yaml", "--json"]);
    assert_eq!(listed.status.code(), Some(0));
    let secret = &viewer[viewer.rfind('_').unwrap() + 1..];
    assert!(!text(&listed.stdout).contains(secret));
    let bad_role = s.run(&[
        "token",
        "create",
        "--config",
        "server.yaml",
        "--role",
        "root",
    ]);
    assert_eq!(bad_role.status.code(), Some(2));
    {
        let served = Served::start(&s);
        assert_eq!(served.call("GET", "/v1/services", &viewer, None).0, 200);
        assert_eq!(
            served.call("GET", "/v1/services", "gauntlet_nope", None).0,
            401
        );
    }
    let verified = s.run(&["audit", "verify", "audit.jsonl"]);
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        text(&verified.stderr)
    );
    let audit = std::fs::read_to_string(s.path().join("audit.jsonl")).unwrap();
    s.write(
        "audit.jsonl",
        &audit.replacen("\"allowed\"", "\"denied\"", 1),
    );
    let broken = s.run(&["audit", "verify", "audit.jsonl"]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        text(&broken.stderr).contains("line 2"),
        "{}",
        text(&broken.stderr)
    );
}

/// One HTTP/1.0 exchange on loopback: the whole answer, headers and body.
fn exchange(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("the dashboard listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// `gauntlet demo --serve`: the demo runs, then its dashboard stays open on loopback with a
/// token printed once; the token signs in and the run's page shows; Ctrl-C ends it with the
/// demo's exit code.
#[test]
fn the_demo_keeps_its_dashboard_open_until_ctrl_c() {
    use std::io::BufRead;
    let s = Scratch::new();
    let mut child = s
        .command()
        .args(["demo", "--serve", "--only", "preflight"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr)
        .lines()
        .map_while(Result::ok);
    let dashboard = lines
        .find(|l| l.contains("dashboard on http://"))
        .expect("the dashboard's address is printed");
    let token_line = lines.next().expect("the token is printed");
    let token = token_line.rsplit(' ').next().unwrap().to_string();
    let url = &dashboard[dashboard.find("http://").unwrap() + 7..];
    let (addr, path) = url.split_once('/').unwrap();
    let path = format!("/{}", path.split_whitespace().next().unwrap());
    let form = format!("token={token}");
    let signed_in = exchange(
        addr,
        &format!(
            "POST /ui/login HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    );
    let cookie = signed_in
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = exchange(
        addr,
        &format!("GET {path} HTTP/1.0\r\nCookie: {cookie}\r\n\r\n"),
    );
    assert!(page.starts_with("HTTP/1.0 200"), "{page}");
    assert!(page.contains("demo-shop"), "{page}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(matches!(status.code(), Some(0..=3)), "{status:?}");
}

/// Two servers share one PostgreSQL store (Debian's, started for the test on a free loopback
/// port): each starts a run and both see both; one is SIGKILLed mid-run and the other, once
/// the dead one's lease has run out, marks its run ABORTED and stops the process it left; an
/// Argo key asked of either live server names one run and gets one answer; the database
/// restarting mid-run loses nothing and doubles nothing.
#[test]
fn servers_sharing_a_postgres_store_take_over_from_one_that_dies() {
    let postgres = gauntlet_store::testing::Postgres::start();
    let gauntlet_store::Location::Postgres(url) = postgres.database("gauntlet") else {
        unreachable!("a database is a postgres location");
    };
    let s = Scratch::new();
    s.write("web.yaml", SPEC);
    for name in ["server", "a", "b", "c"] {
        s.write(
            &format!("{name}.yaml"),
            &format!(
                "listen: 127.0.0.1:0\nstore: '{url}'\nlease: 3s\nruns: runs-{name}\nshared_files: shared\ntokens: tokens.json\naudit: audit-{name}.jsonl\nservices:\n  web: {{spec: web.yaml}}\n"
            ),
        );
    }
    let operator = token(&s, "operator");
    let mut a = Served::start_with(&s, "a.yaml");
    let mut b = Served::start_with(&s, "b.yaml");
    let start = |server: &Served| {
        let (status, started) = server.call("POST", "/v1/services/web/runs", &operator, None);
        assert_eq!(status, 202, "{started}");
        started["run"].as_str().unwrap().to_string()
    };
    let (run_a, run_b) = (start(&a), start(&b));
    a.wait_for("run started");
    b.wait_for("run started");
    // One store: each server lists both runs (once each has recorded its own).
    for server in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, listed) = server.call("GET", "/v1/runs", &operator, None);
            let listed = listed.to_string();
            if listed.contains(&run_a) && listed.contains(&run_b) {
                break;
            }
            assert!(Instant::now() < deadline, "{listed}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // A dies mid-drill; B notices (on this machine, A's process is gone; elsewhere, its lease
    // would run out) and cleans up after it.
    let run_dir = s.path().join("runs-a").join(&run_a);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(run_dir.join("cleanup.jsonl")).is_ok_and(|j| j.contains("proxy"))
    {
        assert!(Instant::now() < deadline, "the drill's fault never went in");
        std::thread::sleep(Duration::from_millis(50));
    }
    let candidate = candidate_pid(&run_dir);
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let said = b.wait_for("a run of a server that is gone");
    assert!(said.contains(&run_a), "{said}");
    assert!(
        !said.contains(&run_b),
        "B's own run is not taken for dead: {said}"
    );
    assert!(!running(candidate), "B stopped the candidate A left behind");
    let (_, shown) = b.call("GET", &format!("/v1/runs/{run_a}"), &operator, None);
    assert_eq!(shown["status"], "aborted", "{shown}");
    // An Argo key asked of two live servers names one run, and both answer alike.
    let c = Served::start_with(&s, "c.yaml");
    let ask = r#"{"service": "web", "key": "rollout-7"}"#;
    let (status, first) = b.call("POST", "/v1/judge/argo", &operator, Some(ask));
    assert_eq!(status, 200, "{first}");
    let (status, second) = c.call("POST", "/v1/judge/argo", &operator, Some(ask));
    assert_eq!(status, 200, "{second}");
    assert_eq!(first["run"], second["run"], "one key, one run");
    assert_eq!(first["decision"], second["decision"]);
    let flagger = r#"{"name":"web","namespace":"prod","phase":"Progressing","checksum":"c0ffee","metadata":{}}"#;
    let hook = "/v1/judge/flagger/confirm-rollout";
    let (status_b, from_b) = b.call("POST", hook, &operator, Some(flagger));
    let (status_c, from_c) = c.call("POST", hook, &operator, Some(flagger));
    assert_eq!(
        (status_b, &from_b["run"]),
        (status_c, &from_c["run"]),
        "{from_b} {from_c}"
    );
    // The database restarts under B's running run; cancelled afterwards, it is stored once.
    postgres.restart();
    let (status, cancelled) = b.call("POST", &format!("/v1/runs/{run_b}/cancel"), &operator, None);
    assert_eq!(status, 202, "{cancelled}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, shown) = c.call("GET", &format!("/v1/runs/{run_b}"), &operator, None);
        if shown["status"] == "aborted" && shown["report"].is_object() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B's run never came to rest: {shown}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // B's run directory is on B's disk only; C serves its files from the shared path, by
    // digest, and refuses a copy that was changed there.
    let b_dir = s.path().join("runs-b").join(&run_b);
    let kept = s.path().join("shared/runs").join(format!("{run_b}.json"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kept.exists() {
        assert!(Instant::now() < deadline, "B never kept its run's files");
        std::thread::sleep(Duration::from_millis(50));
    }
    let written = std::fs::read(b_dir.join("report.md")).unwrap();
    std::fs::remove_dir_all(&b_dir).unwrap();
    let file = format!("/v1/runs/{run_b}/files/report.md");
    let served = c.get_bytes(&file, &operator);
    assert_eq!(served, (200, written.clone()));
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&written));
    let blob = s
        .path()
        .join("shared/sha256")
        .join(&digest[..2])
        .join(&digest);
    std::fs::write(&blob, b"# GO (edited)\n").unwrap();
    let (status, said) = c.get_bytes(&file, &operator);
    assert_eq!(status, 500);
    assert!(String::from_utf8_lossy(&said).contains("does not match its digest"));
    let (_, listed) = c.call("GET", "/v1/runs", &operator, None);
    let runs = listed["runs"].as_array().unwrap();
    for run in [&run_a, &run_b] {
        let stored = runs.iter().filter(|r| r["run"] == run.as_str()).count();
        assert_eq!(stored, 1, "{run} once: {listed}");
    }
    // SIGTERM: each server cancels its live runs (the keyed ones), undoes them and exits 0.
    for mut server in [c, b] {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(server.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        assert_eq!(server.child.wait().unwrap().code(), Some(0));
    }
}
