//! Making a spec's calls ([`gauntlet_spec::Call`]): a command with the run's child
//! environment, or an HTTP request to one of the run's systems, each bounded by its timeout
//! and judged by its exit code or status (and the text its answer must contain).
//!
//! A call is resolved first ([`Resolved`]: placeholders filled, the system's URL found), so
//! the cleanup journal can keep it as it will be made: `gauntlet recover` makes an undo call
//! from another process, with no plan and no running run ([`Resolved::make_blocking`]).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use gauntlet_net::{HttpClient, Outgoing};
use gauntlet_spec::Call;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::child_env::ChildEnv;
use crate::context::RunContext;

/// What a command may say on stderr that a failure quotes (the rest is read and dropped).
const SAID_LIMIT: usize = 2048;

/// A call as it will be made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Resolved {
    Command {
        argv: Vec<String>,
        /// Variables passed by name (their values are read when the call is made, never
        /// written down).
        pass: Vec<String>,
        timeout_ms: u64,
    },
    Http {
        method: String,
        base: String,
        path: String,
        headers: BTreeMap<String, String>,
        body: Option<String>,
        status: Vec<u16>,
        body_contains: Option<String>,
        timeout_ms: u64,
    },
}

/// The call with its placeholders filled and its system found.
pub fn resolve(ctx: &RunContext, call: &Call) -> Result<Resolved, String> {
    let timeout_ms = u64::try_from(call.timeout.as_std().as_millis()).unwrap_or(u64::MAX);
    if let Some(command) = &call.command {
        let values = placeholders(ctx);
        let argv = command
            .iter()
            .map(|arg| crate::supervisor::substitute(arg, &values))
            .collect();
        return Ok(Resolved::Command {
            argv,
            pass: ctx.plan.pass_env.clone(),
            timeout_ms,
        });
    }
    let http = call
        .http
        .as_ref()
        .ok_or("a call with neither command nor http")?;
    let system = ctx
        .systems
        .get(&http.target)
        .ok_or_else(|| format!("no system named `{}` is running", http.target))?;
    Ok(Resolved::Http {
        method: http.method.as_str().to_string(),
        base: system.url.trim_end_matches('/').to_string(),
        path: http.path.clone(),
        headers: http.headers.clone(),
        body: http.body.clone(),
        status: http.status.clone(),
        body_contains: http.body_contains.clone(),
        timeout_ms,
    })
}

/// `{candidate.url}`, `{baseline.url}`, `{dependencies.NAME.url}`, `{spec_dir}`, `{gauntlet}`.
fn placeholders(ctx: &RunContext) -> crate::supervisor::Placeholders {
    let mut values = crate::supervisor::Placeholders::new();
    for (name, system) in &ctx.systems {
        let key = match name.as_str() {
            "candidate" | "baseline" => format!("{name}.url"),
            dependency => format!("dependencies.{dependency}.url"),
        };
        values.insert(key, system.url.clone());
    }
    let spec_dir = ctx.spec_path.parent().unwrap_or(std::path::Path::new("."));
    values.insert("spec_dir".into(), spec_dir.display().to_string());
    if let Ok(exe) = std::env::current_exe() {
        values.insert("gauntlet".into(), exe.display().to_string());
    }
    values
}

impl Resolved {
    fn timeout(&self) -> Duration {
        match self {
            Resolved::Command { timeout_ms, .. } | Resolved::Http { timeout_ms, .. } => {
                Duration::from_millis(*timeout_ms)
            }
        }
    }

    /// `POST http://127.0.0.1:4100/admin/retrieval`, `` `./purge --all` ``.
    pub fn describe(&self) -> String {
        match self {
            Resolved::Command { argv, .. } => format!("`{}`", argv.join(" ")),
            Resolved::Http {
                method, base, path, ..
            } => format!("{method} {base}{path}"),
        }
    }

    /// Makes the call with a run's environment and client. `Ok` says what happened; `Err`
    /// why it did not succeed (it failed, answered otherwise, or ran out of time).
    pub async fn make(&self, env: &ChildEnv, client: &HttpClient) -> Result<String, String> {
        let timeout = self.timeout();
        let made = match self {
            Resolved::Command { argv, .. } => {
                let Some((program, args)) = argv.split_first() else {
                    return Err("the command is empty".into());
                };
                let mut command = env.command(program);
                command.args(args);
                tokio::time::timeout(timeout, run(command, program)).await
            }
            Resolved::Http { .. } => tokio::time::timeout(timeout, self.send(client)).await,
        };
        made.unwrap_or_else(|_| {
            Err(format!(
                "{} did not finish within {}ms",
                self.describe(),
                timeout.as_millis()
            ))
        })
    }

    async fn send(&self, client: &HttpClient) -> Result<String, String> {
        let Resolved::Http {
            method,
            base,
            path,
            headers,
            body,
            status,
            body_contains,
            ..
        } = self
        else {
            return Err("not an HTTP call".into());
        };
        let mut out = Outgoing::get(base, path);
        out.method = method.clone();
        out.headers = headers.clone();
        out.body = body.clone();
        let shown = self.describe();
        let response = client
            .send(&out)
            .await
            .map_err(|e| format!("{shown}: {e}"))?;
        let expected = match status.is_empty() {
            true => response.is_success(),
            false => status.contains(&response.status),
        };
        if !expected {
            return Err(format!(
                "{shown} answered {}: {}",
                response.status,
                crate::probes::opening(&response.body_text())
            ));
        }
        if let Some(text) = body_contains
            && !response.body_text().contains(text.as_str())
        {
            return Err(format!(
                "{shown} answered {} without `{text}`: {}",
                response.status,
                crate::probes::opening(&response.body_text())
            ));
        }
        Ok(format!("{shown} answered {}", response.status))
    }

    /// Makes the call from a thread that is not the run's (the journal's undo, `gauntlet
    /// recover`): its own small runtime and client; a command gets the basic environment
    /// and the variables the spec passes, read from this process.
    pub fn make_blocking(&self) -> Result<String, String> {
        let call = self.clone();
        let worker = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot make {}: {e}", call.describe()))?;
            let env = match &call {
                Resolved::Command { pass, .. } => ChildEnv::passing(pass),
                Resolved::Http { .. } => ChildEnv::default(),
            };
            let client = HttpClient::new(call.timeout());
            runtime.block_on(call.make(&env, &client))
        });
        worker
            .join()
            .unwrap_or_else(|_| Err("the call's thread panicked".into()))
    }
}

/// Runs a command to its end, reading (and bounding) what it says on stderr.
async fn run(mut command: tokio::process::Command, program: &str) -> Result<String, String> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    let mut said = Vec::new();
    if let Some(mut stderr) = child.stderr.take() {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = stderr.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            let room = SAID_LIMIT.saturating_sub(said.len());
            said.extend_from_slice(&chunk[..n.min(room)]);
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| format!("`{program}`: {e}"))?;
    let said = String::from_utf8_lossy(&said).trim().to_string();
    let said = match said.is_empty() {
        true => String::new(),
        false => format!(": {}", crate::probes::opening(&said)),
    };
    match status.success() {
        true => Ok(format!("`{program}` succeeded")),
        false => Err(format!("`{program}` exited with {status}{said}")),
    }
}
