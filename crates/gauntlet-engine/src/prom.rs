//! The run's own Prometheus (`prometheus: {start: true}`): Debian's `prometheus` started by
//! the supervisor on a free loopback port, scraping every system of the run (job = system
//! name), so PromQL gates read real scraped series. It is stopped with the other processes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use gauntlet_metrics::prometheus::{Auth, Prometheus};
use gauntlet_net::HttpClient;
use gauntlet_report::{Check, Outcome, Severity};
use gauntlet_spec::{Launch, PrometheusSection};

use crate::context::{Recorder, System};
use crate::decision::SETUP_STEP;
use crate::supervisor::{Placeholders, Supervisor, wait_ready};

/// The supervisor's name for the run's Prometheus.
const PROCESS: &str = "gauntlet-prometheus";

/// The scrape configuration: one job per system, scraped directly (not through a fault
/// proxy), with the run's scrape interval.
pub fn config(
    section: &PrometheusSection,
    systems: &BTreeMap<String, System>,
    rule_files: &[String],
    alertmanager: Option<&str>,
) -> String {
    let interval = section.scrape_interval.as_std().as_millis().max(100);
    let mut out = format!(
        "# Written by gauntlet for one run.\nglobal:\n  scrape_interval: {interval}ms\n  evaluation_interval: {interval}ms\n"
    );
    if !rule_files.is_empty() {
        out.push_str("rule_files:\n");
        for file in rule_files {
            out.push_str(&format!("  - {}\n", yaml_string(file)));
        }
    }
    if let Some(am) = alertmanager {
        out.push_str(&format!(
            "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [{}]\n",
            yaml_string(am)
        ));
    }
    out.push_str("scrape_configs:\n");
    for (name, system) in systems {
        let (scheme, authority) = match system.url.split_once("://") {
            Some((scheme, rest)) => (scheme, rest.split('/').next().unwrap_or(rest)),
            None => ("http", system.url.as_str()),
        };
        out.push_str(&format!(
            "  - job_name: {}\n    scheme: {}\n    metrics_path: {}\n    static_configs:\n      - targets: [{}]\n",
            yaml_string(name),
            yaml_string(scheme),
            yaml_string(&section.metrics_path),
            yaml_string(authority)
        ));
    }
    out
}

/// A double-quoted YAML scalar.
fn yaml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// Starts the run's Prometheus and waits until it is ready. The check says whether it came
/// up; without it, every PromQL gate is inconclusive.
pub async fn start(
    section: &PrometheusSection,
    run_dir: &Path,
    supervisor: &Mutex<Supervisor>,
    client: &HttpClient,
    recorder: &Recorder,
    systems: &BTreeMap<String, System>,
    rule_files: &[String],
) -> (Check, Option<String>) {
    let check = Check::new(SETUP_STEP, "prometheus ready", Severity::Hard)
        .threshold("the run's Prometheus answers /-/ready within 30s");
    // Named so that no system of the spec (a dependency called `prometheus`) can collide.
    let dir = run_dir.join("work").join(PROCESS);
    let config_path = dir.join("prometheus.yml");
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        gauntlet_report::write_atomic(
            &config_path,
            config(section, systems, rule_files, None).as_bytes(),
        )
    });
    if let Err(e) = written {
        return (
            check.outcome(
                Outcome::Inconclusive,
                format!("cannot write {}: {e}", config_path.display()),
            ),
            None,
        );
    }
    let launch = Launch {
        url: None,
        command: Some(vec![
            section.binary.clone(),
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            "--web.listen-address=127.0.0.1:{port}".into(),
            "--log.level=warn".into(),
        ]),
        env: BTreeMap::new(),
        health: "/-/ready".into(),
        ready_timeout: gauntlet_spec::units::Duration::from_secs(30),
    };
    let spawned = supervisor.lock().unwrap_or_else(|e| e.into_inner()).spawn(
        PROCESS,
        &launch,
        run_dir,
        &Placeholders::new(),
    );
    let endpoint = match spawned {
        Ok(endpoint) => endpoint,
        Err(e) => {
            let hint = if which(&section.binary) {
                String::new()
            } else {
                format!(
                    " (`{}` is not installed: `apt-get install prometheus` on Debian)",
                    section.binary
                )
            };
            return (
                check.outcome(Outcome::Inconclusive, format!("{e}{hint}")),
                None,
            );
        }
    };
    match wait_ready(
        supervisor,
        client,
        &endpoint,
        "/-/ready",
        std::time::Duration::from_secs(30),
    )
    .await
    {
        Ok(after) => {
            recorder.event(
                Some(SETUP_STEP),
                "prometheus",
                format!(
                    "Prometheus at {} scraping {} system(s) every {}",
                    endpoint.url,
                    systems.len(),
                    section.scrape_interval
                ),
            );
            (
                check
                    .measured(format!("ready after {:.2}s", after.as_secs_f64()))
                    .outcome(
                        Outcome::Pass,
                        format!("Prometheus answered at {}", endpoint.url),
                    ),
                Some(endpoint.url),
            )
        }
        Err(e) => (check.outcome(Outcome::Inconclusive, e.to_string()), None),
    }
}

/// Whether `program` is on the PATH (or is a path that exists).
pub fn which(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// A client for the spec's Prometheus: its timeout, bounded retries with backoff, and
/// credentials from the environment.
pub fn client(url: &str, section: &PrometheusSection) -> Prometheus {
    Prometheus::new(url, section.timeout.as_std())
        .with_retries(
            section.retries.max(1),
            std::time::Duration::from_millis(200),
        )
        .with_auth(Auth::from_env())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrape_config_names_every_system_and_quotes_what_it_writes() {
        let section: PrometheusSection =
            serde_saphyr::from_str("start: true\nscrape_interval: 2s\n").unwrap();
        let systems = BTreeMap::from([
            (
                "candidate".to_string(),
                System {
                    url: "http://127.0.0.1:4100".into(),
                    proxy: None,
                },
            ),
            (
                "odd: name".to_string(),
                System {
                    url: "https://[::1]:9/x".into(),
                    proxy: None,
                },
            ),
        ]);
        let text = config(
            &section,
            &systems,
            &["/r/a b.yml".into()],
            Some("127.0.0.1:9093"),
        );
        assert!(text.contains("scrape_interval: 2000ms"), "{text}");
        assert!(text.contains("job_name: \"candidate\""), "{text}");
        assert!(text.contains("targets: [\"127.0.0.1:4100\"]"), "{text}");
        assert!(text.contains("job_name: \"odd: name\""), "{text}");
        assert!(text.contains("scheme: \"https\""), "{text}");
        assert!(text.contains("targets: [\"[::1]:9\"]"), "{text}");
        assert!(text.contains("- \"/r/a b.yml\""), "{text}");
        assert!(text.contains("targets: [\"127.0.0.1:9093\"]"), "{text}");
    }
}
