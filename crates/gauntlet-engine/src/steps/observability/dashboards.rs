//! The service's Grafana dashboards: each a valid JSON model whose panel queries parse as
//! PromQL, and some panel reading every metric family named for each area it must cover.

use gauntlet_report::{Check, Outcome, Severity};
use gauntlet_spec::Dashboard;

use super::STEP;
use crate::context::RunContext;

/// A Grafana dashboard: a JSON model whose queries are PromQL, with, for every area the spec
/// names, a panel reading each of the area's metric families.
pub(super) fn dashboard_checks(
    ctx: &RunContext,
    spec: &Dashboard,
    severity: Severity,
) -> Vec<Check> {
    let shown = spec.file.as_str();
    let areas: Vec<&str> = spec.covers.keys().map(String::as_str).collect();
    let valid = Check::new(STEP, &format!("dashboard {shown} valid"), severity)
        .threshold("a Grafana JSON model whose panel queries parse as PromQL");
    let covers = Check::new(STEP, &format!("dashboard {shown} covers"), severity).threshold(
        format!("a panel reads every metric named for {}", areas.join(", ")),
    );
    let read = crate::prom::spec_file(&ctx.spec_path, shown)
        .map_err(|e| e.to_string())
        .and_then(|path| {
            std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        })
        .and_then(|text| {
            let evidence = ctx
                .recorder
                .evidence(STEP, &crate::context::file_safe(shown), text.as_bytes())
                .ok();
            gauntlet_metrics::dashboard::read_dashboard(&text)
                .map(|board| (board, evidence))
                .map_err(|e| match e.line {
                    0 => format!("{shown}: {}", e.message),
                    _ => format!("{shown}:{}:{}: {}", e.line, e.column, e.message),
                })
        });
    let (board, evidence) = match read {
        Ok(read) => read,
        Err(why) => {
            return vec![
                valid.outcome(Outcome::Fail, why.clone()),
                covers.outcome(Outcome::Fail, format!("the dashboard is refused: {why}")),
            ];
        }
    };
    let evidence: Vec<String> = evidence.into_iter().collect();
    let mut valid = valid_check(&board, valid);
    valid.evidence = evidence.clone();
    let mut covers = covers_check(&board, spec, covers);
    covers.evidence = evidence;
    vec![valid, covers]
}

/// Every panel query parses as PromQL (template variables replaced).
fn valid_check(board: &gauntlet_metrics::dashboard::Dashboard, check: Check) -> Check {
    let summary = format!(
        "{} panel(s), {} quer(ies)",
        board.panels.len(),
        board.query_count()
    );
    let broken = board.broken_queries();
    if broken.is_empty() {
        return check
            .measured(summary)
            .outcome(Outcome::Pass, "every panel query parses as PromQL");
    }
    let list: Vec<String> = broken
        .iter()
        .map(|(panel, q)| {
            let templated = if q.templated {
                " (template variables replaced)"
            } else {
                ""
            };
            let why = q.reads.as_ref().err().map_or("", |e| e.0.as_str());
            format!("panel `{panel}`: `{}`{templated}: {why}", q.expr)
        })
        .collect();
    let why = format!(
        "{} quer(ies) are not PromQL: {}",
        broken.len(),
        list.join("; ")
    );
    check.measured(summary).outcome(Outcome::Fail, why)
}

/// For each area the spec names, some panel (in a row or panel titled so, when there is one)
/// reads each of the area's metric families.
fn covers_check(
    board: &gauntlet_metrics::dashboard::Dashboard,
    spec: &Dashboard,
    check: Check,
) -> Check {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (area, metrics) in &spec.covers {
        for metric in metrics {
            let (panels, scoped) = board.covering(area, metric);
            let place = if scoped {
                format!("{area} (panels or rows titled so)")
            } else {
                format!("{area} (no panel or row titled so: any panel counts)")
            };
            if panels.is_empty() {
                missing.push(format!("{metric} for {place}"));
            } else {
                found.push(format!("{place}: {metric} ← {}", panels.join(", ")));
            }
        }
    }
    if missing.is_empty() {
        return check
            .measured(format!("{} metric(s) covered", found.len()))
            .outcome(Outcome::Pass, found.join("; "));
    }
    let measured = format!(
        "{} of {} metric(s) covered",
        found.len(),
        found.len() + missing.len()
    );
    check.measured(measured).outcome(
        Outcome::Fail,
        format!("no panel reads {}", missing.join(", ")),
    )
}
