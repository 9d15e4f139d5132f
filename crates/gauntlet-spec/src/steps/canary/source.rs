//! Where a canary's observations come from when gauntlet does not move the traffic: the
//! traffic a controller (Argo Rollouts, Flagger) moved, counted per arm by Prometheus (or
//! Thanos, Mimir, Cortex: the same query API).

use std::time::Duration as StdDuration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::limits::MINUTE;
use crate::units::Duration;
use crate::validate::{Problems, quoted};

/// `source: {prometheus: …}`: the canary judges the counts Prometheus holds instead of
/// driving its own traffic through a split.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanarySource {
    pub prometheus: PrometheusSource,
}

/// Instant PromQL queries, each returning one series: a running total (a counter, or a sum
/// of counters). `$arm` in a query stands for the arm's label value (`arms`). Increments
/// between two polls are the requests the judges see; a series that is missing, a partial
/// answer or a total that goes down (a counter reset) make the stage inconclusive.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSource {
    /// The query API's base, e.g. `http://prometheus.monitoring:9090`.
    pub url: String,
    /// Sent as `X-Scope-OrgID` (Mimir, Cortex, Thanos with tenancy).
    #[serde(default)]
    pub tenant: Option<String>,
    /// How often the totals are read.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// Requests served, e.g. `sum(http_requests_total{version="$arm"})`.
    pub requests: String,
    /// Requests that failed, e.g. `sum(http_requests_total{version="$arm",code=~"5.."}) or
    /// vector(0)` (`or vector(0)` says that no error series yet means none happened).
    pub errors: String,
    /// Answered requests that were too slow, from histogram buckets, e.g.
    /// `sum(rate_bucket_total…{le="+Inf"}) - sum(…{le="0.25"})`; counted as bad like an
    /// error. Count only successful requests here, or an error that was also slow counts
    /// twice.
    #[serde(default)]
    pub slow: Option<String>,
    /// The label value of each arm that `$arm` stands for.
    #[serde(default)]
    pub arms: ArmLabels,
}

fn default_interval() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArmLabels {
    #[serde(default = "baseline")]
    pub baseline: String,
    #[serde(default = "candidate")]
    pub candidate: String,
}

fn baseline() -> String {
    "baseline".into()
}

fn candidate() -> String {
    "candidate".into()
}

impl Default for ArmLabels {
    fn default() -> Self {
        Self {
            baseline: baseline(),
            candidate: candidate(),
        }
    }
}

/// One arm's queries, `$arm` replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmQueries {
    /// The arm's label value.
    pub label: String,
    pub requests: String,
    pub errors: String,
    pub slow: Option<String>,
}

/// The Prometheus source as a run reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusSourcePlan {
    pub url: String,
    pub tenant: Option<String>,
    pub interval: StdDuration,
    /// Baseline, then candidate.
    pub arms: [ArmQueries; 2],
}

impl PrometheusSource {
    pub(crate) fn check(&self, p: &mut Problems<'_>, at: &str) {
        if let Err(e) = crate::plan::http_url(&self.url) {
            p.key(
                &format!("{at}.url"),
                format!("`url` {}: {e}", quoted(&self.url)),
                Some("the query API's base, e.g. `http://prometheus.monitoring:9090`".into()),
            );
        }
        p.duration(&format!("{at}.interval"), self.interval, false, 10 * MINUTE);
        let labels = [
            ("baseline", &self.arms.baseline),
            ("candidate", &self.arms.candidate),
        ];
        for (arm, label) in labels {
            if label.is_empty() || label.contains(['"', '\\', '\n', '\r']) {
                p.key(
                    &format!("{at}.arms.{arm}"),
                    format!(
                        "the {arm} arm's label value {} cannot stand in a PromQL string",
                        quoted(label)
                    ),
                    Some("a label value without quotes, backslashes or line breaks".into()),
                );
            }
        }
        if self.arms.baseline == self.arms.candidate {
            p.key(
                &format!("{at}.arms"),
                "both arms have the same label value: the judges would compare a series with itself".into(),
                None,
            );
        }
        let queries = [
            ("requests", Some(&self.requests)),
            ("errors", Some(&self.errors)),
        ];
        for (name, query) in queries.into_iter().chain([("slow", self.slow.as_ref())]) {
            if let Some(query) = query {
                check_query(p, &format!("{at}.{name}"), name, query);
            }
        }
    }

    pub(crate) fn resolve(&self) -> PrometheusSourcePlan {
        let arm = |label: &str| ArmQueries {
            label: label.to_string(),
            requests: self.requests.replace("$arm", label),
            errors: self.errors.replace("$arm", label),
            slow: self.slow.as_ref().map(|q| q.replace("$arm", label)),
        };
        PrometheusSourcePlan {
            url: self.url.trim_end_matches('/').to_string(),
            tenant: self.tenant.clone(),
            interval: self.interval.as_std(),
            arms: [arm(&self.arms.baseline), arm(&self.arms.candidate)],
        }
    }
}

/// A query must name `$arm` (or both arms read one series) and be PromQL once it is replaced.
fn check_query(p: &mut Problems<'_>, at: &str, name: &str, query: &str) {
    if !query.contains("$arm") {
        p.key(
            at,
            format!(
                "the `{name}` query does not contain `$arm`: both arms would read the same series"
            ),
            Some(
                "select the arm by a label, e.g. `sum(http_requests_total{version=\"$arm\"})`"
                    .into(),
            ),
        );
        return;
    }
    if let Err(e) = promql_parser::parser::parse(&query.replace("$arm", "x")) {
        p.key(
            at,
            format!("the `{name}` query is not PromQL: {}", e.trim()),
            Some("an instant expression returning one series, e.g. `sum(http_requests_total{version=\"$arm\"})`".into()),
        );
    }
}
