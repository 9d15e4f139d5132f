//! Step 8, the statistical canary, as a spec writes it: stages (shadow or a share), the
//! judges and their error rates, abort triggers, promotion and rollback hooks; with its checks.

use std::num::NonZeroU32;
use std::time::Duration as StdDuration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

mod source;

pub use source::{ArmLabels, ArmQueries, CanarySource, PrometheusSource, PrometheusSourcePlan};

use super::{Section, StepName};
use crate::limits::HOUR;
use crate::model::Severity;
use crate::plan::{Seed, StepMeta, StepPlan};
use crate::units::{Duration, Percent, Rate};
use crate::validate::{Context, Problems};

const AT: &str = "steps.canary";

/// Step 8: the statistical canary. Traffic goes through gauntlet's split in front of the
/// baseline and the candidate; at each stage the judges run continuously; any reject or
/// abort trigger rolls back at once, acceptance moves to the next stage early.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryStep {
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
    /// Request rate through the split; defaults to `traffic.rate`.
    #[serde(default)]
    pub rate: Option<Rate>,
    /// Connections the load generator keeps open.
    #[serde(default = "default_connections")]
    #[schemars(with = "u32", range(min = 1, max = 1024))]
    pub connections: NonZeroU32,
    /// Header whose value keeps a client on one arm (sticky sessions); none by default.
    #[serde(default)]
    pub sticky_header: Option<String>,
    /// Path prefixes whose requests a shadow stage may mirror to the candidate. Only GET and
    /// HEAD are ever mirrored, whatever this says; without it, every GET and HEAD is.
    #[serde(default)]
    pub mirror: Option<Vec<String>>,
    /// In order, e.g. shadow, 10%, 50%, 100%. A 100% stage is the promotion.
    #[schemars(with = "Vec<Stage>")]
    pub stages: Spanned<Vec<Stage>>,
    pub judges: Judges,
    /// False-alarm rate of the whole canary, shared among the gating judges.
    #[serde(default = "five_percent")]
    pub alpha: Percent,
    /// Chance of accepting a candidate that is worse by a judge's delta.
    #[serde(default = "five_percent")]
    pub beta: Percent,
    /// Immediate rollback when the candidate crosses these, whatever the judges say.
    #[serde(default)]
    pub abort: Option<AbortTriggers>,
    /// Run after the last stage accepted (the split moves to 100% first).
    #[serde(default)]
    pub promote: Option<Action>,
    /// Run on a reject or abort (the split moves to 0% first).
    #[serde(default)]
    pub rollback: Option<Action>,
    /// Where the observations come from: gauntlet's own split and load (the default), or
    /// the traffic a controller moved, counted by Prometheus.
    #[serde(default)]
    pub source: Option<CanarySource>,
}

fn default_connections() -> NonZeroU32 {
    NonZeroU32::new(16).unwrap_or(NonZeroU32::MIN)
}

fn five_percent() -> Percent {
    Percent::from_ratio("5%", 0.05)
}

/// A stage: the candidate's share (or `shadow`), how long it may take, and how many candidate
/// observations it needs before it may pass.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub weight: StageWeight,
    /// The longest the stage may run; reaching it without a decision is inconclusive.
    #[serde(default = "default_bake")]
    pub bake: Duration,
    #[serde(default = "default_min_samples")]
    pub min_samples: u32,
}

fn default_bake() -> Duration {
    Duration::from_secs(60)
}

fn default_min_samples() -> u32 {
    100
}

/// `shadow` (mirror read-only requests to the candidate) or the candidate's share, `10%`.
#[derive(Debug, Clone, PartialEq)]
pub enum StageWeight {
    Shadow,
    Share(Percent),
}

impl std::fmt::Display for StageWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StageWeight::Shadow => f.write_str("shadow"),
            StageWeight::Share(p) => write!(f, "{p}"),
        }
    }
}

impl<'de> Deserialize<'de> for StageWeight {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.trim() == "shadow" {
            return Ok(StageWeight::Shadow);
        }
        text.parse::<Percent>()
            .map(StageWeight::Share)
            .map_err(|e| serde::de::Error::custom(format!("{e}, or `shadow`")))
    }
}

impl JsonSchema for StageWeight {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StageWeight".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": r"^\s*(shadow|[0-9]+(\.[0-9]+)?\s*%)\s*$",
            "description": "`shadow`, or the candidate's share such as `10%`",
        })
    }
}

/// The judges that decide each stage. Each is optional; `dry_run: true` computes and reports
/// a judge without letting it change the decision.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Judges {
    /// Wald's SPRT on the candidate's error rate against a known rate `p0`.
    #[serde(default)]
    pub error_rate: Option<ErrorRateJudge>,
    /// Baseline against candidate error rates, no `p0` needed.
    #[serde(default)]
    pub two_sample: Option<TwoSampleJudge>,
    /// Baseline against candidate share of slow requests.
    #[serde(default)]
    pub latency: Option<LatencyJudge>,
    /// Multi-window error-budget burn of the candidate.
    #[serde(default)]
    pub burn_rate: Option<BurnRateJudge>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorRateJudge {
    pub p0: Percent,
    /// The smallest absolute rise that matters.
    #[serde(default = "three_percent")]
    pub delta: Percent,
    #[serde(default)]
    pub dry_run: bool,
}

fn three_percent() -> Percent {
    Percent::from_ratio("3%", 0.03)
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TwoSampleJudge {
    #[serde(default = "three_percent")]
    pub delta: Percent,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyJudge {
    /// The smallest rise in the share of slow requests that matters.
    #[serde(default = "ten_percent")]
    pub delta: Percent,
    /// Slow means slower than the baseline's p95 plus this.
    #[serde(default = "default_margin")]
    pub margin: Duration,
    /// Baseline requests that fix the threshold.
    #[serde(default = "default_warmup")]
    pub warmup: u32,
    #[serde(default)]
    pub dry_run: bool,
}

fn ten_percent() -> Percent {
    Percent::from_ratio("10%", 0.10)
}

fn default_margin() -> Duration {
    Duration::from_millis(10)
}

fn default_warmup() -> u32 {
    200
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BurnRateJudge {
    pub objective: Percent,
    /// Every window must burn faster than its rate to reject (multi-window alerting).
    pub windows: Vec<BurnWindow>,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BurnWindow {
    pub window: Duration,
    /// Burn-rate threshold, e.g. 14.4.
    pub rate: f64,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortTriggers {
    /// Roll back when the candidate's p99 exceeds this.
    #[serde(default)]
    pub p99: Option<Duration>,
    /// Roll back when the candidate's error rate exceeds this.
    #[serde(default)]
    pub error_rate: Option<Percent>,
    /// Candidate observations a trigger needs before it may fire.
    #[serde(default = "default_min_samples")]
    pub min_samples: u32,
}

/// A promotion or rollback hook: a command, an HTTP webhook (POSTed a JSON body), or both.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Action {
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub webhook: Option<String>,
}

impl Section for CanaryStep {
    fn step(&self) -> StepName {
        StepName::Canary
    }

    fn owner(&self) -> Option<&Spanned<String>> {
        self.owner.as_ref()
    }

    fn check(&self, cx: &Context<'_>, p: &mut Problems<'_>) {
        if let Some(source) = &self.source {
            source
                .prometheus
                .check(p, &format!("{AT}.source.prometheus"));
            self.check_counted(p);
        } else if cx.spec.targets.baseline.is_none() {
            p.key(
                AT,
                "the canary compares the candidate with a baseline, and `targets.baseline` is missing".into(),
                Some("add `targets: {baseline: {url: ...}}` (or a `command`) for the version running today".into()),
            );
        }
        self.check_stages(cx, p);
        self.judges.check(p, &format!("{AT}.judges"));
        for (name, ratio) in [("alpha", self.alpha.ratio()), ("beta", self.beta.ratio())] {
            if !(ratio > 0.0 && ratio < 0.5) {
                p.key(
                    &format!("{AT}.{name}"),
                    format!("canary `{name}` must be above 0% and below 50%"),
                    None,
                );
            }
        }
        if let Some(rate) = self.rate {
            p.rate(&format!("{AT}.rate"), rate.per_second());
        }
        p.count(
            &format!("{AT}.connections"),
            u64::from(self.connections.get()),
            1024,
        );
    }

    fn worst_case(&self, _cx: &Context<'_>) -> Vec<(String, StdDuration)> {
        let bakes: StdDuration = self.stages.value.iter().map(|s| s.bake.as_std()).sum();
        vec![("canary (every bake)".to_string(), bakes)]
    }

    fn plan(&self, cx: &Context<'_>, seed: Seed) -> Result<StepPlan, String> {
        Ok(StepPlan::Canary(self.resolve(cx, seed)))
    }
}

impl CanaryStep {
    fn check_stages(&self, cx: &Context<'_>, p: &mut Problems<'_>) {
        let stages = &self.stages;
        if stages.value.is_empty() {
            p.at(
                stages.referenced,
                "the canary has no stages".into(),
                Some("e.g. `- {weight: 10%, bake: 5m}`".into()),
            );
        }
        let mut last = -1.0;
        for (i, stage) in stages.value.iter().enumerate() {
            let at = format!("{AT}.stages[{i}]");
            let share = match &stage.weight {
                StageWeight::Shadow => 0.0,
                StageWeight::Share(p) => p.ratio(),
            };
            if share <= last && share > 0.0 {
                p.key(
                    &format!("{at}.weight"),
                    format!(
                        "canary stages must ramp up: {} comes after a larger share",
                        stage.weight
                    ),
                    None,
                );
            }
            if share == 0.0 && stage.weight != StageWeight::Shadow {
                p.key(
                    &format!("{at}.weight"),
                    "a 0% stage sends the candidate nothing".into(),
                    Some("use `shadow` to mirror traffic without serving it".into()),
                );
            }
            if stage.weight == StageWeight::Shadow && self.source.is_none() {
                self.check_mirrored(cx, p, &at);
            }
            last = f64::max(last, share);
            p.duration(&format!("{at}.bake"), stage.bake, false, 24 * HOUR);
            p.count(
                &format!("{at}.min_samples"),
                u64::from(stage.min_samples),
                10_000_000,
            );
        }
        let judged = stages.value.iter().take_while(
            |stage| !matches!(&stage.weight, StageWeight::Share(p) if p.ratio() >= 1.0),
        );
        if !stages.value.is_empty() && judged.count() == 0 {
            p.at(
                stages.referenced,
                "the canary promotes to 100% before any judged stage".into(),
                Some("put `shadow` or a partial weight such as `10%` before `100%`".into()),
            );
        }
    }

    /// Counters carry no request's latency: what needs one is refused with a Prometheus
    /// source.
    fn check_counted(&self, p: &mut Problems<'_>) {
        let help = "counters from Prometheus carry no request's latency: give `source.prometheus.slow` (slow requests from histogram buckets), which the judges count as bad";
        if self.judges.latency.is_some() {
            p.key(
                &format!("{AT}.judges.latency"),
                "the latency judge needs each request's latency, which a Prometheus source does not have".into(),
                Some(help.into()),
            );
        }
        if self.abort.as_ref().is_some_and(|a| a.p99.is_some()) {
            p.key(
                &format!("{AT}.abort.p99"),
                "a p99 abort trigger needs each request's latency, which a Prometheus source does not have".into(),
                Some(help.into()),
            );
        }
    }

    /// A shadow stage mirrors only GET and HEAD requests (under `mirror:` prefixes, if
    /// given): a traffic mix with none of them gives it nothing to judge.
    fn check_mirrored(&self, cx: &Context<'_>, p: &mut Problems<'_>, at: &str) {
        let mirrorable = cx.spec.traffic.requests.value.iter().any(|r| {
            matches!(
                r.method,
                crate::model::Method::Get | crate::model::Method::Head
            ) && self
                .mirror
                .as_ref()
                .is_none_or(|prefixes| prefixes.iter().any(|m| r.path.starts_with(m.as_str())))
        });
        if !mirrorable {
            p.key(
                &format!("{at}.weight"),
                "a shadow stage mirrors only GET and HEAD requests, and the traffic mix has none it may mirror".into(),
                Some(match &self.mirror {
                    Some(_) => "add a GET request under a `steps.canary.mirror` prefix to `traffic.requests`, or widen `mirror`".into(),
                    None => "add a GET request to `traffic.requests`, or start the canary with a share such as `10%`".into(),
                }),
            );
        }
    }
}

impl Judges {
    fn check(&self, p: &mut Problems<'_>, at: &str) {
        if self.error_rate.is_none()
            && self.two_sample.is_none()
            && self.latency.is_none()
            && self.burn_rate.is_none()
        {
            p.key(
                at,
                "the canary has no judges".into(),
                Some("add `judges: {two_sample: {}}` at least".into()),
            );
        }
        if let Some(judge) = &self.error_rate {
            let (p0, delta) = (judge.p0.ratio(), judge.delta.ratio());
            if !(p0 > 0.0 && p0 < 1.0) {
                p.key(
                    &format!("{at}.error_rate.p0"),
                    format!(
                        "`p0` is {}: the known error rate must be above 0% and below 100%",
                        judge.p0
                    ),
                    Some("give the baseline's error rate, e.g. `p0: 1%`".into()),
                );
            } else if !(delta > 0.0 && p0 + delta < 1.0) {
                p.key(
                    &format!("{at}.error_rate.delta"),
                    format!(
                        "`delta` is {}: p0 + delta must stay below 100% and delta above 0% (p0 is {})",
                        judge.delta, judge.p0
                    ),
                    Some("the smallest rise worth catching, e.g. `delta: 3%`".into()),
                );
            }
        }
        if let Some(judge) = &self.two_sample
            && !(judge.delta.ratio() > 0.0 && judge.delta.ratio() < 1.0)
        {
            p.key(
                &format!("{at}.two_sample.delta"),
                format!(
                    "`delta` is {}: it must be above 0% and below 100%",
                    judge.delta
                ),
                Some("the smallest rise worth catching, e.g. `delta: 3%`".into()),
            );
        }
        if let Some(judge) = &self.latency
            && !(judge.delta.ratio() > 0.0 && judge.delta.ratio() < 1.0)
        {
            p.key(
                &format!("{at}.latency.delta"),
                format!("`delta` is {}: it must be above 0% and below 100%", judge.delta),
                Some("the smallest rise in the share of slow requests worth catching, e.g. `delta: 10%`".into()),
            );
        }
        if let Some(burn) = &self.burn_rate
            && (burn.windows.is_empty()
                || burn
                    .windows
                    .iter()
                    .any(|w| w.rate.is_nan() || w.rate <= 0.0 || w.window.as_std().is_zero()))
        {
            p.key(
                &format!("{at}.burn_rate.windows"),
                "each burn-rate window needs a positive `window` and `rate`".into(),
                Some("e.g. `windows: [{window: 1h, rate: 14.4}, {window: 5m, rate: 14.4}]`".into()),
            );
        }
    }
}

impl CanaryStep {
    /// The canary as a run judges it (the rehearsal runs its judges too).
    pub(crate) fn resolve(&self, cx: &Context<'_>, seed: Seed) -> CanaryPlan {
        CanaryPlan {
            meta: StepMeta::new(StepName::Canary, self.severity, self.owner.as_ref()),
            rate: self.rate.unwrap_or(cx.spec.traffic.rate),
            connections: self.connections.get(),
            sticky_header: self.sticky_header.clone(),
            mirror: self.mirror.clone(),
            stages: self.stages.value.clone(),
            judges: self.judges.clone(),
            alpha: self.alpha.clone(),
            beta: self.beta.clone(),
            abort: self.abort.clone(),
            promote: self.promote.clone(),
            rollback: self.rollback.clone(),
            source: self.source.as_ref().map(|s| s.prometheus.resolve()),
            seed: seed.of(StepName::Canary),
        }
    }
}

/// The canary as a run judges it: judge parameters were checked (0 < p0 < p0 + δ < 1,
/// α and β in (0, ½)), the rate resolved (the canary's or the traffic's).
#[derive(Debug, Clone)]
pub struct CanaryPlan {
    pub meta: StepMeta,
    pub rate: Rate,
    pub connections: u32,
    pub sticky_header: Option<String>,
    pub mirror: Option<Vec<String>>,
    pub stages: Vec<Stage>,
    pub judges: Judges,
    pub alpha: Percent,
    pub beta: Percent,
    pub abort: Option<AbortTriggers>,
    pub promote: Option<Action>,
    pub rollback: Option<Action>,
    /// Counted by Prometheus instead of gauntlet's split, when given.
    pub source: Option<PrometheusSourcePlan>,
    /// The seed its split's choices start from.
    pub seed: Seed,
}
