//! The service's own SLI must see the regression: read from its metrics endpoint before the
//! regression (over its own candidate requests) and while it lasts, it must drop by at least
//! the spec's `drop`. A metric that does not move when the service breaks would page no one.

use std::time::Duration;

use gauntlet_metrics::promql::Selector;
use gauntlet_net::Outgoing;
use gauntlet_report::{Check, Outcome, Severity};
use gauntlet_spec::Sli;
use gauntlet_stats::{Arm, Observation};
use tokio::sync::mpsc::UnboundedReceiver;

use super::STEP;
use crate::context::RunContext;
use crate::steps::StepOutput;

/// How long the rehearsal waits for the candidate requests it measures the SLI on before the
/// regression goes in.
pub(super) const SLI_BEFORE_BOUND: Duration = Duration::from_secs(10);

/// The SLI's two counters in one scrape of the candidate, straight (not through its proxy).
async fn read_counters(ctx: &RunContext, spec: &Sli) -> Result<(f64, f64), String> {
    let total = Selector::parse(&spec.total).map_err(|e| e.to_string())?;
    let bad = Selector::parse(&spec.bad).map_err(|e| e.to_string())?;
    let answer = ctx
        .client
        .send(&Outgoing::get(&ctx.candidate, &spec.path))
        .await
        .map_err(|e| format!("scrape {}: {e}", spec.path))?;
    if !answer.is_success() {
        return Err(format!("scrape {}: status {}", spec.path, answer.status));
    }
    let families = gauntlet_metrics::parse_text(&answer.body_text())
        .map_err(|e| format!("scrape {}: {e}", spec.path))?;
    Ok((total.sum(&families), bad.sum(&families)))
}

/// The SLI over one window: what the service counted, and what gauntlet sent it.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    total: f64,
    bad: f64,
    sent: u64,
}

impl Window {
    fn sli(&self) -> Option<f64> {
        (self.total > 0.0).then(|| 1.0 - (self.bad / self.total).clamp(0.0, 1.0))
    }
}

/// The SLI before the regression and while it lasts, from counter increases between scrapes.
pub(super) struct SliReading {
    last: Result<(f64, f64), String>,
    before: Option<Window>,
    during: Option<Window>,
    sent_during: u64,
}

impl SliReading {
    /// Scrapes, lets `spec.requests` candidate requests through with no fault, scrapes again.
    pub async fn before(
        ctx: &RunContext,
        spec: &Sli,
        observations: &mut UnboundedReceiver<Observation>,
    ) -> Self {
        let first = read_counters(ctx, spec).await;
        let mut sent = 0u64;
        let deadline = tokio::time::Instant::now() + SLI_BEFORE_BOUND;
        while sent < u64::from(spec.requests) {
            let next = tokio::select! {
                next = observations.recv() => next,
                _ = tokio::time::sleep_until(deadline) => break,
            };
            match next {
                Some(o) if o.arm == Arm::Candidate => sent += 1,
                Some(_) => {}
                None => break,
            }
        }
        let second = read_counters(ctx, spec).await;
        let before = match (&first, &second) {
            (Ok(a), Ok(b)) => Some(Window {
                total: b.0 - a.0,
                bad: b.1 - a.1,
                sent,
            }),
            _ => None,
        };
        ctx.recorder.event(
            Some(STEP),
            "sli-before",
            match before.and_then(|w| w.sli().map(|sli| (w, sli))) {
                Some((w, sli)) => format!(
                    "SLI {:.2}% over {} counted request(s) ({sent} sent) before the regression",
                    sli * 100.0,
                    w.total
                ),
                None => format!("no SLI before the regression ({sent} request(s) sent)"),
            },
        );
        Self {
            last: match (first, second) {
                (Err(e), _) | (_, Err(e)) => Err(e),
                (Ok(_), Ok(b)) => Ok(b),
            },
            before,
            during: None,
            sent_during: 0,
        }
    }

    /// Counts a candidate request sent while the regression is in.
    pub fn sent(&mut self, observation: &Observation) {
        if observation.arm == Arm::Candidate {
            self.sent_during += 1;
        }
    }

    /// Scrapes again when the regression has been judged (or the detection bound passed).
    pub async fn during(&mut self, ctx: &RunContext, spec: &Sli) {
        let Ok(start) = self.last.clone() else { return };
        match read_counters(ctx, spec).await {
            Ok(end) => {
                self.during = Some(Window {
                    total: end.0 - start.0,
                    bad: end.1 - start.1,
                    sent: self.sent_during,
                });
            }
            Err(e) => self.last = Err(e),
        }
    }

    /// The check, and the SLI before, during and its drop as measurements.
    pub fn check(self, spec: &Sli, severity: Severity, output: &mut StepOutput) -> Check {
        let check = Check::new(STEP, "SLI drops", severity).threshold(format!(
            "1 − {} / {} drops by at least {} (relative) while the regression is in",
            spec.bad, spec.total, spec.drop
        ));
        let (before, during) = match (self.last, self.before, self.during) {
            (Err(e), _, _) => {
                return check.outcome(
                    Outcome::Inconclusive,
                    format!("the SLI could not be read: {e}"),
                );
            }
            (Ok(_), Some(before), Some(during)) => (before, during),
            _ => {
                return check.outcome(Outcome::Inconclusive, "the SLI could not be read");
            }
        };
        for (window, when) in [(before, "before"), (during, "during")] {
            if window.sent == 0 {
                return check.outcome(
                    Outcome::Inconclusive,
                    format!("no request reached the candidate {when} the regression"),
                );
            }
            if window.total <= 0.0 {
                return check.samples(window.sent).outcome(
                    Outcome::Fail,
                    format!(
                        "`{}` did not move {when} the regression although gauntlet sent the candidate {} request(s): a metric that does not count cannot show a breakage",
                        spec.total, window.sent
                    ),
                );
            }
        }
        let (Some(sli_before), Some(sli_during)) = (before.sli(), during.sli()) else {
            return check.outcome(Outcome::Inconclusive, "the SLI could not be computed");
        };
        let drop = if sli_before > 0.0 {
            (sli_before - sli_during) / sli_before
        } else {
            0.0
        };
        output.measure("rollback_rehearsal.sli_before", sli_before);
        output.measure("rollback_rehearsal.sli_during", sli_during);
        output.measure("rollback_rehearsal.sli_drop", drop);
        let moved = format!(
            "the SLI went from {:.2}% ({} of {} counted bad) to {:.2}% ({} of {} counted bad) while the regression was in: {:.1}% lower",
            sli_before * 100.0,
            before.bad,
            before.total,
            sli_during * 100.0,
            during.bad,
            during.total,
            drop * 100.0
        );
        let check = check
            .samples(before.sent + during.sent)
            .measured(format!("dropped {:.1}%", drop * 100.0));
        if drop >= spec.drop.ratio() {
            check.outcome(Outcome::Pass, moved)
        } else {
            check.outcome(
                Outcome::Fail,
                format!(
                    "{moved}, less than the {} required: the SLI does not see the service break",
                    spec.drop
                ),
            )
        }
    }
}
