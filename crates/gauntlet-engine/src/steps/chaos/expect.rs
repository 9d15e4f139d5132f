//! Whether a drill did what it expected: `hold` (every probe kept its tolerance while the
//! faults were in) or `recover within BOUND` (the steady state came back, and stayed, within
//! the bound of the first fault).

use std::time::Duration;

use gauntlet_report::Outcome;
use gauntlet_spec::{DrillPlan, Expectation};

use super::rounds::{Round, shares};

/// What the rounds during the faults say of the expectation.
pub(super) struct Judged {
    pub outcome: Outcome,
    pub measured: String,
    pub reason: String,
    /// From the first fault to the steady state's return (`recover within`).
    pub recovered_after: Option<Duration>,
    pub bound: Option<Duration>,
    /// From when the steady state held to the end of the drill, and for how many rounds.
    pub steady_from: Option<(Duration, usize)>,
}

/// `health_back`: when every killed process answered its health check again (`None` with
/// processes killed: one never did); `killed`: whether the drill killed any.
pub(super) fn judge(
    drill: &DrillPlan,
    during: &[Round],
    fault_at: Duration,
    killed: bool,
    health_back: Option<Duration>,
) -> Judged {
    match drill.expect {
        Expectation::Hold => hold(drill, during),
        Expectation::RecoverWithin(bound) => {
            recover(drill, during, fault_at, (killed, health_back), bound)
        }
    }
}

fn hold(drill: &DrillPlan, during: &[Round]) -> Judged {
    let per_probe = shares(during, &drill.steady_state.probes);
    let measured = per_probe
        .iter()
        .map(|s| format!("{} {}/{}", s.probe, s.passed, s.total))
        .collect::<Vec<_>>()
        .join(", ");
    let short: Vec<String> = per_probe
        .iter()
        .filter(|s| s.short())
        .map(|s| {
            format!(
                "{} passed {}/{} (needs {:.0}%)",
                s.probe,
                s.passed,
                s.total,
                s.tolerance * 100.0
            )
        })
        .collect();
    let (outcome, reason) = if during.is_empty() {
        (
            Outcome::Inconclusive,
            "no probe round ran during the faults".to_string(),
        )
    } else if short.is_empty() {
        (
            Outcome::Pass,
            "the steady state held throughout the faults".to_string(),
        )
    } else {
        let last = during
            .iter()
            .rev()
            .find(|r| !r.holds())
            .map(Round::failures)
            .filter(|f| !f.is_empty())
            .map(|f| format!("; e.g. {f}"))
            .unwrap_or_default();
        (
            Outcome::Fail,
            format!("the steady state broke: {}{last}", short.join(", ")),
        )
    };
    Judged {
        outcome,
        measured,
        reason,
        recovered_after: None,
        bound: None,
        steady_from: None,
    }
}

/// Recovered at the first round from which every later round during the faults holds. A
/// killed process must also answer its health check again; when no probe round ever saw the
/// outage, that 10 ms health poll is the finer measure.
fn recover(
    drill: &DrillPlan,
    during: &[Round],
    fault_at: Duration,
    (killed, health_back): (bool, Option<Duration>),
    bound: gauntlet_spec::units::Duration,
) -> Judged {
    let tail = during.iter().rev().take_while(|r| r.holds()).count();
    let steady = (tail > 0).then(|| during[during.len() - tail].at);
    let recovered = match (steady, killed, health_back) {
        (steady, false, _) => steady,
        (Some(_), true, Some(health)) if tail == during.len() => Some(health),
        (Some(at), true, Some(health)) => Some(at.max(health)),
        (_, true, _) => None,
    };
    let recovered_after = recovered.map(|at| at.saturating_sub(fault_at));
    let (outcome, measured, reason) = match recovered_after {
        Some(after) if after <= bound.as_std() => (
            Outcome::Pass,
            format!("recovered in {:.2}s", after.as_secs_f64()),
            "the steady state came back within its bound".to_string(),
        ),
        Some(after) => (
            Outcome::Fail,
            format!("recovered in {:.2}s", after.as_secs_f64()),
            format!("recovery took longer than {bound}"),
        ),
        None => (
            Outcome::Fail,
            "not recovered".to_string(),
            format!(
                "the steady state did not come back during the drill ({}){}",
                drill.duration,
                during
                    .last()
                    .map(Round::failures)
                    .filter(|f| !f.is_empty())
                    .map(|f| format!("; last: {f}"))
                    .unwrap_or_default()
            ),
        ),
    };
    Judged {
        outcome,
        measured,
        reason,
        recovered_after,
        bound: Some(bound.as_std()),
        steady_from: steady.map(|at| (at, tail)),
    }
}
