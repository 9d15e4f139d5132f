//! GA gates, as a spec writes them (`gates:` at the top): queries, thresholds (`<= baseline
//! * 1.1`, `<= history + 10%`) parsed once here, weights and critical gates; with their checks.

use std::time::Duration as StdDuration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Section, StepName};
use crate::model::Severity;
use crate::plan::{Seed, StepMeta, StepPlan};
use crate::units::{Percent, UnitError};
use crate::validate::{Context, Problems, quoted};

/// GA gates: each gate is a query, a comparison, and pass/warn thresholds. Critical gates
/// decide alone; the others add up to a score judged against `pass` and `warn`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
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

#[derive(Debug, Clone, Deserialize, JsonSchema)]
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
    pub fn parse(text: &str) -> Result<Self, UnitError> {
        Self::read(text).map_err(UnitError)
    }

    fn read(text: &str) -> Result<Self, String> {
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

impl Section for GatesSection {
    fn step(&self) -> StepName {
        StepName::Gates
    }

    fn owner(&self) -> Option<&Spanned<String>> {
        self.owner.as_ref()
    }

    fn check(&self, cx: &Context<'_>, p: &mut Problems<'_>) {
        if self.checks.value.is_empty() {
            p.at(
                self.checks.referenced,
                "`gates.checks` is empty".into(),
                Some("list at least one gate, or remove `gates`".into()),
            );
        }
        if self.warn.ratio() > self.pass.ratio() {
            p.key(
                "gates.warn",
                format!(
                    "`gates.warn` ({}) is above `gates.pass` ({})",
                    self.warn, self.pass
                ),
                None,
            );
        }
        p.count("gates.history", u64::from(self.history), 1000);
        let mut seen = std::collections::BTreeSet::new();
        for (i, gate) in self.checks.value.iter().enumerate() {
            let at = format!("gates.checks[{i}]");
            let name = quoted(&gate.name);
            if !seen.insert(gate.name.as_str()) {
                p.key(
                    &format!("{at}.name"),
                    format!("two gates are named `{name}`"),
                    Some("gate names must be unique".into()),
                );
            }
            if !(gate.weight.is_finite() && gate.weight > 0.0) {
                p.key(
                    &format!("{at}.weight"),
                    format!("gate `{name}`: the weight must be a positive number"),
                    None,
                );
            }
            let promql = matches!(gate.query, GateQuery::Promql(_))
                || matches!(gate.baseline, Some(GateQuery::Promql(_)));
            if promql && cx.spec.prometheus.is_none() {
                p.key(
                    &format!("{at}.query"),
                    format!("gate `{name}` runs PromQL, and the spec has no `prometheus` section"),
                    Some("add `prometheus: {start: true}` or `prometheus: {url: ...}`, or use a built-in `metric:`".into()),
                );
            }
            for threshold in std::iter::once(&gate.pass).chain(gate.warn.iter()) {
                gate.check_threshold(p, threshold);
            }
        }
    }

    fn worst_case(&self, _cx: &Context<'_>) -> Vec<(String, StdDuration)> {
        Vec::new()
    }

    fn plan(&self, _cx: &Context<'_>, _seed: Seed) -> Result<StepPlan, String> {
        let bound = |text: &Spanned<String>| {
            Threshold::read(&text.value).map(|threshold| Bound {
                threshold,
                text: text.value.trim().to_string(),
            })
        };
        let checks = self
            .checks
            .value
            .iter()
            .map(|gate| {
                Ok(GatePlan {
                    name: gate.name.clone(),
                    query: gate.query.clone(),
                    baseline: gate.baseline.clone(),
                    pass: bound(&gate.pass)?,
                    warn: gate.warn.as_ref().map(bound).transpose()?,
                    critical: gate.critical,
                    weight: gate.weight,
                    on_empty: gate.on_empty,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(StepPlan::Gates(GatesPlan {
            meta: StepMeta::new(StepName::Gates, self.severity, self.owner.as_ref()),
            pass: self.pass.clone(),
            warn: self.warn.clone(),
            history: self.history,
            checks,
        }))
    }
}

impl Gate {
    fn check_threshold(&self, p: &mut Problems<'_>, threshold: &Spanned<String>) {
        let name = quoted(&self.name);
        match Threshold::parse(&threshold.value) {
            Err(e) => p.at(
                threshold.referenced,
                format!("gate `{name}`: {e}"),
                Some("e.g. `< 300ms`, `<= 1%`, `<= baseline * 1.1`, `<= history + 10%`".into()),
            ),
            Ok(Threshold {
                against:
                    Against::Relative {
                        reference: Reference::Baseline,
                        ..
                    },
                ..
            }) if self.baseline.is_none()
                && !matches!(&self.query, GateQuery::Metric(m) if m.starts_with("canary.candidate.")) =>
            {
                p.at(
                    threshold.referenced,
                    format!("gate `{name}` compares with `baseline`, and names no baseline query"),
                    Some("add `baseline: {promql: ...}` (built-in `canary.candidate.*` metrics have one)".into()),
                )
            }
            Ok(_) => {}
        }
    }
}

/// The gates as a run evaluates them, thresholds parsed.
#[derive(Debug, Clone)]
pub struct GatesPlan {
    pub meta: StepMeta,
    pub pass: Percent,
    pub warn: Percent,
    /// How many earlier GO runs `history` thresholds compare with.
    pub history: u32,
    pub checks: Vec<GatePlan>,
}

impl GatesPlan {
    /// Whether a gate compares with earlier runs (so their reports must be read).
    pub fn reads_history(&self) -> bool {
        self.checks.iter().any(|g| {
            std::iter::once(&g.pass).chain(g.warn.iter()).any(|b| {
                matches!(
                    b.threshold.against,
                    Against::Relative {
                        reference: Reference::History,
                        ..
                    }
                )
            })
        })
    }
}

#[derive(Debug, Clone)]
pub struct GatePlan {
    pub name: String,
    pub query: GateQuery,
    pub baseline: Option<GateQuery>,
    pub pass: Bound,
    pub warn: Option<Bound>,
    pub critical: bool,
    pub weight: f64,
    pub on_empty: OnEmpty,
}

/// A threshold, parsed, with the text it was written as (for reports).
#[derive(Debug, Clone)]
pub struct Bound {
    pub threshold: Threshold,
    pub text: String,
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

    proptest::proptest! {
        #[test]
        fn threshold_parsing_never_panics(text in "\\PC{0,40}") {
            let _ = Threshold::parse(&text);
        }
    }
}
