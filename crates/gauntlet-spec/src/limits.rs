//! What a spec that validates may ask of the host and of the clock. Every size, count, rate and
//! duration a run acts on has a bound, so a valid spec cannot exhaust this machine (memory,
//! disk, descriptors, threads) or hang a run by construction; values that fail by construction
//! (a zero ready timeout, a zero bake) are refused. The whole run has a ceiling (`timeout:`,
//! two hours by default): a spec whose worst case is longer must raise it, where anyone
//! reading the spec sees it, and the engine stops a run that reaches it.
//!
//! Each finding names the key path of the offending value, for a located diagnostic.

use std::time::Duration as StdDuration;

use crate::drills::{ChaosStep, FaultSpec, FaultType};
use crate::model::Spec;
use crate::units::Duration;

/// What this machine has, for the bounds that are relative to it.
#[derive(Debug, Clone, Copy)]
pub struct Host {
    /// Bytes of memory (`MemTotal`).
    pub memory: u64,
    pub cpus: u32,
}

impl Host {
    /// This machine (when unknown: 1 GiB and one CPU, the cautious guess).
    pub fn this() -> Host {
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
                let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                kib.checked_mul(1024)
            })
            .unwrap_or(1 << 30);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        Host { memory, cpus }
    }
}

/// The ceiling of a run when the spec gives none.
pub const DEFAULT_TIMEOUT: StdDuration = StdDuration::from_secs(2 * 3600);
/// No ceiling beyond this, however a spec asks.
pub const MAX_TIMEOUT: StdDuration = StdDuration::from_secs(7 * 24 * 3600);

const MINUTE: StdDuration = StdDuration::from_secs(60);
const HOUR: StdDuration = StdDuration::from_secs(3600);

/// A bound that does not hold, at `path`.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub path: String,
    pub message: String,
    pub help: String,
}

struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, path: impl Into<String>, message: String, help: impl Into<String>) {
        self.0.push(Finding {
            path: path.into(),
            message,
            help: help.into(),
        });
    }

    /// `value` must be above zero (unless `zero_ok`) and at most `max`.
    fn duration(&mut self, path: &str, value: Duration, zero_ok: bool, max: StdDuration) {
        let std = value.as_std();
        if std.is_zero() && !zero_ok {
            self.add(
                path,
                format!("`{}` is {value}: it must be above zero", leaf(path)),
                "a zero wait fails by construction; give the time it really needs",
            );
        } else if std > max {
            self.add(
                path,
                format!(
                    "`{}` is {value}, more than the {} this may take",
                    leaf(path),
                    human(max)
                ),
                format!("at most {}", human(max)),
            );
        }
    }

    fn count(&mut self, path: &str, value: u64, max: u64) {
        if value > max {
            self.add(
                path,
                format!("`{}` is {value}, more than {max}", leaf(path)),
                format!("at most {max}: larger values exhaust the host before they prove anything"),
            );
        }
    }

    fn rate(&mut self, path: &str, per_second: f64) {
        if per_second < 1.0 / 60.0 {
            self.add(
                path,
                format!("`{}` is less than one request a minute", leaf(path)),
                "a step would wait for hours between requests: give at least `1/m`",
            );
        } else if per_second > 100_000.0 {
            self.add(
                path,
                format!("`{}` is more than 100,000 requests a second", leaf(path)),
                "at most `100000/s` from one machine",
            );
        }
    }
}

fn leaf(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// A duration in one unit, rounded up, as the spec writes it: `90s`, `25m`, `30h`, `12d`.
pub fn human(d: StdDuration) -> String {
    let secs = d.as_secs_f64();
    let (unit, size) = match secs {
        s if s < 120.0 => ("s", 1.0),
        s if s < 7200.0 => ("m", 60.0),
        s if s < 172_800.0 => ("h", 3600.0),
        _ => ("d", 86_400.0),
    };
    format!("{}{unit}", (secs / size).ceil().max(1.0) as u64)
}

/// Every bound `spec` breaks on `host`.
pub fn check(spec: &Spec, host: &Host) -> Vec<Finding> {
    let mut f = Findings(Vec::new());
    let launches = spec
        .dependencies
        .iter()
        .map(|(name, l)| (format!("dependencies.{name}"), &l.value))
        .chain(
            spec.targets
                .baseline
                .iter()
                .map(|l| ("targets.baseline".to_string(), &l.value)),
        )
        .chain(std::iter::once((
            "targets.candidate".to_string(),
            &spec.targets.candidate.value,
        )));
    for (path, launch) in launches {
        f.duration(
            &format!("{path}.ready_timeout"),
            launch.ready_timeout,
            false,
            10 * MINUTE,
        );
    }
    f.rate("traffic.rate", spec.traffic.rate.per_second());
    if let Some(timeout) = spec.timeout {
        f.duration("timeout", timeout, false, MAX_TIMEOUT);
    }
    let steps = &spec.steps;
    if let Some(chaos) = &steps.chaos {
        check_chaos(&mut f, chaos, host);
    }
    if let Some(dr) = &steps.dr {
        f.duration("steps.dr.after_backup", dr.after_backup, true, 10 * MINUTE);
        f.duration("steps.dr.rpo", dr.rpo, false, MAX_TIMEOUT);
        f.duration("steps.dr.rto", dr.rto, false, MAX_TIMEOUT);
        f.count(
            "steps.dr.markers.before",
            u64::from(dr.markers.value.before),
            10_000,
        );
    }
    if let Some(security) = &steps.security
        && let Some(burst) = &security.rate_limit
    {
        let at = "steps.security.rate_limit";
        f.count(
            &format!("{at}.within"),
            u64::from(burst.within.get()),
            100_000,
        );
        f.count(
            &format!("{at}.concurrency"),
            u64::from(burst.concurrency.get()),
            256,
        );
        f.duration(
            &format!("{at}.max_duration"),
            burst.max_duration,
            false,
            10 * MINUTE,
        );
    }
    if let Some(observability) = &steps.observability {
        let at = "steps.observability.requests";
        f.count(at, u64::from(observability.requests.get()), 100_000);
    }
    if let Some(rehearsal) = &steps.rollback_rehearsal {
        let at = "steps.rollback_rehearsal";
        f.duration(&format!("{at}.latency"), rehearsal.latency, true, MINUTE);
        f.duration(
            &format!("{at}.detect_within"),
            rehearsal.detect_within,
            false,
            HOUR,
        );
        f.duration(&format!("{at}.rto"), rehearsal.rto, false, HOUR);
        f.count(
            &format!("{at}.recovery_samples"),
            u64::from(rehearsal.recovery_samples),
            100_000,
        );
        if let Some(sli) = &rehearsal.sli {
            f.count(
                &format!("{at}.sli.requests"),
                u64::from(sli.requests),
                100_000,
            );
        }
        for (i, fault) in rehearsal.faults.iter().enumerate() {
            check_fault(&mut f, &format!("{at}.faults[{i}]"), &fault.value, host);
        }
        for (i, alert) in rehearsal.alerts.iter().enumerate() {
            f.duration(
                &format!("{at}.alerts[{i}].within"),
                alert.value.within,
                false,
                30 * MINUTE,
            );
        }
    }
    if let Some(canary) = &steps.canary {
        let at = "steps.canary";
        if let Some(rate) = canary.rate {
            f.rate(&format!("{at}.rate"), rate.per_second());
        }
        f.count(
            &format!("{at}.connections"),
            u64::from(canary.connections.get()),
            1024,
        );
        for (i, stage) in canary.stages.value.iter().enumerate() {
            f.duration(
                &format!("{at}.stages[{i}].bake"),
                stage.bake,
                false,
                24 * HOUR,
            );
            f.count(
                &format!("{at}.stages[{i}].min_samples"),
                u64::from(stage.min_samples),
                10_000_000,
            );
        }
    }
    if let Some(prometheus) = &spec.prometheus {
        f.duration("prometheus.timeout", prometheus.timeout, false, 5 * MINUTE);
        f.count("prometheus.retries", u64::from(prometheus.retries), 10);
        if prometheus.scrape_interval.as_std() < StdDuration::from_millis(100) {
            f.add(
                "prometheus.scrape_interval",
                format!(
                    "`scrape_interval` is {}: below 100ms",
                    prometheus.scrape_interval
                ),
                "at least `100ms`",
            );
        }
        f.duration(
            "prometheus.scrape_interval",
            prometheus.scrape_interval,
            false,
            MINUTE,
        );
        if let Some(am) = &prometheus.alertmanager {
            f.duration(
                "prometheus.alertmanager.group_wait",
                am.group_wait,
                true,
                5 * MINUTE,
            );
        }
    }
    if let Some(gates) = &spec.gates {
        f.count("gates.history", u64::from(gates.history), 1000);
    }
    check_ceiling(&mut f, spec);
    f.0
}

fn check_chaos(f: &mut Findings, chaos: &ChaosStep, host: &Host) {
    let at = "steps.chaos";
    let interval = chaos.interval.as_std();
    if interval < StdDuration::from_millis(10) && !interval.is_zero() {
        f.add(
            format!("{at}.interval"),
            format!("`interval` is {}: below 10ms", chaos.interval),
            "probes need at least `10ms` between rounds",
        );
    }
    f.duration(&format!("{at}.interval"), chaos.interval, false, MINUTE);
    if let Some(h) = &chaos.steady_state {
        check_hypothesis(f, &format!("{at}.steady_state"), h);
    }
    for (i, drill) in chaos.drills.value.iter().enumerate() {
        let at = format!("{at}.drills[{i}]");
        f.duration(
            &format!("{at}.duration"),
            drill.duration,
            false,
            30 * MINUTE,
        );
        if let Some(h) = &drill.steady_state {
            check_hypothesis(f, &format!("{at}.steady_state"), h);
        }
        for (j, fault) in drill.faults.iter().enumerate() {
            check_fault(f, &format!("{at}.faults[{j}]"), &fault.value, host);
        }
        for (j, alert) in drill.alerts.iter().enumerate() {
            f.duration(
                &format!("{at}.alerts[{j}].within"),
                alert.within,
                false,
                30 * MINUTE,
            );
        }
    }
}

fn check_hypothesis(f: &mut Findings, at: &str, h: &crate::drills::Hypothesis) {
    f.duration(&format!("{at}.before"), h.before, true, 10 * MINUTE);
    f.duration(&format!("{at}.after"), h.after, false, 30 * MINUTE);
    for (i, probe) in h.probes.iter().enumerate() {
        if let Some(command) = &probe.command {
            f.duration(
                &format!("{at}.probes[{i}].command.timeout"),
                command.timeout,
                false,
                10 * MINUTE,
            );
        }
        if let Some(within) = probe.http.as_ref().and_then(|h| h.within) {
            f.duration(
                &format!("{at}.probes[{i}].http.within"),
                within,
                false,
                10 * MINUTE,
            );
        }
    }
}

fn check_fault(f: &mut Findings, at: &str, fault: &FaultSpec, host: &Host) {
    for (key, value) in [
        ("latency", fault.latency),
        ("jitter", fault.jitter),
        ("after", fault.after),
        ("delay", fault.delay),
    ] {
        if let Some(value) = value {
            f.duration(&format!("{at}.{key}"), value, true, 10 * MINUTE);
        }
    }
    if let Some(duration) = fault.duration {
        f.duration(&format!("{at}.duration"), duration, false, 30 * MINUTE);
    }
    match fault.kind {
        FaultType::Corrupt => {
            if let Some(bytes) = fault.bytes {
                f.count(&format!("{at}.bytes"), bytes, 1_000_000);
            }
        }
        FaultType::DropBytes => {
            if let Some(bytes) = fault.bytes {
                f.count(&format!("{at}.bytes"), bytes, 1 << 30);
            }
        }
        FaultType::Cpu => {
            if let Some(threads) = fault.threads {
                let max = u64::from(host.cpus) * 4;
                if u64::from(threads) > max {
                    f.add(
                        format!("{at}.threads"),
                        format!(
                            "`threads` is {threads}, more than four per CPU of this host ({} CPUs)",
                            host.cpus
                        ),
                        format!(
                            "at most {max}: more busy threads add no pressure, only scheduling"
                        ),
                    );
                }
            }
        }
        FaultType::Memory => {
            let max = host.memory / 4 * 3;
            if let Some(size) = fault.size.filter(|s| s.bytes() > max) {
                f.add(
                    format!("{at}.size"),
                    format!(
                        "`size` is {size}, more than three quarters of this host's memory ({} MiB)",
                        host.memory >> 20
                    ),
                    format!(
                        "at most {} MiB: beyond that the drill hurts the host, not the service",
                        max >> 20
                    ),
                );
            }
        }
        FaultType::Disk => {
            if let Some(size) = fault.size {
                f.count(&format!("{at}.size"), size.bytes(), 100 << 30);
            }
        }
        _ => {}
    }
}

/// The longest each part of a run can take, by the spec's own timeouts and durations.
pub fn worst_case(spec: &Spec) -> Vec<(String, StdDuration)> {
    let mut parts = Vec::new();
    let launches: StdDuration = spec
        .dependencies
        .values()
        .map(|l| l.value.ready_timeout.as_std())
        .chain(
            spec.targets
                .baseline
                .iter()
                .map(|l| l.value.ready_timeout.as_std()),
        )
        .chain([spec.targets.candidate.value.ready_timeout.as_std()])
        .sum();
    parts.push(("setup (every ready_timeout)".to_string(), launches));
    let steps = &spec.steps;
    if let Some(chaos) = &steps.chaos {
        for drill in &chaos.drills.value {
            let h = drill.steady_state.as_ref().or(chaos.steady_state.as_ref());
            let (before, after) = h.map_or((StdDuration::ZERO, StdDuration::ZERO), |h| {
                (h.before.as_std(), h.after.as_std())
            });
            let alerts = drill
                .alerts
                .iter()
                .map(|a| a.within.as_std())
                .max()
                .unwrap_or_default();
            parts.push((
                format!("chaos drill `{}`", drill.name),
                before + drill.duration.as_std() + after + alerts,
            ));
        }
    }
    if let Some(dr) = &steps.dr {
        parts.push((
            "dr".to_string(),
            dr.after_backup.as_std() + spec.targets.candidate.value.ready_timeout.as_std() + MINUTE,
        ));
    }
    if let Some(security) = &steps.security {
        let burst = security
            .rate_limit
            .as_ref()
            .map_or(StdDuration::ZERO, |b| b.max_duration.as_std());
        parts.push(("security".to_string(), burst + MINUTE));
    }
    if let Some(observability) = &steps.observability {
        let seconds = f64::from(observability.requests.get()) / spec.traffic.rate.per_second();
        parts.push((
            "observability".to_string(),
            StdDuration::from_secs_f64(seconds.min(1e9)) + MINUTE,
        ));
    }
    if let Some(r) = &steps.rollback_rehearsal {
        let alerts = r
            .alerts
            .iter()
            .map(|a| a.value.within.as_std())
            .max()
            .unwrap_or_default();
        parts.push((
            "rollback_rehearsal".to_string(),
            r.detect_within.as_std() + r.rto.as_std() + alerts + MINUTE,
        ));
    }
    if let Some(canary) = &steps.canary {
        let bakes: StdDuration = canary.stages.value.iter().map(|s| s.bake.as_std()).sum();
        parts.push(("canary (every bake)".to_string(), bakes));
    }
    if steps.rotation.is_some() || steps.preflight.is_some() {
        parts.push(("preflight and rotation".to_string(), MINUTE));
    }
    parts
}

/// The ceiling a run stops at: the spec's `timeout`, else the default.
pub fn ceiling(spec: &Spec) -> StdDuration {
    spec.timeout.map_or(DEFAULT_TIMEOUT, |t| t.as_std())
}

fn check_ceiling(f: &mut Findings, spec: &Spec) {
    let mut parts = worst_case(spec);
    let total: StdDuration = parts.iter().map(|(_, d)| *d).sum();
    let limit = ceiling(spec);
    if total <= limit {
        return;
    }
    parts.sort_by_key(|p| std::cmp::Reverse(p.1));
    let biggest: Vec<String> = parts
        .iter()
        .take(3)
        .map(|(what, d)| format!("{what} {}", human(*d)))
        .collect();
    f.add(
        if spec.timeout.is_some() {
            "timeout"
        } else {
            "schema_version"
        },
        format!(
            "this run may take up to {} (mostly {}), past its ceiling of {}",
            human(total),
            biggest.join(", "),
            human(limit)
        ),
        format!(
            "shorten those, or raise the ceiling where readers see it: `timeout: {}` at the top (at most {})",
            human(total + MINUTE),
            human(MAX_TIMEOUT)
        ),
    );
}
