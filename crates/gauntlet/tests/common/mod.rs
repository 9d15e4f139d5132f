//! What the end-to-end tests share: a scratch directory per test, and the real binary run
//! in it with none of the user's gauntlet settings.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use assert_cmd::cargo::CommandCargoExt;

static HEAVY: Mutex<()> = Mutex::new(());

/// What the demo specs pass on to the candidate as its defects (`pass_env`): how `demo
/// --defect` reaches it, and how a test hands a knob to a drill run on its own.
pub const DEMO_DEFECTS_ENV: &str = "GAUNTLET_DEMO_DEFECTS";

/// One heavy run's turn: held until dropped.
pub struct HeavyTurn {
    _across_processes: std::fs::File,
    _in_process: MutexGuard<'static, ()>,
}

/// Runs that drive the canary's load or inject CPU, memory or disk pressure take turns: on 2
/// cores one test's cpu-pressure drill would starve another test's canary, and its latency
/// judge would rightly reject a candidate that is not at fault. The turn is taken within the
/// process and, by an exclusive lock on a file beside the test binaries, across the test
/// processes of this build (a runner may run them side by side); the kernel lets the lock
/// go with the process, however it ends.
pub fn heavy_turn() -> HeavyTurn {
    let in_process = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let exe = std::env::current_exe().expect("the test binary's path");
    let path = exe
        .parent()
        .expect("the test binary's folder")
        .join("heavy-turn.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", path.display()));
    HeavyTurn {
        _across_processes: file,
        _in_process: in_process,
    }
}

pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// The binary, run here, with the user's own keyring in `.config/gauntlet/keys` here.
    pub fn command(&self) -> Command {
        let mut cmd = Command::cargo_bin("gauntlet").expect("gauntlet binary");
        cmd.current_dir(self.path())
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", self.path().join(".config"))
            .env_remove("GAUNTLET_STORE")
            .env_remove("GAUNTLET_OUT")
            .env_remove("GAUNTLET_KEYRING")
            .env_remove("GAUNTLET_SIGNING_KEY")
            .env_remove("GAUNTLET_KEY_PASSWORD")
            .env_remove("GAUNTLET_REVOCATIONS")
            .env_remove(DEMO_DEFECTS_ENV)
            .stdin(Stdio::null());
        cmd
    }
    /// The keyring commands use when none is named: the user's own.
    pub fn keyring(&self) -> PathBuf {
        self.path().join(".config/gauntlet/keys")
    }
    /// The keyring `gauntlet demo` signs with.
    pub fn demo_keyring(&self) -> PathBuf {
        self.path().join(".gauntlet/demo/keys/release")
    }
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("gauntlet runs")
    }
    /// One drill of `spec` (written here) on its own, the candidate given `defects` as
    /// `demo --defect` gives them.
    pub fn drill(&self, spec: &str, name: &str, defects: &str) -> Output {
        self.command()
            .args(["chaos", spec, "--drill", name])
            .env(DEMO_DEFECTS_ENV, defects)
            .output()
            .expect("gauntlet runs")
    }
    pub fn runs_dir(&self) -> PathBuf {
        self.path().join(".gauntlet/runs")
    }
    /// The run directories, oldest first.
    pub fn run_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.runs_dir())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        dirs.sort();
        dirs
    }
    /// Writes a file (and its directories) in the scratch directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }
}

/// A keyring folder copied into a test is private again (0700, secret keys 0600), as one
/// made by `gauntlet keys` is: gauntlet refuses secret keys others can read.
pub fn make_private(keyring: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(keyring, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    for entry in std::fs::read_dir(keyring).expect("keyring").flatten() {
        if entry.path().extension().is_some_and(|e| e == "key") {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A run directory's report.json.
pub fn report(run_dir: &Path) -> Value {
    let bytes = std::fs::read(run_dir.join("report.json")).expect("report.json exists");
    serde_json::from_slice(&bytes).expect("report.json parses")
}

/// The check `id` of a report (the test fails without one).
pub fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .flat_map(|s| s["checks"].as_array().expect("checks"))
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {report}"))
}

/// The newest run's stored report (run ids sort by second; the store tells two apart).
pub fn latest(s: &Scratch) -> Value {
    serde_json::from_slice(&s.run(&["show", "latest", "--json"]).stdout).expect("show --json")
}

/// The names of a report's steps, in order.
pub fn step_names(report: &Value) -> Vec<&str> {
    report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["name"].as_str().expect("a step name"))
        .collect()
}

/// No process mentions `path` on its command line: whatever a run started there (systems,
/// its Prometheus, its Alertmanager) went with it.
pub fn assert_nothing_running_under(path: &Path) {
    let left = Command::new("pgrep")
        .args(["-f", &path.display().to_string()])
        .output()
        .expect("pgrep (procps) is installed");
    assert!(
        left.stdout.is_empty(),
        "left running: {}",
        text(&left.stdout)
    );
}

/// A running `gauntlet serve`, its address, and its log lines as they come.
pub struct Served {
    pub child: Child,
    pub base: String,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Served {
    pub fn start(s: &Scratch) -> Served {
        Self::start_with(s, "server.yaml")
    }

    /// A server with the config file `config` (in the scratch directory).
    pub fn start_with(s: &Scratch, config: &str) -> Served {
        let mut child = s
            .command()
            .args(["serve", "--config", config, "--log-format", "json"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("gauntlet serve starts");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut served = Served {
            child,
            base: String::new(),
            lines,
            seen: Vec::new(),
        };
        let said = served.wait_for("listening on http://");
        served.base = said[said.find("http://").unwrap()..].trim().to_string();
        served
    }

    /// The first log line containing `needle` (waiting for it, bounded).
    pub fn wait_for(&mut self, needle: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no `{needle}` in the log: {:#?}", self.seen));
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// `method path` with `token` (and `body`): the status and the body's bytes as they came.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&str>,
    ) -> (u16, Vec<u8>) {
        let mut out = gauntlet_net::Outgoing::get(&self.base, path);
        out.method = method.into();
        out.headers
            .insert("authorization".into(), format!("Bearer {token}"));
        out.body = body.map(str::to_string);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = gauntlet_net::HttpClient::new(Duration::from_secs(10));
        let answer = runtime
            .block_on(client.send(&out))
            .expect("the server answers");
        (answer.status, answer.body.to_vec())
    }

    /// GET `path` with `token`: the status and the body's bytes.
    pub fn get_bytes(&self, path: &str, token: &str) -> (u16, Vec<u8>) {
        self.send("GET", path, token, None)
    }

    /// `method path` with `token` (and `body`): the status and the body as JSON.
    pub fn call(&self, method: &str, path: &str, token: &str, body: Option<&str>) -> (u16, Value) {
        let (status, body) = self.send(method, path, token, body);
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token with `role` from the server config `server.yaml` here.
pub fn token(s: &Scratch, role: &str) -> String {
    let out = s.run(&["token", "create", "--config", "server.yaml", "--role", role]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}
