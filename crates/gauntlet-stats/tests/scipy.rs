//! Our Mann–Whitney test against SciPy's own (`scipy.stats.mannwhitneyu`, the variant named
//! by `MANN_WHITNEY_VARIANT`) on seeded samples: continuous, heavily tied, lopsided sizes,
//! and far apart (tiny p-values). SciPy comes from `scripts/test`, beside the build.

use std::io::Write;
use std::process::{Command, Stdio};

use gauntlet_net::SplitMix64;
use gauntlet_stats::mann_whitney;

fn pydeps() -> String {
    std::env::var("GAUNTLET_PYDEPS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/pydeps").into())
}

/// A Python script run with SciPy: `input` as JSON on its stdin, its JSON stdout parsed.
fn python<T: serde::de::DeserializeOwned>(script: &str, input: &impl serde::Serialize) -> T {
    let mut child = Command::new("python3")
        .args(["-c", script])
        .env("PYTHONPATH", pydeps())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let input = serde_json::to_vec(input).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "SciPy is needed (scripts/test installs it into target/pydeps): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// SciPy's (U, p) for each pair of samples.
fn scipy(pairs: &[(Vec<f64>, Vec<f64>)]) -> Vec<(f64, f64)> {
    let script = r#"
import json, sys
from scipy.stats import mannwhitneyu
out = []
for a, b in json.load(sys.stdin):
    r = mannwhitneyu(a, b, use_continuity=False, alternative="two-sided", method="asymptotic")
    out.append([float(r.statistic), float(r.pvalue)])
json.dump(out, sys.stdout)
"#;
    python(script, &pairs)
}

fn sample(rng: &mut SplitMix64, n: usize, shift: f64, grain: f64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let x = -(1.0 - rng.next_f64()).ln() * 10.0 + shift;
            if grain > 0.0 {
                (x / grain).round() * grain
            } else {
                x
            }
        })
        .collect()
}

#[test]
fn the_test_matches_scipy_for_the_variant_it_names() {
    let mut rng = SplitMix64::new(20261130);
    let mut pairs = Vec::new();
    for (n, m, shift, grain) in [
        (50, 50, 0.0, 0.0),
        (200, 180, 1.0, 0.0),
        (300, 300, 0.5, 1.0),   // heavy ties
        (40, 2000, 2.0, 0.0),   // lopsided
        (1000, 1000, 0.0, 5.0), // few distinct values
        (500, 500, 25.0, 0.0),  // far apart: p near 1e-100
        (7, 9, 0.3, 0.0),
    ] {
        pairs.push((
            sample(&mut rng, n, shift, grain),
            sample(&mut rng, m, 0.0, grain),
        ));
    }
    let expected = scipy(&pairs);
    for ((a, b), (u, p)) in pairs.iter().zip(expected) {
        let ours = mann_whitney(a, b).unwrap();
        assert!((ours.u - u).abs() < 1e-9, "U {} vs SciPy {u}", ours.u);
        let close =
            (ours.p_value - p).abs() <= 1e-9 * p.max(1e-300) || (ours.p_value - p).abs() < 1e-12;
        assert!(
            close,
            "p {} vs SciPy {p} (n {}, m {})",
            ours.p_value,
            a.len(),
            b.len()
        );
    }
}

/// The Clopper–Pearson upper bound against SciPy's beta quantile, the textbook form.
#[test]
fn the_clopper_pearson_bound_matches_scipy() {
    let cases: Vec<(u64, u64, f64)> = vec![
        (0, 30, 0.95),
        (1, 30, 0.95),
        (3, 40, 0.95),
        (7, 12, 0.99),
        (0, 500, 0.9),
        (250, 1000, 0.95),
    ];
    let script = r#"
import json, sys
from scipy.stats import beta
out = [float(beta.ppf(c, x + 1, n - x)) for x, n, c in json.load(sys.stdin)]
json.dump(out, sys.stdout)
"#;
    let expected: Vec<f64> = python(script, &cases);
    for ((x, n, c), want) in cases.iter().zip(expected) {
        let got = gauntlet_stats::clopper_pearson_upper(*x, *n, *c);
        assert!(
            (got - want).abs() < 1e-7,
            "{x}/{n} at {c}: {got} vs SciPy {want}"
        );
    }
}
