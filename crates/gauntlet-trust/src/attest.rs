//! The signed decision: an in-toto Statement v1 whose predicate is shaped like a SLSA
//! verification summary, in a DSSE envelope. Its subject is the release (and any artifact
//! digests given); its predicate records the decision, the green fingerprint, the spec
//! digest, each step's outcome and the gauntlet version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::TrustError;
use crate::canonical::canonical_json;
use crate::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
use crate::keyring::{SigningKey, Trust};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/verification_summary/v1";
pub const VERIFIER_ID: &str = "https://gauntlet.invalid/verifier/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    pub digest: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Value,
}

/// What a run decided, for the attestation.
#[derive(Debug, Clone)]
pub struct DecisionRecord {
    pub release_name: String,
    pub release_version: String,
    /// The sha256 of the run's signed release manifest, when preflight made one.
    pub manifest_sha256: Option<String>,
    /// (path, sha256) of each artifact the spec names.
    pub artifacts: Vec<(String, String)>,
    /// GO, CONDITIONAL, NO-GO, INCONCLUSIVE or ABORTED.
    pub decision: String,
    pub green_fingerprint: Option<String>,
    pub spec_name: String,
    pub spec_sha256: String,
    pub run_id: String,
    pub time: String,
    /// (step, outcome, checks)
    pub steps: Vec<(String, String, usize)>,
    pub gauntlet_version: String,
}

impl DecisionRecord {
    pub fn passed(&self) -> bool {
        matches!(self.decision.as_str(), "GO" | "CONDITIONAL")
    }

    pub fn statement(&self) -> Statement {
        let resource = format!("pkg:generic/{}@{}", self.release_name, self.release_version);
        let mut subject = vec![Subject {
            name: resource.clone(),
            digest: BTreeMap::from([(
                "sha256".to_string(),
                self.manifest_sha256
                    .clone()
                    .unwrap_or_else(|| self.spec_sha256.clone()),
            )]),
        }];
        subject.extend(self.artifacts.iter().map(|(name, sha)| Subject {
            name: name.clone(),
            digest: BTreeMap::from([("sha256".to_string(), sha.clone())]),
        }));
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|(name, outcome, checks)| json!({"name": name, "outcome": outcome, "checks": checks}))
            .collect();
        let predicate = json!({
            "verifier": {"id": VERIFIER_ID, "version": {"gauntlet": self.gauntlet_version}},
            "timeVerified": self.time,
            "resourceUri": resource,
            "policy": {"uri": self.spec_name, "digest": {"sha256": self.spec_sha256}},
            "inputAttestations": self.manifest_sha256.as_ref().map(|m| vec![json!({
                "uri": "release.lock", "digest": {"sha256": m}
            })]).unwrap_or_default(),
            "verificationResult": if self.passed() { "PASSED" } else { "FAILED" },
            "verifiedLevels": if self.passed() {
                vec![format!("GAUNTLET_{}", self.decision.replace('-', "_"))]
            } else {
                Vec::new()
            },
            "gauntlet": {
                "decision": self.decision,
                "greenFingerprint": self.green_fingerprint,
                "specDigest": {"sha256": self.spec_sha256},
                "run": self.run_id,
                "steps": steps,
            },
        });
        Statement {
            statement_type: STATEMENT_TYPE.to_string(),
            subject,
            predicate_type: PREDICATE_TYPE.to_string(),
            predicate,
        }
    }

    /// The DSSE envelope's bytes (compact JSON).
    pub fn sign(&self, key: &SigningKey) -> Result<Vec<u8>, TrustError> {
        let statement = serde_json::to_value(self.statement()).unwrap_or_default();
        let body = canonical_json(&statement).map_err(TrustError::Input)?;
        Ok(Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &body, key)?.to_bytes())
    }
}

/// What `attest verify` found.
#[derive(Debug, Clone)]
pub struct Attested {
    pub key_id: String,
    pub statement: Statement,
}

impl Attested {
    pub fn decision(&self) -> &str {
        self.statement.predicate["gauntlet"]["decision"]
            .as_str()
            .unwrap_or("UNKNOWN")
    }
}

/// Verifies an attestation file's bytes against `trust` and returns its statement.
pub fn verify(bytes: &[u8], trust: &Trust, what: &str) -> Result<Attested, TrustError> {
    let envelope = Envelope::parse(bytes, what)?;
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(TrustError::Verify(format!(
            "{what}: payload type `{}` is not an in-toto statement",
            envelope.payload_type
        )));
    }
    let (body, key_id) = envelope.verify(trust, what)?;
    let statement: Statement = serde_json::from_slice(&body).map_err(|e| {
        TrustError::Verify(format!(
            "{what}: the payload is not an in-toto statement: {e}"
        ))
    })?;
    if statement.statement_type != STATEMENT_TYPE || statement.predicate_type != PREDICATE_TYPE {
        return Err(TrustError::Verify(format!(
            "{what}: a `{}` statement with a `{}` predicate is not a gauntlet decision",
            statement.statement_type, statement.predicate_type
        )));
    }
    Ok(Attested { key_id, statement })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::Keyring;

    fn record(decision: &str) -> DecisionRecord {
        DecisionRecord {
            release_name: "shop".into(),
            release_version: "1.5.0".into(),
            manifest_sha256: Some("ab".repeat(32)),
            artifacts: vec![("shop.tar".into(), "cd".repeat(32))],
            decision: decision.into(),
            green_fingerprint: Some("ef".repeat(32)),
            spec_name: "gauntlet.yaml".into(),
            spec_sha256: "01".repeat(32),
            run_id: "r1".into(),
            time: "2026-11-22T00:00:00Z".into(),
            steps: vec![("preflight".into(), "pass".into(), 5)],
            gauntlet_version: "0.1.0".into(),
        }
    }

    #[test]
    fn a_signed_decision_verifies_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = Keyring::open(dir.path()).unwrap();
        ring.generate(None).unwrap();
        let bytes = record("GO").sign(&ring.signing_key().unwrap()).unwrap();
        let got = verify(&bytes, &Trust::Keyring(ring), "a").unwrap();
        assert_eq!(got.decision(), "GO");
        assert_eq!(got.statement.subject.len(), 2);
        assert_eq!(got.statement.predicate["verificationResult"], "PASSED");
        assert_eq!(got.statement.predicate["verifiedLevels"][0], "GAUNTLET_GO");
        let failed = record("NO-GO").statement();
        assert_eq!(failed.predicate["verificationResult"], "FAILED");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]
        /// Any single changed byte of an attestation fails verification.
        #[test]
        fn any_flipped_byte_fails_verification(position in 0usize..100_000, xor in 1u8..=255) {
            use std::sync::OnceLock;
            static SIGNED: OnceLock<(tempfile::TempDir, Vec<u8>)> = OnceLock::new();
            let (dir, bytes) = SIGNED.get_or_init(|| {
                let dir = tempfile::tempdir().unwrap();
                let mut ring = Keyring::open(dir.path()).unwrap();
                ring.generate(None).unwrap();
                let bytes = record("GO").sign(&ring.signing_key().unwrap()).unwrap();
                (dir, bytes)
            });
            let ring = Keyring::open(dir.path()).unwrap();
            let mut bytes = bytes.clone();
            let at = position % bytes.len();
            bytes[at] ^= xor;
            proptest::prop_assert!(verify(&bytes, &Trust::Keyring(ring), "a").is_err());
        }
    }
}
