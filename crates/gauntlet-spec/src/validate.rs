//! Turning parse errors into located diagnostics with suggestions, and the checks that
//! need the whole spec (names that must resolve, placeholders, versions).

use serde_saphyr::{Error as YamlError, Location, MessageFormatter, Spanned};

use crate::diagnostic::{SpecDiagnostic, did_you_mean};
use crate::model::{Launch, SCHEMA_VERSIONS, Spec};

/// All eight steps of the pipeline, in order; the ones this build runs are the fields of
/// [`crate::Steps`].
pub const PIPELINE_STEPS: &[&str] = &[
    "preflight",
    "rollback_rehearsal",
    "chaos",
    "dr",
    "rotation",
    "security",
    "observability",
    "canary",
];

pub(crate) fn from_parse_error(file: &str, text: &str, err: &YamlError) -> SpecDiagnostic {
    let err = err.without_snippet();
    let (line, column) = match err {
        // A missing top-level field belongs at the top of the file, not where parsing stopped.
        YamlError::SerdeMissingField {
            field: "schema_version",
            ..
        } => (1, 1),
        _ => err
            .location()
            .map(|l| (l.line() as usize, l.column() as usize))
            .unwrap_or((1, 1)),
    };
    let (message, help) = match err {
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => unknown_field(field, expected),
        YamlError::SerdeMissingField { field, .. } => (
            format!("missing field `{field}`"),
            Some(missing_field_help(field)),
        ),
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            format!(
                "unknown value `{variant}`: expected one of {}",
                list(expected)
            ),
            did_you_mean(variant, expected.iter().copied()).map(|s| format!("did you mean `{s}`?")),
        ),
        other => {
            let text = serde_saphyr::UserMessageFormatter.format_message(other);
            (text.into_owned(), None)
        }
    };
    SpecDiagnostic::at(file, text, line, column, message, help)
}

fn unknown_field(field: &str, expected: &[&'static str]) -> (String, Option<String>) {
    let message = format!(
        "unknown field `{field}`: expected one of {}",
        list(expected)
    );
    let help = if let Some(close) = did_you_mean(field, expected.iter().copied()) {
        Some(format!("did you mean `{close}`?"))
    } else if expected.contains(&"security") && PIPELINE_STEPS.contains(&field) {
        Some(format!(
            "the `{field}` step is part of the pipeline but not available in this version of gauntlet; steps available: {}",
            list(expected)
        ))
    } else {
        None
    };
    (message, help)
}

fn missing_field_help(field: &str) -> String {
    match field {
        "schema_version" => format!(
            "add `schema_version: 1` at the top of the file; versions this gauntlet knows: {}",
            versions()
        ),
        _ => format!("add `{field}:`; `gauntlet schema` describes every field"),
    }
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn versions() -> String {
    SCHEMA_VERSIONS
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

struct Problems<'a> {
    file: &'a str,
    text: &'a str,
    found: Vec<SpecDiagnostic>,
}

impl Problems<'_> {
    fn at(&mut self, location: Location, message: String, help: Option<String>) {
        self.found.push(SpecDiagnostic::at(
            self.file,
            self.text,
            location.line() as usize,
            location.column() as usize,
            message,
            help,
        ));
    }
}

pub(crate) fn check(file: &str, text: &str, spec: &Spec) -> Vec<SpecDiagnostic> {
    let mut p = Problems {
        file,
        text,
        found: Vec::new(),
    };
    let version = &spec.schema_version;
    if !SCHEMA_VERSIONS.contains(&version.value) {
        p.at(
            version.referenced,
            format!("unsupported schema_version {}", version.value),
            Some(format!("versions this gauntlet knows: {}", versions())),
        );
    }
    let dependency_names: Vec<&str> = spec.dependencies.keys().map(String::as_str).collect();
    if let Some(baseline) = &spec.targets.baseline {
        check_launch(&mut p, "targets.baseline", baseline, &dependency_names);
    }
    check_launch(
        &mut p,
        "targets.candidate",
        &spec.targets.candidate,
        &dependency_names,
    );
    for (name, launch) in &spec.dependencies {
        // Dependencies start before the targets, so they cannot refer to each other.
        check_launch(&mut p, &format!("dependencies.{name}"), launch, &[]);
    }
    let requests = &spec.traffic.requests;
    if requests.value.is_empty() {
        p.at(
            requests.referenced,
            "the traffic mix is empty".into(),
            Some("list at least one request, e.g. `- {method: GET, path: /}`".into()),
        );
    }
    for request in &requests.value {
        if !request.path.starts_with('/') {
            p.at(
                requests.referenced,
                format!("request path `{}` does not start with `/`", request.path),
                Some(format!("write `/{}`", request.path)),
            );
        }
    }
    check_canary(&mut p, spec);
    let owners: Vec<&str> = spec.service.owners.keys().map(String::as_str).collect();
    let steps = &spec.steps;
    let step_owners = [
        steps
            .rollback_rehearsal
            .as_ref()
            .and_then(|s| s.owner.as_ref()),
        steps.security.as_ref().and_then(|s| s.owner.as_ref()),
        steps.observability.as_ref().and_then(|s| s.owner.as_ref()),
        steps.canary.as_ref().and_then(|s| s.owner.as_ref()),
    ];
    for owner in step_owners.into_iter().flatten() {
        if !owners.contains(&owner.value.as_str()) {
            let help = match did_you_mean(&owner.value, owners.iter().copied()) {
                Some(close) => format!("did you mean `{close}`?"),
                None if owners.is_empty() => "add the role under `service.owners`".into(),
                None => format!("roles in `service.owners`: {}", list(&owners)),
            };
            p.at(
                owner.referenced,
                format!("owner role `{}` is not in `service.owners`", owner.value),
                Some(help),
            );
        }
    }
    p.found
}

fn check_canary(p: &mut Problems<'_>, spec: &Spec) {
    let Some(canary) = &spec.steps.canary else {
        if spec.steps.rollback_rehearsal.is_some() {
            p.found.push(SpecDiagnostic::at(
                p.file,
                p.text,
                1,
                1,
                "the rollback rehearsal runs the canary's judges, but `steps.canary` is missing",
                Some("add a `canary:` section under `steps:`".into()),
            ));
        }
        return;
    };
    let stages = &canary.stages;
    if stages.value.is_empty() {
        p.at(
            stages.referenced,
            "the canary has no stages".into(),
            Some("e.g. `- {weight: 10%, bake: 5m}`".into()),
        );
    }
    let mut last = -1.0;
    for stage in &stages.value {
        let share = match &stage.weight {
            crate::model::StageWeight::Shadow => 0.0,
            crate::model::StageWeight::Share(p) => p.ratio(),
        };
        if share <= last && share > 0.0 {
            p.at(
                stages.referenced,
                format!(
                    "canary stages must ramp up: {} comes after a larger share",
                    stage.weight
                ),
                None,
            );
        }
        if share == 0.0 && stage.weight != crate::model::StageWeight::Shadow {
            p.at(
                stages.referenced,
                "a 0% stage sends the candidate nothing".into(),
                Some("use `shadow` to mirror traffic without serving it".into()),
            );
        }
        last = last.max(share);
    }
    let judged = stages.value.iter().take_while(
        |stage| !matches!(&stage.weight, crate::model::StageWeight::Share(p) if p.ratio() >= 1.0),
    );
    if !stages.value.is_empty() && judged.count() == 0 {
        p.at(
            stages.referenced,
            "the canary promotes to 100% before any judged stage".into(),
            Some("put `shadow` or a partial weight such as `10%` before `100%`".into()),
        );
    }
    let judges = &canary.judges;
    if judges.error_rate.is_none()
        && judges.two_sample.is_none()
        && judges.latency.is_none()
        && judges.burn_rate.is_none()
    {
        p.at(
            stages.referenced,
            "the canary has no judges".into(),
            Some("add `judges: {two_sample: {}}` at least".into()),
        );
    }
    if let Some(burn) = &judges.burn_rate
        && (burn.windows.is_empty()
            || burn
                .windows
                .iter()
                .any(|w| w.rate.is_nan() || w.rate <= 0.0 || w.window.as_std().is_zero()))
    {
        p.at(
            stages.referenced,
            "each burn-rate window needs a positive `window` and `rate`".into(),
            Some("e.g. `windows: [{window: 1h, rate: 14.4}, {window: 5m, rate: 14.4}]`".into()),
        );
    }
    for (name, ratio) in [
        ("alpha", canary.alpha.ratio()),
        ("beta", canary.beta.ratio()),
    ] {
        if !(ratio > 0.0 && ratio < 0.5) {
            p.at(
                stages.referenced,
                format!("canary `{name}` must be above 0% and below 50%"),
                None,
            );
        }
    }
}

fn launch_strings(launch: &Launch) -> impl Iterator<Item = &String> {
    launch
        .url
        .iter()
        .chain(launch.command.iter().flatten())
        .chain(launch.env.values())
}

fn check_launch(p: &mut Problems<'_>, what: &str, launch: &Spanned<Launch>, dependencies: &[&str]) {
    let at = launch.referenced;
    let value = &launch.value;
    match (&value.url, &value.command) {
        (None, None) => p.at(
            at,
            format!("`{what}` has neither `url` nor `command`"),
            Some("give the URL it is reached at, or the command that starts it".into()),
        ),
        (_, Some(command)) if command.is_empty() => p.at(
            at,
            format!("`{what}.command` is empty"),
            Some(
                "write the program and its arguments, e.g. [\"./server\", \"--port\", \"{port}\"]"
                    .into(),
            ),
        ),
        _ => {}
    }
    if let Some(url) = &value.url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        p.at(
            at,
            format!("`{what}.url` is `{url}`, not an http(s) URL"),
            Some("write it as http://HOST:PORT".into()),
        );
    }
    if !value.health.starts_with('/') {
        p.at(
            at,
            format!("`{what}.health` must be a path starting with `/`"),
            None,
        );
    }
    for text in launch_strings(value) {
        for name in placeholders(text) {
            let known = match name {
                "port" | "dir" | "gauntlet" => true,
                other => other
                    .strip_prefix("dependencies.")
                    .and_then(|rest| rest.strip_suffix(".url"))
                    .is_some_and(|dep| dependencies.contains(&dep)),
            };
            if !known {
                let mut choices = vec!["port".to_string(), "dir".into(), "gauntlet".into()];
                choices.extend(dependencies.iter().map(|d| format!("dependencies.{d}.url")));
                let help = match did_you_mean(name, choices.iter().map(String::as_str)) {
                    Some(close) => format!("did you mean `{{{close}}}`?"),
                    None => format!(
                        "placeholders here: {}",
                        choices
                            .iter()
                            .map(|c| format!("{{{c}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                p.at(
                    at,
                    format!("unknown placeholder `{{{name}}}` in `{what}`"),
                    Some(help),
                );
            }
        }
    }
}

/// The `{name}` placeholders in a string, in order.
pub fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
        .filter(|name| !name.is_empty() && !name.contains(char::is_whitespace))
}
