//! One drill, as phases: **check** the steady state holds (else the drill is inconclusive:
//! we do not break a broken system), **inject** the faults through the cleanup journal,
//! **observe** probes and side effects while they are in, **undo** them and verify, then
//! **verify** the steady state comes back, the alerts arrived, and what was expected
//! happened. Each phase returns what it learnt; [`run`] strings them together.

use std::time::{Duration, SystemTime};

use gauntlet_report::{Check, Outcome, Severity};
use gauntlet_spec::{ChaosPlan, DrillPlan, Expectation, Restart};

use super::STEP;
use super::chaostoolkit::{self, Record};
use super::expect::{Judged, judge};
use super::rounds::{Prober, Round, marks, shares};
use crate::context::RunContext;
use crate::faults::inject::{self, Applied};
use crate::steps::StepOutput;
use crate::timeline::{Timeline, Times};

/// Consecutive passing rounds that count as "holds again".
const SETTLED_ROUNDS: usize = 3;

/// Runs one drill; its checks are `chaos.DRILL: WHAT`.
pub(super) async fn run(ctx: &RunContext, chaos: &ChaosPlan, plan: &DrillPlan) -> StepOutput {
    let mut drill = Drill::new(ctx, chaos, plan);
    let Some(before) = drill.check().await else {
        return drill.end(Outcome::Inconclusive, &[], Times::default());
    };
    let mut injected = drill.inject().await;
    let observed = drill.observe(&mut injected).await;
    let undone = drill.undo(&mut injected).await;
    if let Some(error) = injected.error.take() {
        return drill.stopped(&error, &undone, &observed.rounds);
    }
    let settled = drill.settle(undone.at).await;
    let (mut alerts, paged) = drill.alerts(injected.fault_at).await;
    if let Some(paged) = paged {
        alerts.push(drill.acknowledged(paged).await);
    }
    drill.verify(before, &injected, observed, undone, settled, alerts)
}

struct Drill<'a> {
    ctx: &'a RunContext,
    plan: &'a DrillPlan,
    interval: Duration,
    severity: Severity,
    prober: Prober<'a>,
    timeline: Timeline,
    checks: Vec<Check>,
    /// What the drill measured besides its times (a disk I/O load's rates, the probes'
    /// latency while the faults were in).
    measurements: Vec<(String, f64)>,
    /// The response runbook, once it ran: its report, and what it changed to put back.
    runbook: Option<crate::runbook::Executed>,
    /// When it started (wall clock), and what it did: for its Chaos Toolkit journal.
    started: SystemTime,
    record: Record,
}

/// The faults that went in, and when.
struct Injected {
    /// Each applied fault with when it comes out by itself, if it has its own duration.
    applied: Vec<(Applied, Option<Duration>)>,
    fault_at: Duration,
    /// A fault that could not be applied ends the drill.
    error: Option<String>,
    killed: Vec<(String, Restart)>,
    /// When every killed process answered its health check again.
    health_back: Option<Duration>,
}

/// What was seen while the faults were in.
struct Observed {
    rounds: Vec<Round>,
    /// Per side effect: when it was first seen, and what the probe said; else what it said last.
    side_effects: Vec<Result<(Duration, String), String>>,
    /// Whether each fault took effect, checked before it came out.
    in_force: Vec<Result<String, String>>,
    /// The safeguard that stopped the drill: when, and what it said.
    breached: Option<(Duration, String)>,
}

/// The faults out, verified.
struct Undone {
    ok: bool,
    lines: Vec<String>,
    at: Duration,
}

/// The steady state after the faults.
struct Settled {
    rounds: Vec<Round>,
    restored_at: Option<Duration>,
}

impl<'a> Drill<'a> {
    fn new(ctx: &'a RunContext, chaos: &ChaosPlan, plan: &'a DrillPlan) -> Self {
        let url = ctx
            .systems
            .get("candidate")
            .map(|s| s.drill_url())
            .unwrap_or_else(|| ctx.candidate.clone());
        let mut timeline = Timeline::start(STEP, &plan.name);
        timeline.note(
            &ctx.recorder,
            "start",
            plan.description
                .clone()
                .unwrap_or_else(|| format!("expect {}", plan.expect)),
        );
        Self {
            ctx,
            plan,
            interval: chaos.interval.as_std(),
            severity: super::super::severity(&chaos.meta),
            prober: Prober { ctx, url },
            timeline,
            checks: Vec::new(),
            measurements: Vec::new(),
            runbook: None,
            started: SystemTime::now(),
            record: Record::default(),
        }
    }

    fn check_named(&self, what: &str) -> Check {
        Check::new(STEP, &format!("{}: {what}", self.plan.name), self.severity)
    }

    fn note(&mut self, kind: &str, detail: impl Into<String>) -> Duration {
        self.timeline.note(&self.ctx.recorder, kind, detail)
    }

    /// Check: the hypothesis must hold before any fault, or the drill does not break
    /// anything. Returns the rounds it took, or `None` (the drill is then inconclusive).
    async fn check(&mut self) -> Option<Vec<Round>> {
        let hypothesis = &self.plan.steady_state;
        let probes = &hypothesis.probes;
        let base = self.prober.base(probes).await;
        let mut before = Vec::new();
        let until = self.timeline.at() + hypothesis.before.as_std();
        loop {
            before.push(self.prober.round(probes, &base, &self.timeline).await);
            if self.timeline.at() >= until {
                break;
            }
            tokio::time::sleep(self.interval).await;
        }
        let broken: Vec<String> = shares(&before, probes)
            .iter()
            .filter(|s| s.short())
            .map(|s| format!("{} {}/{}", s.probe, s.passed, s.total))
            .collect();
        let steady = self
            .check_named("steady state before")
            .threshold(format!("the hypothesis holds for {}", hypothesis.before));
        self.record.before = before.clone();
        self.record.held_before = broken.is_empty();
        if broken.is_empty() {
            self.checks.push(
                steady
                    .measured(format!("{} rounds", before.len()))
                    .outcome(Outcome::Pass, "the hypothesis held before the faults"),
            );
            self.note("steady-state", format!("held for {} rounds", before.len()));
            return Some(before);
        }
        // The last failures, when the last round had any (a probe can be short of its
        // tolerance with the last round passing).
        let last = before
            .iter()
            .rev()
            .map(Round::failures)
            .find(|f| !f.is_empty())
            .map(|f| format!("; last failure: {f}"))
            .unwrap_or_default();
        let why = format!(
            "the hypothesis does not hold before any fault ({}){last}",
            broken.join(", ")
        );
        self.note("end", "not run: the system is not in its steady state");
        self.checks.push(steady.outcome(Outcome::Inconclusive, why));
        None
    }

    /// Inject: every fault through the journal; a failure to apply one stops the rest.
    /// Killed processes are seen to exit, restarted (`restart: gauntlet`) or left to their
    /// supervisor, and timed until they answer their health check again (10 ms grain).
    async fn inject(&mut self) -> Injected {
        let ctx = self.ctx;
        let mut applied = Vec::new();
        let mut fault_at = None;
        let mut error = None;
        for (i, fault) in self.plan.faults.iter().enumerate() {
            let seed = self.plan.seed.derive("fault", i as u64);
            match inject::apply(ctx, &self.plan.name, i, fault, seed).await {
                Ok((done, line)) => {
                    let at = self.note("fault-applied", line.clone());
                    self.record.method.push((i, at, Ok(line)));
                    fault_at.get_or_insert(at);
                    applied.push((done, fault.fault.duration.map(|d| at + d)));
                }
                Err(e) => {
                    self.record
                        .method
                        .push((i, self.timeline.at(), Err(e.clone())));
                    error = Some(e);
                    break;
                }
            }
        }
        let killed: Vec<(String, Restart)> = applied
            .iter()
            .filter_map(|(a, _)| match a {
                Applied::Killed {
                    target, restart, ..
                } => Some((target.clone(), *restart)),
                _ => None,
            })
            .collect();
        let mut injected = Injected {
            applied,
            fault_at: fault_at.unwrap_or_else(|| self.timeline.at()),
            error,
            killed,
            health_back: None,
        };
        injected.health_back = self.bring_back(&injected.killed).await;
        injected
    }

    /// When every killed process is healthy again, if every one is.
    async fn bring_back(&mut self, killed: &[(String, Restart)]) -> Option<Duration> {
        let deadline = tokio::time::Instant::now() + self.plan.duration.as_std();
        let mut back: Option<Duration> = None;
        let mut all_back = true;
        for (target, restart) in killed {
            let seen = match inject::wait_exit(self.ctx, target).await {
                Ok(()) => format!("{target} exited (seen by gauntlet's supervisor)"),
                Err(e) => e,
            };
            self.note("detected", seen);
            if *restart == Restart::Gauntlet {
                let line = inject::restart(self.ctx, target)
                    .unwrap_or_else(|e| format!("restart failed: {e}"));
                self.note("action", line);
            }
            if inject::wait_healthy(self.ctx, target, deadline).await {
                let at = self.note(
                    "recovered",
                    format!("{target} answers its health check again"),
                );
                back = Some(back.map_or(at, |b| b.max(at)));
            } else {
                all_back = false;
            }
        }
        back.filter(|_| all_back)
    }

    /// Observe: a probe round every interval while the faults are in, each side effect
    /// until it is seen; faults with a shorter duration of their own come out on time.
    async fn observe(&mut self, injected: &mut Injected) -> Observed {
        let side_effects = &self.plan.side_effects;
        let mut observed = Observed {
            rounds: Vec::new(),
            side_effects: vec![Err(String::new()); side_effects.len()],
            in_force: Vec::new(),
            breached: None,
        };
        if injected.error.is_none() {
            let probes = &self.plan.steady_state.probes;
            let side_base = self.prober.base(side_effects).await;
            let base = self.prober.base(probes).await;
            let guard_base = self.prober.base(&self.plan.safeguards).await;
            // A crash is seen as it goes in (the supervisor saw the process exit).
            if self.timeline.saw("detected") {
                self.respond().await;
            }
            let end = injected.fault_at + self.plan.duration.as_std();
            loop {
                if let Some(why) = self.breached(&guard_base).await {
                    let at = self.note("aborted", format!("safeguard breached: {why}"));
                    observed.breached = Some((at, why));
                    break;
                }
                let round = self.prober.round(probes, &base, &self.timeline).await;
                if !round.holds() && !self.timeline.saw("detected") {
                    self.note(
                        "detected",
                        format!("steady state broken: {}", round.failures()),
                    );
                    self.respond().await;
                }
                observed.rounds.push(round);
                self.look_for_side_effects(&side_base, &mut observed.side_effects)
                    .await;
                let now = self.timeline.at();
                self.expire(&mut injected.applied, now, &mut observed.in_force)
                    .await;
                if now >= end {
                    break;
                }
                tokio::time::sleep(self.interval.min(end.saturating_sub(now))).await;
            }
        }
        for (applied, _) in &injected.applied {
            observed
                .in_force
                .push(inject::in_force(self.ctx, applied).await);
            self.measure_io(applied);
        }
        self.measure_latency(&observed.rounds);
        self.record.during = observed.rounds.clone();
        self.record.aborted = observed.breached.is_some();
        observed
    }

    /// The drill's response runbook, when it has one: the decision and the action on the
    /// timeline, the runbook executed and timed.
    async fn respond(&mut self) {
        let Some((name, runbook)) = &self.plan.runbook else {
            return;
        };
        self.note("decision", format!("respond with runbook `{name}`"));
        let what = format!("{}: ", self.plan.name);
        let executed =
            crate::runbook::execute(self.ctx, (name, runbook), (STEP, &what), self.severity).await;
        self.note(
            "action",
            format!("runbook `{name}`: {}", executed.check.reason),
        );
        self.runbook = Some(executed);
    }

    /// The runbook's check, or why it never ran.
    fn runbook_check(&mut self) -> Option<Check> {
        let (name, _) = self.plan.runbook.as_ref()?;
        Some(match &self.runbook {
            Some(executed) => executed.check.clone(),
            None => self
                .check_named(&format!("runbook {name}"))
                .outcome(Outcome::Skipped, "not run: the steady state never broke"),
        })
    }

    /// The first safeguard that fails, if one does: `NAME: what it said`.
    async fn breached(&self, base: &crate::probes::MetricBase) -> Option<String> {
        for probe in &self.plan.safeguards {
            let result = self.prober.probe(probe, base).await;
            if !result.pass {
                return Some(format!("{}: {}", probe.name, result.detail));
            }
        }
        None
    }

    /// Whether the safeguards held (with safeguards only): a breach fails the drill.
    fn safeguard_check(&self, observed: &Observed, fault_at: Duration) -> Option<Check> {
        if self.plan.safeguards.is_empty() {
            return None;
        }
        let names: Vec<&str> = self
            .plan
            .safeguards
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        let check = self
            .check_named("safeguards")
            .threshold(format!("{} hold while the faults are in", names.join(", ")));
        Some(match &observed.breached {
            Some((at, why)) => check
                .measured(format!(
                    "breached {:.2}s after the fault",
                    at.saturating_sub(fault_at).as_secs_f64()
                ))
                .outcome(
                    Outcome::Fail,
                    format!("{why}; the drill stopped there and its faults were taken out"),
                ),
            None => check.outcome(Outcome::Pass, "no safeguard was breached"),
        })
    }

    /// A disk I/O load's achieved rates, as measurements beside the probes' latency.
    fn measure_io(&mut self, applied: &Applied) {
        let Applied::Io { report, .. } = applied else {
            return;
        };
        if let Some((written, read, fsyncs)) = inject::io_rates(report) {
            let at = format!("chaos.{}.io", self.plan.name);
            self.measurements.extend([
                (format!("{at}.write_bytes_per_second"), written),
                (format!("{at}.read_bytes_per_second"), read),
                (format!("{at}.fsyncs_per_second"), fsyncs),
            ]);
        }
    }

    /// The p95 of the HTTP probes' answers while the faults were in (seconds): what the
    /// service's users felt, next to what the fault did.
    fn measure_latency(&mut self, rounds: &[Round]) {
        let mut latencies: Vec<f64> = rounds
            .iter()
            .flat_map(|r| r.results.iter().filter_map(|p| p.latency))
            .map(|d| d.as_secs_f64())
            .collect();
        if latencies.is_empty() {
            return;
        }
        latencies.sort_by(f64::total_cmp);
        let at = ((latencies.len() as f64 * 0.95).ceil() as usize).clamp(1, latencies.len()) - 1;
        let name = format!("chaos.{}.probe_latency_p95", self.plan.name);
        self.measurements.push((name, latencies[at]));
    }

    async fn look_for_side_effects(
        &mut self,
        base: &crate::probes::MetricBase,
        seen: &mut [Result<(Duration, String), String>],
    ) {
        for (probe, seen) in self.plan.side_effects.iter().zip(seen.iter_mut()) {
            if seen.is_ok() {
                continue;
            }
            let result = self.prober.probe(probe, base).await;
            if result.pass {
                let at = self.note("side-effect", format!("{}: {}", probe.name, result.detail));
                *seen = Ok((at, result.detail));
            } else {
                *seen = Err(result.detail);
            }
        }
    }

    /// Takes out the faults whose own duration is over (checking first they were in force).
    async fn expire(
        &mut self,
        applied: &mut Vec<(Applied, Option<Duration>)>,
        now: Duration,
        in_force: &mut Vec<Result<String, String>>,
    ) {
        let mut i = 0;
        while i < applied.len() {
            if applied[i].1.is_some_and(|until| now >= until) {
                let (done, _) = applied.remove(i);
                in_force.push(inject::in_force(self.ctx, &done).await);
                let (line, ok) = inject::undo(self.ctx, done).await;
                let at = self.note("fault-removed", line.clone());
                self.record.rollbacks.push((at, line, ok));
            } else {
                i += 1;
            }
        }
    }

    /// Undo: every fault out, newest first, each undo verified.
    async fn undo(&mut self, injected: &mut Injected) -> Undone {
        let mut undone = Undone {
            ok: true,
            lines: Vec::new(),
            at: Duration::ZERO,
        };
        let changed = self.runbook.as_mut().map(|r| std::mem::take(&mut r.undo));
        let mut lines = crate::runbook::put_back(self.ctx, changed.unwrap_or_default()).await;
        for (done, _) in injected.applied.drain(..).rev() {
            lines.push(inject::undo(self.ctx, done).await);
        }
        for (line, ok) in lines {
            let at = self.note("fault-removed", line.clone());
            self.record.rollbacks.push((at, line.clone(), ok));
            undone.ok &= ok;
            undone.lines.push(line);
        }
        undone.at = self.timeline.at();
        undone
    }

    /// Verify, first: the hypothesis must hold again, `SETTLED_ROUNDS` rounds in a row,
    /// within its `after` of the faults coming out.
    async fn settle(&mut self, removed_at: Duration) -> Settled {
        let hypothesis = &self.plan.steady_state;
        let base = self.prober.base(&hypothesis.probes).await;
        let deadline = removed_at + hypothesis.after.as_std();
        let mut settled = Settled {
            rounds: Vec::new(),
            restored_at: None,
        };
        loop {
            let round = self
                .prober
                .round(&hypothesis.probes, &base, &self.timeline)
                .await;
            settled.rounds.push(round);
            let streak = settled
                .rounds
                .iter()
                .rev()
                .take_while(|r| r.holds())
                .count();
            if streak >= SETTLED_ROUNDS {
                settled.restored_at = Some(settled.rounds[settled.rounds.len() - streak].at);
                break;
            }
            if self.timeline.at() >= deadline {
                break;
            }
            tokio::time::sleep(self.interval).await;
        }
        self.record.after = settled.rounds.clone();
        self.record.held_after = Some(settled.restored_at.is_some());
        settled
    }

    /// Each expected alert must reach gauntlet's receiver, fired after the first fault.
    /// Also returns when the first page arrived (since the drill started), if one did.
    async fn alerts(&mut self, fault_at: Duration) -> (Vec<Check>, Option<Duration>) {
        let fault_instant = self.timeline.started() + fault_at;
        let expected: Vec<_> = self.plan.alerts.iter().collect();
        let prefix = format!("{}: ", self.plan.name);
        let (checks, arrivals) = crate::alerts::wait_for(
            self.ctx,
            STEP,
            &prefix,
            &expected,
            fault_instant,
            self.severity,
        )
        .await;
        let paged = arrivals.iter().map(|a| fault_at + a.after).min();
        for arrival in arrivals {
            self.timeline.alert(
                &self.ctx.recorder,
                &arrival.name,
                arrival.after,
                fault_at,
                &arrival.receiver,
            );
        }
        (checks, paged)
    }

    /// The page acknowledged (by an operator or the responder): on the timeline, as the
    /// MTTA measurement and check.
    async fn acknowledged(&mut self, paged: Duration) -> Check {
        let instant = self.timeline.started() + paged;
        let acked = crate::incident::acknowledged(self.ctx, &self.plan.name, instant).await;
        if let Ok((after, by)) = &acked {
            self.timeline
                .mark(paged + *after, "acknowledged", format!("the page, by {by}"));
            self.measurements.push((
                format!("chaos.{}.mtta", self.plan.name),
                after.as_secs_f64(),
            ));
        }
        let what = format!("{}: ", self.plan.name);
        crate::incident::mtta_check(self.ctx, (STEP, &what), self.severity, &acked)
    }

    /// A fault could not be applied: the drill proves nothing, but its undo still counts.
    fn stopped(mut self, error: &str, undone: &Undone, during: &[Round]) -> StepOutput {
        let expect = self.plan.expect.to_string();
        self.checks.push(self.check_named(&expect).outcome(
            Outcome::Inconclusive,
            format!("a fault could not be applied: {error}"),
        ));
        self.push_undone(undone);
        self.note("end", "stopped: a fault could not be applied");
        self.end(Outcome::Inconclusive, &marks(during), Times::default())
    }

    /// Verify, then: what was expected happened, with every fault in force; each side
    /// effect and alert was seen; the steady state came back; every fault is out.
    fn verify(
        mut self,
        before: Vec<Round>,
        injected: &Injected,
        observed: Observed,
        undone: Undone,
        settled: Settled,
        alerts: Vec<Check>,
    ) -> StepOutput {
        let judged = judge(
            self.plan,
            &observed.rounds,
            injected.fault_at,
            !injected.killed.is_empty(),
            injected.health_back,
        );
        if let Some((at, rounds)) = judged.steady_from {
            self.timeline.mark(
                at,
                "steady",
                format!(
                    "the steady state holds from here to the end of the drill ({rounds} rounds)"
                ),
            );
        }
        let detected = self.detected(&observed, injected.fault_at);
        let mut expectation = self.expectation_check(&judged, detected, &observed);
        if observed.breached.is_some() && expectation.outcome == Outcome::Pass {
            expectation = expectation.outcome(
                Outcome::Inconclusive,
                "a safeguard stopped the drill before its end: the expectation was not watched to the end",
            );
        }
        self.checks.push(expectation);
        if let Some(check) = self.safeguard_check(&observed, injected.fault_at) {
            self.checks.push(check);
        }
        if let Some(check) = self.runbook_check() {
            self.checks.push(check);
        }
        self.checks.push(self.in_force_check(&observed.in_force));
        for (probe, seen) in self.plan.side_effects.iter().zip(&observed.side_effects) {
            let check = self.side_effect_check(&probe.name, seen, injected.fault_at);
            self.checks.push(check);
        }
        self.checks.extend(alerts);
        // Something broke (a probe round failed, a process died): the time to restore it.
        let broke = observed.rounds.iter().any(|r| !r.holds()) || !injected.killed.is_empty();
        if broke {
            let what = format!("{}: ", self.plan.name);
            // Restored while the faults were in, or else once they came out.
            let restored = judged.recovered_after.or_else(|| {
                settled
                    .restored_at
                    .map(|at| at.saturating_sub(injected.fault_at))
            });
            let mttr =
                crate::incident::mttr_check(self.ctx, (STEP, &what), self.severity, restored);
            if let Some(after) = restored {
                self.measurements.push((
                    format!("chaos.{}.mttr", self.plan.name),
                    after.as_secs_f64(),
                ));
            }
            self.checks.push(mttr);
        }
        let after = self.after_check(&settled, undone.at);
        self.checks.push(after);
        self.push_undone(&undone);
        let worst = worst(&self.checks);
        self.note("end", worst.as_str());
        let rounds: Vec<(Duration, bool)> = [&before, &observed.rounds, &settled.rounds]
            .into_iter()
            .flat_map(|r| marks(r))
            .collect();
        let times = Times {
            detect: detected,
            recover: judged.recovered_after,
            bound: judged.bound,
        };
        self.end(worst, &rounds, times)
    }

    /// From the first fault to the first sign of it: a probe round that broke, a side
    /// effect, or the supervisor seeing a killed process exit.
    fn detected(&self, observed: &Observed, fault_at: Duration) -> Option<Duration> {
        observed
            .rounds
            .iter()
            .find(|r| !r.holds())
            .map(|r| r.at)
            .into_iter()
            .chain(observed.side_effects.iter().flatten().map(|(at, _)| *at))
            .chain(self.timeline.when("detected"))
            .min()
            .map(|at| at.saturating_sub(fault_at))
    }

    fn expectation_check(
        &self,
        judged: &Judged,
        detected: Option<Duration>,
        observed: &Observed,
    ) -> Check {
        let plan = self.plan;
        let threshold = match plan.expect {
            Expectation::Hold => plan
                .steady_state
                .probes
                .iter()
                .map(|p| format!("{} ≥ {}", p.name, p.tolerance))
                .collect::<Vec<_>>()
                .join(", "),
            Expectation::RecoverWithin(bound) => {
                format!("steady state again within {bound} of the fault")
            }
        };
        let measured = match detected {
            Some(after) => format!(
                "{}; detected after {:.2}s",
                judged.measured,
                after.as_secs_f64()
            ),
            None => judged.measured.clone(),
        };
        let mut check = self
            .check_named(&plan.expect.to_string())
            .threshold(threshold)
            .measured(measured)
            .outcome(judged.outcome, judged.reason.clone());
        check.samples = Some(observed.rounds.len() as u64);
        // A fault that did not take effect is not a drill that held.
        let not_in_force = failures(&observed.in_force);
        if !not_in_force.is_empty() && check.outcome == Outcome::Pass {
            check = check.outcome(
                Outcome::Inconclusive,
                format!(
                    "the steady state held, but not every fault was in force ({not_in_force}): that proves nothing"
                ),
            );
        }
        check
    }

    fn in_force_check(&self, in_force: &[Result<String, String>]) -> Check {
        let check = self.check_named("faults in force").threshold(
            "each fault acted (a proxy fault on traffic; a stressor holding; a file changed)",
        );
        let not_in_force = failures(in_force);
        if not_in_force.is_empty() {
            let lines: Vec<&str> = in_force.iter().filter_map(|r| r.as_deref().ok()).collect();
            check.outcome(Outcome::Pass, lines.join("; "))
        } else {
            check.outcome(Outcome::Inconclusive, not_in_force)
        }
    }

    fn side_effect_check(
        &self,
        name: &str,
        seen: &Result<(Duration, String), String>,
        fault_at: Duration,
    ) -> Check {
        let check = self
            .check_named(&format!("side effect {name}"))
            .threshold("seen at least once while the faults are in");
        match seen {
            Ok((at, detail)) => check
                .measured(format!(
                    "after {:.2}s",
                    at.saturating_sub(fault_at).as_secs_f64()
                ))
                .outcome(Outcome::Pass, detail.clone()),
            Err(last) => check.outcome(
                Outcome::Fail,
                format!(
                    "`{name}` was never seen during the {} drill (last look: {last})",
                    self.plan.duration
                ),
            ),
        }
    }

    fn after_check(&mut self, settled: &Settled, removed_at: Duration) -> Check {
        let after = self.plan.steady_state.after;
        let check = self.check_named("steady state after").threshold(format!(
            "holds again within {after} of the faults coming out"
        ));
        match settled.restored_at {
            Some(at) => {
                self.note(
                    "restored",
                    "steady state holds again after the faults came out",
                );
                check
                    .measured(format!(
                        "{:.2}s after removal",
                        at.saturating_sub(removed_at).as_secs_f64()
                    ))
                    .outcome(Outcome::Pass, "the hypothesis holds again")
            }
            None => check.outcome(
                Outcome::Fail,
                format!(
                    "still broken {after} after the faults came out: {}",
                    settled
                        .rounds
                        .last()
                        .map(Round::failures)
                        .unwrap_or_default()
                ),
            ),
        }
    }

    /// The undo's check: last when it passed, first when it failed (Chaos Toolkit's users
    /// complain that a rollback that failed does not fail the experiment; here it does, and
    /// it is the first thing a reader sees).
    fn push_undone(&mut self, undone: &Undone) {
        let check = self.undone_check(undone);
        match check.outcome {
            Outcome::Fail => self.checks.insert(0, check),
            _ => self.checks.push(check),
        }
    }

    fn undone_check(&self, undone: &Undone) -> Check {
        self.check_named(gauntlet_report::UNDONE_CHECK)
            .threshold(
                "every fault out and verified (proxy clear, process running, file identical, fill removed, undo call succeeded)",
            )
            .outcome(
                if undone.ok {
                    Outcome::Pass
                } else {
                    Outcome::Fail
                },
                undone.lines.join("; "),
            )
    }

    fn end(self, outcome: Outcome, rounds: &[(Duration, bool)], times: Times) -> StepOutput {
        let svg = format!("drill-{}.svg", self.plan.name);
        let journal = self.chaostoolkit_journal();
        let mut report = self.timeline.finish(
            &self.ctx.recorder,
            &svg,
            self.plan.expect.to_string(),
            outcome,
            rounds,
            times,
        );
        report.chaostoolkit = journal;
        let mut output = StepOutput::from(self.checks);
        output.runbooks.extend(self.runbook.map(|r| r.report));
        for (name, value) in self.measurements {
            output.measure(name, value);
        }
        output.drill(report);
        output
    }
}

impl Drill<'_> {
    /// Writes the drill's Chaos Toolkit journal; its path under the run directory.
    fn chaostoolkit_journal(&self) -> Option<String> {
        let systems = self
            .ctx
            .systems
            .iter()
            .map(|(name, system)| (name.clone(), system.url.clone()))
            .collect();
        let urls = chaostoolkit::Urls {
            probes: &self.prober.url,
            systems,
        };
        let journal = chaostoolkit::journal(
            self.plan,
            &urls,
            &self.record,
            &self.checks,
            self.started,
            self.timeline.at(),
        );
        let text = serde_json::to_vec_pretty(&journal).ok()?;
        let name = format!("drill-{}.chaostoolkit.json", self.plan.name);
        self.ctx.recorder.evidence(STEP, &name, &text).ok()
    }
}

/// What did not take effect, joined.
fn failures(in_force: &[Result<String, String>]) -> String {
    in_force
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("; ")
}

fn worst(checks: &[Check]) -> Outcome {
    let rank = |o: Outcome| match o {
        Outcome::Pass | Outcome::Skipped => 0,
        Outcome::Warn => 1,
        Outcome::Inconclusive => 2,
        Outcome::Fail => 3,
    };
    checks
        .iter()
        .map(|c| c.outcome)
        .max_by_key(|o| rank(*o))
        .unwrap_or(Outcome::Pass)
}
