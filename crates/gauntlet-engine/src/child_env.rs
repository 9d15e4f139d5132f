//! The environment of every process gauntlet starts, built explicitly, never inherited whole:
//! the basics a program needs (PATH, HOME, locale, time zone, temp dir, user), the variables
//! the spec passes by name (`pass_env`, top level and per system) and the values it sets
//! (`env`). Gauntlet's own secrets (its signing key and password, its Prometheus credentials)
//! are never among them, whatever the spec says: the system under test must not be able to
//! read them in `/proc/PID/environ`.

use std::collections::BTreeMap;
use std::ffi::OsString;

use gauntlet_spec::SECRET_ENV;

/// What any program expects to find; nothing secret lives here by convention.
const BASICS: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR",
];

/// The environment for a child of this process: the basics, then `pass` by name, then `set`.
pub fn build<'a>(
    pass: impl IntoIterator<Item = &'a str>,
    set: &BTreeMap<String, String>,
) -> Vec<(OsString, OsString)> {
    build_from(std::env::vars_os().collect(), pass, set)
}

/// [`build`] from a given environment. A secret name is dropped even if asked for
/// (validation refuses it in a spec; this is the last guard).
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

/// The names a spec passes to every process (its top-level `pass_env`).
pub fn passed(spec: &gauntlet_spec::Spec) -> impl Iterator<Item = &str> {
    spec.pass_env.iter().map(|n| n.value.as_str())
}

/// A command with nothing of gauntlet's environment but what [`build`] gives it.
pub fn command<'a>(
    program: &str,
    pass: impl IntoIterator<Item = &'a str>,
    set: &BTreeMap<String, String>,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_clear().envs(build(pass, set));
    cmd
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
}
