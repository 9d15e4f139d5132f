//! The judges' error rates by simulation under continuous monitoring (fewer runs than the
//! benchmark, same seeds and code): false alarms at most alpha plus Monte-Carlo error, power
//! at least 1 − beta, and the SPRT's mean sample size well under the fixed horizon.

#[path = "../benches/sim.rs"]
mod sim;

#[test]
fn sprt_keeps_its_error_rates_and_saves_samples() {
    let h0 = sim::sprt(4000, 0.01, 1, 100_000);
    assert!(
        h0.reject_rate() <= 0.05 + h0.mc_error(0.05),
        "false alarms {}",
        h0.reject_rate()
    );
    let h1 = sim::sprt(4000, 0.04, 2, 100_000);
    assert!(
        h1.reject_rate() >= 0.95 - h1.mc_error(0.05),
        "power {}",
        h1.reject_rate()
    );
    let horizon = gauntlet_stats::fixed_horizon_n(0.01, 0.04, 0.05, 0.05);
    let mean = (h0.mean_samples() + h1.mean_samples()) / 2.0;
    assert!(
        mean <= 0.65 * horizon,
        "mean samples {mean} vs horizon {horizon}"
    );
}

#[test]
fn peeking_at_a_fixed_horizon_test_inflates_false_alarms() {
    let peeking = sim::peeking_z_test(2000, 0.01, 3);
    assert!(
        peeking.reject_rate() > 2.0 * 0.05,
        "peeking false alarms {}",
        peeking.reject_rate()
    );
}

// The two-sample judge's rates are two tests: each is the longest here, so the harness runs
// them side by side.
#[test]
fn two_sample_keeps_its_false_alarm_rate() {
    let h0 = sim::two_sample(600, 0.01, 0.01, 4, 40_000);
    assert!(
        h0.reject_rate() <= 0.05 + h0.mc_error(0.05),
        "false alarms {}",
        h0.reject_rate()
    );
}

#[test]
fn two_sample_keeps_its_power() {
    let h1 = sim::two_sample(600, 0.01, 0.04, 5, 40_000);
    assert!(
        h1.reject_rate() >= 0.95 - h1.mc_error(0.05),
        "power {}",
        h1.reject_rate()
    );
}

#[test]
fn latency_keeps_its_error_rates() {
    let h0 = sim::latency(400, 0.0, 6, 40_000);
    assert!(
        h0.reject_rate() <= 0.05 + h0.mc_error(0.05),
        "false alarms {}",
        h0.reject_rate()
    );
    let h1 = sim::latency(400, 25.0, 7, 40_000);
    assert!(
        h1.reject_rate() >= 0.95 - h1.mc_error(0.05),
        "power {}",
        h1.reject_rate()
    );
}

#[test]
fn the_paired_quality_judge_keeps_its_error_rates() {
    // No difference (10% of items discordant each way): false rejects at most alpha.
    let h0 = sim::paired(2000, 0.6, 0.1, 0.1, 10, 100_000);
    assert!(
        h0.reject_rate() <= 0.05 + h0.mc_error(0.05),
        "false rejects {}",
        h0.reject_rate()
    );
    // The candidate worse by exactly delta: false accepts at most beta, the rest rejected.
    let h1 = sim::paired(2000, 0.6, 0.15, 0.05, 11, 100_000);
    assert!(
        h1.accept_rate() <= 0.05 + h1.mc_error(0.05),
        "false accepts {}",
        h1.accept_rate()
    );
    assert!(
        h1.reject_rate() >= 0.95 - h1.mc_error(0.05),
        "power {}",
        h1.reject_rate()
    );
    // A regression on a fifth of the items is caught within a small golden set.
    let gross = sim::paired(2000, 0.6, 0.2, 0.0, 12, 100_000);
    assert!(gross.reject_rate() >= 0.95, "{}", gross.reject_rate());
    assert!(gross.mean_samples() < 60.0, "{}", gross.mean_samples());
}
