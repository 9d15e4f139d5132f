//! The environment of every process gauntlet starts, built explicitly, never inherited whole:
//! the basics a program needs (PATH, HOME, locale, time zone, temp dir, user), the variables
//! the spec passes by name (`pass_env`, top level and per system), the values it sets (`env`),
//! and the run's marker. Gauntlet's own secrets (its signing key and password, its Prometheus
//! credentials) are never among them, whatever the spec says: the system under test must not
//! be able to read them in `/proc/PID/environ`.
//!
//! The marker (`GAUNTLET_RUN=ID`) is set before the program runs and is inherited by what it
//! starts in turn, so a run's processes can be found whatever became of the journal: a run
//! killed between starting a process and recording it leaves nothing `gauntlet recover` cannot
//! stop (see [`crate::journal::marked_processes`]).

use std::collections::BTreeMap;
use std::ffi::OsString;

use gauntlet_spec::SECRET_ENV;

/// The variable every process a run starts carries, set to the run's id.
pub const RUN_MARKER: &str = "GAUNTLET_RUN";

/// What any program expects to find; nothing secret lives here by convention.
const BASICS: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR",
];

/// How one run's processes get their environment.
#[derive(Debug, Clone, Default)]
pub struct ChildEnv {
    run: String,
    /// The spec's top-level `pass_env`.
    pass: Vec<String>,
    /// Values a caller gave for passed variables, over gauntlet's own environment.
    given: BTreeMap<String, String>,
}

impl ChildEnv {
    pub fn new(run: &str, plan: &gauntlet_spec::Plan) -> Self {
        Self {
            run: run.to_string(),
            pass: plan.pass_env.clone(),
            given: BTreeMap::new(),
        }
    }

    /// Outside any run (an undo `gauntlet recover` makes): the basics and these variables
    /// by name, and no run marker.
    pub fn passing(pass: &[String]) -> Self {
        Self {
            pass: pass.to_vec(),
            ..Self::default()
        }
    }

    /// Passed variables take these values instead of gauntlet's own (a server run's
    /// request); names the spec does not pass still reach nothing.
    pub fn with_given(mut self, given: &BTreeMap<String, String>) -> Self {
        self.given = given.clone();
        self
    }

    /// The environment for a child: the basics, the spec's `pass_env` and `extra` by name,
    /// then `set`, then the run's marker.
    pub fn vars<'a>(
        &'a self,
        extra: impl IntoIterator<Item = &'a str>,
        set: &BTreeMap<String, String>,
    ) -> Vec<(OsString, OsString)> {
        let pass = self.pass.iter().map(String::as_str).chain(extra);
        let mut own: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
        own.extend(self.given.iter().map(|(k, v)| (k.into(), v.into())));
        let mut vars = build_from(own, pass, set);
        vars.retain(|(name, _)| name != RUN_MARKER);
        if !self.run.is_empty() {
            vars.push((RUN_MARKER.into(), self.run.clone().into()));
        }
        vars
    }

    /// A command with nothing of gauntlet's environment but what [`ChildEnv::vars`] gives.
    pub fn command(&self, program: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(program);
        cmd.env_clear().envs(self.vars([], &BTreeMap::new()));
        cmd
    }
}

/// The environment built from `own`: basics, then `pass` by name, then `set`. A secret name
/// is dropped even if asked for (validation refuses it in a spec; this is the last guard).
fn build_from<'a>(
    own: BTreeMap<OsString, OsString>,
    pass: impl IntoIterator<Item = &'a str>,
    set: &BTreeMap<String, String>,
) -> Vec<(OsString, OsString)> {
    let mut out: BTreeMap<OsString, OsString> = BTreeMap::new();
    for (name, value) in &own {
        let text = name.to_string_lossy();
        if BASICS.contains(&text.as_ref()) || text.starts_with("LC_") {
            out.insert(name.clone(), value.clone());
        }
    }
    for name in pass {
        if let Some(value) = own.get(std::ffi::OsStr::new(name)) {
            out.insert(name.into(), value.clone());
        }
    }
    for (name, value) in set {
        out.insert(name.into(), value.into());
    }
    out.retain(|name, _| !SECRET_ENV.contains(&name.to_string_lossy().as_ref()));
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_a_child_and_only_what_is_named_does() {
        let own: BTreeMap<OsString, OsString> = [
            ("PATH", "/usr/bin"),
            ("LC_TIME", "C"),
            ("GAUNTLET_SIGNING_KEY", "secret-key"),
            ("GAUNTLET_PROMETHEUS_TOKEN", "secret-token"),
            ("CHILD_ENV_TEST_PASSED", "yes"),
            ("CHILD_ENV_TEST_NOT_PASSED", "no"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        let set = BTreeMap::from([("MODE".to_string(), "test".to_string())]);
        let env = build_from(own, ["CHILD_ENV_TEST_PASSED", "GAUNTLET_SIGNING_KEY"], &set);
        let names: Vec<String> = env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"CHILD_ENV_TEST_PASSED".to_string()));
        assert!(names.contains(&"MODE".to_string()));
        assert!(names.contains(&"PATH".to_string()) && names.contains(&"LC_TIME".to_string()));
        for absent in [
            "CHILD_ENV_TEST_NOT_PASSED",
            "GAUNTLET_SIGNING_KEY",
            "GAUNTLET_PROMETHEUS_TOKEN",
        ] {
            assert!(
                !names.contains(&absent.to_string()),
                "{absent} in {names:?}"
            );
        }
    }

    #[test]
    fn given_values_reach_only_what_the_spec_passes_and_never_a_secret() {
        let env = ChildEnv {
            run: "r".into(),
            pass: vec!["KNOBS".into(), SECRET_ENV[0].into()],
            given: BTreeMap::new(),
        }
        .with_given(&BTreeMap::from([
            ("KNOBS".to_string(), "errors=5%".to_string()),
            ("UNPASSED".to_string(), "x".to_string()),
            (SECRET_ENV[0].to_string(), "stolen".to_string()),
        ]));
        let vars: BTreeMap<OsString, OsString> =
            env.vars([], &BTreeMap::new()).into_iter().collect();
        assert_eq!(
            vars.get(&OsString::from("KNOBS")),
            Some(&"errors=5%".into())
        );
        assert!(!vars.contains_key(&OsString::from("UNPASSED")));
        assert!(!vars.contains_key(&OsString::from(SECRET_ENV[0])));
    }

    #[test]
    fn every_child_carries_its_run_and_a_spec_cannot_change_it() {
        let env = ChildEnv {
            run: "20261130T000000Z-abcd".into(),
            pass: Vec::new(),
            given: BTreeMap::new(),
        };
        let set = BTreeMap::from([(RUN_MARKER.to_string(), "another".to_string())]);
        let vars = env.vars([], &set);
        let marks: Vec<&OsString> = vars
            .iter()
            .filter(|(k, _)| k == RUN_MARKER)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(marks, [&OsString::from("20261130T000000Z-abcd")]);
    }
}
