//! Starting the systems under test: placeholders resolved, one process group each, output
//! to a log file in the run directory, registered in the cleanup journal, then polled on
//! its health path until ready, gone, or out of time.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gauntlet_net::{HttpClient, Outgoing};
use gauntlet_spec::System;

use crate::identity::ProcessIdentity;
use crate::journal::{CleanupJournal, Undo};

/// A system gauntlet reaches, started by it or not.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: String,
    pub url: String,
    /// `host:port` it answers on (what a proxy in front of it connects to).
    pub authority: String,
    pub log: Option<PathBuf>,
}

/// Why a system could not be brought up; the run is then inconclusive, never a pass.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{name}: cannot start `{program}`: {source}")]
    Spawn {
        name: String,
        program: String,
        source: std::io::Error,
    },
    #[error("{name}: {message}")]
    Setup { name: String, message: String },
    #[error("{name} exited with {status} before it became ready{log_tail}")]
    Exited {
        name: String,
        status: String,
        log_tail: String,
    },
    #[error(
        "{name} answers {url} with {status}, again and again: a path that answers that will not turn 2xx by waiting; set `{key}` to a path that answers 2xx (e.g. `health: /`)"
    )]
    WrongHealth {
        name: String,
        url: String,
        status: u16,
        /// Where the spec sets it: `targets.candidate.health`, `dependencies.NAME.health`.
        key: String,
    },
    #[error("{name} did not answer 2xx on {url} within {timeout:?} (last: {last}){log_tail}")]
    NotReady {
        name: String,
        url: String,
        timeout: Duration,
        last: String,
        log_tail: String,
    },
}

/// Owns the processes a run started; shared with the pipeline task.
pub struct Supervisor {
    journal: Arc<Mutex<CleanupJournal>>,
    children: Vec<(u64, String, Child)>,
    /// How each system was started, so a drill can start it again the same way.
    launched: BTreeMap<String, Launched>,
    /// How the processes it starts get their environment (and the run's marker).
    env: crate::child_env::ChildEnv,
}

/// A started system's launch with its placeholders resolved.
#[derive(Debug, Clone)]
struct Launched {
    system: System,
    values: Placeholders,
    run_dir: PathBuf,
    /// The loopback port it was given (`{port}`).
    port: Option<u16>,
    /// Runs under libfaketime with its clock this many seconds off (a clock skew drill).
    clock: Option<(PathBuf, i64)>,
}

/// Values for `{placeholders}` known so far.
pub type Placeholders = BTreeMap<String, String>;

impl Supervisor {
    pub fn new(journal: Arc<Mutex<CleanupJournal>>) -> Self {
        Self {
            journal,
            children: Vec::new(),
            launched: BTreeMap::new(),
            env: Default::default(),
        }
    }

    /// Starts processes with this environment (the spec's `pass_env`, the run's marker).
    pub fn with_env(mut self, env: crate::child_env::ChildEnv) -> Self {
        self.env = env;
        self
    }

    /// The working directory of a system gauntlet started.
    pub fn dir(&self, name: &str) -> Option<PathBuf> {
        self.launched
            .get(name)
            .and_then(|l| l.values.get("dir"))
            .map(PathBuf::from)
    }

    /// The pid of a running system gauntlet started.
    pub fn pid(&mut self, name: &str) -> Option<u32> {
        self.children
            .iter_mut()
            .rev()
            .filter(|(_, n, _)| n == name)
            .find_map(|(_, _, child)| matches!(child.try_wait(), Ok(None)).then(|| child.id()))
    }

    /// Sends `signal` to a started system's process group (a drill's crash).
    pub fn kill(&mut self, name: &str, signal: nix::sys::signal::Signal) -> Result<u32, String> {
        let pid = self
            .pid(name)
            .ok_or_else(|| format!("{name} is not running"))?;
        let process =
            ProcessIdentity::of(pid).ok_or_else(|| format!("{name} (pid {pid}) is gone"))?;
        if !process.signal_group(signal) {
            return Err(format!("cannot signal {name} (pid {pid})"));
        }
        Ok(pid)
    }

    /// Stops a started system and waits for it; its journal entry is closed.
    pub fn stop(&mut self, name: &str) -> Option<String> {
        let at = self.children.iter().rposition(|(_, n, _)| n == name)?;
        let (id, name, mut child) = self.children.remove(at);
        if let Some(process) = ProcessIdentity::of(child.id()) {
            crate::journal::stop_group(&process, Duration::from_secs(5));
        }
        let _ = child.kill();
        let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
        let _ = self
            .journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .done(id);
        Some(format!("stopped {name} ({status})"))
    }

    /// Stops a started system and starts it again the same way, its clock `seconds` off
    /// under the libfaketime at `library` (or, with `None`, on the host's clock again).
    pub fn restart_with_clock(
        &mut self,
        name: &str,
        clock: Option<(PathBuf, i64)>,
    ) -> Result<Endpoint, LaunchError> {
        let launched = self
            .launched
            .get_mut(name)
            .ok_or_else(|| LaunchError::Setup {
                name: name.to_string(),
                message: "gauntlet did not start it, so it cannot start it again".into(),
            })?;
        launched.clock = clock;
        let launched = launched.clone();
        self.stop(name);
        self.start(&launched)
    }

    /// Starts a system again with the same command, port and environment; `dir` moves it to
    /// another working directory (a restore). Reaps the previous process if it died.
    pub fn respawn(&mut self, name: &str, dir: Option<&Path>) -> Result<Endpoint, LaunchError> {
        let setup = |message: String| LaunchError::Setup {
            name: name.to_string(),
            message,
        };
        let mut launched = self.launched.get(name).cloned().ok_or_else(|| {
            setup("gauntlet did not start it, so it cannot start it again".into())
        })?;
        if let Some(dir) = dir {
            launched
                .values
                .insert("dir".into(), dir.display().to_string());
        }
        // The dead process's entry is closed: what it would undo is already done.
        while let Some(at) = self
            .children
            .iter_mut()
            .position(|(_, n, child)| n == name && !matches!(child.try_wait(), Ok(None)))
        {
            let (id, _, _) = self.children.remove(at);
            let _ = self
                .journal
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .done(id);
        }
        self.start(&launched)
    }

    /// Spawns `system` (if it has a command) and returns where it will answer. Does not wait.
    pub fn spawn(
        &mut self,
        system: &System,
        run_dir: &Path,
        known: &Placeholders,
    ) -> Result<Endpoint, LaunchError> {
        let name = system.name.as_str();
        let setup = |message: String| LaunchError::Setup {
            name: name.to_string(),
            message,
        };
        let mut values = known.clone();
        let dir = run_dir.join("work").join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| setup(format!("cannot create {}: {e}", dir.display())))?;
        values.insert("dir".into(), dir.display().to_string());
        let gauntlet = std::env::current_exe()
            .map_err(|e| setup(format!("cannot find this gauntlet binary: {e}")))?;
        values.insert("gauntlet".into(), gauntlet.display().to_string());
        let wants_port = system.url.is_none()
            || system
                .command
                .iter()
                .flatten()
                .chain(system.env.values())
                .chain(system.url.iter())
                .any(|s| s.contains("{port}"));
        let port = if wants_port {
            let port = free_port().map_err(|e| setup(format!("no free loopback port: {e}")))?;
            values.insert("port".into(), port.to_string());
            Some(port)
        } else {
            None
        };
        let (url, authority) = match (&system.url, port) {
            (Some(url), _) => {
                let url = substitute(url, &values);
                let authority = authority(&url);
                (url, authority)
            }
            (None, port) => {
                let authority = format!("127.0.0.1:{}", port.unwrap_or(0));
                (format!("http://{authority}"), authority)
            }
        };
        if system.command.is_none() {
            return Ok(Endpoint {
                name: name.to_string(),
                url,
                authority,
                log: None,
            });
        };
        let launched = Launched {
            system: system.clone(),
            values,
            run_dir: run_dir.to_path_buf(),
            port,
            clock: None,
        };
        let endpoint = self.start(&launched)?;
        self.launched.insert(name.to_string(), launched);
        Ok(Endpoint {
            url,
            authority,
            ..endpoint
        })
    }

    fn start(&mut self, launched: &Launched) -> Result<Endpoint, LaunchError> {
        let Launched {
            system: launch,
            values,
            run_dir,
            port,
            clock,
        } = launched;
        let name = launch.name.as_str();
        let setup = |message: String| LaunchError::Setup {
            name: name.to_string(),
            message,
        };
        let run_dir = run_dir.as_path();
        let Some(command) = &launch.command else {
            return Err(setup("it has no command".into()));
        };
        let dir = PathBuf::from(values.get("dir").cloned().unwrap_or_default());
        std::fs::create_dir_all(&dir)
            .map_err(|e| setup(format!("cannot create {}: {e}", dir.display())))?;
        let authority = format!("127.0.0.1:{}", port.unwrap_or(0));
        let url = format!("http://{authority}");
        let argv: Vec<String> = command.iter().map(|a| substitute(a, values)).collect();
        let Some((program, args)) = argv.split_first() else {
            return Err(setup("the command is empty".into()));
        };
        let log_path = run_dir.join("logs").join(format!("{name}.log"));
        std::fs::create_dir_all(log_path.parent().unwrap_or(run_dir))
            .map_err(|e| setup(format!("cannot create the log directory: {e}")))?;
        // Appended to: a restarted system keeps one log.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| setup(format!("cannot create {}: {e}", log_path.display())))?;
        let log_err = log
            .try_clone()
            .map_err(|e| setup(format!("cannot share the log file: {e}")))?;
        let mut set: BTreeMap<String, String> = launch
            .env
            .iter()
            .map(|(k, v)| (k.clone(), substitute(v, values)))
            .collect();
        if let Some((library, seconds)) = clock {
            // Both of its clocks move: libfaketime's monotonic exemption breaks absolute
            // sleeps, and a constant offset on the monotonic clock changes no interval.
            set.insert("LD_PRELOAD".into(), library.display().to_string());
            set.insert("FAKETIME".into(), format!("{seconds:+}"));
        }
        let pass = launch.pass_env.iter().map(String::as_str);
        let mut cmd = Command::new(program);
        // Built, not inherited: gauntlet's secrets never reach the system under test.
        cmd.args(args)
            .env_clear()
            .envs(self.env.vars(pass, &set))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: a terminal's Ctrl-C reaches gauntlet only, which then
            // stops the whole group in order; and a stop reaches the system's own children.
            .process_group(0);
        let child = cmd.spawn().map_err(|source| LaunchError::Spawn {
            name: name.to_string(),
            program: program.clone(),
            source,
        })?;
        let process = ProcessIdentity::of(child.id()).unwrap_or(ProcessIdentity {
            pid: child.id(),
            start_ticks: "unknown".into(),
        });
        let id = self
            .journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register(Undo::StopProcess {
                label: name.to_string(),
                process,
            })
            .map_err(|e| setup(e.to_string()))?;
        self.children.push((id, name.to_string(), child));
        Ok(Endpoint {
            name: name.to_string(),
            url,
            authority,
            log: Some(log_path),
        })
    }

    /// The exit status of a started process, if it has exited.
    pub fn exited(&mut self, name: &str) -> Option<String> {
        self.children
            .iter_mut()
            .find(|(_, n, _)| n == name)
            .and_then(|(_, _, child)| child.try_wait().ok().flatten())
            .map(|status| status.to_string())
    }

    /// Stops every started process, newest first; returns what was done.
    pub fn stop_all(&mut self) -> Vec<String> {
        let mut done = Vec::new();
        while let Some((id, name, mut child)) = self.children.pop() {
            if let Ok(Some(status)) = child.try_wait() {
                done.push(format!("{name} had already exited ({status})"));
            } else {
                if let Some(process) = ProcessIdentity::of(child.id()) {
                    crate::journal::stop_group(&process, Duration::from_secs(5));
                }
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                done.push(format!("stopped {name} (pid {}, {status})", child.id()));
            }
            let _ = self
                .journal
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .done(id);
        }
        done
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Waits until `endpoint` answers 2xx on `health`, polling every 50 ms.
pub async fn wait_ready(
    supervisor: &Mutex<Supervisor>,
    client: &HttpClient,
    endpoint: &Endpoint,
    health: &str,
    timeout: Duration,
) -> Result<Duration, LaunchError> {
    let started = Instant::now();
    let probe = Outgoing::get(&endpoint.url, health);
    let mut last = "no attempt".to_string();
    // The same client error again and again: the server is up and the path is wrong.
    let mut refused: (u16, u32) = (0, 0);
    while started.elapsed() < timeout {
        let exited = supervisor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .exited(&endpoint.name);
        if let Some(status) = exited {
            return Err(LaunchError::Exited {
                name: endpoint.name.clone(),
                status,
                log_tail: log_tail(endpoint.log.as_deref()),
            });
        }
        match client.send(&probe).await {
            Ok(response) if response.is_success() => return Ok(started.elapsed()),
            Ok(response) => {
                last = format!("status {}", response.status);
                let status = response.status;
                refused = match refused {
                    (seen, n) if seen == status => (status, n + 1),
                    _ => (status, 1),
                };
                if wrong_path(status) && refused.1 >= WRONG_PATH_ANSWERS {
                    return Err(LaunchError::WrongHealth {
                        name: endpoint.name.clone(),
                        url: format!("{}{health}", endpoint.url),
                        status,
                        key: match endpoint.name.as_str() {
                            "candidate" | "baseline" => format!("targets.{}.health", endpoint.name),
                            name => format!("dependencies.{name}.health"),
                        },
                    });
                }
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(LaunchError::NotReady {
        name: endpoint.name.clone(),
        url: format!("{}{health}", endpoint.url),
        timeout,
        last,
        log_tail: log_tail(endpoint.log.as_deref()),
    })
}

/// How many times in a row a server may answer the health path with the same client error
/// before it is taken at its word.
const WRONG_PATH_ANSWERS: u32 = 3;

/// A client error that waiting does not heal: the path is not there, or not for GET, or
/// not for an anonymous caller. (408, 425 and 429 say "later", so they are waited out.)
fn wrong_path(status: u16) -> bool {
    matches!(status, 400..=499) && !matches!(status, 408 | 425 | 429)
}

fn log_tail(log: Option<&Path>) -> String {
    let Some(text) = log.and_then(|p| std::fs::read_to_string(p).ok()) else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail: Vec<&str> = lines.into_iter().rev().collect();
    format!("; log: {}", tail.join(" / "))
}

/// Replaces each known `{name}`; unknown names were rejected when the spec was validated.
pub fn substitute(text: &str, values: &Placeholders) -> String {
    let mut out = text.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// `host:port` of an http(s) URL (the port its scheme implies when it names none).
fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    if host.contains(':') && !host.ends_with(']') {
        host.to_string()
    } else if url.starts_with("https://") {
        format!("{host}:443")
    } else {
        format!("{host}:80")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_replaces_known_names_only() {
        let mut values = Placeholders::new();
        values.insert("port".into(), "8080".into());
        values.insert("dependencies.db.url".into(), "http://x".into());
        assert_eq!(
            substitute("--port={port} --db {dependencies.db.url} {other}", &values),
            "--port=8080 --db http://x {other}"
        );
    }
}
