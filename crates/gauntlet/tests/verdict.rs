//! The verdict's chain of trust, end to end: exit codes that survive closed pipes and full
//! disks, secrets that never reach a process gauntlet starts, revocation in every mode,
//! attestations that standard tools read correctly, and keys the stock minisign tool made.
//! A small project (Python's http.server as the candidate, a signed lock, flags and an SBOM)
//! gives each decision in a second or two.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde_json::Value;

mod common;
use common::{Scratch, heavy_turn, latest, text};

/// What the small project's run should decide.
#[derive(Clone, Copy, PartialEq)]
enum Want {
    Go,
    /// A soft failure: CONDITIONAL.
    Conditional,
    /// A hard failure: an `.env` file the candidate serves.
    NoGo,
    /// The candidate never answers its health path.
    Inconclusive,
}

/// Writes the small project (spec `tiny.yaml`), makes a key in the user's keyring and signs
/// the project's lock with it.
fn tiny_project(s: &Scratch, want: Want) -> PathBuf {
    let site = s.path().join("site");
    s.write("site/index.html", "<h1>tiny</h1>\n");
    if matches!(want, Want::NoGo | Want::Conditional) {
        s.write("site/.env", "SECRET=1\n");
    }
    s.write("flags.json", r#"{"new_checkout": false}"#);
    s.write("requirements.txt", "flask==3.0.0\n");
    s.write("dist/tiny.tar", "the release artifact\n");
    let candidate = match want {
        Want::Inconclusive => {
            "command: [sleep, \"300\"]\n    health: /never-ready-7d2e\n    ready_timeout: 1s"
                .to_string()
        }
        _ => format!(
            "command: [python3, -m, http.server, \"{{port}}\", --bind, 127.0.0.1, --directory, \"{}\"]\n    health: /\n    ready_timeout: 20s",
            site.display()
        ),
    };
    let gating = if want == Want::Conditional {
        "soft"
    } else {
        "hard"
    };
    let spec = format!(
        "schema_version: 1
service: {{name: tiny, version: \"1.0.0\", owners: {{sre: sre@example.com}}}}
targets:
  candidate:
    {candidate}
traffic:
  rate: 10/s
  requests: [{{path: /}}]
trust:
  protected: [flags.json]
  flags: {{file: flags.json}}
  sbom: {{lockfiles: [requirements.txt]}}
  artifacts: [dist/tiny.tar]
steps:
  preflight: {{}}
  security:
    owner: sre
    paths: {{probes: [/.env, /admin]}}
gating: {{mode: {gating}}}
"
    );
    let path = s.write("tiny.yaml", &spec);
    if !s.keyring().join("keyring.json").exists() {
        let made = s.run(&["keys", "generate"]);
        assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    }
    let locked = s.run(&["lock", "--spec", "tiny.yaml"]);
    assert_eq!(locked.status.code(), Some(0), "{}", text(&locked.stderr));
    path
}

/// Runs the small project and returns its run directory and exit code.
fn tiny_run(s: &Scratch, want: Want) -> (PathBuf, Option<i32>) {
    tiny_project(s, want);
    let out = s.run(&["run", "tiny.yaml", "--quiet"]);
    // The store knows the newest run: ids made within one second do not sort by time.
    let id = latest(s)["run_id"].as_str().expect("a run id").to_string();
    (s.runs_dir().join(id), out.status.code())
}

/// The user's active key's public file.
fn public_key(s: &Scratch) -> PathBuf {
    let listed: Value = serde_json::from_slice(&s.run(&["keys", "list", "--json"]).stdout)
        .expect("keys list --json");
    let id = listed["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["status"] == "active")
        .expect("an active key")["id"]
        .as_str()
        .expect("an id")
        .to_string();
    s.keyring().join(format!("{id}.pub"))
}

/// Runs gauntlet with stdout and stderr pipes whose readers are gone before it writes.
fn with_closed_output(s: &Scratch, args: &[&str]) -> ExitStatus {
    let (out_read, out_write) = nix::unistd::pipe().expect("pipe");
    let (err_read, err_write) = nix::unistd::pipe().expect("pipe");
    drop((out_read, err_read));
    s.command()
        .args(args)
        .stdout(Stdio::from(out_write))
        .stderr(Stdio::from(err_write))
        .status()
        .expect("gauntlet runs")
}

/// Runs gauntlet with stdout on a full disk (`/dev/full`).
fn with_full_stdout(s: &Scratch, args: &[&str]) -> std::process::Output {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    s.command()
        .args(args)
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .output()
        .expect("gauntlet runs")
}

fn pydeps() -> String {
    std::env::var("GAUNTLET_PYDEPS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/pydeps").to_string())
}

fn python(script: &str) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(format!(
        "{}/tests/support/{script}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .env("PYTHONPATH", pydeps());
    cmd
}

#[test]
fn every_command_keeps_its_exit_code_when_stdout_and_stderr_are_closed() {
    let s = Scratch::new();
    // run: a NO-GO stays NO-GO, keeps running, writes its reports and stores its decision.
    tiny_project(&s, Want::NoGo);
    let run = with_closed_output(&s, &["run", "tiny.yaml"]);
    assert_eq!(run.code(), Some(1), "run");
    let run_dir = s.run_dirs().pop().expect("a run");
    let report = common::report(&run_dir);
    assert_eq!(report["decision"], "NO-GO");
    assert_eq!(
        latest(&s)["decision"],
        "NO-GO",
        "the store holds the decision, not ABORTED"
    );
    for command in [
        &["history"][..],
        &["show", "latest"][..],
        &["show", "latest", "--json"][..],
        &["completions", "bash"][..],
        &["schema"][..],
    ] {
        assert_eq!(
            with_closed_output(&s, command).code(),
            Some(0),
            "{command:?}"
        );
    }

    // validate: bad input stays 2, never a panic's 101.
    s.write("bad.yaml", "schema_version: 1\nservce: {}\n");
    assert_eq!(
        with_closed_output(&s, &["validate", "bad.yaml"]).code(),
        Some(2)
    );
    assert_eq!(
        with_closed_output(&s, &["validate", "tiny.yaml"]).code(),
        Some(0)
    );

    // verify: a refused lock stays 1.
    let other = Scratch::new();
    assert_eq!(other.run(&["keys", "generate"]).status.code(), Some(0));
    let stranger = public_key(&other);
    let stranger = stranger.to_str().unwrap();
    assert_eq!(
        with_closed_output(&s, &["verify", "--spec", "tiny.yaml", "--key", stranger]).code(),
        Some(1)
    );
    assert_eq!(
        with_closed_output(&s, &["verify", "--spec", "tiny.yaml"]).code(),
        Some(0)
    );

    // attest verify: a NO-GO attestation stays 1.
    let attestation = run_dir.join("attestation.dsse.json");
    let key = public_key(&s);
    let args = [
        "attest",
        "verify",
        attestation.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    assert_eq!(with_closed_output(&s, &args).code(), Some(1));

    // judge: a rejecting replay stays 1.
    let mut csv = String::from("arm,ok,latency_ms\n");
    for i in 0..2000 {
        csv.push_str(if i % 2 == 0 {
            "baseline,true,5\n"
        } else {
            "candidate,false,5\n"
        });
    }
    s.write("samples.csv", &csv);
    s.write("demo.yaml", include_str!("../../../examples/demo.yaml"));
    let judge = [
        "judge",
        "samples.csv",
        "--spec",
        "demo.yaml",
        "--stage",
        "2",
    ];
    assert_eq!(s.run(&judge).status.code(), Some(1), "the replay rejects");
    assert_eq!(with_closed_output(&s, &judge).code(), Some(1));
}

#[test]
fn output_lost_to_a_full_disk_never_passes_for_success_and_never_changes_a_verdict() {
    let s = Scratch::new();
    let (run_dir, code) = tiny_run(&s, Want::Go);
    assert_eq!(code, Some(0));
    // A command whose output is its result did not deliver it: internal error, not 0.
    for command in [
        &["show", "latest", "--json"][..],
        &["history"][..],
        &["schema"][..],
    ] {
        let out = with_full_stdout(&s, command);
        assert_eq!(
            out.status.code(),
            Some(4),
            "{command:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains("standard output could not be written"));
    }
    // A verdict is what it is, printed or not.
    let key = public_key(&s);
    let attestation = run_dir.join("attestation.dsse.json");
    let go = with_full_stdout(
        &s,
        &[
            "attest",
            "verify",
            attestation.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(go.status.code(), Some(0), "{}", text(&go.stderr));
    s.write("flags.json", r#"{"new_checkout": true}"#);
    let changed = with_full_stdout(&s, &["verify", "--spec", "tiny.yaml"]);
    assert_eq!(changed.status.code(), Some(1));
}

#[test]
fn an_unreadable_store_is_an_internal_error_not_a_no_go() {
    let s = Scratch::new();
    tiny_project(&s, Want::Go);
    s.write(
        ".gauntlet/gauntlet.db",
        "this is not a SQLite database, it is a text file\n",
    );
    for command in [&["history"][..], &["run", "tiny.yaml", "--quiet"][..]] {
        let out = s.run(command);
        assert_eq!(
            out.status.code(),
            Some(4),
            "{command:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("internal error"),
            "{}",
            text(&out.stderr)
        );
    }
    // The one exit-code table: README, --help and the code agree on 4.
    let help = text(&s.run(&["--help"]).stdout);
    assert!(help.contains("4 an internal error"), "{help}");
    let readme = include_str!("../../../README.md");
    assert!(
        readme.contains("| 4 | internal error"),
        "README's exit-code table"
    );
}

#[test]
fn verify_of_a_file_that_is_not_a_lock_is_invalid_input() {
    let s = Scratch::new();
    tiny_project(&s, Want::Go);
    for not_a_lock in ["tiny.yaml", "flags.json", "site/index.html"] {
        let out = s.run(&["verify", "--lock", not_a_lock]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{not_a_lock}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("not a gauntlet lock"),
            "{}",
            text(&out.stderr)
        );
    }
    // A lock that was signed and no longer parses is tampering: a refusal, not bad input.
    let mut bytes = std::fs::read(s.path().join("gauntlet.lock")).unwrap();
    bytes[0] = b'[';
    std::fs::write(s.path().join("gauntlet.lock"), bytes).unwrap();
    assert_eq!(
        s.run(&["verify", "--spec", "tiny.yaml"]).status.code(),
        Some(1)
    );
}

#[test]
fn attestations_of_every_decision_read_correctly_in_standard_tools() {
    for (want, decision, vsa, test_result, exit, strict) in [
        (Want::Go, "GO", "PASSED", "PASSED", 0, 0),
        (Want::Conditional, "CONDITIONAL", "FAILED", "WARNED", 0, 1),
        (Want::NoGo, "NO-GO", "FAILED", "FAILED", 1, 1),
        (Want::Inconclusive, "INCONCLUSIVE", "FAILED", "FAILED", 3, 3),
    ] {
        let s = Scratch::new();
        let (run_dir, _) = tiny_run(&s, want);
        assert_eq!(common::report(&run_dir)["decision"], decision);
        let key = public_key(&s);
        for file in ["attestation.dsse.json", "test-result.dsse.json"] {
            let envelope = run_dir.join(file);
            // securesystemslib's DSSE verifies the signature.
            let independent = python("dsse_verify.py")
                .arg(&envelope)
                .arg(&key)
                .output()
                .unwrap();
            assert!(
                independent.status.success(),
                "securesystemslib on {decision} {file}: {}",
                text(&independent.stderr)
            );
            assert!(text(&independent.stdout).trim().ends_with(decision));
            // gauntlet's own check: bound to the run's release manifest and the artifact.
            let artifact = s.path().join("dist/tiny.tar");
            let mut args = vec![
                "attest",
                "verify",
                envelope.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
            ];
            args.extend(["--artifact", artifact.to_str().unwrap()]);
            let ours = s.run(&args);
            assert_eq!(
                ours.status.code(),
                Some(exit),
                "{decision} {file}: {}",
                text(&ours.stdout)
            );
            assert!(
                text(&ours.stdout).contains("BOUND      artifact"),
                "{}",
                text(&ours.stdout)
            );
            // (A run that never got as far as preflight made no release manifest.)
            if want != Want::Inconclusive {
                assert!(
                    text(&ours.stdout).contains("BOUND      release manifest"),
                    "{}",
                    text(&ours.stdout)
                );
            }
            args.push("--strict");
            assert_eq!(
                s.run(&args).status.code(),
                Some(strict),
                "{decision} --strict"
            );
        }
        // The SLSA VSA and in-toto test-result fields, checked against the published specs.
        let fields = python("attestation_fields.py")
            .arg(run_dir.join("attestation.dsse.json"))
            .arg(run_dir.join("test-result.dsse.json"))
            .output()
            .unwrap();
        assert!(
            fields.status.success(),
            "{decision}: {}",
            text(&fields.stderr)
        );
        assert_eq!(
            text(&fields.stdout).trim(),
            format!("{decision} {vsa} {test_result}")
        );
    }
}

#[test]
fn an_attestation_must_be_bound_to_what_ships() {
    let s = Scratch::new();
    let (go_run, _) = tiny_run(&s, Want::Go);
    let (no_go_run, _) = tiny_run(&s, Want::NoGo);
    let key = public_key(&s);
    let key = key.to_str().unwrap();
    // The GO attestation copied over the NO-GO run's: its manifest is not the subject.
    let copied = no_go_run.join("attestation.dsse.json");
    std::fs::copy(go_run.join("attestation.dsse.json"), &copied).unwrap();
    let out = s.run(&["attest", "verify", copied.to_str().unwrap(), "--key", key]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("NOT BOUND  release manifest"),
        "{}",
        text(&out.stdout)
    );
    // Alone, with nothing to bind it to, it is refused, saying how to bind it.
    let alone = s.path().join("alone.dsse.json");
    std::fs::copy(go_run.join("attestation.dsse.json"), &alone).unwrap();
    let out = s.run(&["attest", "verify", alone.to_str().unwrap(), "--key", key]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("nothing to bind to"),
        "{}",
        text(&out.stdout)
    );
    let manifest = go_run.join("release.lock");
    let bound = s.run(&[
        "attest",
        "verify",
        alone.to_str().unwrap(),
        "--key",
        key,
        "--manifest",
        manifest.to_str().unwrap(),
    ]);
    assert_eq!(bound.status.code(), Some(0), "{}", text(&bound.stdout));
    // An artifact that is not a subject is not bound.
    let other = s.write("dist/other.tar", "not the release\n");
    let wrong = s.run(&[
        "attest",
        "verify",
        alone.to_str().unwrap(),
        "--key",
        key,
        "--artifact",
        other.to_str().unwrap(),
    ]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(text(&wrong.stdout).contains("NOT BOUND  artifact"));
    // The DSSE keyid is a hint: without one, or with another, the signature still decides.
    let envelope: Value =
        serde_json::from_slice(&std::fs::read(go_run.join("attestation.dsse.json")).unwrap())
            .unwrap();
    for keyid in [None, Some("0000000000000000")] {
        let mut changed = envelope.clone();
        match keyid {
            None => {
                changed["signatures"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("keyid");
            }
            Some(id) => changed["signatures"][0]["keyid"] = Value::from(id),
        }
        let path = go_run.join("keyid.dsse.json");
        std::fs::write(&path, serde_json::to_vec(&changed).unwrap()).unwrap();
        let out = s.run(&["attest", "verify", path.to_str().unwrap(), "--key", key]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "keyid {keyid:?}: {}",
            text(&out.stderr)
        );
    }
}

const SECRETS: [(&str, &str); 5] = [
    ("GAUNTLET_KEY_PASSWORD", "password-6b1f0c"),
    ("GAUNTLET_PROMETHEUS_TOKEN", "token-a83e77"),
    ("GAUNTLET_PROMETHEUS_USER", "user-90d2a1"),
    ("GAUNTLET_PROMETHEUS_PASSWORD", "prom-password-4c4e19"),
    ("GAUNTLET_SIGNING_KEY", ""),
];

/// Secret-looking fragments of a child's environment (the names and the values).
fn leaked(environ: &[u8], signing_key: &str) -> Vec<String> {
    let environ = text(environ);
    let secret_line = signing_key.lines().nth(1).unwrap_or("no key");
    SECRETS
        .iter()
        .map(|(name, value)| (*name, if value.is_empty() { secret_line } else { value }))
        .filter(|(name, value)| environ.contains(name) || environ.contains(value))
        .map(|(name, _)| name.to_string())
        .collect()
}

#[test]
fn no_process_gauntlet_starts_can_read_its_secrets() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    // A keyring whose key CI hands over in GAUNTLET_SIGNING_KEY.
    let ci = s.path().join("ci-keys");
    assert_eq!(
        s.run(&["--keyring", ci.to_str().unwrap(), "keys", "generate"])
            .status
            .code(),
        Some(0)
    );
    let secret_file = std::fs::read_dir(&ci)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "key") && !p.ends_with("root.key"))
        .unwrap();
    let signing_key = std::fs::read_to_string(secret_file).unwrap();
    let mut demo = s.command();
    demo.args(["--keyring", ci.to_str().unwrap(), "demo", "--quiet"])
        .args([
            "--skip",
            "canary",
            "--skip",
            "observability",
            "--skip",
            "gates",
            "--skip",
            "readiness",
        ])
        .env("GAUNTLET_SIGNING_KEY", &signing_key)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in SECRETS.iter().filter(|(_, v)| !v.is_empty()) {
        demo.env(name, value);
    }
    let mut child = demo.spawn().unwrap();
    // Every process the run registers in its journal: read its environment while it lives.
    let mut seen: Vec<(u32, String, Vec<String>)> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    let mut finished = None;
    while finished.is_none() && std::time::Instant::now() < deadline {
        for run_dir in s.run_dirs() {
            let journal =
                std::fs::read_to_string(run_dir.join("cleanup.jsonl")).unwrap_or_default();
            for line in journal
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            {
                let process = &line["undo"]["process"];
                let Some(pid) = process["pid"].as_u64().map(|p| p as u32) else {
                    continue;
                };
                if line["op"] != "register" || seen.iter().any(|(p, _, _)| *p == pid) {
                    continue;
                }
                if let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) {
                    let label = line["undo"]["label"].as_str().unwrap_or("?").to_string();
                    seen.push((pid, label, leaked(&environ, &signing_key)));
                }
            }
        }
        finished = child.try_wait().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    // The rotation drill used its own scratch keys, not the CI key: the demo is GO.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(latest(&s)["decision"], "GO");
    let labels: Vec<&str> = seen.iter().map(|(_, l, _)| l.as_str()).collect();
    for system in [
        "quotes-primary",
        "quotes-secondary",
        "baseline",
        "candidate",
    ] {
        assert!(
            labels.contains(&system),
            "{system} not seen among {labels:?}"
        );
    }
    assert!(
        labels.iter().any(|l| l.starts_with("stress-")),
        "no stressor seen: {labels:?}"
    );
    for (pid, label, leaks) in &seen {
        assert!(leaks.is_empty(), "{label} (pid {pid}) could read {leaks:?}");
    }
    // Commands gauntlet runs for a step (a probe here) get the same environment.
    let probe_env = s.path().join("probe.env");
    let spec = format!(
        "schema_version: 1
service: {{name: probe, version: \"1\"}}
targets:
  candidate:
    command: [python3, -m, http.server, \"{{port}}\", --bind, 127.0.0.1]
    health: /
    pass_env: [PASSED_ON]
traffic: {{rate: 10/s, requests: [{{path: /}}]}}
pass_env: [PASSED_ON]
steps:
  chaos:
    steady_state:
      probes: [{{name: env, command: {{run: [sh, -c, 'env > {}']}}}}]
    drills:
      - {{name: nothing, faults: [{{kind: latency, target: candidate, latency: 1ms}}], duration: 1s, expect: hold}}
",
        probe_env.display()
    );
    s.write("probe.yaml", &spec);
    let mut run = s.command();
    run.args(["run", "probe.yaml", "--quiet"])
        .env("PASSED_ON", "yes")
        .env("NOT_PASSED_ON", "no");
    for (name, value) in SECRETS.iter().filter(|(_, v)| !v.is_empty()) {
        run.env(name, value);
    }
    let out = run
        .env("GAUNTLET_SIGNING_KEY", &signing_key)
        .output()
        .unwrap();
    let environ = std::fs::read(&probe_env)
        .unwrap_or_else(|e| panic!("no probe ran ({e}): {}", text(&out.stderr)));
    assert!(
        leaked(&environ, &signing_key).is_empty(),
        "{}",
        text(&environ)
    );
    assert!(text(&environ).contains("PASSED_ON=yes"));
    assert!(!text(&environ).contains("NOT_PASSED_ON"));
    // A spec cannot ask for them either.
    s.write(
        "greedy.yaml",
        &spec.replace(
            "pass_env: [PASSED_ON]\nsteps",
            "pass_env: [GAUNTLET_SIGNING_KEY]\nsteps",
        ),
    );
    let refused = s.run(&["validate", "greedy.yaml"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("never passed to a process it starts"));
}

#[test]
fn revoked_keys_never_sign_and_secret_keys_must_be_private() {
    let s = Scratch::new();
    s.write("limits.json", r#"{"p99_ms": 300}"#);
    assert_eq!(s.run(&["keys", "generate"]).status.code(), Some(0));
    let public = public_key(&s);
    let secret_path = public.with_extension("key");
    let secret = std::fs::read_to_string(&secret_path).unwrap();
    // A secret key (or its folder) open to others is refused with the command that fixes it.
    std::fs::set_permissions(&secret_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = s.run(&["lock", "limits.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!("chmod 600 {}", secret_path.display())),
        "{}",
        text(&out.stderr)
    );
    std::fs::set_permissions(&secret_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(s.keyring(), std::fs::Permissions::from_mode(0o750)).unwrap();
    let out = s.run(&["lock", "limits.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!("chmod 700 {}", s.keyring().display())),
        "{}",
        text(&out.stderr)
    );
    std::fs::set_permissions(s.keyring(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(
        !s.path().join("gauntlet.lock").exists(),
        "nothing was signed"
    );
    // Revoked, the key signs nothing, even handed over in GAUNTLET_SIGNING_KEY.
    let id = public.file_stem().unwrap().to_str().unwrap().to_string();
    assert_eq!(s.run(&["keys", "revoke", &id]).status.code(), Some(0));
    let out = s
        .command()
        .args(["lock", "limits.json"])
        .env("GAUNTLET_SIGNING_KEY", &secret)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("was revoked"),
        "{}",
        text(&out.stderr)
    );
    assert!(!s.path().join("gauntlet.lock").exists());
}

#[test]
fn a_revoked_or_expired_key_verifies_nothing_in_any_mode() {
    let s = Scratch::new();
    let (run_dir, code) = tiny_run(&s, Want::Go);
    assert_eq!(code, Some(0));
    let public = public_key(&s);
    let id = public.file_stem().unwrap().to_str().unwrap().to_string();
    // CI pins the key in a file of its own, away from any keyring...
    let pinned = s.write("ci/release.pub", &std::fs::read_to_string(&public).unwrap());
    let pinned = pinned.to_str().unwrap();
    let attestation = run_dir.join("attestation.dsse.json");
    let attestation = attestation.to_str().unwrap();
    assert_eq!(
        s.run(&["verify", "--spec", "tiny.yaml", "--key", pinned])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        s.run(&["keys", "rotate", "--grace", "1h"]).status.code(),
        Some(0)
    );
    assert_eq!(s.run(&["keys", "revoke", &id]).status.code(), Some(0));
    let statement = s.keyring().join(format!("status/{id}.revoked.json"));
    assert!(statement.exists(), "the key signed its own revocation");
    // ...and a verifier that has only the pinned key and the revocation statement refuses.
    let elsewhere = Scratch::new();
    std::fs::copy(
        s.path().join("tiny.yaml"),
        elsewhere.path().join("tiny.yaml"),
    )
    .unwrap();
    for file in ["gauntlet.lock", "gauntlet.lock.minisig", "flags.json"] {
        std::fs::copy(s.path().join(file), elsewhere.path().join(file)).unwrap();
    }
    let revocations = statement.to_str().unwrap();
    let out = elsewhere.run(&[
        "verify",
        "--spec",
        "tiny.yaml",
        "--key",
        pinned,
        "--revocations",
        revocations,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("revoked"),
        "{}",
        text(&out.stdout)
    );
    let out = elsewhere.run(&[
        "attest",
        "verify",
        attestation,
        "--key",
        pinned,
        "--revocations",
        revocations,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("revoked"),
        "{}",
        text(&out.stderr)
    );
    // On the machine whose keyring revoked it, the pin alone is refused too.
    for args in [
        vec!["verify", "--spec", "tiny.yaml", "--key", pinned],
        vec!["attest", "verify", attestation, "--key", pinned],
        vec!["verify", "--spec", "tiny.yaml"],
    ] {
        assert_eq!(s.run(&args).status.code(), Some(1), "{args:?}");
    }
    // Pinning the keyring's root: the signed listing says the key is revoked.
    let root = s.keyring().join("root.pub");
    let listing = s.keyring().join("keyring.json");
    let out = elsewhere.run(&[
        "--keyring",
        listing.to_str().unwrap(),
        "verify",
        "--spec",
        "tiny.yaml",
        "--root",
        root.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("revoked"),
        "{}",
        text(&out.stdout)
    );
    // An expired retirement, pinned: refused as expired.
    let t = Scratch::new();
    t.write("limits.json", "{}");
    assert_eq!(t.run(&["keys", "generate"]).status.code(), Some(0));
    let old = public_key(&t);
    assert_eq!(t.run(&["lock", "limits.json"]).status.code(), Some(0));
    assert_eq!(
        t.run(&["keys", "rotate", "--grace", "0s"]).status.code(),
        Some(0)
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = t.run(&["verify", "--key", old.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("expired"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn the_keys_that_verify_a_checkout_never_come_from_it() {
    let s = Scratch::new();
    tiny_project(&s, Want::Go);
    assert_eq!(
        s.run(&["verify", "--spec", "tiny.yaml"]).status.code(),
        Some(0)
    );
    // The checkout ships a keyring of its own and a lock re-signed with it over an edit.
    s.write("flags.json", r#"{"new_checkout": true}"#);
    let planted = s.path().join(".gauntlet/keys");
    let keyring = planted.to_str().unwrap();
    assert_eq!(
        s.run(&["--keyring", keyring, "keys", "generate"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        s.run(&["--keyring", keyring, "lock", "--spec", "tiny.yaml"])
            .status
            .code(),
        Some(0)
    );
    let out = s.run(&["verify", "--spec", "tiny.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("not in the keyring"),
        "{}",
        text(&out.stdout)
    );
    // Only named explicitly does it count.
    assert_eq!(
        s.run(&["--keyring", keyring, "verify", "--spec", "tiny.yaml"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn a_release_lock_vouches_for_its_sbom_and_flags_and_a_refused_one_for_nothing() {
    let s = Scratch::new();
    let (run_dir, code) = tiny_run(&s, Want::Go);
    assert_eq!(code, Some(0));
    let lock = run_dir.join("release.lock");
    let lock = lock.to_str().unwrap();
    // What ships (the project's files) against what the run tested, evidence included.
    let release = ["verify", "--spec", "tiny.yaml", "--lock", lock];
    let out = s.run(&release);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let alone = s.run(&["verify", "--lock", lock]);
    assert_eq!(alone.status.code(), Some(1));
    assert!(
        text(&alone.stderr).contains("give the project with --spec"),
        "{}",
        text(&alone.stderr)
    );
    for (file, edit) in [
        ("evidence/preflight/sbom.cdx.json", "\n"),
        ("evidence/preflight/flags.json", r#"{"new_checkout": true}"#),
    ] {
        let path = run_dir.join(file);
        let original = std::fs::read(&path).unwrap();
        if file.ends_with("flags.json") {
            std::fs::write(&path, edit).unwrap();
        } else {
            let mut bytes = original.clone();
            bytes.extend_from_slice(edit.as_bytes());
            std::fs::write(&path, bytes).unwrap();
        }
        let out = s.run(&release);
        assert_eq!(out.status.code(), Some(1), "{file}: {}", text(&out.stdout));
        assert!(
            text(&out.stdout).contains(&format!("CHANGED    {file}")),
            "{}",
            text(&out.stdout)
        );
        std::fs::write(&path, original).unwrap();
    }
    // Against another key, no file is reported as matching a lock nobody trusted.
    let other = Scratch::new();
    assert_eq!(other.run(&["keys", "generate"]).status.code(), Some(0));
    let stranger = public_key(&other);
    let out = s.run(&[
        "verify",
        "--lock",
        lock,
        "--key",
        stranger.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("SIGNATURE REFUSED") && stdout.contains("no file was compared"),
        "{stdout}"
    );
    assert!(
        !stdout.lines().any(|l| l.trim_start().starts_with("ok ")),
        "{stdout}"
    );
    assert!(
        !text(&out.stderr).contains("0 file(s) differ"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn keys_the_stock_minisign_made_sign_and_its_legacy_signatures_are_refused_by_name() {
    let s = Scratch::new();
    let minisign = |args: &[&str]| {
        let out = Command::new("minisign")
            .current_dir(s.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "minisign {args:?}: {}",
            text(&out.stderr)
        );
        out
    };
    // `minisign -G -W`: an unencrypted key with an all-zero checksum.
    minisign(&["-G", "-W", "-p", "w.pub", "-s", "w.key"]);
    let imported = s.run(&["keys", "import", "w.key"]);
    assert_eq!(
        imported.status.code(),
        Some(0),
        "{}",
        text(&imported.stderr)
    );
    assert!(text(&imported.stdout).contains("as the active signing key"));
    s.write("limits.json", r#"{"p99_ms": 300}"#);
    assert_eq!(s.run(&["lock", "limits.json"]).status.code(), Some(0));
    minisign(&["-Vm", "gauntlet.lock", "-p", "w.pub"]);
    // A password-protected minisign key (password on stdin, as minisign reads it).
    let mut protected = Command::new("minisign")
        .current_dir(s.path())
        .args(["-G", "-p", "e.pub", "-s", "e.key"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        protected
            .stdin
            .take()
            .unwrap()
            .write_all(b"minisign password\nminisign password\n")
            .unwrap();
    }
    assert!(protected.wait().unwrap().success());
    let imported = s
        .command()
        .args(["keys", "import", "e.key"])
        .env("GAUNTLET_KEY_PASSWORD", "minisign password")
        .output()
        .unwrap();
    assert_eq!(
        imported.status.code(),
        Some(0),
        "{}",
        text(&imported.stderr)
    );
    let relock = s
        .command()
        .args(["lock", "limits.json"])
        .env("GAUNTLET_KEY_PASSWORD", "minisign password")
        .output()
        .unwrap();
    assert_eq!(relock.status.code(), Some(0), "{}", text(&relock.stderr));
    minisign(&["-Vm", "gauntlet.lock", "-p", "e.pub"]);
    // A public key alone verifies what its owner signed, and never signs here.
    let other = Scratch::new();
    let imported = other.run(&["keys", "import", s.path().join("e.pub").to_str().unwrap()]);
    assert_eq!(
        imported.status.code(),
        Some(0),
        "{}",
        text(&imported.stderr)
    );
    // A legacy signature (-l) is refused saying so; a non-UTF-8 untrusted comment is fine.
    minisign(&["-S", "-l", "-s", "w.key", "-m", "gauntlet.lock"]);
    let out = s.run(&["verify", "--key", "w.pub"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("legacy minisign signature"),
        "{}",
        text(&out.stdout)
    );
    minisign(&["-S", "-s", "w.key", "-m", "gauntlet.lock"]);
    let signature = s.path().join("gauntlet.lock.minisig");
    let mut bytes = std::fs::read(&signature).unwrap();
    let end = bytes.iter().position(|b| *b == b'\n').unwrap();
    bytes.splice(..end, b"untrusted comment: caf\xe9 \xff".iter().copied());
    std::fs::write(&signature, bytes).unwrap();
    let out = s.run(&["verify", "--key", "w.pub"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

/// Where `scripts/test` installs cyclonedx-npm.
fn npm_tool() -> PathBuf {
    let dir = std::env::var("GAUNTLET_NPMDEPS").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/npmdeps").to_string()
    });
    Path::new(&dir).join("node_modules/.bin/cyclonedx-npm")
}

/// Component purls of a CycloneDX document, nested components included.
fn purls(doc: &Value) -> std::collections::BTreeSet<String> {
    fn walk(list: &Value, out: &mut std::collections::BTreeSet<String>) {
        for c in list.as_array().into_iter().flatten() {
            if let Some(p) = c["purl"].as_str() {
                out.insert(p.to_string());
            }
            walk(&c["components"], out);
        }
    }
    let mut out = Default::default();
    walk(&doc["components"], &mut out);
    out
}

/// The CycloneDX project's cyclonedx-py on the same input (JSON, CycloneDX 1.5, on stdout).
fn cyclonedx_py(s: &Scratch, args: &[&str]) -> std::process::Output {
    Command::new("python3")
        .args(["-m", "cyclonedx_py"])
        .args(args)
        .args(["--of", "JSON", "--sv", "1.5", "-o", "-"])
        .current_dir(s.path())
        .env("PYTHONPATH", pydeps())
        .output()
        .expect("python3 runs")
}

fn our_sbom(s: &Scratch, lockfile: &str) -> Value {
    let out = s.run(&["sbom", lockfile, "--out", "ours.cdx.json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{lockfile}: {}",
        text(&out.stderr)
    );
    let valid = python("cyclonedx_validate.py")
        .arg(s.path().join("ours.cdx.json"))
        .output()
        .unwrap();
    assert!(
        valid.status.success(),
        "{lockfile}: {}",
        text(&valid.stderr)
    );
    serde_json::from_slice(&std::fs::read(s.path().join("ours.cdx.json")).unwrap()).unwrap()
}

#[test]
fn sboms_have_the_components_and_purls_the_reference_tools_find() {
    // requirements.txt: hashes, extras, spaced and unpinned versions, an editable VCS package.
    let s = Scratch::new();
    let (a, b) = (
        "58cd2187c01e70e6e26505bca751777aa9f2ee0b7f4300988b709f44e013003f",
        "942c5a758f98d790eaed1a29cb6eefc7ffb0d1cf7af05c3d2791656dbd6ad1e1",
    );
    s.write(
        "requirements.txt",
        &format!(
            "requests[socks]==2.31.0 \\\n    --hash=sha256:{a} \\\n    --hash=sha256:{b}\ntyping_extensions==4.12.2\nnumpy == 1.26.4\nFlask>=2.0\nzope.interface==6.0\n-e git+https://github.com/psf/black.git@24.1.0#egg=black\nurllib3==2.2.1; python_version >= \"3.8\"\n"
        ),
    );
    let ours = our_sbom(&s, "requirements.txt");
    let theirs = cyclonedx_py(&s, &["requirements", "requirements.txt"]);
    assert!(
        theirs.status.success(),
        "cyclonedx-py: {}",
        text(&theirs.stderr)
    );
    let theirs: Value = serde_json::from_slice(&theirs.stdout).unwrap();
    assert_eq!(purls(&ours), purls(&theirs), "requirements.txt");
    let requests = ours["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "requests")
        .unwrap();
    assert_eq!(
        requests["externalReferences"][0]["hashes"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "every --hash is kept"
    );

    // poetry.lock with a dev group, file hashes and dependencies, beside its pyproject.toml.
    let p = Scratch::new();
    p.write("pyproject.toml", "[tool.poetry]\nname = \"shop\"\nversion = \"1.2.0\"\ndescription = \"\"\nauthors = []\n\n[tool.poetry.dependencies]\npython = \">=3.9\"\nrequests = \"^2.31\"\ntyping_extensions = \"^4.12\"\n\n[tool.poetry.group.dev.dependencies]\npytest = \"^8.0\"\n");
    let package = |name: &str, version: &str, group: &str, deps: &[(&str, &str)]| {
        let hash = format!("{:064x}", name.len() * 7919 + version.len());
        let mut text = format!(
            "[[package]]\nname = \"{name}\"\nversion = \"{version}\"\ndescription = \"\"\noptional = false\npython-versions = \">=3.8\"\ngroups = [\"{group}\"]\nfiles = [\n    {{file = \"{name}-{version}-py3-none-any.whl\", hash = \"sha256:{hash}\"}},\n]\n"
        );
        if !deps.is_empty() {
            text.push_str("\n[package.dependencies]\n");
            for (d, spec) in deps {
                text.push_str(&format!("{d} = \"{spec}\"\n"));
            }
        }
        text + "\n"
    };
    let lock = [
        package("certifi", "2024.2.2", "main", &[]),
        package("requests", "2.31.0", "main", &[("certifi", ">=2017.4.17")]),
        package("typing_extensions", "4.12.2", "main", &[]),
        package("pytest", "8.0.0", "dev", &[("iniconfig", "*")]),
        package("iniconfig", "2.0.0", "dev", &[]),
    ]
    .concat()
        + "[metadata]\nlock-version = \"2.1\"\npython-versions = \">=3.9\"\ncontent-hash = \"00\"\n";
    p.write("poetry.lock", &lock);
    let ours = our_sbom(&p, "poetry.lock");
    let theirs = cyclonedx_py(&p, &["poetry", "."]);
    assert!(
        theirs.status.success(),
        "cyclonedx-py: {}",
        text(&theirs.stderr)
    );
    let theirs: Value = serde_json::from_slice(&theirs.stdout).unwrap();
    assert_eq!(purls(&ours), purls(&theirs), "poetry.lock");
    assert_eq!(
        ours["metadata"]["component"]["name"], "shop",
        "named after the project"
    );
    let pytest = ours["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "pytest")
        .unwrap();
    assert_eq!(pytest["scope"], "excluded", "a dev group does not ship");
    let graph = &ours["dependencies"];
    let requests_deps = graph
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["ref"] == "pkg:pypi/requests@2.31.0")
        .unwrap();
    assert_eq!(
        requests_deps["dependsOn"],
        serde_json::json!(["pkg:pypi/certifi@2024.2.2"])
    );

    // package-lock.json with scoped, nested and dev packages, against cyclonedx-npm.
    let n = Scratch::new();
    n.write("package.json", r#"{"name": "shop-web", "version": "2.0.0", "dependencies": {"@babel/code-frame": "^7.29.0", "left-pad": "1.3.0"}, "devDependencies": {"@types/node": "^20.0.0"}}"#);
    let entry = |name: &str, version: &str, extra: &str| {
        let file = name.rsplit('/').next().unwrap();
        format!(
            r#""node_modules/{name}": {{"version": "{version}", "resolved": "https://registry.npmjs.org/{name}/-/{file}-{version}.tgz"{extra}}}"#
        )
    };
    let lock = format!(
        r#"{{"name": "shop-web", "version": "2.0.0", "lockfileVersion": 3, "requires": true, "packages": {{
  "": {{"name": "shop-web", "version": "2.0.0", "dependencies": {{"@babel/code-frame": "^7.29.0", "left-pad": "1.3.0"}}, "devDependencies": {{"@types/node": "^20.0.0"}}}},
  {}, {}, {}, {}, {}, {}
}}}}"#,
        entry(
            "@babel/code-frame",
            "7.29.7",
            r#", "dependencies": {"js-tokens": "^4.0.0", "picocolors": "^1.0.0"}"#
        ),
        entry("js-tokens", "4.0.0", ""),
        entry("picocolors", "1.1.1", ""),
        entry(
            "left-pad",
            "1.3.0",
            r#", "dependencies": {"js-tokens": "^3.0.0"}"#
        ),
        entry("left-pad/node_modules/js-tokens", "3.0.2", "").replace(
            "left-pad/node_modules/js-tokens/-/js-tokens",
            "js-tokens/-/js-tokens"
        ),
        entry("@types/node", "20.11.5", r#", "dev": true"#),
    );
    n.write("package-lock.json", &lock);
    let ours = our_sbom(&n, "package-lock.json");
    let tool = npm_tool();
    let theirs = Command::new(&tool)
        .args([
            "--package-lock-only",
            "--spec-version",
            "1.5",
            "--output-format",
            "JSON",
            "--output-file",
            "-",
        ])
        .current_dir(n.path())
        .output()
        .unwrap_or_else(|e| panic!("{} (scripts/test installs it): {e}", tool.display()));
    assert!(
        theirs.status.success(),
        "cyclonedx-npm: {}",
        text(&theirs.stderr)
    );
    let theirs: Value = serde_json::from_slice(&theirs.stdout).unwrap();
    assert_eq!(purls(&ours), purls(&theirs), "package-lock.json");
    assert!(purls(&ours).contains("pkg:npm/%40babel/code-frame@7.29.7"));
    let types = ours["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "node")
        .unwrap();
    assert_eq!(
        (types["group"].as_str(), types["scope"].as_str()),
        (Some("@types"), Some("excluded"))
    );

    // go.sum and the project's own Cargo.lock: one component per locked module and package.
    let g = Scratch::new();
    g.write(
        "go.sum",
        "golang.org/x/net v0.1.0 h1:aaaa=\ngolang.org/x/net v0.1.0/go.mod h1:bbbb=\ngolang.org/x/text v0.3.0/go.mod h1:cccc=\ngithub.com/pkg/errors v0.9.1 h1:dddd=\ngithub.com/pkg/errors v0.9.1/go.mod h1:eeee=\n",
    );
    let ours = our_sbom(&g, "go.sum");
    let want: std::collections::BTreeSet<String> = [
        "pkg:golang/golang.org/x/net@v0.1.0",
        "pkg:golang/github.com/pkg/errors@v0.9.1",
    ]
    .map(String::from)
    .into();
    assert_eq!(
        purls(&ours),
        want,
        "go.sum: a module only hashed by its go.mod was not downloaded"
    );
    let cargo_lock = include_str!("../../../Cargo.lock");
    g.write("Cargo.lock", cargo_lock);
    let ours = our_sbom(&g, "Cargo.lock");
    let locked: std::collections::BTreeSet<String> = cargo_lock
        .split("[[package]]")
        .skip(1)
        .map(|p| {
            let field = |k: &str| {
                p.lines()
                    .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
                    .unwrap()
                    .trim_end_matches('"')
                    .to_string()
            };
            format!(
                "pkg:cargo/{}@{}",
                field("name"),
                field("version").replace('+', "%2B")
            )
        })
        .collect();
    assert_eq!(
        purls(&ours),
        locked,
        "Cargo.lock: every package, the workspace's own crates too"
    );
    assert!(locked.contains("pkg:cargo/gauntlet-trust@0.1.0"));
}

#[test]
fn the_demo_signs_with_its_own_keyring_whatever_key_the_environment_holds() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    // A CI key the demo's keyring has never seen.
    assert_eq!(s.run(&["keys", "generate"]).status.code(), Some(0));
    let ci_key = std::fs::read_to_string(public_key(&s).with_extension("key")).unwrap();
    let out = s
        .command()
        .args([
            "demo", "--skip", "chaos", "--skip", "dr", "--skip", "canary",
        ])
        .args([
            "--skip",
            "observability",
            "--skip",
            "gates",
            "--skip",
            "readiness",
        ])
        .env("GAUNTLET_SIGNING_KEY", &ci_key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("ignoring GAUNTLET_SIGNING_KEY"));
    let report = latest(&s);
    assert_eq!(report["decision"], "GO", "{}", report["summary"]);
    let signer = report["trust"]["signing_key"].as_str().unwrap();
    assert!(
        s.demo_keyring().join(format!("{signer}.pub")).exists(),
        "signed by the demo's own key, not the CI key"
    );
}
