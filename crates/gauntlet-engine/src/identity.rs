//! Telling a process apart from a later one that reused its pid: Linux reports each
//! process's start time (in clock ticks since boot) in `/proc/PID/stat`.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A pid and the start time that makes it unique.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessIdentity {
    pub pid: u32,
    pub start_ticks: String,
}

impl ProcessIdentity {
    pub fn of(pid: u32) -> Option<Self> {
        let (_, start) = stat(pid)?;
        Some(Self {
            pid,
            start_ticks: start,
        })
    }

    pub fn current() -> Self {
        let pid = std::process::id();
        Self::of(pid).unwrap_or(Self {
            pid,
            start_ticks: "unknown".into(),
        })
    }

    /// Whether this very process is still running (a zombie counts as gone).
    pub fn is_alive(&self) -> bool {
        match stat(self.pid) {
            Some((state, start)) => state != 'Z' && state != 'X' && start == self.start_ticks,
            None => false,
        }
    }

    /// Sends `signal` to the process group this process leads, if it is still this process.
    pub fn signal_group(&self, signal: Signal) -> bool {
        if !self.is_alive() {
            return false;
        }
        let Ok(pid) = i32::try_from(self.pid) else {
            return false;
        };
        kill(Pid::from_raw(-pid), signal).is_ok() || kill(Pid::from_raw(pid), signal).is_ok()
    }
}

/// State letter and start time from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.to_string();
    Some((state, start))
}

/// This machine's name, as the kernel has it (what a lease owner's name ends with).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_forged_start_is_not() {
        let me = ProcessIdentity::current();
        assert!(me.is_alive());
        let forged = ProcessIdentity {
            start_ticks: "1".into(),
            ..me
        };
        assert!(!forged.is_alive());
        assert!(!forged.signal_group(Signal::SIGTERM));
    }
}
