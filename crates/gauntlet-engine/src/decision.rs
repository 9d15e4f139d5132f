//! Folding checks into a decision. Fail closed: an inconclusive hard check is never a
//! pass, and a run in which no check passed cannot be GO.

use std::collections::BTreeMap;

use gauntlet_report::{Check, Condition, Decided, Decision, Outcome, Severity, StepReport};
use gauntlet_spec::GatingMode;

/// The step that brings the systems up; its checks gate the others but prove nothing alone.
pub const SETUP_STEP: &str = gauntlet_spec::steps::SETUP;

/// Owner roles by step, and the owners by role, from the spec.
pub struct Owners<'a> {
    pub step_roles: BTreeMap<String, String>,
    pub people: &'a BTreeMap<String, String>,
}

pub fn decide(
    steps: &[StepReport],
    gating: GatingMode,
    aborted: Option<&str>,
    owners: &Owners<'_>,
) -> Decided {
    // Dry-run checks are reported, never decided on.
    let checks: Vec<&Check> = steps
        .iter()
        .flat_map(|s| s.checks.iter())
        .filter(|c| !c.dry_run)
        .collect();
    let count = |f: &dyn Fn(&Check) -> bool| checks.iter().filter(|c| f(c)).count();
    let tally = format!(
        "{} passed, {} failed, {} inconclusive, {} warned",
        count(&|c| c.outcome == Outcome::Pass),
        count(&|c| c.outcome == Outcome::Fail),
        count(&|c| c.outcome == Outcome::Inconclusive),
        count(&|c| c.outcome == Outcome::Warn),
    );
    if let Some(why) = aborted {
        return Decided {
            decision: Decision::Aborted,
            conditions: Vec::new(),
            summary: format!("ABORTED: {why} ({tally} before it stopped)"),
        };
    }
    let hard = |c: &&&Check| c.severity == Severity::Hard && gating != GatingMode::Soft;
    let hard_fails: Vec<&&Check> = checks
        .iter()
        .filter(|c| c.outcome == Outcome::Fail)
        .filter(hard)
        .collect();
    let unmeasured: Vec<&&Check> = checks
        .iter()
        .filter(|c| c.outcome == Outcome::Inconclusive && c.severity == Severity::Hard)
        .collect();
    let evidence = checks
        .iter()
        .filter(|c| c.step != SETUP_STEP && c.outcome == Outcome::Pass)
        .count();
    let conditions: Vec<Condition> = checks
        .iter()
        .filter(|c| match c.outcome {
            Outcome::Warn => true,
            Outcome::Fail => !hard(c),
            Outcome::Inconclusive => c.severity == Severity::Soft,
            Outcome::Pass | Outcome::Skipped => false,
        })
        .map(|c| {
            let role = owners.step_roles.get(&c.step).cloned();
            Condition {
                check: c.id.clone(),
                reason: format!("{}: {}", c.outcome.as_str(), c.reason),
                owner: role.as_ref().and_then(|r| owners.people.get(r).cloned()),
                owner_role: role,
                deadline: None,
            }
        })
        .collect();
    let (decision, headline) = if let Some(first) = hard_fails.first() {
        (
            Decision::NoGo,
            format!("`{}` failed: {}", first.id, first.reason),
        )
    } else if let Some(first) = unmeasured.first() {
        (
            Decision::Inconclusive,
            format!("`{}` could not be measured: {}", first.id, first.reason),
        )
    } else if evidence == 0 {
        (
            Decision::Inconclusive,
            "no check produced evidence, so nothing supports a release".to_string(),
        )
    } else if !conditions.is_empty() {
        (
            Decision::Conditional,
            format!("{} condition(s) to resolve", conditions.len()),
        )
    } else {
        (Decision::Go, "every check passed".to_string())
    };
    Decided {
        decision,
        conditions,
        summary: format!("{decision}: {headline} ({tally})."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gauntlet_report::step_outcome;

    fn step(name: &str, checks: Vec<Check>) -> StepReport {
        StepReport {
            name: name.into(),
            outcome: step_outcome(&checks),
            started_at: None,
            duration_ms: 0,
            note: None,
            checks,
        }
    }

    fn check(step: &str, name: &str, severity: Severity, outcome: Outcome) -> Check {
        Check::new(step, name, severity).outcome(outcome, "because")
    }

    fn decided(steps: &[StepReport], gating: GatingMode) -> Decided {
        let people = BTreeMap::from([("security".to_string(), "sam@example.com".to_string())]);
        let owners = Owners {
            step_roles: BTreeMap::from([("security".to_string(), "security".to_string())]),
            people: &people,
        };
        decide(steps, gating, None, &owners)
    }

    use Outcome::*;
    use Severity::*;

    #[test]
    fn all_passing_is_go() {
        let v = decided(
            &[step("security", vec![check("security", "a", Hard, Pass)])],
            GatingMode::Hard,
        );
        assert_eq!(v.decision, Decision::Go);
    }

    #[test]
    fn a_hard_failure_is_no_go_and_names_the_check() {
        let v = decided(
            &[step(
                "security",
                vec![
                    check("security", "a", Hard, Pass),
                    check("security", "auth", Hard, Fail),
                ],
            )],
            GatingMode::Hard,
        );
        assert_eq!(v.decision, Decision::NoGo);
        assert!(v.summary.contains("security.auth"), "{}", v.summary);
    }

    #[test]
    fn an_unmeasured_hard_check_is_inconclusive_not_go() {
        let v = decided(
            &[step(
                "security",
                vec![
                    check("security", "a", Hard, Pass),
                    check("security", "b", Hard, Inconclusive),
                ],
            )],
            GatingMode::Hard,
        );
        assert_eq!(v.decision, Decision::Inconclusive);
        // Soft gating does not turn missing evidence into a pass either.
        let v = decided(
            &[step(
                "security",
                vec![
                    check("security", "a", Hard, Pass),
                    check("security", "b", Hard, Inconclusive),
                ],
            )],
            GatingMode::Soft,
        );
        assert_eq!(v.decision, Decision::Inconclusive);
    }

    #[test]
    fn soft_failures_are_conditions_with_owners() {
        let v = decided(
            &[step(
                "security",
                vec![
                    check("security", "a", Hard, Pass),
                    check("security", "b", Soft, Fail),
                ],
            )],
            GatingMode::Hard,
        );
        assert_eq!(v.decision, Decision::Conditional);
        assert_eq!(v.conditions.len(), 1);
        assert_eq!(v.conditions[0].owner.as_deref(), Some("sam@example.com"));
        assert_eq!(v.conditions[0].owner_role.as_deref(), Some("security"));
    }

    #[test]
    fn soft_gating_turns_hard_failures_into_conditions() {
        let v = decided(
            &[step(
                "security",
                vec![
                    check("security", "a", Hard, Pass),
                    check("security", "b", Hard, Fail),
                ],
            )],
            GatingMode::Soft,
        );
        assert_eq!(v.decision, Decision::Conditional);
    }

    #[test]
    fn nothing_but_setup_is_never_go() {
        let v = decided(
            &[step(SETUP_STEP, vec![check(SETUP_STEP, "up", Hard, Pass)])],
            GatingMode::Hard,
        );
        assert_eq!(v.decision, Decision::Inconclusive);
        assert_eq!(
            decided(&[], GatingMode::Hard).decision,
            Decision::Inconclusive
        );
    }
}
