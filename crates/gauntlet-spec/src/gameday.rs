//! `gameday:`: what the gameday report (`gauntlet gameday RUN`) needs besides the run's own
//! report: how soon each action item is due, by the severity of the expectation that failed,
//! and the scenarios the gameday must cover, each mapped to the drills and checks that
//! exercise it (a scenario nothing covered is an action item too).

use schemars::JsonSchema;
use serde::Deserialize;

use crate::limits::HOUR;
use crate::steps::StepName;
use crate::units::Duration;
use crate::validate::{Context, Problems, quoted};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GamedaySection {
    /// An action item from a failed hard expectation is due this long after the gameday.
    #[serde(default = "seven_days")]
    pub hard_eta: Duration,
    /// ... and one from a soft expectation (or a warning) this long.
    #[serde(default = "thirty_days")]
    pub soft_eta: Duration,
    /// The scenarios the gameday must cover.
    #[serde(default)]
    pub matrix: Vec<Scenario>,
}

/// One required scenario and what covers it: check ids or their prefixes, e.g.
/// `chaos.provider-outage` (every check of that drill) or `security.pii leakage`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub scenario: String,
    pub covered_by: Vec<String>,
}

impl Default for GamedaySection {
    fn default() -> Self {
        Self {
            hard_eta: seven_days(),
            soft_eta: thirty_days(),
            matrix: Vec::new(),
        }
    }
}

fn seven_days() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

fn thirty_days() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

impl GamedaySection {
    pub(crate) fn check(&self, cx: &Context<'_>, p: &mut Problems<'_>) {
        p.duration("gameday.hard_eta", self.hard_eta, false, 365 * 24 * HOUR);
        p.duration("gameday.soft_eta", self.soft_eta, false, 365 * 24 * HOUR);
        let drills: Vec<&str> = cx
            .spec
            .steps
            .chaos
            .as_ref()
            .map(|c| c.drills.value.iter().map(|d| d.name.as_str()).collect())
            .unwrap_or_default();
        for (i, row) in self.matrix.iter().enumerate() {
            let at = format!("gameday.matrix[{i}]");
            if row.covered_by.is_empty() {
                p.key(
                    &format!("{at}.covered_by"),
                    format!("scenario `{}` is covered by nothing", quoted(&row.scenario)),
                    Some("name the drills or checks that exercise it, e.g. `[chaos.provider-outage]`".into()),
                );
            }
            for (j, id) in row.covered_by.iter().enumerate() {
                let (step, rest) = id.split_once('.').unwrap_or((id, ""));
                let known_step = step.parse::<StepName>().is_ok();
                let drill = rest.split(':').next().unwrap_or_default().trim();
                let known_drill = step != "chaos" || drills.contains(&drill);
                if !known_step || !known_drill {
                    p.key(
                        &format!("{at}.covered_by[{j}]"),
                        format!("`{}` names no step or drill of this spec", quoted(id)),
                        Some(format!(
                            "a check id or its prefix: STEP.NAME, e.g. `chaos.{}`",
                            drills.first().copied().unwrap_or("DRILL")
                        )),
                    );
                }
            }
        }
    }
}
