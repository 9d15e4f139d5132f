//! Alerts that must really fire: after a fault goes in (a drill's, or the rollback
//! rehearsal's regression), each expected alert must reach gauntlet's receiver through the
//! run's Alertmanager, firing, and started after the fault — an alert already firing before
//! proves nothing about this fault — within its bound. Without a Prometheus to evaluate the
//! rules or an Alertmanager to deliver them the check is inconclusive, never a pass.

use std::time::Duration;

use tokio::time::Instant;

use gauntlet_report::{Check, Outcome, Severity};
use gauntlet_spec::ExpectedAlert;

use crate::context::RunContext;

/// An expected alert that arrived: its name, how long after the fault, and the receiver.
pub struct Arrival {
    pub name: String,
    pub after: Duration,
    pub receiver: String,
}

/// Waits (until each alert's `within` of `fault_instant`) for every alert in `expected`; the
/// checks are `STEP.PREFIXalert NAME`.
pub async fn wait_for(
    ctx: &RunContext,
    step: &str,
    prefix: &str,
    expected: &[&ExpectedAlert],
    fault_instant: Instant,
    severity: Severity,
) -> (Vec<Check>, Vec<Arrival>) {
    let fault_wall = std::time::SystemTime::now() - fault_instant.elapsed();
    let mut checks = Vec::new();
    let mut arrivals = Vec::new();
    for expected in expected {
        let check = Check::new(step, &format!("{prefix}alert {}", expected.name), severity)
            .threshold(format!(
                "fires and reaches gauntlet's receiver within {} of the fault",
                expected.within
            ));
        let Some(receiver) = &ctx.alerts else {
            checks.push(check.outcome(
                Outcome::Inconclusive,
                "no alert receiver in this run (the Alertmanager did not come up)",
            ));
            continue;
        };
        if ctx.prometheus.is_none() {
            checks.push(check.outcome(
                Outcome::Inconclusive,
                "no Prometheus in this run to evaluate the rules: nothing could fire",
            ));
            continue;
        }
        let deadline = fault_instant + expected.within.as_std();
        // Notices are stamped on the wall's monotonic clock as they arrive.
        let fault_seen = fault_instant.into_std();
        let fresh = |n: &gauntlet_net::AlertNotice| {
            n.name == expected.name
                && n.status == "firing"
                && n.arrived >= fault_seen
                // (a time in another notation than UTC's `Z` is not held against it)
                && humantime::parse_rfc3339(&n.starts_at)
                    .map_or(true, |t| t + Duration::from_secs(1) >= fault_wall)
        };
        match receiver.wait_for(fresh, deadline).await {
            Some(notice) => {
                let after = notice.arrived.saturating_duration_since(fault_seen);
                let fired = humantime::parse_rfc3339(&notice.starts_at)
                    .ok()
                    .and_then(|t| t.duration_since(fault_wall).ok());
                let measured = match fired {
                    Some(fired) => format!(
                        "notified after {:.2}s (firing in Prometheus after {:.2}s)",
                        after.as_secs_f64(),
                        fired.as_secs_f64()
                    ),
                    None => format!("notified after {:.2}s", after.as_secs_f64()),
                };
                checks.push(check.measured(measured).outcome(
                    Outcome::Pass,
                    format!(
                        "Prometheus fired {} and Alertmanager delivered it",
                        expected.name
                    ),
                ));
                arrivals.push(Arrival {
                    name: expected.name.clone(),
                    after,
                    receiver: notice.receiver.clone(),
                });
            }
            None => {
                let seen: Vec<String> = receiver
                    .notices()
                    .iter()
                    .filter(|n| n.arrived >= fault_seen)
                    .map(|n| format!("{} ({})", n.name, n.status))
                    .collect();
                checks.push(check.measured("no notification").outcome(
                    Outcome::Fail,
                    format!(
                        "{} did not reach the receiver within {} of the fault; received since: {}",
                        expected.name,
                        expected.within,
                        if seen.is_empty() {
                            "nothing".into()
                        } else {
                            seen.join(", ")
                        }
                    ),
                ));
            }
        }
    }
    (checks, arrivals)
}
