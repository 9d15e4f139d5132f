//! Which keys a verification may trust: a keyring (whose listing its root key signs), or one
//! public key the verifier pins. Either way a key that is revoked, or retired past its date,
//! verifies nothing: by the keyring's listing, or by a status statement the key signed about
//! itself, found wherever the verifier looked.

use minisign::PublicKey;

use crate::TrustError;
use crate::keyring::Keyring;
use crate::keys::{self, Verified};
use crate::status::Statuses;

#[derive(Debug, Clone)]
pub enum Trust {
    Keyring(Keyring),
    Key {
        id: String,
        public: PublicKey,
        /// Every status statement found about keys (only those about this one count).
        statuses: Statuses,
    },
}

impl Trust {
    /// One public key from a minisign `.pub` file, or its base64 line given directly. The
    /// status statements in the file's folder (and its `status/`) come with it.
    pub fn key_from(arg: &str) -> Result<Trust, TrustError> {
        let public = keys::public_from_arg(arg)?;
        let path = std::path::Path::new(arg);
        let statuses = match path.is_file() {
            true => {
                let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
                let folder = folder.unwrap_or(std::path::Path::new("."));
                Statuses::from_sources(&[folder.join(crate::status::STATUS_DIR)])
            }
            false => Statuses::default(),
        };
        Ok(Trust::pinned(public).with_statuses(statuses))
    }

    pub fn pinned(public: PublicKey) -> Trust {
        Trust::Key {
            id: keys::key_id(public.keynum()),
            public,
            statuses: Statuses::default(),
        }
    }

    /// Adds status statements found elsewhere (`--revocations`, the verifier's keyring).
    pub fn with_statuses(mut self, more: Statuses) -> Trust {
        match &mut self {
            Trust::Keyring(ring) => ring.statuses.extend(more),
            Trust::Key { statuses, .. } => statuses.extend(more),
        }
        self
    }

    /// Everything this trust knows of keys' standing (the listing's statuses and every
    /// statement found), to pass on to a verifier that pins another key.
    pub fn knowledge(&self) -> Statuses {
        match self {
            Trust::Keyring(keyring) => keyring.knowledge(),
            Trust::Key { statuses, .. } => statuses.clone(),
        }
    }

    /// Checks a minisign signature (a `.minisig` file's bytes) over `data`.
    pub fn verify(
        &self,
        data: &[u8],
        signature: &[u8],
        what: &str,
    ) -> Result<Verified, TrustError> {
        keys::verify_signed(data, signature, what, |id| self.trusted_public(id, what))
    }

    /// The public key `id`, if it may verify now.
    pub fn trusted_public(&self, id: &str, what: &str) -> Result<PublicKey, TrustError> {
        match self {
            Trust::Keyring(keyring) => keyring.trusted_public(id, what),
            Trust::Key {
                id: given,
                public,
                statuses,
            } if given.eq_ignore_ascii_case(id) => {
                statuses.standing(given, public).check(given, what)?;
                Ok(public.clone())
            }
            Trust::Key { id: given, .. } => Err(TrustError::Verify(format!(
                "{what} is signed by key {id}, not by the given key {given}"
            ))),
        }
    }

    /// Every key this trust knows, with whether it may verify now: for signatures that do
    /// not say which key made them (a DSSE `keyid` is only a hint).
    pub fn known(&self, what: &str) -> Vec<(String, PublicKey, Result<(), TrustError>)> {
        match self {
            Trust::Keyring(keyring) => keyring.known(what),
            Trust::Key {
                id,
                public,
                statuses,
            } => vec![(
                id.clone(),
                public.clone(),
                statuses.standing(id, public).check(id, what),
            )],
        }
    }

    /// The trust in words, for messages: "the keyring in DIR" or "the pinned key ID".
    pub fn describe(&self) -> String {
        match self {
            Trust::Keyring(ring) => match &ring.root {
                Some((root, _)) => {
                    format!("the keyring in {} (root key {root})", ring.dir.display())
                }
                None => format!("the keyring in {}", ring.dir.display()),
            },
            Trust::Key { id, .. } => format!("the pinned key {id}"),
        }
    }
}
