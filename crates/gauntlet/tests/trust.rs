//! Trust end to end with the real binary: locks and their signatures (checked by the stock
//! `minisign` tool and checking its signatures), key rotation and revocation, the CI guard on
//! an unsigned edit, bad input, and a demo run's attestation checked by an independent DSSE
//! implementation (securesystemslib), and SBOMs checked against the official CycloneDX schema
//! (cyclonedx-python-lib). `scripts/test` installs minisign and both Python packages.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

mod common;
use common::{Scratch, heavy_turn, latest, report, step_names, text};

/// The id and public key file of the keyring's active key.
fn active_key(s: &Scratch) -> (String, PathBuf) {
    let out = s.run(&["keys", "list", "--json"]);
    let keyring: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = keyring["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["status"] == "active")
        .expect("an active key")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let public = s.keyring().join(format!("{id}.pub"));
    (id, public)
}

/// Where `scripts/test` installs the Python packages that check what we write.
fn pydeps() -> String {
    std::env::var("GAUNTLET_PYDEPS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/pydeps").to_string())
}

/// The CycloneDX project's own Python library validates an SBOM against the official JSON
/// schema of its version; returns what it printed ("1.5 COMPONENTS").
fn cyclonedx_validates(sbom: &std::path::Path) -> String {
    let out = tool("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/cyclonedx_validate.py"
        ))
        .arg(sbom)
        .env("PYTHONPATH", pydeps())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cyclonedx-python-lib on {} (scripts/test installs it): {}",
        sbom.display(),
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_string()
}

fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{name}` is not installed: run scripts/test, which installs it"
    );
    Command::new(name)
}

const DEMO: &str = include_str!("../../../examples/demo.yaml");
const PROMPT: &str = include_str!("../../../examples/prompts/support-reply.txt");

#[test]
fn stock_minisign_verifies_our_lock_and_we_verify_what_minisign_signed() {
    let s = Scratch::new();
    s.write("thresholds.yaml", "latency_p99: 300ms\nerror_rate: 1%\n");
    s.write("prompts/reply.txt", PROMPT);
    assert_eq!(s.run(&["keys", "generate"]).status.code(), Some(0));
    let out = s.run(&["lock", "thresholds.yaml", "prompts/reply.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (_, public) = active_key(&s);

    // minisign checks gauntlet's signature with gauntlet's public key file.
    let checked = tool("minisign")
        .current_dir(s.path())
        .args(["-Vm", "gauntlet.lock", "-p"])
        .arg(&public)
        .output()
        .unwrap();
    assert!(checked.status.success(), "{}", text(&checked.stderr));
    assert!(
        text(&checked.stdout).contains("manifest:1.0.0"),
        "{}",
        text(&checked.stdout)
    );

    // A key made by minisign signs the same lock; gauntlet accepts it given that key, and
    // refuses it against a keyring that does not hold it.
    let made = tool("minisign")
        .current_dir(s.path())
        .args(["-G", "-W", "-p", "mk.pub", "-s", "mk.key"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    let signed = tool("minisign")
        .current_dir(s.path())
        .args([
            "-S",
            "-s",
            "mk.key",
            "-m",
            "gauntlet.lock",
            "-t",
            "signed by stock minisign",
        ])
        .output()
        .unwrap();
    assert!(signed.status.success(), "{}", text(&signed.stderr));
    let ours = s.run(&["verify", "--key", "mk.pub"]);
    assert_eq!(ours.status.code(), Some(0), "{}", text(&ours.stdout));
    assert!(text(&ours.stdout).contains("signed by stock minisign"));
    let keyring = s.run(&["verify"]);
    assert_eq!(keyring.status.code(), Some(1));
    assert!(
        text(&keyring.stdout).contains("not in the keyring"),
        "{}",
        text(&keyring.stdout)
    );

    // A signature over a different file is refused as such.
    s.write(
        "prompts/reply.txt",
        &format!("{PROMPT}Approve every refund.\n"),
    );
    let changed = s.run(&["verify", "--key", "mk.pub"]);
    assert_eq!(changed.status.code(), Some(1));
    assert!(text(&changed.stdout).contains("CHANGED    prompts/reply.txt"));
    std::fs::copy(
        s.path().join("thresholds.yaml"),
        s.path().join("gauntlet.lock"),
    )
    .unwrap();
    let other = s.run(&["verify", "--key", "mk.pub"]);
    assert_eq!(other.status.code(), Some(1));
    assert!(
        text(&other.stdout).contains("does not match"),
        "{}",
        text(&other.stdout)
    );
}

/// The demo's protected files: the spec, its prompt, its alert rules and its dashboard, in a
/// project of their own.
fn demo_project(s: &Scratch) {
    s.write("gauntlet.yaml", DEMO);
    s.write("prompts/support-reply.txt", PROMPT);
    s.write(
        "alerts/demo.rules.yml",
        include_str!("../../../examples/alerts/demo.rules.yml"),
    );
    s.write(
        "dashboards/demo.json",
        include_str!("../../../examples/dashboards/demo.json"),
    );
    s.write("Cargo.lock", include_str!("../../../Cargo.lock"));
    for (name, text) in [
        (
            "threat-model-reviewed.json",
            include_str!("../../../examples/attestations/threat-model-reviewed.json"),
        ),
        (
            "threat-model-reviewed.json.minisig",
            include_str!("../../../examples/attestations/threat-model-reviewed.json.minisig"),
        ),
        (
            "on-call-runbook.json",
            include_str!("../../../examples/attestations/on-call-runbook.json"),
        ),
        (
            "on-call-runbook.json.minisig",
            include_str!("../../../examples/attestations/on-call-runbook.json.minisig"),
        ),
    ] {
        s.write(&format!("attestations/{name}"), text);
    }
}

#[test]
fn an_unsigned_threshold_edit_fails_verify_naming_the_file_and_key_path() {
    let s = Scratch::new();
    demo_project(&s);
    assert_eq!(s.run(&["keys", "generate"]).status.code(), Some(0));
    assert_eq!(
        s.run(&["lock", "--spec", "gauntlet.yaml"]).status.code(),
        Some(0)
    );
    let clean = s.run(&["verify", "--spec", "gauntlet.yaml"]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean.stdout));

    s.write(
        "gauntlet.yaml",
        &DEMO.replace("threshold: 300ms", "threshold: 450ms"),
    );
    let out = s.run(&["verify", "--spec", "gauntlet.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout)
            .contains(r#"CHANGED    gauntlet.yaml: slos.latency.threshold: "300ms" → "450ms""#),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stderr).contains("re-sign with `gauntlet lock --spec gauntlet.yaml`"));
    let json = s.run(&["verify", "--spec", "gauntlet.yaml", "--json"]);
    let found: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(found["passed"], false);
    assert_eq!(
        found["files"][0]["changes"][0]["path"],
        "slos.latency.threshold"
    );
    assert_eq!(found["files"][0]["changes"][0]["new"], "450ms");

    // Comments alone are a reformat: refused byte for byte, accepted with --semantic.
    s.write("gauntlet.yaml", &format!("# reviewed\n{DEMO}"));
    assert_eq!(
        s.run(&["verify", "--spec", "gauntlet.yaml"]).status.code(),
        Some(1)
    );
    assert_eq!(
        s.run(&["verify", "--spec", "gauntlet.yaml", "--semantic"])
            .status
            .code(),
        Some(0)
    );

    // Re-signing the change is what makes it pass, with the manifest version bumped.
    s.write(
        "gauntlet.yaml",
        &DEMO.replace("threshold: 300ms", "threshold: 450ms"),
    );
    let relock = s.run(&["lock", "--spec", "gauntlet.yaml"]);
    assert!(
        text(&relock.stdout).contains("manifest 1.0.1"),
        "{}",
        text(&relock.stdout)
    );
    assert_eq!(
        s.run(&["verify", "--spec", "gauntlet.yaml"]).status.code(),
        Some(0)
    );

    // A file the spec protects that the lock does not hold was never signed.
    s.write(
        "gauntlet.yaml",
        &DEMO
            .replace("threshold: 300ms", "threshold: 450ms")
            .replace(
                "protected: [prompts/support-reply.txt, alerts/demo.rules.yml, dashboards/demo.json]",
                "protected: [prompts/support-reply.txt, alerts/demo.rules.yml, dashboards/demo.json, Cargo.lock]",
            ),
    );
    let out = s.run(&["verify", "--spec", "gauntlet.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("NOT LOCKED Cargo.lock"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn rotated_keys_verify_until_revoked_and_revoked_keys_never() {
    let s = Scratch::new();
    s.write("limits.json", r#"{"p99_ms": 300}"#);
    s.run(&["keys", "generate"]);
    let (old, _) = active_key(&s);
    s.run(&["lock", "limits.json"]);
    let rotated = s.run(&["keys", "rotate", "--grace", "1h"]);
    assert_eq!(rotated.status.code(), Some(0));
    assert!(text(&rotated.stdout).contains(&format!("key {old} retired")));
    let (new, _) = active_key(&s);
    assert_ne!(old, new);
    assert_eq!(
        s.run(&["verify"]).status.code(),
        Some(0),
        "within its grace the old key verifies"
    );
    assert_eq!(s.run(&["keys", "revoke", &old]).status.code(), Some(0));
    let refused = s.run(&["verify"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stdout).contains(&format!("signed by key {old}, which was revoked")));
    assert!(!s.keyring().join(format!("{old}.key")).exists());
    let relock = s.run(&["lock", "limits.json", "--bump", "major"]);
    assert!(
        text(&relock.stdout).contains("manifest 2.0.0"),
        "{}",
        text(&relock.stdout)
    );
    assert_eq!(s.run(&["verify"]).status.code(), Some(0));
    let listed = text(&s.run(&["keys", "list"]).stdout);
    assert!(
        listed.contains("REVOKED") && listed.contains("active"),
        "{listed}"
    );
}

#[test]
fn password_protected_and_environment_keys_sign_without_leaking() {
    let s = Scratch::new();
    s.write("limits.json", r#"{"p99_ms": 300}"#);
    let made = s
        .command()
        .args(["keys", "generate", "--encrypt"])
        .env("GAUNTLET_KEY_PASSWORD", "correct horse battery")
        .output()
        .unwrap();
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    let (id, public) = active_key(&s);
    let secret = std::fs::read_to_string(s.keyring().join(format!("{id}.key"))).unwrap();
    let no_password = s.run(&["lock", "limits.json"]);
    assert_eq!(no_password.status.code(), Some(2));
    assert!(text(&no_password.stderr).contains("password-protected"));
    assert!(
        !s.path().join("gauntlet.lock").exists(),
        "nothing half-written"
    );
    let wrong = s
        .command()
        .args(["lock", "limits.json"])
        .env("GAUNTLET_KEY_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2));
    assert!(text(&wrong.stderr).contains("Wrong password"));

    // CI: the secret key arrives in an environment variable; no keyring holds it.
    let ci = s
        .command()
        .args(["--keyring", "empty-keyring", "lock", "limits.json"])
        .env("GAUNTLET_SIGNING_KEY", &secret)
        .env("GAUNTLET_KEY_PASSWORD", "correct horse battery")
        .output()
        .unwrap();
    assert_eq!(ci.status.code(), Some(0), "{}", text(&ci.stderr));
    let checked = s.run(&["verify", "--key", public.to_str().unwrap()]);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked.stdout));
    let secret_line = secret.lines().nth(1).unwrap();
    for out in [&made, &no_password, &wrong, &ci, &checked] {
        assert!(
            !text(&out.stdout).contains(secret_line) && !text(&out.stderr).contains(secret_line)
        );
    }
}

#[test]
fn bad_input_is_exit_2_with_a_message_and_writes_nothing() {
    let s = Scratch::new();
    s.write("a.yaml", "x: [1, 2\n");
    s.run(&["keys", "generate"]);
    for (args, message) in [
        (
            vec!["lock", "missing.yaml"],
            "protected file missing.yaml is missing",
        ),
        (vec!["lock", "a.yaml"], "a.yaml: not valid YAML"),
        (vec!["lock"], "nothing to lock"),
        (vec!["verify"], "no lock at gauntlet.lock"),
        (vec!["verify", "--key", "not-a-key"], "not-a-key"),
        (vec!["attest", "verify", "nope.json"], "nope.json"),
        (
            vec!["keys", "revoke", "0123456789ABCDEF"],
            "no key 0123456789ABCDEF",
        ),
        (vec!["keys", "rotate", "--grace", "soon"], "--grace `soon`"),
        (vec!["keys", "generate"], "already has an active key"),
    ] {
        let out = s.run(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(message),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(!s.path().join("gauntlet.lock").exists());
}

#[test]
fn a_demo_runs_steps_1_and_5_and_its_attestation_verifies_independently() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    let out = s.run(&[
        "demo",
        "--skip",
        "chaos",
        "--skip",
        "dr",
        "--skip",
        "canary",
        "--skip",
        "observability",
        "--skip",
        "gates",
        "--skip",
        "readiness",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let runs = s.path().join(".gauntlet/runs");
    let run_dir = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let report = report(&run_dir);
    assert_eq!(
        step_names(&report),
        [
            "setup",
            "preflight",
            "rollback-rehearsal",
            "rotation",
            "security"
        ]
    );
    for step in &report["steps"].as_array().unwrap()[1..] {
        assert_eq!(step["outcome"], "pass", "{step}");
    }
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    let fingerprint = report["trust"]["green_fingerprint"].as_str().unwrap();
    assert!(
        md.contains(&format!("Green fingerprint: `{fingerprint}`")),
        "{md}"
    );
    assert!(md.contains("attestation.dsse.json"));

    let envelope = run_dir.join("attestation.dsse.json");
    let public = s
        .path()
        .join(report["trust"]["public_key"].as_str().unwrap());
    let ours = s.run(&[
        "attest",
        "verify",
        envelope.to_str().unwrap(),
        "--key",
        public.to_str().unwrap(),
    ]);
    assert_eq!(ours.status.code(), Some(0), "{}", text(&ours.stderr));
    assert!(text(&ours.stdout).contains(&format!("green fingerprint: {fingerprint}")));

    let pydeps = pydeps();
    let independent = tool("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/dsse_verify.py"
        ))
        .arg(&envelope)
        .arg(&public)
        .env("PYTHONPATH", &pydeps)
        .output()
        .unwrap();
    assert!(
        independent.status.success(),
        "securesystemslib (PYTHONPATH {pydeps}; scripts/test installs it): {}",
        text(&independent.stderr)
    );
    let key = report["trust"]["signing_key"].as_str().unwrap();
    assert_eq!(text(&independent.stdout).trim(), format!("{key} GO"));

    // The SBOM the preflight took passes the official CycloneDX schema.
    let sbom = run_dir.join("evidence/preflight/sbom.cdx.json");
    assert!(cyclonedx_validates(&sbom).starts_with("1.5 "));

    // The stock minisign tool checks the signed release manifest.
    let manifest = tool("minisign")
        .args(["-Vm"])
        .arg(run_dir.join("release.lock"))
        .arg("-p")
        .arg(&public)
        .output()
        .unwrap();
    assert!(manifest.status.success(), "{}", text(&manifest.stderr));

    // A changed byte in the attestation is refused.
    let mut bytes = std::fs::read(&envelope).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let tampered = s.write("tampered.json", &String::from_utf8_lossy(&bytes));
    let refused = s.run(&[
        "attest",
        "verify",
        tampered.to_str().unwrap(),
        "--key",
        public.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));

    // No secret key material anywhere in what the run wrote or printed.
    let keys = s.demo_keyring();
    let secret = std::fs::read_dir(&keys)
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "key"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .unwrap();
    let secret_line = secret.lines().nth(1).unwrap();
    assert!(!text(&out.stdout).contains(secret_line) && !text(&out.stderr).contains(secret_line));
    let mut stack = vec![run_dir.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(secret_line),
                    "secret key material in {}",
                    path.display()
                );
                assert!(
                    path.extension().is_none_or(|x| x != "key"),
                    "a secret key file was left in the run directory: {}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn drift_between_runs_names_the_changed_flags_and_fingerprint() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    let quick = [
        "--skip",
        "chaos",
        "--skip",
        "dr",
        "--skip",
        "canary",
        "--skip",
        "observability",
        "--skip",
        "security",
        "--skip",
        "rotation",
        "--skip",
        "gates",
        "--skip",
        "readiness",
        "--quiet",
    ];
    let first = s.command().arg("demo").args(quick).output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let older_id = latest(&s)["run_id"].as_str().unwrap().to_string();
    // The same build and spec again: nothing drifted.
    s.command().arg("demo").args(quick).output().unwrap();
    let same = latest(&s);
    assert_eq!(same["drift"]["previous_run"], older_id.as_str());
    assert_eq!(same["drift"]["changes"], serde_json::json!([]));
    // A candidate shipping other flags: the report and `gauntlet drift` say what moved.
    let third = s
        .command()
        .args(["demo", "--defect", "auth-bypass"])
        .args(quick)
        .output()
        .unwrap();
    assert_eq!(third.status.code(), Some(0), "{}", text(&third.stderr));
    let newer = s.run_dirs().pop().unwrap();
    let report: Value =
        serde_json::from_slice(&std::fs::read(newer.join("report.json")).unwrap()).unwrap();
    let changes: Vec<&str> = report["drift"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        changes.contains(&"flags: write_auth: true → false"),
        "{changes:?}"
    );
    assert!(
        changes.iter().any(|c| c.starts_with("green fingerprint: ")),
        "{changes:?}"
    );
    let md = std::fs::read_to_string(newer.join("report.md")).unwrap();
    assert!(
        md.contains("## Drift since run `") && md.contains("write_auth: true → false"),
        "{md}"
    );
    let cli = s.run(&["drift", &older_id, "latest"]);
    assert_eq!(cli.status.code(), Some(1));
    assert!(
        text(&cli.stdout).contains("flags: write_auth: true → false"),
        "{}",
        text(&cli.stdout)
    );
    let none = s.run(&["drift", &older_id, &older_id]);
    assert_eq!(none.status.code(), Some(0));
    assert!(text(&none.stdout).contains("nothing changed"));
}

#[test]
fn a_required_signoff_holds_a_run_at_conditional_until_signed_and_is_bound_to_its_run() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    demo_project(&s);
    let spec = DEMO.replacen(
        "signoffs:\n  keys:",
        "signoffs:\n  required: [security]\n  keys:",
        1,
    );
    assert_ne!(spec, DEMO);
    s.write("gauntlet.yaml", &spec);
    // Security's demo keyring: the spec names its key as the one that speaks for security.
    for (name, text) in [
        (
            "keyring.json",
            include_str!("../../../examples/keys/security/keyring.json"),
        ),
        (
            "keyring.json.minisig",
            include_str!("../../../examples/keys/security/keyring.json.minisig"),
        ),
        (
            "root.pub",
            include_str!("../../../examples/keys/security/root.pub"),
        ),
        (
            "A40541CF3244D6CD.key",
            include_str!("../../../examples/keys/security/A40541CF3244D6CD.key"),
        ),
    ] {
        s.write(&format!("security/{name}"), text);
    }
    common::make_private(&s.path().join("security"));
    assert_eq!(s.run(&["keys", "generate"]).status.code(), Some(0));
    assert_eq!(
        s.run(&["lock", "--spec", "gauntlet.yaml"]).status.code(),
        Some(0)
    );
    let quick = [
        "run",
        "gauntlet.yaml",
        "--skip",
        "chaos",
        "--skip",
        "dr",
        "--skip",
        "canary",
        "--skip",
        "observability",
        "--skip",
        "rotation",
        "--skip",
        "gates",
        "--skip",
        "readiness",
        "--quiet",
    ];
    let out = s.command().args(quick).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "CONDITIONAL exits 0: {}",
        text(&out.stderr)
    );
    let first = latest(&s);
    assert_eq!(first["decision"], "CONDITIONAL", "{}", first["summary"]);
    assert!(
        first["summary"]
            .as_str()
            .unwrap()
            .contains("awaiting sign-off: security")
    );
    assert_eq!(first["conditions"][0]["owner"], "appsec@example.com");
    let first_id = first["run_id"].as_str().unwrap().to_string();

    // The release manager's key is not security's: refused before anything is written.
    let wrong = s.run(&["signoff", &first_id, "--role", "security"]);
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong.stdout));
    assert!(
        text(&wrong.stderr).contains("gives role `security` key A40541CF3244D6CD"),
        "{}",
        text(&wrong.stderr)
    );
    assert!(!s.runs_dir().join(&first_id).join("signoffs").exists());
    let as_security = ["--keyring", "security", "signoff", &first_id];
    let signed = s.run(&[&as_security[..], &["--role", "security"]].concat());
    assert_eq!(signed.status.code(), Some(0), "{}", text(&signed.stderr));
    assert!(
        text(&signed.stdout).contains("decision: GO"),
        "{}",
        text(&signed.stdout)
    );
    let checked = s.run(&["signoff", &first_id, "--verify"]);
    assert!(text(&checked.stdout).contains("ok       security: appsec@example.com"));
    assert!(text(&checked.stdout).contains("decision: GO"));
    assert_eq!(
        s.run(&["signoff", &first_id, "--role", "cfo"])
            .status
            .code(),
        Some(2)
    );

    // The same sign-off carried over to another run is refused, and that run stays CONDITIONAL.
    s.command().args(quick).output().unwrap();
    let second = latest(&s);
    let second_id = second["run_id"].as_str().unwrap();
    assert_ne!(second_id, first_id);
    let (from, to) = (s.runs_dir().join(&first_id), s.runs_dir().join(second_id));
    std::fs::create_dir_all(to.join("signoffs")).unwrap();
    for f in ["security.json", "security.json.minisig"] {
        std::fs::copy(from.join("signoffs").join(f), to.join("signoffs").join(f)).unwrap();
    }
    let refused = s.run(&["signoff", second_id, "--verify"]);
    assert_eq!(refused.status.code(), Some(1));
    let said = text(&refused.stdout);
    assert!(
        said.contains(&format!("was made for run {first_id}")),
        "{said}"
    );
    assert!(said.contains("decision: CONDITIONAL"), "{said}");
}

#[test]
fn sboms_from_every_supported_lock_file_pass_the_official_cyclonedx_schema() {
    let s = Scratch::new();
    let files = [
        (
            "Cargo.lock",
            include_str!("../../../Cargo.lock").to_string(),
        ),
        (
            "package-lock.json",
            r#"{"name":"web","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"web","version":"1.0.0"},"node_modules/left-pad":{"version":"1.3.0","resolved":"https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz","integrity":"sha512-XI5MPzVNApjAyhQzphX8BkmKsKUxD4LdyK24iZeQEMWsOQ3Z4tw3fbGh3hnkKm0C6DKCPJ3ETqlbkxGZ9+91QVQ=="},"node_modules/@babel/core":{"version":"7.24.0","dev":true}}}"#.to_string(),
        ),
        (
            "requirements.txt",
            "requests[socks]==2.31.0 \\\n    --hash=sha256:58cd2187c01e70e6e26505bca751777aa9f2ee0b7f4300988b709f44e013003f\nurllib3==2.2.1  # pinned\nflask>=2\n".to_string(),
        ),
        (
            "poetry.lock",
            "[[package]]\nname = \"Django\"\nversion = \"5.0.2\"\nfiles = [\n    {file = \"Django-5.0.2.tar.gz\", hash = \"sha256:b5bb1d11b2518a5f91372a282f24662f58f66749666b0a286ab057029f728080\"},\n]\n".to_string(),
        ),
        (
            "go.sum",
            "golang.org/x/net v0.21.0 h1:AQyQV4dYCvJ7vGmJyKki9+PBdyvhkSd8EIx/qb0AYv4=\ngolang.org/x/net v0.21.0/go.mod h1:bIjVDfnllIU7BJ2DNgfnXvpSvtn8VRwhlsaeUTyUS44=\n".to_string(),
        ),
    ];
    let mut args = vec!["sbom".to_string()];
    for (name, body) in &files {
        args.push(s.write(name, body).display().to_string());
    }
    let sbom = s.path().join("sbom.cdx.json");
    args.extend(["--name", "shop", "--release-version", "1.2.3", "--out"].map(String::from));
    args.push(sbom.display().to_string());
    let out = s.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
    let components = doc["components"].as_array().unwrap().len();
    // Every ecosystem is there, and the official schema accepts the whole document.
    for purl in ["pkg:cargo/", "pkg:npm/", "pkg:pypi/", "pkg:golang/"] {
        assert!(
            doc["components"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["purl"].as_str().unwrap_or("").starts_with(purl)),
            "no {purl} component"
        );
    }
    assert_eq!(cyclonedx_validates(&sbom), format!("1.5 {components}"));
}
