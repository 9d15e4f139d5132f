//! Step 3, chaos drills. For each drill: the steady-state hypothesis must hold before
//! (else the drill is inconclusive — we do not break a broken system); the faults go in,
//! each through the cleanup journal; the probes run every interval while they are in;
//! the faults come out; the hypothesis must hold again. The gameday timeline (start,
//! fault applied, detection, action, recovery, fault removed) gives the time to detect and
//! the time to recover, in the report and as an SVG in the run directory.

use std::time::{Duration, Instant};

use gauntlet_report::{Check, DrillEvent, DrillReport, Outcome, Severity};
use gauntlet_spec::{ChaosPlan, DrillPlan as Drill, Expectation, Probe, Restart, StepMeta};

use super::{Step, StepFuture, severity};
use crate::context::RunContext;
use crate::faults::inject::{self, Applied};
use crate::probes::{MetricBase, ProbeResult, run_probe, scrape};

const STEP: &str = gauntlet_spec::StepName::Chaos.as_str();
/// Consecutive passing rounds that count as "holds again".
const SETTLED_ROUNDS: usize = 3;

pub struct Chaos(pub(crate) ChaosPlan);

impl Step for Chaos {
    fn step(&self) -> gauntlet_spec::StepName {
        gauntlet_spec::StepName::Chaos
    }
    fn meta(&self) -> &StepMeta {
        &self.0.meta
    }
    fn run<'a>(&'a self, ctx: &'a RunContext) -> StepFuture<'a> {
        Box::pin(async move {
            let mut checks = Vec::new();
            for drill in &self.0.drills {
                checks.extend(run_drill(ctx, &self.0, drill).await);
            }
            checks
        })
    }
}

/// One round of probes, `at` since the drill started.
struct Round {
    at: Duration,
    results: Vec<ProbeResult>,
}

impl Round {
    fn holds(&self) -> bool {
        self.results.iter().all(|r| r.pass)
    }
    fn failures(&self) -> String {
        self.results
            .iter()
            .filter(|r| !r.pass)
            .map(|r| format!("{}: {}", r.name, r.detail))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

struct Timeline {
    started: Instant,
    drill: String,
    events: Vec<DrillEvent>,
    /// Alert name → from the fault to its notification.
    alerts: std::collections::BTreeMap<String, u64>,
}

impl Timeline {
    fn at(&self) -> Duration {
        self.started.elapsed()
    }
    fn note(&mut self, ctx: &RunContext, kind: &str, detail: impl Into<String>) -> Duration {
        let at = self.at();
        let detail = detail.into();
        ctx.recorder.event(
            Some(STEP),
            &format!("drill-{kind}"),
            format!("{} +{:.2}s {kind}: {detail}", self.drill, at.as_secs_f64()),
        );
        self.events.push(DrillEvent {
            at_ms: at.as_millis() as u64,
            kind: kind.to_string(),
            detail,
        });
        at
    }
}

async fn round(
    ctx: &RunContext,
    url: &str,
    probes: &[Probe],
    base: &MetricBase,
    timeline: &Timeline,
) -> Round {
    let mut results = Vec::with_capacity(probes.len());
    for probe in probes {
        results.push(run_probe(&ctx.client, url, probe, base, &ctx.child_env).await);
    }
    Round {
        at: timeline.at(),
        results,
    }
}

/// Probe values that `increase` probes compare against.
async fn metric_base(ctx: &RunContext, url: &str, probes: &[Probe]) -> MetricBase {
    let mut base = MetricBase::new();
    for probe in probes {
        if let Some(metric) = probe.metric.as_ref().filter(|m| m.increase) {
            base.insert(
                probe.name.clone(),
                scrape(&ctx.client, url, metric).await.unwrap_or(0.0),
            );
        }
    }
    base
}

/// Per probe: passes and total.
fn shares(rounds: &[&Round], probes: &[Probe]) -> Vec<(String, usize, usize, f64)> {
    probes
        .iter()
        .enumerate()
        .map(|(i, probe)| {
            let total = rounds.len();
            let passed = rounds
                .iter()
                .filter(|r| r.results.get(i).is_some_and(|x| x.pass))
                .count();
            (probe.name.clone(), passed, total, probe.tolerance.ratio())
        })
        .collect()
}

async fn run_drill(ctx: &RunContext, config: &ChaosPlan, drill: &Drill) -> Vec<Check> {
    let severity = severity(&config.meta);
    let seed = drill.seed;
    let name = drill.name.as_str();
    let check = |what: &str| Check::new(STEP, &format!("{name}: {what}"), severity);
    let hypothesis = &drill.steady_state;
    let url = ctx
        .systems
        .get("candidate")
        .map(|s| s.drill_url())
        .unwrap_or_else(|| ctx.candidate.clone());
    let interval = config.interval.as_std();
    let probes = &hypothesis.probes;
    let mut timeline = Timeline {
        started: Instant::now(),
        drill: name.to_string(),
        events: Vec::new(),
        alerts: Default::default(),
    };
    timeline.note(
        ctx,
        "start",
        drill
            .description
            .clone()
            .unwrap_or_else(|| format!("expect {}", drill.expect)),
    );
    let mut checks = Vec::new();

    // Before: the hypothesis must hold, or the drill does not break anything.
    let base = metric_base(ctx, &url, probes).await;
    let mut before = Vec::new();
    let until = timeline.at() + hypothesis.before.as_std();
    loop {
        before.push(round(ctx, &url, probes, &base, &timeline).await);
        if timeline.at() >= until {
            break;
        }
        tokio::time::sleep(interval).await;
    }
    let before_refs: Vec<&Round> = before.iter().collect();
    let broken: Vec<String> = shares(&before_refs, probes)
        .into_iter()
        .filter(|(_, passed, total, tolerance)| (*passed as f64) < tolerance * *total as f64)
        .map(|(probe, passed, total, _)| format!("{probe} {passed}/{total}"))
        .collect();
    let steady = check("steady state before")
        .threshold(format!("the hypothesis holds for {}", hypothesis.before));
    if !broken.is_empty() {
        let why = format!(
            "the hypothesis does not hold before any fault ({}); last failures: {}",
            broken.join(", "),
            before.last().map(Round::failures).unwrap_or_default()
        );
        timeline.note(ctx, "end", "not run: the system is not in its steady state");
        checks.push(steady.outcome(Outcome::Inconclusive, why));
        finish(
            ctx,
            drill,
            timeline,
            &[],
            None,
            None,
            None,
            Outcome::Inconclusive,
        );
        return checks;
    }
    checks.push(
        steady
            .measured(format!("{} rounds", before.len()))
            .outcome(Outcome::Pass, "the hypothesis held before the faults"),
    );
    timeline.note(
        ctx,
        "steady-state",
        format!("held for {} rounds", before.len()),
    );

    // In: every fault through the journal; a failure to apply one ends the drill.
    let side_base = metric_base(ctx, &url, &drill.side_effects).await;
    let base = metric_base(ctx, &url, probes).await;
    let mut applied: Vec<(Applied, Option<Duration>)> = Vec::new();
    let mut fault_at = None;
    let mut apply_error = None;
    for (i, fault) in drill.faults.iter().enumerate() {
        match inject::apply(ctx, name, i, fault, seed.derive("fault", i as u64)).await {
            Ok((done, line)) => {
                let at = timeline.note(ctx, "fault-applied", line);
                fault_at.get_or_insert(at);
                applied.push((done, fault.fault.duration.map(|d| at + d)));
            }
            Err(e) => {
                apply_error = Some(e);
                break;
            }
        }
    }
    let fault_at = fault_at.unwrap_or_else(|| timeline.at());
    // Killed processes: the exit is seen, gauntlet restarts it (`restart: gauntlet`) or
    // something else does (`supervised`), and the time until its health check passes again
    // is measured at a 10 ms grain.
    let killed: Vec<(String, Restart)> = applied
        .iter()
        .filter_map(|(a, _)| match a {
            Applied::Killed {
                target, restart, ..
            } => Some((target.clone(), *restart)),
            _ => None,
        })
        .collect();
    let mut health_back: Option<Duration> = None;
    let health_deadline = tokio::time::Instant::now() + drill.duration.as_std();
    for (target, restart) in &killed {
        let seen = match inject::wait_exit(ctx, target).await {
            Ok(()) => format!("{target} exited (seen by gauntlet's supervisor)"),
            Err(e) => e,
        };
        timeline.note(ctx, "detected", seen);
        if *restart == Restart::Gauntlet {
            let line =
                inject::restart(ctx, target).unwrap_or_else(|e| format!("restart failed: {e}"));
            timeline.note(ctx, "action", line);
        }
        if inject::wait_healthy(ctx, target, health_deadline).await {
            let at = timeline.note(
                ctx,
                "recovered",
                format!("{target} answers its health check again"),
            );
            health_back = Some(health_back.map_or(at, |h| h.max(at)));
        }
    }
    let mut during = Vec::new();
    // Whether each fault took effect, checked before it comes out.
    let mut in_force: Vec<Result<String, String>> = Vec::new();
    let mut side_seen: Vec<Option<(Duration, String)>> = vec![None; drill.side_effects.len()];
    // What each unseen side effect's probe said last, for the failure's reason.
    let mut side_last: Vec<String> = vec![String::new(); drill.side_effects.len()];
    if apply_error.is_none() {
        let end = fault_at + drill.duration.as_std();
        loop {
            let r = round(ctx, &url, probes, &base, &timeline).await;
            if !r.holds() && !timeline.events.iter().any(|e| e.kind == "detected") {
                timeline.note(
                    ctx,
                    "detected",
                    format!("steady state broken: {}", r.failures()),
                );
            }
            during.push(r);
            for (i, probe) in drill.side_effects.iter().enumerate() {
                if side_seen[i].is_none() {
                    let result =
                        run_probe(&ctx.client, &url, probe, &side_base, &ctx.child_env).await;
                    if result.pass {
                        let at = timeline.note(
                            ctx,
                            "side-effect",
                            format!("{}: {}", probe.name, result.detail),
                        );
                        side_seen[i] = Some((at, result.detail));
                    } else {
                        side_last[i] = result.detail;
                    }
                }
            }
            // Faults with their own, shorter duration come out on time.
            let now = timeline.at();
            let mut i = 0;
            while i < applied.len() {
                if applied[i].1.is_some_and(|until| now >= until) {
                    let (done, _) = applied.remove(i);
                    in_force.push(inject::in_force(ctx, &done));
                    let (line, _) = inject::undo(ctx, done).await;
                    timeline.note(ctx, "fault-removed", line);
                } else {
                    i += 1;
                }
            }
            if now >= end {
                break;
            }
            tokio::time::sleep(interval.min(end.saturating_sub(now))).await;
        }
    }

    in_force.extend(applied.iter().map(|(a, _)| inject::in_force(ctx, a)));

    // Out: every fault undone and verified.
    let mut undone_ok = true;
    let mut undo_lines = Vec::new();
    for (done, _) in applied.drain(..).rev() {
        let (line, ok) = inject::undo(ctx, done).await;
        timeline.note(ctx, "fault-removed", line.clone());
        undone_ok &= ok;
        undo_lines.push(line);
    }
    let removed_at = timeline.at();
    if let Some(e) = apply_error {
        checks.push(check(&drill.expect.to_string()).outcome(
            Outcome::Inconclusive,
            format!("a fault could not be applied: {e}"),
        ));
        checks.push(check("faults undone").outcome(
            if undone_ok {
                Outcome::Pass
            } else {
                Outcome::Fail
            },
            undo_lines.join("; "),
        ));
        timeline.note(ctx, "end", "stopped: a fault could not be applied");
        finish(
            ctx,
            drill,
            timeline,
            &marks(&during),
            None,
            None,
            None,
            Outcome::Inconclusive,
        );
        return checks;
    }

    // After: the hypothesis must hold again, for SETTLED_ROUNDS rounds in a row.
    let base_after = metric_base(ctx, &url, probes).await;
    let deadline = removed_at + hypothesis.after.as_std();
    let mut after = Vec::new();
    let mut restored_at = None;
    loop {
        let r = round(ctx, &url, probes, &base_after, &timeline).await;
        after.push(r);
        let streak = after.iter().rev().take_while(|r| r.holds()).count();
        if streak >= SETTLED_ROUNDS {
            let first_good = &after[after.len() - streak];
            restored_at = Some(first_good.at);
            break;
        }
        if timeline.at() >= deadline {
            break;
        }
        tokio::time::sleep(interval).await;
    }

    // Alerts: each expected one must reach gauntlet's receiver, fired after the fault.
    let alert_checks = expected_alerts(ctx, drill, &mut timeline, fault_at, severity).await;

    // Detection: the first probe round that saw the fault, the first side effect, or the
    // supervisor seeing a killed process exit.
    let detected_at = during
        .iter()
        .find(|r| !r.holds())
        .map(|r| r.at)
        .into_iter()
        .chain(side_seen.iter().flatten().map(|(at, _)| *at))
        .chain(
            timeline
                .events
                .iter()
                .filter(|e| e.kind == "detected")
                .map(|e| Duration::from_millis(e.at_ms)),
        )
        .min();
    let ttd = detected_at.map(|at| at.saturating_sub(fault_at));

    // The expectation.
    let during_refs: Vec<&Round> = during.iter().collect();
    let (expect_outcome, measured, reason, ttr, bound) = match drill.expect {
        Expectation::Hold => {
            let per_probe = shares(&during_refs, probes);
            let short: Vec<String> = per_probe
                .iter()
                .filter(|(_, passed, total, tolerance)| {
                    (*passed as f64) < tolerance * *total as f64
                })
                .map(|(p, passed, total, tolerance)| {
                    format!(
                        "{p} passed {passed}/{total} (needs {:.0}%)",
                        tolerance * 100.0
                    )
                })
                .collect();
            let measured = per_probe
                .iter()
                .map(|(p, passed, total, _)| format!("{p} {passed}/{total}"))
                .collect::<Vec<_>>()
                .join(", ");
            if during.is_empty() {
                (
                    Outcome::Inconclusive,
                    measured,
                    "no probe round ran during the faults".to_string(),
                    None,
                    None,
                )
            } else if short.is_empty() {
                (
                    Outcome::Pass,
                    measured,
                    "the steady state held throughout the faults".to_string(),
                    None,
                    None,
                )
            } else {
                let last = during
                    .iter()
                    .rev()
                    .find(|r| !r.holds())
                    .map(Round::failures)
                    .unwrap_or_default();
                (
                    Outcome::Fail,
                    measured,
                    format!("the steady state broke: {}; e.g. {last}", short.join(", ")),
                    None,
                    None,
                )
            }
        }
        Expectation::RecoverWithin(bound) => {
            // Recovered at the first round from which every later round during the faults
            // holds. A killed process must also answer its health check again; when no probe
            // round ever saw the outage, that 10 ms health poll is the finer measure.
            let tail = during.iter().rev().take_while(|r| r.holds()).count();
            let steady = (tail > 0).then(|| during[during.len() - tail].at);
            let recovered = match (steady, killed.is_empty(), health_back) {
                (steady, true, _) => steady,
                (Some(_), false, Some(health)) if tail == during.len() => Some(health),
                (Some(at), false, Some(health)) => Some(at.max(health)),
                (_, false, _) => None,
            };
            let ttr = recovered.map(|at| at.saturating_sub(fault_at));
            if let Some(at) = steady {
                timeline.events.push(DrillEvent {
                    at_ms: at.as_millis() as u64,
                    kind: "steady".into(),
                    detail: format!(
                        "the steady state holds from here to the end of the drill ({tail} rounds)"
                    ),
                });
            }
            match ttr {
                Some(ttr) if ttr <= bound.as_std() => (
                    Outcome::Pass,
                    format!("recovered in {:.2}s", ttr.as_secs_f64()),
                    "the steady state came back within its bound".to_string(),
                    Some(ttr),
                    Some(bound.as_std()),
                ),
                Some(ttr) => (
                    Outcome::Fail,
                    format!("recovered in {:.2}s", ttr.as_secs_f64()),
                    format!("recovery took longer than {bound}"),
                    Some(ttr),
                    Some(bound.as_std()),
                ),
                None => (
                    Outcome::Fail,
                    "not recovered".to_string(),
                    format!(
                        "the steady state did not come back during the drill ({}); last: {}",
                        drill.duration,
                        during.last().map(Round::failures).unwrap_or_default()
                    ),
                    None,
                    Some(bound.as_std()),
                ),
            }
        }
    };
    let mut expect_check = check(&drill.expect.to_string())
        .threshold(match drill.expect {
            Expectation::Hold => probes
                .iter()
                .map(|p| format!("{} ≥ {}", p.name, p.tolerance))
                .collect::<Vec<_>>()
                .join(", "),
            Expectation::RecoverWithin(bound) => {
                format!("steady state again within {bound} of the fault")
            }
        })
        .measured(match ttd {
            Some(ttd) => format!("{measured}; detected after {:.2}s", ttd.as_secs_f64()),
            None => measured,
        })
        .outcome(expect_outcome, reason);
    expect_check.samples = Some(during.len() as u64);
    // A fault that did not take effect is not a drill that held.
    let not_in_force: Vec<&String> = in_force.iter().filter_map(|r| r.as_ref().err()).collect();
    if !not_in_force.is_empty() && expect_check.outcome == Outcome::Pass {
        let why = format!(
            "the steady state held, but not every fault was in force ({}): that proves nothing",
            not_in_force
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
        expect_check = expect_check.outcome(Outcome::Inconclusive, why);
    }
    checks.push(expect_check);
    let force_check = check("faults in force").threshold(
        "each fault acted (a proxy fault on traffic; a stressor holding; a file changed)",
    );
    checks.push(if not_in_force.is_empty() {
        let lines: Vec<&str> = in_force.iter().filter_map(|r| r.as_deref().ok()).collect();
        force_check.outcome(Outcome::Pass, lines.join("; "))
    } else {
        force_check.outcome(
            Outcome::Inconclusive,
            not_in_force
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        )
    });
    for (i, probe) in drill.side_effects.iter().enumerate() {
        let c = check(&format!("side effect {}", probe.name))
            .threshold("seen at least once while the faults are in");
        checks.push(match &side_seen[i] {
            Some((at, detail)) => c
                .measured(format!(
                    "after {:.2}s",
                    at.saturating_sub(fault_at).as_secs_f64()
                ))
                .outcome(Outcome::Pass, detail.clone()),
            None => c.outcome(
                Outcome::Fail,
                format!(
                    "`{}` was never seen during the {} drill (last look: {})",
                    probe.name, drill.duration, side_last[i]
                ),
            ),
        });
    }
    checks.extend(alert_checks);
    let after_check = check("steady state after").threshold(format!(
        "holds again within {} of the faults coming out",
        hypothesis.after
    ));
    checks.push(match restored_at {
        Some(at) => {
            timeline.note(
                ctx,
                "restored",
                "steady state holds again after the faults came out",
            );
            after_check
                .measured(format!(
                    "{:.2}s after removal",
                    at.saturating_sub(removed_at).as_secs_f64()
                ))
                .outcome(Outcome::Pass, "the hypothesis holds again")
        }
        None => after_check.outcome(
            Outcome::Fail,
            format!(
                "still broken {} after the faults came out: {}",
                hypothesis.after,
                after.last().map(Round::failures).unwrap_or_default()
            ),
        ),
    });
    checks.push(
        check("faults undone")
            .threshold("every fault out and verified (proxy clear, process running, file identical, fill removed)")
            .outcome(if undone_ok { Outcome::Pass } else { Outcome::Fail }, undo_lines.join("; ")),
    );
    let worst = checks
        .iter()
        .map(|c| c.outcome)
        .max_by_key(|o| rank(*o))
        .unwrap_or(Outcome::Pass);
    timeline.note(ctx, "end", worst.as_str());
    let rounds: Vec<(Duration, bool)> = [&before, &during, &after]
        .into_iter()
        .flat_map(|r| marks(r))
        .collect();
    finish(ctx, drill, timeline, &rounds, ttd, ttr, bound, worst);
    checks
}

fn marks(rounds: &[Round]) -> Vec<(Duration, bool)> {
    rounds.iter().map(|r| (r.at, r.holds())).collect()
}

fn rank(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Pass | Outcome::Skipped => 0,
        Outcome::Warn => 1,
        Outcome::Inconclusive => 2,
        Outcome::Fail => 3,
    }
}

/// Waits for the drill's expected alerts (see `alerting`) and puts each arrival on the
/// drill's timeline.
async fn expected_alerts(
    ctx: &RunContext,
    drill: &Drill,
    timeline: &mut Timeline,
    fault_at: Duration,
    severity: Severity,
) -> Vec<Check> {
    let fault_instant = timeline.started + fault_at;
    let expected: Vec<_> = drill.alerts.iter().collect();
    let prefix = format!("{}: ", drill.name);
    let (checks, arrivals) =
        super::alerting::wait_for(ctx, STEP, &prefix, &expected, fault_instant, severity).await;
    for arrival in arrivals {
        let at = arrival.after + fault_at;
        timeline.events.push(DrillEvent {
            at_ms: at.as_millis() as u64,
            kind: "alert".into(),
            detail: format!(
                "{} reached gauntlet's receiver via Alertmanager ({})",
                arrival.name, arrival.receiver
            ),
        });
        ctx.recorder.event(
            Some(STEP),
            "drill-alert",
            format!(
                "{} +{:.2}s alert: {} notified {:.2}s after the fault",
                drill.name,
                at.as_secs_f64(),
                arrival.name,
                arrival.after.as_secs_f64()
            ),
        );
        timeline
            .alerts
            .insert(arrival.name, arrival.after.as_millis() as u64);
    }
    checks
}

#[allow(clippy::too_many_arguments)]
fn finish(
    ctx: &RunContext,
    drill: &Drill,
    timeline: Timeline,
    rounds: &[(Duration, bool)],
    ttd: Option<Duration>,
    ttr: Option<Duration>,
    bound: Option<Duration>,
    outcome: Outcome,
) {
    let mut events = timeline.events;
    events.sort_by_key(|e| e.at_ms);
    let svg = gauntlet_report::svg::timeline(&drill.name, &events, rounds);
    let svg = ctx
        .recorder
        .evidence(STEP, &format!("drill-{}.svg", drill.name), svg.as_bytes())
        .ok();
    ctx.recorder.push_drill(DrillReport {
        step: STEP.into(),
        name: drill.name.clone(),
        expect: drill.expect.to_string(),
        outcome,
        time_to_detect_ms: ttd.map(|d| d.as_millis() as u64),
        time_to_recover_ms: ttr.map(|d| d.as_millis() as u64),
        recovery_bound_ms: bound.map(|d| d.as_millis() as u64),
        time_to_alert_ms: timeline.alerts,
        events,
        svg,
    });
}
