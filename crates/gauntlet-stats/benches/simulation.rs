//! `cargo bench -p gauntlet-stats` (or `scripts/bench-stats`): 10,000 seeded runs per
//! judge under continuous monitoring, the peeking fixed-horizon test beside them, and the
//! Mann–Whitney U test on 1,000,000 × 1,000,000 samples.

mod sim;

use std::time::Instant;

fn row(name: &str, t: sim::Tally, expect: &str) {
    println!(
        "{name:<44} reject {:>6.2}%  accept {:>6.2}%  mean samples {:>8.1}   ({expect})",
        100.0 * t.reject_rate(),
        100.0 * f64::from(t.accepted) / f64::from(t.runs),
        t.mean_samples()
    );
}

fn main() {
    let runs = 10_000;
    let horizon = gauntlet_stats::fixed_horizon_n(0.01, 0.04, 0.05, 0.05);
    println!("judges under continuous monitoring, {runs} runs each, alpha = beta = 5%\n");
    let h0 = sim::sprt(runs, 0.01, 1, 100_000);
    let h1 = sim::sprt(runs, 0.04, 2, 100_000);
    row("SPRT p0=1% d=3%, true p=1% (H0)", h0, "false alarms <= 5%");
    row("SPRT p0=1% d=3%, true p=4% (H1)", h1, "power >= 95%");
    let mean = (h0.mean_samples() + h1.mean_samples()) / 2.0;
    println!(
        "  fixed horizon n = {horizon:.1}; SPRT mean samples {mean:.1} = {:.2} x horizon (target <= 0.65)",
        mean / horizon
    );
    row(
        "fixed-horizon z-test read after every sample",
        sim::peeking_z_test(runs, 0.01, 3),
        "nominal 5%: peeking inflates it",
    );
    row(
        "two-sample, 1% vs 1% (H0)",
        sim::two_sample(runs, 0.01, 0.01, 4, 40_000),
        "false alarms <= 5%",
    );
    row(
        "two-sample, 1% vs 4% (H1)",
        sim::two_sample(runs, 0.01, 0.04, 5, 40_000),
        "power >= 95%",
    );
    row(
        "latency, same distribution (H0)",
        sim::latency(runs, 0.0, 6, 40_000),
        "false alarms <= 5%",
    );
    row(
        "latency, +25 ms on a 20 ms mean (H1)",
        sim::latency(runs, 25.0, 7, 40_000),
        "power >= 95%",
    );

    println!(
        "\ngolden-set quality, paired (delta = 10%, {} items at least to accept)",
        gauntlet_stats::fewest_to_accept(0.1, 0.05).unwrap_or(0)
    );
    row(
        "paired, 10% vs 10% discordant (H0)",
        sim::paired(runs, 0.6, 0.1, 0.1, 10, 100_000),
        "false rejects <= 5%",
    );
    row(
        "paired, no discordance (H0)",
        sim::paired(runs, 0.8, 0.0, 0.0, 13, 100_000),
        "accepts at once",
    );
    row(
        "paired, worse by exactly delta (H1)",
        sim::paired(runs, 0.6, 0.15, 0.05, 11, 100_000),
        "false accepts <= 5%",
    );
    row(
        "paired, a fifth of items regress",
        sim::paired(runs, 0.6, 0.2, 0.0, 12, 100_000),
        "power >= 95%",
    );

    let mut rng = gauntlet_net::SplitMix64::new(9);
    let a: Vec<f64> = (0..1_000_000).map(|_| rng.next_f64() * 100.0).collect();
    let b: Vec<f64> = (0..1_000_000)
        .map(|_| rng.next_f64() * 100.0 + 0.1)
        .collect();
    let started = Instant::now();
    let result = gauntlet_stats::mann_whitney(&a, &b);
    let elapsed = started.elapsed();
    println!(
        "\nMann-Whitney U, 1,000,000 x 1,000,000: {:.3}s (target < 1s); p = {:.3e}, effect {:.4}",
        elapsed.as_secs_f64(),
        result.map_or(f64::NAN, |r| r.p_value),
        result.map_or(f64::NAN, |r| r.effect)
    );
}
