//! DSSE envelopes around in-toto statements, signed with Ed25519 by a keyring key.
//!
//! The signature covers the pre-authentication encoding
//! `"DSSEv1" SP len(type) SP type SP len(body) SP body`. Envelopes are written as compact JSON
//! with no whitespace at all, so every byte of the file matters to verification. A signature's
//! `keyid` is optional and only a hint: every trusted key is tried, and the one whose signature
//! holds is the signer, whatever the envelope claims.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::Trust;
use crate::TrustError;
use crate::keys::{SigningKey, raw_public};

pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Fields DSSE does not define are ignored, as its readers must: they are not signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<Signature>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyid: Option<String>,
    pub sig: String,
}

/// DSSE's pre-authentication encoding.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

impl Envelope {
    pub fn sign(payload_type: &str, body: &[u8], key: &SigningKey) -> Result<Envelope, TrustError> {
        let sig = key.sign_ed25519(&pae(payload_type, body))?;
        Ok(Envelope {
            payload: STANDARD.encode(body),
            payload_type: payload_type.to_string(),
            signatures: vec![Signature {
                keyid: Some(key.id.clone()),
                sig: STANDARD.encode(sig),
            }],
        })
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, TrustError> {
        serde_json::to_vec(self).map_err(|e| TrustError::document("DSSE envelope", e))
    }

    pub fn parse(bytes: &[u8], what: &str) -> Result<Envelope, TrustError> {
        serde_json::from_slice(bytes)
            .map_err(|e| TrustError::Verify(format!("{what} is not a DSSE envelope: {e}")))
    }

    /// The payload and the key that signed it, once one signature by a key `trust` accepts
    /// verifies over it. Keys it knows but no longer trusts (revoked, expired) are named in
    /// the refusal when their signature is the one that holds.
    pub fn verify(&self, trust: &Trust, what: &str) -> Result<(Vec<u8>, String), TrustError> {
        let body = STANDARD
            .decode(&self.payload)
            .map_err(|e| TrustError::Verify(format!("{what}: the payload is not base64: {e}")))?;
        let message = pae(&self.payload_type, &body);
        let known = trust.known(what);
        let mut refusals = Vec::new();
        for signature in &self.signatures {
            let Ok(sig_bytes) = STANDARD.decode(&signature.sig) else {
                refusals.push(format!("{what}: a signature is not base64"));
                continue;
            };
            let Ok(sig) = ed25519_dalek::Signature::from_slice(&sig_bytes) else {
                refusals.push(format!("{what}: a signature is not an Ed25519 signature"));
                continue;
            };
            for (id, public, standing) in &known {
                let Ok(key) = raw_public(public).and_then(|raw| {
                    ed25519_dalek::VerifyingKey::from_bytes(&raw)
                        .map_err(|e| TrustError::Key(e.to_string()))
                }) else {
                    continue;
                };
                if key.verify_strict(&message, &sig).is_ok() {
                    match standing {
                        Ok(()) => return Ok((body, id.clone())),
                        Err(e) => refusals.push(e.to_string()),
                    }
                }
            }
        }
        if self.signatures.is_empty() {
            refusals.push(format!("{what} carries no signature"));
        }
        if refusals.is_empty() {
            let claimed: Vec<&str> = self
                .signatures
                .iter()
                .filter_map(|s| s.keyid.as_deref())
                .collect();
            refusals.push(format!(
                "no signature of {what} verifies with {}{}: it was signed by another key, or changed after it was signed",
                trust.describe(),
                if claimed.is_empty() {
                    String::new()
                } else {
                    format!(" (the envelope names key {})", claimed.join(", "))
                }
            ));
        }
        Err(TrustError::Verify(refusals.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keyring;

    #[test]
    fn pae_matches_the_specification_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn envelopes_verify_and_refuse_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = Keyring::open(&dir.path().join("keys")).unwrap();
        ring.generate(None).unwrap();
        let key = ring.signing_key().unwrap();
        let env = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, br#"{"a":1}"#, &key).unwrap();
        let trust = Trust::Keyring(ring.clone());
        let (body, keyid) = env.verify(&trust, "att").unwrap();
        assert_eq!(
            (body.as_slice(), keyid),
            (&br#"{"a":1}"#[..], key.id.clone())
        );
        let mut other = env.clone();
        other.payload_type = "text/plain".into();
        assert!(
            other
                .verify(&trust, "att")
                .unwrap_err()
                .to_string()
                .contains("changed after it was signed")
        );
        // The keyid is a hint only: none, or a wrong one, changes nothing.
        let mut anonymous = env.clone();
        anonymous.signatures[0].keyid = None;
        assert_eq!(anonymous.verify(&trust, "att").unwrap().1, key.id);
        let mut misnamed = env.clone();
        misnamed.signatures[0].keyid = Some("0123456789ABCDEF".into());
        assert_eq!(misnamed.verify(&trust, "att").unwrap().1, key.id);
        ring.revoke(&key.id, None, None).unwrap();
        let err = env
            .verify(&Trust::Keyring(ring), "att")
            .unwrap_err()
            .to_string();
        assert!(err.contains("revoked"), "{err}");
    }
}
