//! PromQL read through `promql-parser`: the metric names an expression reads (for dashboard
//! coverage), and plain series selectors matched against scraped samples (for an SLI read
//! straight from a service's metrics endpoint).

use std::collections::BTreeSet;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{self, Expr};
use promql_parser::util::{ExprVisitor, walk_expr};

use crate::{MetricFamily, Sample};

/// A PromQL expression that does not parse, or is not what its place allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PromqlError(pub String);

/// A series selector such as `http_requests_total{code=~"5.."}`.
#[derive(Debug, Clone)]
pub struct Selector {
    pub name: String,
    matchers: Vec<Matcher>,
}

impl Selector {
    /// Parses a plain selector: a metric name with optional label matchers, nothing else.
    pub fn parse(text: &str) -> Result<Self, PromqlError> {
        Self::read(text).map_err(PromqlError)
    }

    fn read(text: &str) -> Result<Self, String> {
        let expr = parser::parse(text).map_err(|e| e.trim().to_string())?;
        let Expr::VectorSelector(vs) = expr else {
            return Err(format!(
                "`{text}` is not a plain series selector (write e.g. `http_requests_total{{code=~\"5..\"}}`)"
            ));
        };
        if vs.offset.is_some() || vs.at.is_some() || !vs.matchers.or_matchers.is_empty() {
            return Err(format!(
                "`{text}`: `offset`, `@` and `or` have no meaning for a single scrape"
            ));
        }
        let mut matchers = vs.matchers.matchers;
        let name = match vs.name {
            Some(name) => name,
            None => {
                let at = matchers
                    .iter()
                    .position(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal))
                    .ok_or_else(|| format!("`{text}` names no metric"))?;
                matchers.remove(at).value
            }
        };
        matchers.retain(|m| m.name != "__name__");
        Ok(Self { name, matchers })
    }

    /// Whether a sample is one of the selected series. A missing label is the empty value,
    /// as in Prometheus.
    pub fn matches(&self, sample: &Sample) -> bool {
        sample.name == self.name
            && self
                .matchers
                .iter()
                .all(|m| m.is_match(sample.label(&m.name).unwrap_or("")))
    }

    /// The sum of the selected series in one scrape (0 when none is exposed yet: a counter
    /// that was never incremented is often absent).
    pub fn sum(&self, families: &[MetricFamily]) -> f64 {
        families
            .iter()
            .flat_map(|f| f.samples.iter())
            .filter(|s| self.matches(s) && s.value.is_finite())
            .map(|s| s.value)
            .sum()
    }
}

/// The metric names an expression reads, from every selector in it.
pub fn metric_names(expr: &str) -> Result<BTreeSet<String>, PromqlError> {
    struct Names(BTreeSet<String>);
    impl ExprVisitor for Names {
        type Error = ();
        fn pre_visit(&mut self, expr: &Expr) -> Result<bool, ()> {
            let vs = match expr {
                Expr::VectorSelector(vs) => vs,
                Expr::MatrixSelector(ms) => &ms.vs,
                _ => return Ok(true),
            };
            let by_matcher = vs
                .matchers
                .matchers
                .iter()
                .filter(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal))
                .map(|m| m.value.clone());
            self.0.extend(vs.name.clone().into_iter().chain(by_matcher));
            Ok(true)
        }
    }
    let parsed = parser::parse(expr).map_err(|e| PromqlError(e.trim().to_string()))?;
    let mut names = Names(BTreeSet::new());
    let _ = walk_expr(&mut names, &parsed);
    Ok(names.0)
}

/// Whether a metric name read by a query is the named family: the name itself or one of the
/// series the exposition format derives from it (`_total`, `_bucket`, `_count`, `_sum`).
pub fn reads_family(read: &str, family: &str) -> bool {
    read == family
        || read.strip_prefix(family).is_some_and(|suffix| {
            matches!(
                suffix,
                "_total" | "_bucket" | "_count" | "_sum" | "_created"
            )
        })
}

/// A Grafana panel query with its template variables replaced so that it parses as PromQL:
/// interval variables (`$__rate_interval`, `${__interval}`, `[[__range]]`) by `5m`, any other
/// variable by `gauntlet_var`. The flag says whether anything was replaced.
pub fn without_grafana_variables(expr: &str) -> (String, bool) {
    let mut out = String::with_capacity(expr.len());
    let mut replaced = false;
    let mut rest = expr;
    while let Some(at) = rest.find(['$', '[']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let found = if let Some(inner) = tail.strip_prefix("${") {
            inner.find('}').map(|end| (&inner[..end], end + 3))
        } else if let Some(inner) = tail.strip_prefix("[[") {
            inner.find("]]").map(|end| (&inner[..end], end + 4))
        } else if let Some(inner) = tail.strip_prefix('$') {
            let end = inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len());
            (end > 0).then(|| (&inner[..end], end + 1))
        } else {
            None
        };
        match found {
            Some((name, len)) => {
                let name = name.split([':', '.']).next().unwrap_or(name);
                let interval = name.starts_with("__")
                    && (name.contains("interval") || name.contains("range"))
                    && !name.ends_with("_ms")
                    && !name.ends_with("_s");
                out.push_str(if interval { "5m" } else { "gauntlet_var" });
                replaced = true;
                rest = &tail[len..];
            }
            None => {
                out.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    (out, replaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_text;

    const SCRAPE: &str = "# TYPE http_requests counter\n\
        http_requests_total{route=\"/a\",status=\"200\"} 90\n\
        http_requests_total{route=\"/a\",status=\"500\"} 7\n\
        http_requests_total{route=\"/b\",status=\"503\"} 3\n";

    #[test]
    fn selectors_sum_the_series_they_match() {
        let families = parse_text(SCRAPE).unwrap();
        let sum = |text: &str| Selector::parse(text).unwrap().sum(&families);
        assert_eq!(sum("http_requests_total"), 100.0);
        assert_eq!(sum(r#"http_requests_total{status=~"5.."}"#), 10.0);
        assert_eq!(
            sum(r#"http_requests_total{status!~"5..", route="/a"}"#),
            90.0
        );
        assert_eq!(sum(r#"{__name__="http_requests_total", route!="/a"}"#), 3.0);
        assert_eq!(sum(r#"http_requests_total{missing=""}"#), 100.0);
        assert_eq!(sum("absent_total"), 0.0);
    }

    #[test]
    fn only_plain_selectors_are_accepted() {
        for bad in [
            "rate(x_total[5m])",
            "x_total offset 5m",
            "x_total{a=\"1\" or b=\"2\"}",
            "x_total{",
            "{a=\"1\"}",
            "",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metric_names_come_from_every_selector() {
        let names = metric_names(
            r#"sum(rate(a_total{x="1"}[5m])) / sum(rate(b_bucket[1m])) + on() group_left {__name__="c"}"#,
        )
        .unwrap();
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["a_total", "b_bucket", "c"]
        );
        assert!(metric_names("sum(rate(a_total[5m]").is_err());
        assert!(reads_family(
            "demo_http_requests_total",
            "demo_http_requests"
        ));
        assert!(reads_family("lat_seconds_bucket", "lat_seconds"));
        assert!(!reads_family(
            "demo_http_requests_in_flight",
            "demo_http_requests"
        ));
    }

    #[test]
    fn grafana_variables_are_put_aside() {
        let (expr, replaced) = without_grafana_variables(
            r#"sum by (route) (rate(x_total{job="$job", env=~"${env:regex}"}[$__rate_interval])) > [[threshold]]"#,
        );
        assert!(replaced);
        assert_eq!(
            expr,
            r#"sum by (route) (rate(x_total{job="gauntlet_var", env=~"gauntlet_var"}[5m])) > gauntlet_var"#
        );
        assert!(metric_names(&expr).is_ok());
        assert_eq!(
            without_grafana_variables("rate(x[1m]) * 2"),
            ("rate(x[1m]) * 2".into(), false)
        );
    }

    proptest::proptest! {
        #[test]
        fn no_input_panics(text in "\\PC{0,80}") {
            let _ = Selector::parse(&text);
            let _ = metric_names(&text);
            let _ = without_grafana_variables(&text);
        }
    }
}
