//! The production-readiness checklist, scored from a run's checks: an automated item is as
//! done as the checks it rests on; an attested item is what its attester says. A waiver
//! holds an unfinished item at CONDITIONAL until it expires; an expired waiver fails.

use std::collections::BTreeMap;

use gauntlet_report::{
    CategoryReport, Check, Condition, ItemReport, Outcome, ReadinessReport, Severity, StepReport,
    WaiverReport,
};
use gauntlet_spec::{AttestedStatus, ItemPlan as Item, ReadinessPlan};

pub const STEP: &str = gauntlet_spec::StepName::Readiness.as_str();

/// The checklist's report, and the step whose checks decide: the score against the
/// minimum, and one check per waiver.
pub struct Evaluated {
    pub report: ReadinessReport,
    pub step: StepReport,
    /// Waiver checks' ids → who owns them and by when.
    pub deadlines: BTreeMap<String, (String, String)>,
}

/// `STEP.*` or a check id; `rollback_rehearsal` (the spec's key) and `rollback-rehearsal`
/// (the step's name) are the same step.
fn matches(pattern: &str, check: &Check) -> bool {
    let same = |a: &str, b: &str| a.replace('-', "_") == b.replace('-', "_");
    match pattern.strip_suffix(".*") {
        Some(step) => same(&check.step, step),
        None => match pattern.split_once('.') {
            Some((step, name)) => same(&check.step, step) && check.name == name,
            None => false,
        },
    }
}

/// done, partial, pending or failed, and why.
fn automated_status(patterns: &[String], checks: &[&Check]) -> (&'static str, String, Vec<String>) {
    let bound: Vec<&&Check> = checks
        .iter()
        .filter(|c| patterns.iter().any(|p| matches(p, c)))
        .collect();
    let ids: Vec<String> = bound.iter().map(|c| c.id.clone()).collect();
    if bound.is_empty() {
        return (
            "pending",
            format!("no check {} in this run", patterns.join(", ")),
            ids,
        );
    }
    // A dry-run check is reported, never decides; a skipped one said nothing. Neither
    // makes an item more or less done.
    let deciding: Vec<&&Check> = bound
        .iter()
        .copied()
        .filter(|c| !c.dry_run && c.outcome != Outcome::Skipped)
        .collect();
    let count = |o: Outcome| deciding.iter().filter(|c| c.outcome == o).count();
    let (pass, fail) = (count(Outcome::Pass), count(Outcome::Fail));
    let aside = bound.len() - deciding.len();
    let detail = format!(
        "{pass} of {} check(s) passed{}{}",
        deciding.len(),
        if fail > 0 {
            format!(", {fail} failed")
        } else {
            String::new()
        },
        if aside > 0 {
            format!(" ({aside} dry-run or skipped not counted)")
        } else {
            String::new()
        }
    );
    let status = if fail > 0 {
        "failed"
    } else if deciding.is_empty() {
        "pending"
    } else if pass == deciding.len() {
        "done"
    } else if pass > 0 || count(Outcome::Warn) > 0 {
        "partial"
    } else {
        "pending"
    };
    (status, detail, ids)
}

fn credit(status: &str) -> f64 {
    match status {
        "done" => 1.0,
        "partial" => 0.5,
        _ => 0.0,
    }
}

/// The check that carries an attested item's signature: `readiness.attested: ITEM`.
const SIGNED_PREFIX: &str = "attested: ";

/// What the signature checks of an earlier evaluation found (to score a stored run again):
/// item → what verified, or why it did not.
pub fn signatures_from(steps: &[StepReport]) -> Signatures {
    steps
        .iter()
        .filter(|s| s.name == STEP)
        .flat_map(|s| s.checks.iter())
        .filter_map(|c| {
            let item = c.name.strip_prefix(SIGNED_PREFIX)?;
            let said = c.reason.clone();
            Some((
                item.to_string(),
                if c.outcome == Outcome::Pass {
                    Ok(said)
                } else {
                    Err(said)
                },
            ))
        })
        .collect()
}

/// Attested items whose claim must be signed: item → what verified, or why the claim does
/// not count (see `crate::vouch`).
pub type Signatures = BTreeMap<String, Result<String, String>>;

pub fn evaluate(
    section: &ReadinessPlan,
    owners: &BTreeMap<String, String>,
    steps: &[StepReport],
    signatures: &Signatures,
    now_secs: u64,
) -> Evaluated {
    let severity = match section.severity {
        gauntlet_spec::Severity::Hard => Severity::Hard,
        gauntlet_spec::Severity::Soft => Severity::Soft,
    };
    let checks: Vec<&Check> = steps
        .iter()
        .filter(|s| s.name != STEP)
        .flat_map(|s| s.checks.iter())
        .collect();
    let mut step_checks = Vec::new();
    let mut deadlines = BTreeMap::new();
    let mut categories = Vec::new();
    for category in &section.categories {
        let mut items = Vec::new();
        for item in &category.items {
            let signed = signatures.get(&item.name);
            let report = item_report(item, owners, &checks, signed, now_secs);
            if let Some(signed) = signed {
                step_checks.push(signature_check(item, signed, severity));
            }
            if let Some(waiver) = &report.waiver {
                let check = waiver_check(item, &report, waiver, severity);
                if check.outcome == Outcome::Warn {
                    let due = (item.owner.clone(), waiver.expires.clone());
                    deadlines.insert(check.id.clone(), due);
                }
                step_checks.push(check);
            }
            items.push(report);
        }
        let weight: f64 = items.iter().map(|i| i.weight).sum();
        let score = items
            .iter()
            .map(|i| i.weight * credit(&i.status))
            .sum::<f64>()
            / weight.max(f64::MIN_POSITIVE);
        categories.push(CategoryReport {
            name: category.name.clone(),
            weight: category.weight,
            score,
            items,
        });
    }
    let total: f64 = categories.iter().map(|c| c.weight).sum();
    let score =
        categories.iter().map(|c| c.weight * c.score).sum::<f64>() / total.max(f64::MIN_POSITIVE);
    step_checks.insert(0, score_check(section, &categories, score, severity));
    Evaluated {
        report: ReadinessReport {
            score,
            minimum: section.minimum.to_string(),
            categories,
        },
        step: StepReport {
            name: STEP.into(),
            outcome: gauntlet_report::step_outcome(&step_checks),
            started_at: Some(crate::now_rfc3339()),
            duration_ms: 0,
            note: None,
            checks: step_checks,
        },
        deadlines,
    }
}

/// An attested item's claim: signed by its owner role's key, or why it does not count.
fn signature_check(item: &Item, signed: &Result<String, String>, severity: Severity) -> Check {
    let check = Check::new(STEP, &format!("{SIGNED_PREFIX}{}", item.name), severity)
        .threshold(format!("signed by the {} role's key", item.owner));
    match signed {
        Ok(how) => check.outcome(Outcome::Pass, how.clone()),
        Err(why) => check.outcome(Outcome::Fail, why.clone()),
    }
}

/// A waiver: expired (fail), in force (warn, with a deadline), or no longer needed (pass).
fn waiver_check(
    item: &Item,
    report: &ItemReport,
    waiver: &WaiverReport,
    severity: Severity,
) -> Check {
    let check = Check::new(STEP, &format!("waiver: {}", item.name), severity)
        .threshold(format!("unexpired (until {})", waiver.expires));
    if waiver.expired {
        return check.outcome(
            Outcome::Fail,
            format!(
                "the waiver of `{}` by {} expired at {}: the item is {} and no longer waived",
                item.name, waiver.by, waiver.expires, report.status
            ),
        );
    }
    if report.status == "waived" {
        return check.outcome(
            Outcome::Warn,
            format!(
                "`{}` waived by {} until {}: {}",
                item.name, waiver.by, waiver.expires, waiver.reason
            ),
        );
    }
    check.outcome(
        Outcome::Pass,
        format!("`{}` is done; its waiver is not needed", item.name),
    )
}

/// The checklist's score against its minimum, with the items tallied by status.
fn score_check(
    section: &ReadinessPlan,
    categories: &[CategoryReport],
    score: f64,
    severity: Severity,
) -> Check {
    let counts = |status: &str| {
        categories
            .iter()
            .flat_map(|c| c.items.iter())
            .filter(|i| i.status == status)
            .count()
    };
    let tally = format!(
        "{} done, {} partial, {} pending, {} failed, {} waived",
        counts("done"),
        counts("partial"),
        counts("pending"),
        counts("failed"),
        counts("waived")
    );
    let check = Check::new(STEP, "score", severity)
        .threshold(format!("≥ {}", section.minimum))
        .measured(format!("{:.1}%", score * 100.0));
    let percent = score * 100.0;
    if score + 1e-9 >= section.minimum.ratio() {
        let why = format!("readiness {percent:.1}% ≥ {} ({tally})", section.minimum);
        check.outcome(Outcome::Pass, why)
    } else {
        let why = format!("readiness {percent:.1}% < {} ({tally})", section.minimum);
        check.outcome(Outcome::Fail, why)
    }
}

fn item_report(
    item: &Item,
    owners: &BTreeMap<String, String>,
    checks: &[&Check],
    signed: Option<&Result<String, String>>,
    now_secs: u64,
) -> ItemReport {
    let (kind, mut status, mut detail, evidence) = match &item.attested {
        Some(attested) => {
            let claimed = match attested.status {
                AttestedStatus::Done => "done",
                AttestedStatus::Partial => "partial",
                AttestedStatus::Pending => "pending",
            };
            // A claim that had to be signed and is not counts as a failed item.
            let (status, detail) = match signed {
                None => (claimed, format!("attested {claimed} by {}", attested.by)),
                Some(Ok(how)) => (claimed, format!("attested {claimed}, {how}")),
                Some(Err(why)) => (
                    "failed",
                    format!("attested {claimed} by {}, but {why}", attested.by),
                ),
            };
            ("attested", status, detail, vec![attested.evidence.clone()])
        }
        None => {
            let (status, detail, ids) = automated_status(&item.automated, checks);
            ("automated", status, detail, ids)
        }
    };
    let waiver = item.waiver.as_ref().map(|w| {
        let expires_at = w.expires_at;
        let expired = now_secs > expires_at;
        WaiverReport {
            by: w.by.clone(),
            reason: w.reason.clone(),
            expires: humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(expires_at),
            )
            .to_string(),
            expired,
        }
    });
    if let Some(w) = &waiver
        && status != "done"
        && !w.expired
    {
        detail = format!("{detail}; waived by {} until {}", w.by, w.expires);
        status = "waived";
    }
    ItemReport {
        name: item.name.clone(),
        owner_role: item.owner.clone(),
        owner: owners.get(&item.owner).cloned(),
        weight: item.weight,
        kind: kind.into(),
        status: status.into(),
        detail,
        evidence,
        waiver,
    }
}

/// Waiver conditions carry their owner and deadline.
pub fn annotate(
    conditions: &mut [Condition],
    deadlines: &BTreeMap<String, (String, String)>,
    owners: &BTreeMap<String, String>,
) {
    for condition in conditions {
        if let Some((role, deadline)) = deadlines.get(&condition.check) {
            condition.owner_role = Some(role.clone());
            condition.owner = owners.get(role).cloned();
            condition.deadline = Some(deadline.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use gauntlet_spec::parse_day_or_time;

    fn spec(readiness: &str) -> gauntlet_spec::Plan {
        let text = format!(
            "schema_version: 1\nservice: {{name: s, version: 1.0.0, owners: {{sre: a@x, security: b@x}}}}\n\
             targets: {{candidate: {{url: 'http://127.0.0.1:1'}}}}\ntraffic: {{rate: 1/s, requests: [{{path: /}}]}}\n{readiness}"
        );
        gauntlet_spec::plan_str("g.yaml", &text, &Default::default(), 1).unwrap()
    }

    fn step(checks: &[(&str, Outcome)]) -> StepReport {
        StepReport {
            name: "dr".into(),
            outcome: Outcome::Pass,
            started_at: None,
            duration_ms: 0,
            note: None,
            checks: checks
                .iter()
                .map(|(name, o)| Check::new("dr", name, Severity::Hard).outcome(*o, "x"))
                .collect(),
        }
    }

    const CHECKLIST: &str = "readiness:\n  minimum: 60%\n  categories:\n\
        \x20   - name: reliability\n      weight: 3\n      items:\n\
        \x20       - {name: restore, owner: sre, automated: [dr.*]}\n\
        \x20       - {name: rto, owner: sre, automated: [dr.RTO]}\n\
        \x20   - name: security\n      items:\n\
        \x20       - name: threat model\n          owner: security\n          attested: {by: b@x, evidence: 'https://wiki/tm', status: partial}\n\
        \x20       - name: pentest\n          owner: security\n          attested: {by: b@x, evidence: 'https://wiki/pt'}\n\
        \x20         waiver: {by: security, reason: booked for next week, granted: 2026-11-20, expires: 2026-12-01}\n";

    #[test]
    fn the_score_weighs_categories_and_items_and_a_live_waiver_is_a_condition() {
        let spec = spec(CHECKLIST);
        let section = spec.readiness().unwrap();
        let steps = [step(&[("RTO", Outcome::Pass), ("RPO", Outcome::Warn)])];
        let now = parse_day_or_time("2026-11-22", false).unwrap();
        let e = evaluate(
            section,
            &spec.service.owners,
            &steps,
            &Signatures::new(),
            now,
        );
        let statuses: Vec<&str> = e
            .report
            .categories
            .iter()
            .flat_map(|c| c.items.iter().map(|i| i.status.as_str()))
            .collect();
        assert_eq!(statuses, ["partial", "done", "partial", "waived"]);
        // reliability (0.5 + 1) / 2 = 0.75, weight 3; security (0.5 + 0) / 2 = 0.25, weight 1.
        assert!((e.report.score - (3.0 * 0.75 + 0.25) / 4.0).abs() < 1e-9);
        let score = &e.step.checks[0];
        assert_eq!(score.outcome, Outcome::Pass, "{}", score.reason);
        let waiver = &e.step.checks[1];
        assert_eq!(waiver.outcome, Outcome::Warn);
        assert_eq!(
            e.deadlines.get(&waiver.id).unwrap(),
            &("security".to_string(), "2026-12-01T23:59:59Z".to_string())
        );
    }

    #[test]
    fn an_expired_waiver_fails_and_a_missing_check_is_pending() {
        let spec = spec(CHECKLIST);
        let section = spec.readiness().unwrap();
        let now = parse_day_or_time("2026-12-02", false).unwrap();
        let e = evaluate(
            section,
            &spec.service.owners,
            &[step(&[])],
            &Signatures::new(),
            now,
        );
        let waiver = &e.step.checks[1];
        assert_eq!(waiver.outcome, Outcome::Fail, "{}", waiver.reason);
        assert!(waiver.reason.contains("expired"), "{}", waiver.reason);
        let first = &e.report.categories[0].items[0];
        assert_eq!(first.status, "pending");
        assert_eq!(e.step.checks[0].outcome, Outcome::Fail);
    }

    #[test]
    fn dry_run_and_skipped_checks_neither_help_nor_hurt() {
        let spec = spec(CHECKLIST);
        let section = spec.readiness().unwrap();
        let mut steps = [step(&[
            ("RTO", Outcome::Pass),
            ("burn", Outcome::Inconclusive),
            ("undecided", Outcome::Skipped),
        ])];
        steps[0].checks[1].dry_run = true;
        let e = evaluate(section, &spec.service.owners, &steps, &Signatures::new(), 0);
        let restore = &e.report.categories[0].items[0];
        assert_eq!(restore.status, "done", "{}", restore.detail);
        assert!(
            restore.detail.contains("2 dry-run or skipped"),
            "{}",
            restore.detail
        );
        // Only skipped checks: nothing was shown, the item is pending.
        let steps = [step(&[("RTO", Outcome::Skipped)])];
        let e = evaluate(section, &spec.service.owners, &steps, &Signatures::new(), 0);
        assert_eq!(e.report.categories[0].items[1].status, "pending");
    }

    #[test]
    fn a_failed_check_fails_its_item() {
        let spec = spec(CHECKLIST);
        let section = spec.readiness().unwrap();
        let steps = [step(&[("RTO", Outcome::Fail), ("RPO", Outcome::Pass)])];
        let e = evaluate(section, &spec.service.owners, &steps, &Signatures::new(), 0);
        assert_eq!(e.report.categories[0].items[0].status, "failed");
        assert_eq!(e.report.categories[0].items[1].status, "failed");
    }
}
