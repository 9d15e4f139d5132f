//! The panel of judges a stage (or the rehearsal) runs: one seat per configured judge,
//! the gating ones sharing `alpha` (Bonferroni), dry-run ones computed but never deciding.

use gauntlet_spec::Judges;
use gauntlet_stats::{
    BurnRate, BurnWindow, Judge, LatencyJudge, Observation, Sprt, TwoSample, Verdict, split_alpha,
};

/// One judge on the panel.
pub struct Seat {
    pub name: &'static str,
    pub dry_run: bool,
    pub judge: Box<dyn Judge>,
}

/// The judges of one stage. Gating judges share `alpha` (Bonferroni), so adding a metric
/// does not make a false NO-GO likelier; dry-run judges are computed but never decide.
pub struct Panel {
    pub seats: Vec<Seat>,
    pub alpha_each: f64,
}

impl Panel {
    /// The judges of `judges` with their share of `alpha`. Parameters outside their range
    /// are refused (the plan checked them; a judge is never built from a clamped value).
    pub fn new(
        judges: &Judges,
        alpha: f64,
        beta: f64,
        min_samples: u64,
    ) -> Result<Self, gauntlet_stats::ParamError> {
        let gating = [
            judges.error_rate.as_ref().map(|j| j.dry_run),
            judges.two_sample.as_ref().map(|j| j.dry_run),
            judges.latency.as_ref().map(|j| j.dry_run),
            judges.burn_rate.as_ref().map(|j| j.dry_run),
        ]
        .into_iter()
        .flatten()
        .filter(|dry| !dry)
        .count();
        let a = split_alpha(alpha, gating);
        let mut seats = Vec::new();
        if let Some(j) = &judges.error_rate {
            let p0 = j.p0.ratio();
            seats.push(Seat {
                name: "error-rate",
                dry_run: j.dry_run,
                judge: Box::new(
                    Sprt::new(p0, p0 + j.delta.ratio(), a, beta)?.with_min_samples(min_samples),
                ),
            });
        }
        if let Some(j) = &judges.two_sample {
            seats.push(Seat {
                name: "two-sample",
                dry_run: j.dry_run,
                judge: Box::new(
                    TwoSample::new(j.delta.ratio(), a, beta)?.with_min_samples(min_samples),
                ),
            });
        }
        if let Some(j) = &judges.latency {
            seats.push(Seat {
                name: "latency",
                dry_run: j.dry_run,
                judge: Box::new(
                    LatencyJudge::new(
                        j.delta.ratio(),
                        a,
                        beta,
                        j.warmup as usize,
                        j.margin.as_std().as_secs_f64() * 1000.0,
                    )?
                    .with_min_samples(min_samples),
                ),
            });
        }
        if let Some(j) = &judges.burn_rate {
            let windows: Vec<BurnWindow> = j
                .windows
                .iter()
                .map(|w| BurnWindow {
                    window_ms: w.window.as_std().as_millis() as u64,
                    threshold: w.rate,
                })
                .collect();
            let longest = windows.iter().map(|w| w.window_ms).max().unwrap_or(0);
            seats.push(Seat {
                name: "burn-rate",
                dry_run: j.dry_run,
                judge: Box::new(BurnRate::new(
                    j.objective.ratio(),
                    &windows,
                    min_samples,
                    longest,
                )),
            });
        }
        Ok(Self {
            seats,
            alpha_each: a,
        })
    }

    /// Each judge now, for a live view.
    pub fn states(&self) -> Vec<crate::context::JudgeState> {
        self.seats
            .iter()
            .map(|seat| {
                let last = seat.judge.trajectory().points.last();
                crate::context::JudgeState {
                    name: seat.name,
                    dry_run: seat.dry_run,
                    samples: seat.judge.samples(),
                    statistic: last.map(|p| p.statistic),
                    reject_at: last.map(|p| p.reject_at),
                    accept_at: last.and_then(|p| p.accept_at),
                    verdict: seat.judge.verdict(),
                }
            })
            .collect()
    }

    pub fn observe(&mut self, observation: &Observation) {
        for seat in &mut self.seats {
            seat.judge.observe(observation);
        }
    }

    /// Any gating reject rejects; all gating accepts accept. With no gating judge the panel
    /// never decides: a canary judged by nothing cannot pass.
    pub fn verdict(&self) -> Verdict {
        let gating: Vec<Verdict> = self
            .seats
            .iter()
            .filter(|s| !s.dry_run)
            .map(|s| s.judge.verdict())
            .collect();
        if gating.contains(&Verdict::Reject) {
            Verdict::Reject
        } else if !gating.is_empty() && gating.iter().all(|v| *v == Verdict::Accept) {
            Verdict::Accept
        } else {
            Verdict::Continue
        }
    }
}
