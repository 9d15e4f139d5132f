//! Turning parse errors into located diagnostics with suggestions, and the checks that
//! need the whole spec (names that must resolve, placeholders, versions).

use serde_saphyr::{Error as YamlError, Location, MessageFormatter, Spanned};

use crate::diagnostic::{SpecDiagnostic, did_you_mean};
use crate::model::{Launch, SCHEMA_VERSIONS, Spec};
use crate::steps::StepName;

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

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What to write instead of a name that is no step.
fn help_for(e: &crate::steps::UnknownStep) -> String {
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
    check_chaos(&mut p, spec);
    check_dr(&mut p, spec);
    check_rehearsal(&mut p, spec);
    check_review(&mut p, spec);
    let owners: Vec<&str> = spec.service.owners.keys().map(String::as_str).collect();
    let steps = &spec.steps;
    let step_owners = [
        steps.preflight.as_ref().and_then(|s| s.owner.as_ref()),
        steps.rotation.as_ref().and_then(|s| s.owner.as_ref()),
        steps
            .rollback_rehearsal
            .as_ref()
            .and_then(|s| s.owner.as_ref()),
        steps.chaos.as_ref().and_then(|s| s.owner.as_ref()),
        steps.dr.as_ref().and_then(|s| s.owner.as_ref()),
        steps.security.as_ref().and_then(|s| s.owner.as_ref()),
        steps.observability.as_ref().and_then(|s| s.owner.as_ref()),
        steps.canary.as_ref().and_then(|s| s.owner.as_ref()),
    ];
    let signoff_roles = spec.signoffs.iter().flat_map(|s| s.required.iter());
    let item_roles = spec.readiness.iter().flat_map(|r| {
        r.categories.value.iter().flat_map(|c| {
            c.items
                .iter()
                .flat_map(|i| std::iter::once(&i.owner).chain(i.waiver.iter().map(|w| &w.by)))
        })
    });
    let gate_owner = spec.gates.as_ref().and_then(|g| g.owner.as_ref());
    for owner in step_owners
        .into_iter()
        .chain([gate_owner])
        .flatten()
        .chain(signoff_roles)
        .chain(item_roles)
    {
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
    let launches = std::iter::once(&spec.targets.candidate)
        .chain(spec.targets.baseline.as_ref())
        .chain(spec.dependencies.values());
    let passed = spec
        .pass_env
        .iter()
        .chain(launches.flat_map(|l| l.value.pass_env.iter()));
    for name in passed {
        check_pass_env(&mut p, name);
    }
    check_limits(&mut p, spec, &crate::limits::Host::this());
    check_project_paths(&mut p, spec);
    if let Some(url) = spec.trust.as_ref().and_then(|t| t.evidence_url.as_ref())
        && !crate::trust::is_absolute_uri(&url.value)
    {
        p.at(
            url.referenced,
            format!("`trust.evidence_url` `{}` is not an absolute URL", url.value),
            Some("give where run directories are published, e.g. `https://ci.example.com/gauntlet/runs/{run}/` ({run} is the run id)".into()),
        );
    }
    for (role, key) in spec.signoffs.iter().flat_map(|s| s.keys.iter()) {
        if !owners.contains(&role.as_str()) {
            p.at(
                key.referenced,
                format!("`signoffs.keys` names role `{role}`, which is not in `service.owners`"),
                Some(match did_you_mean(role, owners.iter().copied()) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!("roles in `service.owners`: {}", list(&owners)),
                }),
            );
        }
        if !crate::trust::looks_like_public_key(&key.value) {
            p.at(
                key.referenced,
                format!("the key of role `{role}` is not a minisign public key"),
                Some("give the base64 line of its `.pub` file (56 characters, starting `RW`): `gauntlet keys list` prints it".into()),
            );
        }
    }
    p.found
}

/// Every file a spec names is one of its project's: beside the spec or below, never an
/// absolute path or one that climbs out (checked again, symbolic links resolved, when read).
fn check_project_paths(p: &mut Problems<'_>, spec: &Spec) {
    let mut named: Vec<(String, &str)> = Vec::new();
    if let Some(o) = &spec.steps.observability {
        if let Some(a) = &o.alerts {
            named.push(("steps.observability.alerts.rules".into(), a.rules.as_str()));
        }
        for (i, d) in o.dashboards.iter().enumerate() {
            named.push((
                format!("steps.observability.dashboards[{i}].file"),
                d.file.as_str(),
            ));
        }
    }
    if let Some(t) = &spec.trust {
        named.push(("trust.lock".into(), t.lock.as_str()));
        for (i, f) in t.protected.iter().enumerate() {
            named.push((format!("trust.protected[{i}]"), f.value.as_str()));
        }
        if let Some(crate::trust::FlagSource::File(f)) = &t.flags {
            named.push(("trust.flags.file".into(), f.as_str()));
        }
        match &t.sbom {
            Some(crate::trust::SbomSource::File(f)) => {
                named.push(("trust.sbom.file".into(), f.as_str()))
            }
            Some(crate::trust::SbomSource::Lockfiles(files)) => {
                for (i, f) in files.iter().enumerate() {
                    named.push((format!("trust.sbom.lockfiles[{i}]"), f.as_str()));
                }
            }
            None => {}
        }
        for (i, f) in t.artifacts.iter().enumerate() {
            named.push((format!("trust.artifacts[{i}]"), f.as_str()));
        }
    }
    let problems: Vec<(String, String)> = named
        .into_iter()
        .filter_map(|(path, value)| crate::trust::outside_project(value).map(|why| (path, why)))
        .collect();
    if problems.is_empty() {
        return;
    }
    let locations = crate::locate::key_locations(p.text);
    for (path, why) in problems {
        let (line, column) = locations.get(&path).copied().unwrap_or((1, 1));
        p.found.push(SpecDiagnostic::at(
            p.file,
            p.text,
            line,
            column,
            format!("{why}: files a spec names stay under its directory"),
            Some("give a path relative to the spec, inside its directory; copy the file there if it lives elsewhere".into()),
        ));
    }
}

/// Bounds on sizes, counts, rates and durations (see `limits`), each at its own key.
fn check_limits(p: &mut Problems<'_>, spec: &Spec, host: &crate::limits::Host) {
    let findings = crate::limits::check(spec, host);
    if findings.is_empty() {
        return;
    }
    let locations = crate::locate::key_locations(p.text);
    for finding in findings {
        let (line, column) = locations.get(&finding.path).copied().unwrap_or((1, 1));
        p.found.push(SpecDiagnostic::at(
            p.file,
            p.text,
            line,
            column,
            finding.message,
            Some(finding.help),
        ));
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
            format!("`{}` is not an environment variable name", name.value),
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

/// Systems a fault or the DR step can name, and whether gauntlet starts each one.
fn systems(spec: &Spec) -> Vec<(&str, bool)> {
    let mut systems = vec![("candidate", spec.targets.candidate.value.command.is_some())];
    systems.extend(
        spec.dependencies
            .iter()
            .map(|(name, launch)| (name.as_str(), launch.value.command.is_some())),
    );
    systems
}

fn check_system(
    p: &mut Problems<'_>,
    at: Location,
    what: &str,
    name: &str,
    spec: &Spec,
    started: bool,
) {
    let systems = systems(spec);
    match systems.iter().find(|(n, _)| *n == name) {
        None => {
            let names: Vec<&str> = systems.iter().map(|(n, _)| *n).collect();
            let help = did_you_mean(name, names.iter().copied())
                .map(|c| format!("did you mean `{c}`?"))
                .unwrap_or_else(|| format!("systems: {}", list(&names)));
            p.at(at, format!("{what}: no system named `{name}`"), Some(help));
        }
        Some((_, has_command)) if started && !has_command => p.at(
            at,
            format!("{what}: `{name}` is reached by `url`, so gauntlet has no process or directory of it"),
            Some("give it a `command` so gauntlet starts it, or use a proxy fault".into()),
        ),
        _ => {}
    }
}

fn check_probes(p: &mut Problems<'_>, at: Location, what: &str, probes: &[crate::drills::Probe]) {
    for probe in probes {
        let kinds = [
            probe.http.is_some(),
            probe.metric.is_some(),
            probe.command.is_some(),
        ]
        .iter()
        .filter(|k| **k)
        .count();
        if kinds != 1 {
            p.at(
                at,
                format!(
                    "{what}: probe `{}` needs exactly one of `http`, `metric` or `command`",
                    probe.name
                ),
                Some(
                    "e.g. `{name: up, http: {path: /healthz, status: [200], within: 500ms}}`"
                        .into(),
                ),
            );
        }
        if let Some(http) = &probe.http
            && !http.path.starts_with('/')
        {
            p.at(
                at,
                format!(
                    "{what}: probe `{}` path `{}` does not start with `/`",
                    probe.name, http.path
                ),
                None,
            );
        }
        if let Some(metric) = &probe.metric
            && metric.min.is_none()
            && metric.max.is_none()
        {
            p.at(
                at,
                format!(
                    "{what}: metric probe `{}` has neither `min` nor `max`",
                    probe.name
                ),
                Some("e.g. `{name: errors_total, increase: true, max: 0}`".into()),
            );
        }
        if let Some(command) = &probe.command
            && command.run.is_empty()
        {
            p.at(
                at,
                format!("{what}: command probe `{}` has an empty `run`", probe.name),
                None,
            );
        }
    }
}

fn check_chaos(p: &mut Problems<'_>, spec: &Spec) {
    let Some(chaos) = &spec.steps.chaos else {
        return;
    };
    let at = chaos.drills.referenced;
    if chaos.drills.value.is_empty() {
        p.at(
            at,
            "the chaos step has no drills".into(),
            Some("add at least one under `drills:`".into()),
        );
    }
    if chaos.interval.as_std().is_zero() {
        p.at(at, "the probe `interval` must be above zero".into(), None);
    }
    for name in chaos.proxies.keys() {
        check_system(p, at, "chaos.proxies", name, spec, false);
    }
    if let Some(hypothesis) = &chaos.steady_state {
        check_probes(p, at, "chaos.steady_state", &hypothesis.probes);
    }
    let mut seen: Vec<&str> = Vec::new();
    for drill in &chaos.drills.value {
        let what = format!("drill `{}`", drill.name);
        if drill.name.trim().is_empty() {
            p.at(at, "a drill needs a `name`".into(), None);
        }
        if seen.contains(&drill.name.as_str()) {
            p.at(
                at,
                format!("two drills are named `{}`", drill.name),
                Some("drill names must be unique".into()),
            );
        }
        seen.push(&drill.name);
        let alerts: Vec<_> = drill.alerts.iter().map(|a| (at, &a.name)).collect();
        check_expected_alerts(p, spec, &what, &alerts);
        match &drill.steady_state {
            Some(own) => check_probes(p, at, &what, &own.probes),
            None if chaos.steady_state.is_none() => p.at(
                at,
                format!("{what} has no steady-state hypothesis"),
                Some("add `steady_state:` to the drill or to the chaos step".into()),
            ),
            None => {}
        }
        check_probes(p, at, &what, &drill.side_effects);
        if drill.duration.as_std().is_zero() {
            p.at(at, format!("{what}: `duration` must be above zero"), None);
        }
        if let crate::drills::Expectation::RecoverWithin(bound) = drill.expect
            && bound > drill.duration
        {
            p.at(
                at,
                format!(
                    "{what}: `recover within {bound}` is longer than the drill ({})",
                    drill.duration
                ),
                Some("make the drill's `duration` at least the recovery bound".into()),
            );
        }
        if drill.faults.is_empty() {
            p.at(
                at,
                format!("{what} injects no fault"),
                Some("add at least one under `faults:`".into()),
            );
        }
        for fault in &drill.faults {
            check_fault(p, fault, &what, spec);
            if let Some(d) = fault.value.duration
                && d > drill.duration
            {
                p.at(
                    fault.referenced,
                    format!(
                        "{what}: the fault lasts {d}, longer than the drill ({})",
                        drill.duration
                    ),
                    None,
                );
            }
        }
    }
}

/// Alerts a drill or the rehearsal waits for: something must deliver them to gauntlet, and
/// each must be one the observability step checks the rule file for.
fn check_expected_alerts(
    p: &mut Problems<'_>,
    spec: &Spec,
    what: &str,
    alerts: &[(serde_saphyr::Location, &String)],
) {
    let delivered = spec
        .prometheus
        .as_ref()
        .and_then(|p| p.alertmanager.as_ref())
        .is_some();
    if let Some((at, _)) = alerts.first()
        && !delivered
    {
        p.at(
            *at,
            format!("{what} expects alerts, and nothing delivers them to gauntlet"),
            Some("add `prometheus: {start: true, alertmanager: {start: true}}` (or `alertmanager: {receiver: ADDRESS}` for an Alertmanager of your own)".into()),
        );
    }
    let required = spec
        .steps
        .observability
        .as_ref()
        .and_then(|o| o.alerts.as_ref())
        .map(|a| &a.required);
    for (at, name) in alerts {
        if let Some(required) = required
            && !required.contains(name)
        {
            p.at(
                *at,
                format!("{what} expects alert `{name}`, which `steps.observability.alerts.required` does not list"),
                did_you_mean(name, required.iter().map(String::as_str))
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| Some("list it there, so the rule file is checked for it".into())),
            );
        }
    }
}

fn check_rehearsal(p: &mut Problems<'_>, spec: &Spec) {
    let Some(rehearsal) = &spec.steps.rollback_rehearsal else {
        return;
    };
    let what = "rollback_rehearsal";
    let alerts: Vec<_> = rehearsal
        .alerts
        .iter()
        .map(|a| (a.referenced, &a.value.name))
        .collect();
    check_expected_alerts(p, spec, what, &alerts);
    for fault in &rehearsal.faults {
        check_fault(p, fault, what, spec);
        if fault.value.target == "candidate" && fault.value.kind.is_proxy() {
            p.at(
                fault.referenced,
                format!("{what}: the rehearsal's traffic reaches the candidate directly, so a proxy fault on it would never be seen"),
                Some("break one of the candidate's dependencies (it reaches them through fault proxies), or use a process fault such as `corrupt` or `kill`".into()),
            );
        }
        if fault.value.target == "baseline" {
            p.at(
                fault.referenced,
                format!("{what}: a fault on the baseline breaks what the rehearsal rolls back to"),
                Some("break the candidate, or a dependency (only the candidate reaches it through a fault proxy)".into()),
            );
        }
    }
    let injects = rehearsal.error_rate.ratio() > 0.0
        || !rehearsal.latency.as_std().is_zero()
        || !rehearsal.faults.is_empty();
    if !injects {
        p.found.push(SpecDiagnostic::at(
            p.file,
            p.text,
            1,
            1,
            "the rollback rehearsal injects nothing: `error_rate` and `latency` are zero and there are no `faults`",
            Some("e.g. `error_rate: 30%`, or `faults: [{kind: http_abort, target: candidate, status: 503}]`".into()),
        ));
    }
    if let Some(sli) = &rehearsal.sli {
        for selector in [&sli.total, &sli.bad] {
            if let Err(e) = series_selector(&selector.value) {
                p.at(
                    selector.referenced,
                    format!("{what}.sli: {e}"),
                    Some(
                        "write a series selector, e.g. `http_requests_total{code=~\"5..\"}`".into(),
                    ),
                );
            }
        }
        if sli.requests == 0 {
            p.at(
                sli.total.referenced,
                format!("{what}.sli: `requests` must be at least 1"),
                None,
            );
        }
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
                Err(format!("`{text}` names no metric"))
            }
        }
        _ => Err(format!("`{text}` is not a plain series selector")),
    }
}

fn check_fault(
    p: &mut Problems<'_>,
    fault: &Spanned<crate::drills::FaultSpec>,
    what: &str,
    spec: &Spec,
) {
    use crate::drills::{FaultSpec, FaultType, Restart};
    let at = fault.referenced;
    let f = &fault.value;
    let kind = serde_json::to_value(f.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let (needed, allowed) = FaultSpec::fields(f.kind);
    let given = f.given();
    for field in needed {
        if !given.contains(field) {
            p.at(
                at,
                format!("{what}: a `{kind}` fault needs `{field}`"),
                Some(fault_example(f.kind).into()),
            );
        }
    }
    for field in &given {
        if !needed.contains(field) && !allowed.contains(field) {
            let mut fits: Vec<&str> = needed.iter().chain(allowed.iter()).copied().collect();
            fits.sort_unstable();
            p.at(
                at,
                format!("{what}: `{field}` does not apply to a `{kind}` fault"),
                Some(if fits.is_empty() { format!("a `{kind}` fault takes no settings besides target, toxicity, direction and duration") } else { format!("a `{kind}` fault takes {}", list(&fits)) }),
            );
        }
    }
    let needs_process = matches!(f.kind, FaultType::Corrupt | FaultType::Disk)
        || (f.kind == FaultType::Kill && f.restart.unwrap_or_default() == Restart::Gauntlet);
    if f.kind.is_proxy() || needs_process || f.kind == FaultType::Kill {
        check_system(p, at, what, &f.target, spec, needs_process);
    }
    if let Some(status) = f.status
        && !(100..=599).contains(&status)
    {
        p.at(
            at,
            format!("{what}: {status} is not an HTTP status"),
            Some("e.g. 502, 503 or 429".into()),
        );
    }
    if f.kind == FaultType::Bandwidth && f.rate.is_some_and(|r| r.bytes() == 0) {
        p.at(
            at,
            format!("{what}: a bandwidth of 0 is a blackhole"),
            Some("use `kind: blackhole`, or a rate such as `64KiB`".into()),
        );
    }
    if f.kind == FaultType::HttpAbort || f.kind == FaultType::HttpDelay {
        let protocol = spec
            .steps
            .chaos
            .as_ref()
            .and_then(|c| c.proxies.get(&f.target).copied());
        if protocol == Some(crate::drills::ProxyProtocol::Tcp) {
            p.at(
                at,
                format!(
                    "{what}: `{kind}` needs an HTTP proxy, but `{}` is set to `tcp`",
                    f.target
                ),
                None,
            );
        }
    }
    for path in f.file.iter().chain(f.path.iter()) {
        if path.starts_with('/') || path.split('/').any(|part| part == "..") {
            p.at(
                at,
                format!("{what}: `{path}` must stay inside the target's directory"),
                Some("write a relative path such as `items.json`".into()),
            );
        }
    }
}

fn fault_example(kind: crate::drills::FaultType) -> &'static str {
    use crate::drills::FaultType::*;
    match kind {
        Latency => "e.g. `{kind: latency, target: quotes-primary, latency: 200ms, jitter: 50ms}`",
        Bandwidth => "e.g. `{kind: bandwidth, target: quotes-primary, rate: 64KiB}` (per second)",
        Timeout => "e.g. `{kind: timeout, target: quotes-primary, after: 2s}`",
        SlowClose => "e.g. `{kind: slow_close, target: quotes-primary, delay: 1s}`",
        HttpDelay => "e.g. `{kind: http_delay, target: quotes-primary, delay: 300ms}`",
        HttpAbort => {
            "e.g. `{kind: http_abort, target: quotes-primary, status: 503, toxicity: 50%}`"
        }
        DropBytes => "e.g. `{kind: drop_bytes, target: quotes-primary, bytes: 16}`",
        Memory => "e.g. `{kind: memory, size: 256MiB}`",
        Disk => "e.g. `{kind: disk, size: 1GiB}`",
        Corrupt => "e.g. `{kind: corrupt, file: data.json, bytes: 8}`",
        Reset | Blackhole | Kill | Cpu => "",
    }
}

fn check_dr(p: &mut Problems<'_>, spec: &Spec) {
    let Some(dr) = &spec.steps.dr else {
        return;
    };
    let at = dr.markers.referenced;
    check_system(p, at, "dr.target", &dr.target, spec, true);
    if dr.sqlite.is_none() && dr.files.is_empty() && dr.backup_command.is_none() {
        p.at(
            at,
            "the DR step has nothing to back up".into(),
            Some(
                "name the data: `sqlite: app.db` and/or `files: [...]`, or give a `backup_command`"
                    .into(),
            ),
        );
    }
    if dr.backup_command.is_some() != dr.restore_command.is_some() {
        p.at(
            at,
            "`backup_command` and `restore_command` go together".into(),
            Some("a built-in backup is restored built-in; a backup made by a command needs its restore command".into()),
        );
    }
    for path in dr.sqlite.iter().chain(dr.files.iter()) {
        if path.starts_with('/') || path.split('/').any(|part| part == "..") {
            p.at(
                at,
                format!("dr: `{path}` must stay inside the target's directory"),
                None,
            );
        }
    }
    for request in [&dr.markers.value.write, &dr.markers.value.read] {
        if !request.path.starts_with('/') {
            p.at(
                at,
                format!(
                    "dr.markers: path `{}` does not start with `/`",
                    request.path
                ),
                None,
            );
        }
    }
    if dr.markers.value.before == 0 {
        p.at(
            at,
            "dr.markers.before must be at least 1".into(),
            Some("the restore must show a record written before the backup".into()),
        );
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

fn check_review(p: &mut Problems<'_>, spec: &Spec) {
    use crate::review::{GateQuery, MAX_WAIVER_SECS, Reference, Threshold, parse_day_or_time};
    let dashboards = spec.steps.observability.iter().flat_map(|o| &o.dashboards);
    for dashboard in dashboards {
        let covers = &dashboard.covers;
        if covers.value.is_empty() {
            p.at(
                covers.referenced,
                format!("dashboard `{}` covers nothing", dashboard.file),
                Some("e.g. `covers: {slo: [http_requests], canary: [http_request_duration_seconds]}`".into()),
            );
        }
        for (area, metrics) in &covers.value {
            if metrics.is_empty() {
                p.at(
                    covers.referenced,
                    format!(
                        "dashboard `{}`: area `{area}` names no metric",
                        dashboard.file
                    ),
                    Some("list the metric families its panels must read".into()),
                );
            }
        }
    }
    for hint in spec.taxonomy.iter().flat_map(|t| &t.hints) {
        if let Some(step) = &hint.step
            && step.value.replace('_', "-") != crate::steps::SETUP
            && let Err(e) = step.value.parse::<StepName>()
        {
            p.at(
                step.referenced,
                format!("taxonomy hint for step `{}`, which no run has", step.value),
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
                        step.value
                    ),
                    Some(help_for(&e)),
                );
            }
        }
        if profile.only.is_empty() && profile.skip.is_empty() {
            p.found.push(SpecDiagnostic::whole_file(
                p.file,
                format!("profile `{name}` selects every step: give it `only:` or `skip:`"),
                Some("e.g. `profiles: {smoke: {only: [security, canary]}}`".into()),
            ));
        }
    }
    if let Some(prometheus) = &spec.prometheus
        && prometheus.url.is_some() == prometheus.start
    {
        p.found.push(SpecDiagnostic::whole_file(
            p.file,
            "`prometheus` needs exactly one of `url:` (a server that already scrapes the systems) and `start: true`",
            Some("write `prometheus: {start: true}` to have gauntlet start one for the run".into()),
        ));
    }
    if let Some(am) = spec
        .prometheus
        .as_ref()
        .and_then(|p| p.alertmanager.as_ref())
    {
        if am.start == am.receiver.is_some() {
            p.found.push(SpecDiagnostic::whole_file(
                p.file,
                "`prometheus.alertmanager` needs exactly one of `start: true` and `receiver: ADDRESS`",
                Some("`start: true` runs Debian's prometheus-alertmanager for the run, routed to gauntlet".into()),
            ));
        }
        if let Some(receiver) = &am.receiver
            && receiver.parse::<std::net::SocketAddr>().is_err()
        {
            p.found.push(SpecDiagnostic::whole_file(
                p.file,
                format!("`prometheus.alertmanager.receiver` `{receiver}` is not an address"),
                Some("e.g. `127.0.0.1:9095`".into()),
            ));
        }
        if am.start && spec.prometheus.as_ref().is_some_and(|p| !p.start) {
            p.found.push(SpecDiagnostic::whole_file(
                p.file,
                "`prometheus.alertmanager.start` needs the run's own Prometheus (`prometheus.start: true`) to send it alerts",
                Some("with `prometheus.url`, route your Alertmanager to `alertmanager.receiver`".into()),
            ));
        }
    }
    if let Some(gates) = &spec.gates {
        let at = gates.checks.referenced;
        if gates.checks.value.is_empty() {
            p.at(
                at,
                "`gates.checks` is empty".into(),
                Some("list at least one gate, or remove `gates`".into()),
            );
        }
        if gates.warn.ratio() > gates.pass.ratio() {
            p.at(
                at,
                format!(
                    "`gates.warn` ({}) is above `gates.pass` ({})",
                    gates.warn, gates.pass
                ),
                None,
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for gate in &gates.checks.value {
            if !seen.insert(gate.name.as_str()) {
                p.at(
                    at,
                    format!("two gates are named `{}`", gate.name),
                    Some("gate names must be unique".into()),
                );
            }
            if !(gate.weight.is_finite() && gate.weight > 0.0) {
                p.at(
                    at,
                    format!("gate `{}`: the weight must be a positive number", gate.name),
                    None,
                );
            }
            let promql = matches!(gate.query, GateQuery::Promql(_))
                || matches!(gate.baseline, Some(GateQuery::Promql(_)));
            if promql && spec.prometheus.is_none() {
                p.at(
                    gate.pass.referenced,
                    format!("gate `{}` runs PromQL, and the spec has no `prometheus` section", gate.name),
                    Some("add `prometheus: {start: true}` or `prometheus: {url: ...}`, or use a built-in `metric:`".into()),
                );
            }
            for threshold in std::iter::once(&gate.pass).chain(gate.warn.iter()) {
                match Threshold::parse(&threshold.value) {
                    Err(e) => p.at(
                        threshold.referenced,
                        format!("gate `{}`: {e}", gate.name),
                        Some("e.g. `< 300ms`, `<= 1%`, `<= baseline * 1.1`, `<= history + 10%`".into()),
                    ),
                    Ok(Threshold { against: crate::review::Against::Relative { reference: Reference::Baseline, .. }, .. })
                        if gate.baseline.is_none()
                            && !matches!(&gate.query, GateQuery::Metric(m) if m.starts_with("canary.candidate.")) =>
                    {
                        p.at(
                            threshold.referenced,
                            format!("gate `{}` compares with `baseline`, and names no baseline query", gate.name),
                            Some("add `baseline: {promql: ...}` (built-in `canary.candidate.*` metrics have one)".into()),
                        )
                    }
                    Ok(_) => {}
                }
            }
        }
    }
    let Some(readiness) = &spec.readiness else {
        return;
    };
    let longest = readiness.max_waiver.value.as_std().as_secs();
    if longest > MAX_WAIVER_SECS {
        p.at(
            readiness.max_waiver.referenced,
            format!(
                "`max_waiver: {}` is longer than the 14 days any waiver may run",
                readiness.max_waiver.value
            ),
            Some("write `max_waiver: 14d` or less".into()),
        );
    }
    let at = readiness.categories.referenced;
    if readiness.categories.value.is_empty() {
        p.at(
            at,
            "`readiness.categories` is empty".into(),
            Some("list at least one category with items".into()),
        );
    }
    for category in &readiness.categories.value {
        if !(category.weight.is_finite() && category.weight > 0.0) {
            p.at(
                at,
                format!(
                    "category `{}`: the weight must be a positive number",
                    category.name
                ),
                None,
            );
        }
        for item in &category.items {
            let named = format!("item `{}`", item.name);
            if !(item.weight.is_finite() && item.weight > 0.0) {
                p.at(
                    item.owner.referenced,
                    format!("{named}: the weight must be a positive number"),
                    None,
                );
            }
            if item.automated.is_empty() == item.attested.is_none() {
                p.at(
                    item.owner.referenced,
                    format!("{named} needs exactly one of `automated:` (check ids) and `attested:`"),
                    Some("`automated: [dr.rto]` binds it to a check; `attested: {by, evidence, status}` to a person".into()),
                );
            }
            for bound in &item.automated {
                let step = bound.split('.').next().unwrap_or_default();
                if step != crate::steps::SETUP
                    && let Err(e) = step.parse::<StepName>()
                {
                    p.at(
                        item.owner.referenced,
                        format!("{named}: `{bound}` names no step"),
                        Some(match e.close {
                            Some(close) => format!("did you mean `{close}`?"),
                            None => {
                                format!("checks are named STEP.NAME; steps: {}", StepName::list())
                            }
                        }),
                    );
                }
            }
            let Some(waiver) = &item.waiver else { continue };
            if waiver.by.value != item.owner.value {
                p.at(
                    waiver.by.referenced,
                    format!(
                        "{named} is owned by `{}`; `{}` cannot waive it",
                        item.owner.value, waiver.by.value
                    ),
                    Some(format!("only the owner waives: `by: {}`", item.owner.value)),
                );
            }
            if waiver.reason.trim().is_empty() {
                p.at(
                    waiver.by.referenced,
                    format!("{named}: the waiver gives no reason"),
                    None,
                );
            }
            let granted = parse_day_or_time(&waiver.granted.value, false);
            // Lengths count calendar days (a waiver granted on the 1st that expires on the
            // 15th runs 14 days); it lapses at the end of its expiry day.
            let expires = parse_day_or_time(&waiver.expires.value, false);
            if let Err(e) = &granted {
                p.at(waiver.granted.referenced, format!("{named}: {e}"), None);
            }
            if let Err(e) = &expires {
                p.at(waiver.expires.referenced, format!("{named}: {e}"), None);
            }
            if let (Ok(granted), Ok(expires)) = (granted, expires) {
                let days = |secs: u64| secs.div_ceil(86_400);
                if expires < granted {
                    p.at(
                        waiver.expires.referenced,
                        format!("{named}: the waiver expires before it is granted"),
                        None,
                    );
                } else if expires - granted > longest.min(MAX_WAIVER_SECS) {
                    p.at(
                        waiver.expires.referenced,
                        format!(
                            "{named}: the waiver runs {} days; a waiver may run at most {} days",
                            days(expires - granted),
                            days(longest.min(MAX_WAIVER_SECS))
                        ),
                        Some("fix the item, or waive it for a shorter time and waive again when it expires".into()),
                    );
                }
            }
        }
    }
}
