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
//! require_lock: false           # true: a service whose project has no signed lock is refused
//! ```
//!
//! A service's spec is verified against its project's signed lock (`gauntlet lock --spec`)
//! with the server's keyring when it is loaded: a spec that is not as signed, or a lock
//! whose signature does not hold, is a located config error.

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
    store: Option<Spanned<String>>,
    #[serde(default)]
    lease: Option<Spanned<String>>,
    #[serde(default)]
    shared_files: Option<String>,
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
    /// Where people reach this server (links in notifications).
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default)]
    notify: Vec<Spanned<NotifyEntry>>,
    /// HTTPS: a certificate chain and its private key, PEM files.
    #[serde(default)]
    tls: Option<Spanned<TlsEntry>>,
    /// Refuse a service whose project has no signed lock.
    #[serde(default)]
    require_lock: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsEntry {
    cert: String,
    key: String,
}

/// One notification target: exactly one of `webhook`, `slack_env`/`slack_file`, `email`.
/// Secrets are named by the variable or file that holds them, never written here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyEntry {
    #[serde(default)]
    webhook: Option<String>,
    #[serde(default)]
    secret_env: Option<String>,
    #[serde(default)]
    secret_file: Option<String>,
    #[serde(default)]
    slack_env: Option<String>,
    #[serde(default)]
    slack_file: Option<String>,
    #[serde(default)]
    email: Option<EmailEntry>,
    #[serde(default)]
    on: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailEntry {
    /// `host:port` of the SMTP server.
    smtp: String,
    from: String,
    to: Vec<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    password_env: Option<String>,
    #[serde(default)]
    password_file: Option<String>,
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
    pub store: gauntlet_store::Location,
    /// This server among those sharing the store: its runs are leased to it.
    pub instance: String,
    /// How long its hold on a run lasts without a heartbeat (`lease:`, 30s by default): a
    /// server that shares the store with this one finds a run of a dead server this long
    /// after its last heartbeat.
    pub lease: std::time::Duration,
    /// Where the runs' files are kept by digest for every server (`shared_files:`), if
    /// anywhere.
    pub shared_files: Option<PathBuf>,
    pub runs: PathBuf,
    pub keyring: PathBuf,
    pub tokens: PathBuf,
    pub audit: PathBuf,
    pub services: BTreeMap<String, Service>,
    /// Prefixed to `/v1/runs/ID` in notifications (empty: the links are relative).
    pub public_url: String,
    pub notify: Vec<crate::notify::Target>,
    /// HTTPS, when configured: then the server may listen beyond loopback.
    pub tls: Option<Tls>,
}

/// The server's TLS configuration, loaded from its PEM files.
#[derive(Clone)]
pub struct Tls(pub std::sync::Arc<rustls::ServerConfig>);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

/// A service the server runs: its spec as loaded (and validated) at start.
#[derive(Debug, Clone)]
pub struct Service {
    pub spec_path: PathBuf,
    pub spec_text: String,
    /// The signed lock its spec was verified against (`VERSION, key ID`), or none.
    pub locked: Option<String>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";

impl ServerConfig {
    /// Reads and validates `path`; every problem found, each located.
    pub fn load(path: &Path, keyring: PathBuf) -> Result<ServerConfig, SpecErrors> {
        let file = path.display().to_string();
        let text = gauntlet_spec::read_file(path)?;
        let written: ServerFile = gauntlet_spec::parse_yaml(&file, &text)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut problems = Problems {
            file: &file,
            text: &text,
            found: Vec::new(),
        };
        let tls = written
            .tls
            .as_ref()
            .and_then(|given| problems.keep(given.referenced, tls(&given.value, dir)));
        let listen = match &written.listen {
            None => DEFAULT_LISTEN.parse().ok(),
            Some(given) => problems.keep(
                given.referenced,
                listen_on(&given.value, written.tls.is_some()),
            ),
        };
        let keyring = written.keyring.as_deref().map_or(keyring, |k| dir.join(k));
        let mut services = BTreeMap::new();
        for (name, entry) in &written.services {
            let Some(()) = problems.keep(entry.referenced, service_name(name)) else {
                continue;
            };
            let spec = &entry.value.spec;
            let loaded = service(name, &spec.value, dir)
                .and_then(|s| signed(name, s, &keyring, written.require_lock));
            if let Some(service) = problems.keep(spec.referenced, loaded) {
                services.insert(name.clone(), service);
            }
        }
        let notify = written
            .notify
            .iter()
            .filter_map(|entry| problems.keep(entry.referenced, target(&entry.value, dir)))
            .collect();
        let path_of =
            |given: &Option<String>, default: &str| dir.join(given.as_deref().unwrap_or(default));
        let lease = match &written.lease {
            None => Some(std::time::Duration::from_secs(30)),
            Some(given) => problems.keep(given.referenced, lease_of(&given.value)),
        };
        let store = match &written.store {
            None => Some(gauntlet_store::Location::Sqlite(
                dir.join(".gauntlet/gauntlet.db"),
            )),
            Some(given) => problems.keep(given.referenced, store_at(&given.value, dir)),
        };
        match (listen, store, lease) {
            (Some(listen), Some(store), Some(lease)) if problems.found.is_empty() => {
                Ok(ServerConfig {
                    listen,
                    store,
                    instance: instance_id(),
                    lease,
                    shared_files: written.shared_files.as_deref().map(|p| dir.join(p)),
                    runs: path_of(&written.runs, ".gauntlet/runs"),
                    keyring,
                    tokens: path_of(&written.tokens, "tokens.json"),
                    audit: path_of(&written.audit, "audit.jsonl"),
                    services,
                    public_url: written
                        .public_url
                        .clone()
                        .unwrap_or_default()
                        .trim_end_matches('/')
                        .to_string(),
                    notify,
                    tls,
                })
            }
            _ => Err(SpecErrors(problems.found)),
        }
    }
}

/// The problems found so far, each at its place in the file.
struct Problems<'a> {
    file: &'a str,
    text: &'a str,
    found: Vec<SpecDiagnostic>,
}

impl Problems<'_> {
    /// The value, or nothing with the refusal kept at `at`.
    fn keep<T>(&mut self, at: serde_saphyr::Location, result: Result<T, Refusal>) -> Option<T> {
        result
            .map_err(|(message, help)| {
                self.found.push(SpecDiagnostic::at(
                    self.file,
                    self.text,
                    at.line() as usize,
                    at.column() as usize,
                    message,
                    Some(help.to_string()),
                ));
            })
            .ok()
    }
}

/// Where to listen: loopback, or anywhere once TLS is configured.
/// A lease's term: at least 2s (three heartbeats fit in it), at most an hour.
fn lease_of(given: &str) -> Result<std::time::Duration, Refusal> {
    match humantime::parse_duration(given) {
        Ok(d)
            if (std::time::Duration::from_secs(2)..=std::time::Duration::from_secs(3600))
                .contains(&d) =>
        {
            Ok(d)
        }
        Ok(_) => Err((
            format!("`lease: {given}` is out of bounds"),
            "between 2s and 1h: a server that shares the store finds a dead server's runs this long after its last heartbeat",
        )),
        Err(e) => Err((format!("`lease: {given}`: {e}"), "a duration, e.g. `30s`")),
    }
}

/// This server's name among those sharing a store: `PID.RANDOM@HOST` (a server on the same
/// host that finds the process gone takes its runs over at once, without waiting for the
/// lease).
fn instance_id() -> String {
    let mut random = [0u8; 4];
    let _ = getrandom::fill(&mut random);
    format!(
        "{}.{:08x}@{}",
        std::process::id(),
        u32::from_be_bytes(random),
        gauntlet_engine::host_name()
    )
}

/// The store: a SQLite file (relative to the config's folder) or a PostgreSQL URL, which
/// several servers can share.
fn store_at(given: &str, dir: &std::path::Path) -> Result<gauntlet_store::Location, Refusal> {
    match given.parse::<gauntlet_store::Location>() {
        Ok(gauntlet_store::Location::Sqlite(path)) => {
            Ok(gauntlet_store::Location::Sqlite(dir.join(path)))
        }
        Ok(location) => Ok(location),
        Err(why) => Err((
            format!("`store`: {why}"),
            "a file (`.gauntlet/gauntlet.db`) or `postgres://USER:PASSWORD@HOST:PORT/DB`",
        )),
    }
}

fn listen_on(given: &str, tls: bool) -> Result<SocketAddr, Refusal> {
    match given.parse::<SocketAddr>() {
        Ok(addr) if addr.ip().is_loopback() || tls => Ok(addr),
        Ok(addr) => Err((
            format!("`{addr}` is not a loopback address, and there is no `tls:`"),
            "tokens travel in clear over plain HTTP: configure `tls: {cert, key}`, or listen on 127.0.0.1 or ::1 behind a TLS-terminating proxy",
        )),
        Err(e) => Err((
            format!("`{given}` is not an address: {e}"),
            "an IP address and a port, e.g. `127.0.0.1:8787`",
        )),
    }
}

fn service_name(name: &str) -> Result<(), Refusal> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err((
            format!("`{name}` is not a service name"),
            "letters, digits, `-` and `_`: the name is part of URLs",
        ))
    }
}

/// A service's spec, read and validated now.
fn service(name: &str, spec: &str, dir: &Path) -> Result<Service, Refusal> {
    let spec_path = dir.join(spec);
    let loaded = gauntlet_spec::read_file(&spec_path).and_then(|text| {
        gauntlet_spec::load_str(&spec_path.display().to_string(), &text).map(|_| text)
    });
    match loaded {
        Ok(spec_text) => Ok(Service {
            spec_path,
            spec_text,
            locked: None,
        }),
        Err(errors) => {
            let first = errors
                .0
                .first()
                .map(ToString::to_string)
                .unwrap_or_default();
            Err((
                format!(
                    "the spec of `{name}` does not load ({} problem(s)): {first}",
                    errors.0.len()
                ),
                "`gauntlet validate` on it shows every problem",
            ))
        }
    }
}

/// The service, its spec verified against its project's signed lock with `keyring` (the
/// files it protects as signed, the spec among them); without a lock, refused only when
/// `require_lock`.
fn signed(
    name: &str,
    mut service: Service,
    keyring: &Path,
    require_lock: bool,
) -> Result<Service, Refusal> {
    let file = service.spec_path.display().to_string();
    let plan = gauntlet_spec::plan_str(&file, &service.spec_text, &Default::default(), 1).map_err(
        |e| {
            (
                format!("the spec of `{name}`: {e}"),
                "`gauntlet validate` on it shows every problem",
            )
        },
    )?;
    let project = gauntlet_engine::trust::Project::of(plan.trust.as_ref(), &service.spec_path);
    if !project.lock_path.exists() {
        if require_lock {
            return Err((
                format!(
                    "the spec of `{name}` has no signed lock ({}), and `require_lock` is set",
                    project.lock_path.display()
                ),
                "sign it with `gauntlet lock --spec` and the server's keyring",
            ));
        }
        return Ok(service);
    }
    let refused = |why: String| {
        (
            format!(
                "the spec of `{name}` is not as signed in {}: {why}",
                project.lock_path.display()
            ),
            "if the change is intended, re-sign with `gauntlet lock --spec` and the server's keyring",
        )
    };
    let trust = gauntlet_trust::Keyring::open(keyring)
        .map(gauntlet_trust::Trust::Keyring)
        .map_err(|e| refused(format!("the server's keyring: {e}")))?;
    let verification =
        gauntlet_trust::lock::verify(&project.lock_path, Some(project.lock_dir()), &trust, false)
            .map_err(|e| refused(e.to_string()))?;
    let signer = match &verification.signature {
        Ok(v) => v.key_id.clone(),
        Err(e) => return Err(refused(e.to_string())),
    };
    let lock = verification.lock.as_ref();
    let spec_rel =
        gauntlet_trust::lock::relative(project.lock_dir(), &service.spec_path).unwrap_or_default();
    if !lock.is_some_and(|l| l.files.iter().any(|f| f.path == spec_rel)) {
        return Err(refused(format!(
            "the lock does not cover the spec ({spec_rel})"
        )));
    }
    if !verification.passed() {
        return Err(refused(verification.lines().join("; ")));
    }
    let version = lock.map(|l| l.version.clone()).unwrap_or_default();
    service.locked = Some(format!("{version}, key {signer}"));
    Ok(service)
}

type Refusal = (String, &'static str);

/// A notification target, its secrets read now (a server that cannot notify says so at
/// start, not at the first decision).
fn target(entry: &NotifyEntry, dir: &Path) -> Result<crate::notify::Target, Refusal> {
    use crate::notify::{Channel, Email, Occasion, Target};
    let on = if entry.on.is_empty() {
        vec![
            Occasion::Decision,
            Occasion::AwaitingSignoff,
            Occasion::WaiverExpiring,
        ]
    } else {
        entry
            .on
            .iter()
            .map(|o| {
                Occasion::parse(o).ok_or_else(|| {
                    (
                        format!("`{o}` is not an occasion"),
                        "`decision`, `awaiting-signoff` or `waiver-expiring`",
                    )
                })
            })
            .collect::<Result<_, _>>()?
    };
    let slack = entry.slack_env.is_some() || entry.slack_file.is_some();
    let channels = [entry.webhook.is_some(), slack, entry.email.is_some()];
    if channels.iter().filter(|c| **c).count() != 1 {
        return Err((
            "a notification target is one of `webhook`, `slack_env` (or `slack_file`), `email`"
                .into(),
            "write one target per list item",
        ));
    }
    let channel = if let Some(url) = &entry.webhook {
        let secret = secret(
            entry.secret_env.as_deref(),
            entry.secret_file.as_deref(),
            dir,
        )?;
        Channel::Webhook {
            url: web_url(url)?,
            secret: secret.map(String::into_bytes),
        }
    } else if slack {
        let url = secret(entry.slack_env.as_deref(), entry.slack_file.as_deref(), dir)?
            .ok_or_else(|| {
                (
                    "no Slack URL".to_string(),
                    "set `slack_env` or `slack_file`",
                )
            })?;
        Channel::Slack {
            url: web_url(url.trim())?,
        }
    } else {
        let Some(email) = entry.email.as_ref() else {
            return Err(("no channel".into(), "one was counted above"));
        };
        let (host, port) = email
            .smtp
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
            .ok_or_else(|| {
                (
                    format!("`{}` is not host:port", email.smtp),
                    "e.g. `smtp.example.com:587`",
                )
            })?;
        let password = secret(
            email.password_env.as_deref(),
            email.password_file.as_deref(),
            dir,
        )?;
        Channel::Email(Email {
            host,
            port,
            from: email.from.clone(),
            to: email.to.clone(),
            credentials: email.user.clone().zip(password),
        })
    };
    Ok(Target { channel, on })
}

/// A secret from the variable or file named (relative to the config), if one is named.
fn secret(env: Option<&str>, file: Option<&str>, dir: &Path) -> Result<Option<String>, Refusal> {
    if let Some(name) = env {
        return std::env::var(name).map(Some).map_err(|_| {
            (
                format!("the environment has no `{name}`"),
                "set it before `gauntlet serve` starts",
            )
        });
    }
    if let Some(file) = file {
        return std::fs::read_to_string(dir.join(file))
            .map(|s| Some(s.trim_end().to_string()))
            .map_err(|e| {
                (
                    format!("cannot read `{file}`: {e}"),
                    "a file readable by the server",
                )
            });
    }
    Ok(None)
}

fn web_url(url: &str) -> Result<String, Refusal> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.to_string())
    } else {
        // Never quoted: a Slack URL is a secret.
        Err((
            "the target's URL is not http:// or https://".into(),
            "a full URL",
        ))
    }
}

/// The certificate chain and key of `tls:`, as a rustls server configuration (ring, TLS 1.2
/// and 1.3, HTTP/1.1).
fn tls(entry: &TlsEntry, dir: &Path) -> Result<Tls, Refusal> {
    let help = "PEM files: the certificate chain (leaf first) and its private key";
    tls_config(entry, dir).map_err(|message| (message, help))
}

fn tls_config(entry: &TlsEntry, dir: &Path) -> Result<Tls, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let cert_path = dir.join(&entry.cert);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("`{}`: {e}", entry.cert))?;
    if chain.is_empty() {
        return Err(format!("`{}` holds no certificate", entry.cert));
    }
    let key = PrivateKeyDer::from_pem_file(dir.join(&entry.key))
        .map_err(|e| format!("`{}`: {e}", entry.key))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and key do not make a TLS configuration: {e}"))?;
    Ok(Tls(std::sync::Arc::new(config)))
}
