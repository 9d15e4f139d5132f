//! Where the store is: a SQLite file (`.gauntlet/gauntlet.db`, the default) or a PostgreSQL
//! database (`postgres://USER:PASSWORD@HOST:PORT/DB`). Parsed once from `--store`,
//! `GAUNTLET_STORE` or a server's `store:`; shown everywhere without its password.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    /// The connection URL, password included: never shown (see `Display`).
    Postgres(String),
}

impl Location {
    /// The SQLite file, for a store that is one.
    pub fn file(&self) -> Option<&std::path::Path> {
        match self {
            Location::Sqlite(path) => Some(path),
            Location::Postgres(_) => None,
        }
    }
}

impl FromStr for Location {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err(
                "an empty store: give a file (.gauntlet/gauntlet.db) or postgres://…".into(),
            );
        }
        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
            return Ok(Location::Sqlite(PathBuf::from(text)));
        }
        let config: postgres::Config =
            text.parse().map_err(|e| format!("{}: {e}", redact(text)))?;
        if config.get_ssl_mode() == postgres::config::SslMode::Require {
            return Err(format!(
                "{}: sslmode=require is not supported yet; reach the database over a private network or a local socket tunnel",
                redact(text)
            ));
        }
        Ok(Location::Postgres(text.to_string()))
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Self {
        Location::Sqlite(path)
    }
}

/// The URL with its password replaced by `***` (in the authority or a `password=` query).
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail: Vec<String> = tail
        .split('&')
        .map(|part| match part.split_once("password=") {
            Some((before, _)) => format!("{before}password=***"),
            None => part.to_string(),
        })
        .collect();
    format!("{scheme}://{authority}{}", tail.join("&"))
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_never_shown() {
        for (url, shown) in [
            (
                "postgres://gauntlet:s3cret@127.0.0.1:5432/runs",
                "postgres://gauntlet:***@127.0.0.1:5432/runs",
            ),
            (
                "postgresql://u:p%40ss@db/x?sslmode=disable",
                "postgresql://u:***@db/x?sslmode=disable",
            ),
            (
                "postgres://u@h/db?user=u&password=s3cret",
                "postgres://u@h/db?user=u&password=***",
            ),
        ] {
            let location: Location = url.parse().unwrap();
            assert_eq!(location.to_string(), shown);
            assert!(!format!("{location:?}").contains("s3cret"));
        }
        assert_eq!(
            ".gauntlet/gauntlet.db".parse::<Location>().unwrap(),
            Location::Sqlite(".gauntlet/gauntlet.db".into())
        );
        let refused = "postgres://u:s3cret@h/db?sslmode=require"
            .parse::<Location>()
            .unwrap_err();
        assert!(
            refused.contains("sslmode=require") && !refused.contains("s3cret"),
            "{refused}"
        );
    }
}
