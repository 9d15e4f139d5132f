//! Contract tests: Argo Rollouts' web metric provider and Flagger's webhooks, sending the
//! payloads they send over real HTTP and reading the answers by their rules (Argo: any
//! non-2xx is an Error, the body's `result.decision` tested by the template's conditions,
//! neither is Inconclusive; Flagger: only 200–202 is a yes).

use std::time::{Duration, Instant};

use gauntlet_net::{HttpClient, Outgoing, Response};
use gauntlet_server::ServerConfig;
use gauntlet_server::tokens::{self, Role};
use serde_json::{Value, json};

mod common;
use common::Serving;

/// A service whose drill holds (GO) or breaks (NO-GO), in about two seconds.
fn spec(name: &str, fault: &str) -> String {
    format!(
        "schema_version: 1
service: {{name: {name}, version: '1'}}
targets:
  candidate:
    command: [python3, -m, http.server, '{{port}}', --bind, 127.0.0.1]
    health: /
    ready_timeout: 20s
traffic: {{rate: 5/s, requests: [{{path: /}}]}}
steps:
  chaos:
    interval: 100ms
    steady_state:
      before: 200ms
      after: 1s
      probes: [{{name: up, http: {{path: /, status: [200], within: 1s}}}}]
    drills:
      - {{name: d, faults: [{fault}], duration: 1s, expect: hold}}
"
    )
}

struct Server {
    base: String,
    token: String,
    approver: String,
    _dir: tempfile::TempDir,
    config: ServerConfig,
    serving: Serving,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "good.yaml",
            &spec("good", "{kind: latency, target: candidate, latency: 5ms}"),
        );
        write(
            "bad.yaml",
            &spec("bad", "{kind: http_abort, target: candidate, status: 503}"),
        );
        // A GO that needs the security role's sign-off first.
        let gated = spec("gated", "{kind: latency, target: candidate, latency: 5ms}").replace(
            "service: {name: gated, version: '1'}",
            "service: {name: gated, version: '1', owners: {security: sec@example.com}}\nsignoffs: {required: [security]}",
        );
        write("gated.yaml", &gated);
        write(
            "server.yaml",
            "listen: 127.0.0.1:0\nservices:\n  good: {spec: good.yaml}\n  bad: {spec: bad.yaml}\n  gated: {spec: gated.yaml}\n",
        );
        let config =
            ServerConfig::load(&dir.path().join("server.yaml"), dir.path().join("keys")).unwrap();
        let (token, _) = tokens::create(&config.tokens, Role::Operator, vec![], None).unwrap();
        let (approver, _) = tokens::create(&config.tokens, Role::Approver, vec![], None).unwrap();
        let mut keyring = gauntlet_trust::Keyring::open(&config.keyring).unwrap();
        keyring.ensure_active(None).unwrap();
        let serving = Serving::start(config.clone()).await;
        Server {
            base: serving.base.clone(),
            token,
            approver,
            _dir: dir,
            config,
            serving,
        }
    }

    async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        let mut out = Outgoing::get(&self.base, path);
        out.method = "POST".into();
        out.headers
            .insert("content-type".into(), "application/json".into());
        if let Some(token) = token {
            out.headers
                .insert("authorization".into(), format!("Bearer {token}"));
        }
        out.body = Some(body.to_string());
        // Argo's and Flagger's default timeout.
        HttpClient::new(Duration::from_secs(10))
            .send(&out)
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.serving.stop().await;
    }
}

#[derive(Debug, PartialEq, Clone, Copy)]
enum Argo {
    Successful,
    Failed,
    Inconclusive,
    Error,
}

/// One measurement as Argo's web provider takes it, with `jsonPath: "{$}"`,
/// `successCondition: result.decision == "GO"`, `failureCondition: result.decision == "NO-GO"`.
fn argo_measure(response: &Response) -> Argo {
    if !response.is_success() {
        return Argo::Error;
    }
    let Ok(result) = serde_json::from_slice::<Value>(&response.body) else {
        return Argo::Error;
    };
    if result["decision"] == "NO-GO" {
        Argo::Failed
    } else if result["decision"] == "GO" {
        Argo::Successful
    } else {
        Argo::Inconclusive
    }
}

/// Measures until a measurement is successful or failed, or errors pass Argo's default
/// `consecutiveErrorLimit` of 4; returns the end and the last body.
async fn analysis(server: &Server, body: &Value, token: Option<&str>) -> (Argo, Value) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut errors = 0;
    loop {
        let response = server.post("/v1/judge/argo", body, token).await;
        let measured = argo_measure(&response);
        let seen = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        match measured {
            Argo::Successful | Argo::Failed => return (measured, seen),
            Argo::Error => {
                errors += 1;
                if errors > 4 {
                    return (Argo::Error, seen);
                }
            }
            Argo::Inconclusive => {
                errors = 0;
                assert_eq!(seen["decision"], "CONTINUE", "{seen}");
            }
        }
        assert!(
            Instant::now() < deadline,
            "the analysis never ended: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn flagger_yes(response: &Response) -> bool {
    (200..=202).contains(&response.status)
}

fn payload(name: &str, checksum: &str, metadata: Value) -> Value {
    json!({"name": name, "namespace": "shop", "phase": "Progressing", "checksum": checksum, "metadata": metadata})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_analyses_end_successful_on_go_and_failed_on_no_go() {
    let server = Server::start().await;
    let token = Some(server.token.as_str());
    let good = json!({"service": "good", "key": "rollout-a/rev-1"});
    let (first, second) = tokio::join!(
        server.post("/v1/judge/argo", &good, token),
        server.post("/v1/judge/argo", &good, token)
    );
    let run = |r: &Response| serde_json::from_slice::<Value>(&r.body).unwrap()["run"].clone();
    assert_eq!(
        run(&first),
        run(&second),
        "one key, one run, even when asked at once"
    );
    let (end, body) = analysis(&server, &good, token).await;
    assert_eq!(end, Argo::Successful, "{body}");
    assert_eq!(body["run"], run(&first));
    assert!(body["url"].as_str().unwrap().starts_with("/v1/runs/"));
    let (end, body) = analysis(
        &server,
        &json!({"service": "bad", "key": "rollout-b/rev-1"}),
        token,
    )
    .await;
    assert_eq!(end, Argo::Failed, "{body}");
    assert!(
        body["reason"].as_str().unwrap().contains("d: hold"),
        "{body}"
    );
    // Gauntlet refusing the request is an Error for Argo, never a success.
    for (body, token) in [
        (json!({"service": "nope", "key": "k"}), token),
        (json!({"service": "good", "key": "k"}), None),
        (json!({"service": "good"}), token),
        (
            json!({"service": "good", "key": "k", "only": ["canary"]}),
            token,
        ),
    ] {
        let (end, seen) = analysis(&server, &body, token).await;
        assert_eq!(end, Argo::Error, "{body}: {seen}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagger_hooks_say_yes_exactly_when_their_condition_holds() {
    let server = Server::start().await;
    let meta = json!({"token": server.token});
    let hook = |name: &str| format!("/v1/judge/flagger/{name}");
    // A good revision: confirm-rollout holds the rollout until the run is GO, then yes.
    let good = payload("good", "abc123", meta.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let answered = server.post(&hook("confirm-rollout"), &good, None).await;
        if flagger_yes(&answered) {
            break;
        }
        assert_eq!(answered.status, 409, "{}", answered.body_text());
        assert!(Instant::now() < deadline, "{}", answered.body_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(flagger_yes(
        &server.post(&hook("confirm-promotion"), &good, None).await
    ));
    assert!(!flagger_yes(
        &server.post(&hook("rollback"), &good, None).await
    ));
    assert!(flagger_yes(&server.post(&hook("event"), &good, None).await));
    // A bad revision never gets past confirm-rollout, and rollback says yes.
    let bad = payload("bad", "def456", meta.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let answered = server.post(&hook("confirm-rollout"), &bad, None).await;
        assert!(!flagger_yes(&answered), "{}", answered.body_text());
        let said: Value = serde_json::from_slice(&answered.body).unwrap();
        if said["decision"] == "NO-GO" {
            break;
        }
        assert!(Instant::now() < deadline, "{said}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(flagger_yes(
        &server.post(&hook("rollback"), &bad, None).await
    ));
    assert!(!flagger_yes(
        &server.post(&hook("confirm-promotion"), &bad, None).await
    ));
    // A revision confirm-rollout never saw has nothing to promote or roll back.
    let unseen = payload("good", "fff000", meta.clone());
    assert!(!flagger_yes(
        &server.post(&hook("confirm-promotion"), &unseen, None).await
    ));
    assert!(!flagger_yes(
        &server.post(&hook("rollback"), &unseen, None).await
    ));
    // An unknown hook, service or token is never a yes.
    assert!(!flagger_yes(
        &server.post(&hook("confirm-everything"), &good, None).await
    ));
    let elsewhere = payload("nope", "1", meta.clone());
    assert!(!flagger_yes(
        &server
            .post(&hook("confirm-rollout"), &elsewhere, None)
            .await
    ));
    let anonymous = payload("good", "abc123", json!({}));
    assert_eq!(
        server
            .post(&hook("confirm-promotion"), &anonymous, None)
            .await
            .status,
        401
    );
    // Each revision ran once, however often it was asked about.
    let store = gauntlet_store::Store::connect(&server.config.store).unwrap();
    assert_eq!(store.list_runs(100).unwrap().len(), 2);
    server.stop().await;
}

/// The shipped examples say what these tests evaluate: the same routes, conditions and
/// request fields.
#[test]
fn the_shipped_controller_examples_match_the_contract() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let argo = std::fs::read_to_string(root.join("argo/analysistemplate.yaml")).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&argo).unwrap();
    let metric = &docs[0]["spec"]["metrics"][0];
    assert_eq!(metric["successCondition"], "result.decision == \"GO\"");
    assert_eq!(metric["failureCondition"], "result.decision == \"NO-GO\"");
    let web = &metric["provider"]["web"];
    assert!(web["url"].as_str().unwrap().ends_with("/v1/judge/argo"));
    assert_eq!(web["jsonPath"], "{$}");
    // The body Argo sends, its placeholders filled, is a request gauntlet accepts.
    let body = web["jsonBody"]
        .to_string()
        .replace("{{args.service}}", "shop")
        .replace("{{args.revision}}", "abc");
    let request: gauntlet_server::judge::ArgoRequest = serde_json::from_str(&body).unwrap();
    assert_eq!(request.service, "shop");
    let flagger = std::fs::read_to_string(root.join("flagger/canary.yaml")).unwrap();
    let canary: Value = serde_saphyr::from_str(&flagger).unwrap();
    let hooks = canary["spec"]["analysis"]["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 5);
    for hook in hooks {
        let url = hook["url"].as_str().unwrap();
        let name = url.rsplit('/').next().unwrap();
        assert_eq!(
            hook["type"], name,
            "each webhook calls the hook of its type"
        );
        assert!(
            gauntlet_server::judge::Hook::parse(name).is_some(),
            "{name}"
        );
    }
    // The spec that goes with it plans, its canary counted by Prometheus.
    let spec = std::fs::read_to_string(root.join("flagger/gauntlet.yaml")).unwrap();
    let plan = gauntlet_spec::plan_str("gauntlet.yaml", &spec, &Default::default(), 1).unwrap();
    let source = plan.canary().and_then(|c| c.source.as_ref()).unwrap();
    assert_ne!(source.arms[0].requests, source.arms[1].requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_off_through_the_api_turns_a_conditional_into_a_go() {
    let server = Server::start().await;
    let meta = json!({"token": server.token});
    let gated = payload("gated", "9a9a", meta);
    let hook = |name: &str| format!("/v1/judge/flagger/{name}");
    // CONDITIONAL lets the rollout start, and holds the promotion.
    let deadline = Instant::now() + Duration::from_secs(120);
    let run = loop {
        let answered = server.post(&hook("confirm-rollout"), &gated, None).await;
        let said: Value = serde_json::from_slice(&answered.body).unwrap();
        if flagger_yes(&answered) {
            assert_eq!(said["decision"], "CONDITIONAL", "{said}");
            break said["run"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "{said}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!flagger_yes(
        &server.post(&hook("confirm-promotion"), &gated, None).await
    ));
    let signoff = format!("/v1/runs/{run}/signoff");
    let as_security = json!({"role": "security"});
    // An operator may not sign off; a role the spec does not know is refused.
    assert_eq!(
        server
            .post(&signoff, &as_security, Some(&server.token))
            .await
            .status,
        403
    );
    let unknown = server
        .post(
            &signoff,
            &json!({"role": "finance"}),
            Some(&server.approver),
        )
        .await;
    assert_eq!(unknown.status, 400, "{}", unknown.body_text());
    let signed = server
        .post(&signoff, &as_security, Some(&server.approver))
        .await;
    assert_eq!(signed.status, 201, "{}", signed.body_text());
    let said: Value = serde_json::from_slice(&signed.body).unwrap();
    assert_eq!(said["decision"], "GO", "{said}");
    assert_eq!(said["by"], "sec@example.com");
    assert!(flagger_yes(
        &server.post(&hook("confirm-promotion"), &gated, None).await
    ));
    // The certificate says so too, with the sign-off verified.
    let mut get = Outgoing::get(&server.base, &format!("/v1/runs/{run}/certificate"));
    get.headers
        .insert("authorization".into(), format!("Bearer {}", server.token));
    let certificate = HttpClient::new(Duration::from_secs(10))
        .send(&get)
        .await
        .unwrap();
    let text = certificate.body_text();
    assert_eq!(certificate.status, 200, "{text}");
    assert!(
        text.contains("**Decision: GO** (recorded at the end of the run: CONDITIONAL)"),
        "{text}"
    );
    assert!(text.contains("| security | sec@example.com |"), "{text}");
    server.stop().await;
}
