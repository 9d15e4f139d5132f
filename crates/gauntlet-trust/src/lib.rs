//! Trust: canonical forms and digests, minisign keys and signatures, signed locks of the
//! protected files, SBOM snapshots, and DSSE-signed in-toto attestations of a decision.

pub mod attest;
pub mod canonical;
pub mod dsse;
pub mod keyring;
pub mod lock;
pub mod sbom;

use std::path::Path;

pub use keyring::{Keyring, SigningKey, Trust};

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// Bad input: a file that cannot be read or parsed, a bad argument.
    #[error("{0}")]
    Input(String),
    /// A key cannot be made, found, decrypted or used.
    #[error("{0}")]
    Key(String),
    /// A signature or digest does not hold.
    #[error("{0}")]
    Verify(String),
}

impl TrustError {
    pub fn io(path: &Path, e: std::io::Error) -> TrustError {
        TrustError::Input(format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod fuzz {
    use std::path::Path;

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        /// Whatever the bytes, every parser answers with a value or an error, never a panic.
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), text in "\\PC{0,300}") {
            let ring = crate::Keyring {
                dir: std::path::PathBuf::from("/nonexistent"),
                keys: Vec::new(),
            };
            let trust = crate::Trust::Keyring(ring);
            for input in [bytes.as_slice(), text.as_bytes()] {
                for name in ["x.yaml", "x.json", "x.txt"] {
                    let _ = crate::canonical::canonicalize(Path::new(name), input);
                }
                let _ = crate::lock::Lock::parse(input, "lock");
                let _ = crate::attest::verify(input, &trust, "attestation");
                let _ = trust.verify(input, &String::from_utf8_lossy(input), "file");
                let _ = crate::keyring::SigningKey::from_text(&String::from_utf8_lossy(input), None, "k");
            }
            let dir = tempfile::tempdir().unwrap();
            for name in crate::sbom::LOCKFILES {
                let path = dir.path().join(name);
                std::fs::write(&path, text.as_bytes()).unwrap();
                let _ = crate::sbom::read_lockfile(&path);
                let json = dir.path().join("sbom.json");
                std::fs::write(&json, &bytes).unwrap();
                let _ = crate::sbom::load(&json);
            }
        }
    }
}
