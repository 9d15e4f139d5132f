//! What a spec that validates may ask of the host and of the clock. Every size, count, rate and
//! duration a run acts on has a bound, so a valid spec cannot exhaust this machine (memory,
//! disk, descriptors, threads) or hang a run by construction; values that fail by construction
//! (a zero ready timeout, a zero bake) are refused. The whole run has a ceiling (`timeout:`,
//! two hours by default): a spec whose worst case is longer must raise it, where anyone
//! reading the spec sees it, and the engine stops a run that reaches it.
//!
//! Each finding names the key path of the offending value, for a located diagnostic.

use std::time::Duration as StdDuration;

use crate::model::Spec;
use crate::steps::StepName;
use crate::validate::{Context, Problems};

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

pub(crate) const MINUTE: StdDuration = StdDuration::from_secs(60);
pub(crate) const HOUR: StdDuration = StdDuration::from_secs(3600);

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

/// The ceiling a run stops at: the spec's `timeout`, else the default.
pub fn ceiling(spec: &Spec) -> StdDuration {
    spec.timeout.map_or(DEFAULT_TIMEOUT, |t| t.as_std())
}

/// The longest each part of a run of `steps` can take, by the spec's own timeouts and
/// durations.
pub fn worst_case(spec: &Spec, steps: &[StepName]) -> Vec<(String, StdDuration)> {
    let cx = Context {
        spec,
        host: Host::this(),
        drills: &[],
        skip_drills: &[],
    };
    worst_case_in(&cx, steps)
}

fn worst_case_in(cx: &Context<'_>, steps: &[StepName]) -> Vec<(String, StdDuration)> {
    let spec = cx.spec;
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
    let mut parts = vec![("setup (every ready_timeout)".to_string(), launches)];
    for section in spec.sections() {
        if steps.contains(&section.step()) {
            parts.extend(section.worst_case(cx));
        }
    }
    parts
}

/// A run of `steps` must fit its ceiling by the spec's own worst case.
pub(crate) fn check_ceiling(cx: &Context<'_>, p: &mut Problems<'_>, steps: &[StepName]) {
    let spec = cx.spec;
    let mut parts = worst_case_in(cx, steps);
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
    p.key(
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
        Some(format!(
            "shorten those, or raise the ceiling where readers see it: `timeout: {}` at the top (at most {})",
            human(total + MINUTE),
            human(MAX_TIMEOUT)
        )),
    );
}
