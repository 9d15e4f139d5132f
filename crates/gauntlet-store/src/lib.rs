//! The run store: runs, steps, checks, timeline events and an evidence index, with versioned
//! migrations, in an embedded SQLite file or in PostgreSQL shared by several servers (one set
//! of migrations and queries, `db.rs`). The whole report is kept too, so `gauntlet show RUN
//! --json` returns exactly what was written.
//!
//! A run is inserted as `running` when it starts, with the pid of the process running it
//! and, for a server's run, the server's lease; a run whose process is gone (or whose lease
//! ran out) without finishing is found by [`Store::open_runs`] and marked aborted by the
//! caller, which owns the notion of a live process.
//!
//! ```
//! let store = gauntlet_store::Store::open_in_memory().unwrap();
//! assert!(store.list_runs(10).unwrap().is_empty());
//! ```

mod db;
mod files;
mod location;
mod postgres;
mod sqlite;

use std::sync::Mutex;

use gauntlet_report::Report;

use db::{Db, Row, Statement, params};
pub use files::{FilesError, SharedFiles};
pub use location::Location;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("run store {path}: {why}")]
    Open { path: String, why: String },
    #[error("run store: {0}")]
    Sql(String),
    #[error("run store: the database is unreachable: {0}")]
    Lost(String),
    #[error("run store: a row is not what the schema says: {0}")]
    Shape(String),
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

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sql(e.to_string())
    }
}

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> Self {
        StoreError::Sql(e.to_string())
    }
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
    // Which server runs it, and until when its lease holds (renewed by its heartbeat): a
    // run whose lease ran out belongs to a server that is gone.
    "ALTER TABLE runs ADD COLUMN owner TEXT;
     ALTER TABLE runs ADD COLUMN lease_until TEXT;",
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
    /// The server running it and until when its lease holds (RFC 3339, UTC), for a run a
    /// server owns; `None` for a CLI run (its process is watched instead).
    pub lease: Option<Lease>,
}

/// A server's hold on a run: its owner and when the hold runs out unless renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: String,
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
    /// Set for a run a server owns: it is abandoned once the lease has run out.
    pub lease: Option<Lease>,
}

pub struct Store {
    db: Mutex<Box<dyn Db>>,
}

const SUMMARY: &str = "SELECT id, service, version, started_at, finished_at, status, decision,
                              exit_code, run_dir, started_by FROM runs";

impl Store {
    /// Opens the store at `location`: the SQLite file (created if missing), or the
    /// PostgreSQL database; either is brought to this gauntlet's schema.
    pub fn connect(location: &Location) -> Result<Self, StoreError> {
        let db: Box<dyn Db> = match location {
            Location::Sqlite(path) => Box::new(sqlite::Sqlite::open(path)?),
            Location::Postgres(url) => {
                Box::new(postgres::Postgres::connect(url, &location.to_string())?)
            }
        };
        Self::init(db)
    }

    /// Opens (or creates) the SQLite store at `path`.
    pub fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        Self::init(Box::new(sqlite::Sqlite::open(path)?))
    }

    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Box::new(sqlite::Sqlite::in_memory()?))
    }

    fn init(mut db: Box<dyn Db>) -> Result<Self, StoreError> {
        db.migrate(MIGRATIONS)?;
        Ok(Self { db: Mutex::new(db) })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Box<dyn Db>> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn execute(&self, sql: &str, params: Vec<db::Param>) -> Result<u64, StoreError> {
        self.db().execute(sql, params)
    }

    fn query(&self, sql: &str, params: Vec<db::Param>) -> Result<Vec<Row>, StoreError> {
        self.db().query(sql, params)
    }

    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.db().schema_version()
    }

    /// Records a run that starts (again, harmlessly: a retried insert changes nothing); a
    /// different run already stored under its id is refused.
    pub fn begin_run(&self, run: &RunStart) -> Result<(), StoreError> {
        let (owner, until) = match &run.lease {
            Some(lease) => (Some(lease.owner.as_str()), Some(lease.until.as_str())),
            None => (None, None),
        };
        self.execute(
            "INSERT INTO runs (id, service, version, spec_path, spec_sha256, run_dir, started_at,
                               status, pid, pid_start, started_by, owner, lease_until)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9, $10, $11, $12)
             ON CONFLICT DO NOTHING",
            params![
                &run.id,
                &run.service,
                &run.version,
                &run.spec_path,
                &run.spec_sha256,
                &run.run_dir,
                &run.started_at,
                i64::from(run.pid),
                &run.pid_start,
                &run.started_by,
                owner,
                until
            ],
        )?;
        let stored = self.query(
            "SELECT started_at, pid_start, run_dir FROM runs WHERE id = $1",
            params![&run.id],
        )?;
        let ours = stored.first().is_some_and(|r| {
            r.text(0).ok().as_ref() == Some(&run.started_at)
                && r.text(1).ok().as_ref() == Some(&run.pid_start)
                && r.text(2).ok().as_ref() == Some(&run.run_dir)
        });
        if !ours {
            return Err(StoreError::Shape(format!(
                "run id {} is already another run's",
                run.id
            )));
        }
        Ok(())
    }

    /// Extends the lease of run `id`, while it runs, to `until`; whether it was renewed.
    pub fn renew_lease(&self, id: &str, until: &str) -> Result<bool, StoreError> {
        let renewed = self.execute(
            "UPDATE runs SET lease_until = $1 WHERE id = $2 AND status = 'running'",
            params![until, id],
        )?;
        Ok(renewed > 0)
    }

    /// Stores the finished report and its rows in one transaction (a retry rewrites the
    /// same rows).
    pub fn finish_run(&self, report: &Report) -> Result<(), StoreError> {
        let json = serde_json::to_string(report)?;
        let status = if report.decision == gauntlet_report::Decision::Aborted {
            "aborted"
        } else {
            "finished"
        };
        let id = &report.run_id;
        let mut statements: Vec<Statement> = vec![(
            "UPDATE runs SET finished_at = $1, status = $2, decision = $3, exit_code = $4,
                             report_json = $5
             WHERE id = $6"
                .into(),
            params![
                &report.finished_at,
                status,
                report.decision.as_str(),
                i64::from(report.exit_code),
                &json,
                id
            ],
        )];
        for table in ["steps", "checks", "timeline", "evidence"] {
            statements.push((
                format!("DELETE FROM {table} WHERE run_id = $1"),
                params![id],
            ));
        }
        for (position, step) in report.steps.iter().enumerate() {
            statements.push((
                "INSERT INTO steps VALUES ($1, $2, $3, $4, $5, $6, $7)".into(),
                params![
                    id,
                    position as i64,
                    &step.name,
                    step.outcome.as_str(),
                    &step.started_at,
                    step.duration_ms as i64,
                    &step.note
                ],
            ));
            for check in &step.checks {
                statements.push((
                    "INSERT INTO checks VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)".into(),
                    params![
                        id,
                        &check.id,
                        &check.step,
                        check.outcome.as_str(),
                        serde_json::to_value(check.severity)?.as_str(),
                        &check.measured,
                        &check.threshold,
                        check.samples.map(|n| n as i64),
                        &check.reason
                    ],
                ));
            }
        }
        for (seq, event) in report.timeline.iter().enumerate() {
            statements.push((
                "INSERT INTO timeline VALUES ($1, $2, $3, $4, $5, $6, $7)".into(),
                params![
                    id,
                    seq as i64,
                    &event.at,
                    event.elapsed_ms as i64,
                    &event.step,
                    &event.kind,
                    &event.message
                ],
            ));
        }
        for file in &report.evidence {
            statements.push((
                "INSERT INTO evidence VALUES ($1, $2, $3, $4)".into(),
                params![id, &file.path, &file.sha256, file.bytes as i64],
            ));
        }
        self.db().write_all(statements)
    }

    /// Runs still marked `running`, oldest first.
    pub fn open_runs(&self) -> Result<Vec<OpenRun>, StoreError> {
        let rows = self.query(
            "SELECT id, pid, pid_start, run_dir, owner, lease_until FROM runs
             WHERE status = 'running' ORDER BY started_at",
            Vec::new(),
        )?;
        rows.iter()
            .map(|r| {
                let lease = match (r.opt_text(4)?, r.opt_text(5)?) {
                    (Some(owner), Some(until)) => Some(Lease { owner, until }),
                    _ => None,
                };
                Ok(OpenRun {
                    id: r.text(0)?,
                    pid: u32::try_from(r.int(1)?).unwrap_or(0),
                    pid_start: r.text(2)?,
                    run_dir: r.text(3)?,
                    lease,
                })
            })
            .collect()
    }

    /// The run `key` names: the one already claimed for it, or `run_id`, claimed now (then
    /// `true`). Two callers racing for one key, on one server or two, get the same run.
    pub fn claim_key(
        &self,
        key: &str,
        service: &str,
        run_id: &str,
        at: &str,
    ) -> Result<(String, bool), StoreError> {
        let inserted = self.execute(
            "INSERT INTO run_keys (key, service, run_id, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            params![key, service, run_id, at],
        )?;
        let claimed = self
            .keyed_run(key)?
            .ok_or_else(|| StoreError::Shape(format!("key `{key}` claimed but not stored")))?;
        // Run ids are fresh for each call: the key names this one only if this call (or its
        // retry after a lost connection) claimed it.
        let _ = inserted;
        Ok((claimed.clone(), claimed == run_id))
    }

    /// The run a key names, if one was claimed.
    pub fn keyed_run(&self, key: &str) -> Result<Option<String>, StoreError> {
        let rows = self.query("SELECT run_id FROM run_keys WHERE key = $1", params![key])?;
        rows.first().map(|r| r.text(0)).transpose()
    }

    /// Marks a run that died without finishing; returns whether it was still open.
    pub fn mark_aborted(&self, id: &str, at: &str) -> Result<bool, StoreError> {
        let changed = self.execute(
            "UPDATE runs SET status = 'aborted', decision = 'ABORTED', exit_code = 1,
                             finished_at = $1
             WHERE id = $2 AND status = 'running'",
            params![at, id],
        )?;
        Ok(changed > 0)
    }

    pub fn list_runs(&self, limit: usize) -> Result<Vec<RunSummary>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.summaries(
            &format!("{SUMMARY} ORDER BY started_at DESC, id DESC LIMIT $1"),
            params![limit],
        )
    }

    fn summaries(&self, sql: &str, params: Vec<db::Param>) -> Result<Vec<RunSummary>, StoreError> {
        self.query(sql, params)?.iter().map(summary).collect()
    }

    /// Finds a run by its id or a unique prefix of it (`latest` names the newest run), or by
    /// its directory (`.gauntlet/runs/ID/`, as the console prints it): the last component
    /// of a path is the run's whole id.
    pub fn find_run(&self, id_or_prefix: &str) -> Result<RunSummary, StoreError> {
        let none = || StoreError::NoSuchRun(id_or_prefix.into());
        if id_or_prefix.contains(['/', std::path::MAIN_SEPARATOR]) {
            let id = std::path::Path::new(id_or_prefix)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let found = self.summaries(&format!("{SUMMARY} WHERE id = $1"), params![id])?;
            return found.into_iter().next().ok_or_else(none);
        }
        if id_or_prefix == "latest" {
            return self.list_runs(1)?.into_iter().next().ok_or_else(none);
        }
        let mut found = self.summaries(
            &format!(
                "{SUMMARY} WHERE substr(id, 1, length(CAST($1 AS TEXT))) = $1 ORDER BY id LIMIT 2"
            ),
            params![id_or_prefix],
        )?;
        match found.len() {
            0 => Err(none()),
            1 => Ok(found.remove(0)),
            _ => Err(StoreError::Ambiguous(id_or_prefix.into())),
        }
    }

    /// The stored report of a finished run; `None` for a run that never finished.
    pub fn report(&self, id: &str) -> Result<Option<Report>, StoreError> {
        let rows = self.query("SELECT report_json FROM runs WHERE id = $1", params![id])?;
        let json = rows.first().map(|r| r.opt_text(0)).transpose()?.flatten();
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    /// Number of stored checks of a run (for `show` on runs without a report).
    pub fn check_count(&self, id: &str) -> Result<i64, StoreError> {
        let rows = self.query("SELECT count(*) FROM checks WHERE run_id = $1", params![id])?;
        rows.first().map_or(Ok(0), |r| r.int(0))
    }
}

fn summary(r: &Row) -> Result<RunSummary, StoreError> {
    Ok(RunSummary {
        id: r.text(0)?,
        service: r.text(1)?,
        version: r.text(2)?,
        started_at: r.text(3)?,
        finished_at: r.opt_text(4)?,
        status: r.text(5)?,
        decision: r.opt_text(6)?,
        exit_code: r.opt_int(7)?,
        run_dir: r.text(8)?,
        started_by: r.opt_text(9)?,
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
            lease: None,
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

    fn a_finished_run_returns_its_report_unchanged(store: &Store) {
        store.begin_run(&start("r1")).unwrap();
        store.finish_run(&report("r1")).unwrap();
        assert_eq!(store.report("r1").unwrap().unwrap(), report("r1"));
        assert_eq!(store.check_count("r1").unwrap(), 1);
        let runs = store.list_runs(10).unwrap();
        assert_eq!(runs[0].decision.as_deref(), Some("NO-GO"));
        assert_eq!(runs[0].status, "finished");
    }

    fn open_runs_can_be_marked_aborted_once(store: &Store) {
        store.begin_run(&start("r2")).unwrap();
        assert_eq!(store.open_runs().unwrap().len(), 1);
        assert!(store.mark_aborted("r2", "now").unwrap());
        assert!(!store.mark_aborted("r2", "now").unwrap());
        assert!(store.open_runs().unwrap().is_empty());
        assert_eq!(store.find_run("r2").unwrap().status, "aborted");
    }

    fn prefixes_find_one_run_or_say_why_not(store: &Store) {
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

    fn a_key_names_one_run_however_often_it_is_claimed(store: &Store) {
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
        drop(store);
        rusqlite::Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert!(matches!(Store::open(&path), Err(StoreError::TooNew { .. })));
    }

    /// A lease is kept with the run, renewed while it runs, and shown with open runs; a run
    /// begun twice (a retried insert) is one run, and another run under its id is refused.
    fn leases_are_kept_and_renewed_while_the_run_runs(store: &Store) {
        let mut run = start("leased");
        run.lease = Some(Lease {
            owner: "1.a@host".into(),
            until: "2026-12-01T10:00:30.000Z".into(),
        });
        store.begin_run(&run).unwrap();
        store.begin_run(&run).unwrap();
        let mut other = run.clone();
        other.run_dir = "elsewhere".into();
        assert!(matches!(store.begin_run(&other), Err(StoreError::Shape(_))));
        store.begin_run(&start("cli")).unwrap();
        assert!(
            !store
                .renew_lease("nope", "2026-12-01T10:01:00.000Z")
                .unwrap()
        );
        assert!(
            store
                .renew_lease("leased", "2026-12-01T10:01:00.000Z")
                .unwrap()
        );
        let open = store.open_runs().unwrap();
        assert_eq!(open.len(), 2);
        let leased = open.iter().find(|r| r.id == "leased").unwrap();
        assert_eq!(
            leased.lease.as_ref().unwrap().until,
            "2026-12-01T10:01:00.000Z"
        );
        assert!(open.iter().find(|r| r.id == "cli").unwrap().lease.is_none());
    }

    /// A behaviour every store has, by name.
    type Scenario = (&'static str, fn(&Store));

    const SCENARIOS: [Scenario; 5] = [
        ("report", a_finished_run_returns_its_report_unchanged),
        ("aborted", open_runs_can_be_marked_aborted_once),
        ("prefixes", prefixes_find_one_run_or_say_why_not),
        ("keys", a_key_names_one_run_however_often_it_is_claimed),
        ("leases", leases_are_kept_and_renewed_while_the_run_runs),
    ];

    #[test]
    fn every_scenario_holds_on_sqlite() {
        for (name, scenario) in SCENARIOS {
            let store = Store::open_in_memory().unwrap();
            scenario(&store);
            eprintln!("sqlite: {name} holds");
        }
    }

    /// The same scenarios on a real PostgreSQL (Debian's, which `scripts/test` installs),
    /// each in a database of its own; then the schema is migrated once by two stores opened
    /// together, refused when newer, and a restart of the database loses nothing.
    #[test]
    fn every_scenario_holds_on_postgres_across_a_restart() {
        let server = testing::Postgres::start();
        for (name, scenario) in SCENARIOS {
            let store = Store::connect(&server.database(name)).unwrap();
            scenario(&store);
        }
        let shared = server.database("shared");
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| Store::connect(&shared).unwrap());
            let b = s.spawn(|| Store::connect(&shared).unwrap());
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_eq!(a.schema_version().unwrap(), MIGRATIONS.len() as i64);
        a.begin_run(&start("before-restart")).unwrap();
        server.restart();
        // The connection was lost; the store makes it again and goes on.
        b.finish_run(&report("before-restart")).unwrap();
        assert_eq!(
            a.report("before-restart").unwrap().unwrap(),
            report("before-restart")
        );
        assert_eq!(a.list_runs(10).unwrap().len(), 1, "nothing doubled");
        server.sql("shared", "UPDATE gauntlet_schema SET version = 99");
        assert!(matches!(
            Store::connect(&shared),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }
}

/// A PostgreSQL server of its own for tests: Debian's binaries, a temporary data directory, a
/// free loopback port, run as the `postgres` user when the tests run as root. (Feature
/// `testing`, for other crates' tests.)
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use std::path::PathBuf;
    use std::process::Command;

    use super::Location;

    pub struct Postgres {
        dir: tempfile::TempDir,
        bin: PathBuf,
        port: u16,
    }

    /// Where Debian keeps the server's binaries (they are not on PATH there).
    fn bin_dir() -> PathBuf {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .collect();
        versions.sort();
        versions
            .pop()
            .expect("PostgreSQL's server is installed (scripts/test installs Debian's postgresql)")
    }

    fn as_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
    }

    impl Postgres {
        pub fn start() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let bin = bin_dir();
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if as_root() {
                let uid = Command::new("id")
                    .args(["-u", "postgres"])
                    .output()
                    .unwrap();
                let gid = Command::new("id")
                    .args(["-g", "postgres"])
                    .output()
                    .unwrap();
                let id = |o: &std::process::Output| {
                    String::from_utf8_lossy(&o.stdout)
                        .trim()
                        .parse::<u32>()
                        .unwrap()
                };
                std::os::unix::fs::chown(dir.path(), Some(id(&uid)), Some(id(&gid))).unwrap();
            }
            let server = Postgres { dir, bin, port };
            let data = server.data();
            server.run(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-A",
                    "trust",
                    "-U",
                    "gauntlet",
                    "--no-sync",
                    "--no-instructions",
                ],
            );
            server.pg_ctl("start");
            server
        }

        fn data(&self) -> String {
            self.dir.path().join("data").display().to_string()
        }

        /// A server binary, run as `postgres` when we are root (initdb refuses root).
        fn tool(&self, tool: &str) -> Command {
            let path = self.bin.join(tool);
            if as_root() {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", "postgres", "--"]).arg(path);
                cmd
            } else {
                Command::new(path)
            }
        }

        /// Runs a server binary; it must succeed.
        fn run(&self, tool: &str, args: &[&str]) {
            let out = self.tool(tool).args(args).output().unwrap();
            assert!(
                out.status.success(),
                "{tool} {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }

        fn pg_ctl(&self, what: &str) {
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port,
                self.dir.path().display()
            );
            let log = self.dir.path().join("log").display().to_string();
            let data = self.data();
            let mut args = vec!["-D", &data, "-l", &log, "-w", "-o", &options, "-m", "fast"];
            args.push(what);
            self.run("pg_ctl", &args);
        }

        /// Stops the server and starts it again (connections are cut).
        pub fn restart(&self) {
            self.pg_ctl("restart");
        }

        /// A fresh database `name` on this server.
        pub fn database(&self, name: &str) -> Location {
            self.sql("postgres", &format!("CREATE DATABASE \"{name}\""));
            format!("postgres://gauntlet@127.0.0.1:{}/{name}", self.port)
                .parse()
                .unwrap()
        }

        /// Runs `sql` in database `db` with psql-less plain client.
        pub fn sql(&self, db: &str, sql: &str) {
            let url = format!("postgres://gauntlet@127.0.0.1:{}/{db}", self.port);
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            client.batch_execute(sql).unwrap();
        }
    }

    impl Drop for Postgres {
        fn drop(&mut self) {
            self.pg_ctl_stop();
        }
    }

    impl Postgres {
        fn pg_ctl_stop(&self) {
            let data = self.data();
            let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
            let _ = self.tool("pg_ctl").args(args).output();
        }
    }
}
