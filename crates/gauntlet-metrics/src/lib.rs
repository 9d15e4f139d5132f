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
pub mod openslo;
pub mod prometheus;
pub mod promql;
pub mod rules;
mod text;

/// A parser's message about a file, without the file's content: quoted values become `"…"`,
/// and names that do not look like names become `` `…` ``. What a file holds is never
/// repeated in a message, a report or the run store; where it went wrong (line and column) is.
pub fn without_content(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(['"', '`']) {
        let quote = rest[start..].chars().next().unwrap_or('"');
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find(quote) else {
            out.push('…');
            return out;
        };
        let inside = &after[..end];
        let name_like = quote == '`'
            && inside.len() <= 40
            && inside
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']'));
        out.push(quote);
        out.push_str(if name_like { inside } else { "…" });
        out.push(quote);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

pub use text::{MetricFamily, MetricKind, ParseError, Sample, parse_text};

#[cfg(test)]
mod content_tests {
    #[test]
    fn messages_keep_names_and_lose_values() {
        let said = "invalid type: string \"root:$6$abc:19000:0:99999:7:::\", expected struct RuleFile; unknown field `alret`, expected `alert`; `root:$6$x:1`";
        let clean = super::without_content(said);
        assert_eq!(
            clean,
            "invalid type: string \"…\", expected struct RuleFile; unknown field `alret`, expected `alert`; `…`"
        );
    }
}
