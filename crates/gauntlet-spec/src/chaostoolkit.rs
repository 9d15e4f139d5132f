//! Chaos Toolkit experiments as chaos drills: `gauntlet chaos --import experiment.json` reads
//! an experiment (JSON or YAML) and writes the `steps.chaos` section that does the same, saying
//! precisely what it mapped, how, and what it could not map.
//!
//! The mapping:
//! - the steady-state hypothesis's probes become the drill's `steady_state.probes`: `http`
//!   providers with a status tolerance (a code, a list, a range) or a plain-text body regex,
//!   `process` providers with an exit-code tolerance;
//! - the method's actions become one drill's faults: the Toxiproxy driver's toxics
//!   (`chaostoxi.toxic.actions`, the same toxics gauntlet's proxy answers) become proxy faults
//!   on the system the proxy name names, `disable_proxy` a reset, and `process` or `http`
//!   actions become `action` faults whose undo is the rollback in the same place of the
//!   rollbacks (gauntlet makes every fault with its undo);
//! - the pauses are the drill's duration; the hypothesis strategy its expectation
//!   (`continuously` or `during-method-only`: `hold`; otherwise the steady state must be back
//!   by the end of the method while the faults are still in: `recover within` the duration);
//! - `${NAME}` is filled from the experiment's `configuration` (a value, or an `env` entry's
//!   variable or default).
//!
//! Everything else (Python providers of other drivers, method probes, controls, secrets) is
//! listed as not mapped, with the reason. HTTP providers' URLs keep their path: gauntlet's
//! probes ask the spec's candidate, and the note names the origin the experiment used.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::fault::{Direction, Fault, FaultKind};
use crate::toxiproxy;

/// An experiment turned into a `steps.chaos` section.
#[derive(Debug)]
pub struct Imported {
    /// The section, as YAML (`drills:` with one drill and its own `steady_state`), to go
    /// under `steps.chaos` (or its drill appended to the `drills` there).
    pub yaml: String,
    /// What was mapped and how.
    pub mapped: Vec<String>,
    /// What was not, and why.
    pub not_mapped: Vec<String>,
}

/// Reads an experiment and maps it. `Err`: it is not an experiment gauntlet can read, or
/// nothing in it becomes a fault.
pub fn import(text: &str, yaml: bool) -> Result<Imported, String> {
    let experiment: Value = if yaml {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())?
    } else {
        serde_json::from_str(text)
            .map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()))?
    };
    let Value::Object(experiment) = experiment else {
        return Err(
            "a Chaos Toolkit experiment is an object with `title`, `description` and `method`"
                .into(),
        );
    };
    for field in ["title", "method"] {
        if !experiment.contains_key(field) {
            return Err(format!(
                "not a Chaos Toolkit experiment: `{field}` is missing"
            ));
        }
    }
    let mut importer = Importer {
        config: configuration(experiment.get("configuration")),
        activities: named_activities(&experiment),
        mapped: Vec::new(),
        not_mapped: Vec::new(),
        origins: Vec::new(),
    };
    importer.side_sections(&experiment);
    let probes = importer.hypothesis(&experiment);
    let (faults, duration) = importer.method(&experiment);
    if faults.is_empty() {
        return Err(format!(
            "nothing in the method becomes a gauntlet fault:\n  - {}",
            importer.not_mapped.join("\n  - ")
        ));
    }
    let expect = importer.expectation(&experiment, duration);
    let title = text_of(&experiment, "title");
    let mut drill = json!({
        "name": slug(&title),
        "description": format!("imported from the Chaos Toolkit experiment \"{title}\""),
        "faults": faults,
        "duration": seconds(duration),
        "expect": expect,
    });
    if let Some(text) = experiment.get("description").and_then(Value::as_str) {
        drill["description"] = json!(format!("{text} (imported from Chaos Toolkit)"));
    }
    if probes.is_empty() {
        importer.not_mapped.push(
            "no steady-state probe maps: the drill holds to the step's own `steady_state`".into(),
        );
    } else {
        drill["steady_state"] = json!({ "probes": probes });
    }
    let section = json!({ "drills": [drill] });
    if !importer.origins.is_empty() {
        importer.origins.sort();
        importer.origins.dedup();
        importer.mapped.push(format!(
            "HTTP calls go to the spec's candidate; the experiment sent them to {}",
            importer.origins.join(", ")
        ));
    }
    let yaml = serde_saphyr::to_string(&Ordered(&section)).map_err(|e| e.to_string())?;
    Ok(Imported {
        yaml,
        mapped: importer.mapped,
        not_mapped: importer.not_mapped,
    })
}

struct Importer {
    config: BTreeMap<String, String>,
    activities: BTreeMap<String, Value>,
    mapped: Vec<String>,
    not_mapped: Vec<String>,
    /// The origins (scheme://host:port) of the experiment's HTTP URLs.
    origins: Vec<String>,
}

/// `configuration`: plain values, and `env` entries resolved from the environment now (or
/// their default).
fn configuration(config: Option<&Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, value) in config.and_then(Value::as_object).into_iter().flatten() {
        let resolved = match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Object(entry) if entry.get("type").and_then(Value::as_str) == Some("env") => {
                entry
                    .get("key")
                    .and_then(Value::as_str)
                    .and_then(|k| std::env::var(k).ok())
                    .or_else(|| entry.get("default").map(plain))
            }
            _ => None,
        };
        if let Some(resolved) = resolved {
            out.insert(key.clone(), resolved);
        }
    }
    out
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every named activity, for `ref`s.
fn named_activities(experiment: &Map<String, Value>) -> BTreeMap<String, Value> {
    let hypothesis = experiment
        .get("steady-state-hypothesis")
        .and_then(|h| h.get("probes"));
    [
        experiment.get("method"),
        hypothesis,
        experiment.get("rollbacks"),
    ]
    .into_iter()
    .flatten()
    .filter_map(Value::as_array)
    .flatten()
    .filter_map(|a| Some((a.get("name")?.as_str()?.to_string(), a.clone())))
    .collect()
}

fn text_of(object: &Map<String, Value>, key: &str) -> String {
    object.get(key).map(plain).unwrap_or_default()
}

impl Importer {
    /// Fills `${NAME}` from the configuration; an unknown name stays as it is.
    fn fill(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (key, value) in &self.config {
            out = out.replace(&format!("${{{key}}}"), value);
        }
        out
    }

    /// The activity itself, following a `ref`.
    fn resolve<'a>(&'a self, activity: &'a Value) -> Option<&'a Value> {
        match activity.get("ref").and_then(Value::as_str) {
            Some(name) => self.activities.get(name),
            None => Some(activity),
        }
    }

    fn side_sections(&mut self, experiment: &Map<String, Value>) {
        for (key, why) in [
            (
                "controls",
                "controls hook into Chaos Toolkit's own run; gauntlet's run has its own timeline and report",
            ),
            (
                "secrets",
                "secrets are not copied into a spec; give the spec's `env` what the calls need",
            ),
            ("extensions", "extensions are Chaos Toolkit plugins' data"),
        ] {
            if experiment.contains_key(key) {
                self.not_mapped.push(format!("`{key}`: {why}"));
            }
        }
    }

    /// The steady-state probes that map.
    fn hypothesis(&mut self, experiment: &Map<String, Value>) -> Vec<Value> {
        let probes = experiment
            .get("steady-state-hypothesis")
            .and_then(|h| h.get("probes"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut out = Vec::new();
        for (i, probe) in probes.iter().enumerate() {
            let Some(probe) = self.resolve(probe).cloned() else {
                self.not_mapped.push(format!(
                    "steady-state probe {}: a `ref` to no activity",
                    i + 1
                ));
                continue;
            };
            let name = probe
                .get("name")
                .map(plain)
                .unwrap_or_else(|| format!("probe-{}", i + 1));
            match self.probe(&probe) {
                Ok((mut mapped, how)) => {
                    self.mapped
                        .push(format!("steady-state probe `{name}`: {how}"));
                    mapped.insert("name".into(), json!(slug(&name)));
                    out.push(Value::Object(mapped));
                }
                Err(why) => self
                    .not_mapped
                    .push(format!("steady-state probe `{name}`: {why}")),
            }
        }
        out
    }

    /// A probe as a gauntlet probe (`http:` or `command:`), and how it was read.
    fn probe(&mut self, probe: &Value) -> Result<(Map<String, Value>, String), String> {
        let provider = probe.get("provider").cloned().unwrap_or(Value::Null);
        let tolerance = probe.get("tolerance").cloned().unwrap_or(Value::Null);
        match provider.get("type").and_then(Value::as_str) {
            Some("http") => {
                let (mut http, origin) = self.http(&provider)?;
                let (key, value, how) = http_tolerance(&tolerance, &provider)?;
                http.insert(key.into(), value);
                self.origins.push(origin);
                let mut out = Map::new();
                out.insert("http".into(), Value::Object(http));
                Ok((out, format!("an HTTP probe of the candidate, {how}")))
            }
            Some("process") => {
                let exit = match &tolerance {
                    Value::Number(n) if n.as_i64().is_some() => n.as_i64().unwrap_or(0),
                    Value::Null => 0,
                    other => {
                        return Err(format!(
                            "a process probe's tolerance {other} is not an exit code (gauntlet's command probes judge the exit code)"
                        ));
                    }
                };
                let mut command = Map::new();
                command.insert("run".into(), json!(self.command(&provider)?));
                command.insert("exit".into(), json!(exit));
                if let Some(timeout) = provider.get("timeout").and_then(Value::as_f64) {
                    command.insert("timeout".into(), json!(seconds(secs(timeout))));
                }
                let mut out = Map::new();
                out.insert("command".into(), Value::Object(command));
                Ok((out, format!("a command probe, exit code {exit}")))
            }
            Some("python") => Err(python_reason(&provider)),
            other => Err(format!(
                "a provider of type {} is not one Chaos Toolkit runs",
                plain(&other.map_or(Value::Null, |o| json!(o)))
            )),
        }
    }

    /// An HTTP provider's request as gauntlet's `http:` fields (to the candidate), and the
    /// origin it was sent to.
    fn http(&self, provider: &Value) -> Result<(Map<String, Value>, String), String> {
        let url = self.fill(&provider.get("url").map(plain).unwrap_or_default());
        let (origin, path) = split_url(&url)?;
        let mut http = Map::new();
        let method = provider
            .get("method")
            .map(plain)
            .unwrap_or_else(|| "GET".into());
        http.insert("method".into(), json!(method.to_ascii_uppercase()));
        http.insert("path".into(), json!(path));
        if let Some(headers) = provider.get("headers").and_then(Value::as_object) {
            let headers: Map<String, Value> = headers
                .iter()
                .map(|(k, v)| (k.clone(), json!(self.fill(&plain(v)))))
                .collect();
            http.insert("headers".into(), Value::Object(headers));
        }
        match provider.get("arguments") {
            None | Some(Value::Null) => {}
            Some(Value::String(body)) => {
                http.insert("body".into(), json!(self.fill(body)));
            }
            Some(other) => {
                http.insert("body".into(), json!(self.fill(&other.to_string())));
            }
        }
        if let Some(timeout) = provider.get("timeout").and_then(timeout_seconds) {
            http.insert("within".into(), json!(seconds(secs(timeout))));
        }
        Ok((http, origin))
    }

    /// A process provider's command line: its path, then its arguments (a list, or a string
    /// split on white space).
    fn command(&self, provider: &Value) -> Result<Vec<String>, String> {
        let path = provider.get("path").map(plain).unwrap_or_default();
        if path.is_empty() {
            return Err("a process provider without a `path`".into());
        }
        let mut run = vec![self.fill(&path)];
        match provider.get("arguments") {
            None | Some(Value::Null) => {}
            Some(Value::Array(args)) => run.extend(args.iter().map(|a| self.fill(&plain(a)))),
            Some(Value::String(args)) => {
                if args.contains(['"', '\'', '\\']) {
                    return Err(format!(
                        "its arguments `{args}` are quoted: give them as a list so they mean one thing"
                    ));
                }
                run.extend(args.split_whitespace().map(|a| self.fill(a)));
            }
            Some(other) => {
                return Err(format!(
                    "its arguments {other} are neither a list nor a string"
                ));
            }
        }
        Ok(run)
    }

    /// The method's actions as faults, and how long they stay in (the pauses).
    fn method(&mut self, experiment: &Map<String, Value>) -> (Vec<Value>, Duration) {
        let method = experiment
            .get("method")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let rollbacks = experiment
            .get("rollbacks")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let calls = |list: &[Value], this: &Self| -> Vec<Value> {
            list.iter()
                .filter_map(|a| this.resolve(a).cloned())
                .filter(|a| a.get("type").and_then(Value::as_str) == Some("action"))
                .filter(|a| matches!(provider_type(a), Some("process" | "http")))
                .collect()
        };
        let (actions, undos) = (calls(&method, self), calls(&rollbacks, self));
        let paired = actions.len() == undos.len();
        let mut faults = Vec::new();
        let mut pause = Duration::ZERO;
        let mut call_index = 0;
        for activity in &method {
            let Some(activity) = self.resolve(activity).cloned() else {
                self.not_mapped.push("a method `ref` to no activity".into());
                continue;
            };
            pause += pauses(&activity);
            let name = activity.get("name").map(plain).unwrap_or_default();
            if activity.get("type").and_then(Value::as_str) == Some("probe") {
                self.not_mapped.push(format!(
                    "method probe `{name}`: it gathers data; gauntlet's drill probes the steady state every interval while the faults are in"
                ));
                continue;
            }
            let fault = match provider_type(&activity) {
                Some("process" | "http") => {
                    let undo = paired.then(|| undos[call_index].clone());
                    call_index += 1;
                    self.action(&activity, undo.as_ref())
                }
                Some("python") => self.python(&activity),
                _ => Err("its provider is not one gauntlet knows".into()),
            };
            match fault {
                Ok(Some((fault, how))) => {
                    self.mapped.push(format!("action `{name}`: {how}"));
                    faults.push(fault);
                }
                Ok(None) => {}
                Err(why) => self.not_mapped.push(format!("action `{name}`: {why}")),
            }
        }
        self.rollbacks(&rollbacks, paired);
        if pause.is_zero() {
            pause = Duration::from_secs(10);
            self.mapped.push("the method pauses nowhere: the faults stay in for 10s (set the drill's `duration`)".into());
        } else {
            self.mapped.push(format!(
                "the method's pauses: the faults stay in for {}",
                seconds(pause)
            ));
        }
        (faults, pause)
    }

    /// Rollbacks that are not an action's undo: covered (the Toxiproxy driver's) or not.
    fn rollbacks(&mut self, rollbacks: &[Value], paired: bool) {
        for rollback in rollbacks {
            let Some(rollback) = self.resolve(rollback).cloned() else {
                continue;
            };
            let name = rollback.get("name").map(plain).unwrap_or_default();
            match provider_type(&rollback) {
                Some("process" | "http") if paired => {}
                Some("process" | "http") => self.not_mapped.push(format!(
                    "rollback `{name}`: the method's process and HTTP actions and the rollbacks are not as many, so which undoes which is unknown"
                )),
                _ if module(&rollback).starts_with("chaostoxi.") => self.mapped.push(format!(
                    "rollback `{name}`: gauntlet takes out its own proxy faults and proxies"
                )),
                _ => self.not_mapped.push(format!("rollback `{name}`: {}", python_reason(rollback.get("provider").unwrap_or(&Value::Null)))),
            }
        }
    }

    /// A process or HTTP action with its undo (the rollback in its place) as an `action`
    /// fault.
    fn action(
        &mut self,
        activity: &Value,
        undo: Option<&Value>,
    ) -> Result<Option<(Value, String)>, String> {
        let undo = undo.ok_or(
            "gauntlet makes every fault with its undo, and the method's process and HTTP actions and the rollbacks are not as many",
        )?;
        let apply = self.call(activity)?;
        let undo_call = self.call(undo)?;
        let undo_name = undo.get("name").map(plain).unwrap_or_default();
        Ok(Some((
            json!({"kind": "action", "apply": apply, "undo": undo_call}),
            format!("an `action` fault, undone by rollback `{undo_name}`"),
        )))
    }

    /// A process or HTTP provider as a gauntlet call.
    fn call(&mut self, activity: &Value) -> Result<Value, String> {
        let provider = activity.get("provider").cloned().unwrap_or(Value::Null);
        let timeout = provider.get("timeout").and_then(timeout_seconds);
        let mut call = Map::new();
        if provider_type(activity) == Some("process") {
            call.insert("command".into(), json!(self.command(&provider)?));
        } else {
            let (mut http, origin) = self.http(&provider)?;
            http.remove("within");
            http.insert("target".into(), json!("candidate"));
            self.origins.push(origin);
            call.insert("http".into(), Value::Object(http));
        }
        if let Some(timeout) = timeout {
            call.insert("timeout".into(), json!(seconds(secs(timeout))));
        }
        Ok(Value::Object(call))
    }

    /// A Python action: the Toxiproxy driver's, or not mapped. `Ok(None)`: covered by
    /// gauntlet (its proxies exist and undo themselves).
    fn python(&mut self, activity: &Value) -> Result<Option<(Value, String)>, String> {
        let provider = activity.get("provider").cloned().unwrap_or(Value::Null);
        let module = module(activity);
        let func = provider.get("func").map(plain).unwrap_or_default();
        let args = provider
            .get("arguments")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let arg = |key: &str| args.get(key).map(|v| self.fill(&plain(v)));
        match (module.as_str(), func.as_str()) {
            (
                "chaostoxi.proxy.actions",
                "create_proxy" | "delete_proxy" | "enable_proxy" | "reset" | "modify_proxy",
            ) => {
                self.mapped.push(format!(
                    "action `{}` ({func}): gauntlet puts its own proxy in front of each system and takes out its faults itself",
                    activity.get("name").map(plain).unwrap_or_default()
                ));
                Ok(None)
            }
            ("chaostoxi.proxy.actions", "disable_proxy") => {
                let target = arg("proxy_name").ok_or("disable_proxy without `proxy_name`")?;
                Ok(Some((
                    json!({"kind": "reset", "target": target}),
                    format!(
                        "a `reset` on `{target}` (Toxiproxy refuses connections to a disabled proxy; gauntlet resets them)"
                    ),
                )))
            }
            ("chaostoxi.toxic.actions", func) => self.toxic(func, &args).map(Some),
            _ => Err(python_reason(&provider)),
        }
    }

    /// One of the Toxiproxy driver's toxic actions as a proxy fault.
    fn toxic(&self, func: &str, args: &Map<String, Value>) -> Result<(Value, String), String> {
        let number = |key: &str| {
            args.get(key)
                .map(|v| json!(self.fill(&plain(v)).parse::<u64>().unwrap_or(u64::MAX)))
        };
        let (kind, attributes): (&str, Vec<(&str, Option<Value>)>) = match func {
            "create_latency_toxic" => ("latency", vec![("latency", number("latency")), ("jitter", number("jitter"))]),
            "create_bandwith_degradation_toxic" => ("bandwidth", vec![("rate", number("rate"))]),
            "create_slow_connection_close_toxic" => ("slow_close", vec![("delay", number("delay"))]),
            "create_timeout_toxic" => ("timeout", vec![("timeout", number("timeout"))]),
            "create_slicer_toxic" => ("slicer", vec![("average_size", number("average_size")), ("size_variation", number("size_variation")), ("delay", number("delay"))]),
            "create_limiter_toxic" => ("limit_data", vec![("bytes", number("bytes_limit"))]),
            "create_toxic" => ("", Vec::new()),
            "delete_toxic" => return Err("deleting a toxic in the method: gauntlet takes each fault out at the end of the drill".into()),
            other => return Err(format!("chaostoxi.toxic.actions.{other} is not a Toxiproxy driver action gauntlet knows")),
        };
        let (kind, stream, toxicity, attributes) = if kind.is_empty() {
            let kind = args.get("toxic_type").map(plain).unwrap_or_default();
            let stream = match args.get("stream").map(plain).as_deref() {
                Some("upstream") => Direction::Upstream,
                Some("downstream") | None => Direction::Downstream,
                Some(other) => {
                    return Err(format!(
                        "stream `{other}` is neither upstream nor downstream"
                    ));
                }
            };
            let toxicity = args.get("toxicity").and_then(Value::as_f64).unwrap_or(1.0);
            let attributes = args
                .get("attributes")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            (kind, stream, toxicity, attributes)
        } else {
            let attributes = attributes
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_string(), v?)))
                .collect();
            (kind.to_string(), Direction::Downstream, 1.0, attributes)
        };
        let fault = toxiproxy::toxic_fault(&kind, stream, toxicity, &attributes)?;
        let target = args.get("for_proxy").map(plain).ok_or("no `for_proxy`")?;
        Ok((
            fault_yaml(&self.fill(&target), &fault),
            format!(
                "a `{}` fault on `{target}` (the system of that name in your spec: the candidate or a dependency)",
                fault.kind.name()
            ),
        ))
    }

    /// The drill's expectation from the hypothesis strategy.
    fn expectation(&mut self, experiment: &Map<String, Value>, duration: Duration) -> String {
        let strategy = experiment
            .get("runtime")
            .and_then(|r| r.get("hypothesis"))
            .and_then(|h| h.get("strategy"))
            .map(plain)
            .unwrap_or_else(|| "default".into());
        match strategy.as_str() {
            "continuously" | "during-method-only" => {
                self.mapped.push(format!("hypothesis strategy `{strategy}`: `expect: hold` (the steady state holds all the while the faults are in)"));
                "hold".into()
            }
            other => {
                self.mapped.push(format!(
                    "hypothesis strategy `{other}`: the steady state must be back by the end of the method, faults still in: `expect: recover within {}`",
                    seconds(duration)
                ));
                format!("recover within {}", seconds(duration))
            }
        }
    }
}

fn provider_type(activity: &Value) -> Option<&str> {
    activity.get("provider")?.get("type")?.as_str()
}

fn module(activity: &Value) -> String {
    activity
        .get("provider")
        .and_then(|p| p.get("module"))
        .map(plain)
        .unwrap_or_default()
}

fn python_reason(provider: &Value) -> String {
    format!(
        "a Python provider ({}.{}) runs Chaos Toolkit driver code gauntlet does not have; express it as a gauntlet fault, a command or an HTTP call",
        provider.get("module").map(plain).unwrap_or_default(),
        provider.get("func").map(plain).unwrap_or_default()
    )
}

/// The pauses before and after an activity.
fn pauses(activity: &Value) -> Duration {
    let pauses = activity.get("pauses");
    ["before", "after"]
        .iter()
        .filter_map(|k| pauses?.get(*k)?.as_f64())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(secs)
        .sum()
}

/// A provider's timeout: seconds, or `[connect, read]`.
fn timeout_seconds(timeout: &Value) -> Option<f64> {
    match timeout {
        Value::Array(parts) => parts.iter().filter_map(Value::as_f64).reduce(f64::max),
        other => other.as_f64(),
    }
    .filter(|s| s.is_finite() && *s > 0.0)
}

fn secs(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds.clamp(0.0, 86_400.0))
}

/// A duration as the spec writes it: `1.5s`, `300ms`.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        let ms = d.as_secs_f64() * 1000.0;
        format!("{}ms", (ms * 1000.0).round() / 1000.0)
    }
}

/// `http://host:8080/health?x=1` → (`http://host:8080`, `/health?x=1`).
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("`{url}` is not an http(s) URL (is a `${{...}}` left unset?)"))?;
    let scheme = &url[..url.len() - rest.len()];
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((format!("{scheme}{authority}"), path.to_string()))
}

/// An HTTP tolerance as a field of gauntlet's `http:`, and how it was read.
fn http_tolerance(
    tolerance: &Value,
    provider: &Value,
) -> Result<(&'static str, Value, String), String> {
    let status = |codes: Vec<u64>| {
        let text = codes
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        Ok(("status", json!(codes), format!("status {text}")))
    };
    match tolerance {
        Value::Number(n) if n.as_u64().is_some_and(|c| (100..=599).contains(&c)) => {
            status(vec![n.as_u64().unwrap_or(200)])
        }
        Value::Array(codes)
            if !codes.is_empty()
                && codes
                    .iter()
                    .all(|c| c.as_u64().is_some_and(|c| (100..=599).contains(&c))) =>
        {
            status(codes.iter().filter_map(Value::as_u64).collect())
        }
        Value::Null => match provider.get("expected_status").and_then(Value::as_u64) {
            Some(code) => status(vec![code]),
            None => Err("it has no tolerance: nothing to hold it to".into()),
        },
        Value::Object(t) => match t.get("type").and_then(Value::as_str) {
            Some("range")
                if t.get("target")
                    .and_then(Value::as_str)
                    .is_none_or(|x| x == "status") =>
            {
                let bounds: Vec<u64> = t
                    .get("range")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_u64)
                    .collect();
                match bounds.as_slice() {
                    [low, high]
                        if low <= high
                            && (100..=599).contains(low)
                            && (100..=599).contains(high) =>
                    {
                        status((*low..=*high).collect())
                    }
                    _ => Err(format!(
                        "the range {} is not two HTTP statuses",
                        t.get("range").cloned().unwrap_or_default()
                    )),
                }
            }
            Some("regex") if t.get("target").and_then(Value::as_str) == Some("body") => {
                let pattern = t.get("pattern").map(plain).unwrap_or_default();
                if pattern.is_empty() || pattern.contains(|c: char| "\\.^$|?*+()[]{}".contains(c)) {
                    return Err(format!(
                        "the body regex `{pattern}` is more than plain text; gauntlet's probes check that the body contains a text"
                    ));
                }
                Ok((
                    "body_contains",
                    json!(pattern),
                    format!("the body contains `{pattern}`"),
                ))
            }
            other => Err(format!(
                "a `{}` tolerance has no gauntlet equivalent (status codes, a status range, or a plain-text body regex do)",
                other.unwrap_or("untyped")
            )),
        },
        other => Err(format!("the tolerance {other} is not an HTTP status")),
    }
}

/// A proxy fault as the spec writes it.
fn fault_yaml(target: &str, fault: &Fault) -> Value {
    let ms = |d: &Duration| seconds(*d);
    let mut out = json!({"kind": fault.kind.name(), "target": target});
    let fields: Vec<(&str, Value)> = match &fault.kind {
        FaultKind::Latency { latency, jitter } => vec![
            ("latency", json!(ms(latency))),
            ("jitter", json!(ms(jitter))),
        ],
        FaultKind::Bandwidth { bytes_per_second } => {
            vec![("rate", json!(format!("{bytes_per_second}B")))]
        }
        FaultKind::SlowClose { delay } => vec![("delay", json!(ms(delay)))],
        FaultKind::Timeout { after } => vec![("after", json!(ms(after)))],
        FaultKind::Reset { after } if !after.is_zero() => vec![("after", json!(ms(after)))],
        FaultKind::Slicer {
            average_size,
            size_variation,
            delay,
        } => vec![
            ("size", json!(format!("{average_size}B"))),
            ("variation", json!(format!("{size_variation}B"))),
            ("delay", json!(ms(delay))),
        ],
        FaultKind::LimitData { bytes } => vec![("bytes", json!(bytes))],
        _ => Vec::new(),
    };
    for (key, value) in fields {
        out[key] = value;
    }
    if fault.toxicity < 1.0 {
        out["toxicity"] = json!(format!("{}%", (fault.toxicity * 1000.0).round() / 10.0));
    }
    if fault.direction != Direction::Downstream && fault.kind.kind().is_proxy() {
        out["direction"] = json!("upstream");
    }
    out
}

/// A drill name from a title: lower case, words joined by `-`.
fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out: String = out.trim_end_matches('-').chars().take(48).collect();
    if out.is_empty() {
        "imported".into()
    } else {
        out.trim_end_matches('-').to_string()
    }
}

/// A JSON value written with the keys a reader looks for first (name, kind, target...) ahead
/// of the rest.
struct Ordered<'a>(&'a Value);

impl serde::Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        const FIRST: [&str; 11] = [
            "name",
            "description",
            "kind",
            "target",
            "steady_state",
            "faults",
            "duration",
            "expect",
            "method",
            "path",
            "run",
        ];
        match self.0 {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort_by_key(|k| {
                    (FIRST.iter().position(|f| f == k).unwrap_or(FIRST.len()), *k)
                });
                let mut out = serializer.serialize_map(Some(keys.len()))?;
                for key in keys {
                    out.serialize_entry(key, &Ordered(&map[key]))?;
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&Ordered(item))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec around the imported drill, with a dependency the toxics can name.
    fn spec_with(yaml: &str) -> String {
        let drills: String = yaml.lines().skip(1).map(|l| format!("    {l}\n")).collect();
        format!(
            "schema_version: 1
service: {{name: s, version: '1'}}
dependencies:
  db: {{url: 'http://127.0.0.1:9'}}
targets:
  candidate: {{url: 'http://127.0.0.1:8'}}
traffic: {{rate: 1/s, requests: [{{path: /}}]}}
steps:
  chaos:
    steady_state: {{probes: [{{name: up, http: {{path: /}}}}]}}
    drills:
{drills}"
        )
    }

    fn experiment(method: Value, rollbacks: Value, probes: Value) -> String {
        json!({
            "title": "Title: with punctuation!",
            "description": "d",
            "steady-state-hypothesis": {"title": "t", "probes": probes},
            "method": method,
            "rollbacks": rollbacks,
        })
        .to_string()
    }

    fn toxic(func: &str, args: Value) -> Value {
        json!({"type": "action", "name": func, "provider": {"type": "python", "module": "chaostoxi.toxic.actions", "func": func, "arguments": args}})
    }

    #[test]
    fn the_drill_it_writes_is_a_valid_drill() {
        let text = experiment(
            json!([
                toxic("create_toxic", json!({"for_proxy": "db", "toxic_name": "x", "toxic_type": "limit_data", "stream": "upstream", "toxicity": 0.5, "attributes": {"bytes": 10}})),
                toxic("create_slicer_toxic", json!({"for_proxy": "db", "toxic_name": "y", "average_size": 8, "size_variation": 2, "delay": 500})),
                {"type": "action", "name": "scale", "provider": {"type": "http", "url": "http://h:1/admin?x=1", "method": "post", "arguments": {"replicas": 0}}, "pauses": {"before": 1, "after": 1.5}},
            ]),
            json!([{"type": "action", "name": "unscale", "provider": {"type": "http", "url": "http://h:1/admin", "method": "POST", "arguments": "{\"replicas\": 1}"}}]),
            json!([
                {"type": "probe", "name": "up", "tolerance": {"type": "regex", "pattern": "ok", "target": "body"}, "provider": {"type": "http", "url": "http://h:1/health"}},
                {"type": "probe", "name": "script", "tolerance": 0, "provider": {"type": "process", "path": "true", "arguments": "-x y"}},
                {"type": "probe", "name": "json", "tolerance": {"type": "jsonpath", "path": "$.a"}, "provider": {"type": "http", "url": "http://h:1/"}},
            ]),
        );
        let imported = import(&text, false).unwrap();
        crate::load_str("spec.yaml", &spec_with(&imported.yaml))
            .unwrap_or_else(|e| panic!("{e:?}\n{}", imported.yaml));
        assert!(
            imported.yaml.contains("name: title-with-punctuation"),
            "{}",
            imported.yaml
        );
        assert!(
            imported.yaml.contains("duration: 2500ms"),
            "{}",
            imported.yaml
        );
        assert!(imported.yaml.contains("toxicity: 50%"), "{}", imported.yaml);
        assert!(
            imported.yaml.contains("body_contains: ok"),
            "{}",
            imported.yaml
        );
        let not = imported.not_mapped.join("\n");
        assert!(not.contains("`json`: a `jsonpath` tolerance"), "{not}");
        let mapped = imported.mapped.join("\n");
        assert!(mapped.contains("undone by rollback `unscale`"), "{mapped}");
        assert!(mapped.contains("http://h:1"), "{mapped}");
    }

    #[test]
    fn what_it_cannot_read_or_map_is_said() {
        let e = import("{\"title\": 1,\n  \"method\": [}", false).unwrap_err();
        assert!(e.starts_with("line 2, column"), "{e}");
        assert!(
            import("{}", false)
                .unwrap_err()
                .contains("`title` is missing")
        );
        assert!(import("[]", false).unwrap_err().contains("is an object"));
        let only_python = experiment(
            json!([{"type": "action", "name": "kill-pod", "provider": {"type": "python", "module": "chaosk8s.pod.actions", "func": "terminate_pods"}}]),
            json!([]),
            json!([]),
        );
        let e = import(&only_python, false).unwrap_err();
        assert!(e.contains("chaosk8s.pod.actions.terminate_pods"), "{e}");
        let unpaired = experiment(
            json!([{"type": "action", "name": "a", "provider": {"type": "process", "path": "touch", "arguments": ["f"]}}]),
            json!([]),
            json!([]),
        );
        let e = import(&unpaired, false).unwrap_err();
        assert!(
            e.contains("gauntlet makes every fault with its undo"),
            "{e}"
        );
        let yaml = "title: t\nmethod:\n  - {type: action, name: d, provider: {type: python, module: chaostoxi.proxy.actions, func: disable_proxy, arguments: {proxy_name: db}}}\n";
        let imported = import(yaml, true).unwrap();
        assert!(imported.yaml.contains("kind: reset"), "{}", imported.yaml);
    }

    proptest::proptest! {
        /// Any JSON at all: an import or a reason, never a panic; an import is a valid drill.
        #[test]
        fn any_experiment_is_imported_or_refused(
            funcs in proptest::collection::vec(proptest::sample::select(vec![
                "create_latency_toxic", "create_bandwith_degradation_toxic", "create_timeout_toxic",
                "create_slow_connection_close_toxic", "create_slicer_toxic", "create_limiter_toxic", "create_toxic", "nope",
            ]), 0..4),
            numbers in proptest::collection::vec(proptest::prop_oneof![0i64..2_000_000, proptest::prelude::any::<i64>()], 8),
            tolerance in proptest::sample::select(vec![json!(200), json!([200, 503]), json!(true), json!({"type": "range", "range": [200, 204]}), json!(null), json!(-1)]),
        ) {
            let method: Vec<Value> = funcs.iter().enumerate().map(|(i, f)| toxic(f, json!({
                "for_proxy": "db", "latency": numbers[i], "jitter": numbers[i + 1], "rate": numbers[i],
                "timeout": numbers[i], "delay": numbers[i + 2], "average_size": numbers[i + 3],
                "size_variation": numbers[i + 4], "bytes_limit": numbers[i], "toxic_type": f,
            }))).collect();
            let probes = json!([{"type": "probe", "name": "p", "tolerance": tolerance, "provider": {"type": "http", "url": "http://h/x"}}]);
            if let Ok(imported) = import(&experiment(json!(method), json!([]), probes), false) {
                // What is out of a drill's bounds (a count, or a duration past ten years) is
                // refused at its line, as any spec's is.
                let spec = spec_with(&imported.yaml);
                if let Err(errors) = crate::load_str("spec.yaml", &spec) {
                    for e in &errors.0 {
                        let bound = e.message.contains("more than")
                            || e.message.contains("longer than ten years");
                        proptest::prop_assert!(bound, "{e:?}\n{spec}");
                    }
                }
            }
        }
    }
}
