//! The Prometheus a run reads PromQL gates from (one already running, or one gauntlet starts
//! for the run) and the Alertmanager that brings its alerts to gauntlet; with their checks.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::limits::MINUTE;
use crate::units::Duration;
use crate::validate::{Problems, quoted};

/// Where PromQL gates are evaluated: a server that already scrapes the systems (`url`), or
/// one gauntlet starts for the run (`start: true`, Debian's `prometheus` binary) that scrapes
/// every system of the run on its own loopback port.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSection {
    /// An existing server, e.g. `http://127.0.0.1:9090`. Credentials come from
    /// `GAUNTLET_PROMETHEUS_TOKEN` or `GAUNTLET_PROMETHEUS_USER`/`_PASSWORD`.
    #[serde(default)]
    pub url: Option<String>,
    /// Start a Prometheus for this run, scraping the systems under test (job = system name).
    #[serde(default)]
    pub start: bool,
    /// The binary to start.
    #[serde(default = "default_binary")]
    pub binary: String,
    #[serde(default = "default_scrape_interval")]
    pub scrape_interval: Duration,
    /// The path scraped on every system.
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// Per query; a query that times out after the retries is inconclusive.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Where the alerts of the rule files go: an Alertmanager that notifies gauntlet's own
    /// webhook receiver, so chaos drills can measure the time from a fault to the page.
    #[serde(default)]
    pub alertmanager: Option<AlertmanagerSection>,
}

/// Alert delivery for the run. `start: true` starts Debian's `prometheus-alertmanager` on a
/// free loopback port with one route, to gauntlet's receiver; the run's Prometheus sends it
/// its alerts. With an Alertmanager of your own, give `receiver:` a fixed address and point
/// a `webhook_configs` URL at `http://ADDRESS/alerts`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerSection {
    #[serde(default)]
    pub start: bool,
    #[serde(default = "default_alertmanager_binary")]
    pub binary: String,
    /// Where gauntlet's webhook receiver listens, e.g. `127.0.0.1:9095` (default: a free
    /// loopback port, which only an Alertmanager gauntlet starts can know).
    #[serde(default)]
    pub receiver: Option<String>,
    /// Alertmanager's `group_wait`: how long it holds a new alert group before notifying.
    #[serde(default = "default_group_wait")]
    pub group_wait: Duration,
}

fn default_alertmanager_binary() -> String {
    "prometheus-alertmanager".into()
}

fn default_group_wait() -> Duration {
    Duration::from_secs(0)
}

fn default_binary() -> String {
    "prometheus".into()
}

fn default_scrape_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_metrics_path() -> String {
    "/metrics".into()
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_retries() -> u32 {
    3
}

impl PrometheusSection {
    pub(crate) fn check(&self, p: &mut Problems<'_>) {
        if self.url.is_some() == self.start {
            p.key(
                "prometheus",
                "`prometheus` needs exactly one of `url:` (a server that already scrapes the systems) and `start: true`".into(),
                Some("write `prometheus: {start: true}` to have gauntlet start one for the run".into()),
            );
        }
        if let Some(url) = &self.url
            && let Err(why) = crate::plan::http_url(url)
        {
            p.key(
                "prometheus.url",
                format!("`prometheus.url` is `{}`: {why}", quoted(url)),
                Some("e.g. `http://127.0.0.1:9090`".into()),
            );
        }
        p.duration("prometheus.timeout", self.timeout, false, 5 * MINUTE);
        p.count("prometheus.retries", u64::from(self.retries), 10);
        if self.scrape_interval.as_std() < std::time::Duration::from_millis(100) {
            p.key(
                "prometheus.scrape_interval",
                format!("`scrape_interval` is {}: below 100ms", self.scrape_interval),
                Some("at least `100ms`".into()),
            );
        } else {
            p.duration(
                "prometheus.scrape_interval",
                self.scrape_interval,
                false,
                MINUTE,
            );
        }
        let Some(am) = &self.alertmanager else {
            return;
        };
        if am.start == am.receiver.is_some() {
            p.key(
                "prometheus.alertmanager",
                "`prometheus.alertmanager` needs exactly one of `start: true` and `receiver: ADDRESS`".into(),
                Some("`start: true` runs Debian's prometheus-alertmanager for the run, routed to gauntlet".into()),
            );
        }
        if let Some(receiver) = &am.receiver
            && receiver.parse::<std::net::SocketAddr>().is_err()
        {
            p.key(
                "prometheus.alertmanager.receiver",
                format!(
                    "`prometheus.alertmanager.receiver` `{}` is not an address",
                    quoted(receiver)
                ),
                Some("e.g. `127.0.0.1:9095`".into()),
            );
        }
        if am.start && !self.start {
            p.key(
                "prometheus.alertmanager.start",
                "`prometheus.alertmanager.start` needs the run's own Prometheus (`prometheus.start: true`) to send it alerts".into(),
                Some("with `prometheus.url`, route your Alertmanager to `alertmanager.receiver`".into()),
            );
        }
        p.duration(
            "prometheus.alertmanager.group_wait",
            am.group_wait,
            true,
            5 * MINUTE,
        );
    }
}
