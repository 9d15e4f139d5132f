//! The keyring: minisign key pairs in a directory, with a status per key.
//!
//! ```text
//! DIR/keyring.json   ids, public keys, status (active, retired until a date, revoked)
//! DIR/ID.pub         the public key as a minisign file: `minisign -Vm FILE -p DIR/ID.pub`
//! DIR/ID.key         the secret key as a minisign file, mode 0600, optionally password-protected
//! ```
//!
//! Verification trusts only keys listed here (or one key given explicitly), never a key that
//! travels with what it signs. A retired key verifies until its expiry; a revoked key never.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use minisign::{PublicKey, SecretKey, SecretKeyBox, SignatureBox};
use serde::{Deserialize, Serialize};

use crate::TrustError;

const KEYRING_FILE: &str = "keyring.json";
const KEYRING_SCHEMA: &str = "gauntlet.keyring/v1";
/// The environment variable that can carry the secret key (a minisign secret key file's text).
pub const KEY_ENV: &str = "GAUNTLET_SIGNING_KEY";
/// The password of a password-protected secret key, for unattended use.
pub const PASSWORD_ENV: &str = "GAUNTLET_KEY_PASSWORD";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Retired,
    Revoked,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// minisign's key id, as minisign prints it (16 upper-case hex digits).
    pub id: String,
    /// The public key, base64 as on the second line of a minisign `.pub` file.
    pub public: String,
    pub created: String,
    pub status: KeyStatus,
    /// A retired key verifies until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    schema: String,
    keys: Vec<KeyRecord>,
}

/// A key that can sign. Its `Debug` shows the id only: secret material never reaches a log.
pub struct SigningKey {
    pub id: String,
    secret: SecretKey,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.id)
    }
}

/// Who signed, and what the signature's trusted comment says.
#[derive(Debug, Clone)]
pub struct Verified {
    pub key_id: String,
    pub trusted_comment: String,
}

/// The keys a verification may trust: a keyring, or one public key given explicitly.
#[derive(Debug, Clone)]
pub enum Trust {
    Keyring(Keyring),
    Key { id: String, public: PublicKey },
}

#[derive(Debug, Clone)]
pub struct Keyring {
    pub dir: PathBuf,
    pub keys: Vec<KeyRecord>,
}

pub fn key_id(keynum: &[u8]) -> String {
    let mut bytes = [0u8; 8];
    let n = keynum.len().min(8);
    bytes[..n].copy_from_slice(&keynum[..n]);
    format!("{:016X}", u64::from_le_bytes(bytes))
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}

fn minisign_err(what: &str, e: minisign::PError) -> TrustError {
    TrustError::Key(format!("{what}: {e}"))
}

impl Keyring {
    /// Opens the keyring in `dir`; a directory without one is an empty keyring.
    pub fn open(dir: &Path) -> Result<Keyring, TrustError> {
        let path = dir.join(KEYRING_FILE);
        let keys = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: KeyringFile = serde_json::from_slice(&bytes).map_err(|e| {
                    TrustError::Input(format!("{}: not a gauntlet keyring: {e}", path.display()))
                })?;
                if file.schema != KEYRING_SCHEMA {
                    return Err(TrustError::Input(format!(
                        "{}: schema `{}` is not `{KEYRING_SCHEMA}`",
                        path.display(),
                        file.schema
                    )));
                }
                file.keys
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(TrustError::io(&path, e)),
        };
        Ok(Keyring {
            dir: dir.to_path_buf(),
            keys,
        })
    }

    pub fn active(&self) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| k.status == KeyStatus::Active)
    }

    pub fn get(&self, id: &str) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| k.id.eq_ignore_ascii_case(id))
    }

    pub fn public_key_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.pub"))
    }

    pub fn secret_key_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.key"))
    }

    fn save(&self) -> Result<(), TrustError> {
        let file = KeyringFile {
            schema: KEYRING_SCHEMA.to_string(),
            keys: self.keys.clone(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).unwrap_or_default();
        bytes.push(b'\n');
        write_file(&self.dir.join(KEYRING_FILE), &bytes, 0o644)
    }

    /// A new active key. Refused when one is active already: that is what `rotate` is for.
    pub fn generate(&mut self, password: Option<String>) -> Result<KeyRecord, TrustError> {
        if let Some(active) = self.active() {
            return Err(TrustError::Key(format!(
                "the keyring in {} already has an active key {}; use `gauntlet keys rotate` to replace it",
                self.dir.display(),
                active.id
            )));
        }
        self.add_new_key(password)
    }

    /// A new active key; the old active key is retired and verifies until `grace` from now.
    pub fn rotate(
        &mut self,
        password: Option<String>,
        grace: Duration,
    ) -> Result<(KeyRecord, Option<KeyRecord>), TrustError> {
        let until = humantime::format_rfc3339_seconds(SystemTime::now() + grace).to_string();
        let mut retired = None;
        for key in self
            .keys
            .iter_mut()
            .filter(|k| k.status == KeyStatus::Active)
        {
            key.status = KeyStatus::Retired;
            key.valid_until = Some(until.clone());
            retired = Some(key.clone());
        }
        let new = self.add_new_key(password)?;
        Ok((new, retired))
    }

    /// Revokes `id`: nothing it signed verifies any more, whatever the signature's date. Its
    /// secret key file is deleted.
    pub fn revoke(&mut self, id: &str, reason: Option<String>) -> Result<KeyRecord, TrustError> {
        let dir = self.dir.clone();
        let Some(key) = self.keys.iter_mut().find(|k| k.id.eq_ignore_ascii_case(id)) else {
            return Err(TrustError::Key(format!(
                "no key {id} in the keyring in {}",
                dir.display()
            )));
        };
        key.status = KeyStatus::Revoked;
        key.revoked = Some(now_rfc3339());
        key.reason = reason;
        let revoked = key.clone();
        self.save()?;
        let secret = self.secret_key_path(&revoked.id);
        match std::fs::remove_file(&secret) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(TrustError::io(&secret, e)),
        }
        Ok(revoked)
    }

    fn add_new_key(&mut self, password: Option<String>) -> Result<KeyRecord, TrustError> {
        if !self.dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(|e| TrustError::io(&self.dir, e))?;
        }
        let pair = match password {
            Some(password) => minisign::KeyPair::generate_encrypted_keypair(Some(password)),
            None => minisign::KeyPair::generate_unencrypted_keypair(),
        }
        .map_err(|e| minisign_err("generating a key", e))?;
        let id = key_id(pair.pk.keynum());
        let public_box = pair
            .pk
            .to_box()
            .map_err(|e| minisign_err("encoding the public key", e))?;
        let secret_box = pair
            .sk
            .to_box(Some(&format!("gauntlet secret key {id}")))
            .map_err(|e| minisign_err("encoding the secret key", e))?;
        write_file(
            &self.secret_key_path(&id),
            secret_box.to_string().as_bytes(),
            0o600,
        )?;
        write_file(
            &self.public_key_path(&id),
            public_box.to_string().as_bytes(),
            0o644,
        )?;
        let record = KeyRecord {
            id,
            public: pair.pk.to_base64(),
            created: now_rfc3339(),
            status: KeyStatus::Active,
            valid_until: None,
            revoked: None,
            reason: None,
        };
        self.keys.push(record.clone());
        self.save()?;
        Ok(record)
    }

    /// The key to sign with: `GAUNTLET_SIGNING_KEY` when set, else the keyring's active key.
    /// A password-protected key takes its password from `GAUNTLET_KEY_PASSWORD`.
    pub fn signing_key(&self) -> Result<SigningKey, TrustError> {
        let password = std::env::var(PASSWORD_ENV).ok();
        if let Ok(text) = std::env::var(KEY_ENV) {
            return SigningKey::from_text(&text, password, KEY_ENV);
        }
        let Some(active) = self.active() else {
            return Err(TrustError::Key(format!(
                "no active signing key in {}: create one with `gauntlet keys generate --keyring {}` or set {KEY_ENV}",
                self.dir.display(),
                self.dir.display()
            )));
        };
        let path = self.secret_key_path(&active.id);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            TrustError::Key(format!(
                "the active key {} has no secret key here ({}: {e}); set {KEY_ENV} to sign",
                active.id,
                path.display()
            ))
        })?;
        SigningKey::from_text(&text, password, &path.display().to_string())
    }

    /// Checks a minisign signature over `data` against the keys this keyring trusts.
    pub fn verify(&self, data: &[u8], signature: &str, what: &str) -> Result<Verified, TrustError> {
        let sig = parse_signature(signature, what)?;
        let id = key_id(sig.keynum());
        let public = self.trusted_public(&id, what)?;
        verify_with(&public, &id, data, &sig, what)
    }

    /// The public key `id`, if this keyring trusts it now: listed, not revoked, not expired.
    pub fn trusted_public(&self, id: &str, what: &str) -> Result<PublicKey, TrustError> {
        let Some(record) = self.get(id) else {
            return Err(TrustError::Verify(format!(
                "{what} is signed by key {id}, which is not in the keyring in {}",
                self.dir.display()
            )));
        };
        let expired = || {
            record
                .valid_until
                .as_deref()
                .and_then(parse_time)
                .is_none_or(|until| SystemTime::now() > until)
        };
        match record.status {
            KeyStatus::Revoked => Err(TrustError::Verify(format!(
                "{what} is signed by key {id}, which was revoked{}{}",
                record
                    .revoked
                    .as_deref()
                    .map(|t| format!(" on {t}"))
                    .unwrap_or_default(),
                record
                    .reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ))),
            KeyStatus::Retired if expired() => Err(TrustError::Verify(format!(
                "{what} is signed by key {id}, which was rotated out and expired on {}",
                record.valid_until.as_deref().unwrap_or("an unknown date")
            ))),
            _ => PublicKey::from_base64(&record.public)
                .map_err(|e| TrustError::Input(format!("keyring entry {id}: {e}"))),
        }
    }
}

impl Trust {
    /// One public key from a minisign `.pub` file, or its base64 line given directly.
    pub fn key_from(arg: &str) -> Result<Trust, TrustError> {
        // A public key line is 56 base64 characters from `RW` (and may contain `/`).
        let is_line = arg.len() == 56
            && arg.starts_with("RW")
            && arg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
        let text = match std::fs::read_to_string(arg) {
            Ok(text) => text,
            Err(_) if is_line => arg.to_string(),
            Err(e) => return Err(TrustError::io(Path::new(arg), e)),
        };
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .unwrap_or_default();
        let public = PublicKey::from_base64(line)
            .map_err(|e| TrustError::Input(format!("{arg}: not a minisign public key: {e}")))?;
        Ok(Trust::Key {
            id: key_id(public.keynum()),
            public,
        })
    }

    pub fn verify(&self, data: &[u8], signature: &str, what: &str) -> Result<Verified, TrustError> {
        match self {
            Trust::Keyring(keyring) => keyring.verify(data, signature, what),
            Trust::Key { id, public } => {
                let sig = parse_signature(signature, what)?;
                let signer = key_id(sig.keynum());
                if &signer != id {
                    return Err(TrustError::Verify(format!(
                        "{what} is signed by key {signer}, not by the given key {id}"
                    )));
                }
                verify_with(public, id, data, &sig, what)
            }
        }
    }

    pub fn trusted_public(&self, id: &str, what: &str) -> Result<PublicKey, TrustError> {
        match self {
            Trust::Keyring(keyring) => keyring.trusted_public(id, what),
            Trust::Key { id: given, public } if given.eq_ignore_ascii_case(id) => {
                Ok(public.clone())
            }
            Trust::Key { id: given, .. } => Err(TrustError::Verify(format!(
                "{what} is signed by key {id}, not by the given key {given}"
            ))),
        }
    }
}

fn parse_signature(text: &str, what: &str) -> Result<SignatureBox, TrustError> {
    SignatureBox::from_string(text)
        .map_err(|e| TrustError::Verify(format!("the signature of {what} is malformed: {e}")))
}

fn verify_with(
    public: &PublicKey,
    id: &str,
    data: &[u8],
    sig: &SignatureBox,
    what: &str,
) -> Result<Verified, TrustError> {
    minisign::verify(public, sig, Cursor::new(data), true, false, false).map_err(|_| {
        TrustError::Verify(format!(
            "the signature by key {id} does not match {what}: it changed after it was signed, or the signature is for another file"
        ))
    })?;
    Ok(Verified {
        key_id: id.to_string(),
        trusted_comment: sig.trusted_comment().unwrap_or_default(),
    })
}

impl SigningKey {
    /// From a minisign secret key file's text (or its base64 line alone).
    pub fn from_text(
        text: &str,
        password: Option<String>,
        source: &str,
    ) -> Result<Self, TrustError> {
        let text = if text.trim_start().starts_with("untrusted comment:") {
            text.to_string()
        } else {
            format!("untrusted comment: gauntlet secret key\n{}\n", text.trim())
        };
        let sk_box = SecretKeyBox::from_string(&text)
            .map_err(|_| TrustError::Key(format!("{source}: not a minisign secret key")))?;
        let encrypted = is_encrypted_box(&text);
        let secret = if encrypted {
            let Some(password) = password else {
                return Err(TrustError::Key(format!(
                    "{source}: the secret key is password-protected; set {PASSWORD_ENV}"
                )));
            };
            SecretKey::from_box(sk_box, Some(password))
        } else {
            SecretKey::from_unencrypted_box(sk_box)
        }
        // minisign's messages here name no secret: "Wrong password for that key", "Corrupted key".
        .map_err(|e| TrustError::Key(format!("{source}: {e}")))?;
        let public = PublicKey::from_secret_key(&secret)
            .map_err(|e| TrustError::Key(format!("{source}: {e}")))?;
        Ok(SigningKey {
            id: key_id(secret.keynum()),
            secret,
            public,
        })
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// A minisign signature (the text of a `.minisig` file) over `data`.
    pub fn sign_minisign(&self, data: &[u8], trusted_comment: &str) -> Result<String, TrustError> {
        let untrusted = format!("signature from gauntlet secret key {}", self.id);
        let sig = minisign::sign(
            Some(&self.public),
            &self.secret,
            Cursor::new(data),
            Some(trusted_comment),
            Some(&untrusted),
        )
        .map_err(|e| minisign_err("signing", e))?;
        Ok(sig.into_string())
    }

    /// A plain Ed25519 signature over `message` (what DSSE needs), by the same key.
    pub fn sign_ed25519(&self, message: &[u8]) -> Result<[u8; 64], TrustError> {
        use ed25519_dalek::Signer;
        // The minisign secret key layout: algorithms (6), salt (32), limits (16), key id (8),
        // then libsodium's 64-byte secret key, whose first 32 bytes are the Ed25519 seed.
        let bytes = self.secret.to_bytes();
        let seed: [u8; 32] = bytes
            .get(62..94)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| TrustError::Key("unexpected minisign secret key layout".into()))?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        if *key.verifying_key().as_bytes() != raw_public(&self.public)? {
            return Err(TrustError::Key(
                "the secret key does not match its public key".into(),
            ));
        }
        Ok(key.sign(message).to_bytes())
    }
}

/// The 32-byte Ed25519 public key inside a minisign public key.
pub fn raw_public(public: &PublicKey) -> Result<[u8; 32], TrustError> {
    // algorithm (2) + key id (8) + key (32)
    public
        .to_bytes()
        .get(10..42)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| TrustError::Key("unexpected minisign public key layout".into()))
}

fn is_encrypted_box(text: &str) -> bool {
    use base64::Engine;
    let line = text.lines().nth(1).unwrap_or_default().trim();
    base64::engine::general_purpose::STANDARD
        .decode(line)
        .ok()
        .is_some_and(|b| b.get(2..4) == Some(b"Sc"))
}

/// Writes a whole file with `mode`, atomically.
pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TrustError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| TrustError::io(dir, e))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(|e| TrustError::io(dir, e))?;
    std::io::Write::write_all(&mut temp, bytes).map_err(|e| TrustError::io(path, e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| TrustError::io(path, e))?;
    temp.persist(path)
        .map_err(|e| TrustError::io(path, e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| TrustError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_public_key_line_is_a_key_even_with_slashes_in_it() {
        let line = "RWTN1kQyz0EFpKkljFQe0zX/rbhDWHG0Lb9vRsfhglnB/Zuw59JxQx6T";
        let Ok(Trust::Key { id, .. }) = Trust::key_from(line) else {
            panic!("{line} is a public key");
        };
        assert_eq!(id, "A40541CF3244D6CD");
        // A path that does not exist is still a missing file, not a key.
        let missing = Trust::key_from("keys/missing.pub").unwrap_err().to_string();
        assert!(missing.contains("keys/missing.pub"), "{missing}");
    }

    #[test]
    fn secret_keys_are_private_and_never_printed() {
        let root = tempfile::tempdir().unwrap();
        let dir = &root.path().join("keys");
        let mut ring = Keyring::open(dir).unwrap();
        let key = ring.generate(None).unwrap();
        let mode = std::fs::metadata(ring.secret_key_path(&key.id))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(dir).unwrap().permissions().mode();
        assert_eq!(
            dir_mode & 0o777,
            0o700,
            "a new keyring directory is private"
        );
        let signing = ring.signing_key().unwrap();
        let secret_b64 = std::fs::read_to_string(ring.secret_key_path(&key.id)).unwrap();
        let secret_line = secret_b64.lines().nth(1).unwrap();
        assert_eq!(format!("{signing:?}"), format!("SigningKey({})", key.id));
        assert!(!format!("{signing:?}").contains(&secret_line[..20]));
    }

    #[test]
    fn rotation_keeps_the_old_key_until_expiry_and_revocation_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = Keyring::open(dir.path()).unwrap();
        let old = ring.generate(None).unwrap();
        let old_sig = ring
            .signing_key()
            .unwrap()
            .sign_minisign(b"data", "t")
            .unwrap();
        assert!(
            ring.generate(None).is_err(),
            "a second active key is refused"
        );
        let (new, retired) = ring.rotate(None, Duration::from_secs(3600)).unwrap();
        assert_eq!(retired.unwrap().id, old.id);
        let ring = Keyring::open(dir.path()).unwrap();
        assert_eq!(ring.active().unwrap().id, new.id);
        ring.verify(b"data", &old_sig, "data").unwrap();
        let mut ring = ring;
        ring.revoke(&old.id, Some("leaked".into())).unwrap();
        let err = ring
            .verify(b"data", &old_sig, "data")
            .unwrap_err()
            .to_string();
        assert!(err.contains("revoked") && err.contains("leaked"), "{err}");
        assert!(!ring.secret_key_path(&old.id).exists());
    }

    #[test]
    fn an_expired_retired_key_no_longer_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = Keyring::open(dir.path()).unwrap();
        ring.generate(None).unwrap();
        let sig = ring
            .signing_key()
            .unwrap()
            .sign_minisign(b"x", "t")
            .unwrap();
        ring.rotate(None, Duration::ZERO).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        let err = ring.verify(b"x", &sig, "x").unwrap_err().to_string();
        assert!(err.contains("expired"), "{err}");
    }

    #[test]
    fn unknown_keys_and_other_files_are_refused_saying_which() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let mut ring_a = Keyring::open(a.path()).unwrap();
        let mut ring_b = Keyring::open(b.path()).unwrap();
        ring_a.generate(None).unwrap();
        let foreign = ring_b.generate(None).unwrap();
        let sig = ring_b
            .signing_key()
            .unwrap()
            .sign_minisign(b"x", "t")
            .unwrap();
        let err = ring_a.verify(b"x", &sig, "lock").unwrap_err().to_string();
        assert!(
            err.contains(&foreign.id) && err.contains("not in the keyring"),
            "{err}"
        );
        let err = ring_b.verify(b"y", &sig, "lock").unwrap_err().to_string();
        assert!(err.contains("does not match lock"), "{err}");
    }

    #[test]
    fn a_password_protected_key_needs_its_password() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = Keyring::open(dir.path()).unwrap();
        let key = ring.generate(Some("correct horse".into())).unwrap();
        let text = std::fs::read_to_string(ring.secret_key_path(&key.id)).unwrap();
        let err = SigningKey::from_text(&text, None, "k")
            .unwrap_err()
            .to_string();
        assert!(err.contains("password-protected"), "{err}");
        let err = SigningKey::from_text(&text, Some("wrong".into()), "k")
            .unwrap_err()
            .to_string();
        assert!(err.contains("Wrong password"), "{err}");
        let key = SigningKey::from_text(&text, Some("correct horse".into()), "k").unwrap();
        let sig = key.sign_minisign(b"x", "t").unwrap();
        ring.verify(b"x", &sig, "x").unwrap();
    }
}
