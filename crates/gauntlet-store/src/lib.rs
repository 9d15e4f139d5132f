//! The run store: an embedded SQLite database of runs, steps, checks, timeline events and
//! an evidence index, with versioned migrations. The whole report is kept too, so
//! `gauntlet show RUN --json` returns exactly what was written.
//!
//! A run is inserted as `running` when it starts, with the pid of the process running it;
//! a run whose process is gone without finishing is found by [`Store::abandoned_runs`] and
//! marked aborted by the caller, which owns the notion of a live process.
//!
//! ```
//! let store = gauntlet_store::Store::open_in_memory().unwrap();
//! assert!(store.list_runs(10).unwrap().is_empty());
//! ```

use std::path::Path;

use gauntlet_report::Report;
use rusqlite::{Connection, OptionalExtension, params};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("run store {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("run store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("run store holds a report that does not parse: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error(
        "run store schema version {found} is newer than this gauntlet understands ({known}); upgrade gauntlet"
    )]
    TooNew { found: i64, known: i64 },
    #[error("no run matches `{0}`")]
    NoSuchRun(String),
    #[error("`{0}` matches more than one run; give more of the id")]
    Ambiguous(String),
}

/// Migrations in order; entry `i` moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        service TEXT NOT NULL,
        version TEXT NOT NULL,
        spec_path TEXT NOT NULL,
        spec_sha256 TEXT NOT NULL,
        run_dir TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'aborted')),
        decision TEXT,
        exit_code INTEGER,
        pid INTEGER NOT NULL,
        pid_start TEXT NOT NULL,
        report_json TEXT
    );
    CREATE INDEX runs_by_start ON runs (started_at);
    CREATE TABLE steps (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        name TEXT NOT NULL,
        outcome TEXT NOT NULL,
        started_at TEXT,
        duration_ms INTEGER NOT NULL,
        note TEXT,
        PRIMARY KEY (run_id, name)
    );
    CREATE TABLE checks (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        check_id TEXT NOT NULL,
        step TEXT NOT NULL,
        outcome TEXT NOT NULL,
        severity TEXT NOT NULL,
        measured TEXT,
        threshold TEXT,
        samples INTEGER,
        reason TEXT NOT NULL,
        PRIMARY KEY (run_id, check_id)
    );
    CREATE TABLE timeline (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        at TEXT NOT NULL,
        elapsed_ms INTEGER NOT NULL,
        step TEXT,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    CREATE TABLE evidence (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        PRIMARY KEY (run_id, path)
    );",
    // A controller's key for a run (Flagger's checksum, an Argo analysis key): the same key
    // is the same run, however often and wherever it is asked.
    "CREATE TABLE run_keys (
        key TEXT PRIMARY KEY,
        service TEXT NOT NULL,
        run_id TEXT NOT NULL,
        created_at TEXT NOT NULL
    );",
    // Who started a run: the OS user of a CLI run, the token of a server's.
    "ALTER TABLE runs ADD COLUMN started_by TEXT;",
];

/// What `begin_run` records before anything runs.
#[derive(Debug, Clone)]
pub struct RunStart {
    pub id: String,
    pub service: String,
    pub version: String,
    pub spec_path: String,
    pub spec_sha256: String,
    pub run_dir: String,
    pub started_at: String,
    /// The process running the gauntlet, and its start time as the OS reports it, so a
    /// recycled pid is not mistaken for it.
    pub pid: u32,
    pub pid_start: String,
    /// Who started it, when known.
    pub started_by: Option<String>,
}

/// One line of `gauntlet history`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    pub id: String,
    pub service: String,
    pub version: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: String,
    pub decision: Option<String>,
    pub exit_code: Option<i64>,
    pub run_dir: String,
    /// Who started it, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
}

/// A run still marked running: its process may be alive, or it was killed.
#[derive(Debug, Clone)]
pub struct OpenRun {
    pub id: String,
    pub pid: u32,
    pub pid_start: String,
    pub run_dir: String,
}

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (or creates) the store. What it holds is for its owner only: folders it
    /// creates are 0700, the database 0600 (SQLite's journal files follow the database).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let failed = |e: std::io::Error| StoreError::Open {
            path: path.display().to_string(),
            source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
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
            source,
        })?;
        if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o077 != 0)
        {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(failed)?;
        }
        Self::init(conn)
    }

    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // WAL: readers (history, show) never block a running gauntlet, and a SIGKILL
        // mid-write leaves the last committed state.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Self { conn };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = MIGRATIONS.len() as i64;
        // A store already at this schema is only read: opening it takes no write lock (the
        // server opens it for every request while runs write to it).
        let current: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if current == known {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > known {
            return Err(StoreError::TooNew { found, known });
        }
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version as i64 + 1)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    pub fn begin_run(&self, run: &RunStart) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO runs (id, service, version, spec_path, spec_sha256, run_dir, started_at,
                               status, pid, pid_start, started_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', ?8, ?9, ?10)",
            params![
                run.id,
                run.service,
                run.version,
                run.spec_path,
                run.spec_sha256,
                run.run_dir,
                run.started_at,
                run.pid,
                run.pid_start,
                run.started_by
            ],
        )?;
        Ok(())
    }

    /// Stores the finished report and its rows in one transaction.
    pub fn finish_run(&mut self, report: &Report) -> Result<(), StoreError> {
        let json = serde_json::to_string(report)?;
        let status = if report.decision == gauntlet_report::Decision::Aborted {
            "aborted"
        } else {
            "finished"
        };
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE runs SET finished_at = ?2, status = ?3, decision = ?4, exit_code = ?5,
                             report_json = ?6
             WHERE id = ?1",
            params![
                report.run_id,
                report.finished_at,
                status,
                report.decision.as_str(),
                report.exit_code,
                json
            ],
        )?;
        for table in ["steps", "checks", "timeline", "evidence"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE run_id = ?1"),
                [&report.run_id],
            )?;
        }
        for (position, step) in report.steps.iter().enumerate() {
            tx.execute(
                "INSERT INTO steps VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    report.run_id,
                    position as i64,
                    step.name,
                    step.outcome.as_str(),
                    step.started_at,
                    step.duration_ms as i64,
                    step.note
                ],
            )?;
            for check in &step.checks {
                tx.execute(
                    "INSERT INTO checks VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        report.run_id,
                        check.id,
                        check.step,
                        check.outcome.as_str(),
                        serde_json::to_value(check.severity)?.as_str(),
                        check.measured,
                        check.threshold,
                        check.samples.map(|n| n as i64),
                        check.reason
                    ],
                )?;
            }
        }
        for (seq, event) in report.timeline.iter().enumerate() {
            tx.execute(
                "INSERT INTO timeline VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    report.run_id,
                    seq as i64,
                    event.at,
                    event.elapsed_ms as i64,
                    event.step,
                    event.kind,
                    event.message
                ],
            )?;
        }
        for file in &report.evidence {
            tx.execute(
                "INSERT INTO evidence VALUES (?1, ?2, ?3, ?4)",
                params![report.run_id, file.path, file.sha256, file.bytes as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Runs still marked `running`, oldest first.
    pub fn open_runs(&self) -> Result<Vec<OpenRun>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, pid, pid_start, run_dir FROM runs WHERE status = 'running'
             ORDER BY started_at",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(OpenRun {
                id: r.get(0)?,
                pid: r.get(1)?,
                pid_start: r.get(2)?,
                run_dir: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The run `key` names: the one already claimed for it, or `run_id`, claimed now (then
    /// `true`). Two callers racing for one key get the same run.
    pub fn claim_key(
        &self,
        key: &str,
        service: &str,
        run_id: &str,
        at: &str,
    ) -> Result<(String, bool), StoreError> {
        let inserted = self.conn.execute(
            "INSERT OR IGNORE INTO run_keys (key, service, run_id, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![key, service, run_id, at],
        )?;
        let claimed: String = self.conn.query_row(
            "SELECT run_id FROM run_keys WHERE key = ?1",
            params![key],
            |r| r.get(0),
        )?;
        Ok((claimed, inserted > 0))
    }

    /// The run a key names, if one was claimed.
    pub fn keyed_run(&self, key: &str) -> Result<Option<String>, StoreError> {
        let found = self.conn.query_row(
            "SELECT run_id FROM run_keys WHERE key = ?1",
            params![key],
            |r| r.get(0),
        );
        match found {
            Ok(run) => Ok(Some(run)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Marks a run that died without finishing; returns whether it was still open.
    pub fn mark_aborted(&self, id: &str, at: &str) -> Result<bool, StoreError> {
        let changed = self.conn.execute(
            "UPDATE runs SET status = 'aborted', decision = 'ABORTED', exit_code = 1,
                             finished_at = ?2
             WHERE id = ?1 AND status = 'running'",
            params![id, at],
        )?;
        Ok(changed > 0)
    }

    pub fn list_runs(&self, limit: usize) -> Result<Vec<RunSummary>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, service, version, started_at, finished_at, status, decision, exit_code,
                    run_dir, started_by
             FROM runs ORDER BY started_at DESC, id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], summary_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Finds a run by its id or a unique prefix of it (`latest` names the newest run), or by
    /// its directory (`.gauntlet/runs/ID/`, as the console prints it): the last component
    /// of a path is the run's whole id.
    pub fn find_run(&self, id_or_prefix: &str) -> Result<RunSummary, StoreError> {
        if id_or_prefix.contains(['/', std::path::MAIN_SEPARATOR]) {
            let id = std::path::Path::new(id_or_prefix)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            return self
                .conn
                .query_row(
                    "SELECT id, service, version, started_at, finished_at, status, decision,
                            exit_code, run_dir, started_by FROM runs WHERE id = ?1",
                    [id],
                    summary_from_row,
                )
                .optional()?
                .ok_or_else(|| StoreError::NoSuchRun(id_or_prefix.into()));
        }
        let select = "SELECT id, service, version, started_at, finished_at, status, decision,
                             exit_code, run_dir, started_by FROM runs";
        if id_or_prefix == "latest" {
            return self
                .conn
                .query_row(
                    &format!("{select} ORDER BY started_at DESC, id DESC LIMIT 1"),
                    [],
                    summary_from_row,
                )
                .optional()?
                .ok_or_else(|| StoreError::NoSuchRun(id_or_prefix.into()));
        }
        let mut stmt = self.conn.prepare(&format!(
            "{select} WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id LIMIT 2"
        ))?;
        let mut found: Vec<RunSummary> = stmt
            .query_map([id_or_prefix], summary_from_row)?
            .collect::<Result<_, _>>()?;
        match found.len() {
            0 => Err(StoreError::NoSuchRun(id_or_prefix.into())),
            1 => Ok(found.remove(0)),
            _ => Err(StoreError::Ambiguous(id_or_prefix.into())),
        }
    }

    /// The stored report of a finished run; `None` for a run that never finished.
    pub fn report(&self, id: &str) -> Result<Option<Report>, StoreError> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT report_json FROM runs WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .flatten();
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    /// Number of stored checks of a run, by outcome (for `show` on runs without a report).
    pub fn check_count(&self, id: &str) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM checks WHERE run_id = ?1", [id], |r| {
                r.get(0)
            })?)
    }
}

fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunSummary> {
    Ok(RunSummary {
        id: r.get(0)?,
        service: r.get(1)?,
        version: r.get(2)?,
        started_at: r.get(3)?,
        finished_at: r.get(4)?,
        status: r.get(5)?,
        decision: r.get(6)?,
        exit_code: r.get(7)?,
        run_dir: r.get(8)?,
        started_by: r.get(9)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gauntlet_report::*;

    fn start(id: &str) -> RunStart {
        RunStart {
            id: id.into(),
            service: "svc".into(),
            version: "1.0.0".into(),
            spec_path: "g.yaml".into(),
            spec_sha256: "00".into(),
            run_dir: format!("runs/{id}"),
            started_at: format!("2026-11-22T10:00:0{}Z", id.len() % 10),
            pid: 1,
            pid_start: "1".into(),
            started_by: Some("tester".into()),
        }
    }

    fn report(id: &str) -> Report {
        let check = Check::new("security", "auth", Severity::Hard)
            .outcome(Outcome::Fail, "answered 200 without credentials");
        Report {
            schema: REPORT_SCHEMA.into(),
            run_id: id.into(),
            gauntlet_version: "0.1.0".into(),
            service: ServiceInfo {
                name: "svc".into(),
                version: "1.0.0".into(),
            },
            spec: SpecInfo {
                path: "g.yaml".into(),
                sha256: "00".into(),
            },
            started_at: "2026-11-22T10:00:00Z".into(),
            finished_at: "2026-11-22T10:01:00Z".into(),
            duration_ms: 60_000,
            seed: Some(7),
            gating: "hard".into(),
            decision: Decision::NoGo,
            exit_code: 1,
            summary: "NO-GO".into(),
            conditions: vec![],
            steps: vec![StepReport {
                name: "security".into(),
                outcome: Outcome::Fail,
                started_at: None,
                duration_ms: 5,
                note: None,
                checks: vec![check],
            }],
            timeline: vec![],
            drills: vec![],
            runbooks: vec![],
            trust: None,
            drift: None,
            measurements: Default::default(),
            gates: None,
            readiness: None,
            taxonomy: None,
            evidence: vec![EvidenceFile {
                path: "evidence/a.json".into(),
                sha256: "ab".into(),
                bytes: 2,
            }],
        }
    }

    #[test]
    fn a_finished_run_returns_its_report_unchanged() {
        let mut store = Store::open_in_memory().unwrap();
        store.begin_run(&start("r1")).unwrap();
        store.finish_run(&report("r1")).unwrap();
        assert_eq!(store.report("r1").unwrap().unwrap(), report("r1"));
        assert_eq!(store.check_count("r1").unwrap(), 1);
        let runs = store.list_runs(10).unwrap();
        assert_eq!(runs[0].decision.as_deref(), Some("NO-GO"));
        assert_eq!(runs[0].status, "finished");
    }

    #[test]
    fn open_runs_can_be_marked_aborted_once() {
        let store = Store::open_in_memory().unwrap();
        store.begin_run(&start("r2")).unwrap();
        assert_eq!(store.open_runs().unwrap().len(), 1);
        assert!(store.mark_aborted("r2", "now").unwrap());
        assert!(!store.mark_aborted("r2", "now").unwrap());
        assert!(store.open_runs().unwrap().is_empty());
        assert_eq!(store.find_run("r2").unwrap().status, "aborted");
    }

    #[test]
    fn prefixes_find_one_run_or_say_why_not() {
        let store = Store::open_in_memory().unwrap();
        store.begin_run(&start("abc1")).unwrap();
        store.begin_run(&start("abc2")).unwrap();
        assert_eq!(store.find_run("abc1").unwrap().id, "abc1");
        assert!(matches!(
            store.find_run("abc"),
            Err(StoreError::Ambiguous(_))
        ));
        assert!(matches!(
            store.find_run("zzz"),
            Err(StoreError::NoSuchRun(_))
        ));
        assert!(store.find_run("latest").is_ok());
        // A run's directory names it, with or without the trailing slash; a path is never
        // taken as a prefix.
        for dir in [
            ".gauntlet/runs/abc1",
            ".gauntlet/runs/abc1/",
            "/srv/x/runs/abc1",
        ] {
            assert_eq!(store.find_run(dir).unwrap().id, "abc1", "{dir}");
        }
        assert!(matches!(
            store.find_run(".gauntlet/runs/abc"),
            Err(StoreError::NoSuchRun(_))
        ));
    }

    #[test]
    fn a_key_names_one_run_however_often_it_is_claimed() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.keyed_run("k").unwrap(), None);
        assert_eq!(
            store.claim_key("k", "s", "run-1", "t").unwrap(),
            ("run-1".to_string(), true)
        );
        assert_eq!(
            store.claim_key("k", "s", "run-2", "t").unwrap(),
            ("run-1".to_string(), false)
        );
        assert_eq!(store.keyed_run("k").unwrap().as_deref(), Some("run-1"));
    }

    #[test]
    fn migrations_are_idempotent_and_refuse_newer_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        drop(Store::open(&path).unwrap());
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        store.conn.pragma_update(None, "user_version", 99).unwrap();
        drop(store);
        assert!(matches!(Store::open(&path), Err(StoreError::TooNew { .. })));
    }
}
