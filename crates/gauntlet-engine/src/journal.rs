//! The cleanup journal: every fault or process gauntlet applies is written here with its
//! undo *before* it takes effect, and marked done once undone. The file lives in the run
//! directory as JSON lines and is fsynced on every line, so `gauntlet recover` can undo
//! whatever a killed run left behind.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use crate::identity::ProcessIdentity;

pub const JOURNAL_FILE: &str = "cleanup.jsonl";

/// How to undo one thing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Undo {
    /// Stop a process group that gauntlet started.
    StopProcess {
        label: String,
        process: ProcessIdentity,
    },
    /// Put a corrupted file's original back (it waits beside it, renamed).
    RestoreFile { path: PathBuf, original: PathBuf },
    /// Delete a file gauntlet wrote (a disk-pressure fill).
    RemoveFile { path: PathBuf },
    /// A fault in a proxy of this run: it lives in the run's process, so it ends with the
    /// run (removed by the drill, or gone with the proxy).
    ProxyFault { proxy: String, fault: String },
    /// A system a drill stopped, to be started again by the drill. A dead run's systems
    /// are all stopped by their own entries, so there is nothing left to restart.
    Restart { label: String },
    /// The call that takes an action fault out (then the one that proves it did).
    Call {
        label: String,
        undo: Box<crate::calls::Resolved>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verify: Option<Box<crate::calls::Resolved>>,
    },
}

impl Undo {
    pub fn describe(&self) -> String {
        match self {
            Undo::StopProcess { label, process } => {
                format!("stop {label} (pid {})", process.pid)
            }
            Undo::RestoreFile { path, .. } => format!("restore {}", path.display()),
            Undo::RemoveFile { path } => format!("remove {}", path.display()),
            Undo::ProxyFault { proxy, fault } => format!("remove {fault} from proxy {proxy}"),
            Undo::Restart { label } => format!("start {label} again"),
            Undo::Call { label, undo, .. } => format!("undo {label}: {}", undo.describe()),
        }
    }

    /// Performs the undo from any process (the run's own, or `gauntlet recover`).
    /// Returns what was done, for the timeline.
    pub fn perform(&self) -> String {
        match self {
            Undo::StopProcess { label, process } => {
                if !process.is_alive() {
                    return format!("{label} (pid {}) had already exited", process.pid);
                }
                stop_group(process, Duration::from_secs(5));
                format!("stopped {label} (pid {})", process.pid)
            }
            Undo::RestoreFile { path, original } => {
                crate::faults::corrupt_file::restore(path, original)
            }
            Undo::RemoveFile { path } => match std::fs::remove_file(path) {
                Ok(()) => format!("removed {}", path.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    format!("{} was already removed", path.display())
                }
                Err(e) => format!("could not remove {}: {e}", path.display()),
            },
            Undo::ProxyFault { proxy, fault } => {
                format!("{fault} on proxy {proxy} ended with the proxy")
            }
            Undo::Restart { label } => {
                format!("{label} was stopped with its run, so it is not restarted")
            }
            Undo::Call {
                label,
                undo,
                verify,
            } => {
                let made = undo.make_blocking().and_then(|said| match verify {
                    Some(verify) => verify.make_blocking().map(|v| format!("{said}; {v}")),
                    None => Ok(said),
                });
                match made {
                    Ok(said) => format!("undid {label}: {said}"),
                    Err(why) => format!("could NOT undo {label}: {why}"),
                }
            }
        }
    }
}

/// Processes that carry a run's marker (`GAUNTLET_RUN=ID` in their environment, see
/// `child_env`), with the run each belongs to: what runs started, and what those started in
/// turn, whether or not a journal recorded them. Other users' processes cannot be read and
/// are never among them.
pub fn marked_processes() -> Vec<(String, ProcessIdentity)> {
    let marker = format!("{}=", crate::child_env::RUN_MARKER);
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter_map(|pid| {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            let run = environ
                .split(|b| *b == 0)
                .find_map(|var| var.strip_prefix(marker.as_bytes()))?;
            let run = String::from_utf8(run.to_vec()).ok()?;
            Some((run, ProcessIdentity::of(pid)?))
        })
        .collect()
}

/// Stops every process that carries `run`'s marker: SIGTERM to each group at once, up to
/// `grace` for them to go, then SIGKILL. Returns a line per process stopped.
pub fn stop_marked(run: &str, grace: Duration) -> Vec<String> {
    let found: Vec<ProcessIdentity> = marked_processes()
        .into_iter()
        .filter(|(r, _)| r == run)
        .map(|(_, p)| p)
        .collect();
    for process in &found {
        process.signal_group(Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while found.iter().any(ProcessIdentity::is_alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    found
        .iter()
        .map(|process| {
            if process.is_alive() {
                process.signal_group(Signal::SIGKILL);
            }
            format!(
                "stopped pid {} (not journaled; found by its run marker)",
                process.pid
            )
        })
        .collect()
}

/// SIGTERM the group, wait up to `grace`, then SIGKILL it.
pub(crate) fn stop_group(process: &ProcessIdentity, grace: Duration) {
    process.signal_group(Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while process.is_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if process.is_alive() {
        process.signal_group(Signal::SIGKILL);
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Line {
    /// First line: which process owns the journal.
    Open {
        owner: ProcessIdentity,
    },
    Register {
        id: u64,
        undo: Undo,
    },
    Done {
        id: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cleanup journal {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub struct CleanupJournal {
    path: PathBuf,
    file: File,
    next_id: u64,
    pending: Vec<(u64, Undo)>,
}

impl CleanupJournal {
    pub fn create(run_dir: &Path) -> Result<Self, JournalError> {
        let path = run_dir.join(JOURNAL_FILE);
        let io = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let mut journal = Self {
            path: path.clone(),
            file,
            next_id: 1,
            pending: Vec::new(),
        };
        journal
            .append(&Line::Open {
                owner: ProcessIdentity::current(),
            })
            .map_err(io)?;
        Ok(journal)
    }

    fn append(&mut self, line: &Line) -> std::io::Result<()> {
        let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
        text.push('\n');
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()
    }

    /// Records an undo; call before applying what it undoes.
    pub fn register(&mut self, undo: Undo) -> Result<u64, JournalError> {
        let id = self.next_id;
        self.next_id += 1;
        self.append(&Line::Register {
            id,
            undo: undo.clone(),
        })
        .map_err(|source| JournalError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.pending.push((id, undo));
        Ok(id)
    }

    /// Marks an entry undone (by whoever undid it).
    pub fn done(&mut self, id: u64) -> Result<(), JournalError> {
        self.pending.retain(|(p, _)| *p != id);
        self.append(&Line::Done { id })
            .map_err(|source| JournalError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Makes the pending undo calls, newest first: before the run's systems stop, since the
    /// calls may need them to answer.
    pub fn undo_calls(&mut self) -> Vec<String> {
        let calls: Vec<(u64, Undo)> = self
            .pending
            .iter()
            .rev()
            .filter(|(_, undo)| matches!(undo, Undo::Call { .. }))
            .cloned()
            .collect();
        calls
            .into_iter()
            .map(|(id, undo)| {
                let line = undo.perform();
                let _ = self.done(id);
                line
            })
            .collect()
    }

    /// Undoes everything still pending, newest first; returns what was done.
    pub fn undo_all(&mut self) -> Vec<String> {
        let mut done = Vec::new();
        while let Some((id, undo)) = self.pending.pop() {
            done.push(undo.perform());
            let _ = self.done(id);
        }
        done
    }

    pub fn pending(&self) -> impl Iterator<Item = &Undo> {
        self.pending.iter().map(|(_, u)| u)
    }
}

impl Drop for CleanupJournal {
    /// Last line of defence (a panic in the engine itself): nothing stays applied.
    fn drop(&mut self) {
        self.undo_all();
    }
}

/// What a journal on disk says is still applied, and who owned it.
#[derive(Debug)]
pub struct Leftovers {
    pub owner: Option<ProcessIdentity>,
    pub pending: Vec<(u64, Undo)>,
}

/// Reads a journal written by any run. Unreadable trailing lines (a write cut by SIGKILL)
/// are ignored: an entry is registered before it is applied, so a cut line applied nothing.
pub fn read_leftovers(run_dir: &Path) -> std::io::Result<Leftovers> {
    let file = File::open(run_dir.join(JOURNAL_FILE))?;
    let mut owner = None;
    let mut pending: Vec<(u64, Undo)> = Vec::new();
    for line in BufReader::new(file).lines() {
        let Ok(parsed) = serde_json::from_str::<Line>(&line?) else {
            continue;
        };
        match parsed {
            Line::Open { owner: o } => owner = Some(o),
            Line::Register { id, undo } => pending.push((id, undo)),
            Line::Done { id } => pending.retain(|(p, _)| *p != id),
        }
    }
    Ok(Leftovers { owner, pending })
}

/// Undoes what a dead run left; appends `done` lines so a second recover does nothing.
pub fn recover(run_dir: &Path) -> std::io::Result<Vec<String>> {
    let leftovers = read_leftovers(run_dir)?;
    let mut file = OpenOptions::new()
        .append(true)
        .open(run_dir.join(JOURNAL_FILE))?;
    let mut done = Vec::new();
    for (id, undo) in leftovers.pending.iter().rev() {
        done.push(undo.perform());
        let line = serde_json::to_string(&Line::Done { id: *id }).map_err(std::io::Error::other)?;
        writeln!(file, "{line}")?;
        file.sync_data()?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    fn spawn_sleeper() -> (std::process::Child, ProcessIdentity) {
        let child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let identity = ProcessIdentity::of(child.id()).unwrap();
        (child, identity)
    }

    #[test]
    fn a_journal_left_by_a_dead_run_is_recovered_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, identity) = spawn_sleeper();
        {
            let mut journal = CleanupJournal::create(dir.path()).unwrap();
            journal
                .register(Undo::StopProcess {
                    label: "sleeper".into(),
                    process: identity.clone(),
                })
                .unwrap();
            // Simulate a killed run: the journal is never undone by its owner.
            journal.pending.clear();
        }
        assert_eq!(read_leftovers(dir.path()).unwrap().pending.len(), 1);
        let done = recover(dir.path()).unwrap();
        assert_eq!(
            done,
            vec![format!("stopped sleeper (pid {})", identity.pid)]
        );
        assert!(child.wait().unwrap().code().is_none(), "killed by a signal");
        assert!(read_leftovers(dir.path()).unwrap().pending.is_empty());
        assert!(recover(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn an_undo_call_a_dead_run_left_is_made_by_recover() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("undone");
        {
            let mut journal = CleanupJournal::create(dir.path()).unwrap();
            let undo = Box::new(crate::calls::Resolved::Command {
                argv: vec!["touch".into(), marker.display().to_string()],
                pass: Vec::new(),
                timeout_ms: 5_000,
            });
            journal
                .register(Undo::Call {
                    label: "action 1 of d".into(),
                    undo,
                    verify: None,
                })
                .unwrap();
            journal.pending.clear();
        }
        let done = recover(dir.path()).unwrap();
        assert_eq!(
            done,
            vec!["undid action 1 of d: `touch` succeeded".to_string()]
        );
        assert!(marker.exists());
        assert!(recover(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn dropping_the_journal_undoes_what_is_pending() {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, identity) = spawn_sleeper();
        let mut journal = CleanupJournal::create(dir.path()).unwrap();
        journal
            .register(Undo::StopProcess {
                label: "sleeper".into(),
                process: identity,
            })
            .unwrap();
        drop(journal);
        assert!(child.wait().unwrap().code().is_none());
        assert!(read_leftovers(dir.path()).unwrap().pending.is_empty());
    }

    #[test]
    fn a_truncated_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        drop(CleanupJournal::create(dir.path()).unwrap());
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL_FILE))
            .unwrap();
        file.write_all(b"{\"op\":\"register\",\"id\":9,\"und")
            .unwrap();
        assert!(read_leftovers(dir.path()).unwrap().pending.is_empty());
    }
}
