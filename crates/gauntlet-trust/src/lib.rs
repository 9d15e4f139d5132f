//! Trust: canonical forms and digests, minisign keys and signatures, keyrings whose listing
//! a root key signs, key status statements, signed locks of the protected files, SBOM
//! snapshots, and DSSE-signed in-toto attestations of a decision.

pub mod attest;
pub mod canonical;
pub mod dsse;
pub mod keyring;
pub mod keys;
pub mod lock;
pub mod sbom;
pub mod status;
mod trust;

use std::path::Path;
use std::time::SystemTime;

pub use keyring::Keyring;
pub use keys::{SigningKey, Verified};
pub use status::Statuses;
pub use trust::Trust;

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
    /// Something could not be written (a full disk): gauntlet's failure, not the input's.
    #[error("{0}")]
    Write(String),
}

impl TrustError {
    /// A document that could not be serialised: nothing is signed in its place.
    pub fn document(what: &str, e: serde_json::Error) -> TrustError {
        TrustError::Write(format!("cannot serialise the {what}: {e}"))
    }

    /// A file that could not be read.
    pub fn io(path: &Path, e: std::io::Error) -> TrustError {
        TrustError::Input(format!("{}: {e}", path.display()))
    }

    /// A file that could not be written.
    pub fn write(path: &Path, e: std::io::Error) -> TrustError {
        TrustError::Write(format!("cannot write {}: {e}", path.display()))
    }
}

/// `value` as pretty JSON ending in a newline: the bytes gauntlet signs and writes.
pub fn json_document<T: serde::Serialize>(value: &T, what: &str) -> Result<Vec<u8>, TrustError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| TrustError::document(what, e))?;
    bytes.push(b'\n');
    Ok(bytes)
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Writes a whole file with `mode`, atomically (temporary file, fsync, rename, fsync dir).
pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TrustError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| TrustError::write(dir, e))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(|e| TrustError::write(dir, e))?;
    std::io::Write::write_all(&mut temp, bytes).map_err(|e| TrustError::write(path, e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| TrustError::write(path, e))?;
    temp.persist(path)
        .map_err(|e| TrustError::write(path, e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| TrustError::write(dir, e))
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
                root: None,
                version: 0,
                keys: Vec::new(),
                statuses: crate::Statuses::default(),
            };
            let trust = crate::Trust::Keyring(ring);
            for input in [bytes.as_slice(), text.as_bytes()] {
                for name in ["x.yaml", "x.json", "x.txt"] {
                    let _ = crate::canonical::canonicalize(Path::new(name), input);
                }
                let _ = crate::lock::Lock::parse(input, "lock");
                let _ = crate::attest::verify(input, &trust, "attestation");
                let _ = trust.verify(input, input, "file");
                let _ = crate::keys::parse_signature(input, "file");
                let _ = crate::keys::SigningKey::from_text(&String::from_utf8_lossy(input), None, "k");
                let _ = crate::keys::parse_public(&String::from_utf8_lossy(input), "k");
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
