//! Prometheus rule files (`groups: [{name, rules: [{alert | record, expr, for, ...}]}]`):
//! parsed strictly, as Prometheus itself loads them, so a file that Prometheus would refuse
//! is refused here with its line and column, before any server sees it.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use serde::Deserialize;
use serde_saphyr::MessageFormatter;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    query_offset: Option<String>,
    /// Accepted as Prometheus accepts it; nothing of gauntlet's depends on it.
    #[serde(default, rename = "limit")]
    _limit: Option<u64>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    alert: Option<String>,
    #[serde(default)]
    record: Option<String>,
    expr: String,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// An alerting rule, as much of it as gauntlet uses.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub group: String,
    pub name: String,
    pub expr: String,
    /// `for:` in seconds (0 when absent).
    pub for_seconds: f64,
    pub labels: BTreeMap<String, String>,
}

/// What a rule file holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    pub groups: Vec<String>,
    pub alerts: Vec<AlertRule>,
    pub records: Vec<String>,
}

impl Rules {
    pub fn alert(&self, name: &str) -> Option<&AlertRule> {
        self.alerts.iter().find(|a| a.name == name)
    }
}

/// Why a rule file is refused, and where (1-based; 0 when the whole file).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct RuleError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

fn whole(message: String) -> RuleError {
    RuleError {
        line: 0,
        column: 0,
        message,
    }
}

/// A Prometheus duration (`1h30m`, `15s`, `500ms`, `0`) in seconds.
pub fn parse_duration(text: &str) -> Option<f64> {
    if text == "0" {
        return Some(0.0);
    }
    if text.is_empty() {
        return None;
    }
    let units = [
        ("ms", 0.001),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3600.0),
        ("d", 86400.0),
        ("w", 604_800.0),
        ("y", 31_536_000.0),
    ];
    let mut rest = text;
    let mut total = 0.0;
    let mut last: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 15 {
            return None;
        }
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        // `ms` before `m`, and every unit at most once, largest first.
        let (rank, (unit, scale)) = units
            .iter()
            .enumerate()
            .find(|(_, (u, _))| rest.starts_with(u))?;
        let order = [6, 5, 4, 3, 2, 1, 0][rank];
        if last.is_some_and(|l| order <= l) {
            return None;
        }
        last = Some(order);
        total += value * scale;
        rest = &rest[unit.len()..];
    }
    Some(total)
}

/// A label name as Prometheus accepts it.
fn label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A metric name (for recording rules: colons allowed).
fn metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses and checks a rule file. The structure is checked strictly (unknown keys, a rule
/// that is both or neither alert and record, an empty expression, bad durations, duplicate
/// group names, invalid label names), and each expression must parse as PromQL.
pub fn parse_rules(text: &str) -> Result<Rules, RuleError> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 32,
            max_nodes: 200_000,
            max_total_scalar_bytes: 8 * 1024 * 1024,
        },
    };
    let file: RuleFile = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let e = e.without_snippet();
        let (line, column) = e
            .location()
            .map(|l| (l.line() as usize, l.column() as usize))
            .unwrap_or((0, 0));
        RuleError {
            line,
            column,
            message: crate::without_content(&serde_saphyr::UserMessageFormatter.format_message(e)),
        }
    })?;
    let mut rules = Rules::default();
    let mut seen = BTreeSet::new();
    for group in file.groups {
        let g = group.name.clone();
        if g.trim().is_empty() {
            return Err(whole("a rule group has an empty name".into()));
        }
        if !seen.insert(g.clone()) {
            return Err(whole(format!(
                "group `{g}` is defined twice (Prometheus refuses the file)"
            )));
        }
        check_group(&group)?;
        for (i, rule) in group.rules.into_iter().enumerate() {
            let at = |message: String| whole(format!("group `{g}`, rule {}: {message}", i + 1));
            add_rule(&mut rules, &g, rule).map_err(at)?;
        }
        rules.groups.push(g);
    }
    Ok(rules)
}

/// A group's own settings: its durations and label names.
fn check_group(group: &RawGroup) -> Result<(), RuleError> {
    let g = &group.name;
    for (what, value) in [
        ("interval", &group.interval),
        ("query_offset", &group.query_offset),
    ] {
        if let Some(v) = value
            && parse_duration(v).is_none()
        {
            return Err(whole(format!(
                "group `{g}`: {what} `{v}` is not a duration (e.g. 30s, 1m)"
            )));
        }
    }
    if let Some(bad) = group.labels.keys().find(|k| !label_name(k)) {
        return Err(whole(format!("group `{g}`: `{bad}` is not a label name")));
    }
    Ok(())
}

/// Checks one rule and adds it to `rules` as an alert or a record; `Err` says what is wrong.
fn add_rule(rules: &mut Rules, group: &str, rule: RawRule) -> Result<(), String> {
    if rule.expr.trim().is_empty() {
        return Err("`expr` is empty".into());
    }
    if let Err(e) = promql_parser::parser::parse(&rule.expr) {
        return Err(format!("`expr` is not PromQL: {}", e.trim()));
    }
    for (what, value) in [
        ("for", &rule.for_),
        ("keep_firing_for", &rule.keep_firing_for),
    ] {
        if let Some(v) = value
            && parse_duration(v).is_none()
        {
            return Err(format!("{what} `{v}` is not a duration (e.g. 30s, 1m)"));
        }
    }
    if let Some(bad) = rule.labels.keys().find(|k| !label_name(k)) {
        return Err(format!("`{bad}` is not a label name"));
    }
    match (rule.alert, rule.record) {
        (Some(name), None) => {
            if name.trim().is_empty() {
                return Err("`alert` is empty".into());
            }
            if let Some(bad) = rule.annotations.keys().find(|k| !label_name(k)) {
                return Err(format!("`{bad}` is not an annotation name"));
            }
            rules.alerts.push(AlertRule {
                group: group.to_string(),
                name,
                expr: rule.expr,
                for_seconds: rule.for_.as_deref().and_then(parse_duration).unwrap_or(0.0),
                labels: rule.labels,
            });
        }
        (None, Some(name)) => {
            if !metric_name(&name) {
                return Err(format!("`{name}` is not a valid metric name"));
            }
            if rule.for_.is_some() || !rule.annotations.is_empty() {
                return Err(format!(
                    "recording rule `{name}` cannot have `for` or `annotations`"
                ));
            }
            rules.records.push(name);
        }
        (Some(_), Some(_)) => return Err("has both `alert` and `record`: choose one".into()),
        (None, None) => return Err("needs `alert: NAME` or `record: NAME`".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "groups:\n  - name: demo\n    interval: 1s\n    rules:\n\
        \x20     - alert: PrimaryDown\n        expr: increase(x_total{outcome=\"error\"}[15s]) > 0\n\
        \x20       for: 0s\n        labels: {severity: page}\n        annotations: {summary: down}\n\
        \x20     - record: job:x:rate1m\n        expr: rate(x_total[1m])\n";

    #[test]
    fn a_good_file_lists_its_alerts_and_records() {
        let rules = parse_rules(GOOD).unwrap();
        assert_eq!(rules.groups, ["demo"]);
        let alert = rules.alert("PrimaryDown").unwrap();
        assert_eq!(alert.labels["severity"], "page");
        assert_eq!(alert.for_seconds, 0.0);
        assert_eq!(rules.records, ["job:x:rate1m"]);
    }

    #[test]
    fn what_prometheus_refuses_is_refused_with_a_place() {
        let unknown = GOOD.replace("for: 0s", "fore: 0s");
        let e = parse_rules(&unknown).unwrap_err();
        assert_eq!(e.line, 7, "{e}");
        assert!(e.message.contains("fore"), "{e}");
        for (bad, says) in [
            (GOOD.replace("for: 0s", "for: 5 minutes"), "not a duration"),
            (GOOD.replace("expr: rate(x_total[1m])", "expr: ''"), "empty"),
            (
                GOOD.replace("expr: rate(x_total[1m])", "expr: rate(x_total[1m]"),
                "not PromQL",
            ),
            (
                GOOD.replace("- record: job:x:rate1m", "- record: 1bad"),
                "metric name",
            ),
            (
                GOOD.replace("- record: job:x:rate1m", "- alert: A\n        record: b"),
                "both",
            ),
            (format!("{GOOD}  - name: demo\n    rules: []\n"), "twice"),
            (
                GOOD.replace("severity: page", "sev-erity: page"),
                "label name",
            ),
        ] {
            let e = parse_rules(&bad).unwrap_err();
            assert!(e.message.contains(says), "{says}: {e}");
        }
        assert!(parse_rules("groups: [").is_err());
        assert_eq!(parse_rules("").unwrap(), Rules::default());
    }

    #[test]
    fn durations_read_as_prometheus_reads_them() {
        assert_eq!(parse_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_duration("500ms"), Some(0.5));
        assert_eq!(parse_duration("0"), Some(0.0));
        for bad in ["", "5", "1m1h", "1s1s", "-1s", "1.5s", "s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]
        #[test]
        fn no_input_panics(text in "[ -~\\n]{0,200}") {
            let _ = parse_rules(&text);
        }
        #[test]
        fn no_mutation_of_a_good_file_panics(at in 0usize..300, byte in 0u8..128) {
            let mut bytes = GOOD.as_bytes().to_vec();
            let i = at % bytes.len();
            bytes[i] = byte;
            if let Ok(text) = String::from_utf8(bytes) {
                let _ = parse_rules(&text);
            }
        }
    }
}
