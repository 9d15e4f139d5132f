//! Error-budget burn (Google SRE Workbook, "Alerting on SLOs"; DOMAIN.md).
//! Budget B = 1 − T; burn rate over a window = (bad / total) / (1 − T); remaining budget
//! R = 1 − e(period) / (1 − T), which may go negative (never clamped). A multi-window
//! alert fires only when every window burns faster than its threshold.

use std::collections::VecDeque;

use crate::judge::{Arm, Judge, JudgeKind, Observation, Point, Trajectory, Verdict};

/// Burn rate of `bad` out of `total` events against objective `objective` (e.g. 0.999).
pub fn burn_rate(bad: u64, total: u64, objective: f64) -> f64 {
    if total == 0 {
        return f64::NAN;
    }
    (bad as f64 / total as f64) / (1.0 - objective)
}

/// Share of the budget left after `bad` of `total` events over the SLO period.
pub fn budget_remaining(bad: u64, total: u64, objective: f64) -> f64 {
    if total == 0 {
        return f64::NAN;
    }
    1.0 - (bad as f64 / total as f64) / (1.0 - objective)
}

/// One window of a multi-window alert: its length and the burn rate it must exceed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnWindow {
    pub window_ms: u64,
    pub threshold: f64,
}

#[derive(Debug, Clone)]
struct Window {
    spec: BurnWindow,
    events: VecDeque<(u64, bool)>,
    bad: u64,
}

impl Window {
    fn push(&mut self, t_ms: u64, bad: bool) {
        self.events.push_back((t_ms, bad));
        self.bad += u64::from(bad);
        while let Some(&(t, was_bad)) = self.events.front() {
            if t + self.spec.window_ms >= t_ms {
                break;
            }
            self.events.pop_front();
            self.bad -= u64::from(was_bad);
        }
    }
    fn rate(&self, objective: f64) -> f64 {
        burn_rate(self.bad, self.events.len() as u64, objective)
    }
}

/// The candidate's burn rate over several windows at once. Rejects when every window burns
/// above its threshold with at least `min_events` in the shortest; accepts once `accept_after_ms`
/// have passed with `min_events` candidate requests and no alert.
#[derive(Debug, Clone)]
pub struct BurnRate {
    objective: f64,
    windows: Vec<Window>,
    min_events: u64,
    accept_after_ms: u64,
    n: u64,
    first_ms: Option<u64>,
    verdict: Verdict,
    trajectory: Trajectory,
    worst: f64,
}

impl BurnRate {
    pub fn new(
        objective: f64,
        windows: &[BurnWindow],
        min_events: u64,
        accept_after_ms: u64,
    ) -> Self {
        Self {
            objective,
            windows: windows
                .iter()
                .map(|spec| Window {
                    spec: *spec,
                    events: VecDeque::new(),
                    bad: 0,
                })
                .collect(),
            min_events,
            accept_after_ms,
            n: 0,
            first_ms: None,
            verdict: Verdict::Continue,
            trajectory: Trajectory::default(),
            worst: 0.0,
        }
    }

    /// The lowest ratio of burn rate to threshold across windows: the alert fires at ≥ 1.
    fn alert_level(&self) -> f64 {
        self.windows
            .iter()
            .map(|w| w.rate(self.objective) / w.spec.threshold)
            .fold(f64::INFINITY, f64::min)
    }
}

impl Judge for BurnRate {
    fn kind(&self) -> JudgeKind {
        JudgeKind::BurnRate
    }
    fn observe(&mut self, observation: &Observation) -> Verdict {
        if self.verdict != Verdict::Continue || observation.arm != Arm::Candidate {
            return self.verdict;
        }
        self.n += 1;
        let first = *self.first_ms.get_or_insert(observation.t_ms);
        for window in &mut self.windows {
            window.push(observation.t_ms, !observation.ok);
        }
        let level = self.alert_level();
        self.worst = self.worst.max(if level.is_finite() { level } else { 0.0 });
        let shortest = self
            .windows
            .iter()
            .map(|w| w.events.len() as u64)
            .min()
            .unwrap_or(0);
        if level >= 1.0 && shortest >= self.min_events {
            self.verdict = Verdict::Reject;
        } else if self.n >= self.min_events
            && observation.t_ms.saturating_sub(first) >= self.accept_after_ms
        {
            self.verdict = Verdict::Accept;
        }
        let point = Point {
            n: self.n,
            statistic: if level.is_finite() { level } else { 0.0 },
            reject_at: 1.0,
            accept_at: None,
        };
        self.trajectory.record(point, self.verdict);
        self.verdict
    }
    fn verdict(&self) -> Verdict {
        self.verdict
    }
    fn samples(&self) -> u64 {
        self.n
    }
    fn explain(&self) -> String {
        let rates: Vec<String> = self
            .windows
            .iter()
            .map(|w| {
                format!(
                    "{:.1}× over {}s (alert at {:.1}×)",
                    w.rate(self.objective),
                    w.spec.window_ms / 1000,
                    w.spec.threshold
                )
            })
            .collect();
        let state = match self.verdict {
            Verdict::Reject => "every window burns past its threshold",
            Verdict::Accept => "no window pair alerted",
            Verdict::Continue => "watching",
        };
        format!(
            "error-budget burn (objective {:.3}%): {state}: {} after {} candidate requests",
            self.objective * 100.0,
            rates.join(", "),
            self.n
        )
    }
    fn trajectory(&self) -> &Trajectory {
        &self.trajectory
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workbook_figures() {
        // 0.1% errors against 99.9%: burn rate 1; 1.44% errors: 14.4.
        assert!((burn_rate(1, 1000, 0.999) - 1.0).abs() < 1e-9);
        assert!((burn_rate(144, 10_000, 0.999) - 14.4).abs() < 1e-9);
        // Spending twice the budget leaves −100%: not clamped.
        assert!((budget_remaining(2, 1000, 0.999) + 1.0).abs() < 1e-9);
    }

    fn run(error_every: u64) -> (Verdict, u64) {
        let windows = [
            BurnWindow {
                window_ms: 5_000,
                threshold: 14.4,
            },
            BurnWindow {
                window_ms: 1_000,
                threshold: 14.4,
            },
        ];
        let mut judge = BurnRate::new(0.999, &windows, 50, 10_000);
        for i in 0..100_000u64 {
            let ok = error_every == 0 || i % error_every != 0;
            let v = judge.observe(&Observation {
                arm: Arm::Candidate,
                ok,
                latency_ms: 1.0,
                t_ms: i * 10,
            });
            if v != Verdict::Continue {
                return (v, judge.samples());
            }
        }
        (Verdict::Continue, judge.samples())
    }

    #[test]
    fn a_fast_burn_rejects_and_a_clean_run_accepts_after_its_bake() {
        assert_eq!(run(20).0, Verdict::Reject);
        let (verdict, n) = run(0);
        assert_eq!(verdict, Verdict::Accept);
        assert_eq!(n, 1001);
    }
}
