//! The embedded store: one SQLite file (WAL, fsync on commit), its schema version in
//! `PRAGMA user_version`.

use std::path::Path;

use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};

use crate::StoreError;
use crate::db::{Cell, Db, Param, Row, Statement};

pub struct Sqlite {
    pub(crate) conn: Connection,
}

impl Sqlite {
    /// Opens (or creates) the file. What it holds is for its owner only: folders it creates
    /// are 0700, the database 0600 (SQLite's journal files follow the database).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let failed = |e: std::io::Error| StoreError::Open {
            path: path.display().to_string(),
            why: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(failed)?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            why: source.to_string(),
        })?;
        if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o077 != 0)
        {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(failed)?;
        }
        Self::init(conn)
    }

    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // WAL: readers (history, show) never block a running gauntlet, and a SIGKILL
        // mid-write leaves the last committed state.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(Self { conn })
    }
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Param::Text(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Param::Int(Some(n)) => ToSqlOutput::Owned(Value::Integer(*n)),
            Param::Text(None) | Param::Int(None) => ToSqlOutput::Owned(Value::Null),
        })
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let mut cells = Vec::new();
    for i in 0..r.as_ref().column_count() {
        cells.push(match r.get_ref(i)? {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(n) => Cell::Int(n),
            ValueRef::Real(f) => Cell::Text(f.to_string()),
            ValueRef::Text(t) | ValueRef::Blob(t) => {
                Cell::Text(String::from_utf8_lossy(t).into_owned())
            }
        });
    }
    Ok(Row(cells))
}

impl Db for Sqlite {
    fn execute(&mut self, sql: &str, params: Vec<Param>) -> Result<u64, StoreError> {
        let changed = self
            .conn
            .execute(sql, rusqlite::params_from_iter(params.iter()))?;
        Ok(changed as u64)
    }

    fn query(&mut self, sql: &str, params: Vec<Param>) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn write_all(&mut self, statements: Vec<Statement>) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for (sql, params) in statements {
            tx.execute(&sql, rusqlite::params_from_iter(params.iter()))?;
        }
        tx.commit()?;
        Ok(())
    }

    fn migrate(&mut self, migrations: &[&str]) -> Result<(), StoreError> {
        let known = migrations.len() as i64;
        // A store already at this schema is only read: opening it takes no write lock (the
        // server opens it for every request while runs write to it).
        if self.schema_version()? == known {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > known {
            return Err(StoreError::TooNew { found, known });
        }
        for (version, sql) in migrations.iter().enumerate().skip(found as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version as i64 + 1)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn schema_version(&mut self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }
}
