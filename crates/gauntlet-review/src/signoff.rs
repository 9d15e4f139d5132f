//! Sign-offs: a role vouches for a run by signing the digest of its report with a keyring key.
//! The spec names the roles a GO needs; until each has signed, the decision is at best
//! CONDITIONAL. A sign-off is verified against the verifier's keyring, the run it names and
//! the digest of that run's report: one made for another run or another report is refused.

use std::path::{Path, PathBuf};

use gauntlet_report::{Condition, Decided, Decision, Report, sha256_hex};
use gauntlet_spec::{Plan, Signoffs};
use gauntlet_trust::SigningKey;
use gauntlet_trust::lock::signature_path;
use gauntlet_trust::{Trust, TrustError};
use serde::{Deserialize, Serialize};

pub const SIGNOFF_DIR: &str = "signoffs";
const SCHEMA: &str = "gauntlet.signoff/v1";
/// Conditions that sign-offs resolve have check ids `signoff.ROLE`.
const CHECK_PREFIX: &str = "signoff.";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signoff {
    pub schema: String,
    pub run_id: String,
    pub role: String,
    pub by: String,
    /// sha256 of the run's `report.json`, exactly as written at the end of the run.
    pub report_sha256: String,
    pub time: String,
}

/// At the end of a run: every required role becomes a condition until it signs.
pub fn require(decided: &mut Decided, plan: &Plan) {
    let Some(section) = &plan.signoffs else {
        return;
    };
    if !matches!(decided.decision, Decision::Go | Decision::Conditional) {
        return;
    }
    let roles: Vec<&str> = section.required.iter().map(String::as_str).collect();
    if roles.is_empty() {
        return;
    }
    for role in &roles {
        decided.conditions.push(Condition {
            check: format!("{CHECK_PREFIX}{role}"),
            reason: format!("awaiting sign-off: {role} (`gauntlet signoff RUN --role {role}`)"),
            owner_role: Some(role.to_string()),
            owner: plan.service.owners.get(*role).cloned(),
            deadline: None,
        });
    }
    let tally = decided
        .summary
        .rfind(" (")
        .map(|i| decided.summary[i..].to_string())
        .unwrap_or_default();
    decided.decision = Decision::Conditional;
    decided.summary = format!(
        "CONDITIONAL: awaiting sign-off: {}{tally}",
        roles.join(", ")
    );
}

fn record_path(run_dir: &Path, role: &str) -> PathBuf {
    run_dir.join(SIGNOFF_DIR).join(format!("{role}.json"))
}

/// Signs `run_dir`'s report for `role`, as `by`, with `key`.
/// Signs off as `role` once the run's spec knows the role (`service.owners`) and, when it
/// pins a key for the role (`signoffs.keys`), `key` is that key; `by` defaults to the role's
/// owner.
pub fn sign_as(
    run_dir: &Path,
    run_id: &str,
    spec: Option<&Plan>,
    role: &str,
    by: Option<String>,
    key: &SigningKey,
) -> Result<Signoff, TrustError> {
    let owners = spec.map(|s| s.service.owners.clone()).unwrap_or_default();
    if !owners.contains_key(role) {
        return Err(TrustError::Input(format!(
            "role `{role}` is not in the run's `service.owners` ({})",
            owners.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let by = by
        .or_else(|| owners.get(role).cloned())
        .unwrap_or_else(|| role.to_string());
    match spec
        .and_then(|s| s.signoffs.as_ref())
        .and_then(|s| role_key(s, role))
    {
        Some(Ok(Trust::Key { id, .. })) if id != key.id => {
            return Err(TrustError::Input(format!(
                "the run's spec gives role `{role}` key {id} (`signoffs.keys`); this signing key is {}: sign with the {role} keyring (--keyring) or GAUNTLET_SIGNING_KEY",
                key.id
            )));
        }
        Some(Err(e)) => return Err(e),
        _ => {}
    }
    sign(run_dir, run_id, role, &by, key)
}

pub fn sign(
    run_dir: &Path,
    run_id: &str,
    role: &str,
    by: &str,
    key: &SigningKey,
) -> Result<Signoff, TrustError> {
    if role.is_empty()
        || !role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(TrustError::Input(format!("`{role}` is not a role name")));
    }
    let report = run_dir.join("report.json");
    let bytes = std::fs::read(&report).map_err(|e| TrustError::io(&report, e))?;
    let signoff = Signoff {
        schema: SCHEMA.into(),
        run_id: run_id.into(),
        role: role.into(),
        by: by.into(),
        report_sha256: sha256_hex(&bytes),
        time: crate::now_rfc3339(),
    };
    let body = gauntlet_trust::json_document(&signoff, "sign-off")?;
    let comment = format!("gauntlet sign-off\trun:{run_id}\trole:{role}\tby:{by}");
    let signature = key.sign_minisign(&body, &comment)?;
    let path = record_path(run_dir, role);
    gauntlet_report::write_atomic(&path, &body).map_err(|e| TrustError::io(&path, e))?;
    let sig = signature_path(&path);
    gauntlet_report::write_atomic(&sig, signature.as_bytes())
        .map_err(|e| TrustError::io(&sig, e))?;
    Ok(signoff)
}

/// A sign-off and the key that signed it, or why it was refused.
pub type Checked = Result<(Signoff, String), String>;

/// The key the spec names for `role` (`signoffs.keys`), as a verifier; `None` when it names
/// none.
pub fn role_key(signoffs: &Signoffs, role: &str) -> Option<Result<Trust, TrustError>> {
    let line = signoffs.key_of(role)?;
    Some(
        Trust::key_from(line)
            .map_err(|e| TrustError::Key(format!("the key of role `{role}`: {e}"))),
    )
}

/// The keys that may sign for `role`: the one the run's spec names for it (`signoffs.keys`),
/// else whatever the verifier trusts. A role key the verifier knows as revoked (its keyring,
/// the statements it found) verifies nothing.
pub fn trust_for(
    role: &str,
    signoffs: Option<&Signoffs>,
    trust: Option<&Trust>,
) -> Result<Trust, TrustError> {
    match signoffs.and_then(|s| role_key(s, role)) {
        Some(key) => key.map(|key| match trust {
            Some(verifier) => key.with_statuses(verifier.knowledge()),
            None => key,
        }),
        None => trust.cloned().ok_or_else(|| {
            TrustError::Key(format!(
                "no keyring or key to verify the {role} sign-off with (give --keyring or --key)"
            ))
        }),
    }
}

/// Every sign-off in the run directory, verified: signed by the role's key from the run's
/// spec (or, for a role without one, a key the verifier trusts), for this run, over this
/// report. Sorted by role.
pub fn verify_all(
    run_dir: &Path,
    run_id: &str,
    signoffs: Option<&Signoffs>,
    trust: Option<&Trust>,
) -> Vec<(String, Checked)> {
    let Ok(entries) = std::fs::read_dir(run_dir.join(SIGNOFF_DIR)) else {
        return Vec::new();
    };
    let report = std::fs::read(run_dir.join("report.json")).map(|b| sha256_hex(&b));
    let mut found: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|path| {
            let role = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let checked = trust_for(&role, signoffs, trust)
                .map_err(|e| e.to_string())
                .and_then(|t| verify_one(&path, &role, run_id, report.as_deref().ok(), &t));
            (role, checked)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

fn verify_one(
    path: &Path,
    role: &str,
    run_id: &str,
    report_sha256: Option<&str>,
    trust: &Trust,
) -> Checked {
    let what = format!("the {role} sign-off");
    let body = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let sig = std::fs::read(signature_path(path)).map_err(|_| format!("{what} is not signed"))?;
    let verified = trust
        .verify(&body, &sig, &what)
        .map_err(|e| e.to_string())?;
    let signoff: Signoff =
        serde_json::from_slice(&body).map_err(|e| format!("{what} is malformed: {e}"))?;
    if signoff.schema != SCHEMA || signoff.role != role {
        return Err(format!("{what} is for role `{}`", signoff.role));
    }
    if signoff.run_id != run_id {
        return Err(format!(
            "{what} was made for run {}, not this run ({run_id})",
            signoff.run_id
        ));
    }
    if Some(signoff.report_sha256.as_str()) != report_sha256 {
        return Err(format!(
            "{what} signs report digest {}, but this run's report is {}",
            signoff.report_sha256,
            report_sha256.unwrap_or("unreadable")
        ));
    }
    Ok((signoff, verified.key_id))
}

/// The decision once valid sign-offs resolve their conditions: a CONDITIONAL whose only
/// conditions were awaited sign-offs becomes GO; nothing else changes.
pub fn effective(report: &Report, signed: &[String]) -> (Decision, Vec<Condition>) {
    let remaining: Vec<Condition> = report
        .conditions
        .iter()
        .filter(|c| {
            c.check
                .strip_prefix(CHECK_PREFIX)
                .is_none_or(|role| !signed.iter().any(|s| s == role))
        })
        .cloned()
        .collect();
    let decision = if report.decision == Decision::Conditional && remaining.is_empty() {
        Decision::Go
    } else {
        report.decision
    };
    (decision, remaining)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(security_key: &str) -> Signoffs {
        let text = format!(
            "schema_version: 1\nservice: {{name: s, version: 1.0.0, owners: {{security: b@x, sre: a@x}}}}\n\
             targets: {{candidate: {{url: 'http://127.0.0.1:1'}}}}\ntraffic: {{rate: 1/s, requests: [{{path: /}}]}}\n\
             signoffs: {{required: [security], keys: {{security: {security_key}}}}}\n"
        );
        gauntlet_spec::plan_str("g.yaml", &text, &Default::default(), 1)
            .unwrap()
            .signoffs
            .unwrap()
    }

    #[test]
    fn a_role_with_a_key_in_the_spec_signs_with_that_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("report.json"), b"{}\n").unwrap();
        let mut ring = gauntlet_trust::Keyring::open(&dir.path().join("ring")).unwrap();
        let trusted = ring.generate(None).unwrap();
        let key = ring.signing_key().unwrap();
        let mut other = gauntlet_trust::Keyring::open(&dir.path().join("other")).unwrap();
        let security = other.generate(None).unwrap();
        let keyring = Trust::Keyring(ring);

        sign(&run, "r1", "security", "b@x", &key).unwrap();
        sign(&run, "r1", "sre", "a@x", &key).unwrap();
        // The spec gives security another key: the keyring's trust does not speak for it;
        // sre has no key in the spec, so the keyring decides.
        let found = verify_all(&run, "r1", Some(&spec(&security.public)), Some(&keyring));
        let (role, refused) = &found[0];
        assert_eq!(role, "security");
        let why = refused.as_ref().unwrap_err();
        assert!(
            why.contains(&format!("not by the given key {}", security.id)),
            "{why}"
        );
        assert!(found[1].1.is_ok(), "{found:?}");
        // With the keyring's key as security's, the same sign-off verifies, even with no
        // keyring at hand.
        let found = verify_all(&run, "r1", Some(&spec(&trusted.public)), None);
        assert!(found[0].1.is_ok(), "{found:?}");
        assert!(
            found[1]
                .1
                .as_ref()
                .unwrap_err()
                .contains("no keyring or key")
        );
    }
}
