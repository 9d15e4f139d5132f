//! What every judge shares: observations, verdicts, and the trajectory it leaves behind.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arm {
    Baseline,
    Candidate,
}

/// One request's outcome, as recorded by the traffic split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub arm: Arm,
    pub ok: bool,
    pub latency_ms: f64,
    /// Milliseconds since the canary started.
    #[serde(default, alias = "timestamp", alias = "timestamp_ms")]
    pub t_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Continue,
    Accept,
    Reject,
}

/// One point of a judge's path: after `n` observations, the statistic and its boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub n: u64,
    pub statistic: f64,
    pub reject_at: f64,
    pub accept_at: Option<f64>,
}

/// A bounded record of a judge's path: when full, every other point is dropped and the
/// sampling interval doubles, so memory stays constant however long the canary runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Trajectory {
    pub points: Vec<Point>,
    every: u64,
    seen: u64,
}

const TRAJECTORY_POINTS: usize = 1024;

impl Trajectory {
    pub fn push(&mut self, point: Point) {
        self.every = self.every.max(1);
        self.seen += 1;
        if !self.seen.is_multiple_of(self.every) {
            return;
        }
        if self.points.len() >= TRAJECTORY_POINTS {
            let kept: Vec<Point> = self.points.iter().copied().step_by(2).collect();
            self.points = kept;
            self.every *= 2;
        }
        self.points.push(point);
    }

    /// Records `point`: sampled while the judge continues, always once it has decided.
    pub fn record(&mut self, point: Point, verdict: Verdict) {
        if verdict == Verdict::Continue {
            self.push(point);
        } else {
            self.finish(point);
        }
    }

    /// Records the final point whatever the sampling, so the path ends where the judge did.
    pub fn finish(&mut self, point: Point) {
        if self.points.last() != Some(&point) {
            self.points.push(point);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JudgeKind {
    Sprt,
    TwoSample,
    Latency,
    BurnRate,
}

/// A sequential judge: fed observations one at a time, it says whether it has decided.
pub trait Judge: Send {
    fn kind(&self) -> JudgeKind;
    fn observe(&mut self, observation: &Observation) -> Verdict;
    fn verdict(&self) -> Verdict;
    /// Observations this judge used.
    fn samples(&self) -> u64;
    /// The statistic now, and the reject and accept boundaries, in one line.
    fn explain(&self) -> String;
    fn trajectory(&self) -> &Trajectory;
}

/// Bonferroni: each of `gating` judges gets `alpha / gating`, so the false-alarm rate of the
/// whole canary stays at `alpha` however many metrics gate it.
pub fn split_alpha(alpha: f64, gating: usize) -> f64 {
    alpha / gating.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trajectories_stay_bounded_and_end_at_the_last_point() {
        let mut t = Trajectory::default();
        for n in 0..100_000u64 {
            t.push(Point {
                n,
                statistic: n as f64,
                reject_at: 1.0,
                accept_at: None,
            });
        }
        assert!(t.points.len() <= TRAJECTORY_POINTS);
        let last = Point {
            n: 100_000,
            statistic: 0.0,
            reject_at: 1.0,
            accept_at: None,
        };
        t.finish(last);
        assert_eq!(t.points.last(), Some(&last));
        assert!(t.points.windows(2).all(|w| w[0].n < w[1].n));
    }

    #[test]
    fn alpha_is_shared() {
        assert_eq!(split_alpha(0.05, 2), 0.025);
        assert_eq!(split_alpha(0.05, 0), 0.05);
    }
}
