//! The failure taxonomy: what went wrong in a run, grouped by cause. Failed requests come
//! from the canary's split (grouped there by arm, method, route and cause); failed and
//! inconclusive checks are grouped by step and outcome. Every group gets a remediation hint
//! (the spec's first matching hint, else a built-in one), and three are put first: the step
//! that failed first, then the failed requests, then other failed steps, then what could not
//! be measured.

use std::collections::BTreeMap;

use gauntlet_net::FailedRequests;
use gauntlet_report::{FailureCause, Outcome, StepReport, TaxonomyReport};
use gauntlet_spec::Hint as TaxonomyHint;
use gauntlet_stats::Arm;

/// The taxonomy of a run, or nothing when nothing failed.
pub fn classify(
    steps: &[StepReport],
    requests: &[(String, FailedRequests)],
    hints: &[TaxonomyHint],
) -> Option<TaxonomyReport> {
    let failed_requests: u64 = requests.iter().map(|(_, f)| f.count).sum();
    let mut by_request: Vec<FailureCause> = requests
        .iter()
        .map(|(step, f)| {
            let status = f.cause.strip_prefix("status ").and_then(|s| s.parse().ok());
            let arm = match f.arm {
                Arm::Baseline => "baseline",
                Arm::Candidate => "candidate",
            };
            let mut cause = FailureCause {
                kind: "requests".into(),
                step: step.clone(),
                arm: Some(arm.into()),
                route: Some(format!("{} {}", f.method, f.route)),
                status,
                cause: f.cause.clone(),
                count: f.count,
                share: f.count as f64 / failed_requests.max(1) as f64,
                example: f.example.clone(),
                hint: String::new(),
                hint_from: String::new(),
            };
            hint(&mut cause, &f.route, hints);
            cause
        })
        .collect();
    by_request.sort_by_key(|c| std::cmp::Reverse(c.count));

    let mut groups: BTreeMap<(String, &'static str), (u64, String)> = BTreeMap::new();
    for step in steps {
        for check in &step.checks {
            let outcome = match check.outcome {
                Outcome::Fail => "fail",
                Outcome::Inconclusive => "inconclusive",
                _ => continue,
            };
            let group = groups
                .entry((step.name.clone(), outcome))
                .or_insert_with(|| (0, format!("`{}`: {}", check.id, check.reason)));
            group.0 += 1;
        }
    }
    let bad_checks: u64 = groups.values().map(|(n, _)| n).sum();
    let mut by_check: Vec<FailureCause> = groups
        .into_iter()
        .map(|((step, outcome), (count, example))| {
            let mut cause = FailureCause {
                kind: "checks".into(),
                step,
                arm: None,
                route: None,
                status: None,
                cause: outcome.into(),
                count,
                share: count as f64 / bad_checks.max(1) as f64,
                example,
                hint: String::new(),
                hint_from: String::new(),
            };
            hint(&mut cause, "", hints);
            cause
        })
        .collect();
    by_check.sort_by_key(|c| std::cmp::Reverse(c.count));
    if by_request.is_empty() && by_check.is_empty() {
        return None;
    }
    // The first step that failed decided the run; failed requests explain it; later failed
    // steps often follow from the same cause; inconclusive checks say what went unmeasured.
    let first_failed = steps
        .iter()
        .find(|s| s.checks.iter().any(|c| c.outcome == Outcome::Fail))
        .map(|s| s.name.as_str());
    let rank = |c: &FailureCause| match (c.kind.as_str(), c.cause.as_str()) {
        ("checks", "fail") if Some(c.step.as_str()) == first_failed => 0,
        ("requests", _) => 1,
        ("checks", "fail") => 2,
        _ => 3,
    };
    let mut top: Vec<FailureCause> = by_check.iter().chain(&by_request).cloned().collect();
    top.sort_by(|a, b| rank(a).cmp(&rank(b)).then(b.count.cmp(&a.count)));
    top.truncate(3);
    Some(TaxonomyReport {
        requests: by_request,
        checks: by_check,
        top,
    })
}

/// The spec's first hint whose every given field matches, else the built-in one.
fn hint(cause: &mut FailureCause, route: &str, hints: &[TaxonomyHint]) {
    let matched = hints.iter().find(|h| {
        h.step.as_ref().is_none_or(|s| *s == cause.step)
            && h.status.is_none_or(|s| Some(s) == cause.status)
            && h.route
                .as_ref()
                .is_none_or(|r| !route.is_empty() && route.starts_with(r.as_str()))
            && h.error.as_ref().is_none_or(|e| *e == cause.cause)
    });
    (cause.hint, cause.hint_from) = match matched {
        Some(h) => (h.hint.clone(), "spec".into()),
        None => (built_in(cause).into(), "built-in".into()),
    };
}

fn built_in(cause: &FailureCause) -> &'static str {
    if cause.kind == "requests" {
        return match (cause.status, cause.cause.as_str()) {
            (_, "injected by gauntlet") => {
                "errors gauntlet's split injected on purpose (the rollback rehearsal): expected, nothing to fix"
            }
            (_, "timeout") | (Some(504), _) => {
                "answers took too long: look for a slow dependency or a saturated pool, and check the candidate's own timeouts and retries on this route"
            }
            (_, "connection refused") => {
                "the candidate was not listening: did it crash or restart? Read its exit status and log under logs/"
            }
            (_, "connection reset") => {
                "connections were cut mid-request: look for a crash, an OOM kill or a proxy limit at the time of the first failure"
            }
            (Some(502), _) => {
                "a bad answer from an upstream: check the dependency this route calls and how the candidate handles its errors"
            }
            (Some(503), _) => {
                "the candidate was unavailable or shedding load: check its readiness, connection limits and the dependencies it marks down"
            }
            (Some(500), _) => {
                "the candidate failed on this route: read its log at the time of the first failure and diff the route's code path against the baseline"
            }
            _ => {
                "requests failed on this route: compare the candidate's answers with the baseline's for the same requests"
            }
        };
    }
    if cause.cause == "inconclusive" {
        return match cause.step.as_str() {
            "gates" => {
                "a gate could not be measured: check that Prometheus answered and that the query returns series (or give the gate an `on_empty`)"
            }
            _ => {
                "gauntlet could not measure this: make the missing system, tool or data available and run again; inconclusive is never a pass"
            }
        };
    }
    match cause.step.parse::<gauntlet_spec::StepName>() {
        Ok(step) => step.remedy(),
        Err(_) if cause.step == gauntlet_spec::steps::SETUP => {
            "a system did not start or answer its health check: read its log under logs/ and its `ready_timeout`"
        }
        Err(_) => "read the check's reason and evidence in the report",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gauntlet_report::{Check, Severity};

    fn step(name: &str, outcomes: &[Outcome]) -> StepReport {
        let checks = outcomes
            .iter()
            .enumerate()
            .map(|(i, o)| Check::new(name, &format!("c{i}"), Severity::Hard).outcome(*o, "why"))
            .collect();
        StepReport {
            checks,
            ..crate::run::skipped_step(name, String::new())
        }
    }

    fn failed(route: &str, cause: &str, count: u64) -> (String, FailedRequests) {
        (
            "canary".into(),
            FailedRequests {
                arm: Arm::Candidate,
                method: "GET".into(),
                route: route.into(),
                cause: cause.into(),
                count,
                example: "500 Internal Server Error".into(),
            },
        )
    }

    #[test]
    fn nothing_failed_is_no_taxonomy() {
        let steps = [step("chaos", &[Outcome::Pass, Outcome::Skipped])];
        assert!(classify(&steps, &[], &[]).is_none());
    }

    #[test]
    fn failed_checks_come_first_then_requests_by_count_each_with_a_hint() {
        let steps = [
            step("canary", &[Outcome::Fail, Outcome::Pass]),
            step("gates", &[Outcome::Inconclusive, Outcome::Inconclusive]),
            step("readiness", &[Outcome::Fail, Outcome::Fail]),
        ];
        let requests = [
            failed("/quote", "timeout", 3),
            failed("/items/{id}", "status 500", 40),
        ];
        let hints = [TaxonomyHint {
            step: None,
            status: Some(500),
            route: Some("/items".into()),
            error: None,
            hint: "the item store migration".into(),
        }];
        let t = classify(&steps, &requests, &hints).unwrap();
        let top: Vec<(&str, &str, u64)> = t
            .top
            .iter()
            .map(|c| (c.step.as_str(), c.cause.as_str(), c.count))
            .collect();
        assert_eq!(
            top,
            [
                ("canary", "fail", 1),
                ("canary", "status 500", 40),
                ("canary", "timeout", 3)
            ]
        );
        assert_eq!(t.top[1].hint, "the item store migration");
        assert_eq!(t.top[1].hint_from, "spec");
        assert_eq!(t.top[1].route.as_deref(), Some("GET /items/{id}"));
        assert_eq!(t.top[1].status, Some(500));
        assert!((t.top[1].share - 40.0 / 43.0).abs() < 1e-9);
        assert!(t.top[2].hint.contains("too long"), "{}", t.top[2].hint);
        assert_eq!(t.checks.len(), 3);
        let gates = t.checks.iter().find(|c| c.step == "gates").unwrap();
        assert_eq!(gates.count, 2);
        assert_eq!(gates.cause, "inconclusive");
        assert!(gates.hint.contains("Prometheus"));
        let canary = t.checks.iter().find(|c| c.step == "canary").unwrap();
        assert!(canary.example.starts_with("`canary.c0`"));
        assert!((canary.share - 0.2).abs() < 1e-9);
    }
}
