//! Step 2, the rollback rehearsal, as a spec writes it: the regression injected into the
//! candidate (errors, latency, real faults), how fast it must be caught and recovered from,
//! the SLI that must see it and the alerts that must fire; with its checks.

use std::time::Duration as StdDuration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Section, StepName};
use crate::fault::FaultSpec;
use crate::fault::TargetedFault;
use crate::limits::{HOUR, MINUTE};
use crate::model::Severity;
use crate::plan::{Seed, StepMeta, StepPlan};
use crate::probe::{ExpectedAlert, check_expected_alerts};
use crate::steps::canary::CanaryPlan;
use crate::units::{Duration, Percent};
use crate::validate::{Context, Problems, quoted};

const AT: &str = "steps.rollback_rehearsal";

fn default_metrics_path() -> String {
    "/metrics".into()
}

fn ten_percent() -> Percent {
    Percent::from_ratio("10%", 0.10)
}

/// Step 2: before the real canary, inject a regression into the candidate arm and prove the
/// canary catches it, rolls back, and the baseline serves everything again within the RTO.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RehearsalStep {
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
    /// Share of candidate requests the split answers with 500.
    #[serde(default = "twenty_percent")]
    pub error_rate: Percent,
    /// Delay the split adds to candidate requests.
    #[serde(default = "zero_duration")]
    pub latency: Duration,
    /// The candidate's share of traffic during the rehearsal.
    #[serde(default = "fifty_percent")]
    pub weight: Percent,
    /// The judges must reject within this.
    #[serde(default = "thirty_seconds")]
    pub detect_within: Duration,
    /// From the rollback decision to SLIs back to normal.
    #[serde(default = "thirty_seconds")]
    pub rto: Duration,
    /// Consecutive good requests that count as recovered.
    #[serde(default = "default_recovery_samples")]
    pub recovery_samples: u32,
    /// Real faults that break the candidate for the rehearsal (the drills' fault kinds; a
    /// fault on a dependency reaches the candidate only, through its fault proxy). They go in
    /// with the split's injected errors, if any, and come out when the rehearsal ends.
    #[serde(default)]
    #[schemars(with = "Vec<FaultSpec>")]
    pub faults: Vec<Spanned<FaultSpec>>,
    /// The service's own SLI must see the regression: read from its metrics endpoint before
    /// the regression and while it lasts, it must drop by at least `drop`.
    #[serde(default)]
    pub sli: Option<SliSensitivity>,
    /// Alerts that must fire and reach gauntlet's receiver (through the run's Alertmanager)
    /// within `within` of the regression going in, as in a drill. The rehearsal waits for
    /// them after the recovery, so the rollback is never held up.
    #[serde(default)]
    #[schemars(with = "Vec<ExpectedAlert>")]
    pub alerts: Vec<Spanned<ExpectedAlert>>,
    /// The golden set judges the regression too (the quality step's dataset, request,
    /// assertions and paired judge, asked of both arms while the regression is in): a
    /// regression that answers 200 with wrong answers is caught only this way.
    #[serde(default)]
    pub quality: bool,
    /// The rollback procedure (a top-level runbook) run once the judges reject, after the
    /// split moves and the hook: each step timed against its budget, the whole against the
    /// runbook's target; what its steps changed is put back afterwards.
    #[serde(default)]
    pub runbook: Option<String>,
}

/// An availability SLI read from the candidate's metrics endpoint: 1 − bad / total, over the
/// increase of two counters between two scrapes. Selectors are PromQL series selectors.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SliSensitivity {
    #[serde(default = "default_metrics_path")]
    pub path: String,
    /// Every request the service counted, e.g. `http_requests_total`.
    #[schemars(with = "String")]
    pub total: Spanned<String>,
    /// The requests that failed, e.g. `http_requests_total{code=~"5.."}`.
    #[schemars(with = "String")]
    pub bad: Spanned<String>,
    /// The least relative drop that counts as seeing the regression.
    #[serde(default = "ten_percent")]
    pub drop: Percent,
    /// Candidate requests measured before the regression goes in.
    #[serde(default = "default_sli_requests")]
    pub requests: u32,
}

fn default_sli_requests() -> u32 {
    100
}

fn twenty_percent() -> Percent {
    Percent::from_ratio("20%", 0.20)
}

fn fifty_percent() -> Percent {
    Percent::from_ratio("50%", 0.50)
}

fn zero_duration() -> Duration {
    Duration::from_millis(0)
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

fn default_recovery_samples() -> u32 {
    50
}

impl Section for RehearsalStep {
    fn step(&self) -> StepName {
        StepName::RollbackRehearsal
    }

    fn owner(&self) -> Option<&Spanned<String>> {
        self.owner.as_ref()
    }

    fn check(&self, cx: &Context<'_>, p: &mut Problems<'_>) {
        let what = "rollback_rehearsal";
        if cx.spec.steps.canary.is_none() {
            p.key(
                AT,
                "the rollback rehearsal runs the canary's judges, but `steps.canary` is missing"
                    .into(),
                Some("add a `canary:` section under `steps:`".into()),
            );
        }
        if cx.spec.targets.baseline.is_none() {
            p.key(
                AT,
                "the rollback rehearsal rolls back to the baseline, and `targets.baseline` is missing".into(),
                Some("add `targets: {baseline: {url: ...}}` (or a `command`) for the version running today".into()),
            );
        }
        let alerts: Vec<&ExpectedAlert> = self.alerts.iter().map(|a| &a.value).collect();
        check_expected_alerts(cx, p, &format!("{AT}.alerts"), what, &alerts);
        for (i, fault) in self.faults.iter().enumerate() {
            let path = format!("{AT}.faults[{i}]");
            fault.value.check(cx, p, &path, what);
            if fault.value.target == "candidate" && fault.value.kind.is_proxy() {
                p.key(
                    &path,
                    format!("{what}: the rehearsal's traffic reaches the candidate directly, so a proxy fault on it would never be seen"),
                    Some("break one of the candidate's dependencies (it reaches them through fault proxies), or use a process fault such as `corrupt` or `kill`".into()),
                );
            }
            if fault.value.target == "baseline" {
                p.key(
                    &format!("{path}.target"),
                    format!("{what}: a fault on the baseline breaks what the rehearsal rolls back to"),
                    Some("break the candidate, or a dependency (only the candidate reaches it through a fault proxy)".into()),
                );
            }
        }
        if let Some(name) = &self.runbook {
            crate::runbook::check_reference(cx, p, &format!("{AT}.runbook"), name);
        }
        if self.quality && cx.spec.steps.quality.is_none() {
            p.key(
                &format!("{AT}.quality"),
                format!("{what}: `quality: true` asks the golden set to judge the regression, and `steps.quality` is missing"),
                Some("add a `quality:` section (dataset, request, assertions), or remove `quality: true`".into()),
            );
        }
        let injects = self.error_rate.ratio() > 0.0
            || !self.latency.as_std().is_zero()
            || !self.faults.is_empty();
        if !injects {
            p.key(
                AT,
                "the rollback rehearsal injects nothing: `error_rate` and `latency` are zero and there are no `faults`".into(),
                Some("e.g. `error_rate: 30%`, or `faults: [{kind: http_abort, target: candidate, status: 503}]`".into()),
            );
        }
        if let Some(sli) = &self.sli {
            for selector in [&sli.total, &sli.bad] {
                if let Err(e) = series_selector(&selector.value) {
                    p.at(
                        selector.referenced,
                        format!("{what}.sli: {e}"),
                        Some(
                            "write a series selector, e.g. `http_requests_total{code=~\"5..\"}`"
                                .into(),
                        ),
                    );
                }
            }
            if sli.requests == 0 {
                p.key(
                    &format!("{AT}.sli.requests"),
                    format!("{what}.sli: `requests` must be at least 1"),
                    None,
                );
            }
            p.count(
                &format!("{AT}.sli.requests"),
                u64::from(sli.requests),
                100_000,
            );
        }
        p.duration(&format!("{AT}.latency"), self.latency, true, MINUTE);
        p.duration(
            &format!("{AT}.detect_within"),
            self.detect_within,
            false,
            HOUR,
        );
        p.duration(&format!("{AT}.rto"), self.rto, false, HOUR);
        p.count(
            &format!("{AT}.recovery_samples"),
            u64::from(self.recovery_samples),
            100_000,
        );
    }

    fn worst_case(&self, cx: &Context<'_>) -> Vec<(String, StdDuration)> {
        let runbook = self
            .runbook
            .as_ref()
            .and_then(|name| cx.spec.runbooks.get(name))
            .map_or(StdDuration::ZERO, |r| r.worst_case());
        let alerts = self
            .alerts
            .iter()
            .map(|a| a.value.within.as_std())
            .max()
            .unwrap_or_default();
        vec![(
            "rollback_rehearsal".to_string(),
            self.detect_within.as_std() + self.rto.as_std() + alerts + runbook + MINUTE,
        )]
    }

    fn plan(&self, cx: &Context<'_>, seed: Seed) -> Result<StepPlan, String> {
        let canary = cx
            .spec
            .steps
            .canary
            .as_ref()
            .ok_or("the rehearsal runs the canary's judges, and `steps.canary` is missing")?
            .resolve(cx, seed);
        let faults = self
            .faults
            .iter()
            .map(|f| f.value.resolve(&cx.host).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        let quality = match (self.quality, &cx.spec.steps.quality) {
            (false, _) => None,
            (true, None) => {
                return Err("`quality: true` needs the `quality` step's golden set".into());
            }
            (true, Some(section)) => match section.plan(cx, seed)? {
                StepPlan::Quality(plan) => Some(plan),
                _ => None,
            },
        };
        let mut plan = RehearsalPlan {
            meta: StepMeta::new(
                StepName::RollbackRehearsal,
                self.severity,
                self.owner.as_ref(),
            ),
            error_rate: self.error_rate.clone(),
            latency: self.latency,
            weight: self.weight.clone(),
            detect_within: self.detect_within,
            rto: self.rto,
            recovery_samples: self.recovery_samples,
            faults,
            sli: self.sli.as_ref().map(|s| Sli {
                path: s.path.clone(),
                total: s.total.value.clone(),
                bad: s.bad.value.clone(),
                drop: s.drop.clone(),
                requests: s.requests,
            }),
            alerts: self.alerts.iter().map(|a| a.value.clone()).collect(),
            quality,
            runbook: self
                .runbook
                .as_ref()
                .and_then(|name| Some((name.clone(), cx.spec.runbooks.get(name)?.clone()))),
            canary,
            seed: seed.of(StepName::RollbackRehearsal),
        };
        plan.reseed(seed);
        Ok(StepPlan::RollbackRehearsal(plan))
    }
}

/// Whether a text is a plain PromQL series selector (a name and label matchers).
fn series_selector(text: &str) -> Result<(), String> {
    use promql_parser::parser::{Expr, parse};
    match parse(text).map_err(|e| e.trim().to_string())? {
        Expr::VectorSelector(vs)
            if vs.offset.is_none() && vs.at.is_none() && vs.matchers.or_matchers.is_empty() =>
        {
            let named =
                vs.name.is_some() || vs.matchers.matchers.iter().any(|m| m.name == "__name__");
            if named {
                Ok(())
            } else {
                Err(format!("`{}` names no metric", quoted(text)))
            }
        }
        _ => Err(format!("`{}` is not a plain series selector", quoted(text))),
    }
}

/// The rehearsal as a run does it: the regression, its bounds, and the canary it runs.
#[derive(Debug, Clone)]
pub struct RehearsalPlan {
    pub meta: StepMeta,
    pub error_rate: Percent,
    pub latency: Duration,
    pub weight: Percent,
    pub detect_within: Duration,
    pub rto: Duration,
    pub recovery_samples: u32,
    pub faults: Vec<TargetedFault>,
    pub sli: Option<Sli>,
    pub alerts: Vec<ExpectedAlert>,
    /// The golden set that judges the regression too (`quality: true`).
    pub quality: Option<crate::steps::quality::QualityPlan>,
    /// The rollback runbook it runs, by name.
    pub runbook: Option<(String, crate::runbook::Runbook)>,
    /// The canary whose judges must catch the regression.
    pub canary: CanaryPlan,
    pub seed: Seed,
}

impl RehearsalPlan {
    pub(crate) fn reseed(&mut self, seed: Seed) {
        self.seed = seed.of(StepName::RollbackRehearsal);
        self.canary.seed = seed.of(StepName::Canary);
    }
}

/// An availability SLI read from the candidate's metrics: 1 − bad / total over two scrapes.
#[derive(Debug, Clone)]
pub struct Sli {
    pub path: String,
    /// Series selectors (checked to be plain selectors).
    pub total: String,
    pub bad: String,
    pub drop: Percent,
    pub requests: u32,
}
