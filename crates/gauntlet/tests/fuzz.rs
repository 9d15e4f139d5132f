//! The whole command-line surface, fuzzed: seeded mutations of a valid spec, judge input,
//! lock, attestation, lock files and keys go through the real binary, and every answer must
//! be one of the documented exit codes for bad or refused input (0, 1, 2, 3), never an
//! internal error (4), a panic (101) or a signal. `GAUNTLET_FUZZ_CASES` sets how many cases
//! (a few thousand here; `scripts/fuzz-cli` runs a larger corpus).

use std::path::{Path, PathBuf};

mod common;
use common::{Scratch, text};

/// A pinned generator: the same cases on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `seed`: a flipped byte, a cut, an insertion, a duplicated piece, a huge
/// number, a very long line, or a truncation.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let end = (at + rng.below(64)).min(out.len());
                out.drain(at..end);
            }
            2 => {
                let junk: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
                out.splice(at..at, junk);
            }
            3 => {
                let end = (at + rng.below(200)).min(out.len());
                let piece = out[at..end].to_vec();
                out.splice(at..at, piece);
            }
            4 => {
                let huge = [
                    "99999999999999999999",
                    "-1",
                    "1e308",
                    "0",
                    "18446744073709551616",
                ];
                out.splice(at..at, huge[rng.below(huge.len())].bytes());
            }
            5 => {
                let long = vec![b'x'; 66_000 + rng.below(10_000)];
                out.splice(at..at, long);
            }
            _ => out.truncate(at),
        }
    }
    out
}

fn cases() -> usize {
    std::env::var("GAUNTLET_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2500)
}

/// Runs `args` (FILE standing for the mutated input) in `dir` and checks the exit code.
fn check(s: &Scratch, dir: &Path, args: &[&str], input: &Path, case: usize) {
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            if *a == "FILE" {
                input.display().to_string()
            } else {
                a.to_string()
            }
        })
        .collect();
    let out = s
        .command()
        .current_dir(dir)
        .args(&args)
        .env("GAUNTLET_KEY_PASSWORD", "fuzz")
        .output()
        .unwrap();
    let code = out.status.code();
    assert!(
        matches!(code, Some(0..=3)),
        "case {case}: `gauntlet {}` exited {code:?} (kept in {}): {}",
        args.join(" "),
        input.display(),
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("panicked"),
        "case {case}: {}",
        text(&out.stderr)
    );
}

/// Valid inputs to start from, and how each is fed to gauntlet.
fn surfaces(s: &Scratch) -> Vec<(&'static str, Vec<u8>, Vec<&'static str>)> {
    let demo = include_str!("../../../examples/demo.yaml");
    s.write("demo.yaml", demo);
    assert_eq!(s.run(&["keys", "generate"]).status.code(), Some(0));
    s.write("limits.json", r#"{"p99_ms": 300, "rules": ["a", "b"]}"#);
    assert_eq!(s.run(&["lock", "limits.json"]).status.code(), Some(0));
    let lock = std::fs::read(s.path().join("gauntlet.lock")).unwrap();
    let key = public_key(s);
    let key = key.to_str().unwrap().to_string();
    let key: &'static str = Box::leak(key.into_boxed_str());
    let mut csv = String::from("arm,ok,latency_ms,t_ms\n");
    for i in 0..400 {
        csv.push_str(&format!(
            "{},{},{},{i}\n",
            ["baseline", "candidate"][i % 2],
            i % 17 != 0,
            3 + i % 11
        ));
    }
    let envelope = attestation(s);
    vec![
        ("yaml", demo.as_bytes().to_vec(), vec!["validate", "FILE"]),
        (
            "rag.yaml",
            include_bytes!("../../../examples/rag/gauntlet.yaml").to_vec(),
            vec!["validate", "FILE"],
        ),
        ("csv", csv.into_bytes(), vec!["judge", "FILE", "--spec", "demo.yaml", "--stage", "2", "--json"]),
        ("lock", lock, vec!["verify", "--lock", "FILE", "--key", key]),
        ("dsse.json", envelope, vec!["attest", "verify", "FILE", "--key", key]),
        (
            "package-lock.json",
            br#"{"name":"w","version":"1.0.0","lockfileVersion":3,"packages":{"":{"dependencies":{"@a/b":"1"}},"node_modules/@a/b":{"version":"1.0.0","integrity":"sha512-AAAA","dependencies":{"c":"2"}},"node_modules/c":{"version":"2.0.0","dev":true}}}"#.to_vec(),
            vec!["sbom", "FILE", "--out", "sbom.json"],
        ),
        (
            "requirements.txt",
            b"requests[socks]==2.31.0 \\\n  --hash=sha256:58cd2187c01e70e6e26505bca751777aa9f2ee0b7f4300988b709f44e013003f\nnumpy == 1.26.4\n-e git+https://x/y.git@1#egg=black\n".to_vec(),
            vec!["sbom", "FILE", "--out", "sbom.json"],
        ),
        (
            "poetry.lock",
            b"[[package]]\nname = \"a\"\nversion = \"1\"\ngroups = [\"dev\"]\nfiles = [{file = \"a.whl\", hash = \"sha256:00\"}]\n[package.dependencies]\nb = \"*\"\n[metadata]\nlock-version = \"2.1\"\n".to_vec(),
            vec!["sbom", "FILE", "--out", "sbom.json"],
        ),
        ("key", std::fs::read(public_key(s)).unwrap(), vec!["keys", "import", "FILE", "--keyring", "imported"]),
        (
            "experiment.json",
            br#"{"title":"t","description":"d","configuration":{"u":{"type":"env","key":"U","default":"http://127.0.0.1:1"}},"steady-state-hypothesis":{"title":"h","probes":[{"type":"probe","name":"p","tolerance":200,"provider":{"type":"http","url":"${u}/x","timeout":[1,2]}}]},"method":[{"type":"action","name":"l","provider":{"type":"python","module":"chaostoxi.toxic.actions","func":"create_toxic","arguments":{"for_proxy":"db","toxic_type":"slicer","attributes":{"average_size":8,"delay":5}}},"pauses":{"after":1}},{"type":"action","name":"c","provider":{"type":"process","path":"true","arguments":"a b"}}],"rollbacks":[{"type":"action","name":"r","provider":{"type":"process","path":"true"}}]}"#.to_vec(),
            vec!["chaos", "--import", "FILE"],
        ),
    ]
}

/// A GO attestation signed by the scratch keyring's key, made as a run makes one.
fn attestation(s: &Scratch) -> Vec<u8> {
    use gauntlet_trust::attest::{CheckRecord, DecisionRecord};
    let key = gauntlet_trust::Keyring::open(&s.keyring())
        .unwrap()
        .signing_key()
        .unwrap();
    DecisionRecord {
        release_name: "shop".into(),
        release_version: "1.0.0".into(),
        manifest_sha256: Some("ab".repeat(32)),
        artifacts: vec![("shop.tar".into(), "cd".repeat(32))],
        decision: "GO".into(),
        green_fingerprint: Some("ef".repeat(32)),
        spec_sha256: "01".repeat(32),
        run_id: "r1".into(),
        time: "2026-11-30T00:00:00Z".into(),
        steps: vec![("preflight".into(), "pass".into(), 6)],
        checks: vec![CheckRecord {
            id: "preflight.sbom".into(),
            outcome: "pass".into(),
            deciding: true,
        }],
        gauntlet_version: "0.1.0".into(),
        evidence_uri: "https://ci.example.com/runs/r1/".into(),
    }
    .sign(&key)
    .unwrap()
}

fn public_key(s: &Scratch) -> PathBuf {
    let keys = std::fs::read_dir(s.keyring()).unwrap();
    keys.flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "pub") && !p.ends_with("root.pub"))
        .unwrap()
}

#[test]
fn no_input_makes_gauntlet_panic_or_answer_outside_its_exit_codes() {
    let s = Scratch::new();
    let surfaces = surfaces(&s);
    // The cases are drawn in order from one generator, so case i is the same input however
    // many workers check them; each worker runs the binary in its own folder (its outputs,
    // such as sbom.json, are its own). One process per case: the cores share the work.
    let next = std::sync::Mutex::new((Rng(0x00F0_2215), 0..cases()));
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for worker in 0..workers {
            let (s, surfaces, next) = (&s, &surfaces, &next);
            scope.spawn(move || {
                let dir = s.path().join(format!("worker-{worker}"));
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::copy(s.path().join("demo.yaml"), dir.join("demo.yaml")).unwrap();
                loop {
                    let (case, args, input) = {
                        let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
                        let (rng, cases) = &mut *next;
                        let Some(case) = cases.next() else { break };
                        let (ext, seed, args) = &surfaces[case % surfaces.len()];
                        let input = dir.join(format!("case-{}.{ext}", case % surfaces.len()));
                        std::fs::write(&input, mutate(rng, seed)).unwrap();
                        (case, args, input)
                    };
                    check(s, &dir, args, &input, case);
                }
            });
        }
    });
}
