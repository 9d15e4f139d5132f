//! What the store asks of a database, the same for SQLite and PostgreSQL: one statement with
//! its parameters, or a list of them in one transaction. The SQL is written once, in the
//! subset both read (`$1` parameters in order of first use, `ON CONFLICT DO NOTHING`,
//! `CAST(x AS TEXT)`); values are text or 64-bit integers, possibly null.

use crate::StoreError;

/// A statement's parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Param::Text(Some(v.to_string()))
    }
}

impl From<&String> for Param {
    fn from(v: &String) -> Self {
        Param::Text(Some(v.clone()))
    }
}

impl From<Option<&str>> for Param {
    fn from(v: Option<&str>) -> Self {
        Param::Text(v.map(str::to_string))
    }
}

impl From<&Option<String>> for Param {
    fn from(v: &Option<String>) -> Self {
        Param::Text(v.clone())
    }
}

impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Param::Int(Some(v))
    }
}

impl From<Option<i64>> for Param {
    fn from(v: Option<i64>) -> Self {
        Param::Int(v)
    }
}

/// `[a, b, ...]` as statement parameters.
macro_rules! params {
    ($($p:expr),* $(,)?) => { vec![$($crate::db::Param::from($p)),*] };
}
pub(crate) use params;

/// One cell of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Int(i64),
}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Cell>);

impl Row {
    fn cell(&self, i: usize) -> Result<&Cell, StoreError> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::Shape(format!("no column {i}")))
    }

    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i)?
            .ok_or_else(|| StoreError::Shape(format!("column {i} is null")))
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s.clone())),
            Cell::Int(n) => Ok(Some(n.to_string())),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?
            .ok_or_else(|| StoreError::Shape(format!("column {i} is null")))
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Int(n) => Ok(Some(*n)),
            Cell::Text(s) => s
                .parse()
                .map(Some)
                .map_err(|_| StoreError::Shape(format!("column {i} is not a number"))),
        }
    }
}

/// A statement and its parameters.
pub type Statement = (String, Vec<Param>);

/// A database the store can use.
pub trait Db: Send {
    /// Runs a statement; how many rows it changed.
    fn execute(&mut self, sql: &str, params: Vec<Param>) -> Result<u64, StoreError>;
    /// Runs a query; its rows.
    fn query(&mut self, sql: &str, params: Vec<Param>) -> Result<Vec<Row>, StoreError>;
    /// Runs every statement in one transaction: all or none.
    fn write_all(&mut self, statements: Vec<Statement>) -> Result<(), StoreError>;
    /// Brings the schema to `migrations.len()` (each entry moves it one version up), taking
    /// what other writers do into account; refuses a newer schema.
    fn migrate(&mut self, migrations: &[&str]) -> Result<(), StoreError>;
    /// The schema version.
    fn schema_version(&mut self) -> Result<i64, StoreError>;
}
