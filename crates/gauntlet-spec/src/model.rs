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
}

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
    /// Environment for the command.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
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
    pub security: Option<SecurityStep>,
    #[serde(default)]
    pub observability: Option<ObservabilityStep>,
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
