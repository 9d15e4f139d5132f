//! The one registry of the pipeline's steps: their names, order, spec sections, owners and
//! remediation hints. The CLI's `--only`/`--skip`, profiles, validation, the engine's runner
//! table, the failure taxonomy and the docs all read this table; adding a step is one line
//! here (and the compiler then names every `match` that must learn it).

pub mod canary;
pub mod chaos;
pub mod dr;
pub mod gates;
pub mod observability;
pub mod preflight;
pub mod quality;
pub mod readiness;
pub mod rehearsal;
pub mod rotation;
pub mod security;

use std::fmt;
use std::str::FromStr;
use std::time::Duration as StdDuration;

use serde_saphyr::Spanned;

use crate::model::Spec;
use crate::plan::{Seed, StepPlan};
use crate::validate::{Context, Problems};

/// A step's section of the spec: what it checks, and the longest it can take.
pub(crate) trait Section {
    fn step(&self) -> StepName;
    /// The `owner:` role it names, if any.
    fn owner(&self) -> Option<&Spanned<String>>;
    /// Its problems, each at its own key path.
    fn check(&self, cx: &Context<'_>, p: &mut Problems<'_>);
    /// The longest each part of it can take, by its own timeouts and durations.
    fn worst_case(&self, cx: &Context<'_>) -> Vec<(String, StdDuration)>;
    /// What the step will do, resolved (after `check` found nothing wrong).
    fn plan(&self, cx: &Context<'_>, seed: Seed) -> Result<StepPlan, String>;
}

impl Spec {
    /// The sections of the steps this spec configures, in pipeline order.
    pub(crate) fn sections(&self) -> Vec<&dyn Section> {
        let s = &self.steps;
        let all: [Option<&dyn Section>; 11] = [
            s.preflight.as_ref().map(|x| x as &dyn Section),
            s.rollback_rehearsal.as_ref().map(|x| x as &dyn Section),
            s.chaos.as_ref().map(|x| x as &dyn Section),
            s.dr.as_ref().map(|x| x as &dyn Section),
            s.rotation.as_ref().map(|x| x as &dyn Section),
            s.security.as_ref().map(|x| x as &dyn Section),
            s.quality.as_ref().map(|x| x as &dyn Section),
            s.observability.as_ref().map(|x| x as &dyn Section),
            s.canary.as_ref().map(|x| x as &dyn Section),
            self.gates.as_ref().map(|x| x as &dyn Section),
            self.readiness.as_ref().map(|x| x as &dyn Section),
        ];
        let sections: Vec<&dyn Section> = all.into_iter().flatten().collect();
        sections
    }

    /// The steps this spec configures, in pipeline order.
    pub fn configured(&self) -> Vec<StepName> {
        self.sections().iter().map(|s| s.step()).collect()
    }
}

/// A step of the pipeline, in pipeline order (`Ord` is that order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StepName {
    Preflight,
    RollbackRehearsal,
    Chaos,
    Dr,
    Rotation,
    Security,
    Quality,
    Observability,
    Canary,
    /// Judges what the others measured (GA gates over metrics).
    Gates,
    /// Scores the checklist from every check the run made.
    Readiness,
}

/// What the registry knows of one step.
struct Entry {
    #[cfg_attr(not(test), allow(dead_code))]
    step: StepName,
    /// As reports, `--only` and check ids spell it.
    name: &'static str,
    /// Its section's key path in the spec.
    section: &'static str,
    /// The role from `service.owners` that answers for it when the spec names none.
    owner: &'static str,
    /// One line for `--help` and the docs.
    summary: &'static str,
    /// What to look at first when it fails (the failure taxonomy's built-in hint).
    remedy: &'static str,
}

const TABLE: &[Entry] = &[
    Entry {
        step: StepName::Preflight,
        name: "preflight",
        section: "steps.preflight",
        owner: "release",
        summary: "the protected files, flags and SBOM are locked and signed; the release manifest",
        remedy: "a protected file changed or is unsigned: review the change, then sign it with `gauntlet lock`",
    },
    Entry {
        step: StepName::RollbackRehearsal,
        name: "rollback-rehearsal",
        section: "steps.rollback_rehearsal",
        owner: "sre",
        summary: "a known-bad candidate is caught, rolled back and recovered from within the RTO",
        remedy: "the canary could not catch or undo a known-bad release: check the judges' thresholds, the rollback hook, and that the SLI counts failed requests",
    },
    Entry {
        step: StepName::Chaos,
        name: "chaos",
        section: "steps.chaos",
        owner: "sre",
        summary: "drills: the steady state holds (or recovers in time) under real faults",
        remedy: "a drill broke the steady state: check timeouts, retries, failover and circuit breaking for what the drill faulted (its timeline is in the report)",
    },
    Entry {
        step: StepName::Dr,
        name: "dr",
        section: "steps.dr",
        owner: "sre",
        summary: "back up, destroy, restore and verify; RPO and RTO measured",
        remedy: "the restore missed its RTO or RPO or lost data: check the backup's schedule and rehearse the restore procedure",
    },
    Entry {
        step: StepName::Rotation,
        name: "rotation",
        section: "steps.rotation",
        owner: "security",
        summary: "keys and credentials rotate without downtime; retired ones are refused",
        remedy: "keys or credentials did not rotate cleanly: make the service reload credentials without a restart and refuse retired ones",
    },
    Entry {
        step: StepName::Security,
        name: "security",
        section: "steps.security",
        owner: "security",
        summary: "abuse probes (auth, rate limit, paths, control tokens) are refused",
        remedy: "an abuse probe was not refused: check authentication on the route, the rate limiter and input handling",
    },
    Entry {
        step: StepName::Quality,
        name: "quality",
        section: "steps.quality",
        owner: "product",
        summary: "the golden set: the candidate answers no worse than the baseline, item by item",
        remedy: "the candidate answers the golden set worse than the baseline: read the failed items by tag, then retrieval, prompts and model routing",
    },
    Entry {
        step: StepName::Observability,
        name: "observability",
        section: "steps.observability",
        owner: "sre",
        summary: "metrics exist, carry their labels and move; alert rules and dashboards hold",
        remedy: "metrics, labels or alert rules are missing or wrong: fix the instrumentation or the rule file before an incident needs it",
    },
    Entry {
        step: StepName::Canary,
        name: "canary",
        section: "steps.canary",
        owner: "sre",
        summary: "the statistical canary: staged traffic, sequential judges, rollback or promotion",
        remedy: "the candidate did worse than the baseline on real traffic: start from the failed requests by route and the judges' charts",
    },
    Entry {
        step: StepName::Gates,
        name: "gates",
        section: "gates",
        owner: "sre",
        summary: "GA gates over metrics: critical ones decide alone, the rest add up to a score",
        remedy: "a GA gate failed: its query, value and threshold are in the report",
    },
    Entry {
        step: StepName::Readiness,
        name: "readiness",
        section: "readiness",
        owner: "release",
        summary: "the production-readiness checklist, scored from the run's checks, with waivers",
        remedy: "the checklist is not done: finish, attest or waive (with an owner and an expiry) the open items",
    },
];

/// Where a run's systems are brought up: not a step one selects, but checks are filed under it.
pub const SETUP: &str = "setup";

impl StepName {
    /// Every step, in pipeline order.
    pub const ALL: [StepName; 11] = [
        StepName::Preflight,
        StepName::RollbackRehearsal,
        StepName::Chaos,
        StepName::Dr,
        StepName::Rotation,
        StepName::Security,
        StepName::Quality,
        StepName::Observability,
        StepName::Canary,
        StepName::Gates,
        StepName::Readiness,
    ];

    const fn entry(self) -> &'static Entry {
        // TABLE is in the order of the enum (a unit test holds it there).
        &TABLE[self as usize]
    }

    /// As reports, `--only` and check ids spell it: `rollback-rehearsal`.
    pub const fn as_str(self) -> &'static str {
        self.entry().name
    }

    /// Its section's key path in the spec: `steps.rollback_rehearsal`, `gates`.
    pub fn section(self) -> &'static str {
        self.entry().section
    }

    /// The role that answers for it when the spec names no `owner:`.
    pub fn conventional_owner(self) -> &'static str {
        self.entry().owner
    }

    pub fn summary(self) -> &'static str {
        self.entry().summary
    }

    /// The failure taxonomy's built-in hint for a failure in this step.
    pub fn remedy(self) -> &'static str {
        self.entry().remedy
    }

    /// Whether it still runs after a hard failure stopped the pipeline: it judges what the
    /// other steps measured rather than exercising the system.
    pub fn runs_after_a_stop(self) -> bool {
        matches!(self, StepName::Gates | StepName::Readiness)
    }

    /// Every name, for messages: `preflight, rollback-rehearsal, …`.
    pub fn list() -> String {
        StepName::ALL.map(StepName::as_str).join(", ")
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of no step, with the closest one if any.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not a step{}; steps: {}", .close.map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default(), StepName::list())]
pub struct UnknownStep {
    pub given: String,
    pub close: Option<&'static str>,
}

impl FromStr for StepName {
    type Err = UnknownStep;

    /// Takes both spellings: the report's `rollback-rehearsal` and the spec key's
    /// `rollback_rehearsal`.
    fn from_str(text: &str) -> Result<Self, UnknownStep> {
        let wanted = text.trim().replace('_', "-");
        StepName::ALL
            .into_iter()
            .find(|s| s.as_str() == wanted)
            .ok_or_else(|| UnknownStep {
                given: text.to_string(),
                close: crate::did_you_mean(&wanted, StepName::ALL.map(StepName::as_str)),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_pipeline_order_and_names_round_trip() {
        for (i, step) in StepName::ALL.into_iter().enumerate() {
            assert_eq!(TABLE[i].step, step);
            assert_eq!(step as usize, i);
            assert_eq!(step.as_str().parse::<StepName>(), Ok(step));
            assert_eq!(step.section().rsplit('.').next().unwrap().parse(), Ok(step));
        }
        assert!(StepName::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_misspelt_step_is_named_with_the_closest() {
        let err = "rollback_rehersal".parse::<StepName>().unwrap_err();
        assert_eq!(err.close, Some("rollback-rehearsal"));
        assert!(
            err.to_string()
                .contains("steps: preflight, rollback-rehearsal")
        );
    }
}
