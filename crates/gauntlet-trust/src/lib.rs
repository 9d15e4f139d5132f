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
