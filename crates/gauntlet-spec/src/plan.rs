//! The Plan: what one run does, resolved from a checked spec and the command line's selection.
//! Like ripgrep's flags → low-level args → high-level args, a spec is parsed once (with spans,
//! for diagnostics) and then resolved here into values the engine uses as they are: no spans,
//! durations, rates, thresholds and dates parsed, defaults filled in, only the steps that will
//! run (and why the others will not), seeds derived by one function. A Plan is `Clone`, so a
//! repeated run clones it instead of reading the file again.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use crate::diagnostic::did_you_mean;
use crate::fault::ProxyProtocol;
use crate::limits::Host;
use crate::model::{GatingMode, Launch, Request, Service, Severity, Slos, Spec};
use crate::prometheus::PrometheusSection;
use crate::steps::{
    StepName, canary::CanaryPlan, chaos::ChaosPlan, dr::DrPlan, gates::GatesPlan,
    observability::ObservabilityPlan, preflight::PreflightPlan, quality::QualityPlan,
    readiness::ReadinessPlan, rehearsal::RehearsalPlan, rotation::RotationPlan,
    security::SecurityPlan,
};
use crate::trust::{FlagSource, SbomSource};
use crate::units::Rate;
use crate::validate::Context;
use crate::{SpecDiagnostic, SpecErrors};

/// What a run does.
#[derive(Debug, Clone)]
pub struct Plan {
    pub service: Service,
    pub systems: Systems,
    pub traffic: Traffic,
    pub slos: Slos,
    /// The steps that run, in pipeline order.
    pub steps: Vec<StepPlan>,
    /// The configured steps that do not run, and why.
    pub skipped: Vec<(StepName, String)>,
    pub gating: GatingMode,
    pub trust: Option<Trust>,
    pub signoffs: Option<Signoffs>,
    pub prometheus: Option<PrometheusSection>,
    /// The service's alert rule file (relative to the spec), which the run's Prometheus loads
    /// whether or not the observability step runs.
    pub alert_rules: Option<String>,
    pub hints: Vec<Hint>,
    /// The run stops here, ABORTED, with everything undone.
    pub ceiling: StdDuration,
    /// Variables of gauntlet's own environment every process it starts receives.
    pub pass_env: Vec<String>,
    /// How answers report their tokens and model, and the prices (AI services).
    pub usage: Option<crate::usage::Usage>,
    /// The spec's runbooks, by name.
    pub runbooks: std::collections::BTreeMap<String, crate::runbook::Runbook>,
    /// The incident timeline's bounds and responder.
    pub incident: crate::incident::Incident,
    /// The gameday report's policy.
    pub gameday: crate::gameday::GamedaySection,
    pub seed: Seed,
}

/// One step that runs, with everything it needs. (A plan is made once per run, so the
/// variants' sizes do not matter.)
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum StepPlan {
    Preflight(PreflightPlan),
    RollbackRehearsal(RehearsalPlan),
    Chaos(ChaosPlan),
    Dr(DrPlan),
    Rotation(RotationPlan),
    Security(SecurityPlan),
    Quality(QualityPlan),
    Observability(ObservabilityPlan),
    Canary(CanaryPlan),
    Gates(GatesPlan),
    Readiness(ReadinessPlan),
}

impl StepPlan {
    pub fn step(&self) -> StepName {
        match self {
            StepPlan::Preflight(_) => StepName::Preflight,
            StepPlan::RollbackRehearsal(_) => StepName::RollbackRehearsal,
            StepPlan::Chaos(_) => StepName::Chaos,
            StepPlan::Dr(_) => StepName::Dr,
            StepPlan::Rotation(_) => StepName::Rotation,
            StepPlan::Security(_) => StepName::Security,
            StepPlan::Quality(_) => StepName::Quality,
            StepPlan::Observability(_) => StepName::Observability,
            StepPlan::Canary(_) => StepName::Canary,
            StepPlan::Gates(_) => StepName::Gates,
            StepPlan::Readiness(_) => StepName::Readiness,
        }
    }

    /// Its severity and owner role (the gates and the readiness review have none of their
    /// own: they belong to the spec's sections of the same name).
    pub fn meta(&self) -> Option<&StepMeta> {
        match self {
            StepPlan::Preflight(p) => Some(&p.meta),
            StepPlan::RollbackRehearsal(p) => Some(&p.meta),
            StepPlan::Chaos(p) => Some(&p.meta),
            StepPlan::Dr(p) => Some(&p.meta),
            StepPlan::Rotation(p) => Some(&p.meta),
            StepPlan::Security(p) => Some(&p.meta),
            StepPlan::Quality(p) => Some(&p.meta),
            StepPlan::Observability(p) => Some(&p.meta),
            StepPlan::Canary(p) => Some(&p.meta),
            StepPlan::Gates(p) => Some(&p.meta),
            StepPlan::Readiness(_) => None,
        }
    }
}

impl Plan {
    /// Whether `step` runs.
    pub fn runs(&self, step: StepName) -> bool {
        self.steps.iter().any(|s| s.step() == step)
    }

    pub fn readiness(&self) -> Option<&ReadinessPlan> {
        self.steps.iter().find_map(|s| match s {
            StepPlan::Readiness(r) => Some(r),
            _ => None,
        })
    }

    pub fn canary(&self) -> Option<&crate::CanaryPlan> {
        self.steps.iter().find_map(|s| match s {
            StepPlan::Canary(c) => Some(c),
            _ => None,
        })
    }

    /// Every variable the spec passes to a process it starts (`pass_env`, top level and per
    /// system): the only names a run's caller may give values for (a demo's defect knobs).
    pub fn passed_env(&self) -> std::collections::BTreeSet<&str> {
        self.pass_env
            .iter()
            .chain(
                self.systems
                    .in_start_order()
                    .flat_map(|s| s.pass_env.iter()),
            )
            .map(String::as_str)
            .collect()
    }

    pub fn gates(&self) -> Option<&GatesPlan> {
        self.steps.iter().find_map(|s| match s {
            StepPlan::Gates(g) => Some(g),
            _ => None,
        })
    }

    /// A copy whose random choices follow another seed (`run --repeat`).
    pub fn with_seed(&self, seed: u64) -> Plan {
        let mut plan = self.clone();
        plan.seed = Seed(seed);
        for step in &mut plan.steps {
            match step {
                StepPlan::Chaos(c) => c.reseed(plan.seed),
                StepPlan::Canary(c) => c.seed = plan.seed.of(StepName::Canary),
                StepPlan::RollbackRehearsal(r) => r.reseed(plan.seed),
                _ => {}
            }
        }
        plan
    }
}

/// What a step says of how hard its failures are and who answers for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepMeta {
    pub severity: Severity,
    /// The role from `service.owners` (the spec's `owner:`, else the step's conventional one).
    pub owner: String,
}

impl StepMeta {
    pub(crate) fn new(
        step: StepName,
        severity: Severity,
        owner: Option<&serde_saphyr::Spanned<String>>,
    ) -> Self {
        Self {
            severity,
            owner: owner.map_or_else(
                || step.conventional_owner().to_string(),
                |o| o.value.clone(),
            ),
        }
    }
}

/// The systems under test and their dependencies, in start order.
#[derive(Debug, Clone)]
pub struct Systems {
    pub dependencies: Vec<System>,
    pub baseline: Option<System>,
    pub candidate: System,
    /// What the fault proxy in front of each system speaks (`steps.chaos.proxies`).
    pub proxies: BTreeMap<String, ProxyProtocol>,
    /// Whether the candidate and its dependencies get fault proxies: drills run, or the
    /// rehearsal breaks a dependency through one.
    pub proxied: bool,
}

impl Systems {
    /// Dependencies, then the baseline, then the candidate.
    pub fn in_start_order(&self) -> impl Iterator<Item = &System> {
        self.dependencies
            .iter()
            .chain(self.baseline.iter())
            .chain(std::iter::once(&self.candidate))
    }

    pub fn protocol(&self, system: &str) -> ProxyProtocol {
        self.proxies
            .get(system)
            .copied()
            .unwrap_or(ProxyProtocol::Http)
    }
}

/// A system: where it answers, and how gauntlet starts it when it is not already running.
#[derive(Debug, Clone)]
pub struct System {
    /// `candidate`, `baseline` or the dependency's name.
    pub name: String,
    pub is_dependency: bool,
    pub url: Option<String>,
    pub command: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub pass_env: Vec<String>,
    pub health: String,
    pub ready_timeout: crate::units::Duration,
}

impl System {
    fn new(name: &str, launch: &Launch, is_dependency: bool) -> Self {
        Self {
            name: name.to_string(),
            is_dependency,
            url: launch.url.clone(),
            command: launch.command.clone(),
            env: launch.env.clone(),
            pass_env: launch.pass_env.iter().map(|v| v.value.clone()).collect(),
            health: launch.health.clone(),
            ready_timeout: launch.ready_timeout,
        }
    }

    /// A process gauntlet starts for a run (a stressor): nothing but a command.
    pub fn process(name: &str, command: Vec<String>) -> Self {
        Self {
            name: name.to_string(),
            is_dependency: false,
            url: None,
            command: Some(command),
            env: BTreeMap::new(),
            pass_env: Vec::new(),
            health: "/".into(),
            ready_timeout: crate::units::Duration::from_secs(1),
        }
    }
}

/// The requests gauntlet sends when a step needs traffic.
#[derive(Debug, Clone)]
pub struct Traffic {
    pub rate: Rate,
    pub requests: Vec<Request>,
}

/// What is locked and signed. Paths are relative to the spec's directory.
#[derive(Debug, Clone)]
pub struct Trust {
    pub lock: String,
    pub protected: Vec<String>,
    pub flags: Option<FlagSource>,
    pub sbom: Option<SbomSource>,
    pub artifacts: Vec<String>,
    pub evidence_url: Option<String>,
}

impl Trust {
    /// The `trust` section, resolved.
    pub fn of(section: &crate::trust::TrustSection) -> Trust {
        Trust {
            lock: section.lock.clone(),
            protected: section.protected.iter().map(|p| p.value.clone()).collect(),
            flags: section.flags.clone(),
            sbom: section.sbom.clone(),
            artifacts: section.artifacts.clone(),
            evidence_url: section.evidence_url.as_ref().map(|u| u.value.clone()),
        }
    }
}

/// Roles that must sign a run off, and the keys that speak for some of them.
#[derive(Debug, Clone, Default)]
pub struct Signoffs {
    pub required: Vec<String>,
    pub keys: BTreeMap<String, String>,
}

impl Signoffs {
    /// The public key line that speaks for `role`, if the spec names one.
    pub fn key_of(&self, role: &str) -> Option<&str> {
        self.keys.get(role).map(|k| k.trim())
    }
}

/// A remediation hint of the failure taxonomy and the causes it fits.
#[derive(Debug, Clone)]
pub struct Hint {
    pub step: Option<String>,
    pub status: Option<u16>,
    pub route: Option<String>,
    pub error: Option<String>,
    pub hint: String,
}

/// The run's seed, and the one function that derives every other seed from it: a stream name
/// and an index through SplitMix64's finalizer (pinned: a recorded seed replays across
/// versions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed(pub u64);

impl Seed {
    /// The seed of one random stream: `what` names it (`chaos/drill`), `index` numbers it.
    pub fn derive(self, what: &str, index: u64) -> u64 {
        let named = what.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        mix(mix(self.0 ^ named).wrapping_add(index))
    }

    /// The seed a step's streams start from.
    pub fn of(self, step: StepName) -> Seed {
        Seed(self.derive(step.as_str(), 0))
    }
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Which steps a run takes: a profile of the spec's, then `--only` and `--skip`; and which
/// chaos drills (`gauntlet chaos --drill`).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub profile: Option<String>,
    pub only: Vec<StepName>,
    pub skip: Vec<StepName>,
    pub drills: Vec<String>,
    /// Drills left out, each with why (the demo's clock skew without libfaketime); the
    /// chaos step reports each as skipped.
    pub skip_drills: Vec<(String, String)>,
}

/// Why no plan could be made: the spec has problems, or the selection names what the spec
/// does not have. Both are invalid input.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Spec(#[from] SpecErrors),
    #[error("{0}")]
    Selection(String),
}

impl Selection {
    /// The configured steps that run and those that do not (with why), or what the
    /// selection names that the spec does not configure.
    fn split(&self, spec: &Spec, file: &str) -> Result<(Vec<StepName>, Skipped), PlanError> {
        let configured = spec.configured();
        let (mut only, mut skip) = (Vec::new(), Vec::new());
        let mut from = "--only";
        if let Some(name) = &self.profile {
            let Some(profile) = spec.profiles.get(name) else {
                let known: Vec<&str> = spec.profiles.keys().map(String::as_str).collect();
                return Err(PlanError::Selection(format!(
                    "no profile `{name}` in {file}; {}",
                    match did_you_mean(name, known.iter().copied()) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None if known.is_empty() => "add one under `profiles:`, e.g. `profiles: {smoke: {only: [security, canary]}}`".into(),
                        None => format!("profiles: {}", known.join(", ")),
                    }
                )));
            };
            only = crate::Profile::steps(&profile.only);
            skip = crate::Profile::steps(&profile.skip);
            from = "the profile";
        }
        only.extend(&self.only);
        skip.extend(&self.skip);
        for step in only.iter().chain(&skip) {
            if !configured.contains(step) {
                return Err(PlanError::Selection(format!(
                    "step `{step}` is not configured in {file}; configured steps: {}",
                    list(&configured)
                )));
            }
        }
        let mut runs = Vec::new();
        let mut skipped = Vec::new();
        for step in configured {
            if skip.contains(&step) {
                let by = match &self.profile {
                    Some(p) if !self.skip.contains(&step) => format!("profile `{p}` skips it"),
                    _ => "--skip".to_string(),
                };
                skipped.push((step, format!("skipped ({by})")));
            } else if !only.is_empty() && !only.contains(&step) {
                skipped.push((step, format!("skipped (not in {from})")));
            } else {
                runs.push(step);
            }
        }
        Ok((runs, skipped))
    }
}

/// Configured steps that do not run, and why.
type Skipped = Vec<(StepName, String)>;

fn list(steps: &[StepName]) -> String {
    if steps.is_empty() {
        return "none".into();
    }
    steps
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Spec {
    /// The plan of a run of this spec (read from `file` as `text`): the selection applied,
    /// the spec checked for what will run, every value resolved.
    pub fn plan(
        &self,
        file: &str,
        text: &str,
        selection: &Selection,
        seed: u64,
    ) -> Result<Plan, PlanError> {
        let (runs, skipped) = selection.split(self, file)?;
        // A step is checked with the sections it reads: the rehearsal runs the canary's
        // judges.
        let mut checked = runs.clone();
        if runs.contains(&StepName::RollbackRehearsal) {
            checked.push(StepName::Canary);
        }
        let problems = crate::validate::check(file, text, self, &checked);
        if !problems.is_empty() {
            return Err(SpecErrors(problems).into());
        }
        let cx = Context {
            spec: self,
            host: Host::this(),
            drills: &selection.drills,
            skip_drills: &selection.skip_drills,
        };
        if !selection.drills.is_empty() {
            check_drills(self, file, &selection.drills)?;
        }
        let seed = Seed(seed);
        let mut steps = Vec::new();
        for section in self.sections() {
            if runs.contains(&section.step()) {
                let step = section.plan(&cx, seed).map_err(|why| {
                    SpecErrors(vec![SpecDiagnostic::whole_file(
                        file,
                        format!("{}: {why}", section.step()),
                        None,
                    )])
                })?;
                steps.push(step);
            }
        }
        Ok(Plan {
            service: self.service.clone(),
            systems: self.systems(&steps),
            traffic: Traffic {
                rate: self.traffic.rate,
                requests: self.traffic.requests.value.clone(),
            },
            slos: self.slos.clone(),
            steps,
            skipped,
            gating: self.gating.mode,
            trust: self.trust.as_ref().map(Trust::of),
            signoffs: self.signoffs.as_ref().map(|s| Signoffs {
                required: s.required.iter().map(|r| r.value.clone()).collect(),
                keys: s
                    .keys
                    .iter()
                    .map(|(role, key)| (role.clone(), key.value.clone()))
                    .collect(),
            }),
            prometheus: self.prometheus.clone(),
            alert_rules: self
                .steps
                .observability
                .as_ref()
                .and_then(|o| o.alerts.as_ref())
                .map(|a| a.rules.clone()),
            hints: self
                .taxonomy
                .iter()
                .flat_map(|t| &t.hints)
                .map(|h| Hint {
                    step: h.step.as_ref().map(|s| s.value.replace('_', "-")),
                    status: h.status,
                    route: h.route.clone(),
                    error: h.error.clone(),
                    hint: h.hint.clone(),
                })
                .collect(),
            ceiling: crate::limits::ceiling(self),
            pass_env: self.pass_env.iter().map(|v| v.value.clone()).collect(),
            usage: self.usage.clone(),
            runbooks: self.runbooks.clone(),
            incident: self.incident.clone(),
            gameday: self.gameday.clone(),
            seed,
        })
    }

    fn systems(&self, steps: &[StepPlan]) -> Systems {
        let chaos = steps.iter().any(|s| matches!(s, StepPlan::Chaos(_)));
        let rehearsal_proxied = steps.iter().any(|s| {
            matches!(s, StepPlan::RollbackRehearsal(r) if r.faults.iter().any(|f| f.fault.kind.is_proxy()))
        });
        let ablation_proxied = steps.iter().any(|s| {
            matches!(s, StepPlan::Quality(q) if q.ablation.as_ref().is_some_and(|a| a.faults.iter().any(|f| f.fault.kind.is_proxy())))
        });
        // The fan-out probe counts what reaches a dependency through its proxy.
        let fanout = steps
            .iter()
            .any(|s| matches!(s, StepPlan::Security(p) if p.fanout.is_some()));
        Systems {
            dependencies: self
                .dependencies
                .iter()
                .map(|(name, launch)| System::new(name, &launch.value, true))
                .collect(),
            baseline: self
                .targets
                .baseline
                .as_ref()
                .map(|b| System::new("baseline", &b.value, false)),
            candidate: System::new("candidate", &self.targets.candidate.value, false),
            proxies: self
                .steps
                .chaos
                .as_ref()
                .map(|c| c.proxies.clone())
                .unwrap_or_default(),
            proxied: chaos || rehearsal_proxied || fanout || ablation_proxied,
        }
    }
}

/// Every drill `gauntlet chaos --drill` names is one of the spec's.
fn check_drills(spec: &Spec, file: &str, wanted: &[String]) -> Result<(), PlanError> {
    let Some(chaos) = &spec.steps.chaos else {
        return Err(PlanError::Selection(format!(
            "{file} has no `steps.chaos` section, so it has no drills"
        )));
    };
    let names: Vec<&str> = chaos.drills.value.iter().map(|d| d.name.as_str()).collect();
    for wanted in wanted {
        if !names.contains(&wanted.as_str()) {
            let hint = did_you_mean(wanted, names.iter().copied())
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            return Err(PlanError::Selection(format!(
                "no drill named `{wanted}` in {file}; {hint}drills: {}",
                names.join(", ")
            )));
        }
    }
    Ok(())
}

/// Why `text` is not an http(s) URL with a host, if it is not.
pub(crate) fn http_url(text: &str) -> Result<(), String> {
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .ok_or("not an http(s) URL")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err("the URL names no host".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_seeds_differ_by_stream_and_index_and_are_pinned() {
        let seed = Seed(1);
        assert_ne!(seed.derive("chaos/drill", 0), seed.derive("chaos/drill", 1));
        assert_ne!(seed.derive("chaos/drill", 0), seed.derive("canary", 0));
        assert_ne!(seed.derive("canary", 0), Seed(2).derive("canary", 0));
        // Pinned: a recorded seed must replay the same choices in later versions.
        assert_eq!(Seed(1).derive("canary", 0), Seed(1).derive("canary", 0));
        assert_eq!(mix(0), 0xe220_a839_7b1d_cdaf);
    }
}
