//! Step 5, rotation, as a spec writes it: how the manifest's version goes up, what the drill
//! edits without signing, and the service's own credential rotation.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Section, StepName};
use crate::limits::MINUTE;
use crate::model::{Method, Severity};
use crate::plan::{Seed, StepMeta, StepPlan};
use crate::validate::{Context, Problems};

/// Step 5: a drill of key and credential rotation, on scratch copies, never on the real keyring.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotationStep {
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
    /// How the manifest's version goes up when it is re-signed: `major`, `minor` or `patch`.
    #[serde(default)]
    pub bump: VersionBump,
    /// The key path of the threshold the drill edits without signing, e.g.
    /// `slos.latency.threshold` (default: the first SLO threshold or objective in the spec).
    #[serde(default)]
    pub threshold: Option<String>,
    /// The protected prompt file the drill edits without signing (default: the first protected
    /// file that is not YAML or JSON).
    #[serde(default)]
    pub prompt: Option<String>,
    /// The service's own credential rotation.
    #[serde(default)]
    pub credentials: Option<CredentialRotation>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VersionBump {
    Major,
    Minor,
    #[default]
    Patch,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialRotation {
    /// The header that carries the credential, e.g. `x-api-key`.
    pub header: String,
    /// The credential in use now; the drill rotates back to it afterwards.
    pub current: String,
    /// How to install a new credential: `{new}` in its arguments, path, headers or body is the
    /// new credential, `{old}` the current one.
    pub rotate: RotateBy,
    /// A request that needs the credential: with the new one it must get one of `status`, with
    /// the old one 401 or 403.
    pub probe: CredentialProbe,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RotateBy {
    /// A command; exit 0 means rotated.
    Command(Vec<String>),
    /// A request to the candidate (a webhook or admin endpoint); 2xx means rotated.
    Http(Webhook),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    #[serde(default = "post")]
    pub method: Method,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
}

fn post() -> Method {
    Method::Post
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialProbe {
    #[serde(default = "get")]
    pub method: Method,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default = "ok_statuses")]
    pub status: Vec<u16>,
}

fn get() -> Method {
    Method::Get
}

fn ok_statuses() -> Vec<u16> {
    vec![200, 201, 204]
}

impl Section for RotationStep {
    fn step(&self) -> StepName {
        StepName::Rotation
    }

    fn owner(&self) -> Option<&Spanned<String>> {
        self.owner.as_ref()
    }

    fn check(&self, _cx: &Context<'_>, _p: &mut Problems<'_>) {}

    fn worst_case(&self, _cx: &Context<'_>) -> Vec<(String, StdDuration)> {
        vec![("rotation".to_string(), MINUTE)]
    }

    fn plan(&self, _cx: &Context<'_>, _seed: Seed) -> Result<StepPlan, String> {
        Ok(StepPlan::Rotation(RotationPlan {
            meta: StepMeta::new(StepName::Rotation, self.severity, self.owner.as_ref()),
            bump: self.bump,
            threshold: self.threshold.clone(),
            prompt: self.prompt.clone(),
            credentials: self.credentials.clone(),
        }))
    }
}

/// The rotation drill as a run does it.
#[derive(Debug, Clone)]
pub struct RotationPlan {
    pub meta: StepMeta,
    pub bump: VersionBump,
    pub threshold: Option<String>,
    pub prompt: Option<String>,
    pub credentials: Option<CredentialRotation>,
}
