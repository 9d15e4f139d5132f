//! Clock skew: a system gauntlet started runs with its clock shifted. A running process's
//! clock cannot be moved from outside, so the fault stops the system and starts it again
//! the same way (command, port, directory) with libfaketime preloaded (`LD_PRELOAD`,
//! `FAKETIME=±N`, Debian's `faketime` package); taking it out starts it again on the host's
//! clock. Both of its clocks move by the same offset: libfaketime's exemption for the
//! monotonic clock breaks absolute sleeps, and a constant offset changes no interval.
//!
//! Whether the skew is in force is read from the system itself: the `Date` header of its
//! health answer against gauntlet's clock (or, without one, libfaketime in its memory map).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::context::RunContext;
use crate::journal::Undo;

/// Where Debian (and others) install libfaketime; `GAUNTLET_LIBFAKETIME` names another.
const LIBRARIES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// How far a system's `Date` may be from the skew it should show: the header has whole
/// seconds, and the answer takes a moment.
const DATE_SLACK: f64 = 2.0;

/// How long a restarted system has to answer its health path.
const READY: Duration = Duration::from_secs(30);

/// The libfaketime to preload, or why there is none.
pub fn library() -> Result<PathBuf, String> {
    if let Some(given) = std::env::var_os("GAUNTLET_LIBFAKETIME") {
        let path = PathBuf::from(given);
        return match path.is_file() {
            true => Ok(path),
            false => Err(format!(
                "GAUNTLET_LIBFAKETIME names {}, which is not a file",
                path.display()
            )),
        };
    }
    LIBRARIES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "libfaketime is not installed (Debian: `apt-get install faketime`; or set GAUNTLET_LIBFAKETIME)"
                .into()
        })
}

/// Starts `target` again with its clock `seconds` off; returns the journal entry's id and a
/// line for the timeline once it answers its health path.
pub async fn skew(ctx: &RunContext, target: &str, seconds: i64) -> Result<(u64, String), String> {
    let library = library()?;
    let label = format!("{target} with its clock {seconds:+}s off");
    let journal_id = super::inject::register(ctx, Undo::Restart { label })?;
    match restart(ctx, target, Some((library, seconds))).await {
        Ok(()) => Ok((
            journal_id,
            format!("{target} started again with its clock {seconds:+}s off (libfaketime)"),
        )),
        Err(why) => {
            let _ = restart(ctx, target, None).await;
            super::inject::done(ctx, journal_id);
            Err(why)
        }
    }
}

/// Starts `target` again on the host's clock; verified when it answers and its clock agrees.
pub async fn unskew(ctx: &RunContext, target: &str, journal_id: u64) -> (String, bool) {
    let restarted = restart(ctx, target, None).await;
    super::inject::done(ctx, journal_id);
    if let Err(why) = restarted {
        return (
            format!("{target} on the host's clock again: FAILED: {why}"),
            false,
        );
    }
    match offset(ctx, target).await {
        Ok(Some(off)) if off.abs() <= DATE_SLACK => (
            format!("{target} runs on the host's clock again (its Date is {off:+.0}s off)"),
            true,
        ),
        Ok(Some(off)) => (
            format!("{target} was started again, but its Date is still {off:+.0}s off"),
            false,
        ),
        Ok(None) => (
            format!(
                "{target} was started again without libfaketime (it sends no Date to read its clock from)"
            ),
            true,
        ),
        Err(why) => (format!("{target} was started again, but: {why}"), false),
    }
}

/// Whether the skew shows: the system's `Date` is `seconds` off ours (± the header's grain).
pub async fn in_force(ctx: &RunContext, target: &str, seconds: i64) -> Result<String, String> {
    match offset(ctx, target).await? {
        Some(off) if (off - seconds as f64).abs() <= DATE_SLACK => Ok(format!(
            "{target}'s Date is {off:+.0}s off gauntlet's clock (skew {seconds:+}s)"
        )),
        Some(off) => Err(format!(
            "{target}'s Date is {off:+.0}s off gauntlet's clock, not the {seconds:+}s skew"
        )),
        None => loaded(ctx, target),
    }
}

/// Without a `Date` header, the best evidence: libfaketime mapped into the process.
fn loaded(ctx: &RunContext, target: &str) -> Result<String, String> {
    let pid = ctx
        .supervisor
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pid(target)
        .ok_or_else(|| format!("{target} is not running"))?;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    match maps.contains("libfaketime") {
        true => Ok(format!(
            "libfaketime is loaded in {target} (pid {pid}; it sends no Date header to read its clock from)"
        )),
        false => Err(format!("libfaketime is not loaded in {target} (pid {pid})")),
    }
}

/// The system's clock minus gauntlet's, in seconds, from its health answer's `Date`; `None`
/// when it sends none.
async fn offset(ctx: &RunContext, target: &str) -> Result<Option<f64>, String> {
    let system = ctx
        .systems
        .get(target)
        .ok_or_else(|| format!("no system named {target}"))?;
    let health = ctx
        .plan
        .systems
        .in_start_order()
        .find(|s| s.name == target)
        .map_or("/".to_string(), |s| s.health.clone());
    let probe = gauntlet_net::Outgoing::get(&system.url, &health);
    let before = SystemTime::now();
    let answer = ctx
        .client
        .send(&probe)
        .await
        .map_err(|e| format!("{target} did not answer {health}: {e}"))?;
    let Some(date) = answer.headers.get("date") else {
        return Ok(None);
    };
    let theirs = date
        .to_str()
        .ok()
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .ok_or_else(|| format!("{target} sent a Date that is not an HTTP date: {date:?}"))?;
    // Our clock at the middle of the exchange, to whole seconds as theirs is.
    let ours = before + answer.elapsed / 2;
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    Ok(Some(secs(theirs) - secs(ours).floor()))
}

/// Stops the system and starts it again (off the async workers: stopping waits for it),
/// then waits for its health path.
async fn restart(
    ctx: &RunContext,
    target: &str,
    clock: Option<(PathBuf, i64)>,
) -> Result<(), String> {
    let supervisor = ctx.supervisor.clone();
    let name = target.to_string();
    tokio::task::spawn_blocking(move || {
        supervisor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .restart_with_clock(&name, clock)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())??;
    let deadline = tokio::time::Instant::now() + READY;
    match super::inject::wait_healthy(ctx, target, deadline).await {
        true => Ok(()),
        false => Err(format!(
            "{target} did not answer its health path within {}s of starting again",
            READY.as_secs()
        )),
    }
}
