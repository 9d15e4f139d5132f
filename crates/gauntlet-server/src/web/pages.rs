//! The dashboard's pages, rendered on the server with maud (every value escaped; no
//! client framework, nothing fetched from elsewhere). Outcomes and decisions are shown by a
//! symbol and a word as well as a colour, so they read the same without colour.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use gauntlet_report::{Check, Outcome, Report};
use gauntlet_store::RunSummary;

use super::session::Visitor;

/// Every page: its title, who is signed in, and the content.
pub fn layout(title: &str, visitor: Option<&Visitor>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · gauntlet" }
                link rel="stylesheet" href="/ui/assets/gauntlet.css";
            }
            body {
                header {
                    nav aria-label="main" {
                        a href="/ui/runs" class="brand" { "gauntlet" }
                        a href="/ui/runs" { "Runs" }
                    }
                    @if let Some(visitor) = visitor {
                        form method="post" action="/ui/logout" class="who" {
                            span { "signed in as " strong { (visitor.caller.role.as_str()) } }
                            input type="hidden" name="csrf" value=(visitor.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (content) }
            }
        }
    }
}

/// The sign-in form: a token, exchanged for a session cookie.
pub fn login(problem: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            h1 { "Sign in" }
            @if let Some(problem) = problem {
                p class="problem" role="alert" { (problem) }
            }
            form method="post" action="/ui/login" class="login" {
                label for="token" { "Token" }
                input id="token" name="token" type="password" autocomplete="off" required;
                p class="hint" { "A token from " code { "gauntlet token create" } "; it stays on the server." }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// A decision as a badge: its word, and a class that gives it its colour and symbol (the
/// stylesheet's, hidden from screen readers, which read the word).
pub fn decision_badge(decision: &str) -> Markup {
    let class = match decision {
        "GO" => "go",
        "CONDITIONAL" => "conditional",
        "NO-GO" => "nogo",
        "INCONCLUSIVE" => "inconclusive",
        "running" | "CONTINUE" => "running",
        _ => "aborted",
    };
    html! { span class={ "badge " (class) } { (decision) } }
}

/// An outcome as a badge: its word, its colour and symbol from the stylesheet.
pub fn outcome_badge(outcome: Outcome) -> Markup {
    html! { span class={ "badge " (outcome.as_str()) } { (outcome.as_str()) } }
}

/// One row of the runs list.
pub struct RunRow {
    pub summary: RunSummary,
    pub report: Option<Report>,
}

/// The runs, newest first, with the filters applied.
pub fn runs(
    visitor: &Visitor,
    rows: &[RunRow],
    services: &[String],
    service: Option<&str>,
    decision: Option<&str>,
) -> Markup {
    let decisions = [
        "GO",
        "CONDITIONAL",
        "NO-GO",
        "INCONCLUSIVE",
        "ABORTED",
        "running",
    ];
    let content = html! {
        h1 { "Runs" }
        form method="get" action="/ui/runs" class="filters" {
            label for="service" { "Service" }
            select id="service" name="service" {
                option value="" { "any" }
                @for s in services {
                    option value=(s) selected[service == Some(s.as_str())] { (s) }
                }
            }
            label for="decision" { "Decision" }
            select id="decision" name="decision" {
                option value="" { "any" }
                @for d in decisions {
                    option value=(d) selected[decision == Some(d)] { (d) }
                }
            }
            button type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p { "No run matches." }
        } @else {
            table class="runs" {
                caption { (rows.len()) " run(s), newest first" }
                thead { tr {
                    th scope="col" { "Decision" } th scope="col" { "Service" } th scope="col" { "Version" }
                    th scope="col" { "Run" } th scope="col" { "Seed" } th scope="col" { "Started" } th scope="col" { "Duration" }
                    th scope="col" { "Readiness" } th scope="col" { "Drift" } th scope="col" { "Started by" }
                } }
                tbody {
                    @for row in rows { (run_row(row)) }
                }
            }
        }
    };
    layout("Runs", Some(visitor), content)
}

fn run_row(row: &RunRow) -> Markup {
    let s = &row.summary;
    let decision = s.decision.clone().unwrap_or_else(|| s.status.clone());
    let report = row.report.as_ref();
    let duration = report.map(|r| format!("{:.1}s", r.duration_ms as f64 / 1000.0));
    let readiness = report
        .and_then(|r| r.readiness.as_ref())
        .map(|r| format!("{:.0}%", r.score * 100.0));
    let drift = report
        .and_then(|r| r.drift.as_ref())
        .map(|d| d.changes.len());
    html! {
        tr {
            td { (decision_badge(&decision)) }
            td { a href={ "/ui/services/" (segment(&s.service)) "/gates" } title="the gates across its runs" { (s.service) } }
            td { (s.version) }
            td { a href={ "/ui/runs/" (s.id) } { (s.id) } }
            td { (report.and_then(|r| r.seed).map_or("—".to_string(), |n| n.to_string())) }
            td { (s.started_at) }
            td { (duration.unwrap_or_else(|| "—".into())) }
            td { (readiness.unwrap_or_else(|| "—".into())) }
            td { (drift_text(drift)) }
            td { (s.started_by.as_deref().unwrap_or("—")) }
        }
    }
}

/// `text` as one URL path segment (percent-encoded but for unreserved characters).
pub fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn drift_text(drift: Option<usize>) -> String {
    match drift {
        Some(0) => "no change".into(),
        Some(n) => format!("{n} change(s)"),
        None => "—".into(),
    }
}

/// Who signed and with which key, or why the sign-off does not count.
pub type Signed = Result<(String, String), String>;

/// What the run page shows about sign-offs.
pub struct Signoffs {
    pub required: Vec<String>,
    /// Role → who signed and with which key, or why it does not count.
    pub given: Vec<(String, Signed)>,
    /// The roles the visitor may sign as (an approver on a finished run), if any.
    pub form: Option<Vec<String>>,
}

/// What the run page shows about the attestation.
pub struct Attested {
    pub path: Option<String>,
    /// `Ok(key id)` when it verifies with the server's keyring; why not otherwise.
    pub verified: Option<Result<String, String>>,
}

/// A run: its decision and first reason, conditions, sign-offs, attestation, fingerprint,
/// files, and the command that replays its canary.
pub fn run(
    visitor: &Visitor,
    summary: &RunSummary,
    report: Option<&Report>,
    now: &crate::judge::Verdict,
    signoffs: &Signoffs,
    attested: &Attested,
) -> Markup {
    let content = html! {
        h1 { (summary.service) " " (summary.version) " " small { "run " (summary.id) } }
        p class="hint" { "Started " (summary.started_at) @if let Some(by) = &summary.started_by { " by " (by) } }
        (super::views::run_nav(&summary.id))
        section class="decision" aria-label="decision" {
            span id="decision" aria-live="polite" { (decision_badge(&now.decision)) }
            @if report.is_some() {
                p class="reason" id="reason" { (now.reason) }
            } @else {
                p class="reason" id="reason" { "The run is " (summary.status) "." }
            }
            @if summary.status == "running" {
                h2 { "As it happens" }
                ol id="live-timeline" class="live" data-events={ "/ui/runs/" (summary.id) "/events" } {}
                script src="/ui/assets/live.js" defer {}
            }
            p { a href={ "/ui/runs/" (summary.id) "/checks" } { "Every check" }
                " · " a href={ "/ui/runs/" (summary.id) "/checks?outcome=fail" } { "failed checks" } }
        }
        @if let Some(report) = report {
            (conditions(report))
        }
        (signoff_section(visitor, summary, signoffs))
        @if let Some(report) = report {
            (trust_section(report, attested))
            (files_section(summary, report))
        }
    };
    layout(&format!("Run {}", summary.id), Some(visitor), content)
}

fn conditions(report: &Report) -> Markup {
    html! {
        @if !report.conditions.is_empty() {
            section aria-labelledby="conditions" {
                h2 id="conditions" { "Conditions" }
                table {
                    thead { tr { th scope="col" { "Check" } th scope="col" { "Reason" } th scope="col" { "Owner" } th scope="col" { "Deadline" } } }
                    tbody {
                        @for c in &report.conditions {
                            tr {
                                td { (c.check) }
                                td { (c.reason) }
                                td { (c.owner.as_deref().or(c.owner_role.as_deref()).unwrap_or("—")) }
                                td { (c.deadline.as_deref().unwrap_or("—")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn signoff_section(visitor: &Visitor, summary: &RunSummary, signoffs: &Signoffs) -> Markup {
    html! {
        section aria-labelledby="signoffs" {
            h2 id="signoffs" { "Sign-offs" }
            @if signoffs.required.is_empty() && signoffs.given.is_empty() {
                p { "None required." }
            } @else {
                p { "Required: " @if signoffs.required.is_empty() { "none" } @else { (signoffs.required.join(", ")) } }
                ul {
                    @for (role, checked) in &signoffs.given {
                        li {
                            @match checked {
                                Ok((by, key)) => { (outcome_badge(Outcome::Pass)) " " strong { (role) } " by " (by) ", key " code { (key) } }
                                Err(why) => { (outcome_badge(Outcome::Fail)) " " strong { (role) } ": " (why) }
                            }
                        }
                    }
                }
            }
            @if let Some(roles) = &signoffs.form {
                form method="post" action={ "/ui/runs/" (summary.id) "/signoff" } class="signoff" {
                    input type="hidden" name="csrf" value=(visitor.csrf);
                    label for="role" { "Sign off as" }
                    select id="role" name="role" required {
                        @for role in roles { option value=(role) { (role) } }
                    }
                    label for="by" { "Name (default: the role's owner)" }
                    input id="by" name="by" type="text" autocomplete="name";
                    button type="submit" { "Sign off" }
                }
            }
        }
    }
}

fn trust_section(report: &Report, attested: &Attested) -> Markup {
    let fingerprint = report
        .trust
        .as_ref()
        .and_then(|t| t.green_fingerprint.as_deref());
    html! {
        section aria-labelledby="trust" {
            h2 id="trust" { "Attestation" }
            @match (&attested.path, &attested.verified) {
                (Some(path), Some(Ok(key))) => p { (outcome_badge(Outcome::Pass)) " " code { (path) } " verifies: signed by key " code { (key) } },
                (Some(path), Some(Err(why))) => p { (outcome_badge(Outcome::Fail)) " " code { (path) } " does not verify: " (why) },
                (Some(path), None) => p { code { (path) } },
                (None, _) => p { (outcome_badge(Outcome::Inconclusive)) " not signed" },
            }
            p { "Green fingerprint: " @if let Some(fp) = fingerprint { code { (fp) } } @else { "—" } }
        }
    }
}

fn files_section(summary: &RunSummary, report: &Report) -> Markup {
    let replays: Vec<&str> = report
        .evidence
        .iter()
        .map(|e| e.path.as_str())
        .filter(|p| p.ends_with("observations.jsonl.gz"))
        .collect();
    let file = |path: &str| format!("/ui/runs/{}/files/{path}", summary.id);
    html! {
        section aria-labelledby="files" {
            h2 id="files" { "Reports and evidence" }
            ul class="files" {
                @for name in ["report.md", "report.json", "junit.xml"] {
                    li { a href=(file(name)) { (name) } }
                }
                @for e in &report.evidence {
                    li { a href=(file(&e.path)) { (e.path) } " " small { (e.bytes) " bytes" } }
                }
            }
            @if !replays.is_empty() {
                h3 { "Replay the canary offline" }
                @for path in replays {
                    pre { code { "gauntlet judge " (summary.run_dir) "/" (path) " --spec " (summary.run_dir) "/spec.yaml" } }
                }
            }
        }
    }
}

/// Every check, filtered by step and outcome.
pub fn checks(
    visitor: &Visitor,
    summary: &RunSummary,
    report: &Report,
    step: Option<&str>,
    outcome: Option<&str>,
) -> Markup {
    let all: Vec<&Check> = report.steps.iter().flat_map(|s| s.checks.iter()).collect();
    let shown: Vec<&Check> = all
        .iter()
        .copied()
        .filter(|c| step.is_none_or(|s| c.step == s))
        .filter(|c| outcome.is_none_or(|o| c.outcome.as_str() == o))
        .collect();
    let outcomes = ["pass", "warn", "fail", "inconclusive", "skipped"];
    let content = html! {
        h1 { "Checks " small { a href={ "/ui/runs/" (summary.id) } { "run " (summary.id) } } }
        (super::views::run_nav(&summary.id))
        p { (decision_badge(&report.decision.to_string())) " " (report.summary) }
        form method="get" action={ "/ui/runs/" (summary.id) "/checks" } class="filters" {
            label for="step" { "Step" }
            select id="step" name="step" {
                option value="" { "any" }
                @for s in &report.steps {
                    option value=(s.name) selected[step == Some(s.name.as_str())] { (s.name) }
                }
            }
            label for="outcome" { "Outcome" }
            select id="outcome" name="outcome" {
                option value="" { "any" }
                @for o in outcomes {
                    option value=(o) selected[outcome == Some(o)] { (o) }
                }
            }
            button type="submit" { "Filter" }
        }
        table class="checks" {
            caption { (shown.len()) " of " (all.len()) " checks" }
            thead { tr {
                th scope="col" { "Outcome" } th scope="col" { "Check" } th scope="col" { "Measured" }
                th scope="col" { "Threshold" } th scope="col" { "Samples" } th scope="col" { "Reason" }
            } }
            // One group per step, headed by its name (a step's checks are together).
            @for group in shown.chunk_by(|a, b| a.step == b.step) {
                tbody {
                    tr { th colspan="6" scope="rowgroup" { (group[0].step) } }
                    @for c in group { (check_row(c)) }
                }
            }
        }
    };
    layout(&format!("Checks of {}", summary.id), Some(visitor), content)
}

/// A check's row, lean because a run of a thousand checks is a thousand rows: no class on
/// the row (the stylesheet finds the badge), and the cells' optional end tags left out, as
/// HTML allows. Every cell's text is escaped as maud escapes it.
fn check_row(c: &Check) -> Markup {
    use std::fmt::Write;
    let samples = c.samples.map(|n| n.to_string());
    let mut row = String::with_capacity(320);
    row.push_str("<tr><td>");
    row.push_str(&outcome_badge(c.outcome).into_string());
    if c.dry_run {
        row.push_str(" <small>(dry run)</small>");
    }
    for cell in [
        Some(c.name.as_str()),
        c.measured.as_deref(),
        c.threshold.as_deref(),
        samples.as_deref(),
        Some(c.reason.as_str()),
    ] {
        row.push_str("<td>");
        let _ = maud::Escaper::new(&mut row).write_str(cell.unwrap_or("—"));
    }
    PreEscaped(row)
}

/// A page that says what went wrong, in the layout.
pub fn problem(visitor: Option<&Visitor>, title: &str, message: &str) -> Markup {
    layout(
        title,
        visitor,
        html! { h1 { (title) } p class="problem" role="alert" { (message) } },
    )
}

/// Inline nothing: the stylesheet is a file so the CSP can forbid inline styles.
pub const STYLE: &str = include_str!("gauntlet.css");

/// The one script: a running run's page follows it live. Every page works without it.
pub const SCRIPT: &str = include_str!("live.js");
