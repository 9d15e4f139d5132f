//! The demo service proper. Routes, checks and defects are all here; the HTTP plumbing is
//! in `server.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use sha2::{Digest, Sha256};

use crate::defect::Defect;
use crate::metrics::Metrics;
use crate::server::{Reply, ServedRequest, json, reply, serve};

#[derive(Debug, Clone)]
pub struct AppConfig {
    pub port: u16,
    /// Label for metrics and answers, e.g. `1.4.0-rc1`.
    pub version: String,
    /// Holds the data file, its manifest and the SQLite database.
    pub data_dir: PathBuf,
    pub api_key: String,
    /// With this in `x-admin-token`, `POST /admin/api-key {"key": "..."}` replaces the API key.
    pub admin_token: Option<String>,
    /// Requests per second per client before 429 (burst of the same size).
    pub rate_limit: u32,
    pub primary: Option<String>,
    pub secondary: Option<String>,
    pub defects: Vec<Defect>,
    /// Seed for the error-injection defect, so a run is reproducible.
    pub seed: u64,
}

const DATA_FILE: &str = "items.json";
const MANIFEST_FILE: &str = "items.json.sha256";
/// Tokens that steer language models; bodies carrying them are refused.
const CONTROL_TOKENS: &[&str] = &[
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|system|>",
    "[INST]",
    "<<SYS>>",
    "### Instruction:",
];

struct State {
    config: AppConfig,
    metrics: Metrics,
    db: Mutex<rusqlite::Connection>,
    buckets: Mutex<HashMap<String, Bucket>>,
    client: crate::server::Client,
    rng: Mutex<gauntlet_net::SplitMix64>,
    /// The API key in force; the admin endpoint rotates it.
    api_key: Mutex<String>,
    /// Until when the primary provider is skipped after it failed or refused (backoff).
    primary_backoff: Mutex<Option<Instant>>,
    /// Whether this version takes traffic: a rollback takes it out of rotation (`/ready`
    /// answers 503 while it is out), the admin endpoint puts it back.
    serving: std::sync::atomic::AtomicBool,
}

/// How long the primary is left alone after a failure, unless it says (Retry-After).
const BACKOFF: Duration = Duration::from_secs(1);
/// A quote provider that has not answered within this is treated as down, when there is
/// another to ask.
const PROVIDER_TIMEOUT: Duration = Duration::from_millis(300);
/// The last provider there is to ask gets longer: with nothing to fall back on, a slow
/// answer beats none (and a loaded machine must not turn a failover into a 502).
const LAST_PROVIDER_TIMEOUT: Duration = Duration::from_secs(1);

/// A token bucket: `rate_limit` tokens per second, holding at most `rate_limit`.
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl State {
    fn has(&self, wanted: impl Fn(&Defect) -> bool) -> bool {
        self.config.defects.iter().any(wanted)
    }

    fn allow(&self, client: &str) -> bool {
        if self.has(|d| *d == Defect::NoRateLimit) {
            return true;
        }
        let rate = f64::from(self.config.rate_limit.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let bucket = buckets.entry(client.to_string()).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// A uniform draw in [0, 1) from the seeded stream.
    fn draw(&self) -> f64 {
        self.rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_f64()
    }
}

/// Serves until the process ends; see [`gauntlet_net::BoxFuture`] for why it is boxed here.
#[inline(never)]
pub fn run_app(
    config: AppConfig,
) -> gauntlet_net::BoxFuture<'static, Result<(), Box<dyn std::error::Error + Send + Sync>>> {
    Box::pin(serving(config))
}

async fn serving(config: AppConfig) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    std::fs::create_dir_all(&config.data_dir)?;
    ensure_data_file(&config.data_dir)?;
    let db = rusqlite::Connection::open(config.data_dir.join("writes.db"))?;
    db.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE IF NOT EXISTS items (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             name TEXT NOT NULL,
             created_ms INTEGER NOT NULL
         );",
    )?;
    let state = Arc::new(State {
        metrics: Metrics::new("demo", &config.version),
        db: Mutex::new(db),
        buckets: Mutex::new(HashMap::new()),
        client: crate::server::client(),
        rng: Mutex::new(gauntlet_net::SplitMix64::new(config.seed)),
        primary_backoff: Mutex::new(None),
        serving: std::sync::atomic::AtomicBool::new(true),
        api_key: Mutex::new(config.api_key.clone()),
        config,
    });
    let port = state.config.port;
    let handler = move |request: ServedRequest| {
        let state = state.clone();
        async move {
            let started = Instant::now();
            let (route, response) = route(&state, request).await;
            state.metrics.observe(
                route,
                response.status().as_u16(),
                started.elapsed().as_secs_f64(),
            );
            response
        }
    };
    serve(port, Arc::new(handler)).await?;
    Ok(())
}

/// Writes a deterministic data file and its manifest the first time the service starts.
fn ensure_data_file(dir: &Path) -> std::io::Result<()> {
    let data = dir.join(DATA_FILE);
    if data.exists() {
        return Ok(());
    }
    let items: Vec<serde_json::Value> = (1..=100)
        .map(|id| serde_json::json!({"id": id, "name": format!("item-{id}"), "price_cents": id * 125}))
        .collect();
    let bytes = serde_json::to_vec_pretty(&items)?;
    std::fs::write(&data, &bytes)?;
    std::fs::write(
        dir.join(MANIFEST_FILE),
        format!("{}  {DATA_FILE}\n", hex::encode(Sha256::digest(&bytes))),
    )
}

/// Rejects traversal in any spelling before routing: `..` segments, encoded dots or
/// slashes, backslashes and path parameters.
fn is_traversal(raw_path: &str) -> bool {
    let lower = raw_path.to_ascii_lowercase();
    lower
        .split('/')
        .any(|segment| segment == ".." || segment.starts_with("..;"))
        || ["%2e", "%2f", "%5c", "%25", "\\", ";"]
            .iter()
            .any(|form| lower.contains(form))
}

async fn route(state: &State, request: ServedRequest) -> (&'static str, Reply) {
    if is_traversal(&request.raw_path) {
        return (
            "forbidden",
            reply(StatusCode::FORBIDDEN, "forbidden path\n"),
        );
    }
    let path = request.raw_path.as_str();
    match (&request.method, path) {
        (&Method::GET, "/healthz") => ("/healthz", reply(StatusCode::OK, "ok\n")),
        (&Method::GET, "/metrics") => (
            "/metrics",
            crate::server::openmetrics(state.metrics.encode()),
        ),
        (&Method::GET, p) if p.starts_with("/items/") => (
            "/items/{id}",
            limited(state, &request, true, read_item(state, &p[7..])).await,
        ),
        // Authentication comes first, as middleware would, before limits and handlers.
        (&Method::POST, "/items") if !authorised(state, &request) => (
            "/items",
            reply(StatusCode::UNAUTHORIZED, "missing or invalid API key\n"),
        ),
        (&Method::POST, "/items") => (
            "/items",
            limited(state, &request, false, write_item(state, &request)).await,
        ),
        (&Method::GET, "/flags") => ("/flags", json(StatusCode::OK, &flags(state))),
        (&Method::GET, "/ready") => ("/ready", ready(state)),
        (&Method::POST, "/admin/serving") => ("/admin/serving", set_serving(state, &request)),
        (&Method::POST, "/admin/api-key") => ("/admin/api-key", rotate_key(state, &request)),
        (&Method::GET, "/quote") => ("/quote", limited(state, &request, true, quote(state)).await),
        (&Method::GET, p) if p.starts_with("/writes/") => (
            "/writes/{id}",
            limited(state, &request, false, read_write(state, &p[8..])).await,
        ),
        (_, "/healthz" | "/metrics" | "/items" | "/quote") => (
            "method-not-allowed",
            reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
        ),
        _ => ("not-found", reply(StatusCode::NOT_FOUND, "not found\n")),
    }
}

/// The client a rate limit applies to: its API key, its declared id, or its address.
fn client_key(request: &ServedRequest) -> String {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    header("x-api-key")
        .map(|k| format!("key:{k}"))
        .or_else(|| header("x-client-id").map(|c| format!("client:{c}")))
        .unwrap_or_else(|| format!("addr:{}", request.peer.ip()))
}

/// Rate limit, then the injected defects (on the read path only: a regression in the code
/// that serves reads), then the handler.
async fn limited(
    state: &State,
    request: &ServedRequest,
    read: bool,
    handler: impl std::future::Future<Output = Reply>,
) -> Reply {
    if !state.allow(&client_key(request)) {
        return reply(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded\n");
    }
    let injected = if read {
        state.config.defects.as_slice()
    } else {
        &[]
    };
    for defect in injected {
        match defect {
            Defect::Latency(delay) => tokio::time::sleep(*delay).await,
            Defect::Errors(share) if state.draw() < *share => {
                return reply(StatusCode::INTERNAL_SERVER_ERROR, "injected error\n");
            }
            _ => {}
        }
    }
    handler.await
}

async fn read_item(state: &State, id: &str) -> Reply {
    let Ok(id) = id.parse::<u64>() else {
        return reply(StatusCode::NOT_FOUND, "no such item\n");
    };
    let dir = &state.config.data_dir;
    let (Ok(bytes), Ok(manifest)) = (
        tokio::fs::read(dir.join(DATA_FILE)).await,
        tokio::fs::read_to_string(dir.join(MANIFEST_FILE)).await,
    ) else {
        return reply(StatusCode::SERVICE_UNAVAILABLE, "data file unavailable\n");
    };
    if !state.has(|d| *d == Defect::CorruptData) {
        let expected = manifest.split_whitespace().next().unwrap_or("");
        if hex::encode(Sha256::digest(&bytes)) != expected {
            return reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "data integrity check failed: items.json does not match its manifest\n",
            );
        }
    }
    let items: Vec<serde_json::Value> = match serde_json::from_slice(&bytes) {
        Ok(items) => items,
        Err(_) => return reply(StatusCode::INTERNAL_SERVER_ERROR, "data file unreadable\n"),
    };
    match items.iter().find(|item| item["id"].as_u64() == Some(id)) {
        Some(item) => json(StatusCode::OK, item),
        None => reply(StatusCode::NOT_FOUND, "no such item\n"),
    }
}

/// The feature flags this instance runs with, as a release would ship them.
fn flags(state: &State) -> serde_json::Value {
    serde_json::json!({
        "quote_failover": !state.has(|d| *d == Defect::NoFailover),
        "data_integrity_check": !state.has(|d| *d == Defect::CorruptData),
        "per_client_rate_limit": (!state.has(|d| *d == Defect::NoRateLimit))
            .then_some(state.config.rate_limit),
        "write_auth": !state.has(|d| *d == Defect::AuthBypass),
        "primary_backoff_ms": BACKOFF.as_millis() as u64,
    })
}

/// Compares without an early exit, so timing does not reveal a prefix.
pub(crate) fn same_secret(presented: &str, expected: &str) -> bool {
    presented.len() == expected.len()
        && presented
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// `POST /admin/api-key` with `x-admin-token` and `{"key": "NEW"}`: the old key stops working.
/// The refusal of a request without the admin token, if it is refused: without one
/// configured the admin endpoints do not exist (404); a wrong or missing token is 403.
fn admin_refusal(state: &State, request: &ServedRequest) -> Option<Reply> {
    let Some(admin) = &state.config.admin_token else {
        return Some(reply(StatusCode::NOT_FOUND, "not found\n"));
    };
    let presented = request
        .headers
        .get("x-admin-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    (!same_secret(presented, admin)).then(|| reply(StatusCode::FORBIDDEN, "admin token required\n"))
}

/// In rotation (200) or taken out by a rollback (503).
fn ready(state: &State) -> Reply {
    match state.serving.load(std::sync::atomic::Ordering::Relaxed) {
        true => reply(StatusCode::OK, "serving\n"),
        false => reply(StatusCode::SERVICE_UNAVAILABLE, "out of rotation\n"),
    }
}

/// `{"serving": false}` takes this version out of rotation (a rollback's flag), `true`
/// puts it back; the admin token is required.
fn set_serving(state: &State, request: &ServedRequest) -> Reply {
    if let Some(refused) = admin_refusal(state, request) {
        return refused;
    }
    match serde_json::from_slice::<serde_json::Value>(&request.body)
        .ok()
        .and_then(|v| v["serving"].as_bool())
    {
        Some(serving) => {
            state
                .serving
                .store(serving, std::sync::atomic::Ordering::Relaxed);
            json(StatusCode::OK, &serde_json::json!({"serving": serving}))
        }
        None => reply(
            StatusCode::BAD_REQUEST,
            "expected {\"serving\": true|false}\n",
        ),
    }
}

fn rotate_key(state: &State, request: &ServedRequest) -> Reply {
    if let Some(refused) = admin_refusal(state, request) {
        return refused;
    }
    let key = serde_json::from_slice::<serde_json::Value>(&request.body)
        .ok()
        .and_then(|v| v["key"].as_str().map(str::to_string));
    match key {
        Some(key)
            if (8..=200).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            *state.api_key.lock().unwrap_or_else(|e| e.into_inner()) = key;
            reply(StatusCode::NO_CONTENT, "")
        }
        _ => reply(
            StatusCode::BAD_REQUEST,
            "`key` must be 8 to 200 printable characters\n",
        ),
    }
}

fn authorised(state: &State, request: &ServedRequest) -> bool {
    if state.has(|d| *d == Defect::AuthBypass) {
        return true;
    }
    let key = state
        .api_key
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let presented = request
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            request
                .headers
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        });
    presented.is_some_and(|p| same_secret(p, &key))
}

async fn write_item(state: &State, request: &ServedRequest) -> Reply {
    let text = String::from_utf8_lossy(&request.body);
    if let Some(token) = CONTROL_TOKENS.iter().find(|t| text.contains(**t)) {
        return json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &serde_json::json!({"error": "control token refused", "token": token}),
        );
    }
    let name = match serde_json::from_slice::<serde_json::Value>(&request.body) {
        Ok(value) => match value["name"].as_str() {
            Some(name) if !name.is_empty() && name.len() <= 200 => name.to_string(),
            _ => {
                return reply(
                    StatusCode::BAD_REQUEST,
                    "`name` must be a string of 1 to 200 characters\n",
                );
            }
        },
        Err(_) => return reply(StatusCode::BAD_REQUEST, "body must be JSON\n"),
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let inserted = with_db(state, |db| {
        db.execute(
            "INSERT INTO items (name, created_ms) VALUES (?1, ?2)",
            rusqlite::params![name, now_ms],
        )
        .map(|_| db.last_insert_rowid())
    });
    match inserted {
        Ok(id) => json(
            StatusCode::CREATED,
            &serde_json::json!({"id": id, "name": name}),
        ),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("write failed: {e}\n"),
        ),
    }
}

/// Runs `work` on the database with the async worker handed over: a commit waits on the
/// disk, and a worker blocked there (or on the lock behind it) held up every request queued
/// on it, reads that never touch the database among them. Under ~3,000 writes/s with another
/// process syncing the same disk, `/items/7`'s p99 was 4.5-6.0 ms this way and 1.3-1.4 ms
/// with the worker handed over.
fn with_db<T>(state: &State, work: impl FnOnce(&rusqlite::Connection) -> T) -> T {
    tokio::task::block_in_place(|| work(&state.db.lock().unwrap_or_else(|e| e.into_inner())))
}

/// A record written through `POST /items`, read back from the database.
async fn read_write(state: &State, id: &str) -> Reply {
    let Ok(id) = id.parse::<i64>() else {
        return reply(StatusCode::NOT_FOUND, "no such record\n");
    };
    let row = with_db(state, |db| {
        db.query_row(
            "SELECT name, created_ms FROM items WHERE id = ?1",
            rusqlite::params![id],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
        )
    });
    match row {
        Ok((name, created_ms)) => json(
            StatusCode::OK,
            &serde_json::json!({"id": id, "name": name, "created_ms": created_ms}),
        ),
        Err(rusqlite::Error::QueryReturnedNoRows) => {
            reply(StatusCode::NOT_FOUND, "no such record\n")
        }
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("read failed: {e}\n"),
        ),
    }
}

async fn quote(state: &State) -> Reply {
    let backing_off = state
        .primary_backoff
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_some_and(|until| Instant::now() < until);
    let providers = [
        ("primary", state.config.primary.as_deref()),
        ("secondary", state.config.secondary.as_deref()),
    ];
    let last = providers.iter().rposition(|(_, url)| url.is_some());
    for (i, (name, url)) in providers.into_iter().enumerate() {
        let Some(url) = url else { continue };
        // A primary that just failed or refused is given time to recover (unless the
        // defect removed the fallback, in which case the primary is all there is).
        if name == "primary" && backing_off && !state.has(|d| *d == Defect::NoFailover) {
            continue;
        }
        let timeout = if Some(i) == last {
            LAST_PROVIDER_TIMEOUT
        } else {
            PROVIDER_TIMEOUT
        };
        match fetch_quote(state, url, timeout)
            .await
            .and_then(|body| fresh(state, body))
        {
            Ok(body) => {
                state.metrics.dependency(name, "ok");
                return json(
                    StatusCode::OK,
                    &serde_json::json!({"via": name, "quote": body}),
                );
            }
            Err((why, retry_after)) => {
                state.metrics.dependency(name, "error");
                if name == "primary" {
                    let wait = retry_after.map_or(BACKOFF, |d| d.min(Duration::from_secs(5)));
                    *state
                        .primary_backoff
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + wait);
                }
                if name == "primary" && state.has(|d| *d == Defect::NoFailover) {
                    return reply(
                        StatusCode::BAD_GATEWAY,
                        format!("primary provider failed: {why}\n"),
                    );
                }
            }
        }
    }
    reply(StatusCode::BAD_GATEWAY, "no provider answered\n")
}

/// How far a quote's `issued_at` (by its provider's clock) may be from this clock: clocks
/// in a fleet drift, and a quote is good for minutes.
const CLOCK_LEEWAY: Duration = Duration::from_secs(60);

/// The quote, if it was issued within the leeway of this clock (a quote without a time is
/// taken as it is).
fn fresh(
    state: &State,
    body: serde_json::Value,
) -> Result<serde_json::Value, (String, Option<Duration>)> {
    let Some(issued) = body["issued_at"].as_u64() else {
        return Ok(body);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let leeway = match state.has(|d| *d == Defect::NoClockLeeway) {
        true => Duration::from_secs(2),
        false => CLOCK_LEEWAY,
    };
    match now.abs_diff(issued) > leeway.as_secs() {
        true => Err((
            format!(
                "quote issued {}s from this clock",
                now as i64 - issued as i64
            ),
            None,
        )),
        false => Ok(body),
    }
}

/// A quote, or why not and how long the provider asked to be left alone (Retry-After).
async fn fetch_quote(
    state: &State,
    base: &str,
    timeout: Duration,
) -> Result<serde_json::Value, (String, Option<Duration>)> {
    use http_body_util::BodyExt;
    let request = hyper::Request::get(format!("{}/quote", base.trim_end_matches('/')))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .map_err(|e| (e.to_string(), None))?;
    let exchange = async {
        let response = state
            .client
            .request(request)
            .await
            .map_err(|e| (e.to_string(), None))?;
        if !response.status().is_success() {
            let retry_after = response
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err((format!("status {}", response.status()), retry_after));
        }
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| (e.to_string(), None))?;
        serde_json::from_slice(&body.to_bytes()).map_err(|e| (e.to_string(), None))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| (format!("timed out after {timeout:?}"), None))?
}

#[cfg(test)]
mod tests {
    use super::is_traversal;

    #[test]
    fn traversal_in_every_spelling_is_caught() {
        for path in [
            "/../etc/passwd",
            "/%2e%2e/etc",
            "/%2E%2E%2Fetc",
            "/..%2f..%2fetc",
            "/%252e%252e/etc",
            "/..;/etc",
            "/a\\..\\b",
        ] {
            assert!(is_traversal(path), "{path}");
        }
        for path in ["/items/1", "/healthz", "/quote", "/items/..1"] {
            assert!(!is_traversal(path), "{path}");
        }
    }
}
