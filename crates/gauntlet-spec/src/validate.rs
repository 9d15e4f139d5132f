//! How a spec is checked: parse errors turned into located diagnostics with suggestions, the
//! [`Problems`] every check reports into (by a value's place or by its key path), the bounds
//! every size, count, rate and duration must keep, and the checks of the sections that are
//! not steps (systems, traffic, owners, environment, trust). Each step checks its own section
//! in `steps/<name>.rs`; [`check`] runs those of the steps that will run.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use serde_saphyr::{Error as YamlError, Location, MessageFormatter, Spanned};

use crate::diagnostic::{SpecDiagnostic, did_you_mean};
use crate::limits::{Host, human};
use crate::model::{Launch, SCHEMA_VERSIONS, Spec};
use crate::steps::StepName;
use crate::units::Duration;

/// Every problem found so far in one spec file, each placed at file:line:col.
pub(crate) struct Problems<'a> {
    pub(crate) file: &'a str,
    pub(crate) text: &'a str,
    pub(crate) found: Vec<SpecDiagnostic>,
    keys: OnceCell<BTreeMap<String, (usize, usize)>>,
}

impl<'a> Problems<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        Self {
            file,
            text,
            found: Vec::new(),
            keys: OnceCell::new(),
        }
    }

    /// At a value's place, as the parser recorded it.
    pub(crate) fn at(&mut self, location: Location, message: String, help: Option<String>) {
        self.found.push(SpecDiagnostic::at(
            self.file,
            self.text,
            location.line() as usize,
            location.column() as usize,
            message,
            help,
        ));
    }

    /// At a key path (`steps.chaos.drills[1].expect`): its own place when the file writes
    /// it, else the place of what holds it (a default is reported where its section is).
    pub(crate) fn key(&mut self, path: &str, message: String, help: Option<String>) {
        let (line, column) = self.locate(path);
        self.found.push(SpecDiagnostic::at(
            self.file, self.text, line, column, message, help,
        ));
    }

    fn locate(&self, path: &str) -> (usize, usize) {
        let keys = self
            .keys
            .get_or_init(|| crate::locate::key_locations(self.text));
        let mut path = path;
        loop {
            if let Some(at) = keys.get(path) {
                return *at;
            }
            // A mapping item of a sequence is where its first key is.
            let inside = keys
                .iter()
                .filter(|(k, _)| {
                    k.strip_prefix(path)
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
                })
                .map(|(_, at)| *at)
                .min();
            if let Some(at) = inside {
                return at;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => return (1, 1),
            }
        }
    }

    /// `value` must be above zero (unless `zero_ok`) and at most `max`.
    pub(crate) fn duration(
        &mut self,
        path: &str,
        value: Duration,
        zero_ok: bool,
        max: StdDuration,
    ) {
        let std = value.as_std();
        if std.is_zero() && !zero_ok {
            self.key(
                path,
                format!("`{}` is {value}: it must be above zero", leaf(path)),
                Some("a zero wait fails by construction; give the time it really needs".into()),
            );
        } else if std > max {
            self.key(
                path,
                format!(
                    "`{}` is {value}, more than the {} this may take",
                    leaf(path),
                    human(max)
                ),
                Some(format!("at most {}", human(max))),
            );
        }
    }

    pub(crate) fn count(&mut self, path: &str, value: u64, max: u64) {
        if value > max {
            self.key(
                path,
                format!("`{}` is {value}, more than {max}", leaf(path)),
                Some(format!(
                    "at most {max}: larger values exhaust the host before they prove anything"
                )),
            );
        }
    }

    pub(crate) fn rate(&mut self, path: &str, per_second: f64) {
        if per_second < 1.0 / 60.0 {
            self.key(
                path,
                format!("`{}` is less than one request a minute", leaf(path)),
                Some("a step would wait for hours between requests: give at least `1/m`".into()),
            );
        } else if per_second > 100_000.0 {
            self.key(
                path,
                format!("`{}` is more than 100,000 requests a second", leaf(path)),
                Some("at most `100000/s` from one machine".into()),
            );
        }
    }

    /// A file the spec names must be one of its project's: beside the spec or below, never
    /// an absolute path or one that climbs out (checked again, links resolved, when read).
    pub(crate) fn project_file(&mut self, path: &str, value: &str) {
        if let Some(why) = crate::trust::outside_project(value) {
            self.key(
                path,
                format!("{why}: files a spec names stay under its directory"),
                Some("give a path relative to the spec, inside its directory; copy the file there if it lives elsewhere".into()),
            );
        }
    }

    /// A file in a started system's own directory: relative, never climbing out.
    pub(crate) fn system_file(&mut self, path: &str, value: &str, what: &str) {
        if value.starts_with('/') || value.split('/').any(|part| part == "..") {
            self.key(
                path,
                format!(
                    "{what}: `{}` must stay inside the target's directory",
                    quoted(value)
                ),
                Some("write a relative path such as `items.json`".into()),
            );
        }
    }
}

fn leaf(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// A value from the spec, cut to a readable length for a message (a 200 MB value is not
/// echoed back).
pub(crate) fn quoted(value: &str) -> String {
    const SHOWN: usize = 60;
    if value.chars().count() <= SHOWN {
        return value.to_string();
    }
    let head: String = value.chars().take(SHOWN).collect();
    format!("{head}… ({} characters)", value.chars().count())
}

/// What the checks of one spec can look at besides their own section.
pub(crate) struct Context<'a> {
    pub(crate) spec: &'a Spec,
    pub(crate) host: Host,
    /// The chaos drills a run takes (`gauntlet chaos --drill`); empty: every one.
    pub(crate) drills: &'a [String],
    /// Drills left out, with why.
    pub(crate) skip_drills: &'a [(String, String)],
}

impl Context<'_> {
    /// Systems a fault or the DR step can name, and whether gauntlet starts each one.
    pub(crate) fn systems(&self) -> Vec<(&str, bool)> {
        let spec = self.spec;
        let mut systems = vec![("candidate", spec.targets.candidate.value.command.is_some())];
        systems.extend(
            spec.dependencies
                .iter()
                .map(|(name, launch)| (name.as_str(), launch.value.command.is_some())),
        );
        systems
    }

    /// What the fault proxy in front of `system` speaks (`steps.chaos.proxies`; HTTP unless
    /// set).
    pub(crate) fn proxy_protocol(&self, system: &str) -> crate::fault::ProxyProtocol {
        self.spec
            .steps
            .chaos
            .as_ref()
            .and_then(|c| c.proxies.get(system).copied())
            .unwrap_or(crate::fault::ProxyProtocol::Http)
    }

    /// `name` must be a system; with `started`, one gauntlet starts (so it has a process and
    /// a directory). `instead` says what to use when it is reached by URL.
    pub(crate) fn check_system(
        &self,
        p: &mut Problems<'_>,
        path: &str,
        what: &str,
        name: &str,
        started: Option<&str>,
    ) {
        let systems = self.systems();
        match systems.iter().find(|(n, _)| *n == name) {
            None => {
                let names: Vec<&str> = systems.iter().map(|(n, _)| *n).collect();
                let help = did_you_mean(name, names.iter().copied())
                    .map(|c| format!("did you mean `{c}`?"))
                    .unwrap_or_else(|| format!("systems: {}", list(&names)));
                p.key(
                    path,
                    format!("{what}: no system named `{}`", quoted(name)),
                    Some(help),
                );
            }
            Some((_, false)) if started.is_some() => p.key(
                path,
                format!(
                    "{what}: `{name}` is reached by `url`, so gauntlet has no process or directory of it"
                ),
                Some(format!(
                    "give `{name}` a `command` so gauntlet starts it{}",
                    started.unwrap_or_default()
                )),
            ),
            _ => {}
        }
    }
}

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
    let help = did_you_mean(field, expected.iter().copied())
        .map(|close| format!("did you mean `{close}`?"));
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

pub(crate) fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What to write instead of a name that is no step.
pub(crate) fn help_for(e: &crate::steps::UnknownStep) -> String {
    match e.close {
        Some(close) => format!("did you mean `{close}`?"),
        None => format!("steps: {}", StepName::list()),
    }
}

fn versions() -> String {
    SCHEMA_VERSIONS
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every problem of `spec` for a run of `steps` (the steps that will run, and the sections
/// they read): the sections that are not steps always, a step's own section only when it runs.
pub(crate) fn check(
    file: &str,
    text: &str,
    spec: &Spec,
    steps: &[StepName],
) -> Vec<SpecDiagnostic> {
    let mut p = Problems::new(file, text);
    let cx = Context {
        spec,
        host: Host::this(),
        drills: &[],
        skip_drills: &[],
    };
    check_systems(&mut p, spec);
    check_traffic(&mut p, spec);
    check_owners(&mut p, spec);
    check_trust(&mut p, spec);
    check_selections(&mut p, spec);
    if let Some(prometheus) = &spec.prometheus {
        prometheus.check(&mut p);
    }
    if let Some(usage) = &spec.usage {
        usage.check(&mut p);
    }
    crate::runbook::check_runbooks(&cx, &mut p, &spec.runbooks);
    spec.incident.check(&mut p);
    for (i, file) in spec.slos.openslo.iter().enumerate() {
        p.project_file(&format!("slos.openslo[{i}]"), file);
    }
    spec.gameday.check(&cx, &mut p);
    for section in spec.sections() {
        if steps.contains(&section.step()) {
            section.check(&cx, &mut p);
        }
    }
    crate::limits::check_ceiling(&cx, &mut p, steps);
    p.found
}

fn check_systems(p: &mut Problems<'_>, spec: &Spec) {
    let dependency_names: Vec<&str> = spec.dependencies.keys().map(String::as_str).collect();
    if let Some(baseline) = &spec.targets.baseline {
        check_launch(p, "targets.baseline", &baseline.value, &dependency_names);
    }
    check_launch(
        p,
        "targets.candidate",
        &spec.targets.candidate.value,
        &dependency_names,
    );
    for (name, launch) in &spec.dependencies {
        // Dependencies start before the targets, so they cannot refer to each other.
        check_launch(p, &format!("dependencies.{name}"), &launch.value, &[]);
    }
    let launches = std::iter::once(&spec.targets.candidate)
        .chain(spec.targets.baseline.as_ref())
        .chain(spec.dependencies.values());
    let passed = spec
        .pass_env
        .iter()
        .chain(launches.flat_map(|l| l.value.pass_env.iter()));
    for name in passed {
        check_pass_env(p, name);
    }
    if let Some(timeout) = spec.timeout {
        p.duration("timeout", timeout, false, crate::limits::MAX_TIMEOUT);
    }
}

fn check_traffic(p: &mut Problems<'_>, spec: &Spec) {
    let requests = &spec.traffic.requests;
    if requests.value.is_empty() {
        p.at(
            requests.referenced,
            "the traffic mix is empty".into(),
            Some("list at least one request, e.g. `- {method: GET, path: /}`".into()),
        );
    }
    for (i, request) in requests.value.iter().enumerate() {
        if !request.path.starts_with('/') {
            p.key(
                &format!("traffic.requests[{i}].path"),
                format!(
                    "request path `{}` does not start with `/`",
                    quoted(&request.path)
                ),
                Some(format!("write `/{}`", quoted(&request.path))),
            );
        }
    }
    p.rate("traffic.rate", spec.traffic.rate.per_second());
}

/// Every role a spec names is one of `service.owners`.
fn check_owners(p: &mut Problems<'_>, spec: &Spec) {
    let owners: Vec<&str> = spec.service.owners.keys().map(String::as_str).collect();
    let signoff_roles = spec.signoffs.iter().flat_map(|s| s.required.iter());
    let item_roles = spec.readiness.iter().flat_map(|r| {
        r.categories.value.iter().flat_map(|c| {
            c.items
                .iter()
                .flat_map(|i| std::iter::once(&i.owner).chain(i.waiver.iter().map(|w| &w.by)))
        })
    });
    let step_owners = spec.sections().into_iter().filter_map(|s| s.owner());
    for owner in step_owners.chain(signoff_roles).chain(item_roles) {
        if !owners.contains(&owner.value.as_str()) {
            let help = match did_you_mean(&owner.value, owners.iter().copied()) {
                Some(close) => format!("did you mean `{close}`?"),
                None if owners.is_empty() => "add the role under `service.owners`".into(),
                None => format!("roles in `service.owners`: {}", list(&owners)),
            };
            p.at(
                owner.referenced,
                format!(
                    "owner role `{}` is not in `service.owners`",
                    quoted(&owner.value)
                ),
                Some(help),
            );
        }
    }
    for (role, key) in spec.signoffs.iter().flat_map(|s| s.keys.iter()) {
        if !owners.contains(&role.as_str()) {
            p.at(
                key.referenced,
                format!(
                    "`signoffs.keys` names role `{}`, which is not in `service.owners`",
                    quoted(role)
                ),
                Some(match did_you_mean(role, owners.iter().copied()) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!("roles in `service.owners`: {}", list(&owners)),
                }),
            );
        }
        if !crate::trust::looks_like_public_key(&key.value) {
            p.at(
                key.referenced,
                format!("the key of role `{}` is not a minisign public key", quoted(role)),
                Some("give the base64 line of its `.pub` file (56 characters, starting `RW`): `gauntlet keys list` prints it".into()),
            );
        }
    }
}

/// The files the `trust` section names stay in the project; its evidence URL is absolute.
fn check_trust(p: &mut Problems<'_>, spec: &Spec) {
    let Some(t) = &spec.trust else {
        return;
    };
    p.project_file("trust.lock", &t.lock);
    for (i, f) in t.protected.iter().enumerate() {
        p.project_file(&format!("trust.protected[{i}]"), &f.value);
    }
    if let Some(crate::trust::FlagSource::File(f)) = &t.flags {
        p.project_file("trust.flags.file", f);
    }
    match &t.sbom {
        Some(crate::trust::SbomSource::File(f)) => p.project_file("trust.sbom.file", f),
        Some(crate::trust::SbomSource::Lockfiles(files)) => {
            for (i, f) in files.iter().enumerate() {
                p.project_file(&format!("trust.sbom.lockfiles[{i}]"), f);
            }
        }
        None => {}
    }
    for (i, f) in t.artifacts.iter().enumerate() {
        p.project_file(&format!("trust.artifacts[{i}]"), f);
    }
    if let Some(url) = &t.evidence_url
        && !crate::trust::is_absolute_uri(&url.value)
    {
        p.at(
            url.referenced,
            format!("`trust.evidence_url` `{}` is not an absolute URL", quoted(&url.value)),
            Some("give where run directories are published, e.g. `https://ci.example.com/gauntlet/runs/{run}/` ({run} is the run id)".into()),
        );
    }
}

/// Step names in taxonomy hints and profiles are steps.
fn check_selections(p: &mut Problems<'_>, spec: &Spec) {
    for hint in spec.taxonomy.iter().flat_map(|t| &t.hints) {
        if let Some(step) = &hint.step
            && step.value.replace('_', "-") != crate::steps::SETUP
            && let Err(e) = step.value.parse::<StepName>()
        {
            p.at(
                step.referenced,
                format!(
                    "taxonomy hint for step `{}`, which no run has",
                    quoted(&step.value)
                ),
                Some(help_for(&e)),
            );
        }
    }
    for (name, profile) in &spec.profiles {
        for step in profile.only.iter().chain(&profile.skip) {
            if let Err(e) = step.value.parse::<StepName>() {
                p.at(
                    step.referenced,
                    format!(
                        "profile `{name}` names step `{}`, which no run has",
                        quoted(&step.value)
                    ),
                    Some(help_for(&e)),
                );
            }
        }
        if profile.only.is_empty() && profile.skip.is_empty() {
            p.key(
                &format!("profiles.{name}"),
                format!("profile `{name}` selects every step: give it `only:` or `skip:`"),
                Some("e.g. `profiles: {smoke: {only: [security, canary]}}`".into()),
            );
        }
    }
}

/// A variable passed to children must be a name, and never one of gauntlet's own secrets.
fn check_pass_env(p: &mut Problems<'_>, name: &Spanned<String>) {
    let valid = name
        .value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        p.at(
            name.referenced,
            format!("`{}` is not an environment variable name", quoted(&name.value)),
            Some("give the name only (letters, digits, `_`), e.g. `DATABASE_URL`; set values with `env:`".into()),
        );
    } else if crate::model::SECRET_ENV.contains(&name.value.as_str()) {
        p.at(
            name.referenced,
            format!("`{}` is gauntlet's own secret and is never passed to a process it starts", name.value),
            Some("the system under test must not hold gauntlet's signing key or credentials; remove it from `pass_env`".into()),
        );
    }
}

/// The strings of a launch that may hold placeholders, with their key paths under `what`.
fn launch_strings<'a>(what: &str, launch: &'a Launch) -> Vec<(String, &'a String)> {
    let mut strings: Vec<(String, &String)> = Vec::new();
    strings.extend(launch.url.iter().map(|u| (format!("{what}.url"), u)));
    for (i, arg) in launch.command.iter().flatten().enumerate() {
        strings.push((format!("{what}.command[{i}]"), arg));
    }
    for (key, value) in &launch.env {
        strings.push((format!("{what}.env.{key}"), value));
    }
    strings
}

fn check_launch(p: &mut Problems<'_>, what: &str, launch: &Launch, dependencies: &[&str]) {
    match (&launch.url, &launch.command) {
        (None, None) => p.key(
            what,
            format!("`{what}` has neither `url` nor `command`"),
            Some("give the URL it is reached at, or the command that starts it".into()),
        ),
        (_, Some(command)) if command.is_empty() => p.key(
            &format!("{what}.command"),
            format!("`{what}.command` is empty"),
            Some(
                "write the program and its arguments, e.g. [\"./server\", \"--port\", \"{port}\"]"
                    .into(),
            ),
        ),
        _ => {}
    }
    if let Some(url) = &launch.url
        && let Err(why) = crate::plan::http_url(url)
    {
        p.key(
            &format!("{what}.url"),
            format!("`{what}.url` is `{}`: {why}", quoted(url)),
            Some("write it as http://HOST:PORT".into()),
        );
    }
    if !launch.health.starts_with('/') {
        p.key(
            &format!("{what}.health"),
            format!("`{what}.health` must be a path starting with `/`"),
            None,
        );
    }
    p.duration(
        &format!("{what}.ready_timeout"),
        launch.ready_timeout,
        false,
        10 * crate::limits::MINUTE,
    );
    for (path, text) in launch_strings(what, launch) {
        for name in placeholders(text) {
            let known = match name {
                "port" | "dir" | "gauntlet" | "spec_dir" => true,
                other => other
                    .strip_prefix("dependencies.")
                    .and_then(|rest| rest.strip_suffix(".url"))
                    .is_some_and(|dep| dependencies.contains(&dep)),
            };
            if !known {
                let mut choices = vec![
                    "port".to_string(),
                    "dir".into(),
                    "gauntlet".into(),
                    "spec_dir".into(),
                ];
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
                p.key(
                    &path,
                    format!("unknown placeholder `{{{}}}` in `{what}`", quoted(name)),
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
