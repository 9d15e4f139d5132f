//! A stage judged on traffic gauntlet did not send: each arm's totals read from Prometheus
//! every `interval`, their increments fed to the same panel as the split's observations.
//! Within one interval the order of requests is unknown; they are fed in a seeded random
//! order, which under the judges' null hypothesis (requests of an arm fail alike and
//! independently) has the same distribution as the order they came in, so the error bounds
//! hold as they do on the split.
//!
//! A reading that cannot be trusted ends the stage as unmeasured (inconclusive), never as a
//! pass or a reject: a failed or partial query, a missing series, several series where one
//! total was asked for, a total that went down (a counter reset), or no candidate traffic.

use std::time::Duration;

use gauntlet_metrics::prometheus::Prometheus;
use gauntlet_net::SplitMix64;
use gauntlet_spec::{ArmQueries, PrometheusSourcePlan};
use gauntlet_stats::{Arm, Observation};
use tokio::time::Instant;

use super::stage::{StageEnd, StageJudge, StageRun};

/// More requests than this in one interval are not expanded one by one: read more often.
const MOST_PER_INTERVAL: u64 = 2_000_000;

/// One arm's running totals at one reading.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Totals {
    requests: f64,
    errors: f64,
    slow: f64,
}

/// One arm's requests in one interval, and how many of them were bad (failed or slow).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counted {
    requests: u64,
    bad: u64,
}

/// What a stage on a Prometheus source reads.
pub struct Source<'a> {
    pub plan: &'a PrometheusSourcePlan,
    pub prometheus: Prometheus,
}

impl<'a> Source<'a> {
    pub fn new(plan: &'a PrometheusSourcePlan) -> Self {
        let timeout = plan
            .interval
            .clamp(Duration::from_secs(1), Duration::from_secs(10));
        let prometheus = Prometheus::new(&plan.url, timeout)
            .with_tenant(plan.tenant.clone())
            .with_retries(2, Duration::from_millis(200));
        Self { plan, prometheus }
    }
}

/// Reads the totals every interval for up to `bake`, feeding the increments to the panel
/// until it decides, an abort trigger fires, time runs out, or a reading cannot be trusted.
pub async fn run_stage(
    source: &Source<'_>,
    seed: u64,
    judging: StageJudge<'_>,
    bake: Duration,
) -> StageRun {
    let started = Instant::now();
    let deadline = started + bake;
    let mut judging = judging.untimed();
    let mut rng = SplitMix64::new(seed);
    let end = 'judged: {
        let mut last = match read(source).await {
            Ok(totals) => totals,
            Err(why) => break 'judged StageEnd::Unmeasured(why),
        };
        loop {
            let wake = (Instant::now() + source.plan.interval).min(deadline);
            tokio::time::sleep_until(wake).await;
            let now = match read(source).await {
                Ok(totals) => totals,
                Err(why) => break 'judged StageEnd::Unmeasured(why),
            };
            let counted = match increments(&source.plan.arms, &last, &now) {
                Ok(counted) => counted,
                Err(why) => break 'judged StageEnd::Unmeasured(why),
            };
            last = now;
            let t_ms = started.elapsed().as_millis() as u64;
            for observation in in_random_order(counted, t_ms, &mut rng) {
                if let Some(end) = judging.feed(observation) {
                    break 'judged end;
                }
            }
            if Instant::now() >= deadline {
                break 'judged no_decision(&judging, bake);
            }
        }
    };
    judging.finish(end, started.elapsed())
}

/// The bake ended undecided; with no candidate request counted at all, say so.
fn no_decision(judging: &StageJudge<'_>, bake: Duration) -> StageEnd {
    if judging.candidate > 0 {
        return StageEnd::TimedOut;
    }
    StageEnd::Unmeasured(format!(
        "no candidate request was counted in {}: is traffic reaching the candidate, and do the queries select its series?",
        humantime::format_duration(bake)
    ))
}

/// Both arms' totals now (baseline, candidate).
async fn read(source: &Source<'_>) -> Result<[Totals; 2], String> {
    let mut totals = [Totals::default(); 2];
    for (arm, queries) in totals.iter_mut().zip(&source.plan.arms) {
        arm.requests = one_value(source, queries, "requests", &queries.requests).await?;
        arm.errors = one_value(source, queries, "errors", &queries.errors).await?;
        if let Some(slow) = &queries.slow {
            arm.slow = one_value(source, queries, "slow", slow).await?;
        }
    }
    Ok(totals)
}

/// The single finite, non-negative value `query` returns.
async fn one_value(
    source: &Source<'_>,
    arm: &ArmQueries,
    name: &str,
    query: &str,
) -> Result<f64, String> {
    let what = format!("the `{name}` query for arm `{}` (`{query}`)", arm.label);
    let samples = source
        .prometheus
        .query_whole(query)
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    match samples.as_slice() {
        [] => Err(format!(
            "{what} returned no series: the series is missing (end it with `or vector(0)` only if no series means none happened)"
        )),
        [one] if one.value.is_finite() && one.value >= 0.0 => Ok(one.value),
        [one] => Err(format!("{what} returned {}, not a total", one.value)),
        many => Err(format!(
            "{what} returned {} series where one total is needed: wrap it in `sum(...)`",
            many.len()
        )),
    }
}

/// Each arm's requests and bad requests between two readings.
fn increments(
    arms: &[ArmQueries; 2],
    before: &[Totals; 2],
    now: &[Totals; 2],
) -> Result<[Counted; 2], String> {
    let mut counted = [Counted::default(); 2];
    for (i, out) in counted.iter_mut().enumerate() {
        let (a, b, label) = (&before[i], &now[i], &arms[i].label);
        let rise = |name: &str, from: f64, to: f64| {
            if to + 1e-9 < from {
                return Err(format!(
                    "the `{name}` total of arm `{label}` went down from {from} to {to}: a counter reset (a restart?) hides what happened in between"
                ));
            }
            Ok((to - from).max(0.0).round() as u64)
        };
        let requests = rise("requests", a.requests, b.requests)?;
        let bad = rise("errors", a.errors, b.errors)? + rise("slow", a.slow, b.slow)?;
        if requests > MOST_PER_INTERVAL {
            return Err(format!(
                "{requests} requests of arm `{label}` in one interval: read more often (`interval`)"
            ));
        }
        // Totals scraped a moment apart can count an error before its request.
        *out = Counted {
            requests,
            bad: bad.min(requests),
        };
    }
    Ok(counted)
}

/// The interval's requests, both arms interleaved and the bad ones placed uniformly at
/// random (sampling without replacement), all at `t_ms`.
fn in_random_order(
    counted: [Counted; 2],
    t_ms: u64,
    rng: &mut SplitMix64,
) -> impl Iterator<Item = Observation> + '_ {
    let mut left = counted;
    std::iter::from_fn(move || {
        let total = left[0].requests + left[1].requests;
        if total == 0 {
            return None;
        }
        let i = usize::from(rng.below(total) >= left[0].requests);
        let arm = &mut left[i];
        let bad = rng.below(arm.requests) < arm.bad;
        arm.requests -= 1;
        arm.bad -= u64::from(bad);
        Some(Observation {
            arm: if i == 0 {
                Arm::Baseline
            } else {
                Arm::Candidate
            },
            ok: !bad,
            latency_ms: 0.0,
            t_ms,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arms() -> [ArmQueries; 2] {
        let arm = |label: &str| ArmQueries {
            label: label.into(),
            requests: "r".into(),
            errors: "e".into(),
            slow: None,
        };
        [arm("v1"), arm("v2")]
    }

    fn totals(requests: f64, errors: f64) -> Totals {
        Totals {
            requests,
            errors,
            slow: 0.0,
        }
    }

    #[test]
    fn increments_are_the_rise_and_a_reset_is_refused() {
        let before = [totals(100.0, 1.0), totals(50.0, 0.0)];
        let now = [totals(200.0, 3.0), totals(80.0, 5.0)];
        let counted = increments(&arms(), &before, &now).unwrap();
        assert_eq!(
            counted[0],
            Counted {
                requests: 100,
                bad: 2
            }
        );
        assert_eq!(
            counted[1],
            Counted {
                requests: 30,
                bad: 5
            }
        );
        let reset = [totals(10.0, 0.0), totals(80.0, 5.0)];
        let err = increments(&arms(), &now, &reset).unwrap_err();
        assert!(
            err.contains("counter reset") && err.contains("`v1`"),
            "{err}"
        );
        // More errors than requests in one interval (scraped apart) count as all bad.
        let skewed = [totals(200.0, 3.0), totals(81.0, 9.0)];
        assert_eq!(increments(&arms(), &now, &skewed).unwrap()[1].bad, 1);
    }

    #[test]
    fn every_request_is_fed_once_with_its_arm_and_outcome() {
        let counted = [
            Counted {
                requests: 300,
                bad: 7,
            },
            Counted {
                requests: 120,
                bad: 40,
            },
        ];
        let mut rng = SplitMix64::new(9);
        let fed: Vec<Observation> = in_random_order(counted, 5, &mut rng).collect();
        let count = |arm: Arm, ok: bool| fed.iter().filter(|o| o.arm == arm && o.ok == ok).count();
        assert_eq!(count(Arm::Baseline, false), 7);
        assert_eq!(count(Arm::Baseline, true), 293);
        assert_eq!(count(Arm::Candidate, false), 40);
        assert_eq!(count(Arm::Candidate, true), 80);
        assert!(fed.iter().all(|o| o.t_ms == 5));
        // Interleaved, not one arm after the other.
        let first_candidate = fed.iter().position(|o| o.arm == Arm::Candidate).unwrap();
        assert!(first_candidate < 50, "{first_candidate}");
        // Seeded: the same order again.
        let again: Vec<Observation> =
            in_random_order(counted, 5, &mut SplitMix64::new(9)).collect();
        assert_eq!(fed, again);
    }
}
