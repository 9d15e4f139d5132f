//! Applying a drill's faults and undoing them: proxy faults, a killed process, busy CPU
//! threads and touched memory (a separate `gauntlet stress` process), a disk filled with a
//! file, a corrupted data file, and actions (a call in, a call out). Each is registered in the cleanup journal before it is
//! applied; undoing it closes the entry, and says whether the undo was verified.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gauntlet_net::FaultProxy;
use gauntlet_spec::{Call, FaultKind, KillSignal, Restart, System, TargetedFault};
use nix::sys::signal::Signal;

use crate::calls::{self, Resolved};
use crate::context::RunContext;
use crate::journal::Undo;

/// A fault that is in, and how to take it out.
pub enum Applied {
    Proxy {
        proxy: Arc<FaultProxy>,
        id: u64,
        journal_id: u64,
    },
    Killed {
        target: String,
        restart: Restart,
        journal_id: u64,
    },
    Stressor {
        name: String,
        /// What the stressor said once its pressure was in force.
        holding: String,
    },
    Fill {
        path: PathBuf,
        journal_id: u64,
    },
    /// A disk I/O load: its stressor, the working file it writes, and its report.
    Io {
        name: String,
        file: PathBuf,
        report: PathBuf,
        journal_id: u64,
    },
    Corrupt {
        corruption: super::corrupt_file::Corruption,
        original_sha256: String,
    },
    ClockSkew {
        target: String,
        seconds: i64,
        journal_id: u64,
    },
    Action {
        label: String,
        /// What the apply call's answer was (its proof of effect).
        applied: String,
        undo: Box<Resolved>,
        verify: Option<Box<Resolved>>,
        journal_id: u64,
    },
}

pub(crate) fn register(ctx: &RunContext, undo: Undo) -> Result<u64, String> {
    ctx.journal
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .register(undo)
        .map_err(|e| e.to_string())
}

pub(crate) fn done(ctx: &RunContext, id: u64) {
    let _ = ctx
        .journal
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .done(id);
}

fn target_dir(ctx: &RunContext, target: &str) -> Result<PathBuf, String> {
    ctx.supervisor
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .dir(target)
        .ok_or_else(|| format!("gauntlet did not start `{target}`, so it has no directory of it"))
}

/// Applies one fault; returns it and a line for the timeline.
pub async fn apply(
    ctx: &RunContext,
    drill: &str,
    index: usize,
    planned: &TargetedFault,
    seed: u64,
) -> Result<(Applied, String), String> {
    let target = &planned.target;
    let fault = &planned.fault;
    if fault.kind.is_proxy() {
        return apply_proxy(ctx, target, fault);
    }
    match &fault.kind {
        FaultKind::Kill { signal, restart } => apply_kill(ctx, target, *signal, *restart),
        FaultKind::Cpu { .. } | FaultKind::Memory { .. } => {
            let name = format!("stress-{}-{index}", crate::context::file_safe(drill));
            apply_stress(ctx, &name, fault).await
        }
        FaultKind::Disk { bytes, path } => {
            let mut dir = target_dir(ctx, target)?;
            if let Some(path) = path {
                dir = dir.join(path);
            }
            let file = format!(
                ".gauntlet-fill-{}-{index}",
                crate::context::file_safe(drill)
            );
            apply_fill(ctx, &dir, &file, *bytes).await
        }
        FaultKind::Corrupt { file, bytes } => {
            let path = target_dir(ctx, target)?.join(file);
            apply_corrupt(ctx, &path, *bytes, seed)
        }
        FaultKind::DiskIo { path, .. } => {
            let mut dir = target_dir(ctx, target)?;
            if let Some(path) = path {
                dir = dir.join(path);
            }
            let name = format!("io-{}-{index}", crate::context::file_safe(drill));
            apply_io(ctx, &name, &dir, fault).await
        }
        FaultKind::Action {
            apply,
            undo,
            verify,
        } => apply_action(ctx, drill, index, (apply, undo, verify.as_deref())).await,
        FaultKind::ClockSkew { seconds } => {
            let (journal_id, line) = super::clock::skew(ctx, target, *seconds).await?;
            let skewed = Applied::ClockSkew {
                target: target.clone(),
                seconds: *seconds,
                journal_id,
            };
            Ok((skewed, line))
        }
        other => unreachable_kind(other),
    }
}

/// A proxy fault, in the proxy in front of `target`.
fn apply_proxy(
    ctx: &RunContext,
    target: &str,
    fault: &gauntlet_spec::Fault,
) -> Result<(Applied, String), String> {
    let proxy = ctx
        .systems
        .get(target)
        .and_then(|s| s.proxy.clone())
        .ok_or_else(|| format!("no fault proxy in front of `{target}`"))?;
    let unit = if fault.kind.per_request() {
        "requests"
    } else {
        "connections"
    };
    let label = format!(
        "{} ({}% of {unit})",
        fault.kind.name(),
        fault.toxicity * 100.0
    );
    let undo = Undo::ProxyFault {
        proxy: target.to_string(),
        fault: label.clone(),
    };
    let journal_id = register(ctx, undo)?;
    let id = proxy.add(fault.clone()).map_err(|refused| {
        done(ctx, journal_id);
        refused.to_string()
    })?;
    let applied = Applied::Proxy {
        proxy,
        id,
        journal_id,
    };
    Ok((
        applied,
        format!("{label} on the proxy in front of {target}"),
    ))
}

/// A signal to the process gauntlet started as `target`.
fn apply_kill(
    ctx: &RunContext,
    target: &str,
    signal: KillSignal,
    restart: Restart,
) -> Result<(Applied, String), String> {
    let signal = match signal {
        KillSignal::Kill => Signal::SIGKILL,
        KillSignal::Term => Signal::SIGTERM,
    };
    let undo = Undo::Restart {
        label: target.to_string(),
    };
    let journal_id = register(ctx, undo)?;
    let killed = ctx
        .supervisor
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .kill(target, signal);
    let pid = killed.inspect_err(|_| done(ctx, journal_id))?;
    let applied = Applied::Killed {
        target: target.to_string(),
        restart,
        journal_id,
    };
    Ok((applied, format!("{signal} to {target} (pid {pid})")))
}

/// Busy threads or touched memory in a `gauntlet stress` process named `name`, applied only
/// once the stressor says its pressure is in force.
async fn apply_stress(
    ctx: &RunContext,
    name: &str,
    fault: &gauntlet_spec::Fault,
) -> Result<(Applied, String), String> {
    let gauntlet = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = vec![gauntlet.display().to_string(), "stress".into()];
    let (what, bytes) = match fault.kind {
        FaultKind::Cpu { threads } => {
            command.extend(["--cpu".into(), threads.to_string()]);
            (format!("{threads} busy threads"), 0)
        }
        FaultKind::Memory { bytes } => {
            command.extend(["--memory".into(), bytes.to_string()]);
            (format!("{} allocated and touched", size(bytes)), bytes)
        }
        _ => unreachable_kind(&fault.kind)?,
    };
    match apply_stress_command(ctx, name, command, fault.duration, bytes).await {
        Ok(holding) => {
            let line = format!("{what} ({name}: {holding})");
            let name = name.to_string();
            Ok((Applied::Stressor { name, holding }, line))
        }
        Err(why) => Err(format!("the {what} stressor never took effect: {why}")),
    }
}

/// Starts a `gauntlet stress` process named `name` and waits (bounded: longer for more
/// memory to touch) until it says its pressure is in force; what it said, or why not.
async fn apply_stress_command(
    ctx: &RunContext,
    name: &str,
    mut command: Vec<String>,
    duration: Option<Duration>,
    bytes: u64,
) -> Result<String, String> {
    if let Some(d) = duration {
        command.extend(["--seconds".into(), d.as_secs_f64().to_string()]);
    }
    command.extend(["--ready".into(), "{dir}/ready".into()]);
    let stressor = System::process(name, command);
    let run_dir = ctx.recorder.run_dir().to_path_buf();
    let endpoint = ctx
        .supervisor
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .spawn(&stressor, &run_dir, &Default::default())
        .map_err(|e| e.to_string())?;
    let ready = run_dir.join("work").join(name).join("ready");
    let patience = Duration::from_secs(10 + bytes / (1 << 30));
    match stressor_ready(ctx, name, &ready, patience).await {
        Ok(holding) => Ok(holding),
        Err(why) => {
            let supervisor = ctx.supervisor.clone();
            let stop = name.to_string();
            let _ = tokio::task::spawn_blocking(move || {
                supervisor
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .stop(&stop)
            })
            .await;
            let said = endpoint.log.as_deref().map(log_tail).unwrap_or_default();
            Err(format!("{why}{said}"))
        }
    }
}

/// A disk I/O load on `dir`'s file system: its working file journaled for removal, then a
/// `gauntlet stress --io` process, in force once its first block is on the disk.
async fn apply_io(
    ctx: &RunContext,
    name: &str,
    dir: &std::path::Path,
    fault: &gauntlet_spec::Fault,
) -> Result<(Applied, String), String> {
    let FaultKind::DiskIo {
        bytes_per_second,
        file_bytes,
        ..
    } = fault.kind
    else {
        return unreachable_kind(&fault.kind);
    };
    let free = free_space(dir)?;
    if file_bytes > free / 10 * 9 {
        return Err(format!(
            "a disk I/O file of {} in {} would take more than nine tenths of its {} MiB free",
            size(file_bytes),
            dir.display(),
            free >> 20
        ));
    }
    let file = dir.join(format!(".gauntlet-{name}"));
    let report = ctx
        .recorder
        .run_dir()
        .join("work")
        .join(name)
        .join("io.json");
    let journal_id = register(ctx, Undo::RemoveFile { path: file.clone() })?;
    let gauntlet = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = vec![
        gauntlet.display().to_string(),
        "stress".into(),
        "--io".into(),
        file.display().to_string(),
        "--io-size".into(),
        file_bytes.to_string(),
        "--report".into(),
        report.display().to_string(),
    ];
    if let Some(rate) = bytes_per_second {
        command.extend(["--io-rate".into(), rate.to_string()]);
    }
    let rate = bytes_per_second.map_or("as fast as the disk takes it".into(), |r| {
        format!("at {}/s", size(r))
    });
    let what = format!("disk I/O on {} {rate}", dir.display());
    match apply_stress_command(ctx, name, command, fault.duration, 0).await {
        Ok(holding) => {
            let line = format!("{what} ({name}: {holding})");
            let io = Applied::Io {
                name: name.to_string(),
                file,
                report,
                journal_id,
            };
            Ok((io, line))
        }
        Err(why) => {
            let _ = std::fs::remove_file(&file);
            done(ctx, journal_id);
            Err(format!("the {what} never took effect: {why}"))
        }
    }
}

/// Whether a process gauntlet started under `name` still runs.
fn running(ctx: &RunContext, name: &str) -> bool {
    ctx.supervisor
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pid(name)
        .is_some()
}

/// The bytes free to an unprivileged writer on `dir`'s file system.
fn free_space(dir: &std::path::Path) -> Result<u64, String> {
    nix::sys::statvfs::statvfs(dir)
        .map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
        .map_err(|e| format!("cannot see the free space of {}: {e}", dir.display()))
}

/// Stops a stressor process (off the async workers: stopping waits for it); what was done,
/// and whether it is gone.
async fn stop_stressor(ctx: &RunContext, name: String) -> (String, bool) {
    let supervisor = ctx.supervisor.clone();
    let stopped = tokio::task::spawn_blocking(move || {
        let mut supervisor = supervisor.lock().unwrap_or_else(|e| e.into_inner());
        let line = supervisor.stop(&name);
        let gone = supervisor.pid(&name).is_none();
        (
            line.unwrap_or_else(|| format!("{name} had already stopped")),
            gone,
        )
    })
    .await;
    stopped.unwrap_or_else(|e| (format!("stopping the stressor failed: {e}"), false))
}

/// What a disk I/O load achieved, from its report: bytes written and read per second, and
/// fsyncs per second.
pub fn io_rates(report: &std::path::Path) -> Option<(f64, f64, f64)> {
    let text = std::fs::read(report).ok()?;
    let said: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let seconds = said["seconds"].as_f64().filter(|s| *s > 0.0)?;
    let per = |key: &str| said[key].as_f64().map(|v| v / seconds);
    Some((per("written_bytes")?, per("read_bytes")?, per("fsyncs")?))
}

/// A file of `size` bytes written into `dir`, never the host's last free space: a drill
/// fills the service's disk, not ours.
async fn apply_fill(
    ctx: &RunContext,
    dir: &std::path::Path,
    file: &str,
    size: u64,
) -> Result<(Applied, String), String> {
    let path = dir.join(file);
    let free = free_space(dir)?;
    if size > free / 10 * 9 {
        return Err(format!(
            "filling {} would take {} of the {} MiB free on its file system: more than nine tenths",
            dir.display(),
            self::size(size),
            free >> 20
        ));
    }
    let journal_id = register(ctx, Undo::RemoveFile { path: path.clone() })?;
    let target = path.clone();
    // A drill stopped while the fill is written stops the writing too.
    let stop = StopOnDrop::default();
    let flag = stop.0.clone();
    let written = tokio::task::spawn_blocking(move || fill(&target, size, &flag))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    drop(stop);
    match written {
        Ok(()) => {
            let line = format!("filled {} with {}", path.display(), self::size(size));
            Ok((Applied::Fill { path, journal_id }, line))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            done(ctx, journal_id);
            Err(format!("cannot fill {}: {e}", path.display()))
        }
    }
}

/// `bytes` bytes of the file at `path` flipped, the original kept aside.
fn apply_corrupt(
    ctx: &RunContext,
    path: &std::path::Path,
    bytes: u64,
    seed: u64,
) -> Result<(Applied, String), String> {
    let original =
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let original_sha256 = gauntlet_report::sha256_hex(&original);
    let flips = usize::try_from(bytes).unwrap_or(usize::MAX);
    let corruption = {
        let mut journal = ctx.journal.lock().unwrap_or_else(|e| e.into_inner());
        super::corrupt_file::corrupt_file(&mut journal, path, flips, seed)
            .map_err(|e| e.to_string())?
    };
    let line = format!(
        "flipped {} byte(s) of {} (original kept aside)",
        corruption.flipped.len(),
        path.display()
    );
    let applied = Applied::Corrupt {
        corruption,
        original_sha256,
    };
    Ok((applied, line))
}

/// An action: its undo (and the call that verifies it) journaled, then the apply call. An
/// apply that fails is undone at once: it may have half happened.
async fn apply_action(
    ctx: &RunContext,
    drill: &str,
    index: usize,
    (apply, undo, verify): (&Call, &Call, Option<&Call>),
) -> Result<(Applied, String), String> {
    let label = format!("action {} of {drill}", index + 1);
    let apply = calls::resolve(ctx, apply)?;
    let undo = Box::new(calls::resolve(ctx, undo)?);
    let verify = verify
        .map(|v| calls::resolve(ctx, v).map(Box::new))
        .transpose()?;
    let entry = Undo::Call {
        label: label.clone(),
        undo: undo.clone(),
        verify: verify.clone(),
    };
    let journal_id = register(ctx, entry)?;
    match apply.make(&ctx.child_env, &ctx.client).await {
        Ok(applied) => {
            let line = format!("{label}: {applied}");
            let action = Applied::Action {
                label,
                applied,
                undo,
                verify,
                journal_id,
            };
            Ok((action, line))
        }
        Err(why) => {
            let (undone, _) = undo_action(ctx, &undo, verify.as_deref(), journal_id).await;
            Err(format!("{label} failed: {why} ({undone})"))
        }
    }
}

/// The undo call, then the verifying call; the journal entry closes only when both
/// succeeded (else the run's cleanup, or `gauntlet recover`, tries again).
async fn undo_action(
    ctx: &RunContext,
    undo: &Resolved,
    verify: Option<&Resolved>,
    journal_id: u64,
) -> (String, bool) {
    let mut made = undo.make(&ctx.child_env, &ctx.client).await;
    if let (Ok(said), Some(verify)) = (&made, verify) {
        made = verify
            .make(&ctx.child_env, &ctx.client)
            .await
            .map(|v| format!("{said}; verified: {v}"))
            .map_err(|why| format!("{said}, but the verifying call failed: {why}"));
    }
    match made {
        Ok(said) => {
            done(ctx, journal_id);
            (format!("undone: {said}"), true)
        }
        Err(why) => (format!("the undo FAILED: {why}"), false),
    }
}

/// A proxy kind reached the process faults: a bug, said as an error rather than a panic.
fn unreachable_kind<T>(kind: &FaultKind) -> Result<T, String> {
    Err(format!(
        "`{}` is not a process, resource or data fault",
        kind.name()
    ))
}

/// Bytes as the spec would write them: `256MiB`.
fn size(bytes: u64) -> String {
    gauntlet_spec::units::ByteSize::from_bytes(bytes).to_string()
}

/// Waits (bounded) for a stressor's ready file; `Err` if it exited or took too long.
async fn stressor_ready(
    ctx: &RunContext,
    name: &str,
    ready: &std::path::Path,
    patience: Duration,
) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Ok(said) = std::fs::read_to_string(ready) {
            return Ok(said.trim().to_string());
        }
        let exited = ctx
            .supervisor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .exited(name);
        if let Some(status) = exited {
            return Err(format!("it exited ({status})"));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("not in force after {}s", patience.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The last line a process wrote to its log, as `: LINE` (its own words on why it stopped).
fn log_tail(log: &std::path::Path) -> String {
    std::fs::read(log)
        .ok()
        .and_then(|bytes| {
            String::from_utf8_lossy(&bytes)
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| format!(": {}", l.trim()))
        })
        .unwrap_or_default()
}

/// Whether an applied fault is actually in force (or was, for one already out): a proxy
/// fault that acted on something, a stressor still holding, a fill still there, a file still
/// corrupted. `Err` says what did not take effect.
pub async fn in_force(ctx: &RunContext, applied: &Applied) -> Result<String, String> {
    match applied {
        Applied::ClockSkew {
            target, seconds, ..
        } => super::clock::in_force(ctx, target, *seconds).await,
        Applied::Proxy { proxy, id, .. } => match proxy.acted(*id) {
            0 => Err(format!(
                "the fault on the proxy in front of {} never acted: nothing it applies to passed through it while it was in",
                proxy.name()
            )),
            n => Ok(format!("the fault on {} acted {n} time(s)", proxy.name())),
        },
        Applied::Killed { target, .. } => Ok(format!("{target} was killed")),
        Applied::Action { label, applied, .. } => Ok(format!("{label}: {applied}")),
        Applied::Stressor { name, holding } => match running(ctx, name) {
            true => Ok(format!("{name} holds {holding}")),
            false => Err(format!("{name} stopped before the drill ended")),
        },
        Applied::Io { name, report, .. } => match (io_rates(report), running(ctx, name)) {
            (Some((w, r, f)), true) if w > 0.0 => Ok(format!(
                "{name} wrote {}/s (fsynced, {f:.0} fsyncs/s) and read back {}/s",
                size(w as u64),
                size(r as u64)
            )),
            (_, false) => Err(format!("{name} stopped before the drill ended")),
            _ => Err(format!("{name} has not written a block to the disk")),
        },
        Applied::Fill { path, .. } => match std::fs::metadata(path) {
            Ok(m) => Ok(format!("{} holds {} bytes", path.display(), m.len())),
            Err(e) => Err(format!("the fill {} is gone: {e}", path.display())),
        },
        Applied::Corrupt {
            corruption,
            original_sha256,
        } => {
            let now = std::fs::read(&corruption.path).map(|b| gauntlet_report::sha256_hex(&b));
            match now {
                Ok(sha) if sha != *original_sha256 => Ok(format!(
                    "{} differs from its original",
                    corruption.path.display()
                )),
                Ok(_) => Err(format!(
                    "{} is byte for byte its original: the corruption did not take",
                    corruption.path.display()
                )),
                Err(e) => Err(format!("{}: {e}", corruption.path.display())),
            }
        }
    }
}

/// Raises its flag when dropped: a cancelled future stops the blocking work it started.
#[derive(Default)]
struct StopOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Writes `size` bytes of zeros and syncs them to disk, stopping early when `stop` is set.
fn fill(
    path: &std::path::Path,
    size: u64,
    stop: &std::sync::atomic::AtomicBool,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    let chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(std::io::Error::other("stopped"));
        }
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    file.sync_all()
}

/// Takes a fault out. Returns what was done and whether the undo was verified.
pub async fn undo(ctx: &RunContext, applied: Applied) -> (String, bool) {
    match applied {
        Applied::Proxy {
            proxy,
            id,
            journal_id,
        } => {
            // A fault with its own duration may have removed itself already.
            proxy.remove(id);
            done(ctx, journal_id);
            let gone = !proxy.faults().iter().any(|f| f.id == id);
            (
                format!(
                    "removed fault {id} from the proxy in front of {}",
                    proxy.name()
                ),
                gone,
            )
        }
        Applied::Killed {
            target, journal_id, ..
        } => {
            done(ctx, journal_id);
            let running = ctx
                .supervisor
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pid(&target)
                .is_some();
            (
                format!(
                    "{target} is {}",
                    if running {
                        "running again"
                    } else {
                        "NOT running"
                    }
                ),
                running,
            )
        }
        Applied::Stressor { name, .. } => stop_stressor(ctx, name).await,
        Applied::ClockSkew {
            target, journal_id, ..
        } => super::clock::unskew(ctx, &target, journal_id).await,
        Applied::Action {
            label,
            undo,
            verify,
            journal_id,
            ..
        } => {
            let (line, ok) = undo_action(ctx, &undo, verify.as_deref(), journal_id).await;
            (format!("{label} {line}"), ok)
        }
        Applied::Io {
            name,
            file,
            journal_id,
            ..
        } => {
            let (stopped, gone) = stop_stressor(ctx, name).await;
            let removed = Undo::RemoveFile { path: file.clone() }.perform();
            done(ctx, journal_id);
            (format!("{stopped}; {removed}"), gone && !file.exists())
        }
        Applied::Fill { path, journal_id } => {
            let line = Undo::RemoveFile { path: path.clone() }.perform();
            done(ctx, journal_id);
            (line, !path.exists())
        }
        Applied::Corrupt {
            corruption,
            original_sha256,
        } => {
            let line = super::corrupt_file::restore(&corruption.path, &corruption.original);
            done(ctx, corruption.journal_id);
            let same = std::fs::read(&corruption.path)
                .map(|bytes| gauntlet_report::sha256_hex(&bytes) == original_sha256)
                .unwrap_or(false);
            (
                format!(
                    "{line} (sha256 {})",
                    if same {
                        "matches the original"
                    } else {
                        "DIFFERS from the original"
                    }
                ),
                same,
            )
        }
    }
}

/// Waits (bounded) until a killed target's process is gone.
pub async fn wait_exit(ctx: &RunContext, target: &str) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let alive = ctx
            .supervisor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pid(target)
            .is_some();
        if !alive {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("{target} did not exit within 10s of the signal"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Starts a killed target again (`restart: gauntlet`); returns the timeline line.
pub fn restart(ctx: &RunContext, target: &str) -> Result<String, String> {
    let endpoint = ctx
        .supervisor
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .respawn(target, None)
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "gauntlet started {target} again at {}",
        endpoint.url
    ))
}

/// Polls a target's health path every 10 ms until it answers 2xx (true) or `until`.
pub async fn wait_healthy(ctx: &RunContext, target: &str, until: tokio::time::Instant) -> bool {
    let Some(system) = ctx.systems.get(target) else {
        return false;
    };
    let Some(planned) = ctx.plan.systems.in_start_order().find(|s| s.name == target) else {
        return false;
    };
    let probe = gauntlet_net::Outgoing::get(&system.url, &planned.health);
    while tokio::time::Instant::now() < until {
        let answer =
            tokio::time::timeout(Duration::from_millis(500), ctx.client.send(&probe)).await;
        if matches!(answer, Ok(Ok(ref a)) if a.is_success()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}
