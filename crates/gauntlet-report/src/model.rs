//! The report model. `report.json` is this, serialized; its schema is documented in
//! `docs/report-schema.md` and versioned by [`REPORT_SCHEMA`].

use serde::{Deserialize, Serialize};

/// Bumped on any change a consumer of `report.json` would notice.
pub const REPORT_SCHEMA: &str = "gauntlet.report/v1";

/// What one check concluded. Inconclusive is never a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
    Inconclusive,
    Skipped,
}

impl Outcome {
    pub fn is_pass(self) -> bool {
        self == Outcome::Pass
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
            Outcome::Inconclusive => "inconclusive",
            Outcome::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Hard,
    Soft,
}

/// The run's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub enum Decision {
    Go,
    Conditional,
    NoGo,
    Inconclusive,
    Aborted,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Go => "GO",
            Decision::Conditional => "CONDITIONAL",
            Decision::NoGo => "NO-GO",
            Decision::Inconclusive => "INCONCLUSIVE",
            Decision::Aborted => "ABORTED",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One measured claim: what was measured, against what, and why it ended as it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// `step.name`, unique within a run.
    pub id: String,
    pub step: String,
    pub name: String,
    pub outcome: Outcome,
    pub severity: Severity,
    /// The value observed, as a person reads it (`429 after 51 requests`).
    pub measured: Option<String>,
    /// What it had to be (`a 429 within 500 requests`).
    pub threshold: Option<String>,
    /// How many observations the outcome rests on.
    pub samples: Option<u64>,
    /// One line: why this outcome.
    pub reason: String,
    /// Evidence files, relative to the run directory.
    pub evidence: Vec<String>,
    /// Computed and reported, but never part of the decision (a judge on trial).
    #[serde(default)]
    pub dry_run: bool,
}

impl Check {
    /// A check that has not concluded yet: inconclusive until told otherwise.
    pub fn new(step: &str, name: &str, severity: Severity) -> Self {
        Self {
            id: format!("{step}.{name}"),
            step: step.to_string(),
            name: name.to_string(),
            outcome: Outcome::Inconclusive,
            severity,
            measured: None,
            threshold: None,
            samples: None,
            reason: "not evaluated".into(),
            evidence: Vec::new(),
            dry_run: false,
        }
    }
    pub fn outcome(mut self, outcome: Outcome, reason: impl Into<String>) -> Self {
        self.outcome = outcome;
        self.reason = reason.into();
        self
    }
    pub fn measured(mut self, measured: impl Into<String>) -> Self {
        self.measured = Some(measured.into());
        self
    }
    pub fn threshold(mut self, threshold: impl Into<String>) -> Self {
        self.threshold = Some(threshold.into());
        self
    }
    pub fn samples(mut self, samples: u64) -> Self {
        self.samples = Some(samples);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub name: String,
    /// The worst outcome among its checks (skipped when it did not run).
    pub outcome: Outcome,
    pub started_at: Option<String>,
    pub duration_ms: u64,
    /// Why the step was skipped or stopped, when it was.
    pub note: Option<String>,
    pub checks: Vec<Check>,
}

/// A drill's gameday timeline and the times derived from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    pub step: String,
    pub name: String,
    /// `hold`, `recover within 30s`, or what the step measured against.
    pub expect: String,
    pub outcome: Outcome,
    /// From the fault going in to the first probe (or side effect) that saw it.
    pub time_to_detect_ms: Option<u64>,
    /// From the fault going in to the steady state holding again.
    pub time_to_recover_ms: Option<u64>,
    pub recovery_bound_ms: Option<u64>,
    /// Per expected alert: from the fault going in to its notification reaching gauntlet's
    /// receiver through Alertmanager.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub time_to_alert_ms: std::collections::BTreeMap<String, u64>,
    pub events: Vec<DrillEvent>,
    /// The SVG timeline, relative to the run directory.
    pub svg: Option<String>,
    /// The drill as a Chaos Toolkit journal, relative to the run directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chaostoolkit: Option<String>,
}

/// A runbook as it was executed: each step against its budget, the whole against its target
/// and limit, and the first step that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunbookReport {
    pub name: String,
    /// The step (and drill) it ran in: `rollback-rehearsal`.
    pub ran_in: String,
    pub target_ms: u64,
    pub max_ms: u64,
    pub total_ms: u64,
    /// Pass within the target, warn up to the limit, fail beyond it or when a step failed.
    pub outcome: Outcome,
    pub steps: Vec<RunbookStepReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunbookStepReport {
    pub name: String,
    /// `call`, `wait` or `manual`.
    pub kind: String,
    pub budget_ms: u64,
    /// How long it took (none: it never started, an earlier step failed).
    pub took_ms: Option<u64>,
    pub outcome: Outcome,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillEvent {
    /// Milliseconds since the drill started.
    pub at_ms: u64,
    /// start, steady-state, fault-applied, detected, action, recovered, fault-removed,
    /// restored, side-effect, aborted (a safeguard breached), end.
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    /// RFC 3339, UTC.
    pub at: String,
    /// Milliseconds since the run started.
    pub elapsed_ms: u64,
    pub step: Option<String>,
    pub kind: String,
    pub message: String,
}

/// A soft failure that makes the decision CONDITIONAL, with who answers for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub check: String,
    pub reason: String,
    pub owner_role: Option<String>,
    pub owner: Option<String>,
    /// When it must be resolved by (a waiver's expiry), RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceFile {
    /// Relative to the run directory.
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecInfo {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`REPORT_SCHEMA`] for this version.
    pub schema: String,
    pub run_id: String,
    pub gauntlet_version: String,
    pub service: ServiceInfo,
    pub spec: SpecInfo,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    /// The seed every random choice of the run followed (`--seed`): the run replays with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// `hard`, `soft` or `none`.
    pub gating: String,
    pub decision: Decision,
    /// The process exit code this decision maps to.
    pub exit_code: i32,
    /// One line a person reads first.
    pub summary: String,
    pub conditions: Vec<Condition>,
    pub steps: Vec<StepReport>,
    pub timeline: Vec<TimelineEvent>,
    /// One gameday timeline per chaos drill (and the DR rehearsal), in the order run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drills: Vec<DrillReport>,
    /// Each runbook executed, in the order run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runbooks: Vec<RunbookReport>,
    pub evidence: Vec<EvidenceFile>,
    /// The green fingerprint, the signed release manifest and the signed decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustInfo>,
    /// What changed since the previous finished run of the same service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftInfo>,
    /// Gauntlet's own measurements, in base units (seconds, ratios, counts), by name
    /// (`canary.candidate.latency_p99`): what built-in gates read.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub measurements: std::collections::BTreeMap<String, f64>,
    /// The GA gates: each gate's query, values, threshold and outcome, and the score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<GatesReport>,
    /// The production-readiness checklist as this run's checks leave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<ReadinessReport>,
    /// What went wrong, grouped by cause, with the causes to look at first and a hint each;
    /// absent when nothing failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taxonomy: Option<TaxonomyReport>,
}

/// Failed requests and failed checks grouped by cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaxonomyReport {
    /// Failed requests through the canary's split, by step, arm, route and cause; most first.
    pub requests: Vec<FailureCause>,
    /// Failed and inconclusive checks, by step and outcome; most first.
    pub checks: Vec<FailureCause>,
    /// At most three causes to look at first: the first step that failed, then failed
    /// requests, then other failed steps, then inconclusive checks, each by count.
    pub top: Vec<FailureCause>,
}

/// One cause and how often it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureCause {
    /// `requests` or `checks`.
    pub kind: String,
    pub step: String,
    /// `baseline` or `candidate`, for requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
    /// Method and route with identifiers folded (`GET /items/{id}`), for requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The HTTP status, when the cause is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `status 500`, an error class (`timeout`, `connection refused`, `connection reset`,
    /// `transport error`, `injected by gauntlet`), or a check outcome (`fail`, `inconclusive`).
    pub cause: String,
    pub count: u64,
    /// Share of all failed requests (or of all failed and inconclusive checks), 0 to 1.
    pub share: f64,
    /// One instance: an answer's status line or error, or a check's id and reason.
    pub example: String,
    pub hint: String,
    /// `spec` when a hint of the spec's matched, else `built-in`.
    pub hint_from: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatesReport {
    /// Weighted share of the gates passed (a warn counts half), 0 to 1.
    pub score: f64,
    /// The score if every inconclusive gate had passed: the most the gates could have said.
    pub score_if_measured: f64,
    pub pass: String,
    pub warn: String,
    pub outcome: Outcome,
    pub gates: Vec<GateReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateReport {
    pub name: String,
    /// The query as sent (placeholders resolved), `promql: …` or `metric: …`.
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_query: Option<String>,
    /// What the query returned, one line per series.
    pub raw: Vec<String>,
    /// The value compared (the worst series).
    pub value: Option<f64>,
    /// What `baseline` or `history` resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<f64>,
    pub pass: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<String>,
    /// The pass limit the value was compared with, in base units.
    pub limit: Option<f64>,
    pub critical: bool,
    pub weight: f64,
    pub outcome: Outcome,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadinessReport {
    /// Weighted share done (partial counts half; waived counts as not done), 0 to 1.
    pub score: f64,
    pub minimum: String,
    pub categories: Vec<CategoryReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryReport {
    pub name: String,
    pub weight: f64,
    pub score: f64,
    pub items: Vec<ItemReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemReport {
    pub name: String,
    pub owner_role: String,
    pub owner: Option<String>,
    pub weight: f64,
    /// `automated` or `attested`.
    pub kind: String,
    /// done, partial, pending, failed, waived.
    pub status: String,
    /// Why this status: the checks it rests on and their outcomes, or who attested.
    pub detail: String,
    /// Check ids, or the attestation's evidence link.
    pub evidence: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver: Option<WaiverReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaiverReport {
    pub by: String,
    pub reason: String,
    pub expires: String,
    pub expired: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DriftInfo {
    pub previous_run: String,
    /// One line per change (`spec: slos.latency.threshold: "300ms" → "450ms"`); empty: none.
    pub changes: Vec<String>,
}

/// Paths are relative to the run directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrustInfo {
    /// sha256 over the manifest digests, thresholds, SBOM, flags and prompts (from preflight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub green_fingerprint: Option<String>,
    /// The signed release manifest (`release.lock`, signature beside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_version: Option<String>,
    /// The DSSE envelope of the decision as a SLSA verification summary
    /// (`attestation.dsse.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<String>,
    /// The DSSE envelope of the decision as an in-toto test result (`test-result.dsse.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_result: Option<String>,
    /// The id of the key that signed the attestation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
    /// Where that key's public half is (a minisign `.pub` file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Why something is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The name every step gives the check that its faults came out (drills, the rehearsal).
pub const UNDONE_CHECK: &str = "faults undone";

impl Report {
    pub fn checks(&self) -> impl Iterator<Item = &Check> {
        self.steps.iter().flat_map(|s| s.checks.iter())
    }

    /// Faults that were not undone, or whose undo could not be verified: what a reader must
    /// see before anything else, since the system may still be broken.
    pub fn undo_failures(&self) -> impl Iterator<Item = &Check> {
        self.checks()
            .filter(|c| c.outcome == Outcome::Fail && c.name.ends_with(UNDONE_CHECK))
    }
}

/// A run's decision, the conditions it carries and its one-line summary, as the report
/// holds them. ("Verdict" is a judge's answer, in gauntlet-stats; a run reaches a decision.)
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub decision: Decision,
    pub conditions: Vec<Condition>,
    pub summary: String,
}

/// A step's outcome from its checks: the worst of them (dry-run checks do not count); a step
/// without checks is skipped.
pub fn step_outcome(checks: &[Check]) -> Outcome {
    let rank = |o: Outcome| match o {
        Outcome::Skipped => 0,
        Outcome::Pass => 1,
        Outcome::Warn => 2,
        Outcome::Inconclusive => 3,
        Outcome::Fail => 4,
    };
    checks
        .iter()
        .filter(|c| !c.dry_run)
        .map(|c| c.outcome)
        .max_by_key(|o| rank(*o))
        .unwrap_or(Outcome::Skipped)
}
