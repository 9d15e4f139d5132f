//! Configuration drift between two runs: what changed in the spec (by key path), in the
//! protected files, the flags and the SBOM of their signed release manifests, and in the
//! green fingerprint. Read from the run directories, so any two stored runs compare.

use std::path::Path;

use gauntlet_trust::lock::Lock;
use gauntlet_trust::{TrustError, canonical};
use serde_json::Value;

use gauntlet_trust::lock::MANIFEST_FILE;

/// At most this many key-path changes are listed per file.
const PER_FILE: usize = 25;

/// One line per change, `older` → `newer`; empty when nothing changed. The newer run's green
/// fingerprint is read from its report unless given (a run comparing itself before its
/// report is written).
pub fn between(
    older: &Path,
    newer: &Path,
    newer_fingerprint: Option<&str>,
) -> Result<Vec<String>, TrustError> {
    let mut out = Vec::new();
    let spec = |dir: &Path| {
        let path = dir.join("spec.yaml");
        let raw = std::fs::read(&path).map_err(|e| TrustError::io(&path, e))?;
        canonical::canonicalize(&path, &raw).map(|c| c.value.unwrap_or(Value::Null))
    };
    let (a, b) = (spec(older)?, spec(newer)?);
    push_changes(&mut out, "spec", &a, &b);

    let manifest = |dir: &Path| {
        std::fs::read(dir.join(MANIFEST_FILE))
            .ok()
            .and_then(|bytes| Lock::parse(&bytes, MANIFEST_FILE).ok())
    };
    match (manifest(older), manifest(newer)) {
        (Some(a), Some(b)) => manifests(&mut out, &a, &b),
        (Some(_), None) => out.push("release manifest: the newer run has none".into()),
        (None, Some(_)) => out.push("release manifest: the older run had none".into()),
        (None, None) => {}
    }

    let fingerprint = |dir: &Path| {
        std::fs::read(dir.join("report.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|r| r["trust"]["green_fingerprint"].as_str().map(String::from))
    };
    let newer_fingerprint = newer_fingerprint
        .map(String::from)
        .or_else(|| fingerprint(newer));
    if let (Some(a), Some(b)) = (fingerprint(older), newer_fingerprint)
        && a != b
    {
        out.push(format!("green fingerprint: {} → {}", short(&a), short(&b)));
    }
    Ok(out)
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

fn push_changes(out: &mut Vec<String>, what: &str, a: &Value, b: &Value) {
    let changes = canonical::diff(a, b);
    for change in changes.iter().take(PER_FILE) {
        out.push(format!("{what}: {change}"));
    }
    if changes.len() > PER_FILE {
        out.push(format!("{what}: … and {} more", changes.len() - PER_FILE));
    }
}

fn manifests(out: &mut Vec<String>, a: &Lock, b: &Lock) {
    if a.version != b.version {
        out.push(format!("manifest version: {} → {}", a.version, b.version));
    }
    for old in &a.files {
        match b.files.iter().find(|f| f.path == old.path) {
            None => out.push(format!("file {}: no longer protected", old.path)),
            Some(new) if new.sha256 != old.sha256 => match (&old.content, &new.content) {
                (Some(x), Some(y)) => push_changes(out, &format!("file {}", old.path), x, y),
                _ => out.push(format!(
                    "file {}: content changed (sha256 {} → {})",
                    old.path,
                    short(&old.sha256),
                    short(&new.sha256)
                )),
            },
            Some(_) => {}
        }
    }
    for new in b
        .files
        .iter()
        .filter(|f| !a.files.iter().any(|o| o.path == f.path))
    {
        out.push(format!("file {}: newly protected", new.path));
    }
    match (&a.flags, &b.flags) {
        (Some(x), Some(y)) if x.sha256 != y.sha256 => {
            push_changes(out, "flags", &x.values, &y.values)
        }
        (Some(_), None) => out.push("flags: no snapshot in the newer run".into()),
        (None, Some(_)) => out.push("flags: no snapshot in the older run".into()),
        _ => {}
    }
    match (&a.sbom, &b.sbom) {
        (Some(x), Some(y)) if x.sha256 != y.sha256 => out.push(format!(
            "sbom: {} → {} components (sha256 {} → {})",
            x.components,
            y.components,
            short(&x.sha256),
            short(&y.sha256)
        )),
        (Some(_), None) => out.push("sbom: none in the newer run".into()),
        (None, Some(_)) => out.push("sbom: none in the older run".into()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gauntlet_trust::lock::{FlagSnapshot, LockedFile};

    fn run(dir: &Path, spec: &str, flags: Value, prompt_sha: &str, fingerprint: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("spec.yaml"), spec).unwrap();
        let mut lock = Lock::new(
            "1.0.0".into(),
            None,
            vec![LockedFile {
                path: "prompts/p.txt".into(),
                form: canonical::Form::Raw,
                sha256: prompt_sha.into(),
                raw_sha256: prompt_sha.into(),
                size: 3,
                content: None,
            }],
        );
        lock.flags = Some(FlagSnapshot {
            source: "candidate /flags".into(),
            sha256: canonical::canonical_json(&flags)
                .map(|b| gauntlet_report::sha256_hex(&b))
                .unwrap(),
            values: flags,
            path: None,
        });
        std::fs::write(dir.join(MANIFEST_FILE), lock.to_bytes().unwrap()).unwrap();
        std::fs::write(
            dir.join("report.json"),
            serde_json::json!({"trust": {"green_fingerprint": fingerprint}}).to_string(),
        )
        .unwrap();
    }

    #[test]
    fn names_what_changed_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        run(
            &a,
            "slos: {latency: {threshold: 300ms}}\nx: 1\n",
            serde_json::json!({"auth": true}),
            "aa",
            "f1",
        );
        run(
            &b,
            "# same x\nx: 1\nslos: {latency: {threshold: 450ms}}\n",
            serde_json::json!({"auth": false}),
            "bb",
            "f2",
        );
        assert_eq!(
            between(&a, &b, None).unwrap(),
            [
                r#"spec: slos.latency.threshold: "300ms" → "450ms""#,
                "file prompts/p.txt: content changed (sha256 aa → bb)",
                "flags: auth: true → false",
                "green fingerprint: f1 → f2",
            ]
        );
        assert!(between(&a, &a, None).unwrap().is_empty());
    }
}
