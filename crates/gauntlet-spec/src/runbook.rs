//! Runbooks: named procedures of steps, executed and timed. A step is a call (a command or
//! an HTTP request), a wait for a condition (a call repeated until it succeeds), or a manual
//! step an operator confirms (`gauntlet confirm RUN STEP`); each has a time budget, the whole
//! a target and a limit ("15–20 minutes": `target: 15m`, `max: 20m`). A step may name the call
//! that puts back what it changed (`undo`), made once a rehearsal is over and journaled
//! before the step runs, as an action fault's is.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::call::Call;
use crate::limits::{HOUR, MINUTE};
use crate::units::Duration;
use crate::validate::{Context, Problems, quoted};

/// One procedure.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    #[serde(default)]
    pub description: Option<String>,
    /// The whole procedure should take no longer than this.
    pub target: Duration,
    /// ... and must never take longer than this (default: the target). Between the two the
    /// runbook passes with a warning.
    #[serde(default)]
    pub max: Option<Duration>,
    pub steps: Vec<RunbookStep>,
}

/// One step: exactly one of `call`, `wait_for` or `manual`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunbookStep {
    pub name: String,
    /// The longest the step should take; a call or wait still running then has failed.
    pub budget: Duration,
    #[serde(default)]
    pub call: Option<Call>,
    /// A call repeated (every 250ms) until it succeeds, within the budget.
    #[serde(default)]
    pub wait_for: Option<Call>,
    /// What an operator must do and confirm (`gauntlet confirm RUN STEP`).
    #[serde(default)]
    pub manual: Option<Manual>,
    /// Puts back what the step changed once a rehearsal is over (journaled first).
    #[serde(default)]
    pub undo: Option<Call>,
}

/// A manual step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manual {
    /// What the operator is asked to do.
    pub say: String,
    /// In an unattended run, the configured responder confirms after this long if nobody
    /// has (recorded as the responder, never as a person). Without it, nobody confirming
    /// within the budget fails the step.
    #[serde(default)]
    pub responder_after: Option<Duration>,
}

impl Runbook {
    /// The longest it may take: `max`, else the target.
    pub fn limit(&self) -> Duration {
        self.max.unwrap_or(self.target)
    }

    /// The longest a run can spend in it: every step's budget, plus its undo calls.
    pub fn worst_case(&self) -> StdDuration {
        self.steps
            .iter()
            .map(|s| {
                s.budget.as_std()
                    + s.undo
                        .as_ref()
                        .map_or(StdDuration::ZERO, |u| u.timeout.as_std())
            })
            .sum()
    }

    pub(crate) fn check(&self, cx: &Context<'_>, p: &mut Problems<'_>, at: &str) {
        let what = format!("runbook `{}`", quoted(at.rsplit('.').next().unwrap_or(at)));
        p.duration(&format!("{at}.target"), self.target, false, 24 * HOUR);
        if let Some(max) = self.max {
            p.duration(&format!("{at}.max"), max, false, 24 * HOUR);
            if max < self.target {
                p.key(
                    &format!("{at}.max"),
                    format!("{what}: `max` ({max}) is below `target` ({})", self.target),
                    Some("`target` is what it should take, `max` the most it may: e.g. `target: 15m, max: 20m`".into()),
                );
            }
        }
        if self.steps.is_empty() {
            p.key(
                at,
                format!("{what} has no steps"),
                Some("add at least one under `steps:`".into()),
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let at = format!("{at}.steps[{i}]");
            if seen.contains(&step.name.as_str()) {
                p.key(
                    &format!("{at}.name"),
                    format!("{what}: two steps are named `{}`", quoted(&step.name)),
                    Some("a step's name is how an operator confirms it".into()),
                );
            }
            seen.push(&step.name);
            step.check(cx, p, &at, &what);
        }
    }
}

impl RunbookStep {
    fn check(&self, cx: &Context<'_>, p: &mut Problems<'_>, at: &str, what: &str) {
        if self.name.trim().is_empty() {
            p.key(at, format!("{what}: a step needs a `name`"), None);
        }
        let kinds = [
            self.call.is_some(),
            self.wait_for.is_some(),
            self.manual.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            p.key(
                at,
                format!("{what}: step `{}` needs exactly one of `call`, `wait_for` or `manual`", quoted(&self.name)),
                Some("e.g. `{name: drain, budget: 2m, wait_for: {http: {method: GET, path: /ready, status: [503]}}}`".into()),
            );
        }
        p.duration(&format!("{at}.budget"), self.budget, false, 4 * HOUR);
        for (key, call) in [
            ("call", &self.call),
            ("wait_for", &self.wait_for),
            ("undo", &self.undo),
        ] {
            if let Some(call) = call {
                call.check(cx, p, &format!("{at}.{key}"), what);
            }
        }
        if let Some(manual) = &self.manual {
            if manual.say.trim().is_empty() {
                p.key(
                    &format!("{at}.manual.say"),
                    format!("{what}: a manual step must say what to do"),
                    None,
                );
            }
            if let Some(after) = manual.responder_after {
                p.duration(
                    &format!("{at}.manual.responder_after"),
                    after,
                    false,
                    10 * MINUTE,
                );
                if after > self.budget {
                    p.key(
                        &format!("{at}.manual.responder_after"),
                        format!("{what}: the responder would confirm after {after}, beyond the step's budget ({})", self.budget),
                        Some("make `responder_after` shorter than `budget`".into()),
                    );
                }
            }
        }
    }
}

/// The checks of every runbook, and of each name a step refers to.
pub(crate) fn check_runbooks(
    cx: &Context<'_>,
    p: &mut Problems<'_>,
    runbooks: &BTreeMap<String, Runbook>,
) {
    for (name, runbook) in runbooks {
        runbook.check(cx, p, &format!("runbooks.{name}"));
    }
}

/// A reference to a runbook at `at` must name one the spec has.
pub(crate) fn check_reference(cx: &Context<'_>, p: &mut Problems<'_>, at: &str, name: &str) {
    if cx.spec.runbooks.contains_key(name) {
        return;
    }
    let names: Vec<&str> = cx.spec.runbooks.keys().map(String::as_str).collect();
    let help = crate::diagnostic::did_you_mean(name, names.iter().copied())
        .map(|c| format!("did you mean `{c}`?"))
        .unwrap_or_else(|| match names.is_empty() {
            true => "define it under a top-level `runbooks:`".into(),
            false => format!("runbooks: {}", names.join(", ")),
        });
    p.key(
        at,
        format!("no runbook named `{}`", quoted(name)),
        Some(help),
    );
}
