//! The data DR protects: backed up and restored (SQLite's online backup and plain copies,
//! or the spec's commands), and fingerprinted (row counts and a checksum per table, file
//! digests) so a restore is compared with its backup.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use gauntlet_spec::DrPlan;
use sha2::{Digest, Sha256};

use crate::context::RunContext;
use crate::supervisor::substitute;

/// Row counts and a checksum of every table: what "the same data" means for a restore.
fn sqlite_fingerprint(path: &Path) -> Result<BTreeMap<String, (u64, String)>, String> {
    use rusqlite::OpenFlags;
    let db = rusqlite::Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| format!("list tables of {}: {e}", path.display()))?;
    let mut out = BTreeMap::new();
    for table in tables {
        let quoted = table.replace('"', "\"\"");
        let mut statement = db
            .prepare(&format!("SELECT * FROM \"{quoted}\" ORDER BY 1"))
            .map_err(|e| format!("read {table}: {e}"))?;
        let columns = statement.column_count();
        let mut rows = statement
            .query([])
            .map_err(|e| format!("read {table}: {e}"))?;
        let mut hash = Sha256::new();
        let mut count = 0u64;
        while let Some(row) = rows.next().map_err(|e| format!("read {table}: {e}"))? {
            count += 1;
            for i in 0..columns {
                let value = row.get_ref(i).map_err(|e| e.to_string())?;
                hash.update(format!("{value:?}").as_bytes());
                hash.update([0x1f]);
            }
            hash.update([0x1e]);
        }
        out.insert(table, (count, hex::encode(hash.finalize())));
    }
    Ok(out)
}

fn file_digest(path: &Path) -> Result<String, String> {
    std::fs::read(path)
        .map(|b| gauntlet_report::sha256_hex(&b))
        .map_err(|e| format!("read {}: {e}", path.display()))
}

/// What the backup holds, to compare the restore with.
#[derive(Debug, PartialEq)]
pub(super) struct Fingerprint {
    pub tables: BTreeMap<String, (u64, String)>,
    pub files: BTreeMap<String, String>,
}

pub(super) fn fingerprint(config: &DrPlan, dir: &Path) -> Result<Fingerprint, String> {
    let tables = match &config.sqlite {
        Some(db) => sqlite_fingerprint(&dir.join(db))?,
        None => BTreeMap::new(),
    };
    let mut files = BTreeMap::new();
    for file in &config.files {
        files.insert(file.clone(), file_digest(&dir.join(file))?);
    }
    Ok(Fingerprint { tables, files })
}

pub(super) fn builtin_backup(config: &DrPlan, live: &Path, backup: &Path) -> Result<(), String> {
    std::fs::create_dir_all(backup).map_err(|e| e.to_string())?;
    if let Some(db) = &config.sqlite {
        let source =
            rusqlite::Connection::open(live.join(db)).map_err(|e| format!("open {db}: {e}"))?;
        // SQLite's online backup: a consistent copy while the service keeps writing.
        source
            .backup(
                rusqlite::MAIN_DB,
                backup.join(db),
                None::<fn(rusqlite::backup::Progress)>,
            )
            .map_err(|e| format!("back up {db}: {e}"))?;
    }
    for file in &config.files {
        copy_into(&live.join(file), &backup.join(file))?;
    }
    Ok(())
}

fn copy_into(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))
}

pub(super) fn builtin_restore(config: &DrPlan, backup: &Path, fresh: &Path) -> Result<(), String> {
    std::fs::create_dir_all(fresh).map_err(|e| e.to_string())?;
    for name in config.sqlite.iter().chain(config.files.iter()) {
        copy_into(&backup.join(name), &fresh.join(name))?;
    }
    // The copied database file must be durable before the service opens it.
    if let Some(db) = &config.sqlite {
        std::fs::File::open(fresh.join(db))
            .and_then(|f| f.sync_all())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub(super) async fn run_command(
    ctx: &RunContext,
    argv: &[String],
    values: &BTreeMap<String, String>,
) -> Result<(), String> {
    let argv: Vec<String> = argv.iter().map(|a| substitute(a, values)).collect();
    let Some((program, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let status = tokio::time::timeout(
        Duration::from_secs(600),
        ctx.child_env
            .command(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .status(),
    )
    .await
    .map_err(|_| format!("`{program}` did not finish within 10 minutes"))?
    .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` exited with {status}", argv.join(" ")))
    }
}
