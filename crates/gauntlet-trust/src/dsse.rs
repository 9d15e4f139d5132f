//! DSSE envelopes around in-toto statements, signed with Ed25519 by a keyring key.
//!
//! The signature covers the pre-authentication encoding
//! `"DSSEv1" SP len(type) SP type SP len(body) SP body`. Envelopes are written as compact JSON
//! with no whitespace at all, so every byte of the file matters to verification.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::TrustError;
use crate::keyring::{SigningKey, Trust, raw_public};

pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<Signature>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub keyid: String,
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
                keyid: key.id.clone(),
                sig: STANDARD.encode(sig),
            }],
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8], what: &str) -> Result<Envelope, TrustError> {
        serde_json::from_slice(bytes)
            .map_err(|e| TrustError::Verify(format!("{what} is not a DSSE envelope: {e}")))
    }

    /// The payload, once one signature by a trusted key verifies over it. Signatures by
    /// other keys are ignored; if none is trusted, the reasons are given.
    pub fn verify(&self, trust: &Trust, what: &str) -> Result<(Vec<u8>, String), TrustError> {
        let body = STANDARD
            .decode(&self.payload)
            .map_err(|e| TrustError::Verify(format!("{what}: the payload is not base64: {e}")))?;
        let message = pae(&self.payload_type, &body);
        let mut reasons = Vec::new();
        for signature in &self.signatures {
            match verify_one(trust, signature, &message, what) {
                Ok(()) => return Ok((body, signature.keyid.clone())),
                Err(e) => reasons.push(e.to_string()),
            }
        }
        if reasons.is_empty() {
            reasons.push(format!("{what} carries no signature"));
        }
        Err(TrustError::Verify(reasons.join("; ")))
    }
}

fn verify_one(
    trust: &Trust,
    signature: &Signature,
    message: &[u8],
    what: &str,
) -> Result<(), TrustError> {
    let public = trust.trusted_public(&signature.keyid, what)?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&raw_public(&public)?)
        .map_err(|e| TrustError::Verify(format!("key {}: {e}", signature.keyid)))?;
    let sig_bytes = STANDARD
        .decode(&signature.sig)
        .map_err(|e| TrustError::Verify(format!("{what}: the signature is not base64: {e}")))?;
    let sig = ed25519_dalek::Signature::from_slice(&sig_bytes)
        .map_err(|e| TrustError::Verify(format!("{what}: malformed signature: {e}")))?;
    key.verify_strict(message, &sig).map_err(|_| {
        TrustError::Verify(format!(
            "the signature by key {} does not match {what}: the statement changed after it was signed",
            signature.keyid
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::Keyring;

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
        let mut ring = Keyring::open(dir.path()).unwrap();
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
                .contains("does not match")
        );
        ring.revoke(&key.id, None).unwrap();
        let err = env
            .verify(&Trust::Keyring(ring), "att")
            .unwrap_err()
            .to_string();
        assert!(err.contains("revoked"), "{err}");
    }
}
