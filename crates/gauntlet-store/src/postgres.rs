//! The shared store: PostgreSQL, for several `gauntlet serve` instances (and CLI runs) at
//! once. Its schema version is the row of `gauntlet_schema`; a migration holds an advisory
//! lock, so two instances starting together migrate once.
//!
//! The blocking client runs its own runtime, which cannot be entered from an async task, so
//! the connection lives on a thread of its own and the store sends it work: a statement, a
//! query, a transaction of statements, all owned data. A connection that drops (the database
//! restarted) is made again, patiently (up to [`RECONNECT_FOR`]), and the work retried: every
//! write the store makes can be made twice without harm (`ON CONFLICT DO NOTHING`, a delete
//! before the inserts of a finished run), so nothing is lost and nothing doubled.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls};

use crate::StoreError;
use crate::db::{Cell, Db, Param, Row, Statement};

/// How long a lost connection is tried again before the work fails.
pub const RECONNECT_FOR: Duration = Duration::from_secs(30);

/// The advisory lock migrations take (any constant: it names gauntlet's migrations).
const MIGRATION_LOCK: i64 = 0x6761_756e_746c_6574;

pub struct Postgres {
    jobs: mpsc::Sender<Job>,
}

enum Work {
    Execute(String, Vec<Param>),
    Query(String, Vec<Param>),
    WriteAll(Vec<Statement>),
    Migrate(Vec<String>),
    Version,
}

enum Done {
    Changed(u64),
    Rows(Vec<Row>),
    Nothing,
    Version(i64),
}

struct Job {
    work: Work,
    reply: mpsc::Sender<Result<Done, StoreError>>,
}

impl Postgres {
    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST:PORT/DB`); `shown` names it in
    /// errors without its password.
    pub fn connect(url: &str, shown: &str) -> Result<Self, StoreError> {
        let failed = |why: String| StoreError::Open {
            path: shown.to_string(),
            why,
        };
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| failed(e.to_string()))?;
        config.connect_timeout(Duration::from_secs(5));
        config.application_name("gauntlet");
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready, connected) = mpsc::channel();
        // Even the first connection is made on the thread: the client's runtime cannot be
        // started from an async task, where the engine opens its store.
        std::thread::Builder::new()
            .name("gauntlet-store".into())
            .spawn(move || {
                let mut client = match config.connect(NoTls) {
                    Ok(client) => Some(client),
                    Err(e) => {
                        let _ = ready.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                while let Ok(job) = inbox.recv() {
                    let _ = job.reply.send(serve(&config, &mut client, &job.work));
                }
            })
            .map_err(|e| failed(e.to_string()))?;
        connected
            .recv()
            .map_err(|_| failed("the connection thread ended".into()))?
            .map_err(failed)?;
        Ok(Self { jobs })
    }

    fn ask(&self, work: Work) -> Result<Done, StoreError> {
        let (reply, answer) = mpsc::channel();
        self.jobs
            .send(Job { work, reply })
            .map_err(|_| StoreError::Lost("the store's connection thread is gone".into()))?;
        answer
            .recv()
            .map_err(|_| StoreError::Lost("the store's connection thread is gone".into()))?
    }
}

/// Does `work`, connecting again (and doing it again) when the connection was lost.
fn serve(
    config: &postgres::Config,
    client: &mut Option<Client>,
    work: &Work,
) -> Result<Done, StoreError> {
    let deadline = Instant::now() + RECONNECT_FOR;
    let mut pause = Duration::from_millis(100);
    loop {
        if client.as_ref().is_none_or(Client::is_closed) {
            match config.connect(NoTls) {
                Ok(fresh) => *client = Some(fresh),
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                    continue;
                }
                Err(e) => return Err(StoreError::Lost(e.to_string())),
            }
        }
        let Some(connected) = client.as_mut() else {
            continue;
        };
        match perform(connected, work) {
            Err(e) if lost(&e) && Instant::now() < deadline => *client = None,
            done => return done.map_err(StoreError::from),
        }
    }
}

/// Whether the error says the connection (not the statement) failed: the server closed it,
/// shut down, or is starting.
fn lost(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::CONNECTION_FAILURE,
        ]
        .contains(code),
        // No SQL state: it never reached the server (an I/O error).
        None => e.as_db_error().is_none(),
    }
}

fn values(params: &[Param]) -> Vec<Box<dyn ToSql + Sync>> {
    params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync> {
            match p {
                Param::Text(v) => Box::new(v.clone()),
                Param::Int(v) => Box::new(*v),
            }
        })
        .collect()
}

fn refs(values: &[Box<dyn ToSql + Sync>]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v.as_ref()).collect()
}

fn row(r: &postgres::Row) -> Result<Row, postgres::Error> {
    let mut cells = Vec::with_capacity(r.len());
    for (i, column) in r.columns().iter().enumerate() {
        let cell = match *column.type_() {
            Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Cell::Int),
            Type::INT4 => r.try_get::<_, Option<i32>>(i)?.map(|n| Cell::Int(n.into())),
            Type::INT2 => r.try_get::<_, Option<i16>>(i)?.map(|n| Cell::Int(n.into())),
            Type::BOOL => r
                .try_get::<_, Option<bool>>(i)?
                .map(|b| Cell::Int(b.into())),
            _ => r.try_get::<_, Option<String>>(i)?.map(Cell::Text),
        };
        cells.push(cell.unwrap_or(Cell::Null));
    }
    Ok(Row(cells))
}

fn perform(client: &mut Client, work: &Work) -> Result<Done, postgres::Error> {
    match work {
        Work::Execute(sql, params) => {
            let values = values(params);
            Ok(Done::Changed(client.execute(sql.as_str(), &refs(&values))?))
        }
        Work::Query(sql, params) => {
            let values = values(params);
            let rows = client.query(sql.as_str(), &refs(&values))?;
            Ok(Done::Rows(rows.iter().map(row).collect::<Result<_, _>>()?))
        }
        Work::WriteAll(statements) => {
            let mut tx = client.transaction()?;
            for (sql, params) in statements {
                let values = values(params);
                tx.execute(sql.as_str(), &refs(&values))?;
            }
            tx.commit()?;
            Ok(Done::Nothing)
        }
        Work::Migrate(migrations) => migrate(client, migrations),
        Work::Version => Ok(Done::Version(version(client)?.unwrap_or(0))),
    }
}

fn version(client: &mut Client) -> Result<Option<i64>, postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('gauntlet_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = client.query_opt("SELECT version FROM gauntlet_schema", &[])?;
    Ok(row.map(|r| r.get(0)))
}

/// Applies what is missing under the advisory lock; a newer schema is refused (as
/// `Done::Version` of it, for the caller to turn into `TooNew`).
fn migrate(client: &mut Client, migrations: &[String]) -> Result<Done, postgres::Error> {
    let known = migrations.len() as i64;
    if version(client)? == Some(known) {
        return Ok(Done::Nothing);
    }
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS gauntlet_schema (version BIGINT NOT NULL)")?;
    let found: i64 = match tx.query_opt("SELECT version FROM gauntlet_schema", &[])? {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO gauntlet_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    if found > known {
        return Ok(Done::Version(found));
    }
    for (version, sql) in migrations.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "UPDATE gauntlet_schema SET version = $1",
            &[&(version as i64 + 1)],
        )?;
    }
    tx.commit()?;
    Ok(Done::Nothing)
}

/// A migration as PostgreSQL reads it: the same text, with SQLite's 64-bit `INTEGER` as
/// `BIGINT`.
pub fn dialect(migration: &str) -> String {
    migration.replace(" INTEGER", " BIGINT")
}

impl Db for Postgres {
    fn execute(&mut self, sql: &str, params: Vec<Param>) -> Result<u64, StoreError> {
        match self.ask(Work::Execute(sql.to_string(), params))? {
            Done::Changed(n) => Ok(n),
            _ => Ok(0),
        }
    }

    fn query(&mut self, sql: &str, params: Vec<Param>) -> Result<Vec<Row>, StoreError> {
        match self.ask(Work::Query(sql.to_string(), params))? {
            Done::Rows(rows) => Ok(rows),
            _ => Ok(Vec::new()),
        }
    }

    fn write_all(&mut self, statements: Vec<Statement>) -> Result<(), StoreError> {
        self.ask(Work::WriteAll(statements)).map(|_| ())
    }

    fn migrate(&mut self, migrations: &[&str]) -> Result<(), StoreError> {
        let known = migrations.len() as i64;
        let text = migrations.iter().map(|m| dialect(m)).collect();
        match self.ask(Work::Migrate(text))? {
            Done::Version(found) => Err(StoreError::TooNew { found, known }),
            _ => Ok(()),
        }
    }

    fn schema_version(&mut self) -> Result<i64, StoreError> {
        match self.ask(Work::Version)? {
            Done::Version(v) => Ok(v),
            _ => Ok(0),
        }
    }
}
