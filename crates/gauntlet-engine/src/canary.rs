//! What the canary and the rollback rehearsal share: the panel of judges (one alpha shared
//! among the gating ones), running one stage through the traffic split, the promotion and
//! rollback actions, and the evidence each stage leaves (observations, trajectories, SVG).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gauntlet_net::{LoadPlan, Model, Outgoing, TrafficSplit, WeightedRequest, run_load};
use gauntlet_report::{Check, Outcome, Severity};
use gauntlet_spec::{AbortTriggers, Action, Judges};
use gauntlet_stats::{
    Arm, BurnRate, BurnWindow, Judge, LatencyJudge, Observation, Sprt, TwoSample, Verdict,
    split_alpha,
};
use hdrhistogram::Histogram;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::context::RunContext;

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

#[derive(Debug, Clone, PartialEq)]
pub enum StageEnd {
    Accepted,
    Rejected,
    /// An abort trigger fired: the reason.
    Aborted(String),
    /// The bake time ran out before the judges decided.
    TimedOut,
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

/// Open-model load through the split, running in the background. Dropping it raises the
/// stop flag, so a cancelled stage (Ctrl-C, a panic) stops its load threads at once instead
/// of at the end of their time.
pub struct RunningLoad {
    stop: Arc<AtomicBool>,
    handle: Option<tokio::task::JoinHandle<gauntlet_net::LoadReport>>,
}

/// The load a stage or the rehearsal drives through the split.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Requests a second (open model).
    pub rate: f64,
    pub connections: usize,
    /// Which requests of the mix are sent, in which order.
    pub seed: u64,
}

impl RunningLoad {
    /// Starts the plan's traffic mix through `split` for at most `duration`.
    pub fn start(ctx: &RunContext, split: &TrafficSplit, load: Load, duration: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let Load {
            rate,
            connections,
            seed,
        } = load;
        let plan = LoadPlan {
            authority: split.addr().to_string(),
            mix: mix_for(
                &ctx.plan.traffic.requests,
                &format!("http://{}", split.addr()),
            ),
            model: Model::Open { rate },
            connections,
            duration,
            max_requests: (rate * duration.as_secs_f64()).ceil() as u64 + 1,
            seed,
            http2: false,
        };
        let handle = {
            let stop = stop.clone();
            tokio::spawn(async move { run_load(&plan, stop).await })
        };
        Self {
            stop,
            handle: Some(handle),
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Stops the load and waits (bounded) for its threads to finish.
    pub async fn finish(mut self) {
        self.stop();
        if let Some(handle) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), handle).await;
        }
    }
}

impl Drop for RunningLoad {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The traffic mix of the spec aimed at the split.
pub fn mix_for(requests: &[gauntlet_spec::Request], base: &str) -> Vec<WeightedRequest> {
    requests
        .iter()
        .map(|r| WeightedRequest {
            request: Outgoing {
                base: base.to_string(),
                method: r.method.as_str().to_string(),
                path: r.path.clone(),
                headers: r.headers.clone(),
                body: r.body.clone(),
            },
            weight: r.weight.get(),
        })
        .collect()
}

/// The decision of one stage, one observation at a time: the panel, the abort triggers, and
/// the candidate's minimum sample count. The live stage and `gauntlet judge` both use it, so
/// a replay of the recorded observations decides exactly as the live run did.
pub struct StageJudge<'a> {
    pub panel: &'a mut Panel,
    triggers: Triggers<'a>,
    min_samples: u64,
    recording: Option<Recording>,
    latencies: [LatencySample; 2],
    failed: [u64; 2],
    /// Observations fed so far.
    pub used: u64,
    pub candidate: u64,
    pub baseline: u64,
}

/// Observations as gzipped JSON lines, compressed as they arrive.
pub struct Recording {
    encoder: flate2::write::GzEncoder<Vec<u8>>,
}

impl Default for Recording {
    fn default() -> Self {
        Self {
            encoder: flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()),
        }
    }
}

impl Recording {
    pub fn push(&mut self, observation: &Observation) {
        if let Ok(line) = serde_json::to_string(observation) {
            let _ = writeln!(self.encoder, "{line}");
        }
    }
    pub fn finish(self) -> Vec<u8> {
        self.encoder.finish().unwrap_or_default()
    }
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

    /// Feeds one observation; returns how the stage ends, if it ends here.
    pub fn feed(&mut self, observation: Observation) -> Option<StageEnd> {
        if let Some(recording) = &mut self.recording {
            recording.push(&observation);
        }
        let arm = usize::from(observation.arm == Arm::Candidate);
        if observation.ok {
            self.latencies[arm].push(observation.latency_ms);
        } else {
            self.failed[arm] += 1;
        }
        self.used += 1;
        match observation.arm {
            Arm::Candidate => self.candidate += 1,
            Arm::Baseline => self.baseline += 1,
        }
        self.panel.observe(&observation);
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
        let [baseline, candidate] = &self.latencies;
        let test = gauntlet_stats::mann_whitney(&candidate.reservoir, &baseline.reservoir)
            .map(|r| {
                format!(
                    "Mann-Whitney U: p = {:.3}, P(candidate slower) = {:.3}",
                    r.p_value, r.effect
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

/// Reads recorded observations: JSON lines (optionally gzipped) or CSV with a header naming
/// `arm`, `ok`, `latency_ms` and optionally `t_ms`. Errors name the line.
pub fn read_observations(bytes: &[u8]) -> Result<Vec<Observation>, String> {
    use std::io::Read;
    let mut text = String::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot decompress: {e}"))?;
    } else {
        text = String::from_utf8(bytes.to_vec())
            .map_err(|_| "the file is neither UTF-8 text nor gzip".to_string())?;
    }
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .peekable();
    let Some((_, first)) = lines.peek() else {
        return Ok(Vec::new());
    };
    if first.trim_start().starts_with('{') {
        return lines
            .map(|(i, line)| serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1)))
            .collect();
    }
    let header: Vec<String> = first
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name);
    let (Some(arm_at), Some(ok_at), Some(latency_at)) =
        (column("arm"), column("ok"), column("latency_ms"))
    else {
        return Err(
            "line 1: a CSV header must name `arm`, `ok` and `latency_ms` (and may name `t_ms`)"
                .into(),
        );
    };
    let t_at = column("t_ms")
        .or_else(|| column("timestamp_ms"))
        .or_else(|| column("timestamp"));
    lines
        .skip(1)
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let field = |at: usize| {
                fields
                    .get(at)
                    .copied()
                    .ok_or_else(|| format!("line {}: missing column {}", i + 1, at + 1))
            };
            let arm = match field(arm_at)? {
                "baseline" => Arm::Baseline,
                "candidate" => Arm::Candidate,
                other => {
                    return Err(format!(
                        "line {}: arm `{other}` is neither `baseline` nor `candidate`",
                        i + 1
                    ));
                }
            };
            let ok = match field(ok_at)? {
                "true" | "1" => true,
                "false" | "0" => false,
                other => return Err(format!("line {}: ok `{other}` is not true/false", i + 1)),
            };
            let latency_ms = field(latency_at)?
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    format!("line {}: latency_ms is not a non-negative number", i + 1)
                })?;
            let t_ms = match t_at {
                Some(at) => field(at)?
                    .parse::<u64>()
                    .map_err(|_| format!("line {}: t_ms is not a whole number", i + 1))?,
                None => i as u64,
            };
            Ok(Observation {
                arm,
                ok,
                latency_ms,
                t_ms,
            })
        })
        .collect()
}

/// Drives load through the split for up to `bake`, feeding every outcome to the panel,
/// until the panel decides (acceptance needs `min_samples` on the candidate), a trigger
/// fires, or time runs out.
#[allow(clippy::too_many_arguments)]
pub async fn run_stage(
    ctx: &RunContext,
    split: &TrafficSplit,
    observations: &mut UnboundedReceiver<Observation>,
    panel: &mut Panel,
    load: Load,
    bake: Duration,
    min_samples: u64,
    abort: Option<&AbortTriggers>,
) -> StageRun {
    // Outcomes still in flight from an earlier stage belong to it, not to this one.
    while observations.try_recv().is_ok() {}
    let load = RunningLoad::start(ctx, split, load, bake);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + bake;
    let mut judging = StageJudge::new(panel, min_samples, abort).recording();
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
    let (candidate, baseline) = (judging.candidate, judging.baseline);
    let latency_summary = judging.latency_summary();
    let arms = judging.arms();
    let recorded = judging
        .recording
        .take()
        .map(Recording::finish)
        .unwrap_or_default();
    load.finish().await;
    StageRun {
        end,
        recorded,
        elapsed: started.elapsed(),
        candidate_samples: candidate,
        baseline_samples: baseline,
        latency_summary,
        arms,
    }
}

/// One check per judge for a finished stage.
pub fn judge_checks(
    step: &str,
    label: &str,
    panel: &Panel,
    run: &StageRun,
    severity: Severity,
    weight: &str,
) -> Vec<Check> {
    panel
        .seats
        .iter()
        .map(|seat| {
            let judge = &seat.judge;
            let context = format!(
                " ({:.1}s at {weight} weight, alpha {:.4})",
                run.elapsed.as_secs_f64(),
                if seat.dry_run {
                    f64::NAN
                } else {
                    panel.alpha_each
                }
            );
            let (outcome, why) = match judge.verdict() {
                Verdict::Accept => (Outcome::Pass, "accepted"),
                Verdict::Reject => (Outcome::Fail, "rejected"),
                Verdict::Continue => match &run.end {
                    StageEnd::TimedOut if judge.samples() == 0 => (
                        Outcome::Inconclusive,
                        "no traffic reached both arms before the bake ended",
                    ),
                    StageEnd::TimedOut => (
                        Outcome::Inconclusive,
                        "no boundary crossed before the bake ended",
                    ),
                    _ => (Outcome::Skipped, "undecided when the stage ended"),
                },
            };
            let mut check = Check::new(step, &format!("{label} {}", seat.name), severity)
                .samples(judge.samples())
                .measured(format!("{} after {} observations", why, judge.samples()))
                .threshold(if seat.dry_run {
                    "dry run: reported, never decides".to_string()
                } else {
                    "accept before the bake ends; never reject".to_string()
                })
                .outcome(outcome, format!("{}{context}", judge.explain()));
            check.dry_run = seat.dry_run;
            check
        })
        .collect()
}

/// Runs a promotion or rollback hook; returns what happened, or why it failed.
pub async fn run_action(
    ctx: &RunContext,
    action: Option<&Action>,
    event: &str,
    stage: &str,
) -> Result<String, String> {
    let Some(action) = action else {
        return Ok("traffic split moved (no hook configured)".into());
    };
    let mut done = Vec::new();
    if let Some(command) = &action.command {
        let Some((program, args)) = command.split_first() else {
            return Err("the hook command is empty".into());
        };
        let status = tokio::time::timeout(
            Duration::from_secs(60),
            ctx.child_env
                .command(program)
                .args(args)
                .env("GAUNTLET_EVENT", event)
                .env("GAUNTLET_STAGE", stage)
                .env("GAUNTLET_SERVICE", &ctx.plan.service.name)
                .env("GAUNTLET_VERSION", &ctx.plan.service.version)
                .kill_on_drop(true)
                .status(),
        )
        .await
        .map_err(|_| format!("`{program}` did not finish within 60s"))?
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
        if !status.success() {
            return Err(format!("`{program}` exited with {status}"));
        }
        done.push(format!("`{program}` succeeded"));
    }
    if let Some(url) = &action.webhook {
        let split_at = url.match_indices('/').nth(2).map_or(url.len(), |(i, _)| i);
        let (base, path) = url.split_at(split_at);
        let mut out = Outgoing::get(base, if path.is_empty() { "/" } else { path });
        out.method = "POST".into();
        out.body = Some(
            serde_json::json!({"event": event, "stage": stage, "service": ctx.plan.service.name,
                               "version": ctx.plan.service.version})
            .to_string(),
        );
        let response = ctx
            .client
            .send(&out)
            .await
            .map_err(|e| format!("webhook {url}: {e}"))?;
        if !response.is_success() {
            return Err(format!("webhook {url} answered {}", response.status));
        }
        done.push(format!("webhook answered {}", response.status));
    }
    Ok(done.join("; "))
}

/// A stage's observations as gzipped JSON lines (what `gauntlet judge` reads).
pub fn observations_gz(observations: &[Observation]) -> Vec<u8> {
    let mut recording = Recording::default();
    for observation in observations {
        recording.push(observation);
    }
    recording.finish()
}

/// Writes the stage's evidence: observations, each judge's trajectory (JSON and SVG).
pub fn stage_evidence(
    ctx: &RunContext,
    step: &str,
    label: &str,
    panel: &Panel,
    run: &StageRun,
) -> Vec<String> {
    let mut files = Vec::new();
    let slug = crate::context::file_safe(label);
    if let Ok(path) = ctx.recorder.evidence(
        step,
        &format!("{slug}-observations.jsonl.gz"),
        &run.recorded,
    ) {
        files.push(path);
    }
    for seat in &panel.seats {
        let trajectory = serde_json::to_vec(&seat.judge.trajectory().points).unwrap_or_default();
        if let Ok(path) =
            ctx.recorder
                .evidence(step, &format!("{slug}-{}.json", seat.name), &trajectory)
        {
            files.push(path);
        }
        let svg = gauntlet_report::svg::trajectory(
            &format!("{label}: {}", seat.name),
            &seat.judge.trajectory().points,
        );
        if let Ok(path) =
            ctx.recorder
                .evidence(step, &format!("{slug}-{}.svg", seat.name), svg.as_bytes())
        {
            files.push(path);
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn observation_files_parse_in_every_format() {
        let csv = "arm,ok,latency_ms,timestamp\nbaseline,true,1.5,10\ncandidate,0,2,11\n";
        let parsed = read_observations(csv.as_bytes()).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            (parsed[1].arm, parsed[1].ok, parsed[1].t_ms),
            (Arm::Candidate, false, 11)
        );
        let gz = observations_gz(&parsed);
        assert_eq!(read_observations(&gz).unwrap(), parsed);
        let err = read_observations(b"arm,ok,latency_ms\nmiddle,true,1\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(read_observations(b"x,y\n").unwrap_err().contains("arm"));
    }

    proptest! {
        #[test]
        fn observation_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = read_observations(&bytes);
        }

        #[test]
        fn near_valid_lines_never_panic(
            arm in "(baseline|candidate|[a-z]{0,4})",
            ok in "(true|false|0|1|x)?",
            latency in "[-0-9.eE]{0,6}",
            t in "[0-9a-z]{0,4}",
        ) {
            let csv = format!("arm,ok,latency_ms,t_ms\n{arm},{ok},{latency},{t}\n");
            let _ = read_observations(csv.as_bytes());
            let json = format!("{{\"arm\":\"{arm}\",\"ok\":{ok},\"latency_ms\":{latency}}}\n");
            let _ = read_observations(json.as_bytes());
        }
    }

    #[test]
    fn the_svg_is_deterministic_and_marks_both_boundaries() {
        let mut sprt = Sprt::new(0.01, 0.04, 0.05, 0.05).unwrap();
        for i in 0..200 {
            sprt.observe(i % 50 != 0);
        }
        let svg = gauntlet_report::svg::trajectory(
            "stage 1 <shadow>: error-rate",
            &sprt.trajectory().points,
        );
        assert_eq!(
            svg,
            gauntlet_report::svg::trajectory(
                "stage 1 <shadow>: error-rate",
                &sprt.trajectory().points
            )
        );
        assert!(
            svg.contains("reject 3.00") && svg.contains("accept -3.00"),
            "{svg}"
        );
        assert!(svg.contains("&lt;shadow&gt;"));
    }
}
