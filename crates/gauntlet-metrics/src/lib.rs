//! Metric sources: a parser for the Prometheus text exposition format (0.0.4), written for
//! robustness rather than borrowed, because the common crate is regex-based, rejects `:` in
//! names and breaks on `}` inside label values; a client of the Prometheus HTTP API; and a
//! strict reader of Prometheus rule files; PromQL through `promql-parser`.
//!
//! ```
//! let text = "# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\"} 3\n";
//! let families = gauntlet_metrics::parse_text(text).unwrap();
//! assert_eq!(families[0].name, "http_requests_total");
//! assert_eq!(families[0].samples[0].value, 3.0);
//! ```

pub mod dashboard;
pub mod prometheus;
pub mod promql;
pub mod rules;
mod text;

pub use text::{MetricFamily, MetricKind, ParseError, Sample, parse_text};
