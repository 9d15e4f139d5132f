//! Step 3, chaos drills, as a spec writes them: a steady-state hypothesis, faults for a
//! while, what must happen (`hold` or `recover within`), side effects and alerts; with the
//! step's checks and the longest a drill can take.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration as StdDuration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::{Section, StepName};
use crate::fault::TargetedFault;
use crate::fault::{FaultSpec, ProxyProtocol};
use crate::limits::MINUTE;
use crate::model::Severity;
use crate::plan::{Seed, StepMeta, StepPlan};
use crate::probe::{ExpectedAlert, Hypothesis, Probe, check_expected_alerts, check_probes};
use crate::units::{Duration, UnitError};
use crate::validate::{Context, Problems, quoted};

const AT: &str = "steps.chaos";

/// Step 3: drills. Each proves the service keeps its steady state under a fault (or
/// recovers within a bound), and that the fault is undone afterwards.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChaosStep {
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
    /// What "working" means, checked before, during and after every drill that does not
    /// bring its own.
    #[serde(default)]
    pub steady_state: Option<Hypothesis>,
    /// How often the probes run during a drill.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// Which proxies speak plain TCP (`tcp`) rather than HTTP/1.1 (`http`, the default, which
    /// also allows request faults). Keys: `candidate` or a dependency name.
    #[serde(default)]
    pub proxies: BTreeMap<String, ProxyProtocol>,
    /// Abort conditions for every drill: probes checked each interval while faults are in;
    /// the first that fails stops the drill at once and takes its faults out (the drill
    /// fails: it went further than the system may be pushed).
    #[serde(default)]
    pub safeguards: Vec<Probe>,
    #[schemars(with = "Vec<Drill>")]
    pub drills: Spanned<Vec<Drill>>,
}

fn default_interval() -> Duration {
    Duration::from_millis(200)
}

/// One drill: faults for a while, and what must happen.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Drill {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Overrides the step's steady state for this drill.
    #[serde(default)]
    pub steady_state: Option<Hypothesis>,
    #[schemars(with = "Vec<FaultSpec>")]
    pub faults: Vec<Spanned<FaultSpec>>,
    /// How long the faults stay in (and the hypothesis is watched).
    pub duration: Duration,
    #[serde(default)]
    pub expect: Expectation,
    /// Each must be seen at least once while the faults are in (e.g. the secondary starts
    /// receiving requests, the service reports the corruption).
    #[serde(default)]
    pub side_effects: Vec<Probe>,
    /// Alerts that must fire and reach gauntlet's receiver (through Alertmanager) within
    /// `within` of the first fault going in.
    #[serde(default)]
    pub alerts: Vec<ExpectedAlert>,
    /// This drill's own abort conditions, besides the step's.
    #[serde(default)]
    pub safeguards: Vec<Probe>,
    /// The response procedure (a top-level runbook), run when the drill first sees the
    /// steady state break: the incident's decision and action, timed; what its steps changed
    /// is put back when the faults come out.
    #[serde(default)]
    pub runbook: Option<String>,
}

/// `hold` (the hypothesis holds throughout) or `recover within 30s` (it may break, but
/// holds again within that bound of the fault going in).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Expectation {
    #[default]
    Hold,
    RecoverWithin(Duration),
}

impl FromStr for Expectation {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, UnitError> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["hold"] => Ok(Expectation::Hold),
            ["recover", "within", bound] => Ok(Expectation::RecoverWithin(bound.parse()?)),
            _ => Err(UnitError(format!(
                "invalid expectation `{text}`: expected `hold` or `recover within DURATION`, e.g. `recover within 30s`"
            ))),
        }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expectation::Hold => f.write_str("hold"),
            Expectation::RecoverWithin(bound) => write!(f, "recover within {bound}"),
        }
    }
}

impl<'de> Deserialize<'de> for Expectation {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map_err(|e: UnitError| serde::de::Error::custom(e.0))
    }
}

impl Serialize for Expectation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for Expectation {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Expectation".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": r"^\s*(hold|recover\s+within\s+\S+)\s*$",
            "description": "`hold` or `recover within DURATION`",
        })
    }
}

impl ChaosStep {
    /// A probe with a cost cap needs the spec's prices to price an answer with.
    fn check_costs(&self, cx: &Context<'_>, p: &mut Problems<'_>) {
        let priced = cx.spec.usage.as_ref().is_some_and(|u| !u.prices.is_empty());
        let mut lists: Vec<(String, &[Probe])> = Vec::new();
        if let Some(h) = &self.steady_state {
            lists.push((format!("{AT}.steady_state.probes"), &h.probes));
        }
        for (i, drill) in self.drills.value.iter().enumerate() {
            let at = format!("{AT}.drills[{i}]");
            if let Some(h) = &drill.steady_state {
                lists.push((format!("{at}.steady_state.probes"), &h.probes));
            }
            lists.push((format!("{at}.side_effects"), &drill.side_effects));
        }
        let probes = lists.into_iter().flat_map(|(at, list)| {
            list.iter()
                .enumerate()
                .map(move |(i, probe)| (format!("{at}[{i}]"), probe))
        });
        for (at, probe) in probes {
            let Some(cap) = probe.http.as_ref().and_then(|h| h.max_cost) else {
                continue;
            };
            if !(cap.is_finite() && cap >= 0.0) {
                p.key(
                    &format!("{at}.http.max_cost"),
                    "`max_cost` must be a number of zero or more".into(),
                    None,
                );
            } else if !priced {
                p.key(
                    &format!("{at}.http.max_cost"),
                    format!("probe `{}` caps the cost of an answer, and the spec has no prices", quoted(&probe.name)),
                    Some("add `usage: {prices: {MODEL: {prompt: 0.15, completion: 0.6}}}` (per million tokens)".into()),
                );
            }
        }
    }
}

impl Section for ChaosStep {
    fn step(&self) -> StepName {
        StepName::Chaos
    }

    fn owner(&self) -> Option<&Spanned<String>> {
        self.owner.as_ref()
    }

    fn check(&self, cx: &Context<'_>, p: &mut Problems<'_>) {
        if self.drills.value.is_empty() {
            p.at(
                self.drills.referenced,
                "the chaos step has no drills".into(),
                Some("add at least one under `drills:`".into()),
            );
        }
        let interval = self.interval.as_std();
        if interval < StdDuration::from_millis(10) && !interval.is_zero() {
            p.key(
                &format!("{AT}.interval"),
                format!("`interval` is {}: below 10ms", self.interval),
                Some("probes need at least `10ms` between rounds".into()),
            );
        }
        p.duration(&format!("{AT}.interval"), self.interval, false, MINUTE);
        for name in self.proxies.keys() {
            cx.check_system(
                p,
                &format!("{AT}.proxies.{name}"),
                "chaos.proxies",
                name,
                None,
            );
        }
        if let Some(hypothesis) = &self.steady_state {
            hypothesis.check(p, &format!("{AT}.steady_state"), "chaos.steady_state");
        }
        check_probes(
            p,
            &format!("{AT}.safeguards"),
            "chaos.safeguards",
            &self.safeguards,
        );
        self.check_costs(cx, p);
        let mut seen: Vec<&str> = Vec::new();
        for (i, drill) in self.drills.value.iter().enumerate() {
            let at = format!("{AT}.drills[{i}]");
            if seen.contains(&drill.name.as_str()) {
                p.key(
                    &format!("{at}.name"),
                    format!("two drills are named `{}`", quoted(&drill.name)),
                    Some("drill names must be unique".into()),
                );
            }
            seen.push(&drill.name);
            drill.check(cx, p, &at, self.steady_state.is_some());
        }
    }

    fn worst_case(&self, cx: &Context<'_>) -> Vec<(String, StdDuration)> {
        self.drills
            .value
            .iter()
            .map(|drill| {
                let h = drill.steady_state.as_ref().or(self.steady_state.as_ref());
                let (before, after) = h.map_or((StdDuration::ZERO, StdDuration::ZERO), |h| {
                    (h.before.as_std(), h.after.as_std())
                });
                let alerts = drill
                    .alerts
                    .iter()
                    .map(|a| a.within.as_std())
                    .max()
                    .unwrap_or_default();
                let runbook = drill
                    .runbook
                    .as_ref()
                    .and_then(|name| cx.spec.runbooks.get(name))
                    .map_or(StdDuration::ZERO, |r| r.worst_case());
                (
                    format!("chaos drill `{}`", quoted(&drill.name)),
                    before + drill.duration.as_std() + after + alerts + runbook,
                )
            })
            .collect()
    }

    fn plan(&self, cx: &Context<'_>, seed: Seed) -> Result<StepPlan, String> {
        let seed = seed.of(StepName::Chaos);
        let mut drills = Vec::new();
        let mut skipped = Vec::new();
        for (index, drill) in self.drills.value.iter().enumerate() {
            if !cx.drills.is_empty() && !cx.drills.contains(&drill.name) {
                continue;
            }
            if let Some((_, why)) = cx.skip_drills.iter().find(|(n, _)| *n == drill.name) {
                skipped.push((drill.name.clone(), why.clone()));
                continue;
            }
            let steady_state = drill
                .steady_state
                .clone()
                .or_else(|| self.steady_state.clone())
                .ok_or_else(|| format!("drill `{}` has no steady-state hypothesis", drill.name))?;
            let faults = drill
                .faults
                .iter()
                .map(|f| f.value.resolve(&cx.host).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?;
            drills.push(DrillPlan {
                name: drill.name.clone(),
                description: drill.description.clone(),
                steady_state,
                faults,
                duration: drill.duration,
                expect: drill.expect,
                side_effects: drill.side_effects.clone(),
                alerts: drill.alerts.clone(),
                runbook: drill
                    .runbook
                    .as_ref()
                    .and_then(|name| Some((name.clone(), cx.spec.runbooks.get(name)?.clone()))),
                safeguards: self
                    .safeguards
                    .iter()
                    .chain(&drill.safeguards)
                    .cloned()
                    .collect(),
                index: index as u64,
                seed: Seed(seed.derive("drill", index as u64)),
            });
        }
        Ok(StepPlan::Chaos(ChaosPlan {
            meta: StepMeta::new(StepName::Chaos, self.severity, self.owner.as_ref()),
            interval: self.interval,
            drills,
            skipped,
        }))
    }
}

impl Drill {
    /// The checks of the drill at `at` (`steps.chaos.drills[2]`).
    fn check(&self, cx: &Context<'_>, p: &mut Problems<'_>, at: &str, step_hypothesis: bool) {
        let what = format!("drill `{}`", quoted(&self.name));
        if self.name.trim().is_empty() {
            p.key(at, "a drill needs a `name`".into(), None);
        }
        let alerts: Vec<&ExpectedAlert> = self.alerts.iter().collect();
        check_expected_alerts(cx, p, &format!("{at}.alerts"), &what, &alerts);
        match &self.steady_state {
            Some(own) => own.check(p, &format!("{at}.steady_state"), &what),
            None if !step_hypothesis => p.key(
                at,
                format!("{what} has no steady-state hypothesis"),
                Some("add `steady_state:` to the drill or to the chaos step".into()),
            ),
            None => {}
        }
        check_probes(p, &format!("{at}.side_effects"), &what, &self.side_effects);
        check_probes(p, &format!("{at}.safeguards"), &what, &self.safeguards);
        if let Some(name) = &self.runbook {
            crate::runbook::check_reference(cx, p, &format!("{at}.runbook"), name);
        }
        p.duration(&format!("{at}.duration"), self.duration, false, 30 * MINUTE);
        if let Expectation::RecoverWithin(bound) = self.expect
            && bound > self.duration
        {
            p.key(
                &format!("{at}.expect"),
                format!(
                    "{what}: `recover within {bound}` is longer than the drill ({})",
                    self.duration
                ),
                Some("make the drill's `duration` at least the recovery bound".into()),
            );
        }
        if self.faults.is_empty() {
            p.key(
                at,
                format!("{what} injects no fault"),
                Some("add at least one under `faults:`".into()),
            );
        }
        for (i, fault) in self.faults.iter().enumerate() {
            let path = format!("{at}.faults[{i}]");
            fault.value.check(cx, p, &path, &what);
            if let Some(d) = fault.value.duration
                && d > self.duration
            {
                p.key(
                    &format!("{path}.duration"),
                    format!(
                        "{what}: the fault lasts {d}, longer than the drill ({})",
                        self.duration
                    ),
                    None,
                );
            }
        }
    }
}

/// The drills as a run takes them (only those selected).
#[derive(Debug, Clone)]
pub struct ChaosPlan {
    pub meta: StepMeta,
    /// How often the probes run during a drill.
    pub interval: Duration,
    pub drills: Vec<DrillPlan>,
    /// Drills left out of this run, each with why.
    pub skipped: Vec<(String, String)>,
}

impl ChaosPlan {
    pub(crate) fn reseed(&mut self, seed: Seed) {
        let seed = seed.of(StepName::Chaos);
        for drill in &mut self.drills {
            drill.seed = Seed(seed.derive("drill", drill.index));
        }
    }
}

/// One drill: its hypothesis (its own or the step's), faults, and what must happen.
#[derive(Debug, Clone)]
pub struct DrillPlan {
    pub name: String,
    pub description: Option<String>,
    pub steady_state: Hypothesis,
    pub faults: Vec<TargetedFault>,
    pub duration: Duration,
    pub expect: Expectation,
    pub side_effects: Vec<Probe>,
    pub alerts: Vec<ExpectedAlert>,
    /// The step's abort conditions and its own.
    pub safeguards: Vec<Probe>,
    /// The response runbook, by name, run when the drill first sees the breakage.
    pub runbook: Option<(String, crate::runbook::Runbook)>,
    /// Its place in the spec's list (its seed's index).
    pub index: u64,
    /// Which connections and requests its partial faults touch, which bytes a corruption
    /// flips: fault `i` draws from `seed.derive("fault", i)`.
    pub seed: Seed,
}
