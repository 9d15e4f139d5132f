//! Step 1, preflight, as a spec writes it: only how hard its failures are and who answers
//! for them; what it locks and signs is the top-level `trust` section.

use std::time::Duration as StdDuration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Section, StepName};
use crate::limits::MINUTE;
use crate::model::Severity;
use crate::plan::{Seed, StepMeta, StepPlan};
use crate::validate::{Context, Problems};

/// Step 1: the protected files match their signed lock; flags and SBOM are snapshotted into
/// a signed release manifest; the green fingerprint is computed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreflightStep {
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
}

impl Section for PreflightStep {
    fn step(&self) -> StepName {
        StepName::Preflight
    }

    fn owner(&self) -> Option<&Spanned<String>> {
        self.owner.as_ref()
    }

    fn check(&self, _cx: &Context<'_>, _p: &mut Problems<'_>) {}

    fn worst_case(&self, _cx: &Context<'_>) -> Vec<(String, StdDuration)> {
        vec![("preflight".to_string(), MINUTE)]
    }

    fn plan(&self, _cx: &Context<'_>, _seed: Seed) -> Result<StepPlan, String> {
        Ok(StepPlan::Preflight(PreflightPlan {
            meta: StepMeta::new(StepName::Preflight, self.severity, self.owner.as_ref()),
        }))
    }
}

/// Preflight as a run does it (what it locks is the plan's `trust`).
#[derive(Debug, Clone)]
pub struct PreflightPlan {
    pub meta: StepMeta,
}
