//! GA gates, after the other steps: each gate's query (PromQL against the run's Prometheus,
//! or one of gauntlet's own measurements) against pass and warn thresholds that are
//! absolute, relative to the baseline, or relative to the median of the service's last GO
//! runs. Critical gates decide alone; every gate adds to a weighted score. Fail closed: an
//! empty result, a query error, or a history that does not exist is inconclusive.

use std::collections::BTreeMap;

use gauntlet_report::{Check, GateReport, GatesReport, Outcome};
use gauntlet_spec::{
    Against, GatePlan as Gate, GateQuery, GatesPlan, OnEmpty, Reference, StepMeta, Threshold,
};

use super::{Step, StepFuture, StepOutput, severity};
use crate::context::RunContext;

pub const STEP: &str = gauntlet_spec::StepName::Gates.as_str();

pub struct Gates(pub(crate) GatesPlan);

impl Step for Gates {
    fn step(&self) -> gauntlet_spec::StepName {
        gauntlet_spec::StepName::Gates
    }
    fn meta(&self) -> &StepMeta {
        &self.0.meta
    }
    fn run<'a>(&'a self, ctx: &'a RunContext) -> StepFuture<'a> {
        Box::pin(run(ctx, &self.0))
    }
}

/// What a query returned: one value per series, labelled.
type Series = Vec<(String, f64)>;

async fn fetch(ctx: &RunContext, query: &GateQuery) -> Result<(String, Series), String> {
    match query {
        GateQuery::Metric(name) => {
            let resolved = format!("metric: {name}");
            let values = ctx.recorder.measurements();
            Ok((
                resolved,
                values
                    .get(name)
                    .map(|v| vec![(name.clone(), *v)])
                    .unwrap_or_default(),
            ))
        }
        GateQuery::Promql(text) => {
            let seconds = ctx.recorder.elapsed_ms().div_ceil(1000).max(1);
            let query = text.replace("{run_seconds}", &seconds.to_string());
            let resolved = format!("promql: {query}");
            let (Some(url), Some(section)) = (&ctx.prometheus, &ctx.plan.prometheus) else {
                return Err(format!(
                    "{resolved}: no Prometheus to ask (see the setup step's `prometheus ready`)"
                ));
            };
            let samples = crate::prom::client(url, section)
                .query(&query, None)
                .await
                .map_err(|e| format!("{resolved}: {e}"))?;
            let series = samples
                .into_iter()
                // A NaN is "no data" (a quantile over an empty window), not a value.
                .filter(|s| !s.value.is_nan())
                .map(|s| {
                    let labels = s
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v:?}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    (format!("{{{labels}}}"), s.value)
                })
                .collect();
            Ok((resolved, series))
        }
    }
}

/// The value that decides: the worst series for the comparison.
fn worst(series: &Series, lower_is_better: bool) -> Option<f64> {
    let values = series.iter().map(|(_, v)| *v);
    if lower_is_better {
        values.reduce(f64::max)
    } else {
        values.reduce(f64::min)
    }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// A built-in `canary.candidate.X` compares with `canary.baseline.X`.
fn default_baseline(query: &GateQuery) -> Option<GateQuery> {
    match query {
        GateQuery::Metric(m) => m
            .strip_prefix("canary.candidate.")
            .map(|rest| GateQuery::Metric(format!("canary.baseline.{rest}"))),
        GateQuery::Promql(_) => None,
    }
}

async fn evaluate(ctx: &RunContext, config: &GatesPlan, gate: &Gate) -> GateReport {
    let mut report = GateReport {
        name: gate.name.clone(),
        query: gate.query.to_string(),
        baseline_query: None,
        raw: Vec::new(),
        value: None,
        reference: None,
        pass: gate.pass.text.clone(),
        warn: gate.warn.as_ref().map(|w| w.text.clone()),
        limit: None,
        critical: gate.critical,
        weight: gate.weight,
        outcome: Outcome::Inconclusive,
        reason: String::new(),
    };
    let (outcome, reason) = measure(ctx, config, gate, &mut report)
        .await
        .unwrap_or_else(|stopped| stopped);
    report.outcome = outcome;
    report.reason = reason;
    report
}

/// A gate's outcome and reason, or (as the error) how it ended before it could be judged.
type Judged = Result<(Outcome, String), (Outcome, String)>;

/// Queries the gate's value and its reference, then judges it; fills in what it learns.
async fn measure(
    ctx: &RunContext,
    config: &GatesPlan,
    gate: &Gate,
    report: &mut GateReport,
) -> Judged {
    let pass = gate.pass.threshold;
    let warn = gate.warn.as_ref().map(|w| w.threshold);
    let lower = pass.op.lower_is_better();
    let (resolved, series) = fetch(ctx, &gate.query)
        .await
        .map_err(|e| (Outcome::Inconclusive, e))?;
    report.query = resolved;
    report.raw = series.iter().map(|(l, v)| format!("{l} {v}")).collect();
    let value = match worst(&series, lower) {
        Some(v) => v,
        None => on_empty(gate.on_empty)?,
    };
    report.value = Some(value);
    // What `baseline` / `history` mean, when a threshold uses one.
    let relative = std::iter::once(&pass)
        .chain(warn.iter())
        .find_map(|t| match t.against {
            Against::Relative { reference, .. } => Some(reference),
            Against::Value(_) => None,
        });
    let reference = match relative {
        Some(Reference::Baseline) => Some(baseline(ctx, gate, lower, report).await?),
        Some(Reference::History) => Some(history(ctx, config, gate, report)?),
        None => None,
    };
    report.reference = reference;
    Ok(judge(value, reference, &pass, warn.as_ref(), report))
}

/// The value of a query that returned nothing, as `on_empty` says.
fn on_empty(on_empty: OnEmpty) -> Result<f64, (Outcome, String)> {
    match on_empty {
        OnEmpty::Zero => Ok(0.0),
        OnEmpty::Fail => Err((
            Outcome::Fail,
            "the query returned nothing (on_empty: fail)".into(),
        )),
        OnEmpty::Inconclusive => Err((
            Outcome::Inconclusive,
            "the query returned nothing, so there is nothing to judge (on_empty: inconclusive)"
                .into(),
        )),
    }
}

/// The baseline's value of the gate's query (or its `baseline:` query).
async fn baseline(
    ctx: &RunContext,
    gate: &Gate,
    lower: bool,
    report: &mut GateReport,
) -> Result<f64, (Outcome, String)> {
    let inconclusive = |why: String| (Outcome::Inconclusive, why);
    let query = gate
        .baseline
        .clone()
        .or_else(|| default_baseline(&gate.query))
        .ok_or_else(|| inconclusive("no baseline query".into()))?;
    let (resolved, series) = fetch(ctx, &query)
        .await
        .map_err(|e| inconclusive(format!("baseline: {e}")))?;
    report.baseline_query = Some(resolved);
    let raw = series.iter().map(|(l, v)| format!("baseline {l} {v}"));
    report.raw.extend(raw);
    worst(&series, lower).ok_or_else(|| inconclusive("the baseline query returned nothing".into()))
}

/// The median of the gate's value over the service's last GO runs.
fn history(
    ctx: &RunContext,
    config: &GatesPlan,
    gate: &Gate,
    report: &mut GateReport,
) -> Result<f64, (Outcome, String)> {
    let earlier: Vec<f64> = ctx
        .history
        .iter()
        .filter_map(|run| run.get(&gate.name).copied())
        .take(config.history as usize)
        .collect();
    let n = earlier.len();
    let Some(m) = median(earlier) else {
        return Err((
            Outcome::Inconclusive,
            format!(
                "no earlier GO run of {} measured this gate, so there is no history to compare with",
                ctx.plan.service.name
            ),
        ));
    };
    let said = format!("history: median of {n} earlier GO run(s) {m}");
    report.raw.push(said);
    Ok(m)
}

/// The value against the pass threshold, then the warn threshold; records the limit.
fn judge(
    value: f64,
    reference: Option<f64>,
    pass: &Threshold,
    warn: Option<&Threshold>,
    report: &mut GateReport,
) -> (Outcome, String) {
    let limit_of = |t: &Threshold| match t.against {
        Against::Value(v) => v,
        Against::Relative { factor, offset, .. } => reference.unwrap_or(f64::NAN) * factor + offset,
    };
    let limit = limit_of(pass);
    report.limit = Some(limit);
    let shown = |t: &Threshold| format!("{} {}", t.op.symbol(), number(limit_of(t)));
    if pass.op.holds(value, limit) {
        return (Outcome::Pass, format!("{} {}", number(value), shown(pass)));
    }
    if let Some(warn) = warn
        && warn.op.holds(value, limit_of(warn))
    {
        let reason = format!(
            "{} misses {} but is within the warn threshold {}",
            number(value),
            shown(pass),
            shown(warn)
        );
        return (Outcome::Warn, reason);
    }
    (
        Outcome::Fail,
        format!("{} is not {}", number(value), shown(pass)),
    )
}

/// Up to 6 significant digits, no exponent for ordinary values.
fn number(v: f64) -> String {
    if v == 0.0 || (1e-4..1e9).contains(&v.abs()) {
        let s = format!("{v:.6}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    } else {
        format!("{v:e}")
    }
}

/// Phases: evaluate each gate, score them, then one check per gate (weighted gates as dry
/// runs: they speak through the score) and the score's.
async fn run(ctx: &RunContext, config: &GatesPlan) -> StepOutput {
    let severity = severity(&config.meta);
    let mut reports = Vec::new();
    for gate in &config.checks {
        let evaluated = evaluate(ctx, config, gate).await;
        let said = format!(
            "{}: {} — {}",
            gate.name,
            evaluated.outcome.as_str(),
            evaluated.reason
        );
        ctx.recorder.event(Some(STEP), "gate", said);
        reports.push(evaluated);
    }
    let scored = Scored::of(&reports);
    let (outcome, reason) = scored.judge(config);
    let mut checks: Vec<Check> = reports.iter().map(|g| gate_check(g, severity)).collect();
    checks.push(
        Check::new(STEP, "score", severity)
            .threshold(format!("pass {}, warn {}", config.pass, config.warn))
            .measured(percent(scored.score))
            .samples(reports.len() as u64)
            .outcome(outcome, reason),
    );
    StepOutput {
        gates: Some(GatesReport {
            score: scored.score,
            score_if_measured: scored.possible,
            pass: config.pass.to_string(),
            warn: config.warn.to_string(),
            outcome,
            gates: reports,
        }),
        ..checks.into()
    }
}

fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// The gates' score: pass earns a gate's weight, warn half, anything else nothing; and what
/// it could have been had the unmeasured gates passed.
struct Scored {
    score: f64,
    possible: f64,
    unmeasured: usize,
}

impl Scored {
    fn of(reports: &[GateReport]) -> Scored {
        let total: f64 = reports.iter().map(|g| g.weight).sum();
        let earned = |g: &GateReport| match g.outcome {
            Outcome::Pass => g.weight,
            Outcome::Warn => g.weight / 2.0,
            _ => 0.0,
        };
        let unmeasured = |g: &&GateReport| g.outcome == Outcome::Inconclusive;
        let share = |sum: f64| sum / total.max(f64::MIN_POSITIVE);
        Scored {
            score: share(reports.iter().map(earned).sum()),
            possible: share(
                reports
                    .iter()
                    .map(|g| if unmeasured(&g) { g.weight } else { earned(g) })
                    .sum(),
            ),
            unmeasured: reports.iter().filter(unmeasured).count(),
        }
    }

    /// Pass, warn or fail by the score; inconclusive when the unmeasured gates could have
    /// moved it across a threshold.
    fn judge(&self, config: &GatesPlan) -> (Outcome, String) {
        let (pass, warn) = (config.pass.ratio(), config.warn.ratio());
        let (score, possible) = (self.score, self.possible);
        if score >= pass {
            return (
                Outcome::Pass,
                format!("score {} ≥ {}", percent(score), config.pass),
            );
        }
        if self.unmeasured > 0 && (possible >= pass || (score < warn && possible >= warn)) {
            let why = format!(
                "score {} with {} gate(s) unmeasured: it could have been up to {}, so the gates cannot say",
                percent(score),
                self.unmeasured,
                percent(possible)
            );
            return (Outcome::Inconclusive, why);
        }
        if score >= warn {
            let why = format!(
                "score {} is below {} but at least {}",
                percent(score),
                config.pass,
                config.warn
            );
            return (Outcome::Warn, why);
        }
        (
            Outcome::Fail,
            format!("score {} < {}", percent(score), config.warn),
        )
    }
}

/// A gate's check; a weighted gate's is a dry run, counted in the score only.
fn gate_check(g: &GateReport, severity: gauntlet_report::Severity) -> Check {
    let threshold = match &g.warn {
        Some(w) => format!("pass {}, warn {}", g.pass, w),
        None => format!("pass {}", g.pass),
    };
    let mut check = Check::new(STEP, &g.name, severity)
        .threshold(threshold)
        .outcome(g.outcome, g.reason.clone());
    if let Some(v) = g.value {
        check = check.measured(number(v));
    }
    if !g.critical {
        check.dry_run = true;
        check.reason = format!(
            "{} (weight {}: counts in the score)",
            check.reason, g.weight
        );
    }
    check
}

/// Each earlier run's gate values by gate name, for `history` thresholds.
pub fn values(report: &gauntlet_report::Report) -> BTreeMap<String, f64> {
    report
        .gates
        .iter()
        .flat_map(|g| g.gates.iter())
        .filter_map(|g| g.value.map(|v| (g.name.clone(), v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_and_the_worst_series() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![f64::NAN]), None);
        let series = vec![("a".into(), 1.0), ("b".into(), 3.0)];
        assert_eq!(worst(&series, true), Some(3.0));
        assert_eq!(worst(&series, false), Some(1.0));
        assert_eq!(worst(&Vec::new(), true), None);
    }

    #[test]
    fn numbers_read_plainly() {
        assert_eq!(number(0.15), "0.15");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(1234.5), "1234.5");
        assert_eq!(number(1.5e-7), "1.5e-7");
    }

    /// The gates step against measurements an earlier step handed back, no Prometheus.
    async fn gates_over(measured: &[(&str, f64)]) -> StepOutput {
        let spec = "schema_version: 1
service: {name: s, version: '2'}
targets:
  candidate: {url: '{candidate}'}
traffic: {rate: 1/s, requests: [{path: /}]}
gates:
  pass: 90%
  warn: 50%
  checks:
    - {name: median latency, query: {metric: canary.candidate.latency_p50}, pass: '<= baseline + 50ms', critical: true}
    - {name: p99, query: {metric: canary.candidate.latency_p99}, pass: '< 300ms', weight: 3}
    - {name: errors, query: {metric: canary.candidate.error_rate}, pass: '<= 1%'}
";
        let system = crate::testing::FakeSystem::start(|_| (200, std::time::Duration::ZERO)).await;
        let harness = crate::testing::Harness::new(spec, &system, None);
        let canary = StepOutput {
            measurements: measured.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..StepOutput::default()
        };
        harness.ctx.recorder.absorb("canary", canary);
        let gates = harness.step(gauntlet_spec::StepName::Gates);
        gates.run(&harness.ctx).await
    }

    #[tokio::test(start_paused = true)]
    async fn gates_score_what_the_steps_measured() {
        let output = gates_over(&[
            ("canary.candidate.latency_p50", 0.012),
            ("canary.baseline.latency_p50", 0.010),
            ("canary.candidate.latency_p99", 0.450),
            ("canary.candidate.error_rate", 0.002),
        ])
        .await;
        let report = output
            .gates
            .as_ref()
            .expect("the gates report is handed back");
        // p99 (weight 3 of 5) fails: 2/5 of the score is left, under `warn: 50%`.
        assert!((report.score - 0.4).abs() < 1e-9, "{}", report.score);
        assert_eq!(output.outcome_of("median latency"), Outcome::Pass);
        assert_eq!(output.outcome_of("score"), Outcome::Fail);
    }

    #[tokio::test(start_paused = true)]
    async fn a_gate_nobody_measured_is_inconclusive_never_a_pass() {
        let output = gates_over(&[("canary.candidate.latency_p99", 0.1)]).await;
        assert_eq!(output.outcome_of("median latency"), Outcome::Inconclusive);
        assert_ne!(output.outcome_of("errors"), Outcome::Pass);
        assert_ne!(output.outcome_of("score"), Outcome::Pass);
    }
}
