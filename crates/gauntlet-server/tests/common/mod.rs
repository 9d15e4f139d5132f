//! What the server's tests share: a server on loopback knowing one service, with a token
//! of each role, called over real HTTP.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gauntlet_net::{HttpClient, Outgoing, Response};
use gauntlet_server::ServerConfig;
use gauntlet_server::tokens::{self, Role};

/// The server of a config, serving on loopback until stopped.
pub struct Serving {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Serving {
    pub async fn start(config: ServerConfig) -> Serving {
        let (listener, state) = gauntlet_server::bind(config).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            gauntlet_server::serve(listener, state, shutdown)
                .await
                .unwrap();
        });
        Serving {
            base,
            stop: Some(stop),
            task,
        }
    }

    /// Stops it, live runs stopped and undone first.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("the server stopped cleanly");
    }
}

pub struct Server {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub config: ServerConfig,
    pub tokens: BTreeMap<&'static str, String>,
    serving: Serving,
}

impl Server {
    /// A server knowing one service, `web`, of spec `spec`, with a token of each role.
    pub async fn start(spec: &str) -> Server {
        Server::start_services(&[("web", spec)]).await
    }

    /// A server knowing these services (name, spec), with a token of each role.
    pub async fn start_services(services: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut config = "listen: 127.0.0.1:0\nservices:\n".to_string();
        for (name, spec) in services {
            std::fs::write(dir.path().join(format!("{name}.yaml")), spec).unwrap();
            config.push_str(&format!("  {name}: {{spec: {name}.yaml}}\n"));
        }
        std::fs::write(dir.path().join("server.yaml"), config).unwrap();
        let config =
            ServerConfig::load(&dir.path().join("server.yaml"), dir.path().join("keys")).unwrap();
        let mut tokens = BTreeMap::new();
        for (name, role, services) in [
            ("viewer", Role::Viewer, vec![]),
            ("operator", Role::Operator, vec![]),
            ("approver", Role::Approver, vec![]),
            ("admin", Role::Admin, vec![]),
            (
                "other-service",
                Role::Operator,
                vec!["elsewhere".to_string()],
            ),
        ] {
            let (token, _) = tokens::create(&config.tokens, role, services, None).unwrap();
            tokens.insert(name, token);
        }
        let serving = Serving::start(config.clone()).await;
        Server {
            base: serving.base.clone(),
            dir,
            config,
            tokens,
            serving,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Response {
        let mut out = Outgoing::get(&self.base, path);
        out.method = method.to_string();
        if let Some(token) = token {
            out.headers
                .insert("authorization".into(), format!("Bearer {token}"));
        }
        if let Some(body) = body {
            out.headers
                .insert("content-type".into(), "application/json".into());
            out.body = Some(body.to_string());
        }
        HttpClient::new(Duration::from_secs(10))
            .send(&out)
            .await
            .unwrap()
    }

    pub async fn as_role(&self, role: &str, method: &str, path: &str) -> Response {
        self.call(method, path, Some(&self.tokens[role]), None)
            .await
    }

    pub async fn stop(self) -> tempfile::TempDir {
        self.serving.stop().await;
        self.dir
    }
}

pub fn json(response: &Response) -> serde_json::Value {
    serde_json::from_slice(&response.body).unwrap_or_else(|_| panic!("{}", response.body_text()))
}

/// Starts a run of `service` as an operator and waits (bounded) until it has finished: its
/// id and its state then.
pub async fn finished_run(server: &Server, service: &str) -> (String, serde_json::Value) {
    let operator = Some(server.tokens["operator"].as_str());
    let path = format!("/v1/services/{service}/runs");
    let started = server.call("POST", &path, operator, None).await;
    assert_eq!(started.status, 202, "{}", started.body_text());
    let run = json(&started)["run"].as_str().unwrap().to_string();
    let ended = until_status(server, &run, &["finished"]).await;
    (run, ended)
}

/// Waits (bounded) until the run's status is `wanted`.
pub async fn until_status(server: &Server, run: &str, wanted: &[&str]) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let shown = json(
            &server
                .as_role("viewer", "GET", &format!("/v1/runs/{run}"))
                .await,
        );
        if wanted.iter().any(|w| shown["status"] == *w) {
            return shown;
        }
        assert!(
            Instant::now() < deadline,
            "run {run} stayed {}",
            shown["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A quick run that passes and waits for the security role's sign-off (CONDITIONAL): its
/// candidate a plain HTTP server, one short latency drill that holds.
pub const CONDITIONAL: &str = "schema_version: 1
service: {name: shop, version: '1', owners: {security: sec@example.com}}
targets:
  candidate:
    command: [python3, -m, http.server, '{port}', --bind, 127.0.0.1]
    health: /
    ready_timeout: 20s
traffic: {rate: 5/s, requests: [{path: /}]}
signoffs: {required: [security]}
steps:
  chaos:
    interval: 100ms
    steady_state:
      before: 200ms
      after: 500ms
      probes: [{name: up, http: {path: /, status: [200], within: 1s}}]
    drills:
      - {name: slow, faults: [{kind: latency, target: candidate, latency: 5ms}], duration: 1s}
";
