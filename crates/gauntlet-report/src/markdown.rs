//! `report.md`: decision first, then steps and checks, then conditions and the timeline —
//! short enough for a pull-request comment or a CI step summary.

use std::fmt::Write;

use crate::model::{
    Check, Decision, FailureCause, GatesReport, Outcome, ReadinessReport, Report, TaxonomyReport,
};

fn badge(decision: Decision) -> &'static str {
    match decision {
        Decision::Go => "✅",
        Decision::Conditional => "⚠️",
        Decision::NoGo => "⛔",
        Decision::Inconclusive => "❔",
        Decision::Aborted => "🛑",
    }
}

pub(crate) fn outcome_cell(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "✅ pass",
        Outcome::Warn => "⚠️ warn",
        Outcome::Fail => "❌ fail",
        Outcome::Inconclusive => "❔ inconclusive",
        Outcome::Skipped => "⏭️ skipped",
    }
}

/// Table cells cannot hold `|` or newlines.
pub fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// The gates: score, then each gate's query, values, threshold and why.
pub fn gates_markdown(gates: &GatesReport) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Gates — {} score {} (pass {}, warn {})\n",
        outcome_cell(gates.outcome),
        percent(gates.score),
        gates.pass,
        gates.warn
    );
    let _ = writeln!(md, "| gate | outcome | value | threshold | query | why |");
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    for g in &gates.gates {
        let threshold = match &g.warn {
            Some(w) => format!("pass `{}`, warn `{}`", g.pass, w),
            None => format!("pass `{}`", g.pass),
        };
        let kind = if g.critical {
            "critical".to_string()
        } else {
            format!("weight {}", g.weight)
        };
        let raw = if g.raw.is_empty() {
            "no series".to_string()
        } else {
            g.raw.join("; ")
        };
        let query = match &g.baseline_query {
            Some(b) => format!("`{}` vs baseline `{}`", g.query, b),
            None => format!("`{}`", g.query),
        };
        let _ = writeln!(
            md,
            "| {} ({kind}) | {} | {} | {} | {} | {} |",
            cell(&g.name),
            outcome_cell(g.outcome),
            cell(&raw),
            cell(&threshold),
            cell(&query),
            cell(&g.reason)
        );
    }
    md.push('\n');
    md
}

/// The checklist: the overall score, each category's, and every item with its owner.
pub fn readiness_markdown(readiness: &ReadinessReport) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Readiness — {} (minimum {})\n",
        percent(readiness.score),
        readiness.minimum
    );
    let _ = writeln!(md, "| category | weight | score |");
    let _ = writeln!(md, "|---|---|---|");
    for c in &readiness.categories {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            cell(&c.name),
            c.weight,
            percent(c.score)
        );
    }
    md.push('\n');
    let _ = writeln!(
        md,
        "| category | item | status | owner | kind | evidence | detail |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for c in &readiness.categories {
        for i in &c.items {
            let owner = match &i.owner {
                Some(who) => format!("{who} ({})", i.owner_role),
                None => i.owner_role.clone(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                cell(&c.name),
                cell(&i.name),
                i.status,
                cell(&owner),
                i.kind,
                cell(&i.evidence.join(", ")),
                cell(&i.detail)
            );
        }
    }
    md.push('\n');
    md
}

/// What a cause is, in a few words: `canary · candidate GET /items/{id} · status 500`.
fn cause_label(c: &FailureCause) -> String {
    let mut parts = vec![c.step.clone()];
    if let (Some(arm), Some(route)) = (&c.arm, &c.route) {
        parts.push(format!("{arm} `{route}`"));
    }
    parts.push(c.cause.clone());
    parts.join(" · ")
}

/// The failure taxonomy: the causes to look at first, then every group.
pub fn taxonomy_markdown(taxonomy: &TaxonomyReport) -> String {
    let mut md = String::from("## Failure taxonomy\n\nLook first at:\n\n");
    for (i, c) in taxonomy.top.iter().enumerate() {
        let _ = writeln!(
            md,
            "{}. **{}** — {} {} ({}). {} _Hint ({}):_ {}",
            i + 1,
            cell(&cause_label(c)),
            c.count,
            c.kind,
            percent(c.share),
            cell(&c.example),
            c.hint_from,
            cell(&c.hint)
        );
    }
    md.push('\n');
    for (title, causes) in [
        ("Failed requests", &taxonomy.requests),
        ("Failed and inconclusive checks", &taxonomy.checks),
    ] {
        if causes.is_empty() {
            continue;
        }
        let _ = writeln!(
            md,
            "{title}:\n\n| cause | count | share | example |\n|---|---|---|---|"
        );
        for c in causes {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                cell(&cause_label(c)),
                c.count,
                percent(c.share),
                cell(&c.example)
            );
        }
        md.push('\n');
    }
    md
}

/// The run's report as Markdown: the decision first, then what it rests on, then every
/// check, drill and event.
pub fn to_markdown(report: &Report) -> String {
    let mut md = String::new();
    header(&mut md, report);
    undo_failures(&mut md, report);
    trust_section(&mut md, report);
    drift_section(&mut md, report);
    conditions_section(&mut md, report);
    if let Some(taxonomy) = &report.taxonomy {
        md.push_str(&taxonomy_markdown(taxonomy));
    }
    if let Some(gates) = &report.gates {
        md.push_str(&gates_markdown(gates));
    }
    if let Some(readiness) = &report.readiness {
        md.push_str(&readiness_markdown(readiness));
    }
    steps_table(&mut md, report);
    checks_table(&mut md, report);
    drill_sections(&mut md, report);
    runbook_sections(&mut md, report);
    chart_links(&mut md, report);
    step_notes(&mut md, report);
    timeline_details(&mut md, report);
    md
}

/// The decision, its summary and what was run.
fn header(md: &mut String, report: &Report) {
    let _ = writeln!(
        md,
        "# {} {} — {} {}\n",
        badge(report.decision),
        report.decision,
        report.service.name,
        report.service.version
    );
    let _ = writeln!(md, "{}\n", report.summary);
    let _ = writeln!(
        md,
        "Run `{}` · gating `{}` · {:.1}s · spec `{}` (sha256 `{}`)\n",
        report.run_id,
        report.gating,
        report.duration_ms as f64 / 1000.0,
        report.spec.path,
        &report.spec.sha256[..report.spec.sha256.len().min(12)]
    );
}

/// Faults left in: first, since the system may still be broken.
fn undo_failures(md: &mut String, report: &Report) {
    let failed: Vec<&Check> = report.undo_failures().collect();
    if failed.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## ✘ Faults NOT undone\n\nThe system may still carry these; undo them by hand, or run `gauntlet recover`:\n"
    );
    for check in failed {
        let _ = writeln!(md, "- `{}`: {}", check.id, cell(&check.reason));
    }
    md.push('\n');
}

/// The green fingerprint, the release manifest and the attestation.
fn trust_section(md: &mut String, report: &Report) {
    if let Some(trust) = &report.trust {
        let _ = writeln!(md, "## Trust\n");
        if let Some(fp) = &trust.green_fingerprint {
            let _ = writeln!(md, "- Green fingerprint: `{fp}`");
        }
        if let Some(manifest) = &trust.manifest {
            let _ = writeln!(
                md,
                "- Release manifest: [`{manifest}`]({manifest}) (version {}, minisign signature `{manifest}.minisig`)",
                trust.manifest_version.as_deref().unwrap_or("?")
            );
        }
        match (&trust.attestation, &trust.signing_key) {
            (Some(att), Some(key)) => {
                let _ = writeln!(
                    md,
                    "- Attestation: [`{att}`]({att}) (DSSE, in-toto statement, signed by key `{key}`); check it with `gauntlet attest verify RUN_DIR/{att} --key {}`",
                    trust.public_key.as_deref().unwrap_or("KEY.pub")
                );
            }
            _ => {
                let _ = writeln!(md, "- Attestation: none");
            }
        }
        if let Some(note) = &trust.note {
            let _ = writeln!(md, "- Note: {}", cell(note));
        }
        md.push('\n');
    }
}

/// What changed since the previous run.
fn drift_section(md: &mut String, report: &Report) {
    if let Some(drift) = &report.drift {
        let _ = writeln!(md, "## Drift since run `{}`\n", drift.previous_run);
        if drift.changes.is_empty() {
            let _ = writeln!(
                md,
                "Nothing changed: same spec, protected files, flags and SBOM.\n"
            );
        } else {
            for change in drift.changes.iter().take(30) {
                let _ = writeln!(md, "- {}", cell(change));
            }
            if drift.changes.len() > 30 {
                let _ = writeln!(
                    md,
                    "- … and {} more (`gauntlet drift`)",
                    drift.changes.len() - 30
                );
            }
            md.push('\n');
        }
    }
}

/// What a CONDITIONAL rests on, with owners and deadlines.
fn conditions_section(md: &mut String, report: &Report) {
    if !report.conditions.is_empty() {
        let _ = writeln!(md, "## Conditions\n");
        for c in &report.conditions {
            let owner = match (&c.owner_role, &c.owner) {
                (Some(role), Some(who)) => format!(" — owner: {who} ({role})"),
                (Some(role), None) => format!(" — owner role: {role} (no one named)"),
                _ => " — no owner named".into(),
            };
            let deadline = c
                .deadline
                .as_ref()
                .map(|d| format!(" — deadline {d}"))
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "- `{}`: {}{}{}",
                c.check,
                cell(&c.reason),
                owner,
                deadline
            );
        }
        md.push('\n');
    }
}

/// One row per step.
fn steps_table(md: &mut String, report: &Report) {
    let _ = writeln!(md, "## Steps\n");
    let _ = writeln!(md, "| step | outcome | checks | time |");
    let _ = writeln!(md, "|---|---|---|---|");
    for step in &report.steps {
        let passed = step.checks.iter().filter(|c| c.outcome.is_pass()).count();
        let _ = writeln!(
            md,
            "| {} | {} | {passed}/{} passed | {:.1}s |",
            step.name,
            outcome_cell(step.outcome),
            step.checks.len(),
            step.duration_ms as f64 / 1000.0
        );
    }
    md.push('\n');
}

/// One row per check.
fn checks_table(md: &mut String, report: &Report) {
    let _ = writeln!(md, "## Checks\n");
    let _ = writeln!(md, "| check | outcome | measured | threshold | why |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for check in report.checks() {
        let _ = writeln!(
            md,
            "| `{}`{} | {} | {} | {} | {} |",
            check.id,
            if check.dry_run { " (dry run)" } else { "" },
            outcome_cell(check.outcome),
            cell(check.measured.as_deref().unwrap_or("—")),
            cell(check.threshold.as_deref().unwrap_or("—")),
            cell(&check.reason)
        );
    }
}

/// Each runbook executed: every step's time against its budget, the whole against its
/// target and limit, the first step that failed.
fn runbook_sections(md: &mut String, report: &Report) {
    let secs = |ms: u64| match ms {
        ms if ms >= 60_000 && ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms >= 60_000 => format!("{}m {:.0}s", ms / 60_000, (ms % 60_000) as f64 / 1000.0),
        ms => format!("{:.2}s", ms as f64 / 1000.0),
    };
    for runbook in &report.runbooks {
        let _ = writeln!(
            md,
            "\n## Runbook `{}` ({}) — {} {} (target {}, limit {})\n",
            runbook.name,
            runbook.ran_in,
            outcome_cell(runbook.outcome),
            secs(runbook.total_ms),
            secs(runbook.target_ms),
            secs(runbook.max_ms)
        );
        if let Some(step) = &runbook.first_failed {
            let _ = writeln!(md, "First step that failed: **{}**\n", cell(step));
        }
        let _ = writeln!(
            md,
            "| step | kind | took | budget | outcome | detail |\n|---|---|---|---|---|---|"
        );
        for step in &runbook.steps {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                cell(&step.name),
                step.kind,
                step.took_ms.map_or("—".into(), secs),
                secs(step.budget_ms),
                outcome_cell(step.outcome),
                cell(&step.detail)
            );
        }
    }
}

/// Each drill's times and events.
fn drill_sections(md: &mut String, report: &Report) {
    for drill in &report.drills {
        let ms =
            |v: Option<u64>| v.map_or("—".to_string(), |v| format!("{:.2}s", v as f64 / 1000.0));
        let _ = writeln!(
            md,
            "\n## Drill `{}` ({}) — {}\n\nexpect **{}** · time to detect {} · time to recover {}{}{}{}{}\n",
            drill.name,
            drill.step,
            outcome_cell(drill.outcome),
            cell(&drill.expect),
            ms(drill.time_to_detect_ms),
            ms(drill.time_to_recover_ms),
            drill.recovery_bound_ms.map_or(String::new(), |b| format!(
                " (bound {:.0}s)",
                b as f64 / 1000.0
            )),
            drill
                .time_to_alert_ms
                .iter()
                .map(|(alert, v)| format!(" · time to alert `{alert}` {}", ms(Some(*v))))
                .collect::<String>(),
            drill
                .svg
                .as_ref()
                .map_or(String::new(), |svg| format!(" · [timeline]({svg})")),
            drill
                .chaostoolkit
                .as_ref()
                .map_or(String::new(), |j| format!(
                    " · [Chaos Toolkit journal]({j})"
                ))
        );
        let _ = writeln!(md, "| t | event | detail |");
        let _ = writeln!(md, "|---|---|---|");
        for event in &drill.events {
            let _ = writeln!(
                md,
                "| +{:.3}s | {} | {} |",
                event.at_ms as f64 / 1000.0,
                event.kind,
                cell(&event.detail)
            );
        }
    }
}

/// Links to the charts among the evidence.
fn chart_links(md: &mut String, report: &Report) {
    let charts: Vec<&str> = report
        .evidence
        .iter()
        .map(|e| e.path.as_str())
        .filter(|p| p.ends_with(".svg"))
        .collect();
    if !charts.is_empty() {
        let _ = writeln!(md, "\n## Charts\n");
        for chart in charts {
            let _ = writeln!(md, "- [{chart}]({chart})");
        }
    }
}

/// What steps said about themselves.
fn step_notes(md: &mut String, report: &Report) {
    for step in report.steps.iter().filter(|s| s.note.is_some()) {
        let _ = writeln!(
            md,
            "\n_{}: {}_",
            step.name,
            cell(step.note.as_deref().unwrap_or(""))
        );
    }
}

/// Every event of the run, folded.
fn timeline_details(md: &mut String, report: &Report) {
    let _ = writeln!(
        md,
        "\n<details><summary>Timeline ({} events)</summary>\n",
        report.timeline.len()
    );
    let _ = writeln!(md, "| t | step | event | detail |");
    let _ = writeln!(md, "|---|---|---|---|");
    for event in &report.timeline {
        let _ = writeln!(
            md,
            "| +{:.3}s | {} | {} | {} |",
            event.elapsed_ms as f64 / 1000.0,
            event.step.as_deref().unwrap_or("—"),
            event.kind,
            cell(&event.message)
        );
    }
    let _ = writeln!(md, "\n</details>");
}
