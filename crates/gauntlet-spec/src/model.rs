//! The spec as written: `gauntlet.yaml`, schema version 1. Every struct rejects unknown
//! fields so a typo is an error with a suggestion, never a silently ignored setting.
//! Defaults live here too, so `gauntlet schema` documents them.

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::units::{Duration, Percent, Rate};

/// The versions of the spec format this build understands.
pub const SCHEMA_VERSIONS: &[u32] = &[1];

/// A whole `gauntlet.yaml`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Version of this file's format; this build knows version 1.
    #[schemars(with = "u32")]
    pub schema_version: Spanned<u32>,
    /// The service being released.
    pub service: Service,
    /// The systems under test: the candidate, and the baseline it is compared with.
    pub targets: Targets,
    /// Named upstreams the service calls; gauntlet launches them when given a command.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Launch>")]
    pub dependencies: BTreeMap<String, Spanned<Launch>>,
    /// The requests gauntlet sends when a step needs traffic.
    pub traffic: Traffic,
    /// Service level objectives the release must keep.
    #[serde(default)]
    pub slos: Slos,
    /// Per-step configuration; a step that is absent does not run.
    #[serde(default)]
    pub steps: Steps,
    /// How failures turn into a decision.
    #[serde(default)]
    pub gating: Gating,
    /// What is locked and signed: protected files, flags, SBOM, artifacts.
    #[serde(default)]
    pub trust: Option<crate::trust::TrustSection>,
    /// Roles whose sign-off a GO needs.
    #[serde(default)]
    pub signoffs: Option<crate::trust::SignoffSection>,
    /// The Prometheus server PromQL gates read from.
    #[serde(default)]
    pub prometheus: Option<crate::prometheus::PrometheusSection>,
    /// GA gates over metrics: critical ones decide alone, the rest add up to a score.
    #[serde(default)]
    pub gates: Option<crate::steps::gates::GatesSection>,
    /// The production-readiness checklist, with waivers.
    #[serde(default)]
    pub readiness: Option<crate::steps::readiness::ReadinessSection>,
    /// Remediation hints for the failure taxonomy, tried before the built-in ones.
    #[serde(default)]
    pub taxonomy: Option<TaxonomySection>,
    /// Named selections of steps (`gauntlet run --profile smoke`), e.g. a smoke profile to
    /// repeat many times (`--repeat 10 --min-success 70%`).
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    /// The longest the whole run may take (default 2h, at most 7d). Validation refuses a spec
    /// whose own timeouts and durations could run longer; a run that reaches it stops there,
    /// ABORTED, with everything undone.
    #[serde(default)]
    pub timeout: Option<crate::units::Duration>,
    /// Variables of gauntlet's own environment every process it starts receives (systems,
    /// hooks, probes, backups), by name. Nothing else is inherited but the basics (PATH, HOME,
    /// locale, time zone, temp dir, user), and gauntlet's own secrets never.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub pass_env: Vec<Spanned<String>>,
    /// For AI services: where an answer reports its tokens and model, and each model's price
    /// per million tokens. The quality step measures tokens and cost per answer from it, and
    /// probes with `max_cost` hold each answer's cost under a cap.
    #[serde(default)]
    pub usage: Option<crate::usage::Usage>,
    /// Named procedures executed and timed (the rollback rehearsal runs one with `runbook:`).
    #[serde(default)]
    pub runbooks: BTreeMap<String, crate::runbook::Runbook>,
    /// The incident timeline's bounds (MTTA, MTTR) and the unattended responder.
    #[serde(default)]
    pub incident: crate::incident::Incident,
    /// The gameday report's policy: action items' due dates, and the scenarios it must cover.
    #[serde(default)]
    pub gameday: crate::gameday::GamedaySection,
}

/// Gauntlet's own secrets: never in a child's environment, whatever a spec asks.
pub const SECRET_ENV: &[&str] = &[
    "GAUNTLET_SIGNING_KEY",
    "GAUNTLET_KEY_PASSWORD",
    "GAUNTLET_PROMETHEUS_TOKEN",
    "GAUNTLET_PROMETHEUS_USER",
    "GAUNTLET_PROMETHEUS_PASSWORD",
];

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: String,
    pub version: String,
    /// Who answers for what, by role: `sre: alice@example.com`. Conditions name these owners.
    #[serde(default)]
    pub owners: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// The version running today, if the steps should compare against it.
    #[serde(default)]
    #[schemars(with = "Option<Launch>")]
    pub baseline: Option<Spanned<Launch>>,
    /// The version that wants to ship.
    #[schemars(with = "Launch")]
    pub candidate: Spanned<Launch>,
}

/// Where a system is reached, and how gauntlet starts it when it is not already running.
///
/// Strings may use placeholders: `{port}` (a free loopback port gauntlet picks), `{dir}` (a
/// working directory of its own under the run directory), `{gauntlet}` (this gauntlet binary),
/// and `{dependencies.NAME.url}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Launch {
    /// Base URL, e.g. `http://127.0.0.1:8080`. Defaults to `http://127.0.0.1:{port}` with a command.
    #[serde(default)]
    pub url: Option<String>,
    /// Program and arguments to start; gauntlet owns the process and stops it afterwards.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Environment for the command: these values, on top of the basics and `pass_env`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables of gauntlet's own environment this command receives, by name (besides the
    /// spec's top-level `pass_env`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub pass_env: Vec<Spanned<String>>,
    /// Path that answers 2xx once the system is ready.
    #[serde(default = "default_health")]
    pub health: String,
    /// How long to wait for the health path before giving up (the run is then inconclusive).
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout: Duration,
}

fn default_health() -> String {
    "/healthz".into()
}
fn default_ready_timeout() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// Requests per unit of time, e.g. `200/s`.
    pub rate: Rate,
    /// The weighted mix of requests.
    #[schemars(with = "Vec<Request>")]
    pub requests: Spanned<Vec<Request>>,
}

/// One HTTP request. `{token}` in a body is replaced by the probe value where a step says so.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default = "default_method")]
    pub method: Method,
    /// Path and query, starting with `/`.
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Relative share of this request in the traffic mix.
    #[serde(default = "default_weight")]
    #[schemars(with = "u32", range(min = 1))]
    pub weight: NonZeroU32,
}

fn default_method() -> Method {
    Method::Get
}
fn default_weight() -> NonZeroU32 {
    NonZeroU32::MIN
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slos {
    #[serde(default)]
    pub availability: Option<AvailabilitySlo>,
    #[serde(default)]
    pub latency: Option<LatencySlo>,
    /// SLOs written in OpenSLO v1 (files relative to the spec): gauntlet makes their
    /// multi-window, multi-burn-rate alert rules, checks them with promtool, and has the
    /// run's Prometheus load them.
    #[serde(default)]
    pub openslo: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilitySlo {
    /// Share of good requests, e.g. `99.9%`.
    pub objective: Percent,
    #[serde(default = "default_slo_window")]
    pub window: Duration,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencySlo {
    /// Which percentile, e.g. `99%`.
    pub percentile: Percent,
    /// The bound that percentile must stay under, e.g. `300ms`.
    pub threshold: Duration,
    #[serde(default = "default_slo_window")]
    pub window: Duration,
}

fn default_slo_window() -> Duration {
    Duration::from_secs(28 * 86_400)
}

/// One section per step that exists in this version, in pipeline order.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Steps {
    #[serde(default)]
    pub preflight: Option<crate::steps::preflight::PreflightStep>,
    #[serde(default)]
    pub rollback_rehearsal: Option<crate::steps::rehearsal::RehearsalStep>,
    #[serde(default)]
    pub chaos: Option<crate::steps::chaos::ChaosStep>,
    #[serde(default)]
    pub dr: Option<crate::steps::dr::DrStep>,
    #[serde(default)]
    pub rotation: Option<crate::steps::rotation::RotationStep>,
    #[serde(default)]
    pub security: Option<crate::steps::security::SecurityStep>,
    #[serde(default)]
    pub quality: Option<crate::steps::quality::QualityStep>,
    #[serde(default)]
    pub observability: Option<crate::steps::observability::ObservabilityStep>,
    #[serde(default)]
    pub canary: Option<crate::steps::canary::CanaryStep>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Hard,
    Soft,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gating {
    #[serde(default)]
    pub mode: GatingMode,
}

/// How gates are enforced, as release gates usually are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GatingMode {
    /// Hard failures are NO-GO and stop the pipeline.
    #[default]
    Hard,
    /// Every failure becomes a condition: at worst CONDITIONAL.
    Soft,
    /// Report only: the decision is computed and shown, the exit code is always 0.
    None,
}

impl GatingMode {
    /// As the spec spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            GatingMode::Hard => "hard",
            GatingMode::Soft => "soft",
            GatingMode::None => "none",
        }
    }
}

/// The failure taxonomy's hints: the first whose every given field matches a cause is shown
/// with it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxonomySection {
    #[serde(default)]
    pub hints: Vec<TaxonomyHint>,
}

/// A remediation hint and the causes it fits.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxonomyHint {
    /// A step name as reports spell it (`canary`, `chaos`, `rollback-rehearsal`, `gates`, ...).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub step: Option<Spanned<String>>,
    /// An HTTP status of failed requests.
    #[serde(default)]
    pub status: Option<u16>,
    /// A route prefix of failed requests (`/checkout`).
    #[serde(default)]
    pub route: Option<String>,
    /// An error class: `timeout`, `connection refused`, `connection reset`,
    /// `transport error`, `fail`, `inconclusive`.
    #[serde(default)]
    pub error: Option<String>,
    pub hint: String,
}

/// A named selection of steps: those in `only` (all when empty) minus those in `skip`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub only: Vec<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub skip: Vec<Spanned<String>>,
}

impl Profile {
    /// The steps it names (validation refused a spec with a name that is no step).
    pub fn steps(list: &[Spanned<String>]) -> Vec<crate::StepName> {
        list.iter().filter_map(|s| s.value.parse().ok()).collect()
    }
}
