//! The gameday report (`gauntlet gameday RUN`): per scenario (each drill, the DR restore, the
//! rollback rehearsal), what was injected, what was expected and observed, the incident
//! timeline with MTTA and MTTR, the evidence and the residual risk; one action item per
//! expectation that was not met, with its owner and due date; and the required matrix of
//! scenarios, each with what covered it. Built by `gauntlet_review::gameday` from a stored
//! report and the run's spec; rendered here as JSON (serde) and Markdown.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::markdown::{cell, outcome_cell};
use crate::model::{Decision, Outcome};

pub const GAMEDAY_SCHEMA: &str = "gauntlet.gameday/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gameday {
    pub schema: String,
    pub run_id: String,
    pub service: String,
    pub version: String,
    /// When the gameday ran (the run's start), RFC 3339.
    pub held_at: String,
    pub decision: Decision,
    pub scenarios: Vec<Scenario>,
    /// The spec's required scenarios and what covered each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matrix: Vec<MatrixRow>,
    pub action_items: Vec<ActionItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub outcome: Outcome,
    /// What went in: each fault as applied.
    pub injection: Vec<String>,
    /// Each expectation: `CHECK: THRESHOLD`.
    pub expected: Vec<String>,
    /// What happened to each: `CHECK: OUTCOME (MEASURED): REASON`.
    pub observed: Vec<String>,
    /// Start, fault applied, detection, alert, acknowledgement, decision, action, recovery.
    pub timeline: Vec<Moment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtta_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mttr_seconds: Option<f64>,
    /// Files in the run directory.
    pub evidence: Vec<String>,
    pub residual_risk: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moment {
    pub kind: String,
    pub at_ms: u64,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixRow {
    pub scenario: String,
    pub covered_by: Vec<String>,
    /// The checks that matched, with their outcomes.
    pub checks: Vec<(String, Outcome)>,
    /// The worst of them; inconclusive when nothing matched (nothing covered it).
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionItem {
    /// `AI-1`, `AI-2`, … in the order found.
    pub id: String,
    pub scenario: String,
    /// The expectation not met (a check id, or a matrix scenario nothing covered).
    pub expectation: String,
    pub what_happened: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_role: Option<String>,
    /// YYYY-MM-DD, from the spec's `gameday` policy.
    pub due: String,
    /// `hard` or `soft`: which ETA applied.
    pub severity: String,
}

/// The gameday report as Markdown: action items first (what someone must do), then the
/// matrix, then each scenario.
pub fn gameday_markdown(g: &Gameday) -> String {
    let mut md = format!(
        "# Gameday — {} {} ({})\n\nRun `{}` held {} · decision {}\n\n",
        g.service, g.version, g.held_at, g.run_id, g.held_at, g.decision
    );
    let _ = writeln!(md, "## Action items\n");
    if g.action_items.is_empty() {
        md.push_str("None: every expectation was met.\n\n");
    } else {
        md.push_str("| id | scenario | expectation | what happened | owner | due |\n|---|---|---|---|---|---|\n");
        for a in &g.action_items {
            let owner = match (&a.owner, &a.owner_role) {
                (Some(who), Some(role)) => format!("{who} ({role})"),
                (None, Some(role)) => format!("{role} (no one named)"),
                _ => "—".into(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | `{}` | {} | {} | {} ({}) |",
                a.id,
                cell(&a.scenario),
                cell(&a.expectation),
                cell(&a.what_happened),
                cell(&owner),
                a.due,
                a.severity
            );
        }
        md.push('\n');
    }
    if !g.matrix.is_empty() {
        md.push_str(
            "## Required scenarios\n\n| scenario | covered by | outcome |\n|---|---|---|\n",
        );
        for row in &g.matrix {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                cell(&row.scenario),
                cell(&row.covered_by.join(", ")),
                outcome_cell(row.outcome)
            );
        }
        md.push('\n');
    }
    for s in &g.scenarios {
        scenario(&mut md, s);
    }
    md
}

fn scenario(md: &mut String, s: &Scenario) {
    let secs = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}s"));
    let _ = writeln!(
        md,
        "## {} ({}) — {}\n",
        s.name,
        s.step,
        outcome_cell(s.outcome)
    );
    if let Some(d) = &s.description {
        let _ = writeln!(md, "{}\n", cell(d));
    }
    let _ = writeln!(
        md,
        "MTTA {} · MTTR {}\n",
        secs(s.mtta_seconds),
        secs(s.mttr_seconds)
    );
    for (title, lines) in [
        ("Injection", &s.injection),
        ("Expected", &s.expected),
        ("Observed", &s.observed),
    ] {
        let _ = writeln!(md, "**{title}**\n");
        for line in lines.iter() {
            let _ = writeln!(md, "- {}", cell(line));
        }
        if lines.is_empty() {
            md.push_str("- —\n");
        }
        md.push('\n');
    }
    if !s.timeline.is_empty() {
        md.push_str("**Timeline**\n\n| at | what | detail |\n|---|---|---|\n");
        for m in &s.timeline {
            let _ = writeln!(
                md,
                "| +{:.2}s | {} | {} |",
                m.at_ms as f64 / 1000.0,
                m.kind,
                cell(&m.detail)
            );
        }
        md.push('\n');
    }
    if !s.evidence.is_empty() {
        md.push_str("**Evidence**\n\n");
        for e in &s.evidence {
            let _ = writeln!(md, "- [{e}]({e})");
        }
        md.push('\n');
    }
    let _ = writeln!(md, "**Residual risk:** {}\n", cell(&s.residual_risk));
}
