//! The gameday report of a stored run: its drills, DR restore and rollback rehearsal as
//! scenarios; one action item per expectation not met (a failed, inconclusive or warned
//! check of a scenario, and a required scenario nothing covered), owned by the step's owner
//! role from the spec and due by the spec's `gameday` policy; the required matrix.

use std::time::SystemTime;

use gauntlet_report::gameday::{ActionItem, GAMEDAY_SCHEMA, Gameday, MatrixRow, Moment, Scenario};
use gauntlet_report::{Check, Outcome, Report, Severity};
use gauntlet_spec::{Plan, StepName};

/// Timeline kinds that belong to the incident (the rest is probing detail).
const INCIDENT: &[&str] = &[
    "start",
    "fault-applied",
    "detected",
    "alert",
    "acknowledged",
    "aborted",
    "action",
    "recovered",
    "steady",
    "fault-removed",
    "restored",
    "end",
];

/// The gameday report of `report`, by the policy and owners of `plan` (the run's own spec).
pub fn gameday(report: &Report, plan: &Plan) -> Gameday {
    let mut scenarios: Vec<(Scenario, Vec<&Check>)> = report
        .drills
        .iter()
        .map(|drill| {
            let prefix = format!("{}.{}: ", drill.step, drill.name);
            let checks: Vec<&Check> = report
                .checks()
                .filter(|c| c.id.starts_with(&prefix))
                .collect();
            let measured = |what: &str| {
                report
                    .measurements
                    .get(&format!("{}.{}.{what}", drill.step, drill.name))
                    .copied()
            };
            let description = drill
                .events
                .iter()
                .find(|e| e.kind == "start")
                .map(|e| e.detail.clone());
            let timeline = drill
                .events
                .iter()
                .filter(|e| INCIDENT.contains(&e.kind.as_str()))
                .map(|e| Moment {
                    kind: e.kind.clone(),
                    at_ms: e.at_ms,
                    detail: e.detail.clone(),
                })
                .collect();
            let injection = drill
                .events
                .iter()
                .filter(|e| e.kind == "fault-applied")
                .map(|e| e.detail.clone())
                .collect();
            let mut evidence: Vec<String> = drill
                .svg
                .iter()
                .chain(&drill.chaostoolkit)
                .cloned()
                .collect();
            let scenario = Scenario {
                name: drill.name.clone(),
                step: drill.step.clone(),
                description,
                outcome: drill.outcome,
                injection,
                expected: Vec::new(),
                observed: Vec::new(),
                timeline,
                mtta_seconds: measured("mtta"),
                mttr_seconds: measured("mttr")
                    .or(drill.time_to_recover_ms.map(|ms| ms as f64 / 1e3)),
                evidence: {
                    evidence.extend(checks.iter().flat_map(|c| c.evidence.iter().cloned()));
                    evidence.dedup();
                    evidence
                },
                residual_risk: String::new(),
            };
            (scenario, checks)
        })
        .collect();
    if let Some(rehearsal) = rehearsal(report) {
        scenarios.push(rehearsal);
    }
    let (eta_hard, eta_soft) = (
        plan.gameday.hard_eta.as_std(),
        plan.gameday.soft_eta.as_std(),
    );
    let held = humantime::parse_rfc3339(&report.started_at).unwrap_or_else(|_| SystemTime::now());
    let due = |severity: Severity| {
        let eta = match severity {
            Severity::Hard => eta_hard,
            Severity::Soft => eta_soft,
        };
        day(held + eta)
    };
    let owner_of = |step: &str| {
        let role = plan
            .steps
            .iter()
            .find(|s| s.step().as_str() == step)
            .and_then(|s| s.meta())
            .map(|m| m.owner.clone());
        let who = role
            .as_ref()
            .and_then(|r| plan.service.owners.get(r).cloned());
        (who, role)
    };
    let mut items = Vec::new();
    let mut out = Vec::new();
    for (mut scenario, checks) in scenarios {
        scenario.expected = checks
            .iter()
            .map(|c| format!("{}: {}", c.name, c.threshold.as_deref().unwrap_or("—")))
            .collect();
        scenario.observed = checks
            .iter()
            .map(|c| match &c.measured {
                Some(m) => format!("{}: {} ({m}): {}", c.name, c.outcome.as_str(), c.reason),
                None => format!("{}: {}: {}", c.name, c.outcome.as_str(), c.reason),
            })
            .collect();
        let unmet: Vec<&&Check> = checks
            .iter()
            .filter(|c| {
                matches!(
                    c.outcome,
                    Outcome::Fail | Outcome::Inconclusive | Outcome::Warn
                )
            })
            .collect();
        scenario.residual_risk = match unmet.is_empty() {
            true => "none observed: every expectation of this scenario was met".into(),
            false => format!(
                "not shown to be safe: {}",
                unmet
                    .iter()
                    .map(|c| format!("{} {}", c.name, c.outcome.as_str()))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        for check in unmet {
            let (owner, owner_role) = owner_of(&check.step);
            items.push(ActionItem {
                id: String::new(),
                scenario: scenario.name.clone(),
                expectation: check.id.clone(),
                what_happened: format!("{}: {}", check.outcome.as_str(), check.reason),
                owner,
                owner_role,
                due: due(check.severity),
                severity: severity_name(check.severity).into(),
            });
        }
        out.push(scenario);
    }
    let matrix = matrix(report, plan);
    for row in matrix.iter().filter(|r| r.checks.is_empty()) {
        let step = row
            .covered_by
            .first()
            .and_then(|c| c.split('.').next())
            .unwrap_or(StepName::Chaos.as_str());
        let (owner, owner_role) = owner_of(step);
        items.push(ActionItem {
            id: String::new(),
            scenario: row.scenario.clone(),
            expectation: format!("required scenario: {}", row.scenario),
            what_happened: format!(
                "nothing in this run covered it (looked for {})",
                row.covered_by.join(", ")
            ),
            owner,
            owner_role,
            due: due(Severity::Hard),
            severity: "hard".into(),
        });
    }
    for (i, item) in items.iter_mut().enumerate() {
        item.id = format!("AI-{}", i + 1);
    }
    Gameday {
        schema: GAMEDAY_SCHEMA.into(),
        run_id: report.run_id.clone(),
        service: report.service.name.clone(),
        version: report.service.version.clone(),
        held_at: report.started_at.clone(),
        decision: report.decision,
        scenarios: out,
        matrix,
        action_items: items,
    }
}

/// The rollback rehearsal as a scenario, from its checks and its events on the run's timeline.
fn rehearsal(report: &Report) -> Option<(Scenario, Vec<&Check>)> {
    let step = StepName::RollbackRehearsal.as_str();
    let checks: Vec<&Check> = report.checks().filter(|c| c.step == step).collect();
    let first = report
        .timeline
        .iter()
        .find(|e| e.step.as_deref() == Some(step))?;
    let timeline: Vec<Moment> = report
        .timeline
        .iter()
        .filter(|e| {
            e.step.as_deref() == Some(step) && e.kind != "runbook" && e.kind != "golden-set"
        })
        .map(|e| Moment {
            kind: e.kind.clone(),
            at_ms: e.elapsed_ms.saturating_sub(first.elapsed_ms),
            detail: e.message.clone(),
        })
        .collect();
    let injection = timeline
        .iter()
        .filter(|m| m.kind == "fault-applied" || m.kind == "regression-injected")
        .map(|m| m.detail.clone())
        .collect();
    let outcome = report.steps.iter().find(|s| s.name == step)?.outcome;
    let measured = |what: &str| {
        report
            .measurements
            .get(&format!("rollback_rehearsal.{what}"))
            .copied()
    };
    let mut evidence: Vec<String> = checks
        .iter()
        .flat_map(|c| c.evidence.iter().cloned())
        .collect();
    evidence.dedup();
    let scenario = Scenario {
        name: "rollback".into(),
        step: step.into(),
        description: Some("a regression injected into the candidate, caught, rolled back".into()),
        outcome,
        injection,
        expected: Vec::new(),
        observed: Vec::new(),
        timeline,
        mtta_seconds: measured("mtta"),
        mttr_seconds: measured("mttr"),
        evidence,
        residual_risk: String::new(),
    };
    Some((scenario, checks))
}

/// The spec's required scenarios, each with the run's checks its `covered_by` names.
fn matrix(report: &Report, plan: &Plan) -> Vec<MatrixRow> {
    plan.gameday
        .matrix
        .iter()
        .map(|row| {
            let checks: Vec<(String, Outcome)> = report
                .checks()
                .filter(|c| {
                    row.covered_by.iter().any(|p| {
                        c.id == *p
                            || c.id.starts_with(&format!("{p}:"))
                            || c.id.starts_with(&format!("{p} "))
                    })
                })
                .map(|c| (c.id.clone(), c.outcome))
                .collect();
            let rank = |o: Outcome| match o {
                Outcome::Pass | Outcome::Skipped => 0,
                Outcome::Warn => 1,
                Outcome::Inconclusive => 2,
                Outcome::Fail => 3,
            };
            let outcome = match checks.iter().map(|(_, o)| *o).max_by_key(|o| rank(*o)) {
                Some(worst) => worst,
                None => Outcome::Inconclusive,
            };
            MatrixRow {
                scenario: row.scenario.clone(),
                covered_by: row.covered_by.clone(),
                checks,
                outcome,
            }
        })
        .collect()
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Hard => "hard",
        Severity::Soft => "soft",
    }
}

/// `YYYY-MM-DD` of a time.
fn day(t: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(t).to_string();
    text.get(..10).unwrap_or(&text).to_string()
}
