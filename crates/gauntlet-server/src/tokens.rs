//! Who may do what. A token is `gauntlet_ID_SECRET`: the id names its entry in the tokens
//! file, the secret is 32 random bytes shown once at creation and stored only as its
//! SHA-256, compared in constant time. The file is read again whenever it changes, so a
//! token revoked by `gauntlet token revoke` is refused on its next request.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do. Viewers read; operators also start and cancel runs; approvers also
/// sign off; admins may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Approver,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Approver, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// Whether a holder of this role may act where `needed` is required.
    pub fn allows(self, needed: Role) -> bool {
        self == needed || self == Role::Admin || needed == Role::Viewer
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a role: viewer, operator, approver or admin"))
    }
}

/// One token as stored: never the secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenEntry {
    pub id: String,
    pub role: Role,
    /// The services it may act on; empty means all.
    #[serde(default)]
    pub services: Vec<String>,
    pub sha256: String,
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    tokens: Vec<TokenEntry>,
}

/// A caller the tokens file knows.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: String,
    pub role: Role,
    pub services: Vec<String>,
}

impl Caller {
    /// Who the caller is, as a run records who started it: the token's id and role (never
    /// the token).
    pub fn describe(&self) -> String {
        format!("token {} ({})", self.token, self.role.as_str())
    }

    /// Whether the caller's token covers `service`.
    pub fn covers(&self, service: &str) -> bool {
        self.services.is_empty() || self.services.iter().any(|s| s == service)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("no token `{0}`")]
    Unknown(String),
}

/// The tokens file's modification time and length when its entries were read.
type Stamp = (SystemTime, u64);

/// The tokens file, read again when it changes.
pub struct Tokens {
    path: PathBuf,
    cache: Mutex<(Option<Stamp>, Vec<TokenEntry>)>,
}

impl Tokens {
    pub fn new(path: &Path) -> Tokens {
        Tokens {
            path: path.to_path_buf(),
            cache: Mutex::new((None, Vec::new())),
        }
    }

    /// The caller a bearer token belongs to, if it is known and not revoked.
    pub fn authenticate(&self, bearer: &str) -> Option<Caller> {
        let (id, secret) = parse(bearer)?;
        let digest = Sha256::digest(secret.as_bytes());
        let entries = self.entries();
        let entry = entries.iter().find(|e| e.id == id)?;
        let stored = hex::decode(&entry.sha256).ok()?;
        let same: bool = stored.ct_eq(digest.as_slice()).into();
        (same && entry.revoked.is_none()).then(|| Caller {
            token: entry.id.clone(),
            role: entry.role,
            services: entry.services.clone(),
        })
    }

    fn entries(&self) -> Vec<TokenEntry> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| Ok((m.modified()?, m.len())))
            .ok();
        if modified.is_none() || modified != cache.0 {
            // An unreadable file knows no one: every request is refused until it is fixed.
            let read = read(&self.path).unwrap_or_default();
            *cache = (modified, read.tokens);
        }
        cache.1.clone()
    }
}

/// `gauntlet_ID_SECRET` split, if it has that shape.
fn parse(bearer: &str) -> Option<(&str, &str)> {
    let rest = bearer.strip_prefix("gauntlet_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 8 && secret.len() == 64).then_some((id, secret))
}

fn read(path: &Path) -> Result<TokenFile, TokenError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TokenFile::default()),
        Err(e) => {
            return Err(TokenError::File {
                path: path.to_path_buf(),
                message: e.to_string(),
            });
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| TokenError::File {
        path: path.to_path_buf(),
        message: format!("not a tokens file: {e}"),
    })
}

fn write(path: &Path, file: &TokenFile) -> Result<(), TokenError> {
    let error = |message: String| TokenError::File {
        path: path.to_path_buf(),
        message,
    };
    let bytes = serde_json::to_vec_pretty(file).map_err(|e| error(e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| error(e.to_string()))?;
    }
    gauntlet_report::write_atomic(path, &bytes).map_err(|e| error(e.to_string()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| error(e.to_string()))
}

fn random_hex(bytes: usize) -> Result<String, TokenError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| TokenError::File {
        path: PathBuf::new(),
        message: format!("no randomness: {e}"),
    })?;
    Ok(hex::encode(buf))
}

/// Adds a token; returns the whole token (shown once) and its entry.
pub fn create(
    path: &Path,
    role: Role,
    services: Vec<String>,
    label: Option<String>,
) -> Result<(String, TokenEntry), TokenError> {
    let mut file = read(path)?;
    let id = random_hex(4)?;
    let secret = random_hex(32)?;
    let entry = TokenEntry {
        id: id.clone(),
        role,
        services,
        sha256: hex::encode(Sha256::digest(secret.as_bytes())),
        created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        label,
        revoked: None,
    };
    file.tokens.push(entry.clone());
    write(path, &file)?;
    Ok((format!("gauntlet_{id}_{secret}"), entry))
}

/// The tokens, without their secrets (which are not stored).
pub fn list(path: &Path) -> Result<Vec<TokenEntry>, TokenError> {
    Ok(read(path)?.tokens)
}

/// Marks a token revoked; it is refused from its next request on.
pub fn revoke(path: &Path, id: &str) -> Result<TokenEntry, TokenError> {
    let mut file = read(path)?;
    let entry = file
        .tokens
        .iter_mut()
        .find(|e| e.id == id)
        .ok_or_else(|| TokenError::Unknown(id.to_string()))?;
    entry.revoked = Some(humantime::format_rfc3339_seconds(SystemTime::now()).to_string());
    let revoked = entry.clone();
    write(path, &file)?;
    Ok(revoked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_works_until_it_is_revoked_and_only_its_secret_opens_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let (token, entry) = create(&path, Role::Operator, vec!["shop".into()], None).unwrap();
        let tokens = Tokens::new(&path);
        let caller = tokens.authenticate(&token).unwrap();
        assert_eq!(caller.role, Role::Operator);
        assert!(caller.covers("shop") && !caller.covers("other"));
        let stored = std::fs::read_to_string(&path).unwrap();
        assert!(!stored.contains(&token[17..]), "the secret is not stored");
        let mut forged = token.clone();
        forged.replace_range(20..21, if &token[20..21] == "0" { "1" } else { "0" });
        assert!(tokens.authenticate(&forged).is_none());
        revoke(&path, &entry.id).unwrap();
        assert!(tokens.authenticate(&token).is_none());
    }

    #[test]
    fn roles_nest_as_documented() {
        assert!(Role::Admin.allows(Role::Approver));
        assert!(Role::Operator.allows(Role::Viewer));
        assert!(!Role::Operator.allows(Role::Approver));
        assert!(!Role::Approver.allows(Role::Operator));
        assert!(!Role::Viewer.allows(Role::Operator));
    }
}
