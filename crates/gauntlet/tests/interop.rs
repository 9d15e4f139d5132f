//! The tools chaos engineers already use, driving or reading gauntlet: Toxiproxy's own
//! clients (Chaos Toolkit's Toxiproxy driver from PyPI, toxiproxy-node-client from npm)
//! against `gauntlet proxy --toxiproxy`, each toxic observed through gauntlet's proxy.
//! `scripts/test` installs the clients.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A real HTTP/1.1 server on loopback: every request gets 1,000 bytes ending in `END`, and
/// the connection closes. Its port.
fn upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || answer(stream));
        }
    });
    port
}

fn answer(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let body = format!("{}END", "0123456789".repeat(99) + "0123456");
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

/// A running `gauntlet proxy --toxiproxy`: its Toxiproxy API port, control API and token.
struct Toxiproxy {
    child: Child,
    api: u16,
    control: String,
    token: String,
}

impl Drop for Toxiproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Toxiproxy {
    fn start(s: &Scratch) -> Self {
        let mut child = s
            .command()
            .args(["proxy", "--toxiproxy", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gauntlet proxy starts");
        let (tx, lines) = mpsc::channel();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let (mut api, mut control, mut token) = (None, None, None);
        while api.is_none() || control.is_none() || token.is_none() {
            let line = lines
                .recv_timeout(Duration::from_secs(30))
                .expect("gauntlet proxy says where it listens");
            let after = |prefix: &str| line.split_once(prefix).map(|(_, v)| v.trim().to_string());
            if let Some(url) = after("Toxiproxy API (no token, loopback only): http://") {
                api = url.rsplit(':').next().and_then(|p| p.parse().ok());
            }
            if let Some(url) = after("control API: http://") {
                control = Some(url.trim_end_matches("/proxies").to_string());
            }
            token = token.or(after("control token: "));
        }
        Toxiproxy {
            child,
            api: api.unwrap(),
            control: control.unwrap(),
            token: token.unwrap(),
        }
    }
}

/// One raw HTTP request to `addr` with the given headers: the status line's code and body.
fn raw(addr: &str, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\n");
    for header in headers {
        request.push_str(&format!("{header}\r\n"));
    }
    request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (status, body.unwrap_or_default())
}

fn deps(var: &str, default: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| format!("{}/../../target/{default}", env!("CARGO_MANIFEST_DIR")))
}

fn support(script: &str) -> String {
    format!("{}/tests/support/{script}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs a client script and reads the JSON observations it prints.
fn observations(mut cmd: Command) -> Value {
    let out = cmd.output().expect("the client runs");
    assert!(
        out.status.success(),
        "the client failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

const FULL: u64 = 1060; // the upstream's head and body, in bytes

fn assert_clean(seen: &Value, what: &str) {
    assert_eq!(seen["bytes"], FULL, "{what}: {seen}");
    assert_eq!(seen["complete"], true, "{what}: {seen}");
}

#[test]
fn chaos_toolkits_toxiproxy_driver_drives_gauntlets_proxy() {
    let s = Scratch::new();
    let up = upstream();
    let proxy = Toxiproxy::start(&s);
    let mut python = Command::new("python3");
    python
        .arg(support("toxiproxy_chaostoolkit.py"))
        .arg(proxy.api.to_string())
        .arg(up.to_string())
        .env("PYTHONPATH", deps("GAUNTLET_PYDEPS", "pydeps"));
    let seen = observations(python);
    assert_eq!(seen["created"], true);
    assert_eq!(seen["exists"], true);
    // Asked for 0.0.0.0 (the driver's default), opened on loopback.
    assert!(
        seen["listen"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{seen}"
    );
    assert_clean(&seen["clean"], "no toxic");
    // Each toxic's effect, seen by a client through the proxy.
    assert!(
        seen["latency"]["seconds"].as_f64().unwrap() >= 0.3,
        "{seen}"
    );
    assert_clean(&seen["latency"], "latency");
    assert_eq!(seen["limit_data"]["bytes"], 100, "{seen}");
    assert_eq!(seen["limit_data"]["ended"], "closed", "{seen}");
    assert_clean(&seen["slicer"], "slicer");
    assert!(seen["slicer"]["reads"].as_u64().unwrap() >= 8, "{seen}");
    assert!(
        seen["bandwidth"]["seconds"].as_f64().unwrap() >= 0.45,
        "{seen}"
    );
    assert_clean(&seen["bandwidth"], "bandwidth");
    assert_eq!(seen["timeout"]["bytes"], 0, "{seen}");
    assert!(
        seen["timeout"]["seconds"].as_f64().unwrap() >= 0.3,
        "{seen}"
    );
    assert_eq!(seen["reset_peer_created"], true);
    assert_eq!(seen["reset_peer"]["ended"], "reset", "{seen}");
    assert_eq!(seen["reset_peer"]["bytes"], 0, "{seen}");
    // A misspelt attribute is refused, not a toxic that does nothing.
    assert_eq!(seen["unknown_toxic_created"], false, "{seen}");
    assert_eq!(seen["after_reset"][0], true);
    assert_clean(&seen["after_reset"][1], "after reset");
    assert_eq!(seen["disabled"]["ended"], "refused", "{seen}");
    assert_eq!(seen["enabled_after_disable"], false);
    assert_clean(&seen["enabled"], "enabled again");
    assert_eq!(seen["deleted_exists"], false);
    assert_eq!(seen["deleted"]["ended"], "refused", "{seen}");
}

#[test]
fn the_node_client_drives_gauntlets_proxy_and_gauntlets_own_api_sees_its_toxics() {
    let s = Scratch::new();
    let up = upstream();
    let proxy = Toxiproxy::start(&s);
    let npm = deps("GAUNTLET_NPMDEPS", "npmdeps");
    let mut node = Command::new("node");
    node.arg(support("toxiproxy_node.js"))
        .arg(proxy.api.to_string())
        .arg(up.to_string())
        .env("NODE_PATH", Path::new(&npm).join("node_modules"));
    let seen = observations(node);
    assert!(
        seen["version"].as_str().unwrap().contains("gauntlet"),
        "{seen}"
    );
    assert!(
        seen["listen"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{seen}"
    );
    assert_clean(&seen["clean"], "no toxic");
    assert_eq!(seen["latency_name"], "latency_downstream");
    assert_eq!(seen["latency_updated"]["latency"], 400, "{seen}");
    assert!(
        seen["latency"]["seconds"].as_f64().unwrap() >= 0.4,
        "{seen}"
    );
    assert_eq!(seen["limit_data"]["bytes"], 50, "{seen}");
    assert_clean(&seen["after_remove"], "toxic removed");
    assert_eq!(seen["names"], serde_json::json!(["orders"]));
    assert_eq!(seen["populated"], serde_json::json!(["orders", "payments"]));
    assert_clean(&seen["payments"], "populated proxy");
    assert_eq!(seen["disabled"]["ended"], "refused", "{seen}");
    assert_clean(&seen["after_reset"], "reset enables");
    assert!(
        seen["negative_latency"].as_str().unwrap().contains("400"),
        "{seen}"
    );
    assert_eq!(seen["deleted"]["ended"], "refused", "{seen}");
}

#[test]
fn the_toxiproxy_api_takes_no_token_but_stays_on_loopback_and_out_of_browsers() {
    let s = Scratch::new();
    let up = upstream();
    let proxy = Toxiproxy::start(&s);
    let api = format!("127.0.0.1:{}", proxy.api);
    let host = format!("host: {api}");
    let create =
        format!(r#"{{"name": "db", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:{up}"}}"#);
    // A page in a browser (cross-site Origin) or a rebinding name (foreign Host): refused,
    // and nothing is made.
    let (status, body) = raw(
        &api,
        "POST",
        "/proxies",
        &[&host, "origin: http://evil.example"],
        &create,
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = raw(
        &api,
        "POST",
        "/proxies",
        &["host: evil.example:8474"],
        &create,
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = raw(&api, "GET", "/proxies", &[&host], "");
    assert_eq!((status, body.trim()), (200, "{}"));
    // A proxy on another interface would open the upstream to the network.
    let wide =
        format!(r#"{{"name": "db", "listen": "192.0.2.1:0", "upstream": "127.0.0.1:{up}"}}"#);
    let (status, body) = raw(&api, "POST", "/proxies", &[&host], &wide);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("loopback only"), "{body}");
    // Bad bodies: Toxiproxy's error shape, a message that says what is wrong.
    let (status, body) = raw(&api, "POST", "/proxies", &[&host], r#"{"name": "db"}"#);
    assert_eq!(status, 400);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["status"], 400);
    assert!(
        error["error"].as_str().unwrap().contains("upstream"),
        "{body}"
    );
    let (status, _) = raw(&api, "POST", "/proxies", &[&host], &create);
    assert_eq!(status, 201);
    let (status, body) = raw(&api, "POST", "/proxies", &[&host], &create);
    assert_eq!(status, 409, "{body}");
    let toxic = r#"{"type": "latency", "attributes": {"latency": 250}}"#;
    let (status, body) = raw(&api, "POST", "/proxies/db/toxics", &[&host], toxic);
    assert_eq!(status, 200, "{body}");
    let (status, body) = raw(
        &api,
        "POST",
        "/proxies/db/toxics",
        &[&host],
        r#"{"type": "latency", "stream": "sideways"}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("upstream or downstream"), "{body}");
    // Gauntlet's own control API sees the proxy and its fault, and still wants its token.
    let (status, _) = raw(
        &proxy.control,
        "GET",
        "/proxies/db",
        &[&format!("host: {}", proxy.control)],
        "",
    );
    assert_eq!(status, 401);
    let auth = format!("authorization: Bearer {}", proxy.token);
    let (status, body) = raw(
        &proxy.control,
        "GET",
        "/proxies/db",
        &[&format!("host: {}", proxy.control), &auth],
        "",
    );
    assert_eq!(status, 200, "{body}");
    let described: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(described["faults"][0]["kind"], "latency", "{body}");
    assert_eq!(described["faults"][0]["latency_ms"], 250, "{body}");
    // Removed there, it is gone here too: a listing never shows a toxic that does not act.
    let (status, _) = raw(
        &proxy.control,
        "DELETE",
        "/proxies/db/faults",
        &[&format!("host: {}", proxy.control), &auth],
        "",
    );
    assert_eq!(status, 200);
    let (_, body) = raw(&api, "GET", "/proxies/db/toxics", &[&host], "");
    assert_eq!(body.trim(), "[]");
}

/// A Chaos Toolkit experiment that `chaos validate` accepts: the shop's quotes through a
/// slow primary, a flag set and cleared by commands, a probe only Chaos Toolkit can run.
const EXPERIMENT: &str = r#"{
  "version": "1.0.0",
  "title": "Quotes survive a slow primary",
  "description": "Latency on the primary quote provider; the shop keeps answering.",
  "tags": ["shop"],
  "configuration": {
    "shop_url": {"type": "env", "key": "GAUNTLET_TEST_SHOP_URL", "default": "http://127.0.0.1:8080"}
  },
  "runtime": {"hypothesis": {"strategy": "continuously"}},
  "steady-state-hypothesis": {
    "title": "The shop answers",
    "probes": [
      {"type": "probe", "name": "health", "tolerance": 200,
       "provider": {"type": "http", "url": "${shop_url}/healthz", "timeout": 2}},
      {"type": "probe", "name": "quote", "tolerance": [200],
       "provider": {"type": "http", "url": "${shop_url}/quote", "timeout": 2,
                    "headers": {"x-client-id": "gauntlet-drill"}}},
      {"type": "probe", "name": "proxy-exists", "tolerance": true,
       "provider": {"type": "python", "module": "chaostoxi.proxy.probes", "func": "proxy_exist",
                    "arguments": {"proxy_name": "quotes-primary"}}}
    ]
  },
  "method": [
    {"type": "action", "name": "proxy-the-primary",
     "provider": {"type": "python", "module": "chaostoxi.proxy.actions", "func": "create_proxy",
                  "arguments": {"proxy_name": "quotes-primary", "upstream_host": "127.0.0.1", "upstream_port": 9001}}},
    {"type": "action", "name": "slow-primary",
     "provider": {"type": "python", "module": "chaostoxi.toxic.actions", "func": "create_latency_toxic",
                  "arguments": {"for_proxy": "quotes-primary", "toxic_name": "slow", "latency": 100, "jitter": 10}},
     "pauses": {"after": 2}},
    {"type": "action", "name": "flag-maintenance",
     "provider": {"type": "process", "path": "touch", "arguments": ["imported.flag"]}}
  ],
  "rollbacks": [
    {"type": "action", "name": "remove-toxic",
     "provider": {"type": "python", "module": "chaostoxi.toxic.actions", "func": "delete_toxic",
                  "arguments": {"for_proxy": "quotes-primary", "toxic_name": "slow"}}},
    {"type": "action", "name": "clear-maintenance",
     "provider": {"type": "process", "path": "rm", "arguments": ["imported.flag"]}}
  ]
}"#;

fn chaos_cli(s: &Scratch, args: &[&str]) -> std::process::Output {
    let pydeps = deps("GAUNTLET_PYDEPS", "pydeps");
    Command::new("python3")
        .arg(Path::new(&pydeps).join("bin/chaos"))
        .args(["--no-log-file"])
        .args(args)
        .current_dir(s.path())
        .env("PYTHONPATH", &pydeps)
        .output()
        .expect("chaos runs")
}

#[test]
fn a_chaos_toolkit_experiment_is_imported_run_and_journaled_for_chaos_toolkits_report() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    s.write("experiment.json", EXPERIMENT);
    let validated = chaos_cli(&s, &["validate", "experiment.json"]);
    assert!(
        validated.status.success(),
        "chaos validate refuses the experiment:\n{}{}",
        text(&validated.stdout),
        text(&validated.stderr)
    );
    let out = s.run(&["chaos", "--import", "experiment.json"]);
    let (yaml, said) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{said}");
    for mapped in [
        "steady-state probe `health`: an HTTP probe of the candidate, status 200",
        "action `slow-primary`: a `latency` fault on `quotes-primary`",
        "action `flag-maintenance`: an `action` fault, undone by rollback `clear-maintenance`",
        "`continuously`: `expect: hold`",
        "the experiment sent them to http://127.0.0.1:8080",
    ] {
        assert!(said.contains(mapped), "{mapped}:\n{said}");
    }
    assert!(said.contains("✗ steady-state probe `proxy-exists`: a Python provider (chaostoxi.proxy.probes.proxy_exist)"), "{said}");
    // The drill joins the demo's drills and runs against the real shop.
    let demo = include_str!("../../../examples/demo.yaml");
    let drill: String = yaml
        .lines()
        .skip_while(|l| !l.starts_with("- name:"))
        .map(|l| format!("      {l}\n"))
        .collect();
    let spec = demo.replacen("    drills:\n", &format!("    drills:\n{drill}"), 1);
    s.write("demo.yaml", &spec);
    let out = s.run(&[
        "chaos",
        "demo.yaml",
        "--drill",
        "quotes-survive-a-slow-primary",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run_dir = s.run_dirs().pop().unwrap();
    let report = report(&run_dir);
    assert_eq!(
        check(&report, "chaos.quotes-survive-a-slow-primary: hold")["outcome"],
        "pass"
    );
    assert_eq!(
        check(
            &report,
            "chaos.quotes-survive-a-slow-primary: faults in force"
        )["outcome"],
        "pass"
    );
    assert!(!s.path().join("imported.flag").exists() && !run_dir.join("imported.flag").exists());
    // Its journal is one Chaos Toolkit's own report generator reads.
    let journal = report["drills"][0]["chaostoolkit"]
        .as_str()
        .expect("a journal");
    let journal = run_dir.join(journal);
    let read: Value = serde_json::from_slice(&std::fs::read(&journal).unwrap()).unwrap();
    assert_eq!(read["status"], "completed");
    assert_eq!(read["deviated"], false);
    let script = "import json, sys\n\
        from chaosreport import generate_report\n\
        journal = json.load(open(sys.argv[1]))\n\
        print(generate_report(journal, 'markdown'))\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&journal)
        .env("PYTHONPATH", deps("GAUNTLET_PYDEPS", "pydeps"))
        .output()
        .unwrap();
    let markdown = text(&out.stdout);
    assert!(out.status.success(), "chaosreport: {}", text(&out.stderr));
    for seen in [
        "## gauntlet drill quotes-survive-a-slow-primary",
        "| **Status**                    | completed |",
        "latency on quotes-primary",
        "action on candidate",
        "| health     |",
    ] {
        assert!(markdown.contains(seen), "{seen}:\n{markdown}");
    }
}

/// Runs `args` of the Python support script `k8s_validate.py` and reads what it found.
fn k8s_validate(files: &[&Path]) -> Vec<Value> {
    let mut cmd = Command::new("python3");
    cmd.arg(support("k8s_validate.py"))
        .arg(support("schemas/argo-workflows.schema.json"))
        .args(files)
        .env("PYTHONPATH", deps("GAUNTLET_PYDEPS", "pydeps"));
    observations(cmd).as_array().cloned().unwrap_or_default()
}

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/k8s")
        .join(name)
}

/// The Kubernetes Job and the Argo Workflows template in examples/k8s are valid against each
/// project's own schema, strictly; they run real steps; and they map gauntlet's exit codes as
/// their comments say: 1, 2 and 3 fail without a retry, only 4 is retried.
#[test]
fn the_kubernetes_job_and_the_argo_template_run_steps_and_map_gauntlets_exit_codes() {
    use gauntlet_report::exit;
    let (job, argo) = (example("job.yaml"), example("argo-workflow-template.yaml"));
    let found = k8s_validate(&[&job, &argo]);
    let kinds: Vec<&str> = found.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["PersistentVolumeClaim", "Job", "WorkflowTemplate"]);
    for doc in &found {
        assert_eq!(doc["errors"], serde_json::json!([]), "{doc}");
    }
    // The validators bite: a misspelt field is refused by each.
    let s = Scratch::new();
    let job_text = std::fs::read_to_string(&job).unwrap();
    let argo_text = std::fs::read_to_string(&argo).unwrap();
    let bad_job = s.write(
        "job.yaml",
        &job_text.replace("backoffLimitPerIndex", "backoffLimitPerIndx"),
    );
    let bad_argo = s.write("argo.yaml", &argo_text.replace("withParam:", "withParams:"));
    let found = k8s_validate(&[&bad_job, &bad_argo]);
    assert!(
        found[1]["errors"]
            .to_string()
            .contains("backoffLimitPerIndx"),
        "{}",
        found[1]
    );
    assert!(
        found[2]["errors"].to_string().contains("withParams"),
        "{}",
        found[2]
    );
    // Exit codes as gauntlet defines them.
    let fail = format!(
        "values: [{}, {}, {}]",
        exit::NO_GO,
        exit::INVALID_INPUT,
        exit::INCONCLUSIVE
    );
    assert!(job_text.contains(&format!("action: FailIndex\n        onExitCodes:\n          containerName: gauntlet\n          operator: In\n          {fail}")), "{job_text}");
    assert!(job_text.contains(&format!("action: Count\n        onExitCodes:\n          containerName: gauntlet\n          operator: In\n          values: [{}]", exit::INTERNAL)));
    assert!(argo_text.contains(&format!(
        "expression: \"asInt(lastRetry.exitCode) == {}\"",
        exit::INTERNAL
    )));
    // Every step they run is one gauntlet has.
    let steps: Vec<&str> = gauntlet_spec::StepName::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    let listed = job_text
        .split("set -- ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    for step in listed.split_whitespace() {
        assert!(steps.contains(&step), "{step}");
        assert!(
            argo_text.contains(&format!("\"{step}\"")),
            "{step} is not in the Argo template"
        );
    }
    // The Job's own script, run with the real gauntlet: index 0 runs preflight, and the
    // termination message says the decision the exit code carries.
    let script = Command::new("python3")
        .args(["-c", "import yaml,sys; docs=list(yaml.safe_load_all(open(sys.argv[1]))); print(docs[1]['spec']['template']['spec']['containers'][0]['args'][0])"])
        .arg(&job)
        .env("PYTHONPATH", deps("GAUNTLET_PYDEPS", "pydeps"))
        .output()
        .unwrap();
    let script = text(&script.stdout);
    let bin = assert_cmd::cargo::cargo_bin("gauntlet");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (candidate, code, decision) in [
        (
            format!(
                "command: [python3, -m, http.server, \"{{port}}\", --bind, 127.0.0.1, --directory, \"{}\"]\n    health: /",
                s.path().display()
            ),
            exit::NO_GO,
            "NO-GO",
        ),
        (
            "command: [sleep, \"30\"]\n    health: /never\n    ready_timeout: 1s".to_string(),
            exit::INCONCLUSIVE,
            "INCONCLUSIVE",
        ),
        (
            "nonsense: true".to_string(),
            exit::INVALID_INPUT,
            "INVALID-INPUT",
        ),
    ] {
        let spec = s.write(
            "gauntlet.yaml",
            &format!("schema_version: 1\nservice: {{name: tiny, version: \"1.0.0\"}}\ntargets:\n  candidate:\n    {candidate}\ntraffic: {{rate: 10/s, requests: [{{path: /}}]}}\nsteps:\n  preflight: {{}}\n"),
        );
        let local = script
            .replace("/spec/gauntlet.yaml", &spec.display().to_string())
            .replace("/runs", &s.path().join("runs").display().to_string())
            .replace(
                "/dev/termination-log",
                &s.path().join("termination-log").display().to_string(),
            );
        let ran = Command::new("sh")
            .args(["-c", &local])
            .current_dir(s.path())
            .env("PATH", &path)
            .env("JOB_COMPLETION_INDEX", "0")
            .env("XDG_CONFIG_HOME", s.path().join(".config"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            ran.status.code(),
            Some(code),
            "{decision}: {}",
            text(&ran.stderr)
        );
        let said = std::fs::read_to_string(s.path().join("termination-log")).unwrap();
        assert_eq!(said.trim(), format!("preflight {decision}"));
    }
}
