//! The lock: what was tested, file by file, signed. A lock lists each protected file with its
//! digest over the canonical form, the digest and size of its bytes, and (for structured
//! files) the canonical content itself, so a verification can say which key changed and from
//! what. Locks carry a semantic version that goes up each time they are re-signed with changes.

use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use gauntlet_report::sha256_hex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::TrustError;
use crate::canonical::{self, Change, Form};
use crate::keys::{SigningKey, Verified};
use crate::{Trust, write_file};

pub const LOCK_SCHEMA: &str = "gauntlet.lock/v1";
/// The release manifest a run signs into its directory: the lock of what it tested.
pub const MANIFEST_FILE: &str = "release.lock";
/// Structured files up to this size keep their canonical content in the lock for key-path diffs.
const MAX_EMBEDDED: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub schema: String,
    /// The manifest's semantic version; it goes up when the lock is re-signed with changes.
    pub version: String,
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<Release>,
    /// The run a release manifest was made by: it names that run, and no other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    pub files: Vec<LockedFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<FlagSnapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<SbomRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedFile {
    /// Relative to the lock's directory, with `/` separators.
    pub path: String,
    pub form: Form,
    /// sha256 of the canonical form: unchanged by reformatting.
    pub sha256: String,
    /// sha256 of the bytes on disk.
    pub raw_sha256: String,
    pub size: u64,
    /// The canonical content of a structured file (up to 256 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
}

/// Feature flags as they were when the lock was made, frozen into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagSnapshot {
    /// The file or URL they came from.
    pub source: String,
    /// sha256 of their canonical JSON.
    pub sha256: String,
    pub values: Value,
    /// The snapshot as a file beside the lock (relative to it), checked by `verify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SbomRecord {
    pub path: String,
    pub sha256: String,
    pub spec_version: String,
    pub components: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bump {
    Major,
    Minor,
    Patch,
}

impl std::str::FromStr for Bump {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "major" => Ok(Bump::Major),
            "minor" => Ok(Bump::Minor),
            "patch" => Ok(Bump::Patch),
            other => Err(format!("`{other}` is not major, minor or patch")),
        }
    }
}

/// The version after `previous` (1.0.0 for a first lock).
pub fn bump_version(previous: Option<&str>, bump: Bump) -> Result<String, TrustError> {
    let Some(previous) = previous else {
        return Ok("1.0.0".to_string());
    };
    let mut v = semver::Version::parse(previous).map_err(|e| {
        TrustError::Input(format!(
            "lock version `{previous}` is not a semantic version: {e}"
        ))
    })?;
    match bump {
        Bump::Major => v = semver::Version::new(v.major + 1, 0, 0),
        Bump::Minor => v = semver::Version::new(v.major, v.minor + 1, 0),
        Bump::Patch => v = semver::Version::new(v.major, v.minor, v.patch + 1),
    }
    Ok(v.to_string())
}

pub fn signature_path(lock: &Path) -> PathBuf {
    let mut name = lock.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

/// `path` as the lock records it: relative to `base`, `/`-separated, no `..` escapes.
pub fn relative(base: &Path, path: &Path) -> Result<String, TrustError> {
    let absolute = |p: &Path| {
        std::path::absolute(p)
            .map(|p| normalize(&p))
            .map_err(|e| TrustError::io(p, e))
    };
    let (base, full) = (absolute(base)?, absolute(path)?);
    let rel = full.strip_prefix(&base).map_err(|_| {
        TrustError::Input(format!(
            "{} is outside {}, the lock's directory; protected files live beside or below the lock",
            path.display(),
            base.display()
        ))
    })?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Ok(parts.join("/"))
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Reads `file` and records it for a lock in `base`.
pub fn lock_entry(base: &Path, file: &Path) -> Result<LockedFile, TrustError> {
    let raw = std::fs::read(file).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            TrustError::Input(format!("protected file {} is missing", file.display()))
        } else {
            TrustError::io(file, e)
        }
    })?;
    lock_entry_bytes(&relative(base, file)?, file, &raw)
}

/// Records `raw` as the content of `path` under the lock path `rel` (for content that is
/// not read from disk, such as the spec text a run executes).
pub fn lock_entry_bytes(rel: &str, path: &Path, raw: &[u8]) -> Result<LockedFile, TrustError> {
    let canonical = canonical::canonicalize(path, raw)
        .map_err(|e| TrustError::Input(format!("{}: {e}", path.display())))?;
    let small = canonical.bytes.len() <= MAX_EMBEDDED;
    let content = match canonical.value {
        Some(value) if small => Some(value),
        // A large corpus or golden set keeps a digest per document instead: a change is
        // still named by the document it is in, and the lock stays small.
        Some(Value::Array(documents)) if canonical::is_json_lines(path) => {
            Some(document_digests(&documents))
        }
        _ => None,
    };
    Ok(LockedFile {
        path: rel.to_string(),
        form: canonical.form,
        sha256: sha256_hex(&canonical.bytes),
        raw_sha256: sha256_hex(raw),
        size: raw.len() as u64,
        content,
    })
}

impl Lock {
    pub fn new(version: String, release: Option<Release>, files: Vec<LockedFile>) -> Lock {
        Lock {
            schema: LOCK_SCHEMA.to_string(),
            version,
            created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            release,
            run: None,
            files,
            flags: None,
            sbom: None,
        }
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, TrustError> {
        crate::json_document(self, "lock")
    }

    pub fn parse(bytes: &[u8], what: &str) -> Result<Lock, TrustError> {
        let lock: Lock = serde_json::from_slice(bytes)
            .map_err(|e| TrustError::Input(format!("{what} is not a gauntlet lock: {e}")))?;
        if lock.schema != LOCK_SCHEMA {
            return Err(TrustError::Input(format!(
                "{what}: schema `{}` is not `{LOCK_SCHEMA}`",
                lock.schema
            )));
        }
        Ok(lock)
    }

    /// Writes the lock and its minisign signature (`PATH.minisig`).
    pub fn write_signed(&self, path: &Path, key: &SigningKey) -> Result<(), TrustError> {
        let bytes = self.to_bytes()?;
        let release = self
            .release
            .as_ref()
            .map(|r| format!("\trelease:{}@{}", r.name, r.version))
            .unwrap_or_default();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let comment = format!(
            "timestamp:{}\tfile:{name}\tmanifest:{}{release}",
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            self.version
        );
        let signature = key.sign_minisign(&bytes, &comment)?;
        write_file(path, &bytes, 0o644)?;
        write_file(&signature_path(path), signature.as_bytes(), 0o644)
    }
}

/// What happened to one locked file.
#[derive(Debug, Clone, PartialEq)]
pub enum FileOutcome {
    Unchanged,
    Missing,
    Unreadable(String),
    /// The content changed: each key path for structured files.
    Changed(Vec<Change>),
    /// A raw file changed.
    ChangedBytes {
        old_size: u64,
        new_size: u64,
    },
    /// Same canonical content, different bytes (comments, whitespace, key order).
    Reformatted,
    /// A file the lock records only by digest (an SBOM) no longer has that digest.
    DigestDiffers {
        locked: String,
        found: String,
    },
}

#[derive(Debug, Clone)]
pub struct FileCheck {
    pub path: String,
    pub outcome: FileOutcome,
}

#[derive(Debug, Clone)]
pub struct Verification {
    pub lock_path: PathBuf,
    pub lock: Option<Lock>,
    pub signature: Result<Verified, String>,
    pub files: Vec<FileCheck>,
    /// Reformatting alone is accepted.
    pub semantic: bool,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.signature.is_ok()
            && self.lock.is_some()
            && self.files.iter().all(|f| match &f.outcome {
                FileOutcome::Unchanged => true,
                FileOutcome::Reformatted => self.semantic,
                _ => false,
            })
    }

    pub fn changed(&self) -> impl Iterator<Item = &FileCheck> {
        self.files.iter().filter(|f| match f.outcome {
            FileOutcome::Unchanged => false,
            FileOutcome::Reformatted => !self.semantic,
            _ => true,
        })
    }

    /// One line per finding; the first says whose signature it is.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let lock = self.lock_path.display();
        match (&self.signature, &self.lock) {
            (Ok(v), Some(l)) => out.push(format!(
                "{lock}: manifest {} signed by key {} ({})",
                l.version,
                v.key_id,
                v.trusted_comment.replace('\t', " ")
            )),
            (Err(e), _) => {
                out.push(format!("{lock}: SIGNATURE REFUSED: {e}"));
                out.push(
                    "  no file was compared: a lock whose signature is refused vouches for nothing"
                        .to_string(),
                );
            }
            (Ok(_), None) => out.push(format!("{lock}: unreadable")),
        }
        for file in &self.files {
            match &file.outcome {
                FileOutcome::Unchanged => out.push(format!("  ok         {}", file.path)),
                FileOutcome::Missing => out.push(format!("  MISSING    {}", file.path)),
                FileOutcome::Unreadable(e) => {
                    out.push(format!("  UNREADABLE {}: {e}", file.path))
                }
                FileOutcome::ChangedBytes { old_size, new_size } => out.push(format!(
                    "  CHANGED    {}: content differs ({old_size} → {new_size} bytes)",
                    file.path
                )),
                FileOutcome::Changed(changes) if changes.is_empty() => out.push(format!(
                    "  CHANGED    {}: content differs (too large to show key paths)",
                    file.path
                )),
                FileOutcome::Changed(changes) => {
                    for change in changes.iter().take(20) {
                        out.push(format!("  CHANGED    {}: {change}", file.path));
                    }
                    if changes.len() > 20 {
                        out.push(format!(
                            "  CHANGED    {}: … and {} more",
                            file.path,
                            changes.len() - 20
                        ));
                    }
                }
                FileOutcome::Reformatted if self.semantic => out.push(format!(
                    "  ok         {} (reformatted only: same canonical content)",
                    file.path
                )),
                FileOutcome::Reformatted => out.push(format!(
                    "  REFORMATTED {}: same canonical content, different bytes (comments, whitespace or key order); pass --semantic to accept",
                    file.path
                )),
                FileOutcome::DigestDiffers { locked, found } => out.push(format!(
                    "  CHANGED    {}: sha256 {found}, signed as {locked}",
                    file.path
                )),
            }
        }
        out
    }
}

/// Checks the lock at `path` (and `PATH.minisig`) against `trust`, then, only if its
/// signature holds, every file it records: the locked files (in `project`, by default the
/// lock's folder), and for a release manifest the SBOM and flags snapshot beside it. A file
/// that is not a lock (and carries no signature) is bad input; a signed file that no longer
/// parses is a finding, like any other tampering.
pub fn verify(
    path: &Path,
    project: Option<&Path>,
    trust: &Trust,
    semantic: bool,
) -> Result<Verification, TrustError> {
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            TrustError::Input(format!(
                "no lock at {}: create one with `gauntlet lock`",
                path.display()
            ))
        } else {
            TrustError::io(path, e)
        }
    })?;
    let what = path.display().to_string();
    let sig_path = signature_path(path);
    let sig_bytes = std::fs::read(&sig_path).ok();
    let lock = match Lock::parse(&bytes, &what) {
        Ok(lock) => Some(lock),
        Err(e) if sig_bytes.is_none() => {
            return Err(TrustError::Input(format!(
                "{e}; give a lock file (a project's gauntlet.lock or a run's release.lock)"
            )));
        }
        Err(_) => None,
    };
    let signature = match &sig_bytes {
        Some(sig) => trust.verify(&bytes, sig, &what).map_err(|e| e.to_string()),
        None => Err(format!(
            "{what} has no signature ({} is missing or unreadable): the lock is unsigned",
            sig_path.display()
        )),
    };
    let signature = match (&lock, signature) {
        (None, Ok(_)) => Err(format!("{what} is signed but is not a gauntlet lock")),
        (_, signature) => signature,
    };
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let files = match (&lock, &signature) {
        (Some(lock), Ok(_)) => {
            let project = project.unwrap_or(base);
            let mut files: Vec<FileCheck> = lock
                .files
                .iter()
                .map(|entry| FileCheck {
                    path: entry.path.clone(),
                    outcome: check_file(project, entry),
                })
                .collect();
            files.extend(check_snapshots(base, lock));
            files
        }
        // An unverified lock vouches for nothing: no file is reported against it.
        _ => Vec::new(),
    };
    Ok(Verification {
        lock_path: path.to_path_buf(),
        lock,
        signature,
        files,
        semantic,
    })
}

/// A release manifest's SBOM and flags snapshot, as files beside it, against their digests.
fn check_snapshots(base: &Path, lock: &Lock) -> Vec<FileCheck> {
    let mut out = Vec::new();
    if let Some(sbom) = &lock.sbom {
        let outcome = read_beside(base, &sbom.path).map_or_else(
            |missing| missing,
            |raw| {
                let found = sha256_hex(&raw);
                if found == sbom.sha256 {
                    FileOutcome::Unchanged
                } else {
                    FileOutcome::DigestDiffers {
                        locked: sbom.sha256.clone(),
                        found,
                    }
                }
            },
        );
        out.push(FileCheck {
            path: sbom.path.clone(),
            outcome,
        });
    }
    if let Some(flags) = &lock.flags {
        // The frozen values must be the ones the digest names...
        let embedded = canonical::canonical_json(&flags.values).map(|b| sha256_hex(&b));
        if embedded.ok().as_deref() != Some(flags.sha256.as_str()) {
            out.push(FileCheck {
                path: "flags (in the lock)".into(),
                outcome: FileOutcome::Unreadable(
                    "the frozen flags do not match their digest".into(),
                ),
            });
        }
        // ...and the snapshot file beside the lock must still hold them.
        if let Some(rel) = &flags.path {
            let outcome = read_beside(base, rel).map_or_else(
                |missing| missing,
                |raw| match canonical::canonicalize(Path::new(rel), &raw) {
                    Err(e) => FileOutcome::Unreadable(e.to_string()),
                    Ok(c) if sha256_hex(&c.bytes) == flags.sha256 => FileOutcome::Unchanged,
                    Ok(c) => FileOutcome::Changed(
                        c.value
                            .map(|now| canonical::diff(&flags.values, &now))
                            .unwrap_or_default(),
                    ),
                },
            );
            out.push(FileCheck {
                path: rel.clone(),
                outcome,
            });
        }
    }
    out
}

/// The bytes of `rel` beside the lock, or the outcome that says why not.
fn read_beside(base: &Path, rel: &str) -> Result<Vec<u8>, FileOutcome> {
    if rel.split('/').any(|p| p == "..") || Path::new(rel).is_absolute() {
        return Err(FileOutcome::Unreadable(
            "the lock names a path outside its directory".into(),
        ));
    }
    std::fs::read(base.join(rel)).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FileOutcome::Missing,
        _ => FileOutcome::Unreadable(e.to_string()),
    })
}

fn check_file(base: &Path, entry: &LockedFile) -> FileOutcome {
    match read_beside(base, &entry.path) {
        Ok(raw) => compare(entry, &base.join(&entry.path), &raw),
        Err(outcome) => outcome,
    }
}

/// One `sha256:HEX` per document, of its canonical form.
fn document_digests(documents: &[Value]) -> Value {
    Value::Array(
        documents
            .iter()
            .map(|d| {
                let bytes = canonical::canonical_json(d).unwrap_or_default();
                Value::String(format!("sha256:{}", sha256_hex(&bytes)))
            })
            .collect(),
    )
}

/// Whether locked content is a per-document digest list (a large JSON Lines file).
fn is_digest_list(content: &Value) -> bool {
    content.as_array().is_some_and(|items| {
        items
            .iter()
            .all(|i| i.as_str().is_some_and(|s| s.starts_with("sha256:")))
    })
}

/// How `raw` (the content of `path` now) differs from what `entry` locked.
pub fn compare(entry: &LockedFile, path: &Path, raw: &[u8]) -> FileOutcome {
    if sha256_hex(raw) == entry.raw_sha256 && raw.len() as u64 == entry.size {
        return FileOutcome::Unchanged;
    }
    if entry.form == Form::Raw {
        return FileOutcome::ChangedBytes {
            old_size: entry.size,
            new_size: raw.len() as u64,
        };
    }
    let canonical = match canonical::canonicalize(path, raw) {
        Ok(c) => c,
        Err(e) => return FileOutcome::Unreadable(e.to_string()),
    };
    if sha256_hex(&canonical.bytes) == entry.sha256 {
        return FileOutcome::Reformatted;
    }
    match (&entry.content, &canonical.value) {
        (Some(old), Some(Value::Array(documents)))
            if canonical::is_json_lines(path) && is_digest_list(old) =>
        {
            FileOutcome::Changed(canonical::diff(old, &document_digests(documents)))
        }
        (Some(old), Some(new)) => {
            let changes = canonical::diff(old, new);
            FileOutcome::Changed(changes)
        }
        _ => FileOutcome::Changed(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keyring;

    fn setup() -> (tempfile::TempDir, Keyring, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = Keyring::open(&dir.path().join("keys")).unwrap();
        ring.generate(None).unwrap();
        std::fs::write(
            dir.path().join("spec.yaml"),
            "# thresholds\nslos:\n  latency: {threshold: 300ms}\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("prompts")).unwrap();
        std::fs::write(dir.path().join("prompts/reply.txt"), "Be brief.\n").unwrap();
        let lock_path = dir.path().join("gauntlet.lock");
        let files = ["spec.yaml", "prompts/reply.txt"]
            .iter()
            .map(|f| lock_entry(dir.path(), &dir.path().join(f)).unwrap())
            .collect();
        Lock::new("1.0.0".into(), None, files)
            .write_signed(&lock_path, &ring.signing_key().unwrap())
            .unwrap();
        (dir, ring, lock_path)
    }

    /// A corpus (JSON Lines) changed in one document: named by that document and key, for a
    /// small file from its embedded content, for a large one from its per-document digests.
    #[test]
    fn a_changed_document_of_a_corpus_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corpus.jsonl");
        for filler in [0usize, 3000] {
            let corpus: String = (0..100)
                .map(|i| {
                    format!(
                        "{{\"id\": \"doc-{i}\", \"text\": \"fact {i} {}\"}}\n",
                        "x".repeat(filler)
                    )
                })
                .collect();
            let entry = lock_entry_bytes("corpus.jsonl", &path, corpus.as_bytes()).unwrap();
            let content = entry.content.as_ref().unwrap();
            assert_eq!(is_digest_list(content), filler > 0);
            let edited = corpus.replace("fact 41 ", "fact 14 ");
            match compare(&entry, &path, edited.as_bytes()) {
                FileOutcome::Changed(changes) => {
                    assert_eq!(changes.len(), 1, "{changes:?}");
                    let shown = changes[0].to_string();
                    let expected = if filler > 0 { "[41]:" } else { "[41].text:" };
                    assert!(shown.starts_with(expected), "{shown}");
                }
                other => panic!("{other:?}"),
            }
            let spaced = corpus.replace("\"id\": ", "\"id\":   ");
            assert!(matches!(
                compare(&entry, &path, spaced.as_bytes()),
                FileOutcome::Reformatted
            ));
        }
    }

    #[test]
    fn an_untouched_lock_verifies() {
        let (_dir, ring, lock) = setup();
        let v = verify(&lock, None, &Trust::Keyring(ring), false).unwrap();
        assert!(v.passed(), "{:?}", v.lines());
        assert_eq!(v.lock.unwrap().files[1].path, "prompts/reply.txt");
    }

    #[test]
    fn a_threshold_edit_names_the_file_and_key_path() {
        let (dir, ring, lock) = setup();
        std::fs::write(
            dir.path().join("spec.yaml"),
            "# thresholds\nslos:\n  latency: {threshold: 500ms}\n",
        )
        .unwrap();
        let v = verify(&lock, None, &Trust::Keyring(ring), false).unwrap();
        assert!(!v.passed());
        assert!(
            v.lines().contains(
                &r#"  CHANGED    spec.yaml: slos.latency.threshold: "300ms" → "500ms""#.to_string()
            ),
            "{:?}",
            v.lines()
        );
    }

    #[test]
    fn reformatting_fails_unless_semantic_and_missing_files_are_named() {
        let (dir, ring, lock) = setup();
        std::fs::write(
            dir.path().join("spec.yaml"),
            "slos:\n  latency:\n    threshold: 300ms  # same\n",
        )
        .unwrap();
        std::fs::remove_file(dir.path().join("prompts/reply.txt")).unwrap();
        let trust = Trust::Keyring(ring);
        let v = verify(&lock, None, &trust, false).unwrap();
        assert_eq!(v.files[0].outcome, FileOutcome::Reformatted);
        assert_eq!(v.files[1].outcome, FileOutcome::Missing);
        std::fs::write(dir.path().join("prompts/reply.txt"), "Be brief.\n").unwrap();
        assert!(verify(&lock, None, &trust, true).unwrap().passed());
        assert!(!verify(&lock, None, &trust, false).unwrap().passed());
    }

    #[test]
    fn an_unsigned_lock_is_refused() {
        let (_dir, ring, lock) = setup();
        std::fs::remove_file(signature_path(&lock)).unwrap();
        let v = verify(&lock, None, &Trust::Keyring(ring), false).unwrap();
        assert!(v.signature.unwrap_err().contains("unsigned"));
    }

    #[test]
    fn versions_bump_semantically() {
        assert_eq!(bump_version(None, Bump::Patch).unwrap(), "1.0.0");
        assert_eq!(bump_version(Some("1.2.3"), Bump::Patch).unwrap(), "1.2.4");
        assert_eq!(bump_version(Some("1.2.3"), Bump::Minor).unwrap(), "1.3.0");
        assert_eq!(bump_version(Some("1.2.3"), Bump::Major).unwrap(), "2.0.0");
        assert!(bump_version(Some("one"), Bump::Patch).is_err());
    }

    #[test]
    fn files_outside_the_lock_directory_are_refused() {
        let (dir, _ring, _lock) = setup();
        let sub = dir.path().join("prompts");
        let err = lock_entry(&sub, &dir.path().join("spec.yaml")).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]
        /// Any single changed byte, of a locked file or of the lock itself, fails verification.
        #[test]
        fn any_flipped_byte_fails_verification(target in 0usize..3, position in 0usize..10_000, xor in 1u8..=255) {
            let (dir, ring, lock) = setup();
            let path = match target {
                0 => dir.path().join("spec.yaml"),
                1 => dir.path().join("prompts/reply.txt"),
                _ => lock.clone(),
            };
            let mut bytes = std::fs::read(&path).unwrap();
            let at = position % bytes.len();
            bytes[at] ^= xor;
            std::fs::write(&path, &bytes).unwrap();
            let v = verify(&lock, None, &Trust::Keyring(ring), false);
            proptest::prop_assert!(v.map(|v| !v.passed()).unwrap_or(true));
        }
    }
}
