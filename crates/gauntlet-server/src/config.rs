//! `server.yaml`: where the server listens, its store, its tokens and audit log, and the
//! services it knows. Validated like a spec: every problem at file:line:col, nothing served
//! until the whole file holds. Paths are relative to the file's directory.
//!
//! ```yaml
//! listen: 127.0.0.1:8787        # loopback unless TLS is configured
//! store: .gauntlet/gauntlet.db
//! runs: .gauntlet/runs
//! tokens: tokens.json           # `gauntlet token create --config server.yaml --role operator`
//! audit: audit.jsonl
//! services:
//!   shop: {spec: shop/gauntlet.yaml}
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use gauntlet_spec::{SpecDiagnostic, SpecErrors};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerFile {
    #[serde(default)]
    listen: Option<Spanned<String>>,
    #[serde(default)]
    store: Option<String>,
    #[serde(default)]
    runs: Option<String>,
    #[serde(default)]
    keyring: Option<String>,
    #[serde(default)]
    tokens: Option<String>,
    #[serde(default)]
    audit: Option<String>,
    #[serde(default)]
    services: BTreeMap<String, Spanned<ServiceEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceEntry {
    spec: Spanned<String>,
}

/// The server's configuration, resolved.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub store: PathBuf,
    pub runs: PathBuf,
    pub keyring: PathBuf,
    pub tokens: PathBuf,
    pub audit: PathBuf,
    pub services: BTreeMap<String, Service>,
}

/// A service the server runs: its spec as loaded (and validated) at start.
#[derive(Debug, Clone)]
pub struct Service {
    pub spec_path: PathBuf,
    pub spec_text: String,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";

impl ServerConfig {
    /// Reads and validates `path`; every problem found, each located.
    pub fn load(path: &Path, keyring: PathBuf) -> Result<ServerConfig, SpecErrors> {
        let file = path.display().to_string();
        let text = gauntlet_spec::read_file(path)?;
        let written: ServerFile = gauntlet_spec::parse_yaml(&file, &text)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let at = |line: u64, column: u64, message: String, help: &str| {
            SpecDiagnostic::at(
                &file,
                &text,
                line as usize,
                column as usize,
                message,
                Some(help.to_string()),
            )
        };
        let mut problems = Vec::new();
        let listen = match &written.listen {
            None => DEFAULT_LISTEN.parse().ok(),
            Some(given) => match given.value.parse::<SocketAddr>() {
                Ok(addr) if addr.ip().is_loopback() => Some(addr),
                Ok(addr) => {
                    problems.push(at(
                        given.referenced.line(),
                        given.referenced.column(),
                        format!("`{addr}` is not a loopback address"),
                        "tokens travel in clear over plain HTTP: listen on 127.0.0.1 or ::1 and put a TLS-terminating proxy in front",
                    ));
                    None
                }
                Err(e) => {
                    problems.push(at(
                        given.referenced.line(),
                        given.referenced.column(),
                        format!("`{}` is not an address: {e}", given.value),
                        "an IP address and a port, e.g. `127.0.0.1:8787`",
                    ));
                    None
                }
            },
        };
        let mut services = BTreeMap::new();
        for (name, entry) in &written.services {
            let spec = &entry.value.spec;
            let valid_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid_name {
                problems.push(at(
                    entry.referenced.line(),
                    entry.referenced.column(),
                    format!("`{name}` is not a service name"),
                    "letters, digits, `-` and `_`: the name is part of URLs",
                ));
                continue;
            }
            let spec_path = dir.join(&spec.value);
            match gauntlet_spec::read_file(&spec_path).and_then(|text| {
                gauntlet_spec::load_str(&spec_path.display().to_string(), &text).map(|_| text)
            }) {
                Ok(spec_text) => {
                    services.insert(
                        name.clone(),
                        Service {
                            spec_path,
                            spec_text,
                        },
                    );
                }
                Err(errors) => {
                    let first = errors
                        .0
                        .first()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    problems.push(at(
                        spec.referenced.line(),
                        spec.referenced.column(),
                        format!(
                            "the spec of `{name}` does not load ({} problem(s)): {first}",
                            errors.0.len()
                        ),
                        "`gauntlet validate` on it shows every problem",
                    ));
                }
            }
        }
        let path_of =
            |given: &Option<String>, default: &str| dir.join(given.as_deref().unwrap_or(default));
        match listen {
            Some(listen) if problems.is_empty() => Ok(ServerConfig {
                listen,
                store: path_of(&written.store, ".gauntlet/gauntlet.db"),
                runs: path_of(&written.runs, ".gauntlet/runs"),
                keyring: written.keyring.as_deref().map_or(keyring, |k| dir.join(k)),
                tokens: path_of(&written.tokens, "tokens.json"),
                audit: path_of(&written.audit, "audit.jsonl"),
                services,
            }),
            _ => Err(SpecErrors(problems)),
        }
    }
}
