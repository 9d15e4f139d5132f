//! Step 7, observability, as a spec writes it: the metric families that must exist, carry
//! their labels and move; the alert rule file and the alerts it must define; the dashboards
//! and what their panels must read. With its checks.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration as StdDuration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Section, StepName};
use crate::limits::MINUTE;
use crate::model::Severity;
use crate::plan::{Seed, StepMeta, StepPlan};
use crate::validate::{Context, Problems, quoted};

const AT: &str = "steps.observability";

/// Step 7: the candidate's metrics exist, carry the right labels, and move under traffic.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObservabilityStep {
    /// `hard`: a failure blocks the release; `soft`: a failure becomes a condition.
    #[serde(default)]
    pub severity: Severity,
    /// The role from `service.owners` that answers for this step's conditions.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
    /// Path of the Prometheus text endpoint on the candidate.
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// Requests from the traffic mix sent between the two scrapes.
    #[serde(default = "default_observability_requests")]
    #[schemars(with = "u32", range(min = 1, max = 100000))]
    pub requests: NonZeroU32,
    pub required: Vec<RequiredMetric>,
    /// The service's Prometheus alert rules: checked, and loaded by the run's Prometheus.
    #[serde(default)]
    pub alerts: Option<AlertRulesSpec>,
    /// Grafana dashboards (JSON models, relative to the spec) and what their panels must read.
    #[serde(default)]
    pub dashboards: Vec<DashboardSpec>,
}

/// A Grafana dashboard and the areas it must cover: each area names the metric families
/// that some panel's query must read (`slo: [http_requests]`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DashboardSpec {
    pub file: String,
    #[schemars(with = "BTreeMap<String, Vec<String>>")]
    pub covers: Spanned<BTreeMap<String, Vec<String>>>,
}

/// A Prometheus rule file (relative to the spec) and the alerts it must define.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRulesSpec {
    pub rules: String,
    #[serde(default)]
    pub required: Vec<String>,
}

fn default_metrics_path() -> String {
    "/metrics".into()
}

fn default_observability_requests() -> NonZeroU32 {
    NonZeroU32::new(50).unwrap_or(NonZeroU32::MIN)
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequiredMetric {
    /// Metric family name, e.g. `http_requests_total`.
    pub name: String,
    /// Labels every series of the family must carry.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Whether the family's value must change across the step's traffic.
    #[serde(default = "yes")]
    pub moves: bool,
}

fn yes() -> bool {
    true
}

impl Section for ObservabilityStep {
    fn step(&self) -> StepName {
        StepName::Observability
    }

    fn owner(&self) -> Option<&Spanned<String>> {
        self.owner.as_ref()
    }

    fn check(&self, _cx: &Context<'_>, p: &mut Problems<'_>) {
        if let Some(alerts) = &self.alerts {
            p.project_file(&format!("{AT}.alerts.rules"), &alerts.rules);
        }
        for (i, dashboard) in self.dashboards.iter().enumerate() {
            let at = format!("{AT}.dashboards[{i}]");
            p.project_file(&format!("{at}.file"), &dashboard.file);
            let covers = &dashboard.covers;
            let file = quoted(&dashboard.file);
            if covers.value.is_empty() {
                p.at(
                    covers.referenced,
                    format!("dashboard `{file}` covers nothing"),
                    Some("e.g. `covers: {slo: [http_requests], canary: [http_request_duration_seconds]}`".into()),
                );
            }
            for (area, metrics) in &covers.value {
                if metrics.is_empty() {
                    p.key(
                        &format!("{at}.covers.{area}"),
                        format!(
                            "dashboard `{file}`: area `{}` names no metric",
                            quoted(area)
                        ),
                        Some("list the metric families its panels must read".into()),
                    );
                }
            }
        }
        p.count(
            &format!("{AT}.requests"),
            u64::from(self.requests.get()),
            100_000,
        );
    }

    fn worst_case(&self, cx: &Context<'_>) -> Vec<(String, StdDuration)> {
        let seconds = f64::from(self.requests.get()) / cx.spec.traffic.rate.per_second();
        vec![(
            "observability".to_string(),
            StdDuration::from_secs_f64(seconds.clamp(0.0, 1e9)) + MINUTE,
        )]
    }

    fn plan(&self, _cx: &Context<'_>, _seed: Seed) -> Result<StepPlan, String> {
        Ok(StepPlan::Observability(ObservabilityPlan {
            meta: StepMeta::new(StepName::Observability, self.severity, self.owner.as_ref()),
            metrics_path: self.metrics_path.clone(),
            requests: self.requests.get(),
            required: self.required.clone(),
            alerts: self.alerts.clone(),
            dashboards: self
                .dashboards
                .iter()
                .map(|d| Dashboard {
                    file: d.file.clone(),
                    covers: d.covers.value.clone(),
                })
                .collect(),
        }))
    }
}

/// The observability checks as a run makes them.
#[derive(Debug, Clone)]
pub struct ObservabilityPlan {
    pub meta: StepMeta,
    pub metrics_path: String,
    /// Requests from the traffic mix sent between the two scrapes.
    pub requests: u32,
    pub required: Vec<RequiredMetric>,
    pub alerts: Option<AlertRulesSpec>,
    pub dashboards: Vec<Dashboard>,
}

/// A dashboard (relative to the spec) and the metric families each area's panels must read.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub file: String,
    pub covers: BTreeMap<String, Vec<String>>,
}
