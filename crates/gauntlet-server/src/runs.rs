//! Runs the server started: each a task running the engine, with a cancellation token that
//! stops it as Ctrl-C would (everything it started stopped, every fault undone).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gauntlet_engine::{CancellationToken, Observer, RunOptions, StageState};
use gauntlet_spec::Selection;

use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::notify::{Notice, Notifier, Occasion};
use crate::tokens::Caller;

/// What a caller asks to run.
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    #[serde(default)]
    pub only: Vec<String>,
    #[serde(default)]
    pub skip: Vec<String>,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub seed: Option<u64>,
    /// Values for variables the spec passes to its systems (`pass_env`), e.g. the demo's
    /// defect knobs: `{"GAUNTLET_DEMO_DEFECTS": "errors=5%"}`. Any other name is refused.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no service `{0}`")]
    NoService(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Internal(String),
}

/// A run ready to start: its plan and the spec it came from.
struct Planned {
    plan: gauntlet_spec::Plan,
    spec: crate::config::Service,
    env: BTreeMap<String, String>,
}

struct Live {
    service: String,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    watch: Arc<Watch>,
}

/// What a live run tells the server as it goes: its canary stage now (for `/metrics` and
/// for a controller asking whether to move more traffic), and its steps, timeline and
/// decision to whoever watches it live (the dashboard).
struct Watch {
    service: String,
    run: String,
    metrics: Arc<Metrics>,
    now: Mutex<Watched>,
    live: tokio::sync::broadcast::Sender<LiveEvent>,
}

/// What a live run's watchers are told, as it happens.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LiveEvent {
    /// A timeline event.
    Event {
        step: Option<String>,
        message: String,
        at: String,
    },
    /// A step finished, with its outcome.
    Step { step: String, outcome: String },
    /// The run ended: its decision and summary.
    Decision { decision: String, summary: String },
}

impl LiveEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            LiveEvent::Event { .. } => "event",
            LiveEvent::Step { .. } => "step",
            LiveEvent::Decision { .. } => "decision",
        }
    }
}

/// How many events a slow watcher may fall behind before it misses some.
const LIVE_BACKLOG: usize = 1024;

#[derive(Default)]
struct Watched {
    stage: Option<StageState>,
    /// The judge series `/metrics` shows for it.
    shown: Vec<crate::metrics::JudgeLabels>,
    /// Traffic increases granted to a controller so far.
    granted: usize,
}

impl Observer for Watch {
    fn step_started(&self, step: &str) {
        tracing::info!(run = %self.run, service = %self.service, step, "step started");
    }

    fn step_finished(&self, step: &gauntlet_report::StepReport) {
        let outcome = step.outcome.as_str();
        tracing::info!(run = %self.run, service = %self.service, step = %step.name, outcome, "step finished");
        let _ = self.live.send(LiveEvent::Step {
            step: step.name.clone(),
            outcome: outcome.to_string(),
        });
    }

    fn event(&self, event: &gauntlet_report::TimelineEvent) {
        let _ = self.live.send(LiveEvent::Event {
            step: event.step.clone(),
            message: event.message.clone(),
            at: event.at.clone(),
        });
        let step = event.step.as_deref().unwrap_or("");
        tracing::info!(run = %self.run, service = %self.service, step, kind = %event.kind, "{}", event.message);
    }

    fn stage(&self, stage: &StageState) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        if now.stage.as_ref().is_some_and(|s| s.index != stage.index) {
            self.metrics.forget(&now.shown);
        }
        now.shown = self.metrics.judging(&self.service, &self.run, stage);
        now.stage = Some(stage.clone());
    }
}

impl Watch {
    fn forget(&self) {
        let now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        self.metrics.forget(&now.shown);
    }
}

/// Whether a controller may move more traffic to the candidate now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Increase {
    /// Yes: a stage accepted since the last increase (or none was granted yet: the first
    /// traffic starts the first stage).
    Granted(String),
    /// Not yet: the stage in progress has not accepted.
    Held(String),
    /// The run is not live here (finished, or on another server).
    NotLive,
}

pub struct Runs {
    config: ServerConfig,
    metrics: Arc<Metrics>,
    notifier: Arc<Notifier>,
    live: Mutex<BTreeMap<String, Live>>,
}

impl Runs {
    pub fn new(config: ServerConfig, metrics: Arc<Metrics>, notifier: Arc<Notifier>) -> Runs {
        Runs {
            config,
            metrics,
            notifier,
            live: Mutex::new(BTreeMap::new()),
        }
    }

    /// Plans and starts a run of `service` for `by`; returns its id at once.
    pub fn start(
        self: &Arc<Self>,
        service: &str,
        request: &RunRequest,
        by: &Caller,
    ) -> Result<String, StartError> {
        let planned = self.plan(service, request)?;
        let run_id = gauntlet_engine::new_run_id();
        self.launch(service, planned, &run_id, by);
        Ok(run_id)
    }

    /// The run `key` names, started now if no run was claimed for it yet; `true` when it
    /// was started by this call. The request is checked before the key is claimed, so a key
    /// never names a run that could not start.
    pub async fn start_keyed(
        self: &Arc<Self>,
        service: &str,
        key: &str,
        request: &RunRequest,
        by: &Caller,
    ) -> Result<(String, bool), StartError> {
        let planned = self.plan(service, request)?;
        let candidate = gauntlet_engine::new_run_id();
        let store = self.config.store.clone();
        let (key, name, id) = (key.to_string(), service.to_string(), candidate.clone());
        let claimed = tokio::task::spawn_blocking(move || {
            let at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
            gauntlet_store::Store::connect(&store)?.claim_key(&key, &name, &id, &at)
        })
        .await
        .map_err(|e| StartError::Internal(e.to_string()))?
        .map_err(|e| StartError::Internal(e.to_string()))?;
        if claimed.1 {
            self.launch(service, planned, &candidate, by);
        }
        Ok(claimed)
    }

    /// The steps the spec of `service` configures.
    pub fn configured(&self, service: &str) -> Result<Vec<gauntlet_spec::StepName>, StartError> {
        let known = self
            .config
            .services
            .get(service)
            .ok_or_else(|| StartError::NoService(service.to_string()))?;
        let file = known.spec_path.display().to_string();
        let spec = gauntlet_spec::parse(&file, &known.spec_text)
            .map_err(|e| StartError::Invalid(plan_error(&e.into())))?;
        Ok(spec.configured())
    }

    /// The plan of a run of `service` as `request` asks, and its spec.
    fn plan(&self, service: &str, request: &RunRequest) -> Result<Planned, StartError> {
        let known = self
            .config
            .services
            .get(service)
            .ok_or_else(|| StartError::NoService(service.to_string()))?;
        let selection = selection(request)?;
        let seed = request.seed.unwrap_or(1);
        let file = known.spec_path.display().to_string();
        let plan = gauntlet_spec::plan_str(&file, &known.spec_text, &selection, seed)
            .map_err(|e| StartError::Invalid(plan_error(&e)))?;
        let passed = plan.passed_env();
        if let Some(name) = request.env.keys().find(|n| !passed.contains(n.as_str())) {
            let passed: Vec<&str> = passed.into_iter().collect();
            return Err(StartError::Invalid(format!(
                "`env.{name}`: the spec of `{service}` passes no such variable to its systems (it passes: {})",
                if passed.is_empty() {
                    "none".to_string()
                } else {
                    passed.join(", ")
                }
            )));
        }
        Ok(Planned {
            plan,
            spec: known.clone(),
            env: request.env.clone(),
        })
    }

    fn launch(self: &Arc<Self>, service: &str, planned: Planned, run_id: &str, by: &Caller) {
        let cancel = CancellationToken::new();
        let options = RunOptions {
            spec_path: planned.spec.spec_path,
            spec_text: planned.spec.spec_text,
            out_dir: self.config.runs.clone(),
            store: self.config.store.clone(),
            keep_going: false,
            strict: false,
            request_timeout: Duration::from_secs(5),
            keyring: self.config.keyring.clone(),
            run_id: Some(run_id.to_string()),
            cancel: Some(cancel.clone()),
            given_env: planned.env,
            started_by: Some(by.describe()),
            lease: Some(gauntlet_engine::LeaseHolder {
                owner: self.config.instance.clone(),
                term: self.config.lease,
            }),
            shared_files: self.config.shared_files.clone(),
        };
        let runs = self.clone();
        let (id, name) = (run_id.to_string(), service.to_string());
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let plan = planned.plan;
        let watch = Arc::new(Watch {
            service: service.to_string(),
            run: run_id.to_string(),
            metrics: self.metrics.clone(),
            now: Mutex::default(),
            live: tokio::sync::broadcast::channel(LIVE_BACKLOG).0,
        });
        let observer = watch.clone();
        let task = tokio::spawn(async move {
            let ran = gauntlet_engine::run(plan, options, observer).await;
            runs.finished(&id, &name, ran);
        });
        live.insert(
            run_id.to_string(),
            Live {
                service: service.to_string(),
                cancel,
                task,
                watch,
            },
        );
        self.metrics.live_runs.set(live.len() as i64);
        tracing::info!(run = %run_id, service, "run started");
    }

    fn finished(
        &self,
        run: &str,
        service: &str,
        ran: Result<gauntlet_engine::RunOutcome, gauntlet_engine::EngineError>,
    ) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ended) = live.remove(run) {
            ended.watch.forget();
            let (decision, summary) = match &ran {
                Ok(outcome) => (
                    outcome.report.decision.to_string(),
                    outcome.report.summary.clone(),
                ),
                Err(e) => ("ERROR".to_string(), e.to_string()),
            };
            let _ = ended
                .watch
                .live
                .send(LiveEvent::Decision { decision, summary });
        }
        self.metrics.live_runs.set(live.len() as i64);
        match ran {
            Ok(outcome) => {
                let decision = outcome.report.decision.to_string();
                self.metrics.run_finished(service, &decision);
                tracing::info!(run, service, decision, summary = %outcome.report.summary, "run finished");
                self.notify(service, &outcome.report);
            }
            Err(e) => {
                self.metrics.run_finished(service, "ERROR");
                tracing::error!(run, service, "run failed: {e}");
            }
        }
    }

    /// Tells the targets the decision and, for a CONDITIONAL waiting on sign-offs, who must
    /// sign.
    fn notify(&self, service: &str, report: &gauntlet_report::Report) {
        let awaiting: Vec<String> = report
            .conditions
            .iter()
            .filter_map(|c| c.check.strip_prefix("signoff."))
            .map(str::to_string)
            .collect();
        let notice = Notice {
            occasion: Occasion::Decision,
            service: service.to_string(),
            version: report.service.version.clone(),
            run: report.run_id.clone(),
            decision: report.decision.to_string(),
            summary: report.summary.clone(),
            url: format!("{}/v1/runs/{}", self.config.public_url, report.run_id),
            awaiting: awaiting.clone(),
            expiring: Vec::new(),
        };
        self.notifier.send(notice.clone());
        if report.decision == gauntlet_report::Decision::Conditional && !awaiting.is_empty() {
            self.notifier.send(Notice {
                occasion: Occasion::AwaitingSignoff,
                ..notice.clone()
            });
        }
        let expiring = expiring_waivers(report, std::time::SystemTime::now(), WAIVER_WARNING);
        if !expiring.is_empty() {
            self.notifier.send(Notice {
                occasion: Occasion::WaiverExpiring,
                expiring,
                ..notice
            });
        }
    }

    /// The service of a live run.
    pub fn live_service(&self, run: &str) -> Option<String> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(run).map(|l| l.service.clone())
    }

    /// The canary stage a live run is judging, or last judged.
    pub fn stage(&self, run: &str) -> Option<StageState> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let watch = live.get(run)?.watch.clone();
        drop(live);
        let now = watch.now.lock().unwrap_or_else(|e| e.into_inner());
        now.stage.clone()
    }

    /// Grants a controller one more traffic increase when a stage has accepted since the
    /// last one it was granted (the first is granted at once: its traffic starts stage 1).
    pub fn increase(&self, run: &str) -> Increase {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let Some(watch) = live.get(run).map(|l| l.watch.clone()) else {
            return Increase::NotLive;
        };
        drop(live);
        let mut now = watch.now.lock().unwrap_or_else(|e| e.into_inner());
        let accepted = now
            .stage
            .as_ref()
            .map_or(0, |s| s.accepted + usize::from(s.state == "accepted"));
        let stage = now
            .stage
            .as_ref()
            .map(|s| format!("{} is {}", s.label, s.state));
        if accepted >= now.granted {
            now.granted += 1;
            let why = match stage {
                None => "the canary starts judging with this traffic".to_string(),
                Some(stage) => format!("{accepted} stage(s) accepted; {stage}"),
            };
            return Increase::Granted(why);
        }
        let why = match &now.stage {
            Some(s) => format!("{} is {}", s.label, s.state),
            None => "the canary has not started judging yet".to_string(),
        };
        Increase::Held(why)
    }

    /// The live events of a run running here, from now on.
    pub fn subscribe(&self, run: &str) -> Option<tokio::sync::broadcast::Receiver<LiveEvent>> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(run).map(|l| l.watch.live.subscribe())
    }

    /// Asks a live run to stop; `false` when it is not running here.
    pub fn cancel(&self, run: &str) -> bool {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(run).map(|l| l.cancel.cancel()).is_some()
    }

    /// Cancels every live run and waits for each to have undone what it started.
    pub async fn shut_down(&self) {
        let tasks: Vec<_> = {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut *live)
                .into_values()
                .map(|l| {
                    l.cancel.cancel();
                    l.task
                })
                .collect()
        };
        for task in tasks {
            let _ = task.await;
        }
    }
}

fn selection(request: &RunRequest) -> Result<Selection, StartError> {
    let steps = |names: &[String]| {
        names
            .iter()
            .map(|n| n.parse::<gauntlet_spec::StepName>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StartError::Invalid(e.to_string()))
    };
    Ok(Selection {
        only: steps(&request.only)?,
        skip: steps(&request.skip)?,
        profile: request.profile.clone(),
        ..Default::default()
    })
}

/// A plan error as one message: each located problem on its own line.
fn plan_error(e: &gauntlet_spec::PlanError) -> String {
    match e {
        gauntlet_spec::PlanError::Spec(errors) => errors
            .0
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

/// How long before a waiver expires it is announced.
const WAIVER_WARNING: Duration = Duration::from_secs(7 * 24 * 3600);

/// The report's waived conditions whose deadline falls within `warning` of `now` (or has
/// passed), each as `CHECK (OWNER) until DEADLINE`.
pub fn expiring_waivers(
    report: &gauntlet_report::Report,
    now: std::time::SystemTime,
    warning: Duration,
) -> Vec<String> {
    report
        .conditions
        .iter()
        .filter_map(|c| {
            // A date alone expires at the end of that day, as the checklist counts it.
            let secs = gauntlet_spec::parse_day_or_time(c.deadline.as_deref()?, true).ok()?;
            let deadline = std::time::UNIX_EPOCH + Duration::from_secs(secs);
            (deadline <= now + warning).then(|| {
                let owner = c
                    .owner
                    .as_deref()
                    .or(c.owner_role.as_deref())
                    .unwrap_or("no owner");
                format!(
                    "{} ({owner}) until {}",
                    c.check,
                    c.deadline.as_deref().unwrap_or("")
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waivers_within_a_week_are_announced_and_later_ones_are_not() {
        let now = humantime::parse_rfc3339("2026-11-30T00:00:00Z").unwrap();
        let condition = |check: &str, deadline: &str| {
            serde_json::json!({"check": check, "reason": "waived", "owner_role": "sre",
                "owner": "ana@example.com", "deadline": deadline})
        };
        let report: gauntlet_report::Report = serde_json::from_value(serde_json::json!({
            "schema": gauntlet_report::REPORT_SCHEMA, "run_id": "r", "gauntlet_version": "0",
            "service": {"name": "s", "version": "1"}, "spec": {"path": "g", "sha256": "a"},
            "started_at": "t", "finished_at": "t", "duration_ms": 0, "gating": "hard",
            "decision": "CONDITIONAL", "exit_code": 0, "summary": "s",
            "conditions": [
                condition("readiness.waiver: soon", "2026-12-03"),
                condition("readiness.waiver: later", "2027-01-30T00:00:00Z"),
                {"check": "signoff.security", "reason": "awaited"}
            ],
            "steps": [], "timeline": [], "evidence": []
        }))
        .unwrap();
        let expiring = expiring_waivers(&report, now, WAIVER_WARNING);
        assert_eq!(
            expiring,
            vec!["readiness.waiver: soon (ana@example.com) until 2026-12-03".to_string()]
        );
    }
}
