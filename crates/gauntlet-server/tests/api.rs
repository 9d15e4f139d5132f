//! `gauntlet serve` over real HTTP on loopback: every route × every role, tokens revoked
//! mid-session, paths that try to leave a run, a real run started, read and cancelled with
//! everything it started stopped, and an audit log whose chain holds.

use std::path::Path;
use std::time::{Duration, Instant};

use gauntlet_server::ServerConfig;
use gauntlet_server::api::ROUTES;
use gauntlet_server::tokens::{self, Role};

mod common;
use common::{Server, json, until_status};

/// A candidate the run starts itself (writing down the knob a request may set, as the demo
/// reads its defects), and one drill that lasts long enough to be cancelled.
const SPEC: &str = "schema_version: 1
service: {name: web, version: '1'}
targets:
  candidate:
    command: [sh, -c, 'printf %s \"$KNOB\" > {dir}/knob && exec python3 -m http.server {port} --bind 127.0.0.1']
    pass_env: [KNOB]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_what_a_role_may_not_do() {
    let server = Server::start(SPEC).await;
    // A request for a run or service that does not exist still shows whether the caller got
    // past the door: 401 / 403 come before 404.
    let concrete = |path: &str| {
        path.replace("{service}", "web")
            .replace("{run}", "20260101T000000Z-0000")
            .replace("{*path}", "report.json")
            .replace("{drill}", "slow")
            .replace("{step}", "confirm")
    };
    for route in ROUTES {
        let (method, needed) = (&route.method, &route.role);
        let path = concrete(route.path);
        let unauthenticated = server.call(method, &path, None, None).await;
        assert_eq!(
            unauthenticated.status, 401,
            "{method} {path} without a token"
        );
        let bogus = server
            .call(method, &path, Some("gauntlet_deadbeef_00"), None)
            .await;
        assert_eq!(bogus.status, 401, "{method} {path} with a bogus token");
        // Past the door, a start asks for a step the spec lacks: refused, nothing runs.
        let body = (*method == "POST").then_some("{\"only\": [\"canary\"]}");
        for role in Role::ALL {
            let token = Some(server.tokens[role.as_str()].as_str());
            let answered = server.call(method, &path, token, body).await.status;
            if role.allows(*needed) {
                assert_ne!(answered, 401, "{method} {path} as {}", role.as_str());
                assert_ne!(answered, 403, "{method} {path} as {}", role.as_str());
            } else {
                assert_eq!(answered, 403, "{method} {path} as {}", role.as_str());
            }
        }
    }
    // A token scoped to another service may not start this one's runs.
    let scoped = server
        .as_role("other-service", "POST", "/v1/services/web/runs")
        .await;
    assert_eq!(scoped.status, 403);
    let dir = server.stop().await;
    // Every one of those decisions is in the audit log, whose chain holds; no token is.
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(audit.lines().count() > ROUTES.len() * 6);
    assert!(gauntlet_server::audit::verify(&dir.path().join("audit.jsonl")).is_ok());
    assert!(!audit.contains("gauntlet_"), "no token in the audit log");
    for outcome in ["\"allowed\"", "\"denied\"", "\"unauthenticated\""] {
        assert!(audit.contains(outcome), "{outcome}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_started_read_and_cancelled_with_everything_undone() {
    let server = Server::start(SPEC).await;
    let started = server
        .call(
            "POST",
            "/v1/services/web/runs",
            Some(&server.tokens["operator"]),
            Some("{\"seed\": 7, \"env\": {\"KNOB\": \"errors=5%\"}}"),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.body_text());
    let run = json(&started)["run"].as_str().unwrap().to_string();
    let running = until_status(&server, &run, &["running"]).await;
    assert_eq!(running["live"], true);
    // The drill's fault is in once the chaos step has started; then the run is cancelled.
    let run_dir = server.config.runs.join(&run);
    wait_for_file_containing(&run_dir.join("cleanup.jsonl"), "proxy").await;
    // The knob the request set reached the candidate (the spec passes it), and only it.
    let knob = find_file(&run_dir, "knob").expect("the candidate wrote its knob");
    assert_eq!(std::fs::read_to_string(knob).unwrap(), "errors=5%");
    let listed = json(
        &server
            .as_role("viewer", "GET", "/v1/runs?service=web")
            .await,
    );
    assert_eq!(listed["runs"][0]["run"], run.as_str());
    let cancelled = server
        .as_role("operator", "POST", &format!("/v1/runs/{run}/cancel"))
        .await;
    assert_eq!(cancelled.status, 202, "{}", cancelled.body_text());
    let ended = until_status(&server, &run, &["finished", "aborted"]).await;
    assert_eq!(ended["decision"], "ABORTED", "{ended}");
    assert!(
        ended["summary"].as_str().unwrap().contains("cancelled"),
        "{ended}"
    );
    // Everything it started is stopped and every fault undone.
    let leftovers = gauntlet_engine::journal::read_leftovers(&run_dir).unwrap();
    assert!(leftovers.pending.is_empty(), "{:?}", leftovers.pending);
    // Its files are served; paths that try to leave the run are refused.
    let report = server
        .as_role(
            "viewer",
            "GET",
            &format!("/v1/runs/{run}/files/report.json"),
        )
        .await;
    assert_eq!(report.status, 200);
    assert_eq!(json(&report)["decision"], "ABORTED");
    for escape in [
        "../server.yaml",
        "..%2Fserver.yaml",
        "logs/../../server.yaml",
        "%2Fetc%2Fpasswd",
    ] {
        let answered = server
            .as_role("viewer", "GET", &format!("/v1/runs/{run}/files/{escape}"))
            .await;
        assert!(
            matches!(answered.status, 400 | 404),
            "{escape}: {}",
            answered.status
        );
        assert!(!answered.body_text().contains("listen"), "{escape}");
    }
    let traversal = server
        .as_role("viewer", "GET", "/v1/runs/..%2F..%2Fetc")
        .await;
    assert!(matches!(traversal.status, 400 | 404));
    // A second cancel finds nothing running.
    let again = server
        .as_role("operator", "POST", &format!("/v1/runs/{run}/cancel"))
        .await;
    assert_eq!(again.status, 409);
    // The metrics count the run (once its task has ended) and the requests.
    let counted = "gauntlet_runs_finished_total{service=\"web\",decision=\"ABORTED\"} 1";
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let metrics = server.call("GET", "/metrics", None, None).await.body_text();
        if metrics.contains(counted) || Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(metrics.contains(counted), "{metrics}");
    assert!(metrics.contains("route=\"/v1/runs/{run}\""), "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_mid_session_is_refused_on_its_next_request() {
    let server = Server::start(SPEC).await;
    assert_eq!(
        server.as_role("viewer", "GET", "/v1/services").await.status,
        200
    );
    let listed = tokens::list(&server.config.tokens).unwrap();
    let viewer = listed.iter().find(|t| t.role == Role::Viewer).unwrap();
    tokens::revoke(&server.config.tokens, &viewer.id).unwrap();
    assert_eq!(
        server.as_role("viewer", "GET", "/v1/services").await.status,
        401
    );
    assert_eq!(
        server.as_role("admin", "GET", "/v1/services").await.status,
        200
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_service_or_a_bad_selection_is_said_as_such() {
    let server = Server::start(SPEC).await;
    let operator = Some(server.tokens["operator"].as_str());
    let unknown = server
        .call("POST", "/v1/services/nope/runs", operator, None)
        .await;
    // The admin-free operator token covers all services, so this is the service's absence.
    assert_eq!(unknown.status, 404, "{}", unknown.body_text());
    let bad = server
        .call(
            "POST",
            "/v1/services/web/runs",
            operator,
            Some("{\"only\": [\"canary\"]}"),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body_text());
    assert!(json(&bad)["message"].as_str().unwrap().contains("canary"));
    // A variable the spec does not pass cannot be set by a request.
    let unpassed = server
        .call(
            "POST",
            "/v1/services/web/runs",
            operator,
            Some("{\"env\": {\"LD_PRELOAD\": \"/tmp/x.so\"}}"),
        )
        .await;
    assert_eq!(unpassed.status, 400, "{}", unpassed.body_text());
    let said = json(&unpassed)["message"].as_str().unwrap().to_string();
    assert!(
        said.contains("LD_PRELOAD") && said.contains("KNOB"),
        "{said}"
    );
    server.stop().await;
}

/// The first file called `name` under `dir`.
fn find_file(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
        if path.is_dir()
            && let Some(found) = find_file(&path, name)
        {
            return Some(found);
        }
    }
    None
}

async fn wait_for_file_containing(path: &Path, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle)) {
        assert!(
            Instant::now() < deadline,
            "{} never mentioned {needle}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A small seeded generator, so a failure replays.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_run_requests_get_a_client_error_never_a_server_error() {
    let server = Server::start(SPEC).await;
    let operator = Some(server.tokens["operator"].as_str());
    let seeds = [
        "{\"only\": [\"canary\"]}",
        "{\"only\": [\"chaos\"], \"seed\": 18446744073709551616}",
        "{\"only\": \"chaos\"}",
        "{\"skip\": [\"chaos\"], \"profile\": \"nope\"}",
        "{\"only\": [\"chaos\"], \"extra\": 1}",
        "[1, 2",
        "null",
    ];
    let mut rng = Rng(17);
    for round in 0..300 {
        let mut body = seeds[round % seeds.len()].as_bytes().to_vec();
        for _ in 0..(rng.next() % 4) {
            let at = (rng.next() as usize) % body.len().max(1);
            match rng.next() % 3 {
                0 if !body.is_empty() => {
                    body.remove(at.min(body.len() - 1));
                }
                1 => body.insert(at.min(body.len()), (rng.next() % 256) as u8),
                _ => body.insert(at.min(body.len()), b"{}[]\",:0"[(rng.next() % 8) as usize]),
            }
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        let answered = server
            .call("POST", "/v1/services/web/runs", operator, Some(&body))
            .await;
        assert!(
            (400..500).contains(&answered.status) || answered.status == 202,
            "{body:?}: {} {}",
            answered.status,
            answered.body_text()
        );
        if answered.status == 202 {
            // A mutation that still reads as a valid request is a run; it is cancelled.
            let run = json(&answered)["run"].as_str().unwrap().to_string();
            server
                .as_role("operator", "POST", &format!("/v1/runs/{run}/cancel"))
                .await;
        }
    }
    assert_eq!(server.call("GET", "/healthz", None, None).await.status, 200);
    server.stop().await;
}

#[test]
fn mutated_server_configs_never_panic_and_errors_are_located() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("web.yaml"), SPEC).unwrap();
    let valid = "listen: 127.0.0.1:8787\nstore: g.db\nservices:\n  web: {spec: web.yaml}\n";
    let mut rng = Rng(5);
    for _ in 0..400 {
        let mut text = valid.as_bytes().to_vec();
        for _ in 0..(1 + rng.next() % 3) {
            let at = (rng.next() as usize) % text.len();
            match rng.next() % 3 {
                0 => {
                    text.remove(at);
                }
                1 => text.insert(at, b":{}[]- \n'\"0a/."[(rng.next() % 14) as usize]),
                _ => text[at] = (rng.next() % 128) as u8,
            }
        }
        let path = dir.path().join("server.yaml");
        std::fs::write(&path, &text).unwrap();
        if let Err(errors) = ServerConfig::load(&path, dir.path().join("keys")) {
            assert!(!errors.0.is_empty());
            for e in &errors.0 {
                assert!(e.line >= 1 && e.column >= 1, "{e}");
            }
        }
    }
}

/// The OpenAPI document names every route the server answers and nothing it does not, and
/// a stock validator (openapi-spec-validator, from PyPI) accepts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_the_real_routes_and_is_valid() {
    let server = Server::start(SPEC).await;
    let document = json(&server.call("GET", "/v1/openapi.json", None, None).await);
    let paths = document["paths"].as_object().unwrap();
    let mut documented = 0;
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            documented += 1;
            let concrete = path
                .replace("{service}", "web")
                .replace("{run}", "20260101T000000Z-0000")
                .replace("{path}", "report.json")
                .replace("{hook}", "event");
            let answered = server
                .call(
                    &method.to_ascii_uppercase(),
                    &concrete,
                    Some(&server.tokens["admin"]),
                    Some("{}"),
                )
                .await;
            // The router's own refusals: no route (our fallback names it) or no such method.
            assert!(
                !answered.body_text().contains("no such route") && answered.status != 405,
                "{method} {path}: {} {}",
                answered.status,
                answered.body_text()
            );
            let role: Role = operation["x-gauntlet-role"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            let listed = ROUTES
                .iter()
                .find(|r| r.path.replace("{*", "{") == *path)
                .unwrap();
            assert_eq!(role, listed.role);
        }
    }
    assert_eq!(documented, ROUTES.len());
    // A route that is not in the document is not served either.
    let missing = server.as_role("admin", "GET", "/v1/nothing-here").await;
    assert!(missing.body_text().contains("no such route"));
    let file = server.dir.path().join("openapi.json");
    std::fs::write(&file, document.to_string()).unwrap();
    let pydeps = std::env::var("GAUNTLET_PYDEPS").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/pydeps").to_string()
    });
    let checked = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator", file.to_str().unwrap()])
        .env("PYTHONPATH", pydeps)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    server.stop().await;
}

/// A drill whose fault breaks the service runs a runbook with a manual step: an operator
/// confirms it through the API (the token recorded as who), a step it is not waiting for is
/// refused, and a viewer may not confirm.
const RUNBOOK_SPEC: &str = "schema_version: 1
service: {name: web, version: '1'}
targets:
  candidate:
    command: [python3, -m, http.server, '{port}', --bind, 127.0.0.1]
    health: /
    ready_timeout: 20s
traffic: {rate: 5/s, requests: [{path: /}]}
runbooks:
  respond:
    target: 1m
    steps:
      - {name: on-call looks, budget: 1m, manual: {say: look at the dashboard}}
steps:
  chaos:
    interval: 100ms
    steady_state:
      before: 200ms
      after: 2s
      probes: [{name: up, http: {path: /, status: [200], within: 1s}}]
    drills:
      - {name: broken, faults: [{kind: http_abort, target: candidate, status: 503}], duration: 2s,
         expect: 'recover within 2s', runbook: respond}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runbook_step_is_confirmed_through_the_api() {
    let server = Server::start(RUNBOOK_SPEC).await;
    let started = server
        .as_role("operator", "POST", "/v1/services/web/runs")
        .await;
    assert_eq!(started.status, 202, "{}", started.body_text());
    let run = json(&started)["run"].as_str().unwrap().to_string();
    let run_dir = server.config.runs.join(&run);
    let waiting = run_dir.join("runbooks/waiting/on-call-looks.json");
    wait_for_file_containing(&waiting, "look at the dashboard").await;
    let wrong = server
        .as_role("operator", "POST", &format!("/v1/runs/{run}/confirm/drain"))
        .await;
    assert_eq!(wrong.status, 409, "{}", wrong.body_text());
    assert!(wrong.body_text().contains("it waits for `on-call looks`"));
    let viewer = server
        .as_role(
            "viewer",
            "POST",
            &format!("/v1/runs/{run}/confirm/on-call%20looks"),
        )
        .await;
    assert_eq!(viewer.status, 403);
    let confirmed = server
        .as_role(
            "operator",
            "POST",
            &format!("/v1/runs/{run}/confirm/on-call%20looks"),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body_text());
    let ended = until_status(&server, &run, &["finished", "aborted"]).await;
    assert_ne!(ended["decision"], "ABORTED", "{ended}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).unwrap()).unwrap();
    let detail = report["runbooks"][0]["steps"][0]["detail"]
        .as_str()
        .unwrap();
    assert!(detail.starts_with("confirmed by token "), "{detail}");
    server.stop().await;
}
