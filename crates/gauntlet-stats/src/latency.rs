//! Latency, judged sequentially: a request is *slow* when it takes longer than a threshold
//! fixed from the baseline's first requests (its p95 plus a margin), and the two-sample
//! test compares the arms' rates of slow requests. The threshold depends only on warm-up
//! data that is not tested afterwards, so the test stays valid under continuous monitoring.

use crate::judge::{Arm, Judge, JudgeKind, Observation, Trajectory, Verdict};
use crate::params::ParamError;
use crate::two_sample::TwoSample;

#[derive(Debug, Clone)]
pub struct LatencyJudge {
    warmup: usize,
    margin_ms: f64,
    seen: Vec<f64>,
    threshold_ms: Option<f64>,
    inner: TwoSample,
    skipped: u64,
}

impl LatencyJudge {
    /// `delta`: the smallest rise in the share of slow requests that matters;
    /// `warmup`: baseline requests used to fix the threshold; `margin_ms` is added to their p95.
    pub fn new(
        delta: f64,
        alpha: f64,
        beta: f64,
        warmup: usize,
        margin_ms: f64,
    ) -> Result<Self, ParamError> {
        Ok(Self {
            warmup: warmup.max(1),
            margin_ms,
            seen: Vec::with_capacity(warmup.max(1)),
            threshold_ms: None,
            inner: TwoSample::new(delta, alpha, beta)?.named("slow-request", JudgeKind::Latency),
            skipped: 0,
        })
    }

    pub fn with_min_samples(mut self, min_samples: u64) -> Self {
        self.inner = self.inner.with_min_samples(min_samples);
        self
    }

    pub fn threshold_ms(&self) -> Option<f64> {
        self.threshold_ms
    }
}

impl Judge for LatencyJudge {
    fn kind(&self) -> JudgeKind {
        JudgeKind::Latency
    }
    fn observe(&mut self, observation: &Observation) -> Verdict {
        let Some(threshold) = self.threshold_ms else {
            // Warm-up: baseline latencies fix the threshold; nothing is tested yet.
            if observation.arm == Arm::Baseline && observation.latency_ms.is_finite() {
                self.seen.push(observation.latency_ms);
                if self.seen.len() >= self.warmup {
                    self.seen.sort_by(f64::total_cmp);
                    let at = ((self.seen.len() as f64 * 0.95).ceil() as usize)
                        .clamp(1, self.seen.len())
                        - 1;
                    self.threshold_ms = Some(self.seen[at] + self.margin_ms);
                    self.seen = Vec::new();
                }
            } else {
                self.skipped += 1;
            }
            return Verdict::Continue;
        };
        // A failed request has no meaningful latency; the error judges count it.
        if !observation.ok {
            return self.inner.verdict();
        }
        self.inner
            .record(observation.arm, observation.latency_ms > threshold)
    }
    fn verdict(&self) -> Verdict {
        self.inner.verdict()
    }
    fn samples(&self) -> u64 {
        self.inner.samples()
    }
    fn explain(&self) -> String {
        match self.threshold_ms {
            None => format!(
                "latency: warming up, {} of {} baseline requests seen to fix the slow threshold",
                self.seen.len(),
                self.warmup
            ),
            Some(t) => format!(
                "latency (slow = over {t:.1} ms, the baseline's p95 + {:.0} ms): {}",
                self.margin_ms,
                self.inner.explain()
            ),
        }
    }
    fn trajectory(&self) -> &Trajectory {
        self.inner.trajectory()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(judge: &mut LatencyJudge, added_ms: f64) -> Verdict {
        let mut rng = gauntlet_net::SplitMix64::new(5);
        for i in 0..20_000u64 {
            let arm = if i % 2 == 0 {
                Arm::Baseline
            } else {
                Arm::Candidate
            };
            let base = 5.0 + 10.0 * rng.next_f64();
            let latency_ms = if arm == Arm::Candidate {
                base + added_ms
            } else {
                base
            };
            let v = judge.observe(&Observation {
                arm,
                ok: true,
                latency_ms,
                t_ms: i,
            });
            if v != Verdict::Continue {
                return v;
            }
        }
        Verdict::Continue
    }

    #[test]
    fn added_latency_is_rejected_and_equal_latency_accepted() {
        let mut slow = LatencyJudge::new(0.1, 0.05, 0.05, 100, 5.0).unwrap();
        assert_eq!(feed(&mut slow, 200.0), Verdict::Reject);
        assert!(slow.samples() < 100, "{}", slow.samples());
        let mut same = LatencyJudge::new(0.1, 0.05, 0.05, 100, 5.0).unwrap();
        assert_eq!(feed(&mut same, 0.0), Verdict::Accept);
        assert!(same.threshold_ms().unwrap() > 14.0);
    }
}
