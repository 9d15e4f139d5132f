//! What a step gets to work with: the plan, where the targets answer, an HTTP client, and
//! the recorder for timeline events and evidence files.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::time::Instant;

use gauntlet_net::HttpClient;
use gauntlet_report::{
    DrillReport, EvidenceFile, StepReport, TimelineEvent, sha256_hex, write_atomic,
};
use gauntlet_spec::Plan;

/// Hears about progress as it happens; the binary draws it.
pub trait Observer: Send + Sync {
    fn step_started(&self, _step: &str) {}
    fn step_finished(&self, _step: &StepReport) {}
    fn event(&self, _event: &TimelineEvent) {}
    /// A long wait advancing: `done` of `total` units of `what`.
    fn progress(&self, _step: &str, _what: &str, _done: u64, _total: u64) {}
    /// A canary stage being judged (about once a second), and how it ended.
    fn stage(&self, _stage: &StageState) {}
}

/// A canary stage as it is judged: what a server shows live and answers controllers with.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StageState {
    /// 0-based, among the canary's stages.
    pub index: usize,
    pub label: String,
    /// Stages accepted before this one.
    pub accepted: usize,
    /// `judging`, or how the stage ended: `accepted`, `rejected`, `aborted`, `undecided`,
    /// `unmeasured`.
    pub state: &'static str,
    pub judges: Vec<JudgeState>,
}

/// One judge of a stage, now.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JudgeState {
    pub name: &'static str,
    pub dry_run: bool,
    pub samples: u64,
    /// The statistic and its boundaries at the last point of the judge's path.
    pub statistic: Option<f64>,
    pub reject_at: Option<f64>,
    pub accept_at: Option<f64>,
    pub verdict: gauntlet_stats::Verdict,
}

/// An observer that ignores everything (tests, `--quiet`).
pub struct Silent;
impl Observer for Silent {}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Everything a run has recorded so far; survives the pipeline being cancelled.
pub struct Recorder {
    started: Instant,
    run_dir: PathBuf,
    observer: Arc<dyn Observer>,
    inner: Mutex<Recorded>,
}

#[derive(Default)]
pub struct Recorded {
    pub steps: Vec<StepReport>,
    pub timeline: Vec<TimelineEvent>,
    pub evidence: Vec<EvidenceFile>,
    pub drills: Vec<DrillReport>,
    pub runbooks: Vec<gauntlet_report::RunbookReport>,
    /// What preflight found: the green fingerprint and the signed release manifest.
    pub release: crate::trust::ReleaseFacts,
    /// Numbers the steps measured, in base units, by name: what built-in gates read.
    pub measurements: std::collections::BTreeMap<String, f64>,
    /// The gates' evaluation, when the gates ran.
    pub gates: Option<gauntlet_report::GatesReport>,
    /// Failed requests through a traffic split, by the step that sent them.
    pub failed_requests: Vec<(String, gauntlet_net::FailedRequests)>,
}

/// An evidence file that could not be written (a full disk): the run says so instead of
/// pointing at a file that is not there.
#[derive(Debug, thiserror::Error)]
#[error("cannot write evidence {path}: {source}")]
pub struct EvidenceError {
    /// Relative to the run directory.
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

impl Recorder {
    pub fn new(run_dir: &Path, observer: Arc<dyn Observer>) -> Self {
        Self {
            started: Instant::now(),
            run_dir: run_dir.to_path_buf(),
            observer,
            inner: Mutex::new(Recorded::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn event(&self, step: Option<&str>, kind: &str, message: impl Into<String>) {
        let event = TimelineEvent {
            at: now_rfc3339(),
            elapsed_ms: self.elapsed_ms(),
            step: step.map(str::to_string),
            kind: kind.to_string(),
            message: message.into(),
        };
        self.observer.event(&event);
        self.lock().timeline.push(event);
    }

    pub fn progress(&self, step: &str, what: &str, done: u64, total: u64) {
        self.observer.progress(step, what, done, total);
    }

    pub fn stage(&self, stage: &StageState) {
        self.observer.stage(stage);
    }

    pub fn step_started(&self, step: &str) {
        self.observer.step_started(step);
        self.event(Some(step), "step-started", format!("{step} started"));
    }

    pub fn push_step(&self, step: StepReport) {
        self.observer.step_finished(&step);
        self.event(
            Some(&step.name),
            "step-finished",
            format!("{} finished: {}", step.name, step.outcome.as_str()),
        );
        self.lock().steps.push(step);
    }

    /// Writes an evidence file atomically under `evidence/STEP/` and indexes its digest.
    /// Returns its path relative to the run directory, or why it could not be written.
    pub fn evidence(&self, step: &str, name: &str, bytes: &[u8]) -> Result<String, EvidenceError> {
        let relative = self.unused_path(&format!("evidence/{step}/{}", file_safe(name)));
        if let Err(source) = write_atomic(&self.run_dir.join(&relative), bytes) {
            return Err(EvidenceError {
                path: relative,
                source,
            });
        }
        self.index(&relative, bytes);
        Ok(relative)
    }

    /// Two checks whose names read alike must not share (and overwrite) one evidence file:
    /// a taken path gets `-2`, `-3`, … before its extension.
    fn unused_path(&self, wanted: &str) -> String {
        let inner = self.lock();
        let taken = |p: &str| inner.evidence.iter().any(|e| e.path == p);
        if !taken(wanted) {
            return wanted.to_string();
        }
        let (stem, extension) = match wanted.rsplit_once('.') {
            Some((stem, ext)) if !stem.ends_with('/') => (stem, format!(".{ext}")),
            _ => (wanted, String::new()),
        };
        (2..)
            .map(|n| format!("{stem}-{n}{extension}"))
            .find(|candidate| !taken(candidate))
            .unwrap_or_else(|| wanted.to_string())
    }

    /// Indexes a file already in the run directory (process logs).
    pub fn index(&self, relative: &str, bytes: &[u8]) {
        let mut inner = self.lock();
        inner.evidence.retain(|e| e.path != relative);
        inner.evidence.push(EvidenceFile {
            path: relative.to_string(),
            sha256: sha256_hex(bytes),
            bytes: bytes.len() as u64,
        });
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Keeps what a step handed back besides its checks, and returns the checks.
    pub fn absorb(
        &self,
        step: &str,
        output: crate::steps::StepOutput,
    ) -> Vec<gauntlet_report::Check> {
        let mut inner = self.lock();
        inner.measurements.extend(output.measurements);
        inner.drills.extend(output.drills);
        inner.runbooks.extend(output.runbooks);
        if let Some(gates) = output.gates {
            inner.gates = Some(gates);
        }
        if let Some(release) = output.release {
            inner.release = release;
        }
        let failed = output.failed_requests.into_iter();
        inner
            .failed_requests
            .extend(failed.map(|f| (step.to_string(), f)));
        output.checks
    }

    /// What the steps so far measured (gates read them).
    pub fn measurements(&self) -> std::collections::BTreeMap<String, f64> {
        self.lock().measurements.clone()
    }

    pub fn take(&self) -> Recorded {
        std::mem::take(&mut *self.lock())
    }

    pub fn steps_done(&self) -> Vec<String> {
        self.lock().steps.iter().map(|s| s.name.clone()).collect()
    }
}

/// Keeps letters, digits, `.`, `-` and `_`; everything else becomes `-`.
pub fn file_safe(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.trim_matches('-').chars().take(120).collect()
}

/// A system gauntlet reaches: where it answers directly, and through its fault proxy
/// when the chaos step put one in front of it.
#[derive(Clone)]
pub struct System {
    pub url: String,
    pub proxy: Option<Arc<gauntlet_net::FaultProxy>>,
    /// For a dependency with a fault proxy: the proxy the baseline reaches it through, never
    /// faulted. Both arms then take the same hop, so the canary compares like with like.
    pub twin: Option<Arc<gauntlet_net::FaultProxy>>,
}

impl System {
    /// Where a drill reaches it: through the proxy when there is one.
    pub fn drill_url(&self) -> String {
        self.proxy
            .as_ref()
            .map_or_else(|| self.url.clone(), |p| format!("http://{}", p.addr()))
    }
}

/// What a step runs against.
pub struct RunContext {
    pub plan: Arc<Plan>,
    pub client: HttpClient,
    /// Base URL of the candidate.
    pub candidate: String,
    /// Base URL of the baseline, when the spec has one.
    pub baseline: Option<String>,
    pub recorder: Arc<Recorder>,
    /// Every system by name (`candidate`, `baseline`, dependency names).
    pub systems: std::collections::BTreeMap<String, System>,
    pub supervisor: Arc<Mutex<crate::supervisor::Supervisor>>,
    pub journal: Arc<Mutex<crate::journal::CleanupJournal>>,
    /// The spec as given: its path (relative paths in it resolve against its directory) and
    /// the exact text this run executes.
    pub spec_path: std::path::PathBuf,
    pub spec_text: String,
    /// The keyring that verifies the lock and signs the manifest.
    pub keyring: std::path::PathBuf,
    /// How the processes the run starts get their environment (and the run's marker).
    pub child_env: crate::child_env::ChildEnv,
    /// The Prometheus PromQL gates ask: the spec's `url`, or the one started for the run.
    pub prometheus: Option<String>,
    /// gauntlet's Alertmanager webhook receiver, when the spec routes alerts to it.
    pub alerts: Option<Arc<gauntlet_net::AlertReceiver>>,
    /// Gate values of the service's earlier GO runs, newest first, for `history` thresholds.
    pub history: Vec<std::collections::BTreeMap<String, f64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alike_names_get_their_own_evidence_files() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Recorder::new(dir.path(), Arc::new(Silent));
        let a = recorder
            .evidence("security", "path /admin.json", b"a")
            .unwrap();
        let b = recorder
            .evidence("security", "path //admin.json", b"b")
            .unwrap();
        assert_eq!(a, "evidence/security/path-admin.json");
        assert_eq!(b, "evidence/security/path-admin-2.json");
        assert_eq!(std::fs::read(dir.path().join(&a)).unwrap(), b"a");
        assert_eq!(recorder.take().evidence.len(), 2);
    }

    #[test]
    fn evidence_names_are_plain() {
        assert_eq!(file_safe("auth POST /items"), "auth-POST-items");
        assert_eq!(file_safe("/../../etc/passwd.json"), "..-..-etc-passwd.json");
    }
}
