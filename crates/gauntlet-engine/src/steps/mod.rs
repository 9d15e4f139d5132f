//! The pipeline's steps, one folder each (`steps/<name>/`), in pipeline order: what a step
//! does lives there, in phases a reader can follow, and what a spec says of it (its config,
//! checks, bounds and plan) in the spec crate's `steps/<name>.rs`. [`runner`] is the one
//! place a planned step meets its behaviour. A step gets the run context and returns its
//! [`StepOutput`]; it records timeline events and evidence through the context as they happen.

pub mod canary;
mod chaos;
mod dr;
pub(crate) mod gates;
mod observability;
mod preflight;
mod quality;
mod rehearsal;
mod rotation;
mod security;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use gauntlet_report::{Check, DrillReport, GatesReport, Severity};
use gauntlet_spec::{Plan, StepMeta, StepName, StepPlan};

use crate::context::RunContext;

pub use canary::Canary;
pub use chaos::Chaos;
pub use dr::Dr;
pub use gates::Gates;
pub use observability::Observability;
pub use preflight::Preflight;
pub use quality::Quality;
pub use rehearsal::Rehearsal;
pub use rotation::Rotation;
pub use security::Security;

pub type StepFuture<'a> = Pin<Box<dyn Future<Output = StepOutput> + Send + 'a>>;

/// What a step hands back to the run: its checks, and what the run keeps from it besides.
/// Timeline events and evidence files are recorded as they happen instead (through the
/// context's recorder): they are shown live, and a step cut short still leaves them.
#[derive(Debug, Default)]
pub struct StepOutput {
    pub checks: Vec<Check>,
    /// Numbers measured, in base units (seconds, ratios, counts), by name: what gates read.
    pub measurements: BTreeMap<String, f64>,
    /// One gameday timeline per drill (and the DR rehearsal).
    pub drills: Vec<DrillReport>,
    /// Each runbook the step executed.
    pub runbooks: Vec<gauntlet_report::RunbookReport>,
    /// The gates' evaluation.
    pub gates: Option<GatesReport>,
    /// What preflight found: the green fingerprint and the signed release manifest.
    pub release: Option<crate::trust::ReleaseFacts>,
    /// Failed requests through a traffic split, grouped, for the failure taxonomy.
    pub failed_requests: Vec<gauntlet_net::FailedRequests>,
}

impl StepOutput {
    /// Records (or replaces) one measurement; a value that is not finite is not one.
    pub fn measure(&mut self, name: impl Into<String>, value: f64) {
        if value.is_finite() {
            self.measurements.insert(name.into(), value);
        }
    }

    /// Keeps a drill's timeline, and its times as measurements (`STEP.DRILL.time_to_detect`,
    /// `STEP.DRILL.time_to_recover`, `STEP.DRILL.time_to_alert.ALERT`, in seconds).
    pub fn drill(&mut self, drill: DrillReport) {
        let prefix = format!("{}.{}", drill.step, drill.name);
        let seconds = |ms: u64| ms as f64 / 1e3;
        if let Some(ms) = drill.time_to_detect_ms {
            self.measure(format!("{prefix}.time_to_detect"), seconds(ms));
        }
        if let Some(ms) = drill.time_to_recover_ms {
            self.measure(format!("{prefix}.time_to_recover"), seconds(ms));
        }
        for (alert, ms) in &drill.time_to_alert_ms {
            self.measure(format!("{prefix}.time_to_alert.{alert}"), seconds(*ms));
        }
        self.drills.push(drill);
    }

    /// Adds what another part of the step produced.
    pub fn extend(&mut self, other: StepOutput) {
        self.checks.extend(other.checks);
        self.measurements.extend(other.measurements);
        self.drills.extend(other.drills);
        self.runbooks.extend(other.runbooks);
        self.gates = other.gates.or(self.gates.take());
        self.release = other.release.or(self.release.take());
        self.failed_requests.extend(other.failed_requests);
    }
}

impl From<Vec<Check>> for StepOutput {
    fn from(checks: Vec<Check>) -> Self {
        StepOutput {
            checks,
            ..StepOutput::default()
        }
    }
}

pub trait Step: Send + Sync {
    fn step(&self) -> StepName;
    fn name(&self) -> &'static str {
        self.step().as_str()
    }
    /// How hard its failures are, and who answers for them.
    fn meta(&self) -> &StepMeta;
    fn run<'a>(&'a self, ctx: &'a RunContext) -> StepFuture<'a>;
    /// Whether it still runs after a hard failure stopped the pipeline (the registry says).
    fn runs_after_a_stop(&self) -> bool {
        self.step().runs_after_a_stop()
    }
}

/// The report's severity of a step's checks.
pub fn severity(meta: &StepMeta) -> Severity {
    match meta.severity {
        gauntlet_spec::Severity::Hard => Severity::Hard,
        gauntlet_spec::Severity::Soft => Severity::Soft,
    }
}

/// What runs a planned step: one line per step, the compiler names a missing one. The
/// readiness checklist is scored after the steps, from their checks, so it has none.
pub fn runner(plan: &StepPlan) -> Option<Box<dyn Step>> {
    Some(match plan {
        StepPlan::Preflight(p) => Box::new(Preflight(p.clone())),
        StepPlan::RollbackRehearsal(p) => Box::new(Rehearsal(p.clone())),
        StepPlan::Chaos(p) => Box::new(Chaos(p.clone())),
        StepPlan::Dr(p) => Box::new(Dr(p.clone())),
        StepPlan::Rotation(p) => Box::new(Rotation(p.clone())),
        StepPlan::Security(p) => Box::new(Security(p.clone())),
        StepPlan::Quality(p) => Box::new(Quality(p.clone())),
        StepPlan::Observability(p) => Box::new(Observability(p.clone())),
        StepPlan::Canary(p) => Box::new(Canary(p.clone())),
        StepPlan::Gates(p) => Box::new(Gates(p.clone())),
        StepPlan::Readiness(_) => return None,
    })
}

/// The steps of a plan that run in the pipeline, in order.
pub fn runners(plan: &Plan) -> Vec<Box<dyn Step>> {
    plan.steps.iter().filter_map(runner).collect()
}
