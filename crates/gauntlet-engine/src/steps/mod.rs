//! The pipeline's steps, one folder each (`steps/<name>/`), in pipeline order: what a step
//! does lives there, in phases a reader can follow, and what a spec says of it (its config,
//! checks, bounds and plan) in the spec crate's `steps/<name>.rs`. [`runner`] is the one
//! place a planned step meets its behaviour. A step gets the run context and returns its
//! checks; it records timeline events and evidence through the context.

pub mod canary;
mod chaos;
mod dr;
pub(crate) mod gates;
mod observability;
mod preflight;
mod rehearsal;
mod rotation;
mod security;

use std::future::Future;
use std::pin::Pin;

use gauntlet_report::{Check, Severity};
use gauntlet_spec::{Plan, StepMeta, StepName, StepPlan};

use crate::context::RunContext;

pub use canary::Canary;
pub use chaos::Chaos;
pub use dr::Dr;
pub use gates::Gates;
pub use observability::Observability;
pub use preflight::Preflight;
pub use rehearsal::Rehearsal;
pub use rotation::Rotation;
pub use security::Security;

pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Vec<Check>> + Send + 'a>>;

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
