//! SLOs written in OpenSLO v1 (`kind: SLO`, `SLI`, `AlertPolicy`, one or many YAML documents),
//! read into what gauntlet needs of them: a ratio of good (or bad) to total events counted by
//! Prometheus, or a threshold on a Prometheus query (the share of time it is met), the
//! objective, and the time window; and the multi-window, multi-burn-rate alert rules of the
//! Google SRE workbook made from them (page at 14.4× over 1h and 5m, and at 6× over 6h and
//! 30m; ticket at 1× over 3d and 6h), as a Prometheus rule file. A threshold SLI burns its
//! budget with the time the query breaks the objective's `op` and `value`, sampled every 30s
//! over each window (a subquery).
//!
//! What cannot be mapped is refused by name: a source other than Prometheus, a ratio query
//! that is not a counter's series selector (gauntlet adds `rate()` per window itself), a
//! threshold objective without `op` and `value`.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Deserialize;

/// One SLO, as gauntlet burns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    pub name: String,
    pub service: String,
    /// The share of good events, e.g. 0.999.
    pub target: f64,
    /// `28d`, `1M`, as written.
    pub window: String,
    pub indicator: Indicator,
    /// The alert policies it names (carried into the alerts' labels).
    pub alert_policies: Vec<String>,
}

/// What the SLO counts: counters' series selectors (good or bad events, and all of them), or
/// a query and the threshold it must meet (`query op value` is good).
#[derive(Debug, Clone, PartialEq)]
pub enum Indicator {
    Good {
        good: String,
        total: String,
    },
    Bad {
        bad: String,
        total: String,
    },
    Threshold {
        query: String,
        op: &'static str,
        value: f64,
    },
}

/// Why an OpenSLO file cannot be used, said with the object it is about.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpenSloError(pub String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    api_version: String,
    kind: String,
    metadata: Metadata,
    #[serde(default)]
    spec: serde_json::Value,
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
}

/// Reads every SLO of an OpenSLO text (`shown` names it in errors).
pub fn read(text: &str, shown: &str) -> Result<Vec<Slo>, OpenSloError> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! { max_depth: 32, max_nodes: 100_000, max_total_scalar_bytes: 4 * 1024 * 1024 },
    };
    let docs: Vec<Document> = serde_saphyr::from_multiple_with_options(text, options)
        .map_err(|e| OpenSloError(format!("{shown}: {e}")))?;
    let mut slis = BTreeMap::new();
    for doc in &docs {
        if doc.api_version != "openslo/v1" {
            return Err(OpenSloError(format!(
                "{shown}: `{}` is `{}`; gauntlet reads openslo/v1",
                doc.metadata.name, doc.api_version
            )));
        }
        if doc.kind == "SLI" {
            slis.insert(doc.metadata.name.clone(), doc.spec.clone());
        }
    }
    docs.iter()
        .filter(|d| d.kind == "SLO")
        .map(|d| slo(d, &slis, shown))
        .collect()
}

fn slo(
    doc: &Document,
    slis: &BTreeMap<String, serde_json::Value>,
    shown: &str,
) -> Result<Slo, OpenSloError> {
    let name = &doc.metadata.name;
    let fail = |why: String| OpenSloError(format!("{shown}: SLO `{name}`: {why}"));
    let spec = &doc.spec;
    let indicator = match (&spec["indicator"]["spec"], spec["indicatorRef"].as_str()) {
        (serde_json::Value::Object(_), _) => spec["indicator"]["spec"].clone(),
        (_, Some(reference)) => slis.get(reference).cloned().ok_or_else(|| {
            fail(format!(
                "`indicatorRef: {reference}` names no SLI in this file"
            ))
        })?,
        _ => return Err(fail("no `indicator` and no `indicatorRef`".into())),
    };
    let objective = spec["objectives"]
        .as_array()
        .and_then(|o| o.first())
        .ok_or_else(|| fail("no `objectives`".into()))?;
    let target = objective["target"]
        .as_f64()
        .or_else(|| objective["targetPercent"].as_f64().map(|p| p / 100.0))
        .filter(|t| *t > 0.0 && *t < 1.0)
        .ok_or_else(|| {
            fail("its objective needs a `target` between 0 and 1 (or `targetPercent`)".into())
        })?;
    let window = spec["timeWindow"]
        .as_array()
        .and_then(|w| w.first())
        .and_then(|w| w["duration"].as_str())
        .unwrap_or("28d")
        .to_string();
    let alert_policies = spec["alertPolicies"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    p.as_str()
                        .map(String::from)
                        .or_else(|| p["metadata"]["name"].as_str().map(String::from))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Slo {
        name: name.clone(),
        service: spec["service"].as_str().unwrap_or_default().to_string(),
        target,
        window,
        indicator: match indicator.get("thresholdMetric") {
            Some(metric) => threshold(metric, objective).map_err(fail)?,
            None => ratio(&indicator).map_err(fail)?,
        },
        alert_policies,
    })
}

/// A Prometheus metric source's query, or why it is not one.
fn prometheus_query<'a>(source: &'a serde_json::Value, which: &str) -> Result<&'a str, String> {
    let source = &source["metricSource"];
    let kind = source["type"].as_str().unwrap_or_default();
    if !kind.eq_ignore_ascii_case("prometheus") {
        return Err(format!(
            "`{which}` comes from `{kind}`; gauntlet maps Prometheus sources"
        ));
    }
    source["spec"]["query"]
        .as_str()
        .ok_or(format!("`{which}` has no `metricSource.spec.query`"))
}

/// A threshold indicator: its query and the objective's `op` and `value`.
fn threshold(
    metric: &serde_json::Value,
    objective: &serde_json::Value,
) -> Result<Indicator, String> {
    let query = prometheus_query(metric, "thresholdMetric")?;
    use promql_parser::parser::{Expr, parse};
    match parse(query) {
        Ok(Expr::MatrixSelector(_)) => {
            return Err(format!(
                "`{query}` is a range vector; a threshold query gives one value per series"
            ));
        }
        Ok(_) => {}
        Err(e) => return Err(format!("`{query}` is not PromQL: {}", e.trim())),
    }
    let op = match objective["op"].as_str() {
        Some("lt") => "<",
        Some("lte") => "<=",
        Some("gt") => ">",
        Some("gte") => ">=",
        other => {
            return Err(format!(
                "a `thresholdMetric` objective needs `op` (lt, lte, gt or gte), not {}",
                other.unwrap_or("none")
            ));
        }
    };
    let value = objective["value"]
        .as_f64()
        .filter(|v| v.is_finite())
        .ok_or("a `thresholdMetric` objective needs a numeric `value`")?;
    Ok(Indicator::Threshold {
        query: query.trim().to_string(),
        op,
        value,
    })
}

/// The indicator's ratio of counters, or why it has none gauntlet can burn.
fn ratio(indicator: &serde_json::Value) -> Result<Indicator, String> {
    let ratio = indicator
        .get("ratioMetric")
        .ok_or("its indicator has neither a `ratioMetric` nor a `thresholdMetric`")?;
    if ratio["counter"].as_bool() == Some(false) {
        return Err(
            "`counter: false` (a gauge ratio) cannot be rated per window; gauntlet maps counters"
                .into(),
        );
    }
    let query = |which: &str| -> Result<Option<String>, String> {
        let Some(source) = ratio.get(which) else {
            return Ok(None);
        };
        selector(prometheus_query(source, which)?).map(Some)
    };
    let total = query("total")?.ok_or("its `ratioMetric` has no `total`")?;
    match (query("good")?, query("bad")?) {
        (Some(good), None) => Ok(Indicator::Good { good, total }),
        (None, Some(bad)) => Ok(Indicator::Bad { bad, total }),
        _ => Err("its `ratioMetric` needs exactly one of `good` and `bad`".into()),
    }
}

/// A counter's series selector, as written (gauntlet rates it per window).
fn selector(query: &str) -> Result<String, String> {
    use promql_parser::parser::{Expr, parse};
    match parse(query) {
        Ok(Expr::VectorSelector(vs)) if vs.offset.is_none() && vs.at.is_none() => {
            Ok(query.trim().to_string())
        }
        Ok(_) => Err(format!(
            "`{query}` is not a counter's series selector (e.g. `http_requests_total{{code=~\"5..\"}}`): gauntlet adds rate() over each burn-rate window itself"
        )),
        Err(e) => Err(format!("`{query}` is not PromQL: {}", e.trim())),
    }
}

/// The burn-rate windows: (factor, long window, short window, severity), from the Google SRE
/// workbook's multi-window, multi-burn-rate alerting.
pub const BURN_RATES: [(f64, &str, &str, &str); 3] = [
    (14.4, "1h", "5m", "page"),
    (6.0, "6h", "30m", "page"),
    (1.0, "3d", "6h", "ticket"),
];

/// The record name of an SLO's error ratio over `window`.
fn record(window: &str) -> String {
    format!("gauntlet:slo_error_ratio:rate{window}")
}

/// `checkout-availability` → `CheckoutAvailability`.
fn camel(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The alert names generated for an SLO, fast to slow.
pub fn alert_names(slo: &Slo) -> [String; 3] {
    let base = camel(&slo.name);
    [
        format!("{base}ErrorBudgetBurnFast"),
        format!("{base}ErrorBudgetBurnMedium"),
        format!("{base}ErrorBudgetBurnSlow"),
    ]
}

/// The Prometheus rule file for `slos`: per SLO, its error ratio recorded over every window
/// the alerts use, and the three alerts.
pub fn burn_rate_rules(slos: &[Slo]) -> String {
    let mut out = String::from(
        "# Generated by gauntlet from OpenSLO: multi-window, multi-burn-rate alerts.\ngroups:\n",
    );
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    for slo in slos {
        let budget = 1.0 - slo.target;
        let _ = writeln!(
            out,
            "  - name: {}\n    rules:",
            quote(&format!("slo-{}", slo.name))
        );
        let mut windows: Vec<&str> = BURN_RATES
            .iter()
            .flat_map(|(_, l, s, _)| [*l, *s])
            .collect();
        windows.sort_unstable();
        windows.dedup();
        for window in windows {
            let expr = match &slo.indicator {
                Indicator::Bad { bad, total } => {
                    format!("sum(rate({bad}[{window}])) / sum(rate({total}[{window}]))")
                }
                Indicator::Good { good, total } => {
                    format!("1 - (sum(rate({good}[{window}])) / sum(rate({total}[{window}])))")
                }
                // The share of 30s samples over the window at which the query broke the
                // threshold (one series: the worst of them).
                Indicator::Threshold { query, op, value } => {
                    format!("1 - min(avg_over_time((({query}) {op} bool {value})[{window}:30s]))")
                }
            };
            let _ = writeln!(
                out,
                "      - record: {}\n        expr: {}\n        labels: {{slo: {}}}",
                record(window),
                quote(&expr),
                quote(&slo.name)
            );
        }
        for ((factor, long, short, severity), alert) in BURN_RATES.iter().zip(alert_names(slo)) {
            let threshold = factor * budget;
            let expr = format!(
                "{}{{slo={name}}} > {threshold} and {}{{slo={name}}} > {threshold}",
                record(long),
                record(short),
                name = quote(&slo.name)
            );
            let _ = writeln!(
                out,
                "      - alert: {alert}\n        expr: {}\n        labels: {{severity: {severity}, slo: {}, burn_rate: \"{factor}\", long_window: {long}, short_window: {short}}}\n        annotations: {{summary: {}}}",
                quote(&expr),
                quote(&slo.name),
                quote(&format!(
                    "{} ({}) burns its error budget at {factor}x over {long} and {short}: {:.4}% of the {} budget",
                    slo.name,
                    slo.service,
                    budget * 100.0,
                    slo.window
                ))
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "apiVersion: openslo/v1
kind: SLI
metadata: {name: quote-errors}
spec:
  ratioMetric:
    counter: true
    bad: {metricSource: {type: Prometheus, spec: {query: 'demo_http_requests_total{status=~\"5..\"}'}}}
    total: {metricSource: {type: Prometheus, spec: {query: demo_http_requests_total}}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: shop-availability}
spec:
  service: demo-shop
  indicatorRef: quote-errors
  timeWindow: [{duration: 28d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: available, target: 0.999}]
  alertPolicies: [page-sre]
";

    #[test]
    fn an_slo_with_a_referenced_sli_becomes_three_burn_rate_alerts() {
        let slos = read(FILE, "slo.yaml").unwrap();
        assert_eq!(slos.len(), 1);
        assert_eq!(slos[0].target, 0.999);
        let rules = burn_rate_rules(&slos);
        let parsed = crate::rules::parse_rules(&rules).unwrap();
        let names: Vec<&str> = parsed.alerts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ShopAvailabilityErrorBudgetBurnFast",
                "ShopAvailabilityErrorBudgetBurnMedium",
                "ShopAvailabilityErrorBudgetBurnSlow"
            ]
        );
        // 14.4 × 0.1% of the budget over 1h and 5m.
        assert!(
            rules.contains("rate1h{slo=\\\"shop-availability\\\"} > 0.0144"),
            "{rules}"
        );
    }

    #[test]
    fn a_threshold_slo_burns_the_time_its_query_breaks_the_threshold() {
        let file = "apiVersion: openslo/v1
kind: SLO
metadata: {name: quote-latency}
spec:
  service: demo-shop
  indicator:
    metadata: {name: quote-p99}
    spec:
      thresholdMetric:
        metricSource:
          type: Prometheus
          spec: {query: 'histogram_quantile(0.99, sum by (le) (rate(demo_http_request_duration_seconds_bucket[5m])))'}
  timeWindow: [{duration: 28d, isRolling: true}]
  budgetingMethod: Timeslices
  objectives: [{displayName: fast, op: lte, value: 0.3, target: 0.99}]
";
        let slos = read(file, "slo.yaml").unwrap();
        assert!(matches!(
            slos[0].indicator,
            Indicator::Threshold { op: "<=", .. }
        ));
        let rules = burn_rate_rules(&slos);
        crate::rules::parse_rules(&rules).unwrap();
        assert!(rules.contains("<= bool 0.3)[1h:30s]"), "{rules}");
        let no_op = file.replace("op: lte, ", "");
        let err = read(&no_op, "slo.yaml").unwrap_err().to_string();
        assert!(err.contains("needs `op`"), "{err}");
    }

    #[test]
    fn what_cannot_be_burned_is_refused_by_name() {
        for (from, to, says) in [
            ("counter: true", "counter: false", "gauge ratio"),
            (
                "type: Prometheus, spec: {query: demo",
                "type: Datadog, spec: {query: demo",
                "comes from `Datadog`",
            ),
            (
                "query: demo_http_requests_total}",
                "query: 'rate(demo_http_requests_total[5m])'}",
                "not a counter's series selector",
            ),
            (
                "indicatorRef: quote-errors",
                "indicatorRef: nope",
                "names no SLI",
            ),
            ("target: 0.999", "target: 99.9", "between 0 and 1"),
            (
                "apiVersion: openslo/v1\nkind: SLO",
                "apiVersion: openslo/v1alpha\nkind: SLO",
                "gauntlet reads openslo/v1",
            ),
        ] {
            assert!(FILE.contains(from), "{from}");
            let err = read(&FILE.replace(from, to), "slo.yaml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{says}: {err}");
        }
    }
}
