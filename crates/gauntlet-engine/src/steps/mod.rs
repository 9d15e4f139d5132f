//! The pipeline's steps, one module each, in pipeline order. A step gets the run context and
//! returns its checks; it records timeline events and evidence through the context.

mod alerting;
mod canary;
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
use gauntlet_spec::Spec;

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
    fn step(&self) -> gauntlet_spec::StepName;
    fn name(&self) -> &'static str {
        self.step().as_str()
    }
    fn meta(&self) -> &StepMeta;
    fn run<'a>(&'a self, ctx: &'a RunContext) -> StepFuture<'a>;
    /// Whether it still runs after a hard failure stopped the pipeline (the registry says).
    fn runs_after_a_stop(&self) -> bool {
        self.step().runs_after_a_stop()
    }
}

/// What every step takes from its spec section: how hard its failures are, and the role
/// from `service.owners` that answers for its conditions (the one the spec names, else the
/// role conventionally answering for that step).
#[derive(Debug, Clone)]
pub struct StepMeta {
    pub severity: Severity,
    pub owner: Option<String>,
}

impl StepMeta {
    pub(crate) fn new(
        severity: gauntlet_spec::Severity,
        owner: Option<&serde_saphyr::Spanned<String>>,
        conventional: &str,
    ) -> Self {
        Self {
            severity: match severity {
                gauntlet_spec::Severity::Hard => Severity::Hard,
                gauntlet_spec::Severity::Soft => Severity::Soft,
            },
            owner: Some(owner.map_or_else(|| conventional.to_string(), |o| o.value.clone())),
        }
    }
}

/// The steps the spec configures, in pipeline order.
pub fn configured(spec: &Spec) -> Vec<Box<dyn Step>> {
    let mut steps: Vec<Box<dyn Step>> = Vec::new();
    if let Some(config) = &spec.steps.preflight {
        steps.push(Box::new(Preflight::new(config)));
    }
    if let Some(config) = &spec.steps.rollback_rehearsal {
        steps.push(Box::new(Rehearsal::new(config)));
    }
    if let Some(config) = &spec.steps.chaos {
        steps.push(Box::new(Chaos::new(config)));
    }
    if let Some(config) = &spec.steps.dr {
        steps.push(Box::new(Dr::new(config)));
    }
    if let Some(config) = &spec.steps.rotation {
        steps.push(Box::new(Rotation::new(config)));
    }
    if let Some(config) = &spec.steps.security {
        steps.push(Box::new(Security::new(config)));
    }
    if let Some(config) = &spec.steps.observability {
        steps.push(Box::new(Observability::new(config)));
    }
    if let Some(config) = &spec.steps.canary {
        steps.push(Box::new(Canary::new(config)));
    }
    if let Some(config) = &spec.gates {
        steps.push(Box::new(Gates::new(config)));
    }
    steps
}
