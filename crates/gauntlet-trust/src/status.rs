//! Key status statements: a key's own signed word that it is revoked, or retired and valid
//! only until a date. A statement can only take trust away, never give it, and it is signed by
//! the very key it speaks of, so it is read from anywhere (the verifier's keyring, the folder
//! of a pinned `.pub` file, `--revocations`, a checkout): a verifier that pins one public key
//! learns that the key was revoked without trusting any keyring file.
//!
//! ```text
//! DIR/status/ID.revoked.json   {"schema": "gauntlet.key-status/v1", "key": ID, "public": …,
//! DIR/status/ID.revoked.json.minisig        "status": "revoked", "time": …, "reason": …}
//! ```

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use minisign::PublicKey;
use serde::{Deserialize, Serialize};

use crate::TrustError;
use crate::keys::{self, SigningKey};

pub const STATUS_SCHEMA: &str = "gauntlet.key-status/v1";
/// The folder of a keyring (or beside a `.pub` file) that holds statements.
pub const STATUS_DIR: &str = "status";
/// More than this many files in one folder are not read: a source cannot stall a verification.
const MAX_FILES: usize = 10_000;
const MAX_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Nothing the key signed verifies any more, whatever its date.
    Revoked,
    /// The key was rotated out: it verifies until `valid_until`, then never.
    Retired,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    pub schema: String,
    /// The key's id, as minisign prints it.
    pub key: String,
    /// The key's public key (base64, as on a `.pub` file's second line).
    pub public: String,
    pub status: Change,
    pub time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Statement {
    pub fn new(
        key: &SigningKey,
        status: Change,
        valid_until: Option<String>,
        reason: Option<String>,
    ) -> Statement {
        Statement {
            schema: STATUS_SCHEMA.to_string(),
            key: key.id.clone(),
            public: key.public().to_base64(),
            status,
            time: crate::now_rfc3339(),
            valid_until,
            reason,
        }
    }

    /// Writes the statement into `DIR/status/`, signed by `key` itself.
    pub fn write(&self, dir: &Path, key: &SigningKey) -> Result<PathBuf, TrustError> {
        let bytes = crate::json_document(self, "key status statement")?;
        let status = match self.status {
            Change::Revoked => "revoked",
            Change::Retired => "retired",
        };
        let comment = format!("key-status:{}\tstatus:{status}", self.key);
        let signature = key.sign_minisign(&bytes, &comment)?;
        let path = dir
            .join(STATUS_DIR)
            .join(format!("{}.{status}.json", self.key));
        crate::write_file(&path, &bytes, 0o644)?;
        let mut sig_path = path.clone().into_os_string();
        sig_path.push(".minisig");
        crate::write_file(Path::new(&sig_path), signature.as_bytes(), 0o644)?;
        Ok(path)
    }
}

/// What is known of a key's standing, strongest first.
#[derive(Debug, Clone, PartialEq)]
pub enum Standing {
    Revoked {
        time: Option<String>,
        reason: Option<String>,
        /// Where the revocation was read.
        source: String,
    },
    Retired {
        until: String,
        source: String,
    },
    Good,
}

impl Standing {
    fn rank(&self) -> u8 {
        match self {
            Standing::Revoked { .. } => 2,
            Standing::Retired { .. } => 1,
            Standing::Good => 0,
        }
    }

    /// The stronger of two standings; of two retirements, the earlier end.
    pub fn and(self, other: Standing) -> Standing {
        match (&self, &other) {
            (Standing::Retired { until: a, .. }, Standing::Retired { until: b, .. }) => {
                let (a_t, b_t) = (parse_time(a), parse_time(b));
                if a_t.is_some() && (b_t.is_none() || a_t <= b_t) {
                    self
                } else {
                    other
                }
            }
            _ if other.rank() > self.rank() => other,
            _ => self,
        }
    }

    /// Why the key may not verify (or sign) now, if it may not: "was revoked on …".
    pub fn refusal(&self) -> Option<String> {
        match self {
            Standing::Good => None,
            Standing::Revoked {
                time,
                reason,
                source,
            } => Some(format!(
                "was revoked{}{} (per {source})",
                time.as_deref()
                    .map(|t| format!(" on {t}"))
                    .unwrap_or_default(),
                reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default(),
            )),
            Standing::Retired { until, source } => match parse_time(until) {
                Some(end) if SystemTime::now() <= end => None,
                _ => Some(format!(
                    "was rotated out and expired on {until} (per {source})"
                )),
            },
        }
    }

    /// Whether the key may verify now; the refusal says why and since when.
    pub fn check(&self, id: &str, what: &str) -> Result<(), TrustError> {
        match self.refusal() {
            None => Ok(()),
            Some(why) => Err(TrustError::Verify(format!(
                "{what} is signed by key {id}, which {why}"
            ))),
        }
    }
}

pub(crate) fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}

#[derive(Debug, Clone)]
struct Found {
    statement: Statement,
    bytes: Vec<u8>,
    signature: Vec<u8>,
    source: PathBuf,
}

/// Statements found in some places, each checked against the key it names when that key is
/// about to be trusted. Files that are not statements are ignored.
#[derive(Debug, Clone, Default)]
pub struct Statuses {
    found: Vec<Found>,
    /// Standings already verified elsewhere: a root-signed keyring listing's word on a key.
    listed: Vec<(String, String, Standing)>,
}

impl Statuses {
    /// Every statement in `paths`: a file is read as one; a folder's `*.json` files and those
    /// of its `status/` folder are read. Paths that do not exist add nothing.
    pub fn from_sources(paths: &[PathBuf]) -> Statuses {
        let mut out = Statuses::default();
        for path in paths {
            if path.is_dir() {
                for dir in [path.clone(), path.join(STATUS_DIR)] {
                    out.read_dir(&dir);
                }
            } else {
                out.read_file(path);
            }
        }
        out
    }

    fn read_dir(&mut self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten().take(MAX_FILES) {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                self.read_file(&path);
            }
        }
    }

    fn read_file(&mut self, path: &Path) {
        let small =
            |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() <= MAX_BYTES);
        if !small(path) {
            return;
        }
        let (Ok(bytes), Ok(signature)) = (std::fs::read(path), keys::read_signature(path)) else {
            return;
        };
        let Ok(statement) = serde_json::from_slice::<Statement>(&bytes) else {
            return;
        };
        if statement.schema == STATUS_SCHEMA {
            self.found.push(Found {
                statement,
                bytes,
                signature,
                source: path.to_path_buf(),
            });
        }
    }

    pub fn extend(&mut self, other: Statuses) {
        self.found.extend(other.found);
        self.listed.extend(other.listed);
    }

    /// Adds what a verified keyring listing says of the key `id` (public key `public`).
    pub fn listed(&mut self, id: &str, public: &str, standing: Standing) {
        if standing != Standing::Good {
            self.listed
                .push((id.to_string(), public.to_string(), standing));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty() && self.listed.is_empty()
    }

    /// What the statements signed by `public` itself (id `id`) say of it.
    pub fn standing(&self, id: &str, public: &PublicKey) -> Standing {
        let own = public.to_base64();
        let mut standing = Standing::Good;
        for (listed_id, listed_public, listed) in &self.listed {
            if listed_id.eq_ignore_ascii_case(id) && *listed_public == own {
                standing = standing.and(listed.clone());
            }
        }
        for found in &self.found {
            let s = &found.statement;
            if !s.key.eq_ignore_ascii_case(id) || s.public != own {
                continue;
            }
            let Ok(sig) = keys::parse_signature(&found.signature, "a key status statement") else {
                continue;
            };
            if keys::verify_with(public, id, &found.bytes, &sig, "a key status statement").is_err()
            {
                continue;
            }
            let source = found.source.display().to_string();
            standing = standing.and(match s.status {
                Change::Revoked => Standing::Revoked {
                    time: Some(s.time.clone()),
                    reason: s.reason.clone(),
                    source,
                },
                Change::Retired => Standing::Retired {
                    until: s.valid_until.clone().unwrap_or_default(),
                    source,
                },
            });
        }
        standing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_text(&keys::generate(None, "k").unwrap().secret_text, None, "k").unwrap()
    }

    #[test]
    fn a_self_signed_revocation_is_found_and_a_forged_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (key(), key());
        Statement::new(&a, Change::Revoked, None, Some("leaked".into()))
            .write(dir.path(), &a)
            .unwrap();
        // b signs a statement that claims to be about a: it must not count.
        let mut forged = Statement::new(
            &a,
            Change::Retired,
            Some("2000-01-01T00:00:00Z".into()),
            None,
        );
        forged.key = a.id.clone();
        let path = forged.write(&dir.path().join("other"), &b).unwrap();
        let statuses = Statuses::from_sources(&[dir.path().to_path_buf(), path]);
        let standing = statuses.standing(&a.id, a.public());
        assert!(
            matches!(&standing, Standing::Revoked { reason: Some(r), .. } if r == "leaked"),
            "{standing:?}"
        );
        assert!(
            standing
                .check(&a.id, "the lock")
                .unwrap_err()
                .to_string()
                .contains("revoked")
        );
        assert_eq!(statuses.standing(&b.id, b.public()), Standing::Good);
    }

    #[test]
    fn a_retirement_ends_at_its_date_and_the_earliest_end_wins() {
        let dir = tempfile::tempdir().unwrap();
        let a = key();
        Statement::new(
            &a,
            Change::Retired,
            Some("2999-01-01T00:00:00Z".into()),
            None,
        )
        .write(dir.path(), &a)
        .unwrap();
        let statuses = Statuses::from_sources(&[dir.path().to_path_buf()]);
        assert!(
            statuses
                .standing(&a.id, a.public())
                .check(&a.id, "x")
                .is_ok()
        );
        let earlier = Standing::Retired {
            until: "2000-01-01T00:00:00Z".into(),
            source: "s".into(),
        };
        let standing = statuses.standing(&a.id, a.public()).and(earlier);
        assert!(
            standing
                .check(&a.id, "x")
                .unwrap_err()
                .to_string()
                .contains("expired on 2000")
        );
    }
}
