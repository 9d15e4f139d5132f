//! The quality step as a spec writes it: a golden set (JSON lines: input, expected facts,
//! tags) sent to baseline and candidate, each answer scored by assertions, the candidate
//! judged against the baseline item by item by the paired sequential judge.

use std::num::NonZeroU32;
use std::time::Duration as StdDuration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Section, StepName};
use crate::model::{Request, Severity};
use crate::plan::{Seed, StepMeta, StepPlan};
use crate::units::{Duration, Percent};
use crate::validate::{Context, Problems, quoted};

const AT: &str = "steps.quality";

/// The golden-set quality gate: the candidate must not answer worse than the baseline.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QualityStep {
    /// `hard`: a failure blocks the release; `soft`: a failure becomes a condition.
    #[serde(default)]
    pub severity: Severity,
    /// The role from `service.owners` that answers for this step's conditions.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
    /// The golden set, relative to the spec: one JSON object per line, `{"input": "...",
    /// "expected": ["fact", ...], "tags": ["..."]}`.
    pub dataset: String,
    /// The request each item sends. `{input}` stands for the item's input, JSON-escaped (so
    /// write it inside quotes in a JSON body: `'{"question": "{input}"}'`).
    pub request: Request,
    /// Where the answer is in a JSON response, as a JSON Pointer (`/choices/0/message/content`);
    /// the whole body when absent.
    #[serde(default)]
    pub answer: Option<String>,
    /// What every answer must satisfy, all of them (promptfoo's names where they exist).
    #[serde(rename = "assert")]
    pub assertions: Vec<Assertion>,
    /// Each item asked this many times of each arm; it passes only if every answer does
    /// (pass^k, for services that do not answer the same way twice).
    #[serde(default = "one")]
    #[schemars(with = "u32", range(min = 1, max = 10))]
    pub repeat: NonZeroU32,
    /// The smallest drop of the pass rate that matters (absolute).
    #[serde(default = "ten_percent")]
    #[schemars(with = "String")]
    pub delta: Percent,
    /// Chance of rejecting a candidate that is no worse.
    #[serde(default = "five_percent")]
    #[schemars(with = "String")]
    pub alpha: Percent,
    /// Chance of accepting a candidate worse by `delta` or more.
    #[serde(default = "five_percent")]
    #[schemars(with = "String")]
    pub beta: Percent,
    /// Items in flight at once.
    #[serde(default = "four")]
    #[schemars(with = "u32", range(min = 1, max = 64))]
    pub concurrency: NonZeroU32,
    /// The longest the step may take; undecided by then, it is inconclusive.
    #[serde(default = "ten_minutes")]
    pub budget: Duration,
    /// Retrieval ablation: with retrieval removed by these faults (on the document store,
    /// through its proxy), the candidate's pass rate on the golden set must drop by at least
    /// `drop`; if it does not, the golden set does not measure retrieval.
    #[serde(default)]
    pub ablation: Option<Ablation>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ablation {
    #[schemars(with = "Vec<crate::fault::FaultSpec>")]
    pub faults: Vec<Spanned<crate::fault::FaultSpec>>,
    /// Golden-set items asked with and without retrieval (the first of the seeded order).
    #[serde(default = "forty")]
    #[schemars(with = "u32", range(min = 10, max = 10000))]
    pub items: NonZeroU32,
    /// The least relative drop of the pass rate.
    #[serde(default = "ten_percent")]
    #[schemars(with = "String")]
    pub drop: Percent,
}

fn forty() -> NonZeroU32 {
    NonZeroU32::new(40).unwrap_or(NonZeroU32::MIN)
}

/// One assertion on an answer.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Assertion {
    /// Every one of the item's expected facts appears, as written.
    ContainsAll,
    /// The same, ignoring case.
    IcontainsAll,
    /// The answer matches this regular expression (Rust `regex` syntax).
    Regex { value: String },
    /// The answer does not match it.
    NotRegex { value: String },
    /// In a JSON response, the value at this JSON Pointer equals `value`.
    JsonEquals {
        path: String,
        #[schemars(with = "serde_json::Value")]
        value: serde_json::Value,
    },
    /// A grader command for anything richer: the item and the answer as JSON on its standard
    /// input (`{"input", "expected", "tags", "answer"}`); exit 0 is a pass.
    Command {
        run: Vec<String>,
        #[serde(default = "ten_seconds")]
        timeout: Duration,
    },
}

impl Assertion {
    /// As a report names it.
    pub fn name(&self) -> String {
        match self {
            Assertion::ContainsAll => "contains-all".into(),
            Assertion::IcontainsAll => "icontains-all".into(),
            Assertion::Regex { value } => format!("regex {value}"),
            Assertion::NotRegex { value } => format!("not-regex {value}"),
            Assertion::JsonEquals { path, value } => format!("{path} = {value}"),
            Assertion::Command { run, .. } => format!("command {}", run.join(" ")),
        }
    }
}

fn one() -> NonZeroU32 {
    NonZeroU32::MIN
}
fn four() -> NonZeroU32 {
    NonZeroU32::new(4).unwrap_or(NonZeroU32::MIN)
}
fn ten_percent() -> Percent {
    Percent::from_ratio("10%", 0.10)
}
fn five_percent() -> Percent {
    Percent::from_ratio("5%", 0.05)
}
fn ten_minutes() -> Duration {
    Duration::from_secs(600)
}
fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

impl QualityStep {
    fn check_assertions(&self, p: &mut Problems<'_>) {
        if self.assertions.is_empty() {
            p.key(
                &format!("{AT}.assert"),
                "the quality step asserts nothing: every answer would pass".into(),
                Some(
                    "e.g. `assert: [{type: icontains-all}]` to require the item's expected facts"
                        .into(),
                ),
            );
        }
        for (i, assertion) in self.assertions.iter().enumerate() {
            let at = format!("{AT}.assert[{i}]");
            match assertion {
                Assertion::Regex { value } | Assertion::NotRegex { value } => {
                    if let Err(e) = regex::RegexBuilder::new(value).size_limit(1 << 20).build() {
                        p.key(
                            &format!("{at}.value"),
                            format!("`{}` is not a regular expression: {e}", quoted(value)),
                            None,
                        );
                    }
                }
                Assertion::JsonEquals { path, .. } => pointer(p, &format!("{at}.path"), path),
                Assertion::Command { run, timeout } => {
                    if run.is_empty() {
                        p.key(
                            &format!("{at}.run"),
                            "the grader command is empty".into(),
                            None,
                        );
                    }
                    p.duration(
                        &format!("{at}.timeout"),
                        *timeout,
                        false,
                        crate::limits::MINUTE,
                    );
                }
                Assertion::ContainsAll | Assertion::IcontainsAll => {}
            }
        }
    }

    fn check_judge(&self, p: &mut Problems<'_>) {
        let delta = self.delta.ratio();
        if !(delta > 0.0 && delta < 1.0) {
            p.key(
                &format!("{AT}.delta"),
                "quality `delta` must be above 0% and below 100%".into(),
                None,
            );
        }
        for (name, ratio) in [("alpha", self.alpha.ratio()), ("beta", self.beta.ratio())] {
            if !(ratio > 0.0 && ratio < 0.5) {
                p.key(
                    &format!("{AT}.{name}"),
                    format!("quality `{name}` must be above 0% and below 50%"),
                    None,
                );
            }
        }
    }
}

impl QualityStep {
    fn check_ablation(&self, cx: &Context<'_>, p: &mut Problems<'_>, ablation: &Ablation) {
        let at = format!("{AT}.ablation");
        if ablation.faults.is_empty() {
            p.key(
                &format!("{at}.faults"),
                "the ablation removes nothing: it has no faults".into(),
                Some("e.g. `faults: [{kind: http_abort, target: docs, status: 503}]` on the document store".into()),
            );
        }
        for (i, fault) in ablation.faults.iter().enumerate() {
            let path = format!("{at}.faults[{i}]");
            fault.value.check(cx, p, &path, "the ablation");
            if matches!(fault.value.target.as_str(), "candidate" | "baseline") {
                p.key(
                    &format!("{path}.target"),
                    "the ablation removes retrieval by breaking a dependency of the candidate, not the candidate or the baseline".into(),
                    Some("name the document store or search index under `dependencies`".into()),
                );
            }
        }
        p.count(
            &format!("{at}.items"),
            u64::from(ablation.items.get()),
            10_000,
        );
        let drop = ablation.drop.ratio();
        if !(drop > 0.0 && drop <= 1.0) {
            p.key(
                &format!("{at}.drop"),
                "`drop` must be above 0% and at most 100%".into(),
                None,
            );
        }
    }
}

/// A JSON Pointer: empty or starting with `/`.
fn pointer(p: &mut Problems<'_>, at: &str, path: &str) {
    if !path.is_empty() && !path.starts_with('/') {
        p.key(
            at,
            format!("`{}` is not a JSON Pointer", quoted(path)),
            Some(format!(
                "write it from the root: `/{}`",
                path.replace('.', "/")
            )),
        );
    }
}

impl Section for QualityStep {
    fn step(&self) -> StepName {
        StepName::Quality
    }

    fn owner(&self) -> Option<&Spanned<String>> {
        self.owner.as_ref()
    }

    fn check(&self, cx: &Context<'_>, p: &mut Problems<'_>) {
        p.project_file(&format!("{AT}.dataset"), &self.dataset);
        if cx.spec.targets.baseline.is_none() {
            p.key(
                AT,
                "the quality step compares the candidate's answers with a baseline's, and `targets.baseline` is missing".into(),
                Some("add `targets: {baseline: {url: ...}}` (or a `command`) for the version running today".into()),
            );
        }
        if !self.request.path.starts_with('/') {
            p.key(
                &format!("{AT}.request.path"),
                "the request's path must start with `/`".into(),
                None,
            );
        }
        if let Some(answer) = &self.answer {
            pointer(p, &format!("{AT}.answer"), answer);
        }
        self.check_assertions(p);
        self.check_judge(p);
        if let Some(ablation) = &self.ablation {
            self.check_ablation(cx, p, ablation);
        }
        p.count(&format!("{AT}.repeat"), u64::from(self.repeat.get()), 10);
        p.count(
            &format!("{AT}.concurrency"),
            u64::from(self.concurrency.get()),
            64,
        );
        p.duration(
            &format!("{AT}.budget"),
            self.budget,
            false,
            2 * crate::limits::HOUR,
        );
    }

    fn worst_case(&self, _cx: &Context<'_>) -> Vec<(String, StdDuration)> {
        // The ablation asks its items within a budget of its own, as long as the gate's.
        let parts = if self.ablation.is_some() { 2 } else { 1 };
        vec![("quality".to_string(), self.budget.as_std() * parts)]
    }

    fn plan(&self, cx: &Context<'_>, seed: Seed) -> Result<StepPlan, String> {
        let ablation = match &self.ablation {
            Some(a) => Some(AblationPlan {
                faults: a
                    .faults
                    .iter()
                    .map(|f| f.value.resolve(&cx.host).map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()?,
                items: a.items.get(),
                drop: a.drop.ratio(),
            }),
            None => None,
        };
        Ok(StepPlan::Quality(QualityPlan {
            ablation,
            meta: StepMeta::new(StepName::Quality, self.severity, self.owner.as_ref()),
            dataset: self.dataset.clone(),
            request: self.request.clone(),
            answer: self.answer.clone(),
            assertions: self.assertions.clone(),
            repeat: self.repeat.get(),
            delta: self.delta.ratio(),
            alpha: self.alpha.ratio(),
            beta: self.beta.ratio(),
            concurrency: self.concurrency.get(),
            budget: self.budget.as_std(),
            usage: cx.spec.usage.clone(),
            seed: seed.derive("quality", 0),
        }))
    }
}

/// The quality gate as a run makes it.
#[derive(Debug, Clone)]
pub struct QualityPlan {
    pub meta: StepMeta,
    /// Relative to the spec.
    pub dataset: String,
    pub request: Request,
    pub answer: Option<String>,
    pub assertions: Vec<Assertion>,
    pub repeat: u32,
    pub delta: f64,
    pub alpha: f64,
    pub beta: f64,
    pub concurrency: u32,
    pub budget: StdDuration,
    /// The spec's `usage`: how answers report tokens and model, and the prices.
    pub usage: Option<crate::usage::Usage>,
    pub ablation: Option<AblationPlan>,
    /// The order items are asked in.
    pub seed: u64,
}

/// The retrieval ablation as a run makes it.
#[derive(Debug, Clone)]
pub struct AblationPlan {
    pub faults: Vec<crate::fault::TargetedFault>,
    pub items: u32,
    pub drop: f64,
}
