//! The dashboard's views of one part of a run, or of a service across runs: the canary
//! (weight over time, each judge's path against its boundaries, per-arm latency), drills and
//! DR (each drill's timeline and its times against their bounds), and the gates across the
//! service's recent runs (value and threshold in each cell).

use maud::{Markup, html};

use gauntlet_report::{Check, Outcome, Report, TimelineEvent};
use gauntlet_store::RunSummary;

use super::pages::{decision_badge, layout, outcome_badge};
use super::session::Visitor;

/// The links between a run's pages.
pub fn run_nav(run: &str) -> Markup {
    html! {
        nav aria-label="run" class="tabs" {
            a href={ "/ui/runs/" (run) } { "Run" }
            a href={ "/ui/runs/" (run) "/checks" } { "Checks" }
            a href={ "/ui/runs/" (run) "/canary" } { "Canary" }
            a href={ "/ui/runs/" (run) "/drills" } { "Drills and DR" }
        }
    }
}

/// One stage as the timeline tells it: when it started, at what weight, and how it ended.
struct StageSpan {
    label: String,
    started_ms: u64,
    ended_ms: Option<u64>,
    share: f64,
}

/// The stages from the canary's timeline (`stage N (W) started…`, `stage N (W): End after`).
fn stages(timeline: &[TimelineEvent]) -> Vec<StageSpan> {
    let mut spans: Vec<StageSpan> = Vec::new();
    for event in timeline
        .iter()
        .filter(|e| e.step.as_deref() == Some("canary") && e.kind == "stage")
    {
        if let Some((label, _)) = event.message.split_once(" started") {
            let share = label
                .rsplit_once('(')
                .and_then(|(_, w)| {
                    w.trim_end_matches(')')
                        .trim_end_matches('%')
                        .parse::<f64>()
                        .ok()
                })
                .map_or(0.0, |p| p / 100.0);
            spans.push(StageSpan {
                label: label.to_string(),
                started_ms: event.elapsed_ms,
                ended_ms: None,
                share,
            });
        } else if let Some(span) = spans
            .iter_mut()
            .rev()
            .find(|s| event.message.starts_with(&format!("{}:", s.label)))
        {
            span.ended_ms = Some(event.elapsed_ms);
        }
    }
    spans
}

/// The candidate's share over the canary's stages, as a step chart.
fn weight_chart(spans: &[StageSpan]) -> Markup {
    let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
        return html! { p { "No stage ran." } };
    };
    let start = first.started_ms as f64;
    let end = last.ended_ms.unwrap_or(last.started_ms + 1) as f64;
    let span = (end - start).max(1.0);
    let (width, height) = (600.0, 120.0);
    let x = |ms: f64| 40.0 + (ms - start) / span * (width - 50.0);
    let y = |share: f64| 10.0 + (1.0 - share) * (height - 30.0);
    let mut path = String::new();
    for s in spans {
        let (x0, x1) = (
            x(s.started_ms as f64),
            x(s.ended_ms.unwrap_or(s.started_ms) as f64),
        );
        let yy = y(s.share);
        path.push_str(&format!(
            "{}{x0:.1},{yy:.1} L{x1:.1},{yy:.1} ",
            if path.is_empty() { "M" } else { "L" }
        ));
    }
    html! {
        svg role="img" aria-label="the candidate's share of traffic over the canary's stages" viewBox={ "0 0 " (width) " " (height) } width="100%" {
            line x1="40" y1=(y(0.0)) x2=(width - 10.0) y2=(y(0.0)) stroke="#d0d7de" {}
            line x1="40" y1=(y(1.0)) x2="40" y2=(y(0.0)) stroke="#d0d7de" {}
            text x="4" y=(y(1.0) + 4.0) font-size="10" { "100%" }
            text x="4" y=(y(0.0) + 4.0) font-size="10" { "0%" }
            path d=(path) fill="none" stroke="#0969da" stroke-width="2" {}
            text x="40" y=(height - 4.0) font-size="10" { "0 s" }
            text x=(width - 60.0) y=(height - 4.0) font-size="10" { (format!("{:.1} s", span / 1000.0)) }
        }
    }
}

/// The canary: weight over time, per stage each judge's check and path, and latency per arm.
pub fn canary(visitor: &Visitor, summary: &RunSummary, report: &Report) -> Markup {
    let checks: Vec<&Check> = report
        .steps
        .iter()
        .filter(|s| s.name == "canary")
        .flat_map(|s| s.checks.iter())
        .collect();
    let spans = stages(&report.timeline);
    let latency: Vec<&TimelineEvent> = report
        .timeline
        .iter()
        .filter(|e| e.step.as_deref() == Some("canary") && e.kind == "stage-latency")
        .collect();
    let content = html! {
        h1 { "Canary " small { a href={ "/ui/runs/" (summary.id) } { "run " (summary.id) } } }
        (run_nav(&summary.id))
        @if checks.is_empty() {
            p { "The canary did not run in this run." }
        } @else {
            h2 { "Traffic to the candidate" }
            (weight_chart(&spans))
            table {
                caption { "Stages" }
                thead { tr { th scope="col" { "Stage" } th scope="col" { "Started" } th scope="col" { "Ended" } } }
                tbody { @for s in &spans { tr {
                    td { (s.label) }
                    td { (format!("{:.1} s", s.started_ms as f64 / 1000.0)) }
                    td { (s.ended_ms.map(|e| format!("{:.1} s", e as f64 / 1000.0)).unwrap_or_else(|| "—".into())) }
                } } }
            }
            h2 { "Judges" }
            @for c in &checks {
                section class="judge" {
                    h3 { (outcome_badge(c.outcome)) " " (c.name) }
                    p { (c.reason) }
                    @if let Some(m) = &c.measured { p class="hint" { (m) } }
                    @for svg in judge_charts(c) {
                        img src={ "/ui/runs/" (summary.id) "/files/" (svg) } alt={ "the path of " (c.name) " against its boundaries, with the accept or reject point" };
                    }
                }
            }
            h2 { "Latency per arm" }
            @if latency.is_empty() { p { "No latency was measured (counts from Prometheus carry none)." } }
            ul { @for e in &latency { li { (e.message) } } }
            (arm_table(report))
        }
    };
    layout(&format!("Canary of {}", summary.id), Some(visitor), content)
}

/// The SVG of this judge's path among its stage's evidence (`…-error-rate.svg` for the check
/// `stage 1 (shadow) error-rate`).
fn judge_charts(check: &Check) -> impl Iterator<Item = &String> {
    let judge = check.name.rsplit(' ').next().unwrap_or("");
    let suffix = format!("-{judge}.svg");
    check.evidence.iter().filter(move |e| e.ends_with(&suffix))
}

fn arm_table(report: &Report) -> Markup {
    let m = |arm: &str, name: &str| {
        report
            .measurements
            .get(&format!("canary.{arm}.{name}"))
            .copied()
    };
    let ms = |v: Option<f64>| v.map_or("—".to_string(), |s| format!("{:.2} ms", s * 1000.0));
    html! {
        table {
            caption { "The canary's totals per arm" }
            thead { tr { th scope="col" { "Arm" } th scope="col" { "Requests" } th scope="col" { "Error rate" } th scope="col" { "p50" } th scope="col" { "p95" } th scope="col" { "p99" } } }
            tbody { @for arm in ["baseline", "candidate"] { tr {
                th scope="row" { (arm) }
                td { (m(arm, "requests").map_or("—".into(), |v| format!("{v:.0}"))) }
                td { (m(arm, "error_rate").map_or("—".into(), |v| format!("{:.2}%", v * 100.0))) }
                td { (ms(m(arm, "latency_p50"))) }
                td { (ms(m(arm, "latency_p95"))) }
                td { (ms(m(arm, "latency_p99"))) }
            } } }
        }
    }
}

fn duration(ms: Option<u64>) -> String {
    ms.map_or("—".to_string(), |ms| {
        format!("{:.2} s", ms as f64 / 1000.0)
    })
}

/// Drills and DR: each drill's timeline and times, DR's checks (RPO, RTO) against bounds.
pub fn drills(visitor: &Visitor, summary: &RunSummary, report: &Report) -> Markup {
    let dr: Vec<&Check> = report
        .steps
        .iter()
        .filter(|s| s.name == "dr")
        .flat_map(|s| s.checks.iter())
        .collect();
    let content = html! {
        h1 { "Drills and DR " small { a href={ "/ui/runs/" (summary.id) } { "run " (summary.id) } } }
        (run_nav(&summary.id))
        @if report.drills.is_empty() && dr.is_empty() { p { "No drill and no DR rehearsal ran in this run." } }
        @for d in &report.drills {
            section class="drill" {
                h2 { (outcome_badge(d.outcome)) " " (d.step) ": " (d.name) }
                p { "Expected: " (d.expect) }
                table {
                    caption { "Times" }
                    tbody {
                        tr { th scope="row" { "Time to detect" } td { (duration(d.time_to_detect_ms)) } }
                        @for (alert, ms) in &d.time_to_alert_ms {
                            tr { th scope="row" { "Time to alert (" (alert) ")" } td { (duration(Some(*ms))) } }
                        }
                        tr { th scope="row" { "Time to recover" } td { (duration(d.time_to_recover_ms)) @if let Some(b) = d.recovery_bound_ms { " (bound " (duration(Some(b))) ")" } } }
                    }
                }
                @if let Some(svg) = &d.svg {
                    img src={ "/ui/runs/" (summary.id) "/files/" (svg) } alt={ "the timeline of drill " (d.name) };
                }
                table {
                    caption { "Timeline" }
                    thead { tr { th scope="col" { "At" } th scope="col" { "Event" } th scope="col" { "Detail" } } }
                    tbody { @for e in &d.events { tr { td { (duration(Some(e.at_ms))) } td { (e.kind) } td { (e.detail) } } } }
                }
            }
        }
        @if !dr.is_empty() {
            h2 { "Disaster recovery" }
            table {
                thead { tr { th scope="col" { "Outcome" } th scope="col" { "Check" } th scope="col" { "Measured" } th scope="col" { "Bound" } th scope="col" { "Reason" } } }
                tbody { @for c in &dr { tr {
                    td { (outcome_badge(c.outcome)) } td { (c.name) }
                    td { (c.measured.as_deref().unwrap_or("—")) } td { (c.threshold.as_deref().unwrap_or("—")) } td { (c.reason) }
                } } }
            }
        }
    };
    layout(&format!("Drills of {}", summary.id), Some(visitor), content)
}

/// The gates of a service's recent runs: one row per gate, one column per run (newest
/// first), each cell the outcome, the value and the threshold.
pub fn gates(visitor: &Visitor, service: &str, runs: &[(RunSummary, Report)]) -> Markup {
    let mut names: Vec<&str> = Vec::new();
    for (_, report) in runs {
        for gate in report.gates.iter().flat_map(|g| g.gates.iter()) {
            if !names.contains(&gate.name.as_str()) {
                names.push(&gate.name);
            }
        }
    }
    let content = html! {
        h1 { "Gates of " (service) }
        @if names.is_empty() {
            p { "No run of this service evaluated gates." }
        } @else {
            table class="heatmap" {
                caption { "The last " (runs.len()) " run(s), newest first" }
                thead { tr {
                    th scope="col" { "Gate" }
                    @for (run, report) in runs {
                        th scope="col" { a href={ "/ui/runs/" (run.id) } { (run.id) } br; (decision_badge(&report.decision.to_string())) }
                    }
                } }
                tbody { @for name in &names { tr {
                    th scope="row" { (name) }
                    @for (_, report) in runs {
                        @let gate = report.gates.iter().flat_map(|g| g.gates.iter()).find(|g| g.name == *name);
                        @match gate {
                            Some(g) => td class=(g.outcome.as_str()) {
                                (outcome_badge(g.outcome)) br;
                                (g.value.map_or("no value".to_string(), |v| format!("{v:.4}"))) " "
                                small { (g.pass) }
                            },
                            None => td { (outcome_badge(Outcome::Skipped)) " not evaluated" },
                        }
                    }
                } } }
            }
        }
    };
    layout(&format!("Gates of {service}"), Some(visitor), content)
}
