//! Monte-Carlo checks of the judges under continuous monitoring, with fixed seeds: the share
//! of runs that reject when nothing changed (false alarms) and when the candidate regressed
//! (power), and how many samples a decision took. Shared by the test suite (fewer runs) and
//! the `simulation` benchmark (10,000 runs).

#![allow(dead_code)]

use gauntlet_net::SplitMix64;
use gauntlet_stats::{
    Arm, Judge, LatencyJudge, Observation, Paired, Sprt, TwoSample, Verdict, fixed_horizon_n,
};
use statrs::distribution::{ContinuousCDF, Normal};

#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub runs: u32,
    pub rejected: u32,
    pub accepted: u32,
    pub samples: u64,
}

impl Tally {
    pub fn reject_rate(&self) -> f64 {
        f64::from(self.rejected) / f64::from(self.runs)
    }
    pub fn accept_rate(&self) -> f64 {
        f64::from(self.accepted) / f64::from(self.runs)
    }
    pub fn mean_samples(&self) -> f64 {
        self.samples as f64 / f64::from(self.runs)
    }
    /// Three standard errors of a rate `p` over these runs.
    pub fn mc_error(&self, p: f64) -> f64 {
        3.0 * (p * (1.0 - p) / f64::from(self.runs)).sqrt()
    }
    fn add(&mut self, verdict: Verdict, samples: u64) {
        self.runs += 1;
        self.samples += samples;
        match verdict {
            Verdict::Reject => self.rejected += 1,
            Verdict::Accept => self.accepted += 1,
            Verdict::Continue => {}
        }
    }
}

/// Wald's SPRT at true rate `p` (p0 = 1%, p1 = 4%, α = β = 5%), capped at `cap` samples.
pub fn sprt(runs: u32, p: f64, seed: u64, cap: u64) -> Tally {
    let mut rng = SplitMix64::new(seed);
    let mut tally = Tally::default();
    for _ in 0..runs {
        let mut judge = Sprt::new(0.01, 0.04, 0.05, 0.05).unwrap();
        let mut verdict = Verdict::Continue;
        while verdict == Verdict::Continue && judge.samples() < cap {
            verdict = judge.observe(rng.next_f64() >= p);
        }
        tally.add(verdict, judge.samples());
    }
    tally
}

/// A one-sided fixed-horizon z-test of p0 = 1% read after every sample up to its horizon:
/// the false alarms that interval-by-interval canary checks suffer.
pub fn peeking_z_test(runs: u32, p: f64, seed: u64) -> Tally {
    let horizon = fixed_horizon_n(0.01, 0.04, 0.05, 0.05).ceil() as u64;
    let z_crit = Normal::standard().inverse_cdf(0.95);
    let mut rng = SplitMix64::new(seed);
    let mut tally = Tally::default();
    for _ in 0..runs {
        let mut failures = 0u64;
        let mut verdict = Verdict::Accept;
        let mut used = horizon;
        for n in 1..=horizon {
            failures += u64::from(rng.next_f64() < p);
            let z = (failures as f64 / n as f64 - 0.01) / (0.01 * 0.99 / n as f64).sqrt();
            if n >= 10 && z > z_crit {
                verdict = Verdict::Reject;
                used = n;
                break;
            }
        }
        tally.add(verdict, used);
    }
    tally
}

/// Two arms sharing traffic 50/50 with failure rates `p_base` and `p_cand`.
pub fn two_sample(runs: u32, p_base: f64, p_cand: f64, seed: u64, cap: u64) -> Tally {
    let mut rng = SplitMix64::new(seed);
    let mut tally = Tally::default();
    for _ in 0..runs {
        let mut judge = TwoSample::new(0.03, 0.05, 0.05)
            .unwrap()
            .with_min_samples(100);
        let mut verdict = Verdict::Continue;
        while verdict == Verdict::Continue && judge.samples() < cap {
            let arm = if rng.next_u64() & 1 == 0 {
                Arm::Baseline
            } else {
                Arm::Candidate
            };
            let p = if arm == Arm::Candidate {
                p_cand
            } else {
                p_base
            };
            verdict = judge.record(arm, rng.next_f64() < p);
        }
        tally.add(verdict, judge.samples());
    }
    tally
}

/// Exponential latencies with mean 20 ms; the candidate adds `added_ms` (+25 ms raises the
/// share above the baseline p95 from 5% to about 17%, beyond the judge's delta of 10 points).
pub fn latency(runs: u32, added_ms: f64, seed: u64, cap: u64) -> Tally {
    let mut rng = SplitMix64::new(seed);
    let mut tally = Tally::default();
    for _ in 0..runs {
        let mut judge = LatencyJudge::new(0.1, 0.05, 0.05, 200, 0.0)
            .unwrap()
            .with_min_samples(100);
        let mut verdict = Verdict::Continue;
        let mut t = 0;
        while verdict == Verdict::Continue && judge.samples() < cap {
            t += 1;
            let arm = if rng.next_u64() & 1 == 0 {
                Arm::Baseline
            } else {
                Arm::Candidate
            };
            let mut latency_ms = -20.0 * (1.0 - rng.next_f64()).ln();
            if arm == Arm::Candidate {
                latency_ms += added_ms;
            }
            verdict = judge.observe(&Observation {
                arm,
                ok: true,
                latency_ms,
                t_ms: t,
            });
        }
        tally.add(verdict, judge.samples());
    }
    tally
}

/// A golden set's items answered by both arms: each item passes on both with probability
/// `both`, on the baseline only with `base_only`, on the candidate only with `cand_only`
/// (pairs are correlated, as answers to the same question are). The paired judge at
/// δ = 10%, α = β = 5%; Δ = base_only − cand_only.
pub fn paired(runs: u32, both: f64, base_only: f64, cand_only: f64, seed: u64, cap: u64) -> Tally {
    let mut rng = SplitMix64::new(seed);
    let mut tally = Tally::default();
    for _ in 0..runs {
        let mut judge = Paired::new(0.1, 0.05, 0.05).unwrap();
        let mut verdict = Verdict::Continue;
        while verdict == Verdict::Continue && judge.items() < cap {
            let u = rng.next_f64();
            let (b, c) = if u < both {
                (true, true)
            } else if u < both + base_only {
                (true, false)
            } else if u < both + base_only + cand_only {
                (false, true)
            } else {
                (false, false)
            };
            verdict = judge.record(b, c);
        }
        tally.add(verdict, judge.items());
    }
    tally
}
