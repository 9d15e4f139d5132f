//! Corrupting a data file so the service's own integrity check must notice — reversibly.
//! Copy-on-write: the original is renamed aside (same inode, same bytes, same metadata) and
//! a corrupted copy takes its place; undoing renames the original back. A crash at any point
//! leaves either the original in place or a journal entry that puts it back.

use std::path::{Path, PathBuf};

use gauntlet_net::SplitMix64;

use crate::journal::{CleanupJournal, JournalError, Undo};

#[derive(Debug, thiserror::Error)]
pub enum CorruptError {
    #[error("cannot corrupt {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(
        "{path} has an earlier corruption that was never undone (its original is {original}); run `gauntlet recover` first"
    )]
    NotRestored { path: PathBuf, original: PathBuf },
}

/// What was done, for the timeline and evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Corruption {
    pub journal_id: u64,
    pub path: PathBuf,
    pub original: PathBuf,
    /// Byte offsets that were flipped.
    pub flipped: Vec<u64>,
}

/// Flips `flips` bytes of `path` (positions from `seed`), keeping the original beside it.
pub fn corrupt_file(
    journal: &mut CleanupJournal,
    path: &Path,
    flips: usize,
    seed: u64,
) -> Result<Corruption, CorruptError> {
    let io = |source| CorruptError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = std::fs::read(path).map_err(io)?;
    let original = aside_name(path);
    // Never rename a corrupted file over a saved original.
    if original.exists() {
        return Err(CorruptError::NotRestored {
            path: path.to_path_buf(),
            original,
        });
    }
    let journal_id = journal.register(Undo::RestoreFile {
        path: path.to_path_buf(),
        original: original.clone(),
    })?;
    let mut rng = SplitMix64::new(seed);
    let mut flipped = Vec::new();
    if !bytes.is_empty() {
        // More flips than the file has bytes adds nothing but memory.
        for _ in 0..flips.clamp(1, bytes.len()) {
            let at = rng.below(bytes.len() as u64);
            // XOR with a non-zero mask always changes the byte.
            bytes[at as usize] ^= 1 + (rng.below(255) as u8);
            flipped.push(at);
        }
    }
    std::fs::rename(path, &original).map_err(io)?;
    gauntlet_report::write_atomic(path, &bytes).map_err(io)?;
    Ok(Corruption {
        journal_id,
        path: path.to_path_buf(),
        original,
        flipped,
    })
}

/// `items.json` → `items.json.gauntlet-original` beside it (same file system, so the
/// rename that restores it is atomic).
fn aside_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".gauntlet-original");
    path.with_file_name(name)
}

/// Puts the original back; a missing original means it was already restored.
pub(crate) fn restore(path: &Path, original: &Path) -> String {
    if !original.exists() {
        return format!("{} was already restored", path.display());
    }
    match std::fs::rename(original, path) {
        Ok(()) => format!("restored {}", path.display()),
        Err(e) => format!(
            "could not restore {}: {e} (the original is at {})",
            path.display(),
            original.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn corrupt_then_undo(content: &[u8], flips: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data.bin");
        std::fs::write(&file, content).unwrap();
        let mut journal = CleanupJournal::create(dir.path()).unwrap();
        corrupt_file(&mut journal, &file, flips, seed).unwrap();
        let corrupted = std::fs::read(&file).unwrap();
        journal.undo_all();
        (corrupted, std::fs::read(&file).unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
        #[test]
        fn the_original_comes_back_byte_for_byte(
            content in proptest::collection::vec(any::<u8>(), 0..4096),
            flips in 1usize..16,
            seed in any::<u64>(),
        ) {
            let (corrupted, restored) = corrupt_then_undo(&content, flips, seed);
            prop_assert_eq!(&restored, &content);
            if !content.is_empty() {
                prop_assert_ne!(&corrupted, &content);
            }
        }
    }

    #[test]
    fn a_dead_runs_corruption_is_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("items.json");
        std::fs::write(&file, b"[1,2,3]").unwrap();
        let mut journal = CleanupJournal::create(dir.path()).unwrap();
        let done = corrupt_file(&mut journal, &file, 2, 9).unwrap();
        assert_ne!(std::fs::read(&file).unwrap(), b"[1,2,3]");
        // As if the run were SIGKILLed: nothing undone in process.
        std::mem::forget(journal);
        let recovered = crate::journal::recover(dir.path()).unwrap();
        assert_eq!(recovered, vec![format!("restored {}", file.display())]);
        assert_eq!(std::fs::read(&file).unwrap(), b"[1,2,3]");
        assert!(!done.original.exists());
        assert!(crate::journal::recover(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn an_unrestored_original_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("items.json");
        std::fs::write(&file, b"original").unwrap();
        let mut journal = CleanupJournal::create(dir.path()).unwrap();
        corrupt_file(&mut journal, &file, 1, 1).unwrap();
        let again = corrupt_file(&mut journal, &file, 1, 2);
        assert!(
            matches!(again, Err(CorruptError::NotRestored { .. })),
            "{again:?}"
        );
        journal.undo_all();
        assert_eq!(std::fs::read(&file).unwrap(), b"original");
    }
}
