//! The Prometheus client against a real Prometheus (Debian's `prometheus`, installed by
//! scripts/test), started here on a free loopback port, scraping itself and evaluating a
//! rule file. No mocked HTTP.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use gauntlet_metrics::prometheus::{Auth, PromError, Prometheus};

const RULES: &str = r#"groups:
  - name: gauntlet-test
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        labels: {severity: page}
        annotations: {summary: "fires as soon as it is evaluated"}
      - record: job:up:sum
        expr: sum by (job) (up)
"#;

/// A Prometheus process that is killed when the test ends, however it ends.
struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start() -> Server {
    start_with(None)
}

/// With `web_config`, Prometheus's own `--web.config.file` (e.g. basic auth users).
fn start_with(web_config: Option<&str>) -> Server {
    let found = Command::new("sh")
        .args(["-c", "command -v prometheus"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`prometheus` is not installed: run scripts/test, which installs it"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [rules.yml]\nscrape_configs:\n  - job_name: self\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        ),
    )
    .unwrap();
    let mut command = Command::new("prometheus");
    if let Some(web) = web_config {
        let path = dir.path().join("web.yml");
        std::fs::write(&path, web).unwrap();
        command.arg(format!("--web.config.file={}", path.display()));
    }
    let child = command
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// Polls `condition` every 50 ms until it holds; fails the test after `limit`.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_alerts_rules_and_targets_from_a_real_prometheus() {
    let server = start();
    let prom = Prometheus::new(&server.url, Duration::from_secs(5));
    eventually("ready", Duration::from_secs(30), || async {
        prom.ready().await.is_ok()
    })
    .await;
    eventually("the self scrape", Duration::from_secs(30), || async {
        prom.query("up{job=\"self\"}", None)
            .await
            .is_ok_and(|s| s.first().is_some_and(|s| s.value == 1.0))
    })
    .await;

    let up = prom.query("up", None).await.unwrap();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].labels["job"], "self");
    let scalar = prom.query("scalar(vector(42))", Some(now())).await.unwrap();
    assert_eq!(scalar[0].value, 42.0);
    let inf = prom.query("vector(1) / 0", None).await.unwrap();
    assert_eq!(inf[0].value, f64::INFINITY);

    match prom.query("sum(rate(up[1m]", None).await {
        Err(PromError::Query { error_type, error }) => {
            assert_eq!(error_type, "bad_data");
            assert!(error.contains("parse error"), "{error}");
        }
        other => panic!("a malformed query must be refused with the server's words: {other:?}"),
    }

    let range = prom
        .query_range("up", now() - 30.0, now(), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(range.len(), 1);
    assert!(!range[0].points.is_empty());

    let targets = prom.targets().await.unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].health, "up");
    assert!(
        targets[0].scrape_url.starts_with(&server.url),
        "{}",
        targets[0].scrape_url
    );

    let groups = prom.rules().await.unwrap();
    assert_eq!(groups[0].name, "gauntlet-test");
    let kinds: Vec<(&str, &str)> = groups[0]
        .rules
        .iter()
        .map(|r| (r.name.as_str(), r.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [("AlwaysFiring", "alerting"), ("job:up:sum", "recording")]
    );

    eventually("AlwaysFiring firing", Duration::from_secs(30), || async {
        prom.alerts().await.is_ok_and(|alerts| {
            alerts.iter().any(|a| {
                a.labels.get("alertname").map(String::as_str) == Some("AlwaysFiring")
                    && a.state == "firing"
            })
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_prometheus_is_unavailable_after_bounded_retries() {
    let mut server = start();
    let prom = Prometheus::new(&server.url, Duration::from_secs(2))
        .with_retries(3, Duration::from_millis(50));
    eventually("ready", Duration::from_secs(30), || async {
        prom.ready().await.is_ok()
    })
    .await;
    assert!(prom.query("vector(1)", None).await.is_ok());
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    match prom.query("vector(1)", None).await {
        Err(PromError::Unavailable { attempts, last, .. }) => {
            assert_eq!(attempts, 3);
            assert!(last.contains("connection"), "{last}");
        }
        other => panic!("a stopped server must be unavailable, not {other:?}"),
    }
}

/// `gauntlet` / `gauntlet-test-password`, bcrypt at the lowest cost (a test's password).
const WEB_CONFIG: &str =
    "basic_auth_users:\n  gauntlet: $2b$04$taGwCR81T.P2Pa8FsZOheuG7F1o5ippTuw/YobTkP7mSdY7mz9WQi\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_reaches_a_protected_prometheus_and_a_refusal_says_what_to_set() {
    let server = start_with(Some(WEB_CONFIG));
    let basic = |password: &str| {
        Some(Auth::Basic {
            user: "gauntlet".into(),
            password: password.into(),
        })
    };
    let prom = Prometheus::new(&server.url, Duration::from_secs(5))
        .with_auth(basic("gauntlet-test-password"));
    eventually("ready", Duration::from_secs(30), || async {
        prom.ready().await.is_ok()
    })
    .await;
    let answer = prom.query("scalar(vector(7))", None).await.unwrap();
    assert_eq!(answer[0].value, 7.0);

    // No credentials, or wrong ones: refused at once (no retries), saying what to set.
    let refusals = [
        (None, "set GAUNTLET_PROMETHEUS_TOKEN"),
        (
            basic("wrong"),
            "GAUNTLET_PROMETHEUS_PASSWORD were not accepted",
        ),
    ];
    for (auth, says) in refusals {
        let prom = Prometheus::new(&server.url, Duration::from_secs(5))
            .with_auth(auth)
            .with_retries(3, Duration::from_secs(10));
        let started = Instant::now();
        match prom.query("vector(1)", None).await {
            Err(e @ PromError::Unauthorized { status: 401, .. }) => {
                let said = e.to_string();
                assert!(said.contains(says), "{said}");
                assert!(!said.contains("gauntlet-test-password"), "{said}");
            }
            other => panic!("expected a 401 refusal, got {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a refusal is not retried"
        );
        assert!(matches!(
            prom.ready().await,
            Err(PromError::Unauthorized { status: 401, .. })
        ));
    }
}
