//! Commands that work without a spec run: `judge` (replay recorded observations through
//! the canary's judges), `load` (a plain load test) and `proxy` (a standalone fault proxy).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use gauntlet_engine::steps::canary::{Panel, StageEnd, StageJudge, read_observations};
use gauntlet_net::{LoadPlan, Model, Outgoing, WeightedRequest, run_load};
use gauntlet_report::exit;
use gauntlet_spec::units::{Duration as SpecDuration, Rate};
use gauntlet_stats::Verdict;

use crate::cli::{JudgeArg, JudgeArgs};
use crate::{CliError, read_spec, runtime};

/// The run's own spec, when `file` sits in `RUN_DIR/evidence/STEP/`.
fn spec_beside(file: &Path) -> Option<PathBuf> {
    let run_dir = file.parent()?.parent()?.parent()?;
    let spec = run_dir.join("spec.yaml");
    spec.exists().then_some(spec)
}

/// `stage-3-50-observations.jsonl.gz` → 3.
fn stage_from_name(file: &Path) -> Option<usize> {
    let name = file.file_name()?.to_str()?;
    name.strip_prefix("stage-")?.split('-').next()?.parse().ok()
}

/// What a replay judges with: the panel, its error rates, the stage's minimum and bake.
struct Bench {
    judges: gauntlet_spec::Judges,
    alpha: f64,
    beta: f64,
    min_samples: u32,
    bake: Option<std::time::Duration>,
    abort: Option<gauntlet_spec::AbortTriggers>,
    /// Where the judges came from, and the stage, for the output.
    source: String,
    stage: String,
}

fn percent(flag: &str, text: &str) -> Result<f64, CliError> {
    text.parse::<gauntlet_spec::units::Percent>()
        .map(|p| p.ratio())
        .map_err(|e| CliError::Usage(format!("--{flag}: {}", e.0)))
}

/// The judges the flags name (no spec read).
fn bench_from_flags(args: &JudgeArgs) -> Result<Bench, CliError> {
    use gauntlet_spec::{ErrorRateJudge, Judges, LatencyJudge, TwoSampleJudge, units::Percent};
    if args.spec.is_some() || args.stage.is_some() {
        return Err(CliError::Usage(
            "give the judges by flags (--judge, --p0, --delta) or take them from a spec (--spec, --stage), not both".into(),
        ));
    }
    let mut chosen = args.judges.clone();
    if chosen.is_empty() {
        chosen.push(if args.p0.is_some() {
            JudgeArg::ErrorRate
        } else {
            JudgeArg::TwoSample
        });
    }
    let given = |text: &Option<String>, default: &str| {
        let text = text.clone().unwrap_or_else(|| default.to_string());
        text.parse::<Percent>()
            .map_err(|e| CliError::Usage(format!("--delta: {}", e.0)))
    };
    let mut judges = Judges::default();
    for judge in chosen {
        match judge {
            JudgeArg::ErrorRate => {
                let p0 = args.p0.as_deref().ok_or_else(|| {
                    CliError::Usage(
                        "the error-rate judge tests against a known rate: give --p0, e.g. --p0 1%"
                            .into(),
                    )
                })?;
                judges.error_rate = Some(ErrorRateJudge {
                    p0: p0.parse().map_err(|e: gauntlet_spec::units::UnitError| {
                        CliError::Usage(format!("--p0: {}", e.0))
                    })?,
                    delta: given(&args.delta, "3%")?,
                    dry_run: false,
                });
            }
            JudgeArg::TwoSample => {
                judges.two_sample = Some(TwoSampleJudge {
                    delta: given(&args.delta, "3%")?,
                    dry_run: false,
                });
            }
            JudgeArg::Latency => {
                judges.latency = Some(LatencyJudge {
                    delta: given(&args.delta, "10%")?,
                    margin: SpecDuration::from_millis(10),
                    warmup: 200,
                    dry_run: false,
                });
            }
        }
    }
    let bake = args
        .bake
        .as_deref()
        .map(|b| {
            b.parse::<SpecDuration>()
                .map(|d| d.as_std())
                .map_err(|e| CliError::Usage(format!("--bake: {}", e.0)))
        })
        .transpose()?;
    Ok(Bench {
        judges,
        alpha: percent("alpha", &args.alpha)?,
        beta: percent("beta", &args.beta)?,
        min_samples: args.min_samples,
        bake,
        abort: None,
        source: "the flags".into(),
        stage: format!("min {} candidate samples", args.min_samples),
    })
}

/// The judges of a spec's canary, and one of its stages.
fn bench_from_spec(args: &JudgeArgs) -> Result<Bench, CliError> {
    let file = &args.file;
    let spec_path = args
        .spec
        .clone()
        .or_else(|| spec_beside(file))
        .ok_or_else(|| {
            CliError::Usage(format!(
                "no judges: give them by flags (e.g. `--judge two-sample --delta 3%`, or `--p0 1%`) or take a spec's with --spec; {} is not inside a run directory",
                file.display()
            ))
        })?;
    let text = read_spec(&spec_path)?;
    let only_canary = gauntlet_spec::Selection {
        only: vec![gauntlet_spec::StepName::Canary],
        ..Default::default()
    };
    let plan = crate::plan(&spec_path, &text, &only_canary, 1)?;
    let Some(gauntlet_spec::StepPlan::Canary(canary)) = plan.steps.into_iter().next() else {
        return Err(CliError::Usage(format!(
            "{} has no `steps.canary` section to take judges from",
            spec_path.display()
        )));
    };
    let number = args.stage.or_else(|| stage_from_name(file)).unwrap_or(1);
    let stage = canary.stages.get(number.saturating_sub(1)).ok_or_else(|| {
        CliError::Usage(format!(
            "the canary has {} stages; there is no stage {number}",
            canary.stages.len()
        ))
    })?;
    Ok(Bench {
        judges: canary.judges.clone(),
        alpha: canary.alpha.ratio(),
        beta: canary.beta.ratio(),
        min_samples: stage.min_samples,
        bake: Some(stage.bake.as_std()),
        abort: canary.abort.clone(),
        source: spec_path.display().to_string(),
        stage: format!(
            "stage {number} ({}), min {} candidate samples, bake {}",
            stage.weight, stage.min_samples, stage.bake
        ),
    })
}

/// `gauntlet judge`: replays recorded observations through the judges, as the live stage
/// would have (its minimum samples, and its bake when the file has times).
pub fn judge(args: &JudgeArgs) -> Result<i32, CliError> {
    let bench = if args.names_judges() {
        bench_from_flags(args)?
    } else {
        bench_from_spec(args)?
    };
    let file = &args.file;
    let bytes = std::fs::read(file)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
    let read = read_observations(&bytes)
        .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let observations = &read.list;
    let min_samples = u64::from(bench.min_samples);
    let mut panel = Panel::new(&bench.judges, bench.alpha, bench.beta, min_samples)
        .map_err(|e| CliError::Usage(format!("the judges cannot be built: {e}")))?;
    let mut judging = StageJudge::new(&mut panel, min_samples, bench.abort.as_ref());
    let mut end = None;
    let mut baked_out = false;
    let started = observations.first().map_or(0, |o| o.t_ms);
    for observation in observations {
        if let Some(bake) = bench.bake.filter(|_| read.timed)
            && observation.t_ms.saturating_sub(started) > bake.as_millis() as u64
        {
            baked_out = true;
            break;
        }
        end = judging.feed(*observation);
        if end.is_some() {
            break;
        }
    }
    let (used, candidate, baseline) = (judging.used, judging.candidate, judging.baseline);
    let verdict = match &end {
        Some(StageEnd::Accepted) => "ACCEPT",
        Some(StageEnd::Rejected) => "REJECT",
        Some(StageEnd::Aborted(_)) => "ABORT",
        _ => "UNDECIDED",
    };
    let code = match &end {
        Some(StageEnd::Accepted) => exit::GO,
        Some(StageEnd::Rejected | StageEnd::Aborted(_)) => exit::NO_GO,
        _ => exit::INCONCLUSIVE,
    };
    let judges: Vec<serde_json::Value> = panel
        .seats
        .iter()
        .map(|seat| {
            serde_json::json!({
                "name": seat.name,
                "dry_run": seat.dry_run,
                "verdict": match seat.judge.verdict() { Verdict::Accept => "accept", Verdict::Reject => "reject", Verdict::Continue => "continue" },
                "samples": seat.judge.samples(),
                "explain": seat.judge.explain(),
            })
        })
        .collect();
    if args.json {
        let out = serde_json::json!({
            "file": file.display().to_string(), "judges_from": bench.source,
            "stage": bench.stage, "verdict": verdict, "observations": observations.len(),
            "bake_ended": baked_out,
            "decided_at": end.as_ref().map(|_| used), "candidate": candidate, "baseline": baseline,
            "abort": match &end { Some(StageEnd::Aborted(why)) => Some(why.clone()), _ => None },
            "judges": judges,
        });
        say!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        say!(
            "{verdict}: {} of {} observations used ({candidate} candidate, {baseline} baseline); judges from {}, {}",
            used,
            observations.len(),
            bench.source,
            bench.stage
        );
        if baked_out {
            say!("  the bake ran out before the judges decided: later observations are not judged");
        }
        if let Some(StageEnd::Aborted(why)) = &end {
            say!("  {why}");
        }
        for judge in &judges {
            say!(
                "  {:<11} {:<9} {:>7} samples  {}{}",
                judge["name"].as_str().unwrap_or(""),
                judge["verdict"].as_str().unwrap_or(""),
                judge["samples"],
                judge["explain"].as_str().unwrap_or(""),
                if judge["dry_run"] == true {
                    "  [dry run]"
                } else {
                    ""
                }
            );
        }
    }
    Ok(code)
}

pub fn load(
    url: &str,
    rate: Option<&str>,
    duration: &str,
    connections: usize,
    http2: bool,
    json: bool,
) -> Result<i32, CliError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| CliError::Usage(format!("`{url}`: only http:// URLs are supported")))?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let duration: SpecDuration = duration
        .parse()
        .map_err(|e: gauntlet_spec::units::UnitError| CliError::Usage(e.0))?;
    let model = match rate {
        Some(rate) => Model::Open {
            rate: rate
                .parse::<Rate>()
                .map_err(|e| CliError::Usage(e.0))?
                .per_second(),
        },
        None => Model::Closed,
    };
    let plan = LoadPlan {
        authority: authority.to_string(),
        mix: vec![WeightedRequest {
            request: Outgoing::get(&format!("http://{authority}"), path),
            weight: 1,
        }],
        model,
        connections: connections.max(1),
        duration: duration.as_std(),
        max_requests: u64::MAX,
        seed: 1,
        http2,
        threads: gauntlet_net::Threads::PerCore,
    };
    let report = runtime()?.block_on(run_load(&plan, Arc::new(AtomicBool::new(false))));
    let quantiles = [0.5, 0.9, 0.95, 0.99, 0.999];
    if json {
        let out = serde_json::json!({
            "sent": report.sent, "answered": report.answered(), "elapsed_s": report.elapsed.as_secs_f64(),
            "rate": report.achieved_rate(), "statuses": report.statuses, "errors": report.errors,
            "latency_ms": quantiles.iter().map(|q| (format!("p{}", q * 100.0), report.percentile_ms(*q))).collect::<std::collections::BTreeMap<_, _>>(),
            "max_ms": report.latency_us.max() as f64 / 1000.0,
        });
        say!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(exit::GO);
    }
    say!(
        "{} requests in {:.2}s: {:.1} requests/s ({} answered, {} errors)",
        report.sent,
        report.elapsed.as_secs_f64(),
        report.achieved_rate(),
        report.answered(),
        report.errors.values().sum::<u64>()
    );
    let statuses: Vec<String> = report
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    say!("statuses: {}", statuses.join(", "));
    for (error, n) in &report.errors {
        say!("error ({n}×): {error}");
    }
    if matches!(model, Model::Open { .. }) {
        say!("latency from the intended send time (no coordinated omission):");
    }
    for q in quantiles {
        say!("  p{:<6} {:>10.3} ms", q * 100.0, report.percentile_ms(q));
    }
    say!(
        "  max     {:>10.3} ms",
        report.latency_us.max() as f64 / 1000.0
    );
    // A log-scale histogram: one row per power of two of microseconds.
    let total = report.latency_us.len().max(1);
    let mut low = 1u64;
    while low <= report.latency_us.max() {
        let high = low * 2;
        let count = report.latency_us.count_between(low, high - 1);
        if count > 0 {
            let bar = "#".repeat(((count as f64 / total as f64) * 50.0).ceil() as usize);
            say!(
                "  {:>9.3}–{:<9.3} ms {:>8} {bar}",
                low as f64 / 1000.0,
                high as f64 / 1000.0,
                count
            );
        }
        low = high;
    }
    Ok(exit::GO)
}
