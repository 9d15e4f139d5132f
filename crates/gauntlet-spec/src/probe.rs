//! Probes (an HTTP request, a scraped metric, a command) and what drills wait for: the
//! steady-state hypothesis a chaos drill holds to, and the alerts a drill or the rehearsal
//! expects to fire.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::diagnostic::did_you_mean;
use crate::limits::MINUTE;
use crate::model::Method;
use crate::units::{Duration, Percent};
use crate::validate::{Context, Problems, quoted};

/// Probes that must pass for the system to count as working.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hypothesis {
    pub probes: Vec<Probe>,
    /// How long it must hold before the fault goes in (else the drill is inconclusive).
    #[serde(default = "one_second")]
    pub before: Duration,
    /// After the fault is removed, it must hold again within this.
    #[serde(default = "ten_seconds")]
    pub after: Duration,
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

/// One probe: exactly one of `http`, `metric` or `command`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub name: String,
    #[serde(default)]
    pub http: Option<HttpProbe>,
    #[serde(default)]
    pub metric: Option<MetricProbe>,
    #[serde(default)]
    pub command: Option<CommandProbe>,
    /// Share of this probe's results in a phase that must pass (a steady state), or that is
    /// enough once (a side effect needs one pass).
    #[serde(default = "all_of_them")]
    pub tolerance: Percent,
}

fn all_of_them() -> Percent {
    Percent::from_ratio("100%", 1.0)
}

/// An HTTP request to the candidate and what its answer must be.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    #[serde(default = "get")]
    pub method: Method,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Accepted statuses (default: any 2xx).
    #[serde(default)]
    pub status: Vec<u16>,
    /// The answer must come within this.
    #[serde(default)]
    pub within: Option<Duration>,
    /// The body must contain this text.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// The answer's cost (its tokens at its model's price, from the spec's `usage`) must not
    /// exceed this, in the prices' currency: a failover must not blow the budget.
    #[serde(default)]
    pub max_cost: Option<f64>,
}

fn get() -> Method {
    Method::Get
}

/// A value scraped from the candidate's Prometheus endpoint (summed over matching series).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricProbe {
    #[serde(default = "metrics_path")]
    pub path: String,
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Compare the increase since the phase began rather than the value.
    #[serde(default)]
    pub increase: bool,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
}

fn metrics_path() -> String {
    "/metrics".into()
}

/// A command whose exit code decides.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandProbe {
    pub run: Vec<String>,
    #[serde(default)]
    pub exit: i32,
    #[serde(default = "five_seconds")]
    pub timeout: Duration,
}

fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedAlert {
    /// The alert's name (`alert:` in the rule file).
    pub name: String,
    #[serde(default = "thirty_seconds")]
    pub within: Duration,
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

impl Hypothesis {
    pub(crate) fn check(&self, p: &mut Problems<'_>, path: &str, what: &str) {
        p.duration(&format!("{path}.before"), self.before, true, 10 * MINUTE);
        p.duration(&format!("{path}.after"), self.after, false, 30 * MINUTE);
        check_probes(p, &format!("{path}.probes"), what, &self.probes);
    }
}

/// The probes at `path` (a list): each has exactly one kind, and what that kind needs.
pub(crate) fn check_probes(p: &mut Problems<'_>, path: &str, what: &str, probes: &[Probe]) {
    for (i, probe) in probes.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let name = quoted(&probe.name);
        let kinds = [
            probe.http.is_some(),
            probe.metric.is_some(),
            probe.command.is_some(),
        ]
        .iter()
        .filter(|k| **k)
        .count();
        if kinds != 1 {
            p.key(
                &at,
                format!(
                    "{what}: probe `{name}` needs exactly one of `http`, `metric` or `command`"
                ),
                Some(
                    "e.g. `{name: up, http: {path: /healthz, status: [200], within: 500ms}}`"
                        .into(),
                ),
            );
        }
        if let Some(http) = &probe.http {
            if !http.path.starts_with('/') {
                p.key(
                    &format!("{at}.http.path"),
                    format!(
                        "{what}: probe `{name}` path `{}` does not start with `/`",
                        quoted(&http.path)
                    ),
                    None,
                );
            }
            if let Some(within) = http.within {
                p.duration(&format!("{at}.http.within"), within, false, 10 * MINUTE);
            }
        }
        if let Some(metric) = &probe.metric
            && metric.min.is_none()
            && metric.max.is_none()
        {
            p.key(
                &format!("{at}.metric"),
                format!("{what}: metric probe `{name}` has neither `min` nor `max`"),
                Some("e.g. `{name: errors_total, increase: true, max: 0}`".into()),
            );
        }
        if let Some(command) = &probe.command {
            if command.run.is_empty() {
                p.key(
                    &format!("{at}.command.run"),
                    format!("{what}: command probe `{name}` has an empty `run`"),
                    None,
                );
            }
            p.duration(
                &format!("{at}.command.timeout"),
                command.timeout,
                false,
                10 * MINUTE,
            );
        }
    }
}

/// Alerts a drill or the rehearsal waits for (at `path`, a list): something must deliver
/// them to gauntlet, and each must be one the observability step checks the rule file for.
pub(crate) fn check_expected_alerts(
    cx: &Context<'_>,
    p: &mut Problems<'_>,
    path: &str,
    what: &str,
    alerts: &[&ExpectedAlert],
) {
    let spec = cx.spec;
    let delivered = spec
        .prometheus
        .as_ref()
        .and_then(|p| p.alertmanager.as_ref())
        .is_some();
    if !alerts.is_empty() && !delivered {
        p.key(
            path,
            format!("{what} expects alerts, and nothing delivers them to gauntlet"),
            Some("add `prometheus: {start: true, alertmanager: {start: true}}` (or `alertmanager: {receiver: ADDRESS}` for an Alertmanager of your own)".into()),
        );
    }
    let required = spec
        .steps
        .observability
        .as_ref()
        .and_then(|o| o.alerts.as_ref())
        .map(|a| &a.required);
    for (i, alert) in alerts.iter().enumerate() {
        let at = format!("{path}[{i}]");
        p.duration(&format!("{at}.within"), alert.within, false, 30 * MINUTE);
        if let Some(required) = required
            && !required.contains(&alert.name)
        {
            p.key(
                &format!("{at}.name"),
                format!(
                    "{what} expects alert `{}`, which `steps.observability.alerts.required` does not list",
                    quoted(&alert.name)
                ),
                did_you_mean(&alert.name, required.iter().map(String::as_str))
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| Some("list it there, so the rule file is checked for it".into())),
            );
        }
    }
}
