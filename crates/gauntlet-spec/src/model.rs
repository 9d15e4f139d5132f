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
#[derive(Debug, Deserialize, JsonSchema)]
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
    pub prometheus: Option<crate::review::PrometheusSection>,
    /// GA gates over metrics: critical ones decide alone, the rest add up to a score.
    #[serde(default)]
    pub gates: Option<crate::review::GatesSection>,
    /// The production-readiness checklist, with waivers.
    #[serde(default)]
    pub readiness: Option<crate::review::ReadinessSection>,
    /// Remediation hints for the failure taxonomy, tried before the built-in ones.
    #[serde(default)]
    pub taxonomy: Option<crate::review::TaxonomySection>,
    /// Named selections of steps (`gauntlet run --profile smoke`), e.g. a smoke profile to
    /// repeat many times (`--repeat 10 --min-success 70%`).
    #[serde(default)]
    pub profiles: BTreeMap<String, crate::review::Profile>,
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
}

/// Gauntlet's own secrets: never in a child's environment, whatever a spec asks.
pub const SECRET_ENV: &[&str] = &[
    "GAUNTLET_SIGNING_KEY",
    "GAUNTLET_KEY_PASSWORD",
    "GAUNTLET_PROMETHEUS_TOKEN",
    "GAUNTLET_PROMETHEUS_USER",
    "GAUNTLET_PROMETHEUS_PASSWORD",
];

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: String,
    pub version: String,
    /// Who answers for what, by role: `sre: alice@example.com`. Conditions name these owners.
    #[serde(default)]
    pub owners: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
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

#[derive(Debug, Deserialize, JsonSchema)]
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

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slos {
    #[serde(default)]
    pub availability: Option<AvailabilitySlo>,
    #[serde(default)]
    pub latency: Option<LatencySlo>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilitySlo {
    /// Share of good requests, e.g. `99.9%`.
    pub objective: Percent,
    #[serde(default = "default_slo_window")]
    pub window: Duration,
}

#[derive(Debug, Deserialize, JsonSchema)]
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
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Steps {
    #[serde(default)]
    pub preflight: Option<crate::trust::PreflightStep>,
    #[serde(default)]
    pub rollback_rehearsal: Option<RehearsalStep>,
    #[serde(default)]
    pub chaos: Option<crate::drills::ChaosStep>,
    #[serde(default)]
    pub dr: Option<crate::drills::DrStep>,
    #[serde(default)]
    pub rotation: Option<crate::trust::RotationStep>,
    #[serde(default)]
    pub security: Option<SecurityStep>,
    #[serde(default)]
    pub observability: Option<ObservabilityStep>,
    #[serde(default)]
    pub canary: Option<CanaryStep>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Hard,
    Soft,
}

/// Step 6: abuse probes that the candidate must refuse.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityStep {
    /// `hard`: a failure blocks the release; `soft`: a failure becomes a condition.
    #[serde(default)]
    pub severity: Severity,
    /// The role from `service.owners` that answers for this step's conditions.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
    /// Requests that need credentials: sent with them they must succeed, without them they
    /// must be refused with 401 or 403.
    #[serde(default)]
    pub auth: Option<AuthProbe>,
    /// A burst past the rate limit must be answered with 429.
    #[serde(default)]
    pub rate_limit: Option<RateLimitProbe>,
    /// Paths outside the allow-list, traversal forms included, must never answer 2xx.
    #[serde(default)]
    pub paths: Option<PathProbe>,
    /// Bodies carrying prompt-control tokens must be refused.
    #[serde(default)]
    pub control_tokens: Option<ControlTokenProbe>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthProbe {
    pub requests: Vec<Request>,
    /// Headers that carry credentials; removed for the unauthenticated attempt.
    #[serde(default = "default_credential_headers")]
    pub credential_headers: Vec<String>,
}

fn default_credential_headers() -> Vec<String> {
    vec!["authorization".into(), "x-api-key".into(), "cookie".into()]
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitProbe {
    pub request: Request,
    /// A 429 must arrive within this many requests.
    #[serde(default = "default_burst_within")]
    #[schemars(with = "u32", range(min = 1, max = 100000))]
    pub within: NonZeroU32,
    /// Requests in flight at once during the burst.
    #[serde(default = "default_burst_concurrency")]
    #[schemars(with = "u32", range(min = 1, max = 256))]
    pub concurrency: NonZeroU32,
    /// The rate the service should limit at. Unless the burst outpaces it at least twice
    /// over, the absence of a 429 proves nothing and the probe is inconclusive, not failed.
    #[serde(default)]
    pub limit: Option<Rate>,
    /// The longest the burst may run.
    #[serde(default = "default_burst_duration")]
    pub max_duration: Duration,
}

fn default_burst_duration() -> Duration {
    Duration::from_secs(10)
}

fn default_burst_within() -> NonZeroU32 {
    NonZeroU32::new(500).unwrap_or(NonZeroU32::MIN)
}
fn default_burst_concurrency() -> NonZeroU32 {
    NonZeroU32::new(16).unwrap_or(NonZeroU32::MIN)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PathProbe {
    /// Paths to try; defaults to common traversal and admin paths.
    #[serde(default = "default_path_probes")]
    pub probes: Vec<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Traversal in plain, encoded and double-encoded forms, and paths that are often left open.
pub fn default_path_probes() -> Vec<String> {
    [
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "/%252e%252e/%252e%252e/etc/passwd",
        "/..;/..;/etc/passwd",
        "/.env",
        "/.git/config",
        "/admin",
        "/debug/pprof/",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlTokenProbe {
    /// The request to send; `{token}` in its body is replaced by each token. With the
    /// benign `control_value` instead it must succeed, or the probe proves nothing.
    pub request: Request,
    pub tokens: Vec<String>,
    #[serde(default = "default_control_value")]
    pub control_value: String,
}

fn default_control_value() -> String {
    "gauntlet probe".into()
}

/// Step 7: the candidate's metrics exist, carry the right labels, and move under traffic.
#[derive(Debug, Deserialize, JsonSchema)]
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
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DashboardSpec {
    pub file: String,
    #[schemars(with = "BTreeMap<String, Vec<String>>")]
    pub covers: Spanned<BTreeMap<String, Vec<String>>>,
}

/// A Prometheus rule file (relative to the spec) and the alerts it must define.
#[derive(Debug, Deserialize, JsonSchema)]
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

#[derive(Debug, Deserialize, JsonSchema)]
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

#[derive(Debug, Default, Deserialize, JsonSchema)]
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

/// Step 8: the statistical canary. Traffic goes through gauntlet's split in front of the
/// baseline and the candidate; at each stage the judges run continuously; any reject or
/// abort trigger rolls back at once, acceptance moves to the next stage early.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryStep {
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
    /// Request rate through the split; defaults to `traffic.rate`.
    #[serde(default)]
    pub rate: Option<Rate>,
    /// Connections the load generator keeps open.
    #[serde(default = "default_connections")]
    #[schemars(with = "u32", range(min = 1, max = 1024))]
    pub connections: NonZeroU32,
    /// Header whose value keeps a client on one arm (sticky sessions); none by default.
    #[serde(default)]
    pub sticky_header: Option<String>,
    /// Path prefixes whose requests a shadow stage may mirror to the candidate. Only GET and
    /// HEAD are ever mirrored, whatever this says; without it, every GET and HEAD is.
    #[serde(default)]
    pub mirror: Option<Vec<String>>,
    /// In order, e.g. shadow, 10%, 50%, 100%. A 100% stage is the promotion.
    #[schemars(with = "Vec<Stage>")]
    pub stages: Spanned<Vec<Stage>>,
    pub judges: Judges,
    /// False-alarm rate of the whole canary, shared among the gating judges.
    #[serde(default = "five_percent")]
    pub alpha: Percent,
    /// Chance of accepting a candidate that is worse by a judge's delta.
    #[serde(default = "five_percent")]
    pub beta: Percent,
    /// Immediate rollback when the candidate crosses these, whatever the judges say.
    #[serde(default)]
    pub abort: Option<AbortTriggers>,
    /// Run after the last stage accepted (the split moves to 100% first).
    #[serde(default)]
    pub promote: Option<Action>,
    /// Run on a reject or abort (the split moves to 0% first).
    #[serde(default)]
    pub rollback: Option<Action>,
}

fn default_connections() -> NonZeroU32 {
    NonZeroU32::new(16).unwrap_or(NonZeroU32::MIN)
}

fn five_percent() -> Percent {
    Percent::from_ratio("5%", 0.05)
}

/// A stage: the candidate's share (or `shadow`), how long it may take, and how many candidate
/// observations it needs before it may pass.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub weight: StageWeight,
    /// The longest the stage may run; reaching it without a decision is inconclusive.
    #[serde(default = "default_bake")]
    pub bake: Duration,
    #[serde(default = "default_min_samples")]
    pub min_samples: u32,
}

fn default_bake() -> Duration {
    Duration::from_secs(60)
}
fn default_min_samples() -> u32 {
    100
}

/// `shadow` (mirror read-only requests to the candidate) or the candidate's share, `10%`.
#[derive(Debug, Clone, PartialEq)]
pub enum StageWeight {
    Shadow,
    Share(Percent),
}

impl std::fmt::Display for StageWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StageWeight::Shadow => f.write_str("shadow"),
            StageWeight::Share(p) => write!(f, "{p}"),
        }
    }
}

impl<'de> Deserialize<'de> for StageWeight {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.trim() == "shadow" {
            return Ok(StageWeight::Shadow);
        }
        text.parse::<Percent>()
            .map(StageWeight::Share)
            .map_err(|e| serde::de::Error::custom(format!("{e}, or `shadow`")))
    }
}

impl JsonSchema for StageWeight {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StageWeight".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": r"^\s*(shadow|[0-9]+(\.[0-9]+)?\s*%)\s*$",
            "description": "`shadow`, or the candidate's share such as `10%`",
        })
    }
}

/// The judges that decide each stage. Each is optional; `dry_run: true` computes and reports
/// a judge without letting it change the decision.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Judges {
    /// Wald's SPRT on the candidate's error rate against a known rate `p0`.
    #[serde(default)]
    pub error_rate: Option<ErrorRateJudge>,
    /// Baseline against candidate error rates, no `p0` needed.
    #[serde(default)]
    pub two_sample: Option<TwoSampleJudge>,
    /// Baseline against candidate share of slow requests.
    #[serde(default)]
    pub latency: Option<LatencyJudge>,
    /// Multi-window error-budget burn of the candidate.
    #[serde(default)]
    pub burn_rate: Option<BurnRateJudge>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorRateJudge {
    pub p0: Percent,
    /// The smallest absolute rise that matters.
    #[serde(default = "three_percent")]
    pub delta: Percent,
    #[serde(default)]
    pub dry_run: bool,
}

fn three_percent() -> Percent {
    Percent::from_ratio("3%", 0.03)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TwoSampleJudge {
    #[serde(default = "three_percent")]
    pub delta: Percent,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyJudge {
    /// The smallest rise in the share of slow requests that matters.
    #[serde(default = "ten_percent")]
    pub delta: Percent,
    /// Slow means slower than the baseline's p95 plus this.
    #[serde(default = "default_margin")]
    pub margin: Duration,
    /// Baseline requests that fix the threshold.
    #[serde(default = "default_warmup")]
    pub warmup: u32,
    #[serde(default)]
    pub dry_run: bool,
}

fn ten_percent() -> Percent {
    Percent::from_ratio("10%", 0.10)
}
fn default_margin() -> Duration {
    Duration::from_millis(10)
}
fn default_warmup() -> u32 {
    200
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BurnRateJudge {
    pub objective: Percent,
    /// Every window must burn faster than its rate to reject (multi-window alerting).
    pub windows: Vec<BurnWindow>,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BurnWindow {
    pub window: Duration,
    /// Burn-rate threshold, e.g. 14.4.
    pub rate: f64,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortTriggers {
    /// Roll back when the candidate's p99 exceeds this.
    #[serde(default)]
    pub p99: Option<Duration>,
    /// Roll back when the candidate's error rate exceeds this.
    #[serde(default)]
    pub error_rate: Option<Percent>,
    /// Candidate observations a trigger needs before it may fire.
    #[serde(default = "default_min_samples")]
    pub min_samples: u32,
}

/// A promotion or rollback hook: a command, an HTTP webhook (POSTed a JSON body), or both.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Action {
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub webhook: Option<String>,
}

/// Step 2: before the real canary, inject a regression into the candidate arm and prove the
/// canary catches it, rolls back, and the baseline serves everything again within the RTO.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RehearsalStep {
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
    /// Share of candidate requests the split answers with 500.
    #[serde(default = "twenty_percent")]
    pub error_rate: Percent,
    /// Delay the split adds to candidate requests.
    #[serde(default = "zero_duration")]
    pub latency: Duration,
    /// The candidate's share of traffic during the rehearsal.
    #[serde(default = "fifty_percent")]
    pub weight: Percent,
    /// The judges must reject within this.
    #[serde(default = "thirty_seconds")]
    pub detect_within: Duration,
    /// From the rollback decision to SLIs back to normal.
    #[serde(default = "thirty_seconds")]
    pub rto: Duration,
    /// Consecutive good requests that count as recovered.
    #[serde(default = "default_recovery_samples")]
    pub recovery_samples: u32,
    /// Real faults that break the candidate for the rehearsal (the drills' fault kinds; a
    /// fault on a dependency reaches the candidate only, through its fault proxy). They go in
    /// with the split's injected errors, if any, and come out when the rehearsal ends.
    #[serde(default)]
    #[schemars(with = "Vec<crate::drills::FaultSpec>")]
    pub faults: Vec<Spanned<crate::drills::FaultSpec>>,
    /// The service's own SLI must see the regression: read from its metrics endpoint before
    /// the regression and while it lasts, it must drop by at least `drop`.
    #[serde(default)]
    pub sli: Option<SliSensitivity>,
    /// Alerts that must fire and reach gauntlet's receiver (through the run's Alertmanager)
    /// within `within` of the regression going in, as in a drill. The rehearsal waits for
    /// them after the recovery, so the rollback is never held up.
    #[serde(default)]
    #[schemars(with = "Vec<crate::drills::ExpectedAlert>")]
    pub alerts: Vec<Spanned<crate::drills::ExpectedAlert>>,
}

/// An availability SLI read from the candidate's metrics endpoint: 1 − bad / total, over the
/// increase of two counters between two scrapes. Selectors are PromQL series selectors.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SliSensitivity {
    #[serde(default = "default_metrics_path")]
    pub path: String,
    /// Every request the service counted, e.g. `http_requests_total`.
    #[schemars(with = "String")]
    pub total: Spanned<String>,
    /// The requests that failed, e.g. `http_requests_total{code=~"5.."}`.
    #[schemars(with = "String")]
    pub bad: Spanned<String>,
    /// The least relative drop that counts as seeing the regression.
    #[serde(default = "ten_percent")]
    pub drop: Percent,
    /// Candidate requests measured before the regression goes in.
    #[serde(default = "default_sli_requests")]
    pub requests: u32,
}

fn default_sli_requests() -> u32 {
    100
}

fn twenty_percent() -> Percent {
    Percent::from_ratio("20%", 0.20)
}
fn fifty_percent() -> Percent {
    Percent::from_ratio("50%", 0.50)
}
fn zero_duration() -> Duration {
    Duration::from_millis(0)
}
fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}
fn default_recovery_samples() -> u32 {
    50
}
