//! Baseline and candidate answering the same items (a golden set), judged pair by pair:
//! McNemar's setting, made sequential and valid however often it is read.
//!
//! Each item gives a pair of outcomes; `d = baseline passed − candidate passed` is −1, 0 or
//! +1, and its mean Δ is how much more often the baseline passes. Concordant pairs (d = 0)
//! say nothing about which is better; only discordant ones move the reject side, as in
//! McNemar's test. Both sides are test supermartingales built by betting (after
//! Waudby-Smith & Ramdas, JRSS-B 2024), each a mixture over a fixed grid of bets, so no
//! parameter is tuned on the data:
//!
//! - **Reject** (the candidate is worse): against H0 Δ ≤ 0, wealth ∏(1 + λ·d). Under H0
//!   each factor has mean 1 + λΔ ≤ 1; reaching 1/α has probability at most α (Ville).
//! - **Accept** (the candidate is not worse by δ or more): against H0' Δ ≥ δ, wealth
//!   ∏(1 + μ·(δ − d)), μ < 1/(1 + δ) so each factor stays positive. Under H0' each factor
//!   has mean 1 + μ(δ − Δ) ≤ 1; reaching 1/β has probability at most β. Here concordant
//!   pairs count: agreeing on an item is evidence the gap is small.
//!
//! A set that runs out before either side decides is inconclusive: [`fewest_to_accept`]
//! says how many items even a perfect agreement needs.

use crate::judge::{Point, Trajectory, Verdict};
use crate::params::ParamError;

/// The bets each side mixes, as a share of the largest bet that keeps wealth positive.
const BETS: [f64; 5] = [0.1, 0.25, 0.5, 0.75, 0.95];

/// A paired sequential judge of pass/fail outcomes on the same items.
#[derive(Debug, Clone)]
pub struct Paired {
    delta: f64,
    reject_at: f64,
    accept_at: f64,
    /// Log-wealth of each bet, reject side then accept side.
    reject: [f64; BETS.len()],
    accept: [f64; BETS.len()],
    /// Items where: both passed, only the baseline, only the candidate, neither.
    counts: [u64; 4],
    verdict: Verdict,
    trajectory: Trajectory,
}

/// The log of the mean of `exp(logs)`, without overflow.
fn log_mean(logs: &[f64]) -> f64 {
    let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = logs.iter().map(|l| (l - top).exp()).sum();
    top + (sum / logs.len() as f64).ln()
}

impl Paired {
    /// `delta`: the smallest drop of the pass rate that matters (absolute), in (0, 1);
    /// `alpha` (a false reject) and `beta` (a false accept) in (0, ½).
    pub fn new(delta: f64, alpha: f64, beta: f64) -> Result<Self, ParamError> {
        crate::params::delta(delta)?;
        crate::params::error_rates(alpha, beta)?;
        Ok(Self {
            delta,
            reject_at: (1.0 / alpha).ln(),
            accept_at: (1.0 / beta).ln(),
            reject: [0.0; BETS.len()],
            accept: [0.0; BETS.len()],
            counts: [0; 4],
            verdict: Verdict::Continue,
            trajectory: Trajectory::default(),
        })
    }

    /// One item: whether the baseline's answer passed, whether the candidate's did.
    pub fn record(&mut self, baseline: bool, candidate: bool) -> Verdict {
        if self.verdict != Verdict::Continue {
            return self.verdict;
        }
        let d = f64::from(u8::from(baseline)) - f64::from(u8::from(candidate));
        for (i, share) in BETS.iter().enumerate() {
            self.reject[i] += (share * d).ln_1p();
            self.accept[i] += (share / (1.0 + self.delta) * (self.delta - d)).ln_1p();
        }
        let slot = match (baseline, candidate) {
            (true, true) => 0,
            (true, false) => 1,
            (false, true) => 2,
            (false, false) => 3,
        };
        self.counts[slot] += 1;
        let (reject, accept) = (self.log_reject(), self.log_accept());
        if reject >= self.reject_at {
            self.verdict = Verdict::Reject;
        } else if accept >= self.accept_at {
            self.verdict = Verdict::Accept;
        }
        let point = Point {
            n: self.items(),
            statistic: reject,
            reject_at: self.reject_at,
            accept_at: None,
        };
        self.trajectory.record(point, self.verdict);
        self.verdict
    }

    /// The log of the reject side's wealth (evidence the candidate is worse).
    pub fn log_reject(&self) -> f64 {
        log_mean(&self.reject)
    }

    /// The log of the accept side's wealth (evidence it is not worse by δ).
    pub fn log_accept(&self) -> f64 {
        log_mean(&self.accept)
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    pub fn items(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// (both passed, only the baseline passed, only the candidate passed, neither).
    pub fn counts(&self) -> [u64; 4] {
        self.counts
    }

    pub fn trajectory(&self) -> &Trajectory {
        &self.trajectory
    }

    /// What the judge saw and where it stands, for a check's reason.
    pub fn explain(&self) -> String {
        let [both, base_only, cand_only, neither] = self.counts;
        let n = self.items().max(1) as f64;
        let state = match self.verdict {
            Verdict::Reject => {
                "the candidate passes fewer items: evidence crossed the reject boundary"
            }
            Verdict::Accept => "the candidate is not worse by the smallest drop that matters",
            Verdict::Continue => "no decision yet",
        };
        format!(
            "{state}; {} items: baseline passed {:.1}%, candidate {:.1}%; discordant: {base_only} only the baseline passed, {cand_only} only the candidate ({neither} failed on both); log-evidence worse {:.2} (reject at {:.2}), not worse by {:.0}% {:.2} (accept at {:.2})",
            self.items(),
            100.0 * (both + base_only) as f64 / n,
            100.0 * (both + cand_only) as f64 / n,
            self.log_reject(),
            self.reject_at,
            self.delta * 100.0,
            self.log_accept(),
            self.accept_at,
        )
    }
}

/// The fewest items that can accept, when every pair agrees: a golden set smaller than this
/// cannot show that a candidate is no worse, whatever the answers.
pub fn fewest_to_accept(delta: f64, beta: f64) -> Result<u64, ParamError> {
    let mut judge = Paired::new(delta, 0.25, beta)?;
    let mut n = 0;
    while judge.record(true, true) == Verdict::Continue {
        n += 1;
    }
    Ok(n + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_accepts_and_a_clear_regression_rejects() {
        let mut same = Paired::new(0.1, 0.05, 0.05).unwrap();
        let mut n = 0;
        while same.record(true, n % 3 == 0) == Verdict::Continue && n < 10_000 {
            n += 1;
            if same.record(true, true) != Verdict::Continue {
                break;
            }
        }
        // Two of three candidate answers fail: that is a regression, never an accept.
        assert_eq!(same.verdict(), Verdict::Reject, "{}", same.explain());

        let mut agree = Paired::new(0.1, 0.05, 0.05).unwrap();
        let mut seen = 0;
        while agree.record(seen % 5 != 0, seen % 5 != 0) == Verdict::Continue {
            seen += 1;
        }
        assert_eq!(agree.verdict(), Verdict::Accept, "{}", agree.explain());
        assert_eq!(agree.counts()[1] + agree.counts()[2], 0);
        assert_eq!(agree.items(), fewest_to_accept(0.1, 0.05).unwrap());
    }

    #[test]
    fn concordant_pairs_never_move_the_reject_side() {
        let mut judge = Paired::new(0.1, 0.05, 0.05).unwrap();
        for i in 0..30 {
            judge.record(i % 2 == 0, i % 2 == 0);
        }
        assert!(judge.log_reject().abs() < 1e-12);
        assert!(judge.log_accept() > 0.0);
    }

    #[test]
    fn the_fewest_items_to_accept_grow_as_delta_and_beta_shrink() {
        let wide = fewest_to_accept(0.1, 0.05).unwrap();
        assert!((40..80).contains(&wide), "{wide}");
        assert!(fewest_to_accept(0.05, 0.05).unwrap() > wide);
        assert!(fewest_to_accept(0.1, 0.01).unwrap() > wide);
        assert!(fewest_to_accept(0.0, 0.05).is_err());
        assert!(Paired::new(0.1, 0.6, 0.05).is_err());
    }
}
