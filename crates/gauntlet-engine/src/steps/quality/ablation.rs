//! Retrieval ablation: the first items of the golden set asked of the candidate as it is,
//! then again with retrieval removed by real faults (journaled, always undone). The pass
//! rate must drop by the spec's bound; a golden set that scores as well without retrieval
//! does not measure retrieval, and a gate built on it proves nothing about it.

use gauntlet_report::{Check, Outcome};
use gauntlet_spec::{AblationPlan, QualityPlan};

use super::STEP;
use super::score::{Item, Scorer, ask};
use crate::answers::{in_waves, request_for};
use crate::context::RunContext;
use crate::faults::inject::{self, Applied};

/// How many of `items` the candidate passes, and how many were asked within the budget.
async fn pass_count(
    ctx: &RunContext,
    plan: &QualityPlan,
    scorer: &Scorer,
    items: &[&Item],
) -> (u64, u64) {
    let at_once = plan.concurrency.max(1) as usize;
    let scored = in_waves(items, at_once, plan.budget, |item| async move {
        let out = request_for(&plan.request, &ctx.candidate, &item.input);
        ask(&ctx.client, &out, plan.repeat, scorer, item, &ctx.child_env).await
    })
    .await;
    let passed = scored.iter().filter(|s| s.pass).count();
    (passed as u64, scored.len() as u64)
}

/// The ablation's check: the pass rate with and without retrieval, and the drop.
pub(super) async fn ablate(
    ctx: &RunContext,
    plan: &QualityPlan,
    ablation: &AblationPlan,
    scorer: &Scorer,
    items: Vec<&Item>,
) -> (Check, Option<f64>) {
    let check =
        Check::new(STEP, "retrieval ablation", super::severity(&plan.meta)).threshold(format!(
            "the pass rate drops by at least {:.0}% without retrieval",
            ablation.drop * 100.0
        ));
    let (with, asked) = pass_count(ctx, plan, scorer, &items).await;
    let mut applied: Vec<Applied> = Vec::new();
    let mut refused = None;
    for (i, fault) in ablation.faults.iter().enumerate() {
        let seed = plan.seed.wrapping_add(i as u64);
        match inject::apply(ctx, "ablation", i, fault, seed).await {
            Ok((done, line)) => {
                ctx.recorder.event(Some(STEP), "fault-applied", line);
                applied.push(done);
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let without = if refused.is_none() {
        Some(pass_count(ctx, plan, scorer, &items[..asked as usize]).await)
    } else {
        None
    };
    let in_force: Vec<Result<String, String>> =
        futures_util::future::join_all(applied.iter().map(|a| inject::in_force(ctx, a))).await;
    for done in applied {
        let (line, _) = inject::undo(ctx, done).await;
        ctx.recorder.event(Some(STEP), "fault-removed", line);
    }
    let outcome = judge(ablation, (with, asked), without, refused, &in_force);
    let drop = outcome.1;
    (outcome.0.apply(check), drop)
}

/// What the ablation concludes.
struct Said {
    outcome: Outcome,
    measured: Option<String>,
    reason: String,
}

impl Said {
    fn apply(self, check: Check) -> Check {
        let check = match self.measured {
            Some(m) => check.measured(m),
            None => check,
        };
        check.outcome(self.outcome, self.reason)
    }
}

fn judge(
    ablation: &AblationPlan,
    (with, asked): (u64, u64),
    without: Option<(u64, u64)>,
    refused: Option<String>,
    in_force: &[Result<String, String>],
) -> (Said, Option<f64>) {
    let unmeasured = |reason: String| {
        (
            Said {
                outcome: Outcome::Inconclusive,
                measured: None,
                reason,
            },
            None,
        )
    };
    if let Some(why) = refused {
        return unmeasured(format!("a fault could not be applied: {why}"));
    }
    if let Some(Err(why)) = in_force.iter().find(|f| f.is_err()) {
        return unmeasured(format!(
            "the faults did not take effect, so retrieval was never removed: {why}"
        ));
    }
    let Some((without, again)) = without else {
        return unmeasured("the items were not asked without retrieval".into());
    };
    if with == 0 || again == 0 {
        return unmeasured(format!(
            "the candidate passed {with} of {asked} items with retrieval: there is nothing to drop"
        ));
    }
    let rate = |p: u64, n: u64| p as f64 / n as f64;
    let drop = 1.0 - rate(without, again) / rate(with, asked);
    let measured = format!(
        "{with}/{asked} passed with retrieval, {without}/{again} without: {:.0}% drop",
        drop * 100.0
    );
    let said = if drop >= ablation.drop {
        Said {
            outcome: Outcome::Pass,
            measured: Some(measured),
            reason: "the golden set measures retrieval".into(),
        }
    } else {
        Said {
            outcome: Outcome::Fail,
            measured: Some(measured),
            reason: format!(
                "without retrieval the pass rate drops by only {:.0}% (needs {:.0}%): the golden set does not measure retrieval, so the quality gate says little about it",
                drop * 100.0,
                ablation.drop * 100.0
            ),
        }
    };
    (said, Some(drop))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> AblationPlan {
        AblationPlan {
            faults: Vec::new(),
            items: 40,
            drop: 0.10,
        }
    }

    #[test]
    fn a_set_that_scores_as_well_without_retrieval_fails_and_one_that_drops_passes() {
        let ok = [Ok("acted".to_string())];
        let (said, drop) = judge(&plan(), (40, 40), Some((38, 40)), None, &ok);
        assert_eq!(said.outcome, Outcome::Fail);
        assert!((drop.unwrap() - 0.05).abs() < 1e-9);
        let (said, _) = judge(&plan(), (36, 40), Some((4, 40)), None, &ok);
        assert_eq!(said.outcome, Outcome::Pass);
    }

    #[test]
    fn what_was_not_measured_is_inconclusive() {
        let ok = [Ok("acted".to_string())];
        let never = [Err("never acted".to_string())];
        for (with, without, refused, in_force) in [
            ((40, 40), Some((0, 40)), None, &never[..]),
            ((40, 40), None, Some("refused".to_string()), &ok[..]),
            ((0, 40), Some((0, 40)), None, &ok[..]),
        ] {
            let (said, drop) = judge(&plan(), with, without, refused, in_force);
            assert_eq!(said.outcome, Outcome::Inconclusive, "{}", said.reason);
            assert!(drop.is_none());
        }
    }
}
