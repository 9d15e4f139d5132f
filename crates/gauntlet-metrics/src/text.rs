//! The Prometheus text format: `# HELP`, `# TYPE`, and sample lines
//! `name{label="value",...} value [timestamp]`. Samples are grouped into families the way
//! Prometheus does: a histogram `x` owns `x_bucket`, `x_sum` and `x_count`.

use std::collections::BTreeMap;

/// The declared type of a family; `Untyped` when no `# TYPE` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl MetricKind {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "counter" => Self::Counter,
            "gauge" => Self::Gauge,
            "histogram" | "gaugehistogram" => Self::Histogram,
            "summary" => Self::Summary,
            "untyped" | "unknown" => Self::Untyped,
            _ => return None,
        })
    }

    /// Suffixes of the series that belong to a family of this kind.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            Self::Histogram => &["_bucket", "_sum", "_count", "_created"],
            Self::Summary => &["_sum", "_count", "_created"],
            Self::Counter => &["_total", "_created"],
            _ => &[],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name as written (`x_bucket` for a histogram bucket).
    pub name: String,
    /// Labels in the order written.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricFamily {
    pub name: String,
    pub kind: MetricKind,
    pub help: Option<String>,
    pub samples: Vec<Sample>,
}

/// A line that is not valid text format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses a whole exposition; families come out in the order they first appear.
pub fn parse_text(input: &str) -> Result<Vec<MetricFamily>, ParseError> {
    let mut families: Vec<MetricFamily> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (number, raw) in input.lines().enumerate() {
        let line_no = number + 1;
        let err = |message: String| ParseError {
            line: line_no,
            message,
        };
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, [' ', '\t']);
            let keyword = words.next().unwrap_or("");
            if keyword != "HELP" && keyword != "TYPE" {
                continue; // an ordinary comment
            }
            let name = words
                .next()
                .filter(|n| is_metric_name(n))
                .ok_or_else(|| err(format!("`# {keyword}` needs a valid metric name")))?;
            let rest = words.next().unwrap_or("").trim();
            let at = family_slot(&mut families, &mut index, name);
            if keyword == "TYPE" {
                families[at].kind = MetricKind::parse(rest)
                    .ok_or_else(|| err(format!("unknown metric type `{rest}`")))?;
            } else {
                families[at].help = Some(unescape_help(rest));
            }
            continue;
        }
        let sample = parse_sample(line).map_err(err)?;
        let family = owning_family(&families, &index, &sample.name)
            .unwrap_or_else(|| family_slot(&mut families, &mut index, &sample.name));
        families[family].samples.push(sample);
    }
    Ok(families)
}

fn family_slot(
    families: &mut Vec<MetricFamily>,
    index: &mut BTreeMap<String, usize>,
    name: &str,
) -> usize {
    *index.entry(name.to_string()).or_insert_with(|| {
        families.push(MetricFamily {
            name: name.to_string(),
            kind: MetricKind::Untyped,
            help: None,
            samples: Vec::new(),
        });
        families.len() - 1
    })
}

fn owning_family(
    families: &[MetricFamily],
    index: &BTreeMap<String, usize>,
    series: &str,
) -> Option<usize> {
    if let Some(&at) = index.get(series) {
        return Some(at);
    }
    families.iter().enumerate().rev().find_map(|(at, family)| {
        family
            .kind
            .suffixes()
            .iter()
            .any(|suffix| series.strip_suffix(suffix) == Some(family.name.as_str()))
            .then_some(at)
    })
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unescape_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A cursor over one sample line.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t']);
    }
    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }
    fn take_while(&mut self, pred: impl Fn(char) -> bool) -> &'a str {
        let end = self.rest.find(|c| !pred(c)).unwrap_or(self.rest.len());
        let (head, tail) = self.rest.split_at(end);
        self.rest = tail;
        head
    }
    /// A double-quoted string with `\\`, `\"` and `\n` escapes.
    fn quoted(&mut self) -> Result<String, String> {
        if !self.eat('"') {
            return Err("expected `\"`".into());
        }
        let mut out = String::new();
        let mut chars = self.rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[i + 1..];
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, '"')) => out.push('"'),
                    Some((_, other)) => return Err(format!("unknown escape `\\{other}`")),
                    None => break,
                },
                other => out.push(other),
            }
        }
        Err("unterminated quoted string".into())
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let mut cur = Cursor { rest: line };
    let mut name = cur.take_while(is_name_char).to_string();
    let mut labels = Vec::new();
    if cur.eat('{') {
        loop {
            cur.skip_spaces();
            if cur.eat('}') {
                break;
            }
            if cur.rest.starts_with('"') {
                // Quoted names (UTF-8 metric names): the first bare string is the metric name.
                let quoted = cur.quoted()?;
                cur.skip_spaces();
                if name.is_empty() && !cur.rest.starts_with('=') {
                    name = quoted;
                } else {
                    return Err("a quoted label name needs `=` and a value".into());
                }
            } else {
                let label = cur.take_while(is_name_char);
                if !is_label_name(label) {
                    return Err(format!("invalid label name `{label}`"));
                }
                cur.skip_spaces();
                if !cur.eat('=') {
                    return Err(format!("expected `=` after label `{label}`"));
                }
                cur.skip_spaces();
                let value = cur.quoted()?;
                if labels.iter().any(|(n, _): &(String, String)| n == label) {
                    return Err(format!("label `{label}` appears twice"));
                }
                labels.push((label.to_string(), value));
            }
            cur.skip_spaces();
            if cur.eat(',') {
                continue;
            }
            if cur.eat('}') {
                break;
            }
            return Err("expected `,` or `}` in the label set".into());
        }
    }
    if name.is_empty() || (!is_metric_name(&name) && !line.starts_with('{')) {
        return Err(format!("invalid metric name at `{}`", truncate(line)));
    }
    cur.skip_spaces();
    let value_text = cur.take_while(|c| c != ' ' && c != '\t');
    let value = parse_value(value_text)
        .ok_or_else(|| format!("invalid sample value `{}`", truncate(value_text)))?;
    cur.skip_spaces();
    let timestamp_ms = if cur.rest.is_empty() {
        None
    } else {
        let text = cur.take_while(|c| c != ' ' && c != '\t');
        Some(
            text.parse::<i64>()
                .map_err(|_| format!("invalid timestamp `{}`", truncate(text)))?,
        )
    };
    cur.skip_spaces();
    if !cur.rest.is_empty() {
        return Err(format!(
            "unexpected text `{}` after the sample",
            truncate(cur.rest)
        ));
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp_ms,
    })
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        "" => None,
        other
            if other
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
        {
            other.parse().ok()
        }
        _ => None,
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Recorded from the demo service's `/metrics` (prometheus-client 0.25 output).
    const RECORDED: &str = include_str!("../tests/fixtures/demo-metrics.txt");

    #[test]
    fn groups_histogram_series_under_their_family() {
        let families = parse_text(RECORDED).unwrap();
        let histogram = families
            .iter()
            .find(|f| f.name == "demo_http_request_duration_seconds")
            .unwrap();
        assert_eq!(histogram.kind, MetricKind::Histogram);
        assert!(
            histogram
                .samples
                .iter()
                .any(|s| s.name.ends_with("_bucket") && s.label("le") == Some("+Inf"))
        );
        assert!(histogram.samples.iter().any(|s| s.name.ends_with("_count")));
        let counter = families
            .iter()
            .find(|f| f.name == "demo_http_requests")
            .unwrap();
        assert_eq!(counter.kind, MetricKind::Counter);
        assert!(
            counter
                .samples
                .iter()
                .all(|s| s.name == "demo_http_requests_total")
        );
    }

    #[test]
    fn label_values_may_hold_braces_quotes_and_escapes() {
        let text = "a:b{path=\"/x}{\",q=\"say \\\"hi\\\"\\n\"} 1.5e3 1700000000000\n";
        let families = parse_text(text).unwrap();
        let sample = &families[0].samples[0];
        assert_eq!(sample.name, "a:b");
        assert_eq!(sample.label("path"), Some("/x}{"));
        assert_eq!(sample.label("q"), Some("say \"hi\"\n"));
        assert_eq!(sample.value, 1500.0);
        assert_eq!(sample.timestamp_ms, Some(1_700_000_000_000));
    }

    #[test]
    fn special_values_and_quoted_names() {
        let text = "x +Inf\ny -Inf\nz NaN\n{\"my.metric\",a=\"1\"} 2\n";
        let families = parse_text(text).unwrap();
        assert_eq!(families[0].samples[0].value, f64::INFINITY);
        assert!(families[2].samples[0].value.is_nan());
        assert_eq!(families[3].name, "my.metric");
    }

    #[test]
    fn malformed_lines_name_their_line() {
        for (text, line) in [
            ("ok 1\nbad{a=1} 2\n", 2),
            ("x{a=\"1\" 2\n", 1),
            ("x 1 2 3\n", 1),
            ("x abc\n", 1),
            ("# TYPE x wobbly\n", 1),
            ("x{a=\"1\",a=\"2\"} 1\n", 1),
            ("x{a=\"\\q\"} 1\n", 1),
        ] {
            let err = parse_text(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            let _ = parse_text(&text);
        }

        #[test]
        fn never_panics_on_near_valid_lines(
            name in "[a-z_:][a-z0-9_:]{0,8}",
            label in "[a-z_]{1,5}",
            value in "[\\PC]{0,12}",
            number in "[0-9eE+.\\-]{0,8}",
        ) {
            let line = format!("{name}{{{label}=\"{value}\"}} {number}\n");
            let _ = parse_text(&line);
        }
    }
}
