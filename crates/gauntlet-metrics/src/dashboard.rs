//! Grafana dashboards (the JSON model): panels and the PromQL their targets run, so that a
//! dashboard can be checked to cover the metrics a release review requires. Panels inside
//! rows (`panels[].panels[]`, collapsed rows) and the legacy `rows[].panels[]` are read too.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::promql::{PromqlError, metric_names, reads_family, without_grafana_variables};

/// A dashboard as far as coverage goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    pub title: String,
    pub panels: Vec<Panel>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    /// The title of the row the panel sits in, if any.
    pub row: Option<String>,
    pub queries: Vec<Query>,
}

impl Panel {
    /// Whether the panel or its row is titled after an area (case-insensitive).
    pub fn about(&self, area: &str) -> bool {
        let area = area.to_lowercase();
        std::iter::once(&self.title)
            .chain(self.row.iter())
            .any(|t| t.to_lowercase().contains(&area))
    }
}

/// One target's expression and the metric names it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub expr: String,
    /// The names read, or why the expression is not PromQL.
    pub reads: Result<BTreeSet<String>, PromqlError>,
    /// Whether it used Grafana template variables (replaced before parsing).
    pub templated: bool,
}

/// A dashboard file that is not JSON, or not a dashboard; `line` and `column` are 1-based
/// (0 when the problem has no single place).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct DashboardError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

#[derive(Deserialize)]
struct RawDashboard {
    #[serde(default)]
    title: String,
    #[serde(default)]
    panels: Vec<RawPanel>,
    #[serde(default)]
    rows: Vec<RawRow>,
    /// Some exports wrap the model: `{"dashboard": {...}}`.
    #[serde(default)]
    dashboard: Option<Box<RawDashboard>>,
}

#[derive(Deserialize)]
struct RawRow {
    #[serde(default)]
    title: String,
    #[serde(default)]
    panels: Vec<RawPanel>,
}

#[derive(Deserialize)]
struct RawPanel {
    #[serde(default)]
    title: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    targets: Vec<RawTarget>,
    #[serde(default)]
    panels: Vec<RawPanel>,
}

#[derive(Deserialize)]
struct RawTarget {
    #[serde(default)]
    expr: Option<String>,
    #[serde(default)]
    hide: bool,
}

/// Reads a dashboard's JSON model.
pub fn read_dashboard(text: &str) -> Result<Dashboard, DashboardError> {
    let raw: RawDashboard = serde_json::from_str(text).map_err(|e| DashboardError {
        line: e.line(),
        column: e.column(),
        message: crate::without_content(e.to_string().split(" at line ").next().unwrap_or("")),
    })?;
    let raw = match raw.dashboard {
        Some(inner) => *inner,
        None => raw,
    };
    let mut panels = Vec::new();
    fn walk(into: &mut Vec<Panel>, panel: RawPanel, row: Option<&str>) {
        let queries = panel
            .targets
            .into_iter()
            .filter(|t| !t.hide)
            .filter_map(|t| t.expr)
            .filter(|e| !e.trim().is_empty())
            .map(|expr| {
                let (plain, templated) = without_grafana_variables(&expr);
                Query {
                    reads: metric_names(&plain),
                    expr,
                    templated,
                }
            })
            .collect();
        let own_row = (panel.kind == "row").then(|| panel.title.clone());
        into.push(Panel {
            title: panel.title,
            row: row.map(str::to_string),
            queries,
        });
        for inner in panel.panels {
            walk(into, inner, own_row.as_deref().or(row));
        }
    }
    // An expanded row's panels follow it at the top level, up to the next row.
    let mut row: Option<String> = None;
    for panel in raw.panels {
        if panel.kind == "row" {
            row = Some(panel.title.clone());
            walk(&mut panels, panel, None);
        } else {
            walk(&mut panels, panel, row.as_deref());
        }
    }
    for legacy in raw.rows {
        let title = legacy.title;
        for panel in legacy.panels {
            walk(
                &mut panels,
                panel,
                (!title.is_empty()).then_some(title.as_str()),
            );
        }
    }
    if panels.iter().all(|p| p.queries.is_empty()) {
        return Err(DashboardError {
            line: 0,
            column: 0,
            message: "no panel has a query (`panels[].targets[].expr`)".into(),
        });
    }
    Ok(Dashboard {
        title: raw.title,
        panels,
    })
}

impl Dashboard {
    /// Titles of the panels with a query that reads the metric family.
    pub fn panels_reading(&self, family: &str) -> Vec<&str> {
        self.panels_reading_in(family, |_| true)
    }

    /// Titles of the panels about an area (by their own or their row's title) that read the
    /// metric family; when no panel is about the area, any panel counts, and the flag says so.
    pub fn covering(&self, area: &str, family: &str) -> (Vec<&str>, bool) {
        if self.panels.iter().any(|p| p.about(area)) {
            (self.panels_reading_in(family, |p| p.about(area)), true)
        } else {
            (self.panels_reading(family), false)
        }
    }

    fn panels_reading_in(&self, family: &str, keep: impl Fn(&Panel) -> bool) -> Vec<&str> {
        self.panels
            .iter()
            .filter(|p| keep(p))
            .filter(|p| {
                p.queries.iter().any(|q| {
                    q.reads
                        .as_ref()
                        .is_ok_and(|names| names.iter().any(|n| reads_family(n, family)))
                })
            })
            .map(|p| p.title.as_str())
            .collect()
    }

    /// Queries that are not PromQL (template variables replaced first), with their panel.
    pub fn broken_queries(&self) -> Vec<(&str, &Query)> {
        self.panels
            .iter()
            .flat_map(|p| p.queries.iter().map(move |q| (p.title.as_str(), q)))
            .filter(|(_, q)| q.reads.is_err())
            .collect()
    }

    pub fn query_count(&self) -> usize {
        self.panels.iter().map(|p| p.queries.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOARD: &str = r#"{
      "title": "shop",
      "panels": [
        {"title": "Availability", "type": "stat",
         "targets": [{"expr": "sum(rate(http_requests_total{code!~\"5..\"}[$__rate_interval])) / sum(rate(http_requests_total[$__rate_interval]))"}]},
        {"title": "Row", "type": "row", "collapsed": true, "panels": [
          {"title": "p99 by version",
           "targets": [{"expr": "histogram_quantile(0.99, sum by (le, version) (rate(latency_seconds_bucket[5m])))"},
                       {"expr": "rate(hidden_total[5m])", "hide": true}]}
        ]},
        {"title": "Broken", "targets": [{"expr": "sum(rate(x_total[5m]"}]},
        {"title": "Text", "type": "text"}
      ],
      "rows": [{"title": "Old", "panels": [{"title": "Legacy", "targets": [{"expr": "up"}]}]}]
    }"#;

    #[test]
    fn panels_and_their_metrics_are_read_from_rows_too() {
        let board = read_dashboard(BOARD).unwrap();
        assert_eq!(board.title, "shop");
        assert_eq!(board.panels_reading("http_requests"), ["Availability"]);
        assert_eq!(board.panels_reading("latency_seconds"), ["p99 by version"]);
        assert_eq!(board.panels_reading("up"), ["Legacy"]);
        assert!(
            board.panels_reading("hidden").is_empty(),
            "hidden targets do not count"
        );
        let broken = board.broken_queries();
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].0, "Broken");
        assert_eq!(board.query_count(), 4);
        // Areas are scoped by row or panel titles when the dashboard has them.
        assert_eq!(
            board.covering("row", "latency_seconds"),
            (vec!["p99 by version"], true)
        );
        assert_eq!(board.covering("row", "http_requests"), (vec![], true));
        assert_eq!(
            board.covering("slo", "http_requests"),
            (vec!["Availability"], false)
        );
        assert_eq!(board.covering("legacy", "up"), (vec!["Legacy"], true));
        let wrapped = format!("{{\"dashboard\": {BOARD}}}");
        assert_eq!(read_dashboard(&wrapped).unwrap(), board);
    }

    #[test]
    fn what_is_not_a_dashboard_is_refused_with_a_place() {
        let e = read_dashboard("{\n  \"panels\": [\n    {\"title\": 3}\n  ]\n}").unwrap_err();
        assert_eq!((e.line, e.column > 0), (3, true), "{e}");
        let e =
            read_dashboard("{\"panels\": [{\"title\": \"t\", \"type\": \"text\"}]}").unwrap_err();
        assert!(e.message.contains("no panel has a query"), "{e}");
        assert!(read_dashboard("").is_err());
        assert!(read_dashboard("[]").is_err());
    }

    proptest::proptest! {
        #[test]
        fn no_input_panics(text in "[ -~\\n]{0,200}") {
            let _ = read_dashboard(&text);
        }
    }
}
