//! A run's files beyond one disk: kept by their SHA-256 on a shared path (a filesystem every
//! server mounts), so any server serves any run's reports and evidence.
//!
//! ```text
//! ROOT/sha256/ab/abcdef…   each file once, named by its digest (written whole, then renamed)
//! ROOT/runs/RUN.json       the run's files: {"report.md": "abcdef…", …}
//! ```
//!
//! A file read back is checked against its digest: a copy changed on the shared path is
//! refused, never served.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The largest run directory kept (a run's files are reports, logs and evidence).
const MAX_FILES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("no file `{0}` is kept for this run")]
    Missing(String),
    #[error("the kept copy of `{path}` does not match its digest {sha256}: refused")]
    Tampered { path: String, sha256: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The shared path.
#[derive(Debug, Clone)]
pub struct SharedFiles {
    root: PathBuf,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `bytes` to `path` whole: a temporary file beside it, then a rename.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

impl SharedFiles {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn blob(&self, sha256: &str) -> PathBuf {
        self.root
            .join("sha256")
            .join(sha256.get(..2).unwrap_or("00"))
            .join(sha256)
    }

    fn manifest(&self, run_id: &str) -> PathBuf {
        self.root.join("runs").join(format!("{run_id}.json"))
    }

    /// Keeps every file of the run directory (a file already kept is not written again);
    /// returns how many files the run has.
    pub fn keep_run(&self, run_id: &str, run_dir: &Path) -> Result<usize, FilesError> {
        let mut files = BTreeMap::new();
        let mut pending = vec![run_dir.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    pending.push(entry.path());
                } else if kind.is_file() && files.len() < MAX_FILES {
                    let bytes = std::fs::read(entry.path())?;
                    let sha256 = hex(&Sha256::digest(&bytes));
                    let blob = self.blob(&sha256);
                    if !blob.exists() {
                        write_whole(&blob, &bytes)?;
                    }
                    let relative = entry.path();
                    let relative = relative.strip_prefix(run_dir).unwrap_or(&relative);
                    files.insert(relative.display().to_string(), sha256);
                }
            }
        }
        let manifest = serde_json::to_vec_pretty(&files).map_err(std::io::Error::other)?;
        write_whole(&self.manifest(run_id), &manifest)?;
        Ok(files.len())
    }

    /// The kept file `path` of run `run_id`, checked against its digest.
    pub fn read(&self, run_id: &str, path: &str) -> Result<Vec<u8>, FilesError> {
        let manifest = std::fs::read(self.manifest(run_id))
            .map_err(|_| FilesError::Missing(path.to_string()))?;
        let files: BTreeMap<String, String> =
            serde_json::from_slice(&manifest).map_err(std::io::Error::other)?;
        let sha256 = files
            .get(path)
            .ok_or_else(|| FilesError::Missing(path.to_string()))?;
        self.by_digest(sha256).map_err(|e| match e {
            FilesError::Tampered { sha256, .. } => FilesError::Tampered {
                path: path.to_string(),
                sha256,
            },
            other => other,
        })
    }

    /// A kept file by its digest, checked.
    pub fn by_digest(&self, sha256: &str) -> Result<Vec<u8>, FilesError> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(FilesError::Missing(sha256.to_string()));
        }
        let bytes = std::fs::read(self.blob(sha256))
            .map_err(|_| FilesError::Missing(sha256.to_string()))?;
        if hex(&Sha256::digest(&bytes)) != sha256 {
            return Err(FilesError::Tampered {
                path: sha256.to_string(),
                sha256: sha256.to_string(),
            });
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_kept_once_by_digest_and_a_changed_copy_is_refused() {
        let run = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(run.path().join("evidence/chaos")).unwrap();
        std::fs::write(run.path().join("report.md"), "# GO\n").unwrap();
        std::fs::write(run.path().join("evidence/chaos/a.json"), "{}").unwrap();
        std::fs::write(run.path().join("evidence/chaos/b.json"), "{}").unwrap();
        let shared = tempfile::tempdir().unwrap();
        let files = SharedFiles::new(shared.path());
        assert_eq!(files.keep_run("r1", run.path()).unwrap(), 3);
        assert_eq!(files.read("r1", "report.md").unwrap(), b"# GO\n");
        assert_eq!(files.read("r1", "evidence/chaos/b.json").unwrap(), b"{}");
        // Two files with the same bytes are kept once.
        let blobs = std::fs::read_dir(shared.path().join("sha256"))
            .unwrap()
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .count();
        assert_eq!(blobs, 2);
        assert!(matches!(
            files.read("r1", "nope"),
            Err(FilesError::Missing(_))
        ));
        assert!(matches!(
            files.read("r2", "report.md"),
            Err(FilesError::Missing(_))
        ));
        let digest = hex(&Sha256::digest(b"# GO\n"));
        std::fs::write(files.blob(&digest), "# NO-GO\n").unwrap();
        assert!(matches!(
            files.read("r1", "report.md"),
            Err(FilesError::Tampered { .. })
        ));
        assert!(matches!(
            files.by_digest("../../etc/passwd"),
            Err(FilesError::Missing(_))
        ));
    }
}
