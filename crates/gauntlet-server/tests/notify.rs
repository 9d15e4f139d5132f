//! Notifications to real receivers: an HTTP server inside the test for the webhook and
//! Slack, and a real SMTP server (aiosmtpd, from PyPI) for email.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use gauntlet_net::{HttpClient, Outgoing};
use gauntlet_server::ServerConfig;
use gauntlet_server::tokens::{self, Role};
use hmac::{KeyInit, Mac};
use serde_json::Value;

const SPEC: &str = "schema_version: 1
service: {name: good, version: '1'}
targets:
  candidate:
    command: [python3, -m, http.server, '{port}', --bind, 127.0.0.1]
    health: /
    ready_timeout: 20s
traffic: {rate: 5/s, requests: [{path: /}]}
steps:
  chaos:
    interval: 100ms
    steady_state:
      before: 200ms
      after: 1s
      probes: [{name: up, http: {path: /, status: [200], within: 1s}}]
    drills:
      - {name: d, faults: [{kind: latency, target: candidate, latency: 5ms}], duration: 1s}
";

type Seen = Arc<Mutex<Vec<(String, HeaderMap, Vec<u8>)>>>;

/// Records every request; the webhook's first one is answered 500.
async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = |path: &'static str, seen: Seen| {
        post(
            move |headers: HeaderMap, body: axum::body::Bytes| async move {
                let mut all = seen.lock().unwrap();
                let first = !all.iter().any(|(p, _, _)| p == path);
                all.push((path.to_string(), headers, body.to_vec()));
                if path == "/hook" && first {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            },
        )
    };
    let app = axum::Router::new()
        .route("/hook", record("/hook", seen.clone()))
        .route("/slack/T000SECRET", record("/slack", seen.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// A real SMTP server writing what it receives into a maildir.
struct Smtp {
    child: std::process::Child,
    port: u16,
    maildir: PathBuf,
}

impl Smtp {
    fn start(dir: &Path) -> Smtp {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = dir.join("mail");
        let pydeps = std::env::var("GAUNTLET_PYDEPS").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/pydeps").to_string()
        });
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox", maildir.to_str().unwrap()])
            .env("PYTHONPATH", pydeps)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Smtp {
            child,
            port,
            maildir,
        }
    }

    fn messages(&self) -> Vec<String> {
        std::fs::read_dir(self.maildir.join("new"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_reaches_the_webhook_slack_and_email_and_a_failed_attempt_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, seen) = receiver().await;
    let smtp = Smtp::start(dir.path());
    std::fs::write(dir.path().join("good.yaml"), SPEC).unwrap();
    std::fs::write(dir.path().join("hook.secret"), "s3cret-hmac-key\n").unwrap();
    std::fs::write(
        dir.path().join("slack.url"),
        format!("{receiver}/slack/T000SECRET\n"),
    )
    .unwrap();
    let config_text = format!(
        "listen: 127.0.0.1:0
public_url: https://gauntlet.example.com
services:
  good: {{spec: good.yaml}}
notify:
  - {{webhook: '{receiver}/hook', secret_file: hook.secret}}
  - {{slack_file: slack.url, on: [decision]}}
  - email: {{smtp: '127.0.0.1:{}', from: gauntlet@example.com, to: [sre@example.com]}}
",
        smtp.port
    );
    std::fs::write(dir.path().join("server.yaml"), config_text).unwrap();
    let config =
        ServerConfig::load(&dir.path().join("server.yaml"), dir.path().join("keys")).unwrap();
    let (token, _) = tokens::create(&config.tokens, Role::Operator, vec![], None).unwrap();
    let (listener, state) = gauntlet_server::bind(config.clone()).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        gauntlet_server::serve(listener, state, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let mut start = Outgoing::get(&base, "/v1/services/good/runs");
    start.method = "POST".into();
    start
        .headers
        .insert("authorization".into(), format!("Bearer {token}"));
    let started = HttpClient::new(Duration::from_secs(10))
        .send(&start)
        .await
        .unwrap();
    assert_eq!(started.status, 202, "{}", started.body_text());
    let run: Value = serde_json::from_slice(&started.body).unwrap();
    let run = run["run"].as_str().unwrap().to_string();

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let delivered = |path: &str| {
            seen.lock()
                .unwrap()
                .iter()
                .filter(|(p, _, _)| p == path)
                .count()
        };
        if delivered("/hook") >= 2 && delivered("/slack") >= 1 && !smtp.messages().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "not every notification arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = seen.lock().unwrap().clone();
    // The webhook: signed with the key from the file, retried after the 500.
    let (_, headers, body) = seen.iter().rfind(|(p, _, _)| p == "/hook").unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cret-hmac-key").unwrap();
    mac.update(body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(headers["x-gauntlet-signature"], expected.as_str());
    let notice: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(notice["decision"], "GO", "{notice}");
    assert_eq!(notice["run"], run.as_str());
    assert_eq!(
        notice["url"],
        format!("https://gauntlet.example.com/v1/runs/{run}")
    );
    // Slack: the decision in the header block.
    let (_, _, slack) = seen.iter().find(|(p, _, _)| p == "/slack").unwrap();
    let slack: Value = serde_json::from_slice(slack).unwrap();
    assert_eq!(slack["blocks"][0]["text"]["text"], "GO — good 1");
    // Email, through a real SMTP server.
    let mail = smtp.messages().remove(0);
    assert!(mail.contains("Subject: [gauntlet] GO: good 1"), "{mail}");
    assert!(mail.contains(&run), "{mail}");
    // Every attempt is audited; no secret is.
    let _ = stop.send(());
    server.await.unwrap();
    let audit = std::fs::read_to_string(&config.audit).unwrap();
    assert!(
        audit.contains("attempt 1 of 4 failed: answered 500"),
        "{audit}"
    );
    assert!(audit.contains("delivered on attempt 2"), "{audit}");
    for secret in ["s3cret-hmac-key", "T000SECRET"] {
        assert!(!audit.contains(secret), "{secret} in the audit log");
    }
    assert!(gauntlet_server::audit::verify(&config.audit).is_ok());
}

#[test]
fn a_target_whose_secret_is_missing_is_refused_at_start_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yaml"), SPEC).unwrap();
    let text = "services:\n  good: {spec: good.yaml}\nnotify:\n  - {slack_env: GAUNTLET_TEST_NO_SUCH_VARIABLE}\n  - {webhook: 'ftp://x', on: [lunch]}\n";
    std::fs::write(dir.path().join("server.yaml"), text).unwrap();
    let errors =
        ServerConfig::load(&dir.path().join("server.yaml"), dir.path().join("keys")).unwrap_err();
    let said: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(
        said[0].contains(":4:") && said[0].contains("GAUNTLET_TEST_NO_SUCH_VARIABLE"),
        "{said:?}"
    );
    assert!(
        said[1].contains(":5:") && said[1].contains("`lunch` is not an occasion"),
        "{said:?}"
    );
}
