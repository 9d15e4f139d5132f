//! The keyring: minisign key pairs in a private directory, listed in a document that the
//! keyring's root key signs.
//!
//! ```text
//! DIR/root.pub, root.key      the root key: it signs keyring.json and nothing else
//! DIR/keyring.json(.minisig)  version, root, and every key with its status (active, trusted,
//!                             retired until a date, revoked), signed by the root
//! DIR/ID.pub, ID.key          a signing key (`minisign -Vm FILE -p DIR/ID.pub`); ID.key 0600
//! DIR/status/                 key status statements each key signed about itself (status.rs)
//! ```
//!
//! A listing nobody signed is never a trust root: `keyring.json` must verify against the
//! root's public key (the folder's `root.pub`, or one the verifier pins with `--root`), so a
//! keyring file can be handed to CI and checked there. Secret keys and the folder that holds
//! them must be private to their owner (as ssh requires); a folder others can write is refused
//! outright. Verification trusts only keys listed here, never a key that travels with what it
//! signs; a retired key verifies until its date, a revoked key never, and a key that says so
//! itself (a status statement) is believed wherever the statement was found.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use minisign::PublicKey;
use serde::{Deserialize, Serialize};

use crate::TrustError;
use crate::keys::{self, KEY_ENV, PASSWORD_ENV, SigningKey, Verified};
use crate::status::{Change, Standing, Statement, Statuses};

pub const KEYRING_FILE: &str = "keyring.json";
const KEYRING_SCHEMA: &str = "gauntlet.keyring/v2";
/// The unsigned listing earlier versions wrote.
const UNSIGNED_SCHEMA: &str = "gauntlet.keyring/v1";
pub const ROOT_PUBLIC: &str = "root.pub";
const ROOT_SECRET: &str = "root.key";
/// Held (flock) while the keyring changes, so two commands take turns.
const LOCK_FILE: &str = ".lock";

/// The keyring's lock, held for one change: two commands changing one keyring at once (two
/// first-time demos) take turns, and each works on what the other wrote.
struct Held(#[allow(dead_code)] std::fs::File);

impl Held {
    fn take(dir: &Path) -> Result<Held, TrustError> {
        let path = dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| TrustError::write(&path, e))?;
        file.lock().map_err(|e| TrustError::write(&path, e))?;
        Ok(Held(file))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// This keyring's signing key.
    Active,
    /// Someone else's key, imported to verify what it signed; never signs here.
    Trusted,
    Retired,
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

impl KeyRecord {
    fn public_key(&self) -> Result<PublicKey, TrustError> {
        PublicKey::from_base64(&self.public)
            .map_err(|e| TrustError::Input(format!("keyring entry {}: {e}", self.id)))
    }

    pub fn standing(&self, source: &str) -> Standing {
        match self.status {
            KeyStatus::Revoked => Standing::Revoked {
                time: self.revoked.clone(),
                reason: self.reason.clone(),
                source: source.to_string(),
            },
            KeyStatus::Retired => Standing::Retired {
                until: self.valid_until.clone().unwrap_or_default(),
                source: source.to_string(),
            },
            KeyStatus::Active | KeyStatus::Trusted => Standing::Good,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    schema: String,
    /// Goes up with every change, so a copy can be told from an older one.
    #[serde(default)]
    version: u64,
    /// The root's public key; it must sign this file.
    #[serde(default)]
    root: String,
    keys: Vec<KeyRecord>,
}

#[derive(Debug, Clone)]
pub struct Keyring {
    /// The folder, or for a keyring read from a file, that file's folder.
    pub dir: PathBuf,
    /// The root key's id and public key, once there is one.
    pub root: Option<(String, PublicKey)>,
    pub version: u64,
    pub keys: Vec<KeyRecord>,
    /// Status statements found in the keyring (and any other sources added).
    pub statuses: Statuses,
}

/// What `keys import` did.
#[derive(Debug, Clone)]
pub struct Imported {
    pub record: KeyRecord,
    /// Whether a secret key came with it (it is then the active signing key).
    pub secret: bool,
    /// The key it replaced as the active one, retired with a grace period.
    pub retired: Option<KeyRecord>,
}

fn now_rfc3339() -> String {
    crate::now_rfc3339()
}

impl Keyring {
    /// Opens the keyring in `dir`, checking its listing against the folder's root key. A
    /// folder without a listing is an empty keyring.
    pub fn open(dir: &Path) -> Result<Keyring, TrustError> {
        Self::load(dir, None)
    }

    /// Opens a keyring (a folder, or its `keyring.json`) whose listing must be signed by
    /// `root`: what a verifier that pins the root key runs.
    pub fn open_pinned(path: &Path, root: &PublicKey) -> Result<Keyring, TrustError> {
        let dir = if path.is_dir() {
            path.to_path_buf()
        } else {
            path.parent().unwrap_or(Path::new(".")).to_path_buf()
        };
        let ring = Self::load(&dir, Some((root, path)))?;
        if ring.root.is_none() {
            return Err(TrustError::Input(format!(
                "{}: no keyring listing to check against the pinned root key",
                path.display()
            )));
        }
        Ok(ring)
    }

    fn load(dir: &Path, pinned: Option<(&PublicKey, &Path)>) -> Result<Keyring, TrustError> {
        if dir.exists() {
            refuse_writable_by_others(dir)?;
        }
        let listing = match pinned {
            Some((_, path)) if !path.is_dir() => path.to_path_buf(),
            _ => dir.join(KEYRING_FILE),
        };
        let bytes = match std::fs::read(&listing) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && pinned.is_none() => {
                return Ok(Keyring {
                    dir: dir.to_path_buf(),
                    root: read_root(dir)?,
                    version: 0,
                    keys: Vec::new(),
                    statuses: Statuses::from_sources(&[dir.to_path_buf()]),
                });
            }
            Err(e) => return Err(TrustError::io(&listing, e)),
        };
        if pinned.is_none() {
            refuse_writable_by_others(&listing)?;
        }
        let file = parse_listing(&bytes, &listing)?;
        let root = match pinned {
            Some((root, _)) => root.clone(),
            None => read_root(dir)?.map(|(_, k)| k).ok_or_else(|| {
                TrustError::Verify(format!(
                    "{} has no root key ({ROOT_PUBLIC}), so its listing cannot be trusted",
                    dir.display()
                ))
            })?,
        };
        let root_id = keys::key_id(root.keynum());
        if file.root != root.to_base64() {
            return Err(TrustError::Verify(format!(
                "{} names another root than key {root_id}: it is not this keyring's listing",
                listing.display()
            )));
        }
        let signature = keys::read_signature(&listing).map_err(|_| {
            TrustError::Verify(format!(
                "{} is not signed ({}.minisig is missing): an unsigned listing is never trusted",
                listing.display(),
                listing.display()
            ))
        })?;
        let sig = keys::parse_signature(&signature, &listing.display().to_string())?;
        keys::verify_with(
            &root,
            &root_id,
            &bytes,
            &sig,
            &listing.display().to_string(),
        )
        .map_err(|e| {
            TrustError::Verify(format!(
                "{} is not signed by the root key {root_id}: {e}",
                listing.display()
            ))
        })?;
        Ok(Keyring {
            dir: dir.to_path_buf(),
            root: Some((root_id, root)),
            version: file.version,
            keys: file.keys,
            statuses: Statuses::from_sources(&[dir.to_path_buf()]),
        })
    }

    /// Signs an existing listing with the keyring's root (made now if there is none), after
    /// its owner has checked the keys it lists: for keyrings from before listings were
    /// signed, or one whose listing was edited by hand.
    pub fn adopt(dir: &Path, password: Option<String>) -> Result<Keyring, TrustError> {
        refuse_writable_by_others(dir)?;
        let _held = Held::take(dir)?;
        let path = dir.join(KEYRING_FILE);
        let bytes = std::fs::read(&path).map_err(|e| TrustError::io(&path, e))?;
        let file = match parse_listing(&bytes, &path) {
            // What adoption is for: a listing nobody signed.
            Err(TrustError::Verify(_)) => serde_json::from_slice::<KeyringFile>(&bytes)
                .map_err(|e| TrustError::Input(format!("{}: {e}", path.display())))?,
            other => other?,
        };
        let mut ring = Keyring {
            dir: dir.to_path_buf(),
            root: read_root(dir)?,
            version: file.version,
            keys: file.keys,
            statuses: Statuses::from_sources(&[dir.to_path_buf()]),
        };
        ring.save(password)?;
        Ok(ring)
    }

    /// Takes the keyring's lock and reads the listing again under it.
    fn hold(&mut self) -> Result<Held, TrustError> {
        self.make_private_dir()?;
        let held = Held::take(&self.dir)?;
        let fresh = Self::load(&self.dir, None)?;
        let statuses = std::mem::take(&mut self.statuses);
        *self = fresh;
        self.statuses.extend(statuses);
        Ok(held)
    }

    /// The active key, made now if there is none (what a first-time demo needs, even when
    /// several start at once). Returns it and whether it was made.
    pub fn ensure_active(
        &mut self,
        password: Option<String>,
    ) -> Result<(KeyRecord, bool), TrustError> {
        let _held = self.hold()?;
        if let Some(active) = self.active() {
            return Ok((active.clone(), false));
        }
        self.add_new_key(password).map(|k| (k, true))
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

    pub fn root_public_path(&self) -> PathBuf {
        self.dir.join(ROOT_PUBLIC)
    }

    /// Writes the listing with the next version, signed by the root (made on first use).
    fn save(&mut self, password: Option<String>) -> Result<(), TrustError> {
        self.make_private_dir()?;
        let root = match self.root_secret(password.clone())? {
            Some(root) => root,
            None => {
                let made = keys::generate(password.clone(), "gauntlet root key")?;
                crate::write_file(
                    &self.dir.join(ROOT_SECRET),
                    made.secret_text.as_bytes(),
                    0o600,
                )?;
                crate::write_file(
                    &self.dir.join(ROOT_PUBLIC),
                    keys::public_file_text(&made.public)?.as_bytes(),
                    0o644,
                )?;
                self.root = Some((made.id.clone(), made.public));
                SigningKey::from_text(&made.secret_text, password, ROOT_SECRET)?
            }
        };
        self.version += 1;
        let file = KeyringFile {
            schema: KEYRING_SCHEMA.to_string(),
            version: self.version,
            root: root.public().to_base64(),
            keys: self.keys.clone(),
        };
        let bytes = crate::json_document(&file, "keyring")?;
        let signature = root.sign_minisign(
            &bytes,
            &format!("keyring:{}\tversion:{}", root.id, self.version),
        )?;
        let path = self.dir.join(KEYRING_FILE);
        crate::write_file(&path, &bytes, 0o644)?;
        let mut sig_path = path.into_os_string();
        sig_path.push(".minisig");
        crate::write_file(Path::new(&sig_path), signature.as_bytes(), 0o644)
    }

    /// The root's secret key, if this keyring has a root (its password from the argument or
    /// `GAUNTLET_KEY_PASSWORD`).
    fn root_secret(&self, password: Option<String>) -> Result<Option<SigningKey>, TrustError> {
        let Some((id, _)) = &self.root else {
            return Ok(None);
        };
        let path = self.dir.join(ROOT_SECRET);
        let text = read_secret(&self.dir, &path).map_err(|e| {
            TrustError::Key(format!("changing the keyring needs its root key {id}: {e}"))
        })?;
        let password = password.or_else(|| std::env::var(PASSWORD_ENV).ok());
        SigningKey::from_text(&text, password, &path.display().to_string()).map(Some)
    }

    fn make_private_dir(&self) -> Result<(), TrustError> {
        if !self.dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(|e| TrustError::write(&self.dir, e))?;
        }
        refuse_readable_by_others(&self.dir, true)
    }

    /// A new active key. Refused when one is active already: that is what `rotate` is for.
    pub fn generate(&mut self, password: Option<String>) -> Result<KeyRecord, TrustError> {
        let _held = self.hold()?;
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
    /// The old key also signs its own retirement, so verifiers that pin it learn the date.
    pub fn rotate(
        &mut self,
        password: Option<String>,
        grace: Duration,
    ) -> Result<(KeyRecord, Option<KeyRecord>), TrustError> {
        let _held = self.hold()?;
        let retired = self.retire_active(grace, password.clone())?;
        let new = self.add_new_key(password)?;
        Ok((new, retired))
    }

    fn retire_active(
        &mut self,
        grace: Duration,
        password: Option<String>,
    ) -> Result<Option<KeyRecord>, TrustError> {
        let until = humantime::format_rfc3339_seconds(SystemTime::now() + grace).to_string();
        let Some(old) = self.active().cloned() else {
            return Ok(None);
        };
        if let Ok(key) = self.secret_of(&old.id, password) {
            Statement::new(&key, Change::Retired, Some(until.clone()), None)
                .write(&self.dir, &key)?;
        }
        let record = self.keys.iter_mut().find(|k| k.id == old.id);
        let record = record.ok_or_else(|| TrustError::Key(format!("no key {}", old.id)))?;
        record.status = KeyStatus::Retired;
        record.valid_until = Some(until);
        Ok(Some(record.clone()))
    }

    /// Revokes `id`: nothing it signed verifies any more, whatever the signature's date. The
    /// key signs its own revocation while its secret is still here (or in
    /// `GAUNTLET_SIGNING_KEY`), for verifiers that pin it; then its secret key is deleted.
    /// Returns the record and the statement, if one could be signed.
    pub fn revoke(
        &mut self,
        id: &str,
        reason: Option<String>,
        password: Option<String>,
    ) -> Result<(KeyRecord, Option<PathBuf>), TrustError> {
        let _held = self.hold()?;
        let Some(index) = self.keys.iter().position(|k| k.id.eq_ignore_ascii_case(id)) else {
            return Err(TrustError::Key(format!(
                "no key {id} in the keyring in {}",
                self.dir.display()
            )));
        };
        let id = self.keys[index].id.clone();
        let statement = match self.secret_of(&id, password.clone()) {
            Ok(key) => Some(
                Statement::new(&key, Change::Revoked, None, reason.clone())
                    .write(&self.dir, &key)?,
            ),
            Err(_) => None,
        };
        let key = &mut self.keys[index];
        key.status = KeyStatus::Revoked;
        key.revoked = Some(now_rfc3339());
        key.reason = reason;
        let revoked = key.clone();
        self.save(password)?;
        let secret = self.secret_key_path(&revoked.id);
        match std::fs::remove_file(&secret) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(TrustError::write(&secret, e)),
        }
        Ok((revoked, statement))
    }

    /// The secret key of `id`, from this keyring or `GAUNTLET_SIGNING_KEY`.
    fn secret_of(&self, id: &str, password: Option<String>) -> Result<SigningKey, TrustError> {
        let password = password.or_else(|| std::env::var(PASSWORD_ENV).ok());
        if let Ok(text) = std::env::var(KEY_ENV)
            && let Ok(key) = SigningKey::from_text(&text, password.clone(), KEY_ENV)
            && key.id.eq_ignore_ascii_case(id)
        {
            return Ok(key);
        }
        let path = self.secret_key_path(id);
        let text = read_secret(&self.dir, &path)?;
        SigningKey::from_text(&text, password, &path.display().to_string())
    }

    fn add_new_key(&mut self, password: Option<String>) -> Result<KeyRecord, TrustError> {
        self.make_private_dir()?;
        let made = keys::generate(password.clone(), "gauntlet secret key")?;
        self.add_key(
            &made.id,
            &made.public,
            Some(&made.secret_text),
            KeyStatus::Active,
            password,
        )
    }

    fn add_key(
        &mut self,
        id: &str,
        public: &PublicKey,
        secret_text: Option<&str>,
        status: KeyStatus,
        password: Option<String>,
    ) -> Result<KeyRecord, TrustError> {
        self.make_private_dir()?;
        if let Some(secret) = secret_text {
            crate::write_file(&self.secret_key_path(id), secret.as_bytes(), 0o600)?;
        }
        crate::write_file(
            &self.public_key_path(id),
            keys::public_file_text(public)?.as_bytes(),
            0o644,
        )?;
        let record = KeyRecord {
            id: id.to_string(),
            public: public.to_base64(),
            created: now_rfc3339(),
            status,
            valid_until: None,
            revoked: None,
            reason: None,
        };
        self.keys.retain(|k| k.id != record.id);
        self.keys.push(record.clone());
        self.save(password)?;
        Ok(record)
    }

    /// Imports a key the stock `minisign` tool made: a public key (`.pub` text or its line)
    /// becomes a trusted key that verifies here; a secret key (unencrypted, even with the
    /// all-zero checksum of `minisign -G -W`, or password-protected) becomes the active
    /// signing key, the previous one retired with `grace`. A revoked key stays revoked.
    pub fn import(
        &mut self,
        text: &str,
        source: &str,
        password: Option<String>,
        grace: Duration,
    ) -> Result<Imported, TrustError> {
        let _held = self.hold()?;
        let secret = match SigningKey::from_text(text, password.clone(), source) {
            Ok(key) => Some(key),
            Err(e) if keys::is_encrypted(text) => return Err(e),
            Err(_) => None,
        };
        let public = match &secret {
            Some(key) => key.public().clone(),
            None => keys::parse_public(text, source).map_err(|_| {
                TrustError::Input(format!(
                    "{source}: neither a minisign public key nor a minisign secret key"
                ))
            })?,
        };
        let id = keys::key_id(public.keynum());
        if let Some(known) = self.get(&id) {
            if known.status == KeyStatus::Revoked {
                return Err(TrustError::Key(format!(
                    "key {id} was revoked in this keyring; a revoked key is never imported again"
                )));
            }
            if known.public != public.to_base64() {
                return Err(TrustError::Key(format!(
                    "the keyring already has another key with id {id}"
                )));
            }
        }
        let mut retired = None;
        let status = match &secret {
            Some(_) => {
                if self.active().is_some_and(|a| a.id != id) {
                    retired = self.retire_active(grace, password.clone())?;
                }
                KeyStatus::Active
            }
            None => KeyStatus::Trusted,
        };
        // Kept as minisign wrote it: the stock tool can still use the file.
        let secret_text = secret.as_ref().map(|_| text);
        let record = self.add_key(&id, &public, secret_text, status, password)?;
        Ok(Imported {
            record,
            secret: secret.is_some(),
            retired,
        })
    }

    /// The key to sign with: `GAUNTLET_SIGNING_KEY` when set, else the keyring's active key.
    /// A password-protected key takes its password from `GAUNTLET_KEY_PASSWORD`. A key this
    /// keyring knows as revoked (or expired) never signs.
    pub fn signing_key(&self) -> Result<SigningKey, TrustError> {
        let Ok(text) = std::env::var(KEY_ENV) else {
            return self.own_signing_key();
        };
        let key = SigningKey::from_text(&text, std::env::var(PASSWORD_ENV).ok(), KEY_ENV)?;
        self.may_sign(&key.id, key.public())?;
        Ok(key)
    }

    /// This keyring's own active key, whatever the environment holds.
    pub fn own_signing_key(&self) -> Result<SigningKey, TrustError> {
        let Some(active) = self.active() else {
            return Err(TrustError::Key(format!(
                "no active signing key in {}: create one with `gauntlet keys generate --keyring {}` or set {KEY_ENV}",
                self.dir.display(),
                self.dir.display()
            )));
        };
        let path = self.secret_key_path(&active.id);
        let text = read_secret(&self.dir, &path).map_err(|e| {
            TrustError::Key(format!(
                "the active key {} cannot sign here: {e}; set {KEY_ENV} to sign",
                active.id
            ))
        })?;
        let key = SigningKey::from_text(
            &text,
            std::env::var(PASSWORD_ENV).ok(),
            &path.display().to_string(),
        )?;
        self.may_sign(&key.id, key.public())?;
        Ok(key)
    }

    fn may_sign(&self, id: &str, public: &PublicKey) -> Result<(), TrustError> {
        match self.standing(id, public).refusal() {
            None => Ok(()),
            Some(why) => Err(TrustError::Key(format!(
                "key {id} {why}: a revoked or expired key signs nothing; sign with the active key of {} (`gauntlet keys rotate` makes a new one)",
                self.dir.display()
            ))),
        }
    }

    /// What the listing and every status statement known here say of a key.
    pub fn standing(&self, id: &str, public: &PublicKey) -> Standing {
        let listed = self
            .get(id)
            .filter(|r| r.public == public.to_base64())
            .map_or(Standing::Good, |r| {
                r.standing(&self.dir.join(KEYRING_FILE).display().to_string())
            });
        listed.and(self.statuses.standing(id, public))
    }

    /// What this keyring knows of keys' standing, for a verifier that pins a key but should
    /// still learn what its own keyring says: the listing's statuses and the statements.
    pub fn knowledge(&self) -> Statuses {
        let mut out = self.statuses.clone();
        let source = self.dir.join(KEYRING_FILE).display().to_string();
        for record in &self.keys {
            out.listed(&record.id, &record.public, record.standing(&source));
        }
        out
    }

    /// The public key `id`, if this keyring trusts it now: listed, not revoked, not expired.
    pub fn trusted_public(&self, id: &str, what: &str) -> Result<PublicKey, TrustError> {
        let Some(record) = self.get(id) else {
            return Err(TrustError::Verify(format!(
                "{what} is signed by key {id}, which is not in the keyring in {}",
                self.dir.display()
            )));
        };
        let public = record.public_key()?;
        self.standing(&record.id, &public).check(&record.id, what)?;
        Ok(public)
    }

    /// Every key listed, with whether it may verify now (for signatures that do not say
    /// which key made them).
    pub fn known(&self, what: &str) -> Vec<(String, PublicKey, Result<(), TrustError>)> {
        self.keys
            .iter()
            .filter_map(|r| {
                let public = r.public_key().ok()?;
                let standing = self.standing(&r.id, &public).check(&r.id, what);
                Some((r.id.clone(), public, standing))
            })
            .collect()
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
}

fn parse_listing(bytes: &[u8], path: &Path) -> Result<KeyringFile, TrustError> {
    let file: KeyringFile = serde_json::from_slice(bytes).map_err(|e| {
        TrustError::Input(format!("{}: not a gauntlet keyring: {e}", path.display()))
    })?;
    match file.schema.as_str() {
        KEYRING_SCHEMA => Ok(file),
        UNSIGNED_SCHEMA => Err(TrustError::Verify(format!(
            "{} is an unsigned keyring listing (from an earlier gauntlet), which is never trusted: check its keys, then sign it with `gauntlet keys adopt --keyring {}`",
            path.display(),
            path.parent().unwrap_or(Path::new(".")).display()
        ))),
        other => Err(TrustError::Input(format!(
            "{}: schema `{other}` is not `{KEYRING_SCHEMA}`",
            path.display()
        ))),
    }
}

fn read_root(dir: &Path) -> Result<Option<(String, PublicKey)>, TrustError> {
    let path = dir.join(ROOT_PUBLIC);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = keys::parse_public(&text, &path.display().to_string())?;
            Ok(Some((keys::key_id(key.keynum()), key)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TrustError::io(&path, e)),
    }
}

/// A secret key file's text, once it and its folder are private to their owner.
fn read_secret(dir: &Path, path: &Path) -> Result<String, TrustError> {
    refuse_readable_by_others(dir, true)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| TrustError::Key(format!("{}: {e}", path.display())))?;
    refuse_readable_by_others(path, false)?;
    Ok(text)
}

fn mode(path: &Path) -> Result<u32, TrustError> {
    std::fs::metadata(path)
        .map(|m| m.permissions().mode())
        .map_err(|e| TrustError::io(path, e))
}

/// Refuses a secret key, or a folder holding them, that others may read (as ssh does).
fn refuse_readable_by_others(path: &Path, is_dir: bool) -> Result<(), TrustError> {
    let mode = mode(path)?;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let (what, fix) = if is_dir {
        ("the keyring folder", "700")
    } else {
        ("the secret key", "600")
    };
    Err(TrustError::Key(format!(
        "{what} {} is open to other users (mode {:o}); secret keys are refused until it is private: chmod {fix} {}",
        path.display(),
        mode & 0o777,
        path.display()
    )))
}

/// Refuses a keyring folder or listing that others may change: anyone could add a key.
fn refuse_writable_by_others(path: &Path) -> Result<(), TrustError> {
    let mode = mode(path)?;
    if mode & 0o022 == 0 {
        return Ok(());
    }
    Err(TrustError::Key(format!(
        "{} can be changed by other users (mode {:o}), so anyone could add a key to the keyring: chmod go-w {}",
        path.display(),
        mode & 0o777,
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Trust;

    /// A keyring with an active key in `DIR/keys` (a temporary folder is not private).
    fn ring(dir: &Path) -> Keyring {
        let mut ring = Keyring::open(&dir.join("keys")).unwrap();
        ring.generate(None).unwrap();
        ring
    }

    #[test]
    fn keyrings_changed_at_once_keep_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        // Four first-time demos at once: one key, which all of them use.
        let made: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        Keyring::open(&path)
                            .unwrap()
                            .ensure_active(None)
                            .unwrap()
                            .0
                            .id
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(made.iter().all(|id| *id == made[0]), "{made:?}");
        let ring = Keyring::open(&path).unwrap();
        assert_eq!(ring.keys.len(), 1);
        ring.signing_key().unwrap();
        // Four rotations at once: four new keys, one active, every one listed.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    Keyring::open(&path)
                        .unwrap()
                        .rotate(None, Duration::from_secs(60))
                        .unwrap();
                });
            }
        });
        let ring = Keyring::open(&path).unwrap();
        assert_eq!(ring.keys.len(), 5);
        assert_eq!(
            ring.keys
                .iter()
                .filter(|k| k.status == KeyStatus::Active)
                .count(),
            1
        );
        assert_eq!(ring.version, 5, "one listing version per change");
    }

    #[test]
    fn secret_keys_are_private_and_never_printed() {
        let root = tempfile::tempdir().unwrap();
        let ring = ring(root.path());
        let dir = &ring.dir;
        let key = ring.active().unwrap().clone();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&ring.secret_key_path(&key.id)), 0o600);
        assert_eq!(mode(&dir.join(ROOT_SECRET)), 0o600);
        assert_eq!(mode(dir), 0o700, "a new keyring directory is private");
        let signing = ring.signing_key().unwrap();
        let secret_b64 = std::fs::read_to_string(ring.secret_key_path(&key.id)).unwrap();
        let secret_line = secret_b64.lines().nth(1).unwrap();
        assert_eq!(format!("{signing:?}"), format!("SigningKey({})", key.id));
        assert!(!format!("{signing:?}").contains(&secret_line[..20]));
    }

    #[test]
    fn secret_keys_open_to_others_are_refused_with_the_fix() {
        let root = tempfile::tempdir().unwrap();
        let ring = ring(root.path());
        let dir = ring.dir.clone();
        let secret = ring.secret_key_path(&ring.active().unwrap().id);
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = ring.signing_key().unwrap_err().to_string();
        assert!(
            err.contains(&format!("chmod 600 {}", secret.display())),
            "{err}"
        );
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = ring.signing_key().unwrap_err().to_string();
        assert!(
            err.contains(&format!("chmod 700 {}", dir.display())),
            "{err}"
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = Keyring::open(&dir).unwrap_err().to_string();
        assert!(err.contains("chmod go-w"), "{err}");
    }

    #[test]
    fn an_unsigned_or_edited_listing_is_never_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = ring(dir.path());
        let id = ring.active().unwrap().id.clone();
        ring.revoke(&id, None, None).unwrap();
        // Someone "un-revokes" the key by editing the listing.
        let path = ring.dir.join(KEYRING_FILE);
        let edited = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"status\": \"revoked\"", "\"status\": \"active\"");
        std::fs::write(&path, edited).unwrap();
        let err = Keyring::open(&ring.dir).unwrap_err().to_string();
        assert!(err.contains("not signed by the root key"), "{err}");
        // An earlier gauntlet's unsigned listing says how to adopt it.
        let v1 = r#"{"schema": "gauntlet.keyring/v1", "keys": []}"#;
        std::fs::write(&path, v1).unwrap();
        let err = Keyring::open(&ring.dir).unwrap_err().to_string();
        assert!(err.contains("gauntlet keys adopt"), "{err}");
    }

    #[test]
    fn a_pinned_root_checks_a_listing_handed_over_as_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let ring = ring(dir.path());
        let (_, root) = ring.root.clone().unwrap();
        let listing = ring.dir.join(KEYRING_FILE);
        let pinned = Keyring::open_pinned(&listing, &root).unwrap();
        assert_eq!(pinned.keys, ring.keys);
        let other = tempfile::tempdir().unwrap();
        let (_, stranger) = self::ring(other.path()).root.unwrap();
        let err = Keyring::open_pinned(&listing, &stranger)
            .unwrap_err()
            .to_string();
        assert!(err.contains("names another root"), "{err}");
    }

    #[test]
    fn rotation_keeps_the_old_key_until_expiry_and_revocation_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = ring(dir.path());
        let old = ring.active().unwrap().clone();
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
        let ring = Keyring::open(&ring.dir).unwrap();
        assert_eq!(ring.active().unwrap().id, new.id);
        ring.verify(b"data", old_sig.as_bytes(), "data").unwrap();
        let mut ring = ring;
        let (_, statement) = ring.revoke(&old.id, Some("leaked".into()), None).unwrap();
        assert!(statement.is_some(), "the old key signs its own revocation");
        let err = ring
            .verify(b"data", old_sig.as_bytes(), "data")
            .unwrap_err()
            .to_string();
        assert!(err.contains("revoked") && err.contains("leaked"), "{err}");
        assert!(!ring.secret_key_path(&old.id).exists());
        // A verifier that pins the old key alone learns of it from the statement.
        let pinned = Trust::key_from(&ring.public_key_path(&old.id).display().to_string()).unwrap();
        let err = pinned
            .verify(b"data", old_sig.as_bytes(), "data")
            .unwrap_err()
            .to_string();
        assert!(err.contains("revoked"), "{err}");
    }

    #[test]
    fn an_expired_retired_key_no_longer_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = ring(dir.path());
        let sig = ring
            .signing_key()
            .unwrap()
            .sign_minisign(b"x", "t")
            .unwrap();
        ring.rotate(None, Duration::ZERO).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        let err = ring
            .verify(b"x", sig.as_bytes(), "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("expired"), "{err}");
    }

    #[test]
    fn unknown_keys_and_other_files_are_refused_saying_which() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ring_a = ring(a.path());
        let ring_b = ring(b.path());
        let foreign = ring_b.active().unwrap().clone();
        let sig = ring_b
            .signing_key()
            .unwrap()
            .sign_minisign(b"x", "t")
            .unwrap();
        let err = ring_a
            .verify(b"x", sig.as_bytes(), "lock")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&foreign.id) && err.contains("not in the keyring"),
            "{err}"
        );
        let err = ring_b
            .verify(b"y", sig.as_bytes(), "lock")
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not match lock"), "{err}");
    }

    #[test]
    fn a_password_protected_key_needs_its_password() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = Keyring::open(&dir.path().join("keys")).unwrap();
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
        ring.verify(b"x", sig.as_bytes(), "x").unwrap();
    }

    #[test]
    fn imported_minisign_keys_verify_and_sign_and_revoked_ones_stay_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = ring(dir.path());
        let stock = keys::generate(None, "minisign encrypted secret key").unwrap();
        let public_text = keys::public_file_text(&stock.public).unwrap();
        let imported = ring
            .import(&public_text, "k.pub", None, Duration::ZERO)
            .unwrap();
        assert_eq!(imported.record.status, KeyStatus::Trusted);
        let signer = SigningKey::from_text(&stock.secret_text, None, "k").unwrap();
        let sig = signer.sign_minisign(b"x", "t").unwrap();
        ring.verify(b"x", sig.as_bytes(), "x").unwrap();
        assert_ne!(
            ring.signing_key().unwrap().id,
            stock.id,
            "a public key never signs"
        );
        let imported = ring
            .import(&stock.secret_text, "k.key", None, Duration::from_secs(60))
            .unwrap();
        assert!(imported.secret && imported.retired.is_some());
        assert_eq!(ring.signing_key().unwrap().id, stock.id);
        ring.revoke(&stock.id, None, None).unwrap();
        let err = ring
            .import(&public_text, "k.pub", None, Duration::ZERO)
            .unwrap_err();
        assert!(err.to_string().contains("revoked"), "{err}");
    }
}
