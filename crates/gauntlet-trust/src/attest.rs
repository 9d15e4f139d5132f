//! The signed decision, as two in-toto Statements v1 in DSSE envelopes, each read correctly by
//! tools that know nothing of gauntlet:
//!
//! - a SLSA verification summary (`https://slsa.dev/verification_summary/v1`): PASSED only for
//!   GO; CONDITIONAL, NO-GO, INCONCLUSIVE and ABORTED are FAILED with `verifiedLevels:
//!   ["FAILED"]`, so a generic policy that checks PASSED never ships a release still awaiting
//!   its conditions;
//! - an in-toto test result (`https://in-toto.io/attestation/test-result/v0.1`): PASSED (GO),
//!   WARNED (CONDITIONAL) or FAILED, with the checks that passed, warned and failed.
//!
//! Both name the release (and any artifact digests) as subject, the spec as executed and the
//! signed release manifest by resolvable URIs with digests, and carry gauntlet's own decision
//! under an extension field named by a URI, as in-toto's parsing rules ask.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Trust;
use crate::TrustError;
use crate::canonical::canonical_json;
use crate::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
use crate::keys::SigningKey;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const VSA_PREDICATE: &str = "https://slsa.dev/verification_summary/v1";
pub const TEST_RESULT_PREDICATE: &str = "https://in-toto.io/attestation/test-result/v0.1";
pub const VERIFIER_ID: &str = "https://gauntlet.invalid/verifier/v1";
/// The extension field that carries gauntlet's own decision in either predicate.
pub const DECISION_EXTENSION: &str = "https://gauntlet.invalid/attestation/decision/v1";
/// The level a GO verifies (custom levels must not start with `SLSA_`).
pub const GO_LEVEL: &str = "GAUNTLET_GO";

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

/// One check, for the test-result lists.
#[derive(Debug, Clone)]
pub struct CheckRecord {
    /// `step.check`.
    pub id: String,
    /// pass, warn, fail, inconclusive or skipped.
    pub outcome: String,
    /// Dry-run checks are reported but never decide; they stay out of the lists.
    pub deciding: bool,
}

/// What a run decided, for the attestations.
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
    /// sha256 of the spec as the run executed it (its `spec.yaml`).
    pub spec_sha256: String,
    pub run_id: String,
    pub time: String,
    /// (step, outcome, checks)
    pub steps: Vec<(String, String, usize)>,
    pub checks: Vec<CheckRecord>,
    pub gauntlet_version: String,
    /// Where the run's files resolve, ending in `/`: the spec's `trust.evidence_url` for the
    /// run, or the `file:` URI of the run directory.
    pub evidence_uri: String,
}

impl DecisionRecord {
    pub fn passed(&self) -> bool {
        self.decision == "GO"
    }

    fn resource_uri(&self) -> String {
        format!("pkg:generic/{}@{}", self.release_name, self.release_version)
    }

    fn subjects(&self) -> Vec<Subject> {
        let mut subject = vec![Subject {
            name: self.resource_uri(),
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
        subject
    }

    fn spec_descriptor(&self) -> Value {
        json!({
            "name": "spec.yaml",
            "uri": format!("{}spec.yaml", self.evidence_uri),
            "digest": {"sha256": self.spec_sha256},
        })
    }

    fn manifest_descriptor(&self) -> Option<Value> {
        self.manifest_sha256.as_ref().map(|m| {
            json!({
                "name": "release.lock",
                "uri": format!("{}release.lock", self.evidence_uri),
                "digest": {"sha256": m},
            })
        })
    }

    /// gauntlet's own account, under its extension field.
    fn extension(&self) -> Value {
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|(name, outcome, checks)| json!({"name": name, "outcome": outcome, "checks": checks}))
            .collect();
        json!({
            "decision": self.decision,
            "greenFingerprint": self.green_fingerprint,
            "specDigest": {"sha256": self.spec_sha256},
            "run": self.run_id,
            "runUri": self.evidence_uri,
            "steps": steps,
        })
    }

    /// The SLSA verification summary.
    pub fn statement(&self) -> Statement {
        let mut predicate = json!({
            "verifier": {"id": VERIFIER_ID, "version": {"gauntlet": self.gauntlet_version}},
            "timeVerified": self.time,
            "resourceUri": self.resource_uri(),
            "policy": {"uri": format!("{}spec.yaml", self.evidence_uri), "digest": {"sha256": self.spec_sha256}},
            "inputAttestations": self.manifest_descriptor().map(|m| vec![json!({"uri": m["uri"], "digest": m["digest"]})]).unwrap_or_default(),
            "verificationResult": if self.passed() { "PASSED" } else { "FAILED" },
            "verifiedLevels": [if self.passed() { GO_LEVEL } else { "FAILED" }],
        });
        predicate[DECISION_EXTENSION] = self.extension();
        Statement {
            statement_type: STATEMENT_TYPE.to_string(),
            subject: self.subjects(),
            predicate_type: VSA_PREDICATE.to_string(),
            predicate,
        }
    }

    /// The in-toto test result.
    pub fn test_result(&self) -> Statement {
        let list = |wanted: &[&str]| -> Vec<&str> {
            self.checks
                .iter()
                .filter(|c| c.deciding && wanted.contains(&c.outcome.as_str()))
                .map(|c| c.id.as_str())
                .collect()
        };
        let result = match self.decision.as_str() {
            "GO" => "PASSED",
            "CONDITIONAL" => "WARNED",
            _ => "FAILED",
        };
        let mut configuration = vec![self.spec_descriptor()];
        configuration.extend(self.manifest_descriptor());
        let mut predicate = json!({
            "result": result,
            "configuration": configuration,
            "url": self.evidence_uri,
            "passedTests": list(&["pass"]),
            "warnedTests": list(&["warn"]),
            "failedTests": list(&["fail", "inconclusive"]),
        });
        predicate[DECISION_EXTENSION] = self.extension();
        Statement {
            statement_type: STATEMENT_TYPE.to_string(),
            subject: self.subjects(),
            predicate_type: TEST_RESULT_PREDICATE.to_string(),
            predicate,
        }
    }

    /// The DSSE envelope of the verification summary (compact JSON).
    pub fn sign(&self, key: &SigningKey) -> Result<Vec<u8>, TrustError> {
        sign_statement(&self.statement(), key)
    }

    /// The DSSE envelope of the test result (compact JSON).
    pub fn sign_test_result(&self, key: &SigningKey) -> Result<Vec<u8>, TrustError> {
        sign_statement(&self.test_result(), key)
    }
}

fn sign_statement(statement: &Statement, key: &SigningKey) -> Result<Vec<u8>, TrustError> {
    let value =
        serde_json::to_value(statement).map_err(|e| TrustError::document("statement", e))?;
    let body = canonical_json(&value)?;
    Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &body, key)?.to_bytes()
}

/// What `attest verify` found.
#[derive(Debug, Clone)]
pub struct Attested {
    pub key_id: String,
    pub statement: Statement,
}

impl Attested {
    /// gauntlet's decision, from the extension field.
    pub fn decision(&self) -> &str {
        self.extension()["decision"].as_str().unwrap_or("UNKNOWN")
    }

    /// gauntlet's own account in the predicate.
    pub fn extension(&self) -> &Value {
        &self.statement.predicate[DECISION_EXTENSION]
    }

    /// The digest the release subject carries: its signed manifest's (or, for a run
    /// without one, its spec's).
    pub fn release_digest(&self) -> Option<&str> {
        self.statement
            .subject
            .first()
            .and_then(|s| s.digest.get("sha256"))
            .map(String::as_str)
    }

    /// Whether a file with this sha256 is one of the subjects.
    pub fn has_subject(&self, sha256: &str) -> bool {
        self.statement
            .subject
            .iter()
            .any(|s| s.digest.get("sha256").is_some_and(|d| d == sha256))
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
    let known = [VSA_PREDICATE, TEST_RESULT_PREDICATE];
    if statement.statement_type != STATEMENT_TYPE
        || !known.contains(&statement.predicate_type.as_str())
        || !statement.predicate[DECISION_EXTENSION].is_object()
    {
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
    use crate::Keyring;

    fn record(decision: &str) -> DecisionRecord {
        DecisionRecord {
            release_name: "shop".into(),
            release_version: "1.5.0".into(),
            manifest_sha256: Some("ab".repeat(32)),
            artifacts: vec![("shop.tar".into(), "cd".repeat(32))],
            decision: decision.into(),
            green_fingerprint: Some("ef".repeat(32)),
            spec_sha256: "01".repeat(32),
            run_id: "r1".into(),
            time: "2026-11-22T00:00:00Z".into(),
            steps: vec![("preflight".into(), "pass".into(), 5)],
            checks: vec![
                CheckRecord {
                    id: "preflight.sbom".into(),
                    outcome: "pass".into(),
                    deciding: true,
                },
                CheckRecord {
                    id: "canary.burn".into(),
                    outcome: "fail".into(),
                    deciding: false,
                },
                CheckRecord {
                    id: "security.auth".into(),
                    outcome: "warn".into(),
                    deciding: true,
                },
            ],
            gauntlet_version: "0.1.0".into(),
            evidence_uri: "https://ci.example.com/runs/r1/".into(),
        }
    }

    #[test]
    fn a_signed_decision_verifies_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = Keyring::open(&dir.path().join("keys")).unwrap();
        ring.generate(None).unwrap();
        let bytes = record("GO").sign(&ring.signing_key().unwrap()).unwrap();
        let got = verify(&bytes, &Trust::Keyring(ring), "a").unwrap();
        assert_eq!(got.decision(), "GO");
        assert_eq!(got.statement.subject.len(), 2);
        assert_eq!(got.statement.predicate["verificationResult"], "PASSED");
        assert_eq!(got.statement.predicate["verifiedLevels"], json!([GO_LEVEL]));
        assert_eq!(
            got.statement.predicate["policy"]["uri"],
            "https://ci.example.com/runs/r1/spec.yaml"
        );
    }

    #[test]
    fn only_go_passes_in_either_predicate() {
        for (decision, vsa, test) in [
            ("GO", "PASSED", "PASSED"),
            ("CONDITIONAL", "FAILED", "WARNED"),
            ("NO-GO", "FAILED", "FAILED"),
            ("INCONCLUSIVE", "FAILED", "FAILED"),
            ("ABORTED", "FAILED", "FAILED"),
        ] {
            let r = record(decision);
            let summary = r.statement().predicate;
            assert_eq!(summary["verificationResult"], vsa, "{decision}");
            if vsa == "FAILED" {
                assert_eq!(summary["verifiedLevels"], json!(["FAILED"]), "{decision}");
            }
            let result = r.test_result().predicate;
            assert_eq!(result["result"], test, "{decision}");
            assert_eq!(result[DECISION_EXTENSION]["decision"], decision);
        }
        let result = record("CONDITIONAL").test_result().predicate;
        assert_eq!(result["passedTests"], json!(["preflight.sbom"]));
        assert_eq!(result["warnedTests"], json!(["security.auth"]));
        assert_eq!(
            result["failedTests"],
            json!([]),
            "a dry-run check decides nothing"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]
        /// Any single changed byte of an attestation fails verification, unless it fell in what
        /// DSSE leaves unsigned (the `keyid` hint): then what was signed reads back unchanged.
        #[test]
        fn any_flipped_byte_fails_verification(position in 0usize..100_000, xor in 1u8..=255) {
            use std::sync::OnceLock;
            static SIGNED: OnceLock<(tempfile::TempDir, Vec<u8>)> = OnceLock::new();
            let (dir, bytes) = SIGNED.get_or_init(|| {
                let dir = tempfile::tempdir().unwrap();
                let mut ring = Keyring::open(&dir.path().join("keys")).unwrap();
                ring.generate(None).unwrap();
                let bytes = record("GO").sign(&ring.signing_key().unwrap()).unwrap();
                (dir, bytes)
            });
            let ring = Keyring::open(&dir.path().join("keys")).unwrap();
            let original = Envelope::parse(bytes, "a").unwrap();
            let mut bytes = bytes.clone();
            let at = position % bytes.len();
            bytes[at] ^= xor;
            if verify(&bytes, &Trust::Keyring(ring), "a").is_ok() {
                let changed = Envelope::parse(&bytes, "a").unwrap();
                proptest::prop_assert_eq!(&changed.payload, &original.payload);
                proptest::prop_assert_eq!(&changed.payload_type, &original.payload_type);
                proptest::prop_assert_eq!(&changed.signatures[0].sig, &original.signatures[0].sig);
            }
        }
    }
}
