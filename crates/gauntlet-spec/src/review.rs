//! The readiness review: the Prometheus server gates read from, the GA gates, and the PRR
//! checklist with its waivers.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::model::Severity;
use crate::units::{Duration, Percent};

/// Where PromQL gates are evaluated: a server that already scrapes the systems (`url`), or
/// one gauntlet starts for the run (`start: true`, Debian's `prometheus` binary) that scrapes
/// every system of the run on its own loopback port.
#[derive(Debug, Deserialize, JsonSchema)]
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
#[derive(Debug, Deserialize, JsonSchema)]
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

/// GA gates: each gate is a query, a comparison, and pass/warn thresholds. Critical gates
/// decide alone; the others add up to a score judged against `pass` and `warn`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatesSection {
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
    /// The score (weighted share of gates passed; a warn counts half) that passes.
    #[serde(default = "default_pass")]
    pub pass: Percent,
    /// Below `pass` but at least this: the decision is at best CONDITIONAL.
    #[serde(default = "default_warn")]
    pub warn: Percent,
    /// How many earlier GO runs of the service `history` thresholds compare with (median).
    #[serde(default = "default_history")]
    pub history: u32,
    #[schemars(with = "Vec<Gate>")]
    pub checks: Spanned<Vec<Gate>>,
}

fn default_pass() -> Percent {
    Percent::from_ratio("90%", 0.9)
}
fn default_warn() -> Percent {
    Percent::from_ratio("75%", 0.75)
}
fn default_history() -> u32 {
    5
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub name: String,
    /// What is measured.
    pub query: GateQuery,
    /// What `baseline` in a threshold means; without it, a built-in `canary.candidate.*`
    /// metric compares with its `canary.baseline.*` twin.
    #[serde(default)]
    pub baseline: Option<GateQuery>,
    /// `< 300ms`, `<= 1%`, `>= 99.9%`, `<= baseline * 1.1`, `<= baseline + 50ms`,
    /// `<= history + 10%` (the median of the last GO runs).
    #[schemars(with = "String")]
    pub pass: Spanned<String>,
    /// Missing the pass threshold but within this: half the weight, a condition.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub warn: Option<Spanned<String>>,
    /// A failed critical gate is NO-GO whatever the score.
    #[serde(default)]
    pub critical: bool,
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// What an empty result means: `inconclusive` (default), `zero` or `fail`.
    #[serde(default)]
    pub on_empty: OnEmpty,
}

fn default_weight() -> f64 {
    1.0
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum GateQuery {
    /// PromQL, evaluated now against the run's Prometheus. `{run_seconds}` is replaced with
    /// the run's age in seconds (for `rate(x[{run_seconds}s])` over the whole run).
    Promql(String),
    /// One of gauntlet's own measurements, e.g. `canary.candidate.latency_p99`.
    Metric(String),
}

impl std::fmt::Display for GateQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GateQuery::Promql(q) => write!(f, "promql: {q}"),
            GateQuery::Metric(m) => write!(f, "metric: {m}"),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnEmpty {
    #[default]
    Inconclusive,
    Zero,
    Fail,
}

/// A gate threshold, parsed: `OP RHS`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub op: Comparison,
    pub against: Against,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Comparison {
    pub fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Comparison::Less => value < limit,
            Comparison::LessOrEqual => value <= limit,
            Comparison::Greater => value > limit,
            Comparison::GreaterOrEqual => value >= limit,
        }
    }
    /// Lower is better for `<`/`<=`.
    pub fn lower_is_better(self) -> bool {
        matches!(self, Comparison::Less | Comparison::LessOrEqual)
    }
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reference {
    Baseline,
    History,
}

/// What a value is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Against {
    Value(f64),
    /// `reference * factor + offset`.
    Relative {
        reference: Reference,
        factor: f64,
        offset: f64,
    },
}

impl Threshold {
    /// Parses `< 300ms`, `>= 99.9%`, `<= baseline * 1.1`, `<= baseline * 2 + 100ms`,
    /// `<= history + 10%`. Quantities are
    /// in base units: durations in seconds, percentages as ratios.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (op, rest) = [
            ("<=", Comparison::LessOrEqual),
            (">=", Comparison::GreaterOrEqual),
            ("<", Comparison::Less),
            (">", Comparison::Greater),
        ]
        .into_iter()
        .find_map(|(sym, op)| text.strip_prefix(sym).map(|rest| (op, rest.trim())))
        .ok_or_else(|| {
            format!("`{text}` does not start with a comparison: `<`, `<=`, `>` or `>=`")
        })?;
        let reference = [
            ("baseline", Reference::Baseline),
            ("history", Reference::History),
        ]
        .into_iter()
        .find_map(|(word, r)| rest.strip_prefix(word).map(|tail| (r, tail.trim())));
        let against = match reference {
            None => Against::Value(quantity(rest)?),
            Some((reference, "")) => Against::Relative {
                reference,
                factor: 1.0,
                offset: 0.0,
            },
            Some((reference, tail)) => {
                let (factor, offset) = if let Some(f) = tail.strip_prefix('*') {
                    // `* FACTOR`, optionally `+ AMOUNT` / `- AMOUNT` after it.
                    let (f, offset) = match f.find(['+', '-']) {
                        Some(at) => {
                            let sign = if f[at..].starts_with('-') { -1.0 } else { 1.0 };
                            (&f[..at], sign * quantity(&f[at + 1..])?)
                        }
                        None => (f, 0.0),
                    };
                    let f = f.trim();
                    let factor = f
                        .parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite() && *f > 0.0)
                        .ok_or_else(|| format!("`{f}` is not a positive factor"))?;
                    (factor, offset)
                } else if let Some((sign, amount)) = tail
                    .strip_prefix('+')
                    .map(|a| (1.0, a))
                    .or_else(|| tail.strip_prefix('-').map(|a| (-1.0, a)))
                {
                    let amount = amount.trim();
                    match amount.strip_suffix('%') {
                        // Relative: `+10%` of the reference.
                        Some(p) => {
                            let p = number(p)?;
                            (1.0 + sign * p / 100.0, 0.0)
                        }
                        None => (1.0, sign * quantity(amount)?),
                    }
                } else {
                    return Err(format!(
                        "after `{}` expected `* FACTOR`, `+ AMOUNT` or `+ PERCENT%`, found `{tail}`",
                        match reference {
                            Reference::Baseline => "baseline",
                            Reference::History => "history",
                        }
                    ));
                };
                Against::Relative {
                    reference,
                    factor,
                    offset,
                }
            }
        };
        Ok(Self { op, against })
    }
}

fn number(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("`{}` is not a number", text.trim()))
}

/// `300ms` → 0.3, `2s` → 2, `1%` → 0.01, `0.5` → 0.5.
fn quantity(text: &str) -> Result<f64, String> {
    let text = text.trim();
    // (suffix, multiplier, divisor): dividing keeps `99.9%` exactly 0.999.
    for (suffix, times, over) in [
        ("us", 1.0, 1e6),
        ("µs", 1.0, 1e6),
        ("ms", 1.0, 1e3),
        ("s", 1.0, 1.0),
        ("m", 60.0, 1.0),
        ("h", 3600.0, 1.0),
        ("%", 1.0, 100.0),
    ] {
        if let Some(n) = text.strip_suffix(suffix)
            && let Ok(v) = number(n)
        {
            return Ok(v * times / over);
        }
    }
    number(text).map_err(|_| {
        format!("`{text}` is not a quantity: write a number, optionally with ms, s, m, h or %")
    })
}

/// The production-readiness checklist: weighted categories of items, each backed by checks
/// from the steps (`automated`) or vouched for by a person (`attested`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadinessSection {
    #[serde(default)]
    pub severity: Severity,
    /// The overall score a GO needs.
    #[serde(default = "default_minimum")]
    pub minimum: Percent,
    /// The longest a waiver may run (at most 14d).
    #[serde(default = "default_max_waiver")]
    #[schemars(with = "String")]
    pub max_waiver: Spanned<Duration>,
    #[schemars(with = "Vec<Category>")]
    pub categories: Spanned<Vec<Category>>,
}

fn default_minimum() -> Percent {
    Percent::from_ratio("80%", 0.8)
}
fn default_max_waiver() -> Spanned<Duration> {
    Spanned {
        value: Duration::from_secs(MAX_WAIVER_SECS),
        referenced: serde_saphyr::Location::UNKNOWN,
        defined: serde_saphyr::Location::UNKNOWN,
    }
}

/// No waiver runs longer than this, whatever the spec says.
pub const MAX_WAIVER_SECS: u64 = 14 * 86_400;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub name: String,
    #[serde(default = "default_weight")]
    pub weight: f64,
    pub items: Vec<Item>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub name: String,
    /// The role (from `service.owners`) that answers for the item and may waive it.
    #[schemars(with = "String")]
    pub owner: Spanned<String>,
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Check ids this item rests on: `rollback_rehearsal.rto`, or `dr.*` for a whole step.
    #[serde(default)]
    pub automated: Vec<String>,
    /// A person vouches for it.
    #[serde(default)]
    pub attested: Option<Attestation>,
    #[serde(default)]
    pub waiver: Option<Waiver>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// Who vouches (a person, e.g. an email address).
    pub by: String,
    /// Where the evidence is: a link or a path.
    pub evidence: String,
    #[serde(default)]
    pub status: AttestedStatus,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttestedStatus {
    Done,
    Partial,
    #[default]
    Pending,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// The item's owner role: only the owner may waive.
    #[schemars(with = "String")]
    pub by: Spanned<String>,
    pub reason: String,
    /// `2026-11-20` or an RFC 3339 time.
    #[schemars(with = "String")]
    pub granted: Spanned<String>,
    /// At most `max_waiver` after `granted`; after it, the waiver is a failure.
    #[schemars(with = "String")]
    pub expires: Spanned<String>,
}

/// Seconds since the Unix epoch for `2026-11-20` (the end of that day, UTC) or an RFC 3339
/// time.
pub fn parse_day_or_time(text: &str, end_of_day: bool) -> Result<u64, String> {
    let text = text.trim();
    let full = if text.len() == 10 && !text.contains('T') {
        format!(
            "{text}T{}Z",
            if end_of_day { "23:59:59" } else { "00:00:00" }
        )
    } else {
        text.to_string()
    };
    humantime::parse_rfc3339_weak(&full)
        .or_else(|_| humantime::parse_rfc3339(&full))
        .map_err(|e| format!("`{text}` is not a date (2026-11-20) or an RFC 3339 time: {e}"))?
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| format!("`{text}` is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_to_base_units() {
        let t = Threshold::parse("< 300ms").unwrap();
        assert_eq!(t.op, Comparison::Less);
        assert_eq!(t.against, Against::Value(0.3));
        let Against::Value(v) = Threshold::parse(">= 99.9%").unwrap().against else {
            panic!("not a value")
        };
        assert!((v - 0.999).abs() < 1e-12);
        assert_eq!(
            Threshold::parse("<= baseline * 1.1").unwrap().against,
            Against::Relative {
                reference: Reference::Baseline,
                factor: 1.1,
                offset: 0.0
            }
        );
        assert_eq!(
            Threshold::parse("<= history + 10%").unwrap().against,
            Against::Relative {
                reference: Reference::History,
                factor: 1.1,
                offset: 0.0
            }
        );
        assert_eq!(
            Threshold::parse("<=baseline+50ms").unwrap().against,
            Against::Relative {
                reference: Reference::Baseline,
                factor: 1.0,
                offset: 0.05
            }
        );
        assert_eq!(
            Threshold::parse("<= baseline * 2 + 100ms").unwrap().against,
            Against::Relative {
                reference: Reference::Baseline,
                factor: 2.0,
                offset: 0.1
            }
        );
        for bad in [
            "300ms",
            "< fast",
            "<= baseline / 2",
            "<= history * -1",
            "",
            "<",
        ] {
            assert!(Threshold::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_and_times_parse() {
        let day = parse_day_or_time("2026-11-20", false).unwrap();
        assert_eq!(parse_day_or_time("2026-11-20", true).unwrap(), day + 86_399);
        assert_eq!(
            parse_day_or_time("2026-11-20T00:00:00Z", false).unwrap(),
            day
        );
        assert!(parse_day_or_time("20 Nov", false).is_err());
    }

    proptest::proptest! {
        #[test]
        fn threshold_parsing_never_panics(text in "\\PC{0,40}") {
            let _ = Threshold::parse(&text);
            let _ = parse_day_or_time(&text, true);
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
#[derive(Debug, Deserialize, JsonSchema)]
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
