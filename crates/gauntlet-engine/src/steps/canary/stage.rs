//! One stage through the traffic split: load driven for up to its bake, every outcome fed
//! to the panel until it decides, an abort trigger fires, or time runs out; per-arm totals
//! and a latency summary for the report.

use std::time::Duration;

use tokio::time::Instant;

use gauntlet_net::TrafficSplit;
use gauntlet_spec::AbortTriggers;
use gauntlet_stats::{Arm, Observation, Verdict};
use hdrhistogram::Histogram;
use tokio::sync::mpsc::UnboundedReceiver;

use super::load::{Load, RunningLoad};
use super::panel::Panel;
use super::recording::Recording;
use crate::context::RunContext;

#[derive(Debug, Clone, PartialEq)]
pub enum StageEnd {
    Accepted,
    Rejected,
    /// An abort trigger fired: the reason.
    Aborted(String),
    /// The bake time ran out before the judges decided.
    TimedOut,
    /// What the judges would be fed could not be read as a whole (a Prometheus source that
    /// failed, answered partially, lost a series or saw a counter reset): the reason.
    Unmeasured(String),
}

/// What is shown the panel while it judges.
pub type ShowPanel<'a> = dyn Fn(&Panel) + Sync + 'a;

impl StageEnd {
    /// One word for how the stage ended.
    pub fn word(&self) -> &'static str {
        match self {
            StageEnd::Accepted => "accepted",
            StageEnd::Rejected => "rejected",
            StageEnd::Aborted(_) => "aborted",
            StageEnd::TimedOut => "undecided",
            StageEnd::Unmeasured(_) => "unmeasured",
        }
    }
}

pub struct StageRun {
    pub end: StageEnd,
    /// Exactly what the panel saw, in order, as gzipped JSON lines: the file `gauntlet
    /// judge` replays. Compressed as it is recorded, so a long stage stays small in memory.
    pub recorded: Vec<u8>,
    pub elapsed: Duration,
    pub candidate_samples: u64,
    pub baseline_samples: u64,
    /// Per-arm latency percentiles and the Mann–Whitney summary.
    pub latency_summary: String,
    /// Per arm (baseline, candidate): the answered requests' latency in µs, and failures.
    pub arms: [ArmTotals; 2],
}

/// One arm's outcomes over a stage (or, added up, over the canary).
#[derive(Clone)]
pub struct ArmTotals {
    pub latency_us: Histogram<u64>,
    pub requests: u64,
    pub failed: u64,
}

impl Default for ArmTotals {
    fn default() -> Self {
        Self {
            latency_us: gauntlet_net::latency_histogram(),
            requests: 0,
            failed: 0,
        }
    }
}

impl ArmTotals {
    pub fn add(&mut self, other: &ArmTotals) {
        let _ = self.latency_us.add(&other.latency_us);
        self.requests += other.requests;
        self.failed += other.failed;
    }
    /// Latency quantile in seconds, when anything was answered.
    pub fn latency(&self, quantile: f64) -> Option<f64> {
        (!self.latency_us.is_empty())
            .then(|| self.latency_us.value_at_quantile(quantile) as f64 / 1e6)
    }
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.failed as f64 / self.requests as f64)
    }
}

/// Abort triggers over the candidate's observations of this stage.
struct Triggers<'a> {
    config: Option<&'a AbortTriggers>,
    latency_us: Histogram<u64>,
    failures: u64,
    n: u64,
}

impl Triggers<'_> {
    fn check(&mut self, observation: &Observation) -> Option<String> {
        let config = self.config?;
        if observation.arm != Arm::Candidate {
            return None;
        }
        self.n += 1;
        self.failures += u64::from(!observation.ok);
        let _ = self
            .latency_us
            .record(((observation.latency_ms * 1000.0) as u64).clamp(1, 3_600_000_000));
        if self.n < u64::from(config.min_samples) {
            return None;
        }
        let rate = self.failures as f64 / self.n as f64;
        if let Some(limit) = &config.error_rate
            && rate > limit.ratio()
        {
            return Some(format!(
                "abort trigger: candidate error rate {:.2}% > {limit} after {} requests",
                rate * 100.0,
                self.n
            ));
        }
        let p99_ms = self.latency_us.value_at_quantile(0.99) as f64 / 1000.0;
        if let Some(limit) = &config.p99
            && p99_ms > limit.as_std().as_secs_f64() * 1000.0
        {
            return Some(format!(
                "abort trigger: candidate p99 {p99_ms:.1} ms > {limit} after {} requests",
                self.n
            ));
        }
        None
    }
}

/// The decision of one stage, one observation at a time: the panel, the abort triggers, and
/// the candidate's minimum sample count. The live stage and `gauntlet judge` both use it, so
/// a replay of the recorded observations decides exactly as the live run did.
pub struct StageJudge<'a> {
    pub panel: &'a mut Panel,
    triggers: Triggers<'a>,
    min_samples: u64,
    recording: Option<Recording>,
    /// Whether observations carry a measured latency (counts from Prometheus do not).
    timed: bool,
    latencies: [LatencySample; 2],
    failed: [u64; 2],
    /// Shown the panel about once a second while it judges.
    live: Option<(&'a ShowPanel<'a>, Instant)>,
    /// Observations fed so far.
    pub used: u64,
    pub candidate: u64,
    pub baseline: u64,
}

impl<'a> StageJudge<'a> {
    pub fn new(panel: &'a mut Panel, min_samples: u64, abort: Option<&'a AbortTriggers>) -> Self {
        Self {
            panel,
            triggers: Triggers {
                config: abort,
                latency_us: gauntlet_net::latency_histogram(),
                failures: 0,
                n: 0,
            },
            min_samples,
            recording: None,
            timed: true,
            live: None,
            latencies: [LatencySample::new(1), LatencySample::new(2)],
            failed: [0, 0],
            used: 0,
            candidate: 0,
            baseline: 0,
        }
    }

    /// Keeps every observation fed, for the evidence.
    pub fn recording(mut self) -> Self {
        self.recording = Some(Recording::default());
        self
    }

    /// Shows `live` the panel about once a second while it judges.
    pub fn live(mut self, live: &'a ShowPanel<'a>) -> Self {
        self.live = Some((live, Instant::now()));
        self
    }

    /// Observations without a latency (counted, not timed): no percentiles are made up.
    pub fn untimed(mut self) -> Self {
        self.timed = false;
        self
    }

    /// Feeds one observation; returns how the stage ends, if it ends here.
    pub fn feed(&mut self, observation: Observation) -> Option<StageEnd> {
        if let Some(recording) = &mut self.recording {
            recording.push(&observation);
        }
        let arm = usize::from(observation.arm == Arm::Candidate);
        if !observation.ok {
            self.failed[arm] += 1;
        } else if self.timed {
            self.latencies[arm].push(observation.latency_ms);
        }
        self.used += 1;
        match observation.arm {
            Arm::Candidate => self.candidate += 1,
            Arm::Baseline => self.baseline += 1,
        }
        self.panel.observe(&observation);
        if let Some((live, shown)) = &mut self.live
            && self.used.is_multiple_of(64)
            && shown.elapsed() >= Duration::from_secs(1)
        {
            *shown = Instant::now();
            live(self.panel);
        }
        if let Some(reason) = self.triggers.check(&observation) {
            return Some(StageEnd::Aborted(reason));
        }
        match self.panel.verdict() {
            Verdict::Reject => Some(StageEnd::Rejected),
            Verdict::Accept if self.candidate >= self.min_samples => Some(StageEnd::Accepted),
            _ => None,
        }
    }
}

/// Per-arm latency of one stage: an HDR histogram for percentiles, and a seeded reservoir
/// of at most `RESERVOIR` values for the Mann–Whitney summary (a uniform subsample, so the
/// test stays valid; memory stays bounded however long the stage).
pub struct LatencySample {
    histogram: Histogram<u64>,
    reservoir: Vec<f64>,
    seen: u64,
    rng: gauntlet_net::SplitMix64,
}

const RESERVOIR: usize = 100_000;

impl LatencySample {
    fn new(seed: u64) -> Self {
        Self {
            histogram: gauntlet_net::latency_histogram(),
            reservoir: Vec::new(),
            seen: 0,
            rng: gauntlet_net::SplitMix64::new(seed),
        }
    }

    fn push(&mut self, latency_ms: f64) {
        let _ = self
            .histogram
            .record(((latency_ms * 1000.0) as u64).clamp(1, 3_600_000_000));
        self.seen += 1;
        if self.reservoir.len() < RESERVOIR {
            self.reservoir.push(latency_ms);
        } else {
            let slot = self.rng.below(self.seen) as usize;
            if slot < RESERVOIR {
                self.reservoir[slot] = latency_ms;
            }
        }
    }

    fn percentiles(&self) -> String {
        if self.seen == 0 {
            return "no answers".into();
        }
        let q = |p: f64| self.histogram.value_at_quantile(p) as f64 / 1000.0;
        format!(
            "p50 {:.1} p90 {:.1} p95 {:.1} p99 {:.1} p99.9 {:.1} max {:.1} ms",
            q(0.5),
            q(0.9),
            q(0.95),
            q(0.99),
            q(0.999),
            self.histogram.max() as f64 / 1000.0
        )
    }
}

impl StageJudge<'_> {
    /// Both arms' totals so far (baseline, candidate).
    pub fn arms(&self) -> [ArmTotals; 2] {
        let arm = |i: usize, requests: u64| ArmTotals {
            latency_us: self.latencies[i].histogram.clone(),
            requests,
            failed: self.failed[i],
        };
        [arm(0, self.baseline), arm(1, self.candidate)]
    }

    /// Both arms' latency percentiles and the fixed-horizon Mann–Whitney U test between them,
    /// for the end-of-stage summary (it informs; the sequential judges decide).
    pub fn latency_summary(&self) -> String {
        if !self.timed {
            return "no latency: the observations are counts without each request's time".into();
        }
        let [baseline, candidate] = &self.latencies;
        let test = gauntlet_stats::mann_whitney(&candidate.reservoir, &baseline.reservoir)
            .map(|r| {
                format!(
                    "Mann-Whitney U ({}): p = {:.3}, P(candidate slower) = {:.3}",
                    gauntlet_stats::MANN_WHITNEY_VARIANT,
                    r.p_value,
                    r.effect
                )
            })
            .unwrap_or_else(|| "Mann-Whitney U: needs answers on both arms".into());
        format!(
            "candidate {} ({} answers); baseline {} ({} answers); {test}",
            candidate.percentiles(),
            candidate.seen,
            baseline.percentiles(),
            baseline.seen
        )
    }
}

/// Drives load through the split for up to `bake`, feeding every outcome to the panel,
/// until the panel decides (acceptance needs `min_samples` on the candidate), a trigger
/// fires, or time runs out.
pub async fn run_stage(
    ctx: &RunContext,
    split: &TrafficSplit,
    observations: &mut UnboundedReceiver<Observation>,
    mut judging: StageJudge<'_>,
    load: Load,
    bake: Duration,
) -> StageRun {
    // Outcomes still in flight from an earlier stage belong to it, not to this one.
    while observations.try_recv().is_ok() {}
    let load = RunningLoad::start(ctx, split, load, bake);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + bake;
    let end = loop {
        let next = tokio::select! {
            next = observations.recv() => next,
            _ = tokio::time::sleep_until(deadline) => break StageEnd::TimedOut,
        };
        let Some(observation) = next else {
            break StageEnd::TimedOut;
        };
        if let Some(end) = judging.feed(observation) {
            break end;
        }
    };
    load.finish().await;
    judging.finish(end, started.elapsed())
}

impl StageJudge<'_> {
    /// The stage's run, from what was fed.
    pub fn finish(mut self, end: StageEnd, elapsed: Duration) -> StageRun {
        StageRun {
            end,
            recorded: self
                .recording
                .take()
                .map(Recording::finish)
                .unwrap_or_default(),
            elapsed,
            candidate_samples: self.candidate,
            baseline_samples: self.baseline,
            latency_summary: self.latency_summary(),
            arms: self.arms(),
        }
    }
}
