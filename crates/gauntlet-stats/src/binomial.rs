//! Always-valid confidence bounds for a Bernoulli rate: the beta-binomial mixture
//! martingale (Robbins 1970; see Howard et al., "Time-uniform, nonparametric, nonasymptotic
//! confidence sequences", 2021). For the true rate p,
//! M_n(p) = B(a+x, b+n−x) / B(a, b) / (p^x (1−p)^(n−x)) is a nonnegative martingale with
//! mean 1, so by Ville's inequality {p : M_n(p) < 1/α} covers p at every n at once with
//! probability at least 1 − α, however often it is read.

use statrs::function::gamma::ln_gamma;

/// The prior of the mixture: Beta(1/2, 1/2) (Jeffreys).
const PRIOR: (f64, f64) = (0.5, 0.5);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfidenceBounds {
    pub lower: f64,
    pub upper: f64,
}

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// ln M_n(p) for `failures` of `n`.
fn ln_mixture(failures: u64, n: u64, p: f64) -> f64 {
    let (a, b) = PRIOR;
    let x = failures as f64;
    let m = (n - failures) as f64;
    let log_p = if x > 0.0 { x * p.ln() } else { 0.0 };
    let log_q = if m > 0.0 { m * (1.0 - p).ln() } else { 0.0 };
    ln_beta(a + x, b + m) - ln_beta(a, b) - log_p - log_q
}

/// Bounds on the rate after `failures` of `n`, valid at every `n` simultaneously with
/// probability at least `1 - alpha`.
pub fn mixture_bounds(failures: u64, n: u64, alpha: f64) -> ConfidenceBounds {
    if n == 0 {
        return ConfidenceBounds {
            lower: 0.0,
            upper: 1.0,
        };
    }
    let failures = failures.min(n);
    let threshold = (1.0 / alpha).ln();
    let centre = failures as f64 / n as f64;
    // ln M_n is convex in p with its minimum at the observed rate: bisect on either side.
    let edge = |mut inside: f64, mut outside: f64| {
        for _ in 0..60 {
            let mid = 0.5 * (inside + outside);
            if ln_mixture(failures, n, mid) < threshold {
                inside = mid;
            } else {
                outside = mid;
            }
        }
        inside
    };
    let upper = if ln_mixture(failures, n, 1.0 - 1e-12) < threshold {
        1.0
    } else {
        edge(centre, 1.0 - 1e-12)
    };
    let lower = if ln_mixture(failures, n, 1e-12) < threshold {
        0.0
    } else {
        edge(centre, 1e-12)
    };
    ConfidenceBounds { lower, upper }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_contain_the_estimate_and_shrink_with_data() {
        let small = mixture_bounds(1, 100, 0.05);
        let large = mixture_bounds(100, 10_000, 0.05);
        assert!(small.lower <= 0.01 && 0.01 <= small.upper);
        assert!(large.lower <= 0.01 && 0.01 <= large.upper);
        assert!(large.upper - large.lower < small.upper - small.lower);
        assert_eq!(
            mixture_bounds(0, 0, 0.05),
            ConfidenceBounds {
                lower: 0.0,
                upper: 1.0
            }
        );
        let none = mixture_bounds(0, 1000, 0.05);
        assert_eq!(none.lower, 0.0);
        assert!(none.upper < 0.01, "{none:?}");
    }

    #[test]
    fn coverage_holds_uniformly_over_time() {
        // 600 seeded paths of 2,000 draws at p = 3%: the bound may miss p at any time on
        // at most alpha of the paths (plus Monte-Carlo error).
        let mut rng = gauntlet_net::SplitMix64::new(11);
        let p = 0.03;
        let mut missed = 0;
        for _ in 0..600 {
            let mut failures = 0;
            let mut miss = false;
            for n in 1..=2000u64 {
                if rng.next_f64() < p {
                    failures += 1;
                }
                if n % 100 == 0 {
                    let b = mixture_bounds(failures, n, 0.05);
                    miss |= p < b.lower || p > b.upper;
                }
            }
            missed += u32::from(miss);
        }
        assert!(f64::from(missed) / 600.0 <= 0.05 + 0.027, "{missed}");
    }
}

/// The exact (Clopper–Pearson) one-sided upper bound on a rate after `successes` of `n`:
/// the rate below which the truth lies with probability at least `confidence`. With no
/// trials it is 1: nothing was shown.
pub fn clopper_pearson_upper(successes: u64, n: u64, confidence: f64) -> f64 {
    use statrs::distribution::{Beta, ContinuousCDF};
    if n == 0 || successes >= n {
        return 1.0;
    }
    Beta::new(successes as f64 + 1.0, (n - successes) as f64)
        .map_or(1.0, |beta| beta.inverse_cdf(confidence))
}

#[cfg(test)]
mod clopper_pearson {
    use super::clopper_pearson_upper;

    #[test]
    fn no_successes_give_the_closed_form_bound() {
        for n in [1u64, 10, 30, 100] {
            let exact = 1.0 - 0.05f64.powf(1.0 / n as f64);
            assert!(
                (clopper_pearson_upper(0, n, 0.95) - exact).abs() < 1e-9,
                "{n}"
            );
        }
        assert_eq!(clopper_pearson_upper(0, 0, 0.95), 1.0);
        assert_eq!(clopper_pearson_upper(5, 5, 0.95), 1.0);
        assert!(clopper_pearson_upper(3, 30, 0.95) > 0.1);
    }
}
