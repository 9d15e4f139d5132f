//! The audit log: one JSON line per auth decision and per change, appended and fsynced.
//! Each line carries the SHA-256 of the line before (`prev`; the first line's is 64 zeros),
//! so `gauntlet audit verify` finds a line edited, deleted, inserted or moved. (A log cut
//! after its last line still verifies: keep a copy of the last hash elsewhere for that.)

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub time: String,
    /// The token's id (never the token), when the caller presented a known one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub action: String,
    pub resource: String,
    /// `allowed`, `denied`, `unauthenticated`, or what a change came to.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    pub prev: String,
}

/// What a caller did, before it is numbered and chained.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub token: Option<String>,
    pub role: Option<String>,
    pub action: String,
    pub resource: String,
    pub outcome: String,
    pub remote: Option<String>,
}

pub struct Audit {
    path: PathBuf,
    tail: Mutex<(File, u64, String)>,
}

impl Audit {
    /// Opens (or starts) the log at `path`; the chain continues from its last line.
    pub fn open(path: &Path) -> std::io::Result<Audit> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let (seq, prev) = match std::fs::read(path) {
            Ok(bytes) => last_link(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, GENESIS.to_string()),
            Err(e) => return Err(e),
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(Audit {
            path: path.to_path_buf(),
            tail: Mutex::new((file, seq, prev)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line and waits until it is on disk.
    pub fn record(&self, event: Event) -> std::io::Result<()> {
        let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        let entry = Entry {
            seq: tail.1 + 1,
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            token: event.token,
            role: event.role,
            action: event.action,
            resource: event.resource,
            outcome: event.outcome,
            remote: event.remote,
            prev: tail.2.clone(),
        };
        let line = serde_json::to_string(&entry).map_err(std::io::Error::other)?;
        tail.0.write_all(format!("{line}\n").as_bytes())?;
        tail.0.sync_data()?;
        tail.1 = entry.seq;
        tail.2 = hash(line.as_bytes());
        Ok(())
    }
}

fn hash(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

/// The sequence number and hash of the last line, to chain the next one to.
fn last_link(bytes: &[u8]) -> (u64, String) {
    let text = String::from_utf8_lossy(bytes);
    let Some(last) = text.lines().rev().find(|l| !l.trim().is_empty()) else {
        return (0, GENESIS.to_string());
    };
    let seq = serde_json::from_str::<Entry>(last).map_or(0, |e| e.seq);
    (seq, hash(last.as_bytes()))
}

/// Why an audit log does not verify: the first line that breaks it, and how.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot read it: {0}")]
    Unreadable(std::io::Error),
    #[error("it is not UTF-8 text")]
    NotText,
    #[error("line {line}: not an audit entry: {message}")]
    NotAnEntry { line: usize, message: String },
    #[error(
        "line {line}: the chain is broken (it names {named} as the line before, which hashes to {found}): a line before it was edited, deleted, inserted or moved"
    )]
    Broken {
        line: usize,
        named: String,
        found: String,
    },
    #[error("line {line}: sequence {seq} where {due} was due")]
    Sequence { line: usize, seq: u64, due: u64 },
}

/// Checks every link of the log at `path`; returns how many lines hold, or the first line
/// that does not and why.
pub fn verify(path: &Path) -> Result<u64, AuditError> {
    let bytes = std::fs::read(path).map_err(AuditError::Unreadable)?;
    let text = String::from_utf8(bytes).map_err(|_| AuditError::NotText)?;
    let mut prev = GENESIS.to_string();
    let mut count = 0;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let entry: Entry = serde_json::from_str(line).map_err(|e| AuditError::NotAnEntry {
            line: n,
            message: e.to_string(),
        })?;
        if entry.prev != prev {
            return Err(AuditError::Broken {
                line: n,
                named: short(&entry.prev).to_string(),
                found: short(&prev).to_string(),
            });
        }
        if entry.seq != count + 1 {
            return Err(AuditError::Sequence {
                line: n,
                seq: entry.seq,
                due: count + 1,
            });
        }
        prev = hash(line.as_bytes());
        count += 1;
    }
    Ok(count)
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str) -> Event {
        Event {
            token: Some("ab12cd34".into()),
            role: Some("operator".into()),
            action: action.into(),
            resource: "/v1/runs".into(),
            outcome: "allowed".into(),
            remote: Some("127.0.0.1:5000".into()),
        }
    }

    #[test]
    fn an_edited_deleted_or_moved_line_breaks_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let audit = Audit::open(&path).unwrap();
        for action in ["a", "b", "c"] {
            audit.record(event(action)).unwrap();
        }
        drop(audit);
        // Reopened, the chain continues.
        Audit::open(&path).unwrap().record(event("d")).unwrap();
        assert_eq!(verify(&path).unwrap(), 4);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let tampered = [
            text.replace("\"action\":\"b\"", "\"action\":\"x\""),
            [lines[0], lines[2], lines[3]].join("\n"),
            [lines[0], lines[2], lines[1], lines[3]].join("\n"),
        ];
        for (i, text) in tampered.iter().enumerate() {
            std::fs::write(&path, text).unwrap();
            let said = verify(&path).unwrap_err();
            assert!(matches!(said, AuditError::Broken { .. }), "{i}: {said}");
        }
    }
}
