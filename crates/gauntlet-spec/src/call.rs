//! Calls: something gauntlet does to the system on the spec's behalf, bounded by a timeout,
//! with what counts as success: run a command (its exit code), or send an HTTP request to one
//! of the run's systems (its status, and optionally a text the answer must contain). An
//! `action` fault makes one call when it goes in and another when it comes out; the cleanup
//! journal keeps the second ([`Call`] is also its JSON form), so `gauntlet recover` can make it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diagnostic::did_you_mean;
use crate::limits::MINUTE;
use crate::model::Method;
use crate::units::Duration;
use crate::validate::{Context, Problems, placeholders, quoted};

/// One call: exactly one of `command` or `http`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Call {
    /// A program and its arguments, run with the environment of any process gauntlet starts.
    /// Placeholders: `{candidate.url}`, `{baseline.url}`, `{dependencies.NAME.url}`,
    /// `{spec_dir}`, `{gauntlet}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// A request to one of the run's systems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCall>,
    /// The call fails when it takes longer than this.
    #[serde(default = "thirty_seconds")]
    pub timeout: Duration,
}

/// An HTTP request to a system the run knows, and the answer that counts as success.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCall {
    /// `candidate`, `baseline` or a dependency (reached directly, never through its fault
    /// proxy).
    #[serde(default = "candidate")]
    pub target: String,
    #[serde(default = "post")]
    pub method: Method,
    /// Path and query, starting with `/`.
    pub path: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Statuses that count as success (default: any 2xx).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<u16>,
    /// The answer's body must contain this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

fn candidate() -> String {
    "candidate".into()
}

fn post() -> Method {
    Method::Post
}

impl Call {
    /// What the call does, for a timeline: `POST candidate /admin/retrieval`, `` `./purge` ``.
    pub fn describe(&self) -> String {
        match (&self.command, &self.http) {
            (Some(command), _) => format!("`{}`", command.join(" ")),
            (None, Some(http)) => {
                format!("{} {} {}", http.method.as_str(), http.target, http.path)
            }
            (None, None) => "nothing".into(),
        }
    }

    /// The checks of the call at `at`; `what` names its owner for messages.
    pub(crate) fn check(&self, cx: &Context<'_>, p: &mut Problems<'_>, at: &str, what: &str) {
        match (&self.command, &self.http) {
            (Some(_), Some(_)) | (None, None) => p.key(
                at,
                format!("{what}: a call is either a `command` or an `http` request"),
                Some(
                    "e.g. `{http: {path: /admin/cache/purge}}` or `{command: [./purge.sh]}`".into(),
                ),
            ),
            (Some(command), None) => check_command(cx, p, &format!("{at}.command"), what, command),
            (None, Some(http)) => http.check(cx, p, &format!("{at}.http"), what),
        }
        p.duration(&format!("{at}.timeout"), self.timeout, false, 10 * MINUTE);
    }
}

impl HttpCall {
    fn check(&self, cx: &Context<'_>, p: &mut Problems<'_>, at: &str, what: &str) {
        // A call may reach the baseline too (a rollback verifies the old version there).
        if !(self.target == "baseline" && cx.spec.targets.baseline.is_some()) {
            cx.check_system(p, &format!("{at}.target"), what, &self.target, None);
        }
        if !self.path.starts_with('/') {
            p.key(
                &format!("{at}.path"),
                format!(
                    "{what}: the path `{}` must start with `/`",
                    quoted(&self.path)
                ),
                None,
            );
        }
        for status in self.status.iter().filter(|s| !(100..=599).contains(*s)) {
            p.key(
                &format!("{at}.status"),
                format!("{what}: {status} is not an HTTP status"),
                Some("e.g. `status: [200, 204]`".into()),
            );
        }
    }
}

/// The placeholders a call's command may use.
fn known(cx: &Context<'_>) -> Vec<String> {
    let mut names = vec![
        "candidate.url".to_string(),
        "spec_dir".into(),
        "gauntlet".into(),
    ];
    if cx.spec.targets.baseline.is_some() {
        names.push("baseline.url".into());
    }
    names.extend(
        cx.spec
            .dependencies
            .keys()
            .map(|d| format!("dependencies.{d}.url")),
    );
    names
}

fn check_command(cx: &Context<'_>, p: &mut Problems<'_>, at: &str, what: &str, command: &[String]) {
    if command
        .first()
        .is_none_or(|program| program.trim().is_empty())
    {
        p.key(
            at,
            format!("{what}: the command is empty"),
            Some("write the program and its arguments, e.g. [\"./purge-cache\", \"{candidate.url}\"]".into()),
        );
    }
    let names = known(cx);
    for (i, arg) in command.iter().enumerate() {
        for name in placeholders(arg) {
            if names.iter().any(|n| n == name) {
                continue;
            }
            let help = match did_you_mean(name, names.iter().map(String::as_str)) {
                Some(close) => format!("did you mean `{{{close}}}`?"),
                None => format!(
                    "placeholders here: {}",
                    names
                        .iter()
                        .map(|n| format!("{{{n}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            p.key(
                &format!("{at}[{i}]"),
                format!("{what}: unknown placeholder `{{{}}}`", quoted(name)),
                Some(help),
            );
        }
    }
}
