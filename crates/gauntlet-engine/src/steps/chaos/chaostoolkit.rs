//! A drill as a Chaos Toolkit journal (`evidence/chaos/drill-NAME.chaostoolkit.json`), so the
//! tools that read Chaos Toolkit's journals (its report generator, dashboards fed by them)
//! read gauntlet's drills too.
//!
//! The mapping: the drill is the experiment; its steady-state probes are the hypothesis
//! (HTTP probes as `http` providers, commands as `process` providers); each fault is a
//! method action (an `action` fault's calls as `process` or `http` providers, the other
//! faults as `python` providers named `gauntlet.faults.KIND`: they were applied by gauntlet,
//! and a Chaos Toolkit run cannot replay them), the last one pausing for the drill's
//! duration; each undo is a rollback. The steady state before is the last round of the check
//! (met when the hypothesis held throughout), `during` is every round while the faults were
//! in, `after` the last round of the settling (met when it held again). The status is
//! `failed` when the steady state did not hold before, a fault could not be applied, or an
//! undo failed (unlike Chaos Toolkit, where a failed rollback leaves an experiment
//! `completed`); `aborted` when a safeguard stopped the drill; else `completed`, with
//! `deviated` when the drill's expectation or the steady state after failed.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use gauntlet_report::{Check, Outcome};
use gauntlet_spec::fault::{Fault, FaultKind};
use gauntlet_spec::{Call, DrillPlan, Expectation, Probe, TargetedFault};
use serde_json::{Value, json};

use super::rounds::Round;

/// What a drill did, in the order it did it, kept for its journal.
#[derive(Default)]
pub(super) struct Record {
    pub before: Vec<Round>,
    pub held_before: bool,
    pub during: Vec<Round>,
    pub after: Vec<Round>,
    pub held_after: Option<bool>,
    /// Each fault tried, in spec order: its index, when, and what happened.
    pub method: Vec<(usize, Duration, Result<String, String>)>,
    /// Each undo: when, what it said, and whether it worked.
    pub rollbacks: Vec<(Duration, String, bool)>,
    pub aborted: bool,
}

/// Where a drill's requests went: its probes' URL, and each system's.
pub(super) struct Urls<'a> {
    pub probes: &'a str,
    pub systems: BTreeMap<String, String>,
}

/// The journal of a drill that started at `started` (wall clock) and ended `ended` later;
/// `checks` are the drill's checks.
pub(super) fn journal(
    plan: &DrillPlan,
    urls: &Urls<'_>,
    record: &Record,
    checks: &[Check],
    started: SystemTime,
    ended: Duration,
) -> Value {
    let at = |offset: Duration| timestamp(started + offset);
    let failed_undo = record.rollbacks.iter().any(|(_, _, ok)| !ok);
    let failed_fault = record.method.iter().any(|(_, _, r)| r.is_err());
    let status = if !record.held_before || failed_fault || failed_undo {
        "failed"
    } else if record.aborted {
        "aborted"
    } else {
        "completed"
    };
    let deviated = status == "completed"
        && checks.iter().any(|c| {
            c.outcome == Outcome::Fail && !c.name.ends_with(gauntlet_report::UNDONE_CHECK)
        });
    let probes = &plan.steady_state.probes;
    let state = |rounds: &[Round], met: bool| {
        json!({
            "steady_state_met": met,
            "probes": rounds.last().map(|r| probe_runs(probes, urls.probes, r, &at)).unwrap_or_default(),
        })
    };
    let during: Vec<Value> = record
        .during
        .iter()
        .map(|r| state(std::slice::from_ref(r), r.holds()))
        .collect();
    json!({
        "chaoslib-version": null,
        "gauntlet-version": env!("CARGO_PKG_VERSION"),
        "platform": format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        "node": hostname(),
        "experiment": experiment(plan, urls, checks),
        "start": at(Duration::ZERO),
        "end": at(ended),
        "duration": ended.as_secs_f64(),
        "status": status,
        "deviated": deviated,
        "steady_states": {
            "before": state(&record.before, record.held_before),
            "after": record.held_after.map(|met| state(&record.after, met)),
            "during": during,
        },
        "run": record.method.iter().map(|(i, when, result)| {
            let activity = action(plan, *i, urls);
            match result {
                Ok(line) => run(activity, "succeeded", at(*when), json!(line), None),
                Err(error) => run(activity, "failed", at(*when), Value::Null, Some(error)),
            }
        }).collect::<Vec<_>>(),
        "rollbacks": record.rollbacks.iter().enumerate().map(|(i, (when, line, ok))| {
            let activity = rollback(i, line);
            match ok {
                true => run(activity, "succeeded", at(*when), json!(line), None),
                false => run(activity, "failed", at(*when), json!(line), Some(line)),
            }
        }).collect::<Vec<_>>(),
    })
}

fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_micros(at).to_string()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// One activity's run, done at once (`at`) unless it is a probe with a latency.
fn run(activity: Value, status: &str, at: String, output: Value, error: Option<&String>) -> Value {
    let mut run = json!({
        "activity": activity,
        "output": output,
        "status": status,
        "start": at,
        "end": at,
        "duration": 0.0,
    });
    if let Some(error) = error {
        run["exception"] = json!([error]);
    }
    run
}

fn experiment(plan: &DrillPlan, urls: &Urls<'_>, checks: &[Check]) -> Value {
    let strategy = match plan.expect {
        Expectation::Hold => "continuously",
        Expectation::RecoverWithin(_) => "default",
    };
    json!({
        "version": "1.0.0",
        "title": format!("gauntlet drill {}", plan.name),
        "description": plan.description.clone().unwrap_or_else(|| format!("expect {}", plan.expect)),
        "tags": ["gauntlet", "chaos"],
        "steady-state-hypothesis": {
            "title": format!("the steady state of drill {}", plan.name),
            "probes": plan.steady_state.probes.iter().map(|p| probe(p, urls.probes)).collect::<Vec<_>>(),
        },
        "method": (0..plan.faults.len()).map(|i| action(plan, i, urls)).collect::<Vec<_>>(),
        "rollbacks": (0..plan.faults.len()).map(|i| rollback(i, "")).collect::<Vec<_>>(),
        "runtime": {"hypothesis": {"strategy": strategy}},
        "extensions": [{
            "name": "gauntlet",
            "drill": plan.name,
            "expect": plan.expect.to_string(),
            "checks": checks.iter().map(|c| json!({
                "name": c.name,
                "outcome": c.outcome.as_str(),
                "reason": c.reason,
            })).collect::<Vec<_>>(),
        }],
    })
}

/// A steady-state probe as a Chaos Toolkit probe, with the provider that does the same.
fn probe(probe: &Probe, url: &str) -> Value {
    let (provider, tolerance) = if let Some(http) = &probe.http {
        let mut provider = json!({
            "type": "http",
            "url": format!("{}{}", url.trim_end_matches('/'), http.path),
            "method": http.method.as_str(),
        });
        if !http.headers.is_empty() {
            provider["headers"] = json!(http.headers);
        }
        if let Some(body) = &http.body {
            provider["arguments"] = json!(body);
        }
        if let Some(within) = http.within {
            provider["timeout"] = json!(within.as_std().as_secs_f64());
        }
        let tolerance = match http.status.as_slice() {
            [] => json!({"type": "range", "range": [200, 299], "target": "status"}),
            [one] => json!(one),
            many => json!(many),
        };
        (provider, tolerance)
    } else if let Some(command) = &probe.command {
        let provider = json!({
            "type": "process",
            "path": command.run.first().cloned().unwrap_or_default(),
            "arguments": command.run.get(1..).unwrap_or_default(),
            "timeout": command.timeout.as_std().as_secs_f64(),
        });
        (provider, json!(command.exit))
    } else if let Some(metric) = &probe.metric {
        let provider = json!({
            "type": "http",
            "url": format!("{}{}", url.trim_end_matches('/'), metric.path),
            "method": "GET",
        });
        let tolerance = json!({
            "type": "range",
            "range": [metric.min, metric.max],
            "target": metric.name,
        });
        (provider, tolerance)
    } else {
        (
            json!({"type": "python", "module": "gauntlet.probes", "func": "none"}),
            Value::Null,
        )
    };
    json!({"type": "probe", "name": probe.name, "tolerance": tolerance, "provider": provider})
}

/// The rounds' probe results as probe runs.
fn probe_runs(
    probes: &[Probe],
    url: &str,
    round: &Round,
    at: &dyn Fn(Duration) -> String,
) -> Vec<Value> {
    probes
        .iter()
        .zip(&round.results)
        .map(|(p, result)| {
            let took = result.latency.unwrap_or_default();
            let mut output = json!({ "detail": result.detail });
            if let Some(latency) = result.latency {
                output["latency_ms"] = json!(latency.as_secs_f64() * 1000.0);
            }
            json!({
                "activity": probe(p, url),
                "output": output,
                "status": "succeeded",
                "start": at(round.at),
                "end": at(round.at + took),
                "duration": took.as_secs_f64(),
                "tolerance_met": result.pass,
            })
        })
        .collect()
}

/// Fault `i` as a method action; the last one pauses for the drill's duration.
fn action(plan: &DrillPlan, i: usize, urls: &Urls<'_>) -> Value {
    let Some(TargetedFault { target, fault }) = plan.faults.get(i) else {
        return Value::Null;
    };
    let provider = match &fault.kind {
        FaultKind::Action { apply, .. } => call_provider(apply, &urls.systems),
        _ => json!({
            "type": "python",
            "module": "gauntlet.faults",
            "func": fault.kind.name(),
            "arguments": arguments(target, fault),
        }),
    };
    let mut action = json!({
        "type": "action",
        "name": format!("{} on {target}", fault.kind.name()),
        "provider": provider,
    });
    if i + 1 == plan.faults.len() {
        action["pauses"] = json!({"after": plan.duration.as_std().as_secs_f64()});
    }
    action
}

fn rollback(i: usize, line: &str) -> Value {
    json!({
        "type": "action",
        "name": format!("undo {}", i + 1),
        "provider": {
            "type": "python",
            "module": "gauntlet.faults",
            "func": "undo",
            "arguments": {"said": line},
        },
    })
}

/// The fault's settings as its control-API JSON, with its target.
fn arguments(target: &str, fault: &Fault) -> Value {
    let mut arguments = serde_json::to_value(fault).unwrap_or_default();
    arguments["target"] = json!(target);
    arguments
}

fn call_provider(call: &Call, systems: &BTreeMap<String, String>) -> Value {
    if let Some(command) = &call.command {
        return json!({
            "type": "process",
            "path": command.first().cloned().unwrap_or_default(),
            "arguments": command.get(1..).unwrap_or_default(),
            "timeout": call.timeout.as_std().as_secs_f64(),
        });
    }
    match &call.http {
        Some(http) => json!({
            "type": "http",
            "url": format!(
                "{}{}",
                systems.get(&http.target).map_or("", |u| u.trim_end_matches('/')),
                http.path
            ),
            "method": http.method.as_str(),
            "timeout": call.timeout.as_std().as_secs_f64(),
        }),
        None => Value::Null,
    }
}
