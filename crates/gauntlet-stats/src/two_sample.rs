//! Baseline and candidate side by side, with no known p0 (after Lindon & Malek, NeurIPS
//! 2022; DOMAIN.md). Given that a failure happened, it falls in the candidate arm with
//! probability ρ (the candidate's share of traffic) when both arms fail alike.
//!
//! - **Reject** (a regression): a likelihood-ratio test martingale on that conditional
//!   binomial. Each failure multiplies it by θ₁/ρ (candidate) or (1−θ₁)/(1−ρ) (baseline),
//!   where θ₁ is the share a candidate worse by `delta` would take, computed from data
//!   before the failure (a predictable plug-in), so under H0 the product keeps mean 1.
//!   Reject when it reaches 1/α: by Ville's inequality that happens with probability at most
//!   α, however often the judge is read. ρ is the candidate's share of requests so far.
//! - **Accept**: always-valid confidence sequences on both rates show the candidate's rate
//!   exceeds the baseline's by less than `delta` (each bound at β/2).

use crate::binomial::mixture_bounds;
use crate::judge::{Arm, Judge, JudgeKind, Observation, Point, Trajectory, Verdict};
use crate::params::ParamError;

/// Bounds are re-evaluated every this many observations (each evaluation is a constant
/// number of bisection steps, so updates stay O(1)).
const BOUNDS_EVERY: u64 = 16;

#[derive(Debug, Clone)]
pub struct TwoSample {
    delta: f64,
    reject_at: f64,
    beta: f64,
    min_samples: u64,
    n: [u64; 2],
    failures: [u64; 2],
    log_lr: f64,
    events: u64,
    verdict: Verdict,
    margin: f64,
    trajectory: Trajectory,
    what: &'static str,
    kind: JudgeKind,
}

fn index(arm: Arm) -> usize {
    match arm {
        Arm::Baseline => 0,
        Arm::Candidate => 1,
    }
}

impl TwoSample {
    /// `delta`: the smallest rise of the candidate's failure rate that matters (absolute),
    /// in (0, 1); `alpha`, `beta` in (0, ½). Anything else is refused, never clamped.
    pub fn new(delta: f64, alpha: f64, beta: f64) -> Result<Self, ParamError> {
        crate::params::delta(delta)?;
        crate::params::error_rates(alpha, beta)?;
        Ok(Self {
            delta,
            reject_at: (1.0 / alpha).ln(),
            beta,
            min_samples: 0,
            n: [0; 2],
            failures: [0; 2],
            log_lr: 0.0,
            events: 0,
            verdict: Verdict::Continue,
            margin: f64::INFINITY,
            trajectory: Trajectory::default(),
            what: "failures",
            kind: JudgeKind::TwoSample,
        })
    }

    /// No acceptance before each arm has this many observations.
    pub fn with_min_samples(mut self, min_samples: u64) -> Self {
        self.min_samples = min_samples;
        self
    }

    pub(crate) fn named(mut self, what: &'static str, kind: JudgeKind) -> Self {
        self.what = what;
        self.kind = kind;
        self
    }

    /// Feeds one outcome; `bad` is a failure (or, for latency, a slow request).
    pub fn record(&mut self, arm: Arm, bad: bool) -> Verdict {
        if self.verdict != Verdict::Continue {
            return self.verdict;
        }
        let i = index(arm);
        if bad {
            let total = self.n[0] + self.n[1];
            if total > 0 && self.n[0] > 0 && self.n[1] > 0 {
                let rho = self.n[1] as f64 / total as f64;
                // The baseline rate so far, shrunk towards 1/2 so it is never 0.
                let p_base = (self.failures[0] as f64 + 0.5) / (self.n[0] as f64 + 1.0);
                let p_worse = (p_base + self.delta).min(1.0);
                let theta = rho * p_worse / (rho * p_worse + (1.0 - rho) * p_base);
                self.log_lr += if arm == Arm::Candidate {
                    (theta / rho).ln()
                } else {
                    ((1.0 - theta) / (1.0 - rho)).ln()
                };
                self.events += 1;
            }
            self.failures[i] += 1;
        }
        self.n[i] += 1;
        let observed = self.n[0] + self.n[1];
        if self.log_lr >= self.reject_at {
            self.verdict = Verdict::Reject;
        } else if observed.is_multiple_of(BOUNDS_EVERY)
            && self.n[0].min(self.n[1]) >= self.min_samples.max(1)
        {
            let candidate = mixture_bounds(self.failures[1], self.n[1], self.beta / 2.0);
            let baseline = mixture_bounds(self.failures[0], self.n[0], self.beta / 2.0);
            self.margin = candidate.upper - baseline.lower;
            if self.margin < self.delta {
                self.verdict = Verdict::Accept;
            }
        }
        let point = Point {
            n: observed,
            statistic: self.log_lr,
            reject_at: self.reject_at,
            accept_at: None,
        };
        self.trajectory.record(point, self.verdict);
        self.verdict
    }

    pub fn log_lr(&self) -> f64 {
        self.log_lr
    }
    pub fn counts(&self, arm: Arm) -> (u64, u64) {
        (self.failures[index(arm)], self.n[index(arm)])
    }
}

impl Judge for TwoSample {
    fn kind(&self) -> JudgeKind {
        self.kind
    }
    fn observe(&mut self, observation: &Observation) -> Verdict {
        self.record(observation.arm, !observation.ok)
    }
    fn verdict(&self) -> Verdict {
        self.verdict
    }
    fn samples(&self) -> u64 {
        self.n[0] + self.n[1]
    }
    fn explain(&self) -> String {
        let rate = |i: usize| {
            if self.n[i] == 0 {
                0.0
            } else {
                100.0 * self.failures[i] as f64 / self.n[i] as f64
            }
        };
        let state = match self.verdict {
            Verdict::Reject => format!(
                "log-likelihood ratio {:.2} crossed the reject boundary {:.2}",
                self.log_lr, self.reject_at
            ),
            Verdict::Accept => format!(
                "the candidate's {} rate exceeds the baseline's by at most {:.2} points (< {:.2}), log-likelihood ratio {:.2}",
                self.what,
                self.margin * 100.0,
                self.delta * 100.0,
                self.log_lr
            ),
            Verdict::Continue => format!(
                "log-likelihood ratio {:.2} below the reject boundary {:.2}; rise bound {} (needs < {:.2} points)",
                self.log_lr,
                self.reject_at,
                if self.margin.is_finite() {
                    format!("{:.2} points", self.margin * 100.0)
                } else {
                    "not yet computed".into()
                },
                self.delta * 100.0
            ),
        };
        format!(
            "two-sample {}: {state}; candidate {}/{} ({:.2}%), baseline {}/{} ({:.2}%), {} events",
            self.what,
            self.failures[1],
            self.n[1],
            rate(1),
            self.failures[0],
            self.n[0],
            rate(0),
            self.events
        )
    }
    fn trajectory(&self) -> &Trajectory {
        &self.trajectory
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_candidate_failing_much_more_is_rejected() {
        let mut judge = TwoSample::new(0.03, 0.05, 0.05).unwrap();
        let mut verdict = Verdict::Continue;
        for i in 0..10_000u64 {
            let arm = if i % 2 == 0 {
                Arm::Baseline
            } else {
                Arm::Candidate
            };
            let bad = arm == Arm::Candidate && i % 5 == 1; // candidate 20%, baseline 0%
            verdict = judge.record(arm, bad);
            if verdict != Verdict::Continue {
                break;
            }
        }
        assert_eq!(verdict, Verdict::Reject);
        assert!(judge.samples() < 200, "{}", judge.samples());
    }

    #[test]
    fn equal_clean_arms_are_accepted() {
        let mut judge = TwoSample::new(0.03, 0.05, 0.05)
            .unwrap()
            .with_min_samples(100);
        let mut verdict = Verdict::Continue;
        for i in 0..10_000u64 {
            let arm = if i % 2 == 0 {
                Arm::Baseline
            } else {
                Arm::Candidate
            };
            verdict = judge.record(arm, false);
            if verdict != Verdict::Continue {
                break;
            }
        }
        assert_eq!(verdict, Verdict::Accept);
        assert!(judge.explain().contains("at most"), "{}", judge.explain());
    }

    #[test]
    fn no_traffic_to_an_arm_never_decides() {
        let mut judge = TwoSample::new(0.03, 0.05, 0.05).unwrap();
        for _ in 0..5000 {
            assert_eq!(judge.record(Arm::Candidate, true), Verdict::Continue);
        }
    }
}
