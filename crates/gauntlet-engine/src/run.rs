//! One run of the gauntlet, start to finish: record the run, bring the systems up, run the
//! configured steps in order, and — however it ends (done, Ctrl-C, SIGTERM, a panicking
//! step) — stop everything that was started, fold the checks into a decision, and write
//! the reports and the store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gauntlet_net::HttpClient;
use gauntlet_report::{
    Check, Decision, DriftInfo, Outcome, REPORT_SCHEMA, Report, ServiceInfo, Severity, SpecInfo,
    StepReport, sha256_hex, to_junit, to_markdown, write_atomic,
};
use gauntlet_spec::Plan;
use gauntlet_store::{RunStart, Store};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::context::{Observer, Recorded, Recorder, RunContext, System, now_rfc3339};
use crate::decision::{Owners, SETUP_STEP, decide};
use crate::identity::ProcessIdentity;
use crate::journal::CleanupJournal;
use crate::steps::{self, Step};
use crate::supervisor::{Placeholders, Supervisor, wait_ready};
use gauntlet_report::step_outcome;

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The spec as the user gave it (path for messages, text for the copy and digest).
    pub spec_path: PathBuf,
    pub spec_text: String,
    /// Run directories go here, one per run.
    pub out_dir: PathBuf,
    pub store: gauntlet_store::Location,
    pub keep_going: bool,
    pub strict: bool,
    /// Timeout of each probe request.
    pub request_timeout: Duration,
    /// The keyring that signs the release manifest and the decision, and verifies the lock.
    pub keyring: PathBuf,
    /// The run's id, when the caller chose it (`gauntlet serve` answers with it at once).
    pub run_id: Option<String>,
    /// Cancelling it stops the run as Ctrl-C does: everything undone, the run ABORTED.
    pub cancel: Option<CancellationToken>,
    /// Values for variables the spec passes (`pass_env`), in place of gauntlet's own
    /// environment: what a server's caller asks for (a demo's defect knobs).
    pub given_env: BTreeMap<String, String>,
    /// Who starts the run (the OS user, a server's token), kept with it in the store.
    pub started_by: Option<String>,
    /// Who runs it (a server, or a CLI process) and for how long a hold lasts: the run is
    /// leased to it and renews its lease every third of the term while it runs; a run whose
    /// lease ran out, or whose holder on this machine is gone, is abandoned. `None`: only
    /// the process is watched (a store on one machine).
    pub lease: Option<LeaseHolder>,
    /// A shared path where the run's files are kept by digest when it ends, so any server
    /// serves them (`None`: they stay in the run directory only).
    pub shared_files: Option<PathBuf>,
}

/// How long a CLI run's hold lasts unrenewed.
pub const CLI_LEASE: Duration = Duration::from_secs(30);

/// A hold on a run: who (`PID.NAME@HOST`), and how long it lasts unrenewed.
#[derive(Debug, Clone)]
pub struct LeaseHolder {
    pub owner: String,
    pub term: Duration,
}

impl LeaseHolder {
    /// This process's hold, `PID.NAME@HOST`, for `term`.
    pub fn this_process(name: &str, term: Duration) -> Self {
        Self {
            owner: format!(
                "{}.{name}@{}",
                std::process::id(),
                crate::identity::host_name()
            ),
            term,
        }
    }
}

/// Renews a run's lease every third of its term for as long as it is kept: dropped, on
/// whatever path the run ends by, the renewal stops.
struct KeptLeased(tokio::task::JoinHandle<()>);

impl Drop for KeptLeased {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn keep_leased(store: Arc<Store>, id: String, term: Duration) -> KeptLeased {
    KeptLeased(tokio::spawn(async move {
        loop {
            tokio::time::sleep(term / 3).await;
            let (store, id) = (store.clone(), id.clone());
            let _ = tokio::task::spawn_blocking(move || store.renew_lease(&id, &lease_until(term)))
                .await;
        }
    }))
}

/// When a lease of `term` taken or renewed now runs out (RFC 3339, UTC, millisecond: the
/// store's time format, which sorts as time does).
pub fn lease_until(term: Duration) -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now() + term).to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] gauntlet_store::StoreError),
    #[error("cannot prepare the run directory {path}: {source}")]
    RunDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    #[error("cannot listen for signals: {0}")]
    Signals(std::io::Error),
    #[error("the run decided {decision} but its reports could not be written to {path}: {source}")]
    Reports {
        decision: Decision,
        path: PathBuf,
        source: std::io::Error,
    },
}

pub struct RunOutcome {
    pub report: Report,
    pub run_dir: PathBuf,
}

/// A run id sorts by time and is unique: `20261122T143700Z-3fa9`.
pub fn new_run_id() -> String {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(['-', ':'], "");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mix =
        gauntlet_net::SplitMix64::new(u64::from(nanos) ^ (u64::from(std::process::id()) << 32))
            .next_u64();
    format!("{stamp}-{:04x}", mix & 0xffff)
}

/// Marks runs abandoned without finishing as aborted: a server's run whose lease ran out (the
/// server is gone, wherever it ran), a CLI run whose process died; returns their ids and run
/// directories so the caller can undo their journals or point at `gauntlet recover`.
pub fn reap_abandoned(store: &Store) -> Result<Vec<(String, PathBuf)>, gauntlet_store::StoreError> {
    let mut reaped = Vec::new();
    let here = format!("@{}", crate::identity::host_name());
    for open in store.open_runs()? {
        let now = now_rfc3339();
        let dead = || {
            !ProcessIdentity {
                pid: open.pid,
                start_ticks: open.pid_start.clone(),
            }
            .is_alive()
        };
        // A server's run: its lease ran out, or its server (on this machine) is gone.
        let abandoned = match &open.lease {
            Some(lease) => lease.until < now || (lease.owner.ends_with(&here) && dead()),
            None => dead(),
        };
        if abandoned && store.mark_aborted(&open.id, &now)? {
            reaped.push((open.id, PathBuf::from(open.run_dir)));
        }
    }
    Ok(reaped)
}

/// Runs a plan: its steps in order against its systems, and whatever ends it, undoes
/// everything and stores the decision.
pub async fn run(
    plan: Plan,
    options: RunOptions,
    observer: Arc<dyn Observer>,
) -> Result<RunOutcome, EngineError> {
    let steps = steps::runners(&plan);
    run_steps(plan, steps, options, observer).await
}

/// [`run`] with the steps given rather than taken from the plan.
pub(crate) async fn run_steps(
    plan: Plan,
    selected: Vec<Box<dyn Step>>,
    options: RunOptions,
    observer: Arc<dyn Observer>,
) -> Result<RunOutcome, EngineError> {
    let plan = Arc::new(plan);
    let store = Arc::new(Store::connect(&options.store)?);
    reap_abandoned(&store)?;
    let started = Instant::now();
    let begun = Begun::record(&store, &plan, &options)?;
    let leased = options
        .lease
        .as_ref()
        .map(|held| keep_leased(store.clone(), begun.run_id.clone(), held.term));
    let recorder = Arc::new(Recorder::new(&begun.run_dir, observer));
    recorder.event(
        None,
        "run-started",
        format!(
            "run {}, seed {}, ceiling {} (`timeout:`)",
            begun.run_id,
            plan.seed.0,
            gauntlet_spec::limits::human(plan.ceiling)
        ),
    );
    let planned = Planned::of(&selected);
    let history = gate_history(&store, &plan);
    let aborted = execute(&plan, selected, &begun, &recorder, &options, history).await?;
    let recorded = recorder.take();
    let concluded = conclude(
        &plan, &options, &begun, &recorder, recorded, &planned, aborted,
    );
    let drift = drift_since_previous(
        &store,
        &plan,
        &begun,
        concluded.trust.green_fingerprint.as_deref(),
    );
    let report = concluded.into_report(&plan, &options, &begun, started, drift);
    let outcome = finish(&store, begun.run_dir, report);
    drop(leased);
    let outcome = outcome?;
    if let Some(shared) = &options.shared_files {
        // The decision stands whether or not the copy succeeds; the report says where the
        // files are, and the run directory keeps them.
        if let Err(e) = gauntlet_store::SharedFiles::new(shared)
            .keep_run(&outcome.report.run_id, &outcome.run_dir)
        {
            recorder.event(
                None,
                "shared-files",
                format!(
                    "the run's files could not be kept on {}: {e}",
                    shared.display()
                ),
            );
        }
    }
    Ok(outcome)
}

/// The steps a run was asked for, by name, and each one's owner role.
struct Planned {
    names: Vec<String>,
    roles: BTreeMap<String, String>,
}

impl Planned {
    fn of(selected: &[Box<dyn Step>]) -> Planned {
        Planned {
            names: selected.iter().map(|s| s.name().to_string()).collect(),
            roles: selected
                .iter()
                .map(|s| (s.name().to_string(), s.meta().owner.clone()))
                .collect(),
        }
    }
}

/// Runs the steps under the ceiling and the signals, then stops everything they started and
/// undoes their faults. Returns why the run was cut short, if it was.
async fn execute(
    plan: &Arc<Plan>,
    selected: Vec<Box<dyn Step>>,
    begun: &Begun,
    recorder: &Arc<Recorder>,
    options: &RunOptions,
    history: Vec<BTreeMap<String, f64>>,
) -> Result<Option<String>, EngineError> {
    let child_env =
        crate::child_env::ChildEnv::new(&begun.run_id, plan).with_given(&options.given_env);
    let supervisor = Arc::new(Mutex::new(
        Supervisor::new(begun.journal.clone()).with_env(child_env),
    ));
    let pipeline = pipeline(
        plan.clone(),
        selected,
        begun.run_dir.clone(),
        (supervisor.clone(), begun.journal.clone()),
        recorder.clone(),
        options.clone(),
        history,
    );
    let cancel = options.cancel.clone().unwrap_or_default();
    let aborted = supervise(pipeline, plan.ceiling, cancel).await?;
    if let Some(why) = &aborted {
        recorder.event(None, "aborted", why.clone());
    }
    clean_up(&supervisor, begun, recorder).await;
    index_logs(recorder, &begun.run_dir);
    Ok(aborted)
}

/// What a run concluded from its steps: the decision, the readiness score, the failure
/// taxonomy and the signed attestation.
struct Concluded {
    decided: gauntlet_report::Decided,
    steps: Vec<StepReport>,
    readiness: Option<gauntlet_report::ReadinessReport>,
    taxonomy: Option<gauntlet_report::TaxonomyReport>,
    trust: gauntlet_report::TrustInfo,
    recorded: Recorded,
}

fn conclude(
    plan: &Plan,
    options: &RunOptions,
    begun: &Begun,
    recorder: &Recorder,
    mut recorded: Recorded,
    planned: &Planned,
    aborted: Option<String>,
) -> Concluded {
    let mut steps = with_unrun(
        std::mem::take(&mut recorded.steps),
        &planned.names,
        aborted.as_deref(),
    );
    let scored = plan
        .readiness()
        .filter(|_| aborted.is_none())
        .map(|section| readiness(section, plan, options, &begun.run_dir, &mut steps));
    let owners = Owners {
        step_roles: planned.roles.clone(),
        people: &plan.service.owners,
    };
    // Steps stopped early by hard gating carry their own note already.
    let mut decided = decide(&steps, plan.gating, aborted.as_deref(), &owners);
    let taxonomy = crate::taxonomy::classify(&steps, &recorded.failed_requests, &plan.hints);
    let (readiness, deadlines) = scored.unzip();
    let deadlines = deadlines.unwrap_or_default();
    gauntlet_review::readiness::annotate(&mut decided.conditions, &deadlines, &plan.service.owners);
    gauntlet_review::signoff::require(&mut decided, plan);
    if let Some(gates) = &recorded.gates {
        weighted_gates_short(&mut decided, gates);
    }
    let trust = crate::trust::attest(
        plan,
        &options.spec_path,
        &begun.spec_sha256,
        &begun.run_id,
        &begun.run_dir,
        &options.keyring,
        decided.decision,
        &steps,
        std::mem::take(&mut recorded.release),
    );
    for signed in trust.attestation.iter().chain(&trust.test_result) {
        // Listed with the digest of what was written, or not listed at all.
        match std::fs::read(begun.run_dir.join(signed)) {
            Ok(bytes) => recorder.index(signed, &bytes),
            Err(e) => recorder.event(None, "evidence", format!("{signed} not listed: {e}")),
        }
    }
    recorded.evidence.extend(recorder.take().evidence);
    Concluded {
        decided,
        steps,
        readiness,
        taxonomy,
        trust,
        recorded,
    }
}

impl Concluded {
    fn into_report(
        self,
        plan: &Plan,
        options: &RunOptions,
        begun: &Begun,
        started: Instant,
        drift: Option<DriftInfo>,
    ) -> Report {
        let Concluded {
            decided,
            steps,
            readiness,
            taxonomy,
            trust,
            recorded,
        } = self;
        Report {
            schema: REPORT_SCHEMA.to_string(),
            run_id: begun.run_id.clone(),
            gauntlet_version: env!("CARGO_PKG_VERSION").to_string(),
            service: ServiceInfo {
                name: plan.service.name.clone(),
                version: plan.service.version.clone(),
            },
            spec: SpecInfo {
                path: options.spec_path.display().to_string(),
                sha256: begun.spec_sha256.clone(),
            },
            started_at: begun.started_at.clone(),
            finished_at: now_rfc3339(),
            duration_ms: started.elapsed().as_millis() as u64,
            seed: Some(plan.seed.0),
            exit_code: gauntlet_report::exit::of(
                decided.decision,
                plan.gating == gauntlet_spec::GatingMode::None,
                options.strict,
            ),
            gating: plan.gating.as_str().to_string(),
            decision: decided.decision,
            summary: decided.summary,
            conditions: decided.conditions,
            steps,
            timeline: recorded.timeline,
            drills: recorded.drills,
            runbooks: recorded.runbooks,
            evidence: recorded.evidence,
            trust: Some(trust),
            drift,
            measurements: recorded.measurements,
            gates: recorded.gates,
            readiness,
            taxonomy,
        }
    }
}

/// A run that has its directory, its copy of the spec, its cleanup journal and its row in
/// the store.
struct Begun {
    run_id: String,
    run_dir: PathBuf,
    spec_sha256: String,
    started_at: String,
    journal: Arc<Mutex<CleanupJournal>>,
}

impl Begun {
    fn record(store: &Store, plan: &Plan, options: &RunOptions) -> Result<Self, EngineError> {
        let run_id = options.run_id.clone().unwrap_or_else(new_run_id);
        let run_dir = options.out_dir.join(&run_id);
        let dir_error = |source| EngineError::RunDir {
            path: run_dir.clone(),
            source,
        };
        // Reports, evidence and logs are for the run's owner only.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&run_dir)
            .map_err(dir_error)?;
        let run_dir = run_dir.canonicalize().map_err(dir_error)?;
        write_atomic(&run_dir.join("spec.yaml"), options.spec_text.as_bytes())
            .map_err(dir_error)?;
        let spec_sha256 = sha256_hex(options.spec_text.as_bytes());
        let journal = Arc::new(Mutex::new(CleanupJournal::create(&run_dir)?));
        let started_at = now_rfc3339();
        let me = ProcessIdentity::current();
        store.begin_run(&RunStart {
            id: run_id.clone(),
            service: plan.service.name.clone(),
            version: plan.service.version.clone(),
            spec_path: options.spec_path.display().to_string(),
            spec_sha256: spec_sha256.clone(),
            run_dir: run_dir.display().to_string(),
            started_at: started_at.clone(),
            pid: me.pid,
            pid_start: me.start_ticks,
            started_by: options.started_by.clone(),
            lease: options.lease.as_ref().map(|held| gauntlet_store::Lease {
                owner: held.owner.clone(),
                until: lease_until(held.term),
            }),
        })?;
        Ok(Begun {
            run_id,
            run_dir,
            spec_sha256,
            started_at,
            journal,
        })
    }
}

/// Runs the pipeline until it ends, the ceiling passes, or a signal asks the run to stop;
/// returns why the run was cut short, if it was.
async fn supervise(
    pipeline: impl Future<Output = ()> + Send + 'static,
    ceiling: Duration,
    cancel: CancellationToken,
) -> Result<Option<String>, EngineError> {
    let mut interrupt = signal(SignalKind::interrupt()).map_err(EngineError::Signals)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(EngineError::Signals)?;
    // A closed terminal or SSH session: the same clean stop as Ctrl-C.
    let mut hangup = signal(SignalKind::hangup()).map_err(EngineError::Signals)?;
    let pipeline = tokio::spawn(pipeline);
    let abort_handle = pipeline.abort_handle();
    let stop = |why: String| {
        abort_handle.abort();
        Some(why)
    };
    Ok(tokio::select! {
        joined = pipeline => match joined {
            Ok(()) => None,
            Err(e) if e.is_panic() => Some(format!("a step panicked: {}", panic_message(e.into_panic()))),
            Err(e) => Some(format!("the pipeline stopped: {e}")),
        },
        () = tokio::time::sleep(ceiling) => stop(format!(
            "stopped at its ceiling of {} (`timeout:` in the spec)",
            gauntlet_spec::limits::human(ceiling)
        )),
        _ = interrupt.recv() => stop("interrupted (SIGINT)".to_string()),
        _ = terminate.recv() => stop("terminated (SIGTERM)".to_string()),
        _ = hangup.recv() => stop("hung up (SIGHUP)".to_string()),
        () = cancel.cancelled() => stop("cancelled".to_string()),
    })
}

/// Undoes everything the run started, whatever happened before. Stopping may wait for
/// processes, so it runs off the async workers.
async fn clean_up(supervisor: &Arc<Mutex<Supervisor>>, begun: &Begun, recorder: &Recorder) {
    let supervisor = supervisor.clone();
    let journal = begun.journal.clone();
    let run = begun.run_id.clone();
    let cleanup = tokio::task::spawn_blocking(move || {
        // Undo calls first: they may need the systems to answer.
        let mut done = journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .undo_calls();
        done.extend(
            supervisor
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .stop_all(),
        );
        done.extend(journal.lock().unwrap_or_else(|e| e.into_inner()).undo_all());
        // Anything of the run's that escaped its process group (or was never journaled).
        done.extend(crate::journal::stop_marked(&run, Duration::from_secs(5)));
        done
    });
    match cleanup.await {
        Ok(lines) => lines
            .into_iter()
            .for_each(|line| recorder.event(None, "cleanup", line)),
        // What is left is in the journal, for `gauntlet recover`.
        Err(e) => recorder.event(
            None,
            "cleanup",
            format!("cleanup stopped ({e}); run `gauntlet recover`"),
        ),
    }
}

/// The steps that ran, then the planned ones that did not, each saying why.
fn with_unrun(
    mut steps_run: Vec<StepReport>,
    planned: &[String],
    aborted: Option<&str>,
) -> Vec<StepReport> {
    for name in planned {
        if !steps_run.iter().any(|s| &s.name == name) {
            let note = match aborted {
                Some(why) => format!("not run: the run was {why}"),
                None => "not run".to_string(),
            };
            steps_run.push(skipped_step(name, note));
        }
    }
    steps_run
}

/// Scores the checklist from every check the run made and adds it as a step; returns the
/// readiness report and the items' deadlines.
fn readiness(
    section: &gauntlet_spec::ReadinessPlan,
    plan: &Plan,
    options: &RunOptions,
    run_dir: &Path,
    steps_run: &mut Vec<StepReport>,
) -> (
    gauntlet_report::ReadinessReport,
    BTreeMap<String, (String, String)>,
) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let spec_dir = options.spec_path.parent().unwrap_or(Path::new("."));
    // A role key the run's keyring knows as revoked vouches for nothing.
    let known = gauntlet_trust::Keyring::open(&options.keyring)
        .map(|k| k.knowledge())
        .unwrap_or_default();
    let signatures = gauntlet_review::vouch::check_all(plan, spec_dir, &known);
    gauntlet_review::vouch::keep(spec_dir, run_dir, &signatures);
    let evaluated = gauntlet_review::readiness::evaluate(
        section,
        &plan.service.owners,
        steps_run,
        &signatures,
        now,
    );
    steps_run.push(evaluated.step);
    (evaluated.report, evaluated.deadlines)
}

/// What changed since the previous finished run of this service.
fn drift_since_previous(
    store: &Store,
    plan: &Plan,
    begun: &Begun,
    green_fingerprint: Option<&str>,
) -> Option<DriftInfo> {
    let previous = store.list_runs(100).ok()?.into_iter().find(|r| {
        r.id != begun.run_id && r.service == plan.service.name && r.status == "finished"
    })?;
    let changes = gauntlet_review::drift::between(
        Path::new(&previous.run_dir),
        &begun.run_dir,
        green_fingerprint,
    )
    .ok()?;
    Some(DriftInfo {
        previous_run: previous.id,
        changes,
    })
}

/// Stores the decision and writes the reports. The decision is stored even when the
/// reports cannot be written (a full disk): then the run is an internal error, never a
/// decision nobody can read.
fn finish(store: &Store, run_dir: PathBuf, report: Report) -> Result<RunOutcome, EngineError> {
    let written = write_reports(&run_dir, &report);
    store.finish_run(&report)?;
    written.map_err(|source| EngineError::Reports {
        decision: report.decision,
        path: run_dir.clone(),
        source,
    })?;
    Ok(RunOutcome { report, run_dir })
}

/// Gate values of the service's last GO runs, newest first (runs whose report cannot be
/// read are left out).
fn gate_history(store: &Store, plan: &Plan) -> Vec<BTreeMap<String, f64>> {
    // Only a plan whose gates compare with history needs the earlier reports read.
    let wanted = plan
        .gates()
        .filter(|g| g.reads_history())
        .map_or(0, |g| g.history as usize);
    if wanted == 0 {
        return Vec::new();
    }
    let service = plan.service.name.as_str();
    let Ok(runs) = store.list_runs(500) else {
        return Vec::new();
    };
    runs.into_iter()
        .filter(|r| r.service == service && r.decision.as_deref() == Some("GO"))
        .filter_map(|r| {
            let bytes = std::fs::read(Path::new(&r.run_dir).join("report.json")).ok()?;
            let report: Report = serde_json::from_slice(&bytes).ok()?;
            Some(steps::gates::values(&report))
        })
        .filter(|values| !values.is_empty())
        .take(wanted)
        .collect()
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

pub(crate) fn skipped_step(name: &str, note: String) -> StepReport {
    StepReport {
        name: name.to_string(),
        outcome: Outcome::Skipped,
        started_at: None,
        duration_ms: 0,
        note: Some(note),
        checks: Vec::new(),
    }
}

pub fn write_reports(run_dir: &Path, report: &Report) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    write_atomic(&run_dir.join("report.json"), &json)?;
    write_atomic(&run_dir.join("report.md"), to_markdown(report).as_bytes())?;
    write_atomic(&run_dir.join("junit.xml"), to_junit(report).as_bytes())
}

fn index_logs(recorder: &Recorder, run_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(run_dir.join("logs")) else {
        return;
    };
    let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        let relative = format!("logs/{}", name.to_string_lossy());
        if let Ok(bytes) = std::fs::read(run_dir.join(&relative)) {
            recorder.index(&relative, &bytes);
        }
    }
}

/// Brings the systems up, then runs the selected steps in order. Everything it learns goes
/// to the recorder, so a cancelled pipeline still leaves its partial results.
async fn pipeline(
    plan: Arc<Plan>,
    selected: Vec<Box<dyn Step>>,
    run_dir: PathBuf,
    (supervisor, journal): (Arc<Mutex<Supervisor>>, Arc<Mutex<CleanupJournal>>),
    recorder: Arc<Recorder>,
    options: RunOptions,
    history: Vec<BTreeMap<String, f64>>,
) {
    let client = HttpClient::new(options.request_timeout);
    recorder.step_started(SETUP_STEP);
    let setup_started = Instant::now();
    let setup_at = now_rfc3339();
    let spec_dir = options
        .spec_path
        .parent()
        .map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        })
        .and_then(|d| d.canonicalize().ok())
        .unwrap_or_default();
    let setup = (plan.as_ref(), run_dir.as_path(), spec_dir.as_path());
    let (mut checks, urls) = bring_up(setup, &supervisor, &client, &recorder).await;
    let ready = checks.iter().all(|c| c.outcome.is_pass());
    let mut prometheus = plan.prometheus.as_ref().and_then(|p| p.url.clone());
    let mut alerts = None;
    if ready && let Some(section) = &plan.prometheus {
        let monitoring = Monitoring {
            plan: &plan,
            run_dir: &run_dir,
            supervisor: &supervisor,
            client: &client,
            recorder: &recorder,
            spec_path: &options.spec_path,
        };
        let started = monitoring.start(section, urls.as_ref(), &mut checks).await;
        alerts = started.0;
        prometheus = started.1;
    }
    recorder.push_step(StepReport {
        name: SETUP_STEP.into(),
        outcome: step_outcome(&checks),
        started_at: Some(setup_at),
        duration_ms: setup_started.elapsed().as_millis() as u64,
        note: None,
        checks,
    });
    let Some(systems) = urls.filter(|_| ready) else {
        for step in &selected {
            recorder.push_step(skipped_step(
                step.name(),
                "not run: a system under test did not come up".into(),
            ));
        }
        return;
    };
    let ctx = RunContext {
        plan: plan.clone(),
        client,
        candidate: systems
            .get("candidate")
            .map(|s| s.url.clone())
            .unwrap_or_default(),
        baseline: systems.get("baseline").map(|s| s.url.clone()),
        recorder: recorder.clone(),
        systems,
        supervisor: supervisor.clone(),
        journal,
        spec_path: options.spec_path.clone(),
        spec_text: options.spec_text.clone(),
        keyring: options.keyring.clone(),
        child_env: crate::child_env::ChildEnv::new(
            &run_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            &plan,
        )
        .with_given(&options.given_env),
        prometheus,
        alerts,
        history,
    };
    let keep_going = options.keep_going || plan.gating != gauntlet_spec::GatingMode::Hard;
    run_in_order(&ctx, &selected, keep_going).await;
}

/// The steps in order, each reported as it ends; after a hard failure (unless `keep_going`)
/// only the steps that run after a stop still run, the others are skipped saying why.
async fn run_in_order(ctx: &RunContext, selected: &[Box<dyn Step>], keep_going: bool) {
    let recorder = &ctx.recorder;
    let mut stopped_by: Option<String> = None;
    for step in selected {
        if let Some(by) = stopped_by.as_ref().filter(|_| !step.runs_after_a_stop()) {
            recorder.push_step(skipped_step(
                step.name(),
                format!("not run: stopped after a hard failure in `{by}` (use --keep-going to run every step)"),
            ));
            continue;
        }
        recorder.step_started(step.name());
        let at = now_rfc3339();
        let began = Instant::now();
        let checks = recorder.absorb(step.name(), step.run(ctx).await);
        let report = StepReport {
            name: step.name().to_string(),
            outcome: step_outcome(&checks),
            started_at: Some(at),
            duration_ms: began.elapsed().as_millis() as u64,
            note: checks
                .is_empty()
                .then(|| "the step produced no checks".to_string()),
            checks,
        };
        let hard_failure = report
            .checks
            .iter()
            .any(|c| c.outcome == Outcome::Fail && c.severity == Severity::Hard);
        if hard_failure && !keep_going {
            stopped_by = Some(report.name.clone());
        }
        recorder.push_step(report);
    }
}

/// What starts the run's own Prometheus and Alertmanager, once the systems they watch are up.
struct Monitoring<'a> {
    plan: &'a Plan,
    run_dir: &'a Path,
    supervisor: &'a Arc<Mutex<Supervisor>>,
    client: &'a HttpClient,
    recorder: &'a Recorder,
    spec_path: &'a Path,
}

impl Monitoring<'_> {
    /// Alerts go to gauntlet's receiver: through an Alertmanager started for the run, or
    /// through the user's own pointed at the receiver's fixed address. Returns the receiver
    /// (when something can feed it) and the Prometheus the steps ask: the one started for
    /// the run, else the spec's.
    async fn start(
        &self,
        section: &gauntlet_spec::PrometheusSection,
        systems: Option<&BTreeMap<String, System>>,
        checks: &mut Vec<Check>,
    ) -> (Option<Arc<gauntlet_net::AlertReceiver>>, Option<String>) {
        let mut alertmanager = None;
        let mut alerts = None;
        if let Some(am) = &section.alertmanager {
            let (check, receiver) = crate::prom::start_receiver(am).await;
            checks.push(check);
            if let Some(receiver) = receiver.as_ref().filter(|_| am.start) {
                let (check, addr) = crate::prom::start_alertmanager(
                    am,
                    &receiver.url(),
                    self.run_dir,
                    self.supervisor,
                    self.client,
                    self.recorder,
                )
                .await;
                checks.push(check);
                alertmanager = addr;
            }
            // Without the Alertmanager that feeds it, a receiver would only ever wait: the
            // drills' alert checks are then inconclusive, not failed.
            if !am.start || alertmanager.is_some() {
                alerts = receiver.map(Arc::new);
            }
        }
        let (Some(systems), true) = (systems, section.start) else {
            return (alerts, section.url.clone());
        };
        let rule_files = crate::prom::loadable_rules(self.plan, self.spec_path, self.run_dir);
        let (check, url) = crate::prom::start(
            section,
            self.run_dir,
            self.supervisor,
            self.client,
            self.recorder,
            systems,
            &rule_files,
            alertmanager.as_deref(),
        )
        .await;
        checks.push(check);
        (alerts, url)
    }
}

/// Starts dependencies, then the baseline, then the candidate, each after the previous is
/// ready; fault proxies go in front of the candidate and its dependencies when the plan wants
/// them. Returns one readiness check per system and, when all came up, the target URLs.
async fn bring_up(
    (plan, run_dir, spec_dir): (&Plan, &Path, &Path),
    supervisor: &Mutex<Supervisor>,
    client: &HttpClient,
    recorder: &Recorder,
) -> (Vec<Check>, Option<BTreeMap<String, System>>) {
    let mut known = Placeholders::new();
    known.insert("spec_dir".into(), spec_dir.display().to_string());
    // The candidate reaches its dependencies through their fault proxies; the baseline
    // through twins of them that are never faulted (or directly, without proxies).
    let mut known_to_candidate = known.clone();
    let mut checks = Vec::new();
    let mut urls: BTreeMap<String, System> = BTreeMap::new();
    for system in plan.systems.in_start_order() {
        let name = system.name.clone();
        let dependency = system.is_dependency.then_some(name.as_str());
        let placeholders = if name == "candidate" {
            &known_to_candidate
        } else {
            &known
        };
        let (check, endpoint) =
            start_system(system, run_dir, placeholders, supervisor, client, recorder).await;
        checks.push(check);
        let Some(endpoint) = endpoint else {
            return (checks, None);
        };
        let (proxy, twin) = if plan.systems.proxied && name != "baseline" {
            match proxies(
                plan,
                &name,
                dependency.is_some(),
                &endpoint.authority,
                recorder,
            )
            .await
            {
                Ok(started) => started,
                Err(check) => {
                    checks.push(check);
                    return (checks, None);
                }
            }
        } else {
            (None, None)
        };
        if let Some(dependency) = dependency {
            let key = format!("dependencies.{dependency}.url");
            let through = |p: &Option<Arc<gauntlet_net::FaultProxy>>| {
                p.as_ref()
                    .map_or_else(|| endpoint.url.clone(), |p| format!("http://{}", p.addr()))
            };
            known.insert(key.clone(), through(&twin));
            known_to_candidate.insert(key, through(&proxy));
        }
        urls.insert(
            name,
            System {
                url: endpoint.url,
                proxy,
                twin,
            },
        );
    }
    (checks, Some(urls))
}

/// Starts one system (or finds a URL target) and waits for its health path; its setup
/// check, and where it answers when it is ready.
async fn start_system(
    system: &gauntlet_spec::System,
    run_dir: &Path,
    placeholders: &Placeholders,
    supervisor: &Mutex<Supervisor>,
    client: &HttpClient,
    recorder: &Recorder,
) -> (Check, Option<crate::supervisor::Endpoint>) {
    let name = &system.name;
    let check = Check::new(SETUP_STEP, &format!("{name} ready"), Severity::Hard).threshold(
        format!("2xx on {} within {}", system.health, system.ready_timeout),
    );
    let spawned =
        supervisor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spawn(system, run_dir, placeholders);
    let endpoint = match spawned {
        Ok(endpoint) => endpoint,
        Err(e) => return (check.outcome(Outcome::Inconclusive, e.to_string()), None),
    };
    if system.command.is_some() {
        let said = format!("{name} at {}", endpoint.url);
        recorder.event(Some(SETUP_STEP), "process-started", said);
    }
    let timeout = system.ready_timeout.as_std();
    match wait_ready(supervisor, client, &endpoint, &system.health, timeout).await {
        Ok(after) => {
            let after = after.as_secs_f64();
            recorder.event(
                Some(SETUP_STEP),
                "ready",
                format!("{name} ready after {after:.2}s"),
            );
            let answered = format!("{name} answered its health check at {}", endpoint.url);
            let check = check
                .measured(format!("ready after {after:.2}s"))
                .outcome(Outcome::Pass, answered);
            (check, Some(endpoint))
        }
        Err(e) => (check.outcome(Outcome::Inconclusive, e.to_string()), None),
    }
}

type Proxy = Arc<gauntlet_net::FaultProxy>;

/// The fault proxy in front of system `name` and, for a dependency, the never-faulted twin
/// the baseline reaches it through; or the setup check saying why they did not start.
async fn proxies(
    plan: &Plan,
    name: &str,
    dependency: bool,
    upstream: &str,
    recorder: &Recorder,
) -> Result<(Option<Proxy>, Option<Proxy>), Check> {
    let protocol = match plan.systems.protocol(name) {
        gauntlet_spec::ProxyProtocol::Tcp => gauntlet_net::Protocol::Tcp,
        gauntlet_spec::ProxyProtocol::Http => gauntlet_net::Protocol::Http,
    };
    let seed = plan.seed.derive("proxy", 0);
    let start = |label: String, says: &'static str| {
        start_proxy(label, upstream.to_string(), protocol, seed, recorder, says)
    };
    let started = match start(name.to_string(), "fault proxy").await {
        Ok(p) if dependency => {
            let label = format!("{name} (baseline)");
            start(label, "never-faulted twin proxy")
                .await
                .map(|t| (Some(p), Some(t)))
        }
        Ok(p) => Ok((Some(p), None)),
        Err(e) => Err(e),
    };
    started.map_err(|e| {
        Check::new(SETUP_STEP, &format!("{name} proxy"), Severity::Hard).outcome(
            Outcome::Inconclusive,
            format!("cannot start the fault proxy: {e}"),
        )
    })
}

/// Weighted gates speak through the score, so a GO can stand with one that failed or went
/// unmeasured (scored as zero); the summary names them instead of letting "every check
/// passed" hide them.
fn weighted_gates_short(
    decided: &mut gauntlet_report::Decided,
    gates: &gauntlet_report::GatesReport,
) {
    let short: Vec<String> = gates
        .gates
        .iter()
        .filter(|g| !g.critical && g.outcome != Outcome::Pass)
        .map(|g| format!("`{}` {}", g.name, g.outcome.as_str()))
        .collect();
    if short.is_empty() || decided.decision == gauntlet_report::Decision::Aborted {
        return;
    }
    let summary = decided.summary.trim_end_matches('.');
    decided.summary = format!(
        "{summary}; weighted gates short of pass, counted in the score only: {}.",
        short.join(", ")
    );
}

async fn start_proxy(
    label: String,
    upstream: String,
    protocol: gauntlet_net::Protocol,
    seed: u64,
    recorder: &Recorder,
    says: &str,
) -> Result<Arc<gauntlet_net::FaultProxy>, String> {
    let proxy = gauntlet_net::FaultProxy::start(
        &label,
        ([127, 0, 0, 1], 0).into(),
        &upstream,
        protocol,
        seed,
    )
    .await
    .map_err(|e| e.to_string())?;
    recorder.event(
        Some(SETUP_STEP),
        "proxy-started",
        format!("{says} for {label}: {} -> {upstream}", proxy.addr()),
    );
    Ok(Arc::new(proxy))
}

/// What `gauntlet recover` undid for one dead run.
#[derive(Debug)]
pub struct Recovered {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub undone: Vec<String>,
}

/// Undoes what dead runs left behind. A run whose process is still alive is left alone;
/// it will undo its own faults.
pub fn recover_runs(store: &Store, only_run: Option<&str>) -> Result<Vec<Recovered>, EngineError> {
    reap_abandoned(store)?;
    let runs = match only_run {
        Some(id) => vec![store.find_run(id)?],
        None => store.list_runs(usize::MAX >> 1)?,
    };
    let mut recovered = Vec::new();
    // Processes of dead runs are found by their marker too: a run killed between starting a
    // process and journaling it leaves one the journal does not know.
    let marked = crate::journal::marked_processes();
    for summary in runs.into_iter().filter(|r| r.status != "running") {
        let run_dir = PathBuf::from(&summary.run_dir);
        let Ok(leftovers) = crate::journal::read_leftovers(&run_dir) else {
            continue;
        };
        let unjournaled = marked.iter().any(|(run, _)| *run == summary.id);
        if (leftovers.pending.is_empty() && !unjournaled)
            || leftovers.owner.as_ref().is_some_and(|o| o.is_alive())
        {
            continue;
        }
        let mut undone =
            crate::journal::recover(&run_dir).map_err(|source| EngineError::RunDir {
                path: run_dir.clone(),
                source,
            })?;
        undone.extend(crate::journal::stop_marked(
            &summary.id,
            Duration::from_secs(5),
        ));
        recovered.push(Recovered {
            run_id: summary.id,
            run_dir,
            undone,
        });
    }
    Ok(recovered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Silent;
    use crate::steps::StepFuture;
    use gauntlet_report::Decision;

    /// A server's run on another machine is abandoned only once its lease has run out; one
    /// on this machine as soon as its server's process is gone; a live one never.
    #[test]
    fn a_leased_run_is_reaped_when_its_lease_runs_out_or_its_server_is_gone_here() {
        let store = Store::open_in_memory().unwrap();
        let me = ProcessIdentity::current();
        let begin = |id: &str, pid: u32, owner: &str, until: &str| {
            store
                .begin_run(&RunStart {
                    id: id.into(),
                    service: "s".into(),
                    version: "1".into(),
                    spec_path: "g.yaml".into(),
                    spec_sha256: "00".into(),
                    run_dir: format!("/nonexistent/{id}"),
                    started_at: now_rfc3339(),
                    pid,
                    pid_start: if pid == me.pid {
                        me.start_ticks.clone()
                    } else {
                        "1".into()
                    },
                    started_by: None,
                    lease: Some(gauntlet_store::Lease {
                        owner: owner.into(),
                        until: until.into(),
                    }),
                })
                .unwrap();
        };
        let here = format!("1.0@{}", crate::identity::host_name());
        let past = "2000-01-01T00:00:00.000Z";
        let future = lease_until(Duration::from_secs(3600));
        // Elsewhere, its (dead-looking) pid means nothing: only the lease counts.
        begin("elsewhere-live", u32::MAX - 1, "1.0@another-host", &future);
        begin("elsewhere-expired", u32::MAX - 1, "1.0@another-host", past);
        // Here, a gone process is enough; a live one keeps its run.
        begin("here-dead", u32::MAX - 1, &here, &future);
        begin("here-live", me.pid, &here, &future);
        let mut reaped: Vec<String> = reap_abandoned(&store)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        reaped.sort();
        assert_eq!(reaped, ["elsewhere-expired", "here-dead"]);
    }

    /// A step that panics halfway, as a bug in a step would.
    struct Panicking(gauntlet_spec::StepMeta);
    impl Step for Panicking {
        fn step(&self) -> gauntlet_spec::StepName {
            gauntlet_spec::StepName::Security
        }
        fn meta(&self) -> &gauntlet_spec::StepMeta {
            &self.0
        }
        fn run<'a>(&'a self, _ctx: &'a RunContext) -> StepFuture<'a> {
            Box::pin(async { panic!("step bug") })
        }
    }

    /// A step that takes longer than any ceiling.
    struct Endless(gauntlet_spec::StepMeta);
    impl Step for Endless {
        fn step(&self) -> gauntlet_spec::StepName {
            gauntlet_spec::StepName::Security
        }
        fn meta(&self) -> &gauntlet_spec::StepMeta {
            &self.0
        }
        fn run<'a>(&'a self, _ctx: &'a RunContext) -> StepFuture<'a> {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_stops_at_its_ceiling_with_everything_undone() {
        let dir = tempfile::tempdir().unwrap();
        let text = "schema_version: 1
service: {name: s, version: '1'}
timeout: 3s
targets:
  candidate:
    command: [python3, -m, http.server, '{port}', --bind, 127.0.0.1]
    health: /
    ready_timeout: 2s
traffic: {rate: 10/s, requests: [{path: /}]}
";
        let plan = gauntlet_spec::plan_str("t.yaml", text, &Default::default(), 1).unwrap();
        let options = RunOptions {
            spec_path: "t.yaml".into(),
            spec_text: text.into(),
            out_dir: dir.path().join("runs"),
            store: dir.path().join("g.db").into(),
            keep_going: false,
            strict: false,
            request_timeout: Duration::from_secs(2),
            keyring: dir.path().join("keys"),
            run_id: None,
            cancel: None,
            given_env: Default::default(),
            started_by: None,
            lease: None,
            shared_files: None,
        };
        let endless = Endless(gauntlet_spec::StepMeta {
            severity: gauntlet_spec::Severity::Hard,
            owner: "sre".into(),
        });
        let outcome = run_steps(plan, vec![Box::new(endless)], options, Arc::new(Silent))
            .await
            .unwrap();
        assert_eq!(outcome.report.decision, Decision::Aborted);
        assert!(
            outcome
                .report
                .summary
                .contains("stopped at its ceiling of 3s"),
            "{}",
            outcome.report.summary
        );
        assert!(
            crate::journal::read_leftovers(&outcome.run_dir)
                .unwrap()
                .pending
                .is_empty()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_step_aborts_the_run_and_stops_every_process() {
        let dir = tempfile::tempdir().unwrap();
        // A real HTTP server as the candidate, started and owned by the run.
        let text = "schema_version: 1
service: {name: s, version: '1'}
targets:
  candidate:
    command: [python3, -m, http.server, '{port}', --bind, 127.0.0.1]
    health: /
    ready_timeout: 20s
traffic: {rate: 10/s, requests: [{path: /}]}
";
        let plan = gauntlet_spec::plan_str("t.yaml", text, &Default::default(), 1).unwrap();
        let options = RunOptions {
            spec_path: "t.yaml".into(),
            spec_text: text.into(),
            out_dir: dir.path().join("runs"),
            store: dir.path().join("g.db").into(),
            keep_going: false,
            strict: false,
            request_timeout: Duration::from_secs(2),
            keyring: dir.path().join("keys"),
            run_id: None,
            cancel: None,
            given_env: Default::default(),
            started_by: None,
            lease: None,
            shared_files: None,
        };
        let outcome = run_steps(
            plan,
            vec![Box::new(Panicking(gauntlet_spec::StepMeta {
                severity: gauntlet_spec::Severity::Hard,
                owner: "sre".into(),
            }))],
            options,
            Arc::new(Silent),
        )
        .await
        .unwrap();
        assert_eq!(outcome.report.decision, Decision::Aborted);
        assert!(
            outcome.report.summary.contains("a step panicked: step bug"),
            "{}",
            outcome.report.summary
        );
        assert_eq!(outcome.report.exit_code, gauntlet_report::exit::NO_GO);
        assert_eq!(
            outcome.report.steps[0].outcome,
            Outcome::Pass,
            "setup finished before the panic"
        );
        let leftovers = crate::journal::read_leftovers(&outcome.run_dir).unwrap();
        assert!(leftovers.pending.is_empty());
        let journal = std::fs::read_to_string(outcome.run_dir.join("cleanup.jsonl")).unwrap();
        let pid: u32 = journal
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["op"] == "register")
            .and_then(|v| v["undo"]["process"]["pid"].as_u64())
            .unwrap() as u32;
        assert!(
            !ProcessIdentity::of(pid).is_some_and(|p| p.is_alive()),
            "the server {pid} was stopped"
        );
        assert!(outcome.run_dir.join("report.json").exists());
    }
}
