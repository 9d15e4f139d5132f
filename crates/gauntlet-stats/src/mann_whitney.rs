//! The Mann–Whitney U test (fixed horizon) in O(n log n): one sort of both samples, ranks
//! with ties averaged, the normal approximation with the tie correction. For end-of-stage
//! summaries; it is not valid when peeked at repeatedly (the sequential judges are).

use statrs::distribution::{ContinuousCDF, Normal};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample: the number of pairs (a, b) with a > b, ties counting half.
    pub u: f64,
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Common-language effect size: P(a > b) + P(a = b)/2. 0.5 means no difference.
    pub effect: f64,
}

/// Which Mann–Whitney test this is, as reports say it: what SciPy computes with
/// `scipy.stats.mannwhitneyu(a, b, use_continuity=False, alternative="two-sided",
/// method="asymptotic")` (a test holds the two to 1e-9).
pub const VARIANT: &str =
    "two-sided, normal approximation with tie correction, no continuity correction";

/// The Mann–Whitney U test of `a` against `b` (NaNs left out), or `None` when either is
/// empty. See [`VARIANT`].
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    let a: Vec<f64> = a.iter().copied().filter(|x| !x.is_nan()).collect();
    let b: Vec<f64> = b.iter().copied().filter(|x| !x.is_nan()).collect();
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|&x| (x, true))
        .chain(b.iter().map(|&x| (x, false)))
        .collect();
    all.sort_unstable_by(|x, y| x.0.total_cmp(&y.0));
    let mut rank_sum_a = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j + 1) as f64 / 2.0; // average of ranks i+1 ..= j
        let in_a = all[i..j].iter().filter(|(_, from_a)| *from_a).count() as f64;
        rank_sum_a += rank * in_a;
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    let n = n1 + n2;
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    let z = if variance > 0.0 {
        (u - mean) / variance.sqrt()
    } else {
        0.0
    };
    // The survival function keeps small p-values (1 - cdf would round them to 0).
    let p_value = (2.0 * Normal::standard().sf(z.abs())).clamp(0.0, 1.0);
    Some(MannWhitney {
        u,
        z,
        p_value,
        effect: u / (n1 * n2),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// U by its definition, O(n·m), to check the fast version against.
    fn naive_u(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .map(|x| {
                b.iter()
                    .map(|y| {
                        if x > y {
                            1.0
                        } else if x == y {
                            0.5
                        } else {
                            0.0
                        }
                    })
                    .sum::<f64>()
            })
            .sum()
    }

    #[test]
    fn a_textbook_example() {
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        let r = mann_whitney(&a, &b).unwrap();
        assert_eq!(r.u, 0.0);
        assert_eq!(r.effect, 0.0);
        assert!(r.p_value < 0.05);
        assert!(mann_whitney(&[], &b).is_none());
    }

    proptest::proptest! {
        #[test]
        fn u_matches_its_definition_with_ties(
            a in proptest::collection::vec(0u8..20, 1..40),
            b in proptest::collection::vec(0u8..20, 1..40),
        ) {
            let a: Vec<f64> = a.into_iter().map(f64::from).collect();
            let b: Vec<f64> = b.into_iter().map(f64::from).collect();
            let r = mann_whitney(&a, &b).unwrap();
            proptest::prop_assert!((r.u - naive_u(&a, &b)).abs() < 1e-6);
            proptest::prop_assert!((0.0..=1.0).contains(&r.p_value));
        }
    }
}
