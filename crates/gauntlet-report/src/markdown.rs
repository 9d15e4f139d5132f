//! `report.md`: decision first, then steps and checks, then conditions and the timeline —
//! short enough for a pull-request comment or a CI step summary.

use std::fmt::Write;

use crate::model::{Decision, Outcome, Report};

fn badge(decision: Decision) -> &'static str {
    match decision {
        Decision::Go => "✅",
        Decision::Conditional => "⚠️",
        Decision::NoGo => "⛔",
        Decision::Inconclusive => "❔",
        Decision::Aborted => "🛑",
    }
}

fn outcome_cell(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "✅ pass",
        Outcome::Warn => "⚠️ warn",
        Outcome::Fail => "❌ fail",
        Outcome::Inconclusive => "❔ inconclusive",
        Outcome::Skipped => "⏭️ skipped",
    }
}

/// Table cells cannot hold `|` or newlines.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

pub fn to_markdown(report: &Report) -> String {
    let mut md = String::new();
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
    if !report.conditions.is_empty() {
        let _ = writeln!(md, "## Conditions\n");
        for c in &report.conditions {
            let owner = match (&c.owner_role, &c.owner) {
                (Some(role), Some(who)) => format!(" — owner: {who} ({role})"),
                (Some(role), None) => format!(" — owner role: {role} (no one named)"),
                _ => " — no owner named".into(),
            };
            let _ = writeln!(md, "- `{}`: {}{}", c.check, cell(&c.reason), owner);
        }
        md.push('\n');
    }
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
    for drill in &report.drills {
        let ms =
            |v: Option<u64>| v.map_or("—".to_string(), |v| format!("{:.2}s", v as f64 / 1000.0));
        let _ = writeln!(
            md,
            "\n## Drill `{}` ({}) — {}\n\nexpect **{}** · time to detect {} · time to recover {}{}{}\n",
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
                .svg
                .as_ref()
                .map_or(String::new(), |svg| format!(" · [timeline]({svg})"))
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
    for step in report.steps.iter().filter(|s| s.note.is_some()) {
        let _ = writeln!(
            md,
            "\n_{}: {}_",
            step.name,
            cell(step.note.as_deref().unwrap_or(""))
        );
    }
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
    md
}
