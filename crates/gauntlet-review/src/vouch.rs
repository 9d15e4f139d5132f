//! Signed attestations of readiness items. A person vouches for an item (`attested:` in the
//! checklist) by signing its claim — service, item, owner role, who, the evidence and the
//! status — with the key the spec names for that role (`signoffs.keys`). The claim is a JSON
//! statement under `attestations/` beside the spec, with a minisign signature next to it, so
//! the stock `minisign -Vm` checks it too. A claim that is signed by another key, names other
//! evidence or another status than the spec, or is not signed at all does not count.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gauntlet_spec::{AttestedStatus, ItemPlan as Item, Plan};
use gauntlet_trust::SigningKey;
use gauntlet_trust::lock::signature_path;
use gauntlet_trust::{Statuses, Trust, TrustError};
use serde::{Deserialize, Serialize};

use crate::signoff::role_key;

/// Where the statements live, relative to the spec's directory (and in the run directory).
pub const DIR: &str = "attestations";
const SCHEMA: &str = "gauntlet.readiness-attestation/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    pub schema: String,
    pub service: String,
    pub item: String,
    pub role: String,
    pub by: String,
    pub evidence: String,
    pub status: String,
    pub signed_at: String,
}

/// The statement's file name for an item: its name in lower case, runs of anything else
/// than letters and digits as one `-`.
pub fn file_name(item: &str) -> String {
    let mut slug = String::new();
    for c in item.chars() {
        if c.is_alphanumeric() {
            slug.extend(c.to_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    format!("{}.json", slug.trim_end_matches('-'))
}

pub fn status_word(status: AttestedStatus) -> &'static str {
    match status {
        AttestedStatus::Done => "done",
        AttestedStatus::Partial => "partial",
        AttestedStatus::Pending => "pending",
    }
}

/// The attested items of the checklist, by name.
fn attested_items(plan: &Plan) -> impl Iterator<Item = &Item> {
    plan.readiness()
        .into_iter()
        .flat_map(|r| r.categories.iter())
        .flat_map(|c| c.items.iter())
        .filter(|i| i.attested.is_some())
}

/// The item called `name`, if the checklist attests it.
pub fn find<'a>(plan: &'a Plan, name: &str) -> Result<&'a Item, TrustError> {
    let items: Vec<&Item> = attested_items(plan).collect();
    items
        .iter()
        .find(|i| i.name == name)
        .copied()
        .ok_or_else(|| {
            let names = items.iter().map(|i| i.name.as_str());
            TrustError::Input(match gauntlet_spec::did_you_mean(name, names.clone()) {
                Some(close) => {
                    format!("no attested item `{name}` in the checklist; did you mean `{close}`?")
                }
                None => format!(
                    "no attested item `{name}` in the checklist (attested items: {})",
                    names.collect::<Vec<_>>().join(", ")
                ),
            })
        })
}

fn claim(plan: &Plan, item: &Item, signed_at: String) -> Option<Statement> {
    let attested = item.attested.as_ref()?;
    Some(Statement {
        schema: SCHEMA.into(),
        service: plan.service.name.clone(),
        item: item.name.clone(),
        role: item.owner.clone(),
        by: attested.by.clone(),
        evidence: attested.evidence.clone(),
        status: status_word(attested.status).into(),
        signed_at,
    })
}

/// Signs `item`'s claim as the spec states it, with `key`, which must be the key of the
/// item's owner role when the spec names one. Returns the statement's path.
pub fn sign(
    plan: &Plan,
    spec_dir: &Path,
    item: &Item,
    key: &SigningKey,
) -> Result<PathBuf, TrustError> {
    let role = &item.owner;
    match plan.signoffs.as_ref().and_then(|s| role_key(s, role)) {
        Some(Ok(Trust::Key { id, .. })) if id != key.id => {
            return Err(TrustError::Input(format!(
                "`{}` is owned by {role}, whose key is {id} in the spec; this key is {}",
                item.name, key.id
            )));
        }
        Some(Err(e)) => return Err(e),
        _ => {}
    }
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let statement = claim(plan, item, now)
        .ok_or_else(|| TrustError::Input(format!("`{}` is not an attested item", item.name)))?;
    let body = gauntlet_trust::json_document(&statement, "readiness attestation")?;
    let comment = format!(
        "gauntlet readiness attestation\titem:{}\trole:{role}\tstatus:{}",
        item.name, statement.status
    );
    let signature = key.sign_minisign(&body, &comment)?;
    let path = spec_dir.join(DIR).join(file_name(&item.name));
    let sig = signature_path(&path);
    gauntlet_report::write_atomic(&sig, signature.as_bytes())
        .and_then(|()| gauntlet_report::write_atomic(&path, &body))
        .map_err(|e| TrustError::io(&path, e))?;
    Ok(path)
}

/// Checks one item's signed claim against the spec: `Ok(what verified)` or why it does not
/// count.
fn check(plan: &Plan, spec_dir: &Path, item: &Item, trust: &Trust) -> Result<String, String> {
    let name = file_name(&item.name);
    let path = spec_dir.join(DIR).join(&name);
    let resign = format!(
        "the owner signs it with `gauntlet attest item \"{}\"`",
        item.name
    );
    let body = std::fs::read(&path)
        .map_err(|_| format!("no signed attestation ({DIR}/{name}): {resign}"))?;
    let signature = std::fs::read(signature_path(&path))
        .map_err(|_| format!("{DIR}/{name} is not signed: {resign}"))?;
    let what = format!("the attestation of `{}`", item.name);
    let verified = trust
        .verify(&body, &signature, &what)
        .map_err(|e| format!("{e} (the owner role {} must sign it)", item.owner))?;
    let signed: Statement = serde_json::from_slice(&body)
        .map_err(|e| format!("{DIR}/{name} is not an attestation statement: {e}"))?;
    let Some(expected) = claim(plan, item, signed.signed_at.clone()) else {
        return Err(format!("`{}` is not attested", item.name));
    };
    let differs: Vec<String> = [
        ("schema", &signed.schema, &expected.schema),
        ("service", &signed.service, &expected.service),
        ("item", &signed.item, &expected.item),
        ("role", &signed.role, &expected.role),
        ("by", &signed.by, &expected.by),
        ("evidence", &signed.evidence, &expected.evidence),
        ("status", &signed.status, &expected.status),
    ]
    .into_iter()
    .filter(|(_, a, b)| a != b)
    .map(|(field, signed, spec)| format!("{field} `{signed}` where the spec says `{spec}`"))
    .collect();
    if !differs.is_empty() {
        return Err(format!(
            "the signed attestation says {}: {resign}",
            differs.join(", ")
        ));
    }
    Ok(format!(
        "signed by {} ({}'s key {}) at {}",
        signed.by, item.owner, verified.key_id, signed.signed_at
    ))
}

/// Every attested item whose owner role has a key in the spec and that claims some progress
/// (done or partial): item name → what verified, or why the claim does not count. Items that
/// claim nothing (pending) or whose role has no key are not here.
///
/// `known` is what the verifier knows of keys' standing: a revoked role key vouches for nothing.
pub fn check_all(
    plan: &Plan,
    spec_dir: &Path,
    known: &Statuses,
) -> BTreeMap<String, Result<String, String>> {
    let mut found = BTreeMap::new();
    for item in attested_items(plan) {
        let claims = item
            .attested
            .as_ref()
            .is_some_and(|a| a.status != AttestedStatus::Pending);
        let Some(trust) = plan
            .signoffs
            .as_ref()
            .and_then(|s| role_key(s, &item.owner))
            .filter(|_| claims)
        else {
            continue;
        };
        let result = trust
            .map_err(|e| e.to_string())
            .and_then(|trust| check(plan, spec_dir, item, &trust.with_statuses(known.clone())));
        found.insert(item.name.clone(), result);
    }
    found
}

/// Copies the statements that verified (and their signatures) into the run directory, as
/// evidence that travels with the report.
pub fn keep(spec_dir: &Path, run_dir: &Path, checked: &BTreeMap<String, Result<String, String>>) {
    for name in checked
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(n, _)| file_name(n))
    {
        let from = spec_dir.join(DIR).join(&name);
        let to = run_dir.join(DIR).join(&name);
        for (from, to) in [
            (from.clone(), to.clone()),
            (signature_path(&from), signature_path(&to)),
        ] {
            if let Ok(bytes) = std::fs::read(&from) {
                let _ = gauntlet_report::write_atomic(&to, &bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_plain() {
        assert_eq!(
            file_name("threat model reviewed"),
            "threat-model-reviewed.json"
        );
        assert_eq!(file_name("  On-call: runbook!! "), "on-call-runbook.json");
        assert_eq!(file_name("../../etc/passwd"), "etc-passwd.json");
    }

    fn spec(key: &str, status: &str) -> Plan {
        let text = format!(
            "schema_version: 1\nservice: {{name: s, version: 1.0.0, owners: {{security: b@x}}}}\n\
             targets: {{candidate: {{url: 'http://127.0.0.1:1'}}}}\ntraffic: {{rate: 1/s, requests: [{{path: /}}]}}\n\
             signoffs: {{keys: {{security: {key}}}}}\n\
             readiness:\n  categories:\n    - name: security\n      items:\n\
             \x20       - name: threat model\n          owner: security\n\
             \x20         attested: {{by: b@x, evidence: 'https://wiki/tm', status: {status}}}\n"
        );
        gauntlet_spec::plan_str("g.yaml", &text, &Default::default(), 1).unwrap()
    }

    #[test]
    fn a_claim_counts_only_signed_by_its_role_key_and_as_the_spec_states_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = gauntlet_trust::Keyring::open(&dir.path().join("keys")).unwrap();
        let owner = ring.generate(None).unwrap();
        let key = ring.signing_key().unwrap();
        let mut other = gauntlet_trust::Keyring::open(&dir.path().join("other")).unwrap();
        let stranger_record = other.generate(None).unwrap();
        let stranger = other.signing_key().unwrap();

        let done = spec(&owner.public, "done");
        let item = find(&done, "threat model").unwrap();
        // Unsigned: does not count.
        let checked = check_all(&done, dir.path(), &Statuses::default());
        assert!(
            checked["threat model"]
                .as_ref()
                .unwrap_err()
                .contains("no signed attestation")
        );
        // Signed by the owner's key: counts, and the stock format is what minisign reads.
        let path = sign(&done, dir.path(), item, &key).unwrap();
        assert!(path.ends_with("attestations/threat-model.json"));
        let ok = check_all(&done, dir.path(), &Statuses::default());
        assert!(
            ok["threat model"].as_ref().unwrap().contains(&owner.id),
            "{ok:?}"
        );
        // A stranger's key is refused when signing and when verifying.
        let err = sign(&done, dir.path(), item, &stranger)
            .unwrap_err()
            .to_string();
        assert!(err.contains("owned by security"), "{err}");
        let theirs = spec(&stranger_record.public, "done");
        let refused = check_all(&theirs, dir.path(), &Statuses::default());
        assert!(
            refused["threat model"]
                .as_ref()
                .unwrap_err()
                .contains("not by the given key")
        );
        // The spec now claims less than what was signed: the signature no longer fits.
        let partial = spec(&owner.public, "partial");
        let moved = check_all(&partial, dir.path(), &Statuses::default());
        let why = moved["threat model"].as_ref().unwrap_err();
        assert!(
            why.contains("status `done` where the spec says `partial`"),
            "{why}"
        );
        // A pending item claims nothing and needs no signature.
        assert!(
            check_all(
                &spec(&owner.public, "pending"),
                dir.path(),
                &Statuses::default()
            )
            .is_empty()
        );
        // A flipped byte in the statement breaks the signature.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.iter().position(|b| *b == b'w').unwrap();
        bytes[at] = b'W';
        std::fs::write(&path, bytes).unwrap();
        let broken = check_all(&done, dir.path(), &Statuses::default());
        assert!(
            broken["threat model"]
                .as_ref()
                .unwrap_err()
                .contains("does not match")
        );
    }
}
