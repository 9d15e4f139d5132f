//! The run's own Prometheus (`prometheus: {start: true}`): Debian's `prometheus` started by
//! the supervisor on a free loopback port, scraping every system of the run (job = system
//! name), so PromQL gates read real scraped series; and its Alertmanager, which notifies
//! gauntlet's webhook receiver. Both are stopped with the other processes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use gauntlet_metrics::prometheus::{Auth, Prometheus};
use gauntlet_net::HttpClient;
use gauntlet_report::{Check, Outcome, Severity};
use gauntlet_spec::{AlertmanagerSection, PrometheusSection};

use crate::context::{Recorder, System};
use crate::decision::SETUP_STEP;
use crate::supervisor::{Placeholders, Supervisor, wait_ready};

/// The supervisor's names for the run's Prometheus and Alertmanager.
const PROCESS: &str = "gauntlet-prometheus";
const ALERTMANAGER: &str = "gauntlet-alertmanager";

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
/// up; without it, every PromQL gate is inconclusive. `rule_files` are loaded, and their
/// alerts sent to `alertmanager` (`host:port`) when there is one.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    section: &PrometheusSection,
    run_dir: &Path,
    supervisor: &Mutex<Supervisor>,
    client: &HttpClient,
    recorder: &Recorder,
    systems: &BTreeMap<String, System>,
    rule_files: &[String],
    alertmanager: Option<&str>,
) -> (Check, Option<String>) {
    let check = Check::new(SETUP_STEP, "prometheus ready", Severity::Hard)
        .threshold("the run's Prometheus answers /-/ready within 30s");
    // Named so that no system of the spec (a dependency called `prometheus`) can collide.
    let dir = run_dir.join("work").join(PROCESS);
    let config_path = dir.join("prometheus.yml");
    let text = config(section, systems, rule_files, alertmanager);
    let args = vec![
        section.binary.clone(),
        format!("--config.file={}", config_path.display()),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        "--web.listen-address=127.0.0.1:{port}".into(),
        "--log.level=warn".into(),
    ];
    let started = serve(
        PROCESS,
        (&config_path, &text),
        args,
        "prometheus",
        (run_dir, supervisor, client),
    )
    .await;
    let started = match started {
        // Ready to answer is not enough: until every system has been scraped once, a
        // counter's first increase (a drill's first error) has nothing to rise from.
        Ok((url, after)) => {
            let waited = Instant::now();
            let probe = self::client(&url, section);
            let deadline = waited + std::time::Duration::from_secs(30);
            let mut last: String;
            loop {
                match probe.targets().await {
                    Ok(targets)
                        if targets.len() >= systems.len()
                            && targets.iter().all(|t| t.health != "unknown") =>
                    {
                        break Ok((url, after + waited.elapsed()));
                    }
                    Ok(targets) => {
                        last = format!(
                            "{} of {} target(s) scraped",
                            targets.iter().filter(|t| t.health != "unknown").count(),
                            systems.len()
                        );
                    }
                    Err(e) => last = e.to_string(),
                }
                if Instant::now() >= deadline {
                    break Err(format!("Prometheus at {url} is up, but within 30s {last}"));
                }
                // Prometheus has no way to announce a finished scrape: ask again shortly.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        Err(why) => Err(why),
    };
    match started {
        Ok((url, after)) => {
            recorder.event(
                Some(SETUP_STEP),
                "prometheus",
                format!(
                    "Prometheus at {url} scraping {} system(s) every {}{}",
                    systems.len(),
                    section.scrape_interval,
                    if rule_files.is_empty() {
                        String::new()
                    } else {
                        format!(", evaluating {} rule file(s)", rule_files.len())
                    }
                ),
            );
            (
                check
                    .measured(format!("ready after {:.2}s", after.as_secs_f64()))
                    .outcome(Outcome::Pass, format!("Prometheus answered at {url}")),
                Some(url),
            )
        }
        Err(why) => (check.outcome(Outcome::Inconclusive, why), None),
    }
}

/// Alertmanager's configuration for one run: every alert, grouped by name, to gauntlet's
/// receiver at once (and again when it resolves).
pub fn alertmanager_config(section: &AlertmanagerSection, receiver_url: &str) -> String {
    format!(
        "# Written by gauntlet for one run.
route:
  receiver: gauntlet
  group_by: [alertname]
  group_wait: {}ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: gauntlet
    webhook_configs:
      - url: {}
        send_resolved: true
",
        section.group_wait.as_std().as_millis(),
        yaml_string(receiver_url)
    )
}

/// Starts the run's Alertmanager, routed to `receiver_url`. Returns its `host:port` for
/// Prometheus's `alerting` section.
pub async fn start_alertmanager(
    section: &AlertmanagerSection,
    receiver_url: &str,
    run_dir: &Path,
    supervisor: &Mutex<Supervisor>,
    client: &HttpClient,
    recorder: &Recorder,
) -> (Check, Option<String>) {
    let check = Check::new(SETUP_STEP, "alertmanager ready", Severity::Hard)
        .threshold("the run's Alertmanager answers /-/ready within 30s");
    let dir = run_dir.join("work").join(ALERTMANAGER);
    let config_path = dir.join("alertmanager.yml");
    let text = alertmanager_config(section, receiver_url);
    let args = vec![
        section.binary.clone(),
        format!("--config.file={}", config_path.display()),
        format!("--storage.path={}", dir.join("data").display()),
        "--web.listen-address=127.0.0.1:{port}".into(),
        // No cluster: it would listen on every interface at 9094.
        "--cluster.listen-address=".into(),
        "--log.level=warn".into(),
    ];
    let started = serve(
        ALERTMANAGER,
        (&config_path, &text),
        args,
        "prometheus-alertmanager",
        (run_dir, supervisor, client),
    )
    .await;
    match started {
        Ok((url, after)) => {
            recorder.event(
                Some(SETUP_STEP),
                "alertmanager",
                format!("Alertmanager at {url} notifying gauntlet's receiver at {receiver_url}"),
            );
            let authority = url.trim_start_matches("http://").to_string();
            (
                check
                    .measured(format!("ready after {:.2}s", after.as_secs_f64()))
                    .outcome(Outcome::Pass, format!("Alertmanager answered at {url}")),
                Some(authority),
            )
        }
        Err(why) => (check.outcome(Outcome::Inconclusive, why), None),
    }
}

/// Writes a server's configuration, starts it under the supervisor on a free loopback port
/// and waits for `/-/ready`: its URL and how long it took, or why not (with the Debian
/// package to install when the binary is missing).
async fn serve(
    name: &str,
    (config_path, config): (&Path, &str),
    command: Vec<String>,
    package: &str,
    (run_dir, supervisor, client): (&Path, &Mutex<Supervisor>, &HttpClient),
) -> Result<(String, std::time::Duration), String> {
    let binary = command.first().cloned().unwrap_or_default();
    if let Some(dir) = config_path.parent() {
        std::fs::create_dir_all(dir)
            .and_then(|()| gauntlet_report::write_atomic(config_path, config.as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
    }
    let system = gauntlet_spec::System {
        health: "/-/ready".into(),
        ready_timeout: gauntlet_spec::units::Duration::from_secs(30),
        ..gauntlet_spec::System::process(name, command)
    };
    let spawned = supervisor.lock().unwrap_or_else(|e| e.into_inner()).spawn(
        &system,
        run_dir,
        &Placeholders::new(),
    );
    let endpoint = spawned.map_err(|e| {
        if which(&binary) {
            e.to_string()
        } else {
            format!("{e} (`{binary}` is not installed: `apt-get install {package}` on Debian)")
        }
    })?;
    let after = wait_ready(
        supervisor,
        client,
        &endpoint,
        "/-/ready",
        std::time::Duration::from_secs(30),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok((endpoint.url, after))
}

/// Starts gauntlet's webhook receiver where the spec says, or on a free loopback port.
pub async fn start_receiver(
    section: &AlertmanagerSection,
) -> (Check, Option<gauntlet_net::AlertReceiver>) {
    let check = Check::new(SETUP_STEP, "alert receiver listening", Severity::Hard)
        .threshold("gauntlet's Alertmanager webhook receiver is bound");
    let listen = section
        .receiver
        .as_deref()
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    match gauntlet_net::AlertReceiver::start(listen).await {
        Ok(receiver) => (
            check.outcome(
                Outcome::Pass,
                format!("notifications are recorded at {}", receiver.url()),
            ),
            Some(receiver),
        ),
        Err(e) => (
            check.outcome(
                Outcome::Inconclusive,
                format!("cannot listen on {listen}: {e}"),
            ),
            None,
        ),
    }
}

/// The spec's rule file as an absolute path, when gauntlet's own reader accepts it: a file
/// Prometheus would refuse would keep it from starting, and the observability step reports
/// why it is refused.
pub fn loadable_rules(plan: &gauntlet_spec::Plan, spec_path: &Path, run_dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    if let Some(path) = plan
        .alert_rules
        .as_ref()
        .and_then(|r| spec_file(spec_path, r).ok())
        && std::fs::read_to_string(&path)
            .is_ok_and(|text| gauntlet_metrics::rules::parse_rules(&text).is_ok())
    {
        files.push(path.display().to_string());
    }
    if let Ok(Some((path, _))) = slo_rules(plan, spec_path, run_dir) {
        files.push(path.display().to_string());
    }
    files
}

/// The burn-rate rule file made from the spec's OpenSLO files (`slos.openslo`), written into
/// the run directory, with the SLOs it covers; `None` without OpenSLO files.
pub fn slo_rules(
    plan: &gauntlet_spec::Plan,
    spec_path: &Path,
    run_dir: &Path,
) -> Result<Option<(std::path::PathBuf, Vec<gauntlet_metrics::openslo::Slo>)>, String> {
    if plan.slos.openslo.is_empty() {
        return Ok(None);
    }
    let mut slos = Vec::new();
    for file in &plan.slos.openslo {
        let path = spec_file(spec_path, file).map_err(|e| format!("{file}: {e}"))?;
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{file}: {e}"))?;
        slos.extend(gauntlet_metrics::openslo::read(&text, file).map_err(|e| e.to_string())?);
    }
    let path = run_dir.join(SLO_RULES);
    let rules = gauntlet_metrics::openslo::burn_rate_rules(&slos);
    gauntlet_report::write_atomic(&path, rules.as_bytes()).map_err(|e| e.to_string())?;
    Ok(Some((path, slos)))
}

/// Where a run writes the burn-rate rules it made from OpenSLO.
pub const SLO_RULES: &str = "slo-burn-rate.rules.yml";

/// A file the spec names, relative to the spec's directory and resolved inside it (a path or
/// a symbolic link that leads outside is refused, never read).
pub fn spec_file(
    spec_path: &Path,
    rel: &str,
) -> Result<std::path::PathBuf, gauntlet_spec::ProjectPathError> {
    let dir = spec_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    gauntlet_spec::resolve_in(dir, rel)
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
                    twin: None,
                },
            ),
            (
                "odd: name".to_string(),
                System {
                    url: "https://[::1]:9/x".into(),
                    proxy: None,
                    twin: None,
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
