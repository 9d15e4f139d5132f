//! `gauntlet keys …`, and which keyring and which keys a command trusts: the keyring the
//! user names (or their own, never one found in the current directory), a pinned key, or a
//! pinned root key over a keyring listing, each with every revocation that can be found.

use std::path::{Path, PathBuf};

use gauntlet_report::exit;
use gauntlet_trust::keyring::{KeyStatus, ROOT_PUBLIC};
use gauntlet_trust::keys::PASSWORD_ENV;
use gauntlet_trust::{Keyring, Statuses, Trust};

use crate::CliError;
use crate::cli::{Global, KeysCommand, TrustArgs};

/// Where status statements may also be listed: paths separated by `:`.
const REVOCATIONS_ENV: &str = "GAUNTLET_REVOCATIONS";

/// The keyring a command uses: the one named (`--keyring`, `GAUNTLET_KEYRING`), else the
/// user's own. Never `.gauntlet/keys` of the current directory: a checkout must not bring
/// the keys that verify it.
pub fn keyring_dir(global: &Global) -> Result<PathBuf, CliError> {
    if let Some(named) = &global.keyring {
        return Ok(named.clone());
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        });
    config.map(|c| c.join("gauntlet/keys")).ok_or_else(|| {
        CliError::Usage(
            "no keyring: neither --keyring, GAUNTLET_KEYRING, XDG_CONFIG_HOME nor HOME is set"
                .into(),
        )
    })
}

/// Status statements from `--revocations` and `GAUNTLET_REVOCATIONS`.
fn named_statuses(args: &TrustArgs) -> Statuses {
    let mut paths = args.revocations.clone();
    if let Some(list) = std::env::var_os(REVOCATIONS_ENV) {
        paths.extend(std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()));
    }
    Statuses::from_sources(&paths)
}

/// What the user's keyring knows of keys' standing, for a verifier that pins another key:
/// its listing when it verifies, its statements in any case.
fn keyring_knowledge(keyring: &Path) -> Statuses {
    match Keyring::open(keyring) {
        Ok(ring) => ring.knowledge(),
        Err(_) => Statuses::from_sources(&[keyring.to_path_buf()]),
    }
}

/// The keys a verification trusts: `--key` (a pinned key), `--root` (the keyring listing it
/// signs), or the keyring. Revocations count in every mode.
pub fn trust_from(global: &Global, args: &TrustArgs) -> Result<Trust, CliError> {
    let keyring = keyring_dir(global)?;
    if let Some(key) = &args.key {
        let mut known = keyring_knowledge(&keyring);
        known.extend(named_statuses(args));
        return Ok(Trust::key_from(key)?.with_statuses(known));
    }
    if let Some(root) = &args.root {
        let Some(listing) = &global.keyring else {
            return Err(CliError::Usage(
                "--root pins the keyring's root key; also give the listing it signs: --keyring DIR (or its keyring.json)".into(),
            ));
        };
        let public = gauntlet_trust::keys::public_from_arg(root)?;
        let ring = Keyring::open_pinned(listing, &public)?;
        return Ok(Trust::Keyring(ring).with_statuses(named_statuses(args)));
    }
    let ring = Keyring::open(&keyring)?;
    if ring.keys.is_empty() {
        return Err(CliError::Usage(format!(
            "the keyring in {} has no keys: give --keyring DIR, --key PUB or --root PUB",
            keyring.display()
        )));
    }
    Ok(Trust::Keyring(ring).with_statuses(named_statuses(args)))
}

/// Like [`trust_from`], for commands that can go on without any (sign-offs whose roles have
/// keys in the spec): `None` when no key was given and the keyring is empty or absent.
pub fn optional_trust(global: &Global, args: &TrustArgs) -> Result<Option<Trust>, CliError> {
    if args.key.is_some() || args.root.is_some() {
        return trust_from(global, args).map(Some);
    }
    let keyring = keyring_dir(global)?;
    Ok(Keyring::open(&keyring)
        .ok()
        .filter(|ring| !ring.keys.is_empty())
        .map(|ring| Trust::Keyring(ring).with_statuses(named_statuses(args))))
}

/// The password for a new or imported key: `GAUNTLET_KEY_PASSWORD`, else asked for on the
/// terminal (twice for a new one).
pub fn password(confirm: bool) -> Result<String, CliError> {
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        return Ok(password);
    }
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!(
            "a password is needed: set {PASSWORD_ENV} or run on a terminal"
        )));
    }
    let first = rpassword::prompt_password("Password: ")
        .map_err(|e| CliError::Usage(format!("cannot read the password: {e}")))?;
    if confirm {
        let again = rpassword::prompt_password("Password (again): ")
            .map_err(|e| CliError::Usage(format!("cannot read the password: {e}")))?;
        if again != first {
            return Err(CliError::Usage("the passwords differ".into()));
        }
    }
    Ok(first)
}

fn grace(text: &str) -> Result<std::time::Duration, CliError> {
    humantime::parse_duration(text)
        .map_err(|e| CliError::Usage(format!("--grace `{text}`: {e} (e.g. 7d, 12h)")))
}

pub fn keys_command(global: &Global, command: KeysCommand) -> Result<i32, CliError> {
    let keyring = keyring_dir(global)?;
    let open = || Keyring::open(&keyring);
    let new_password = |encrypt: bool| encrypt.then(|| password(true)).transpose();
    match command {
        KeysCommand::Adopt => adopt(&keyring)?,
        KeysCommand::Generate { encrypt } => {
            let mut ring = open()?;
            let key = ring.generate(new_password(encrypt)?)?;
            say!(
                "generated key {}: public {}, secret {} (mode 0600); root key {}",
                key.id,
                ring.public_key_path(&key.id).display(),
                ring.secret_key_path(&key.id).display(),
                ring.root_public_path().display()
            );
        }
        KeysCommand::List { json } => list(&open()?, json),
        KeysCommand::Rotate { grace: g, encrypt } => {
            rotate(&mut open()?, new_password(encrypt)?, grace(&g)?)?
        }
        KeysCommand::Revoke { id, reason } => revoke(&mut open()?, &id, reason)?,
        KeysCommand::Import { files, grace: g } => {
            let mut ring = open()?;
            let grace = grace(&g)?;
            for file in &files {
                import(&mut ring, file, grace)?;
            }
        }
    }
    Ok(exit::GO)
}

fn adopt(keyring: &Path) -> Result<(), CliError> {
    let ring = Keyring::adopt(keyring, std::env::var(PASSWORD_ENV).ok())?;
    let root = ring.root.as_ref().map_or("?", |(id, _)| id.as_str());
    say!(
        "the listing of {} ({} keys) is now version {}, signed by root key {root} ({})",
        keyring.display(),
        ring.keys.len(),
        ring.version,
        ring.root_public_path().display()
    );
    Ok(())
}

fn rotate(
    ring: &mut Keyring,
    password: Option<String>,
    grace: std::time::Duration,
) -> Result<(), CliError> {
    let (new, old) = ring.rotate(password, grace)?;
    say!(
        "new active key {} ({})",
        new.id,
        ring.public_key_path(&new.id).display()
    );
    if let Some(old) = old {
        say!(
            "key {} retired: it verifies until {}; revoke it with `gauntlet keys revoke {}`",
            old.id,
            old.valid_until.as_deref().unwrap_or("?"),
            old.id
        );
    }
    Ok(())
}

fn revoke(ring: &mut Keyring, id: &str, reason: Option<String>) -> Result<(), CliError> {
    // The key signs its own revocation: a protected one needs its password. A secret that
    // is not here cannot sign it, and needs none.
    let secret = ring
        .get(id)
        .and_then(|k| std::fs::read_to_string(ring.secret_key_path(&k.id)).ok());
    let password = secret
        .is_some_and(|s| gauntlet_trust::keys::is_encrypted(&s))
        .then(|| password(false))
        .transpose()?;
    let (key, statement) = ring.revoke(id, reason, password)?;
    say!(
        "key {} revoked: nothing it signed verifies any more; its secret key is deleted",
        key.id
    );
    match statement {
        Some(path) => say!(
            "its own revocation statement: {} (give it to verifiers that pin the key: --revocations)",
            path.display()
        ),
        None => note!(
            "note: key {} has no secret here, so it could not sign its own revocation; verifiers that pin it with --key learn of it only from this keyring: tell them to drop the pin",
            key.id
        ),
    }
    Ok(())
}

fn import(ring: &mut Keyring, file: &Path, grace: std::time::Duration) -> Result<(), CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let password = gauntlet_trust::keys::is_encrypted(&text)
        .then(|| password(false))
        .transpose()?;
    let imported = ring.import(&text, &file.display().to_string(), password, grace)?;
    let what = if imported.secret {
        "the active signing key"
    } else {
        "a trusted key (it verifies; it never signs here)"
    };
    say!(
        "imported key {} from {} as {what}",
        imported.record.id,
        file.display()
    );
    if let Some(old) = imported.retired {
        say!(
            "key {} retired: it verifies until {}",
            old.id,
            old.valid_until.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

fn list(ring: &Keyring, json: bool) {
    if json {
        say!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "keyring": ring.dir.display().to_string(),
                "version": ring.version,
                "root": ring.root.as_ref().map(|(id, key)| serde_json::json!({"id": id, "public": key.to_base64()})),
                "keys": ring.keys,
            }))
            .unwrap_or_default()
        );
        return;
    }
    if ring.keys.is_empty() {
        say!("no keys in {}", ring.dir.display());
        return;
    }
    if let Some((id, key)) = &ring.root {
        say!(
            "root {id}  signs the listing (version {}); pin it in CI with --root {}\n    public key {}",
            ring.version,
            ring.dir.join(ROOT_PUBLIC).display(),
            key.to_base64()
        );
    }
    for k in &ring.keys {
        let status = match k.status {
            KeyStatus::Active => "active".to_string(),
            KeyStatus::Trusted => "trusted (verifies only)".to_string(),
            KeyStatus::Retired => format!(
                "retired, verifies until {}",
                k.valid_until.as_deref().unwrap_or("?")
            ),
            KeyStatus::Revoked => format!(
                "REVOKED {}{}",
                k.revoked.as_deref().unwrap_or(""),
                k.reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
        };
        let secret = if ring.secret_key_path(&k.id).exists() {
            "secret here"
        } else {
            "public only"
        };
        say!(
            "{}  {status}  created {}  {secret}  {}\n    public key {}",
            k.id,
            k.created,
            ring.public_key_path(&k.id).display(),
            k.public
        );
    }
}
