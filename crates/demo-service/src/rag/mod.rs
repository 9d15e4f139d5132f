//! The rag demo: a retrieval-augmented answer service and its dependencies, each its own
//! process on loopback.
//!
//! - **rag** (this file): `POST /answer {"question", "top_k"}`: a guard against injected
//!   instructions, the answer cache, the document store's best `top_k` (clamped to
//!   `max_k`), a prompt (the system prompt file plus the context), the primary model
//!   provider with the secondary as fallback, and PII redaction of what comes back.
//!   `POST /admin/retrieval {"enabled", "drop_top"}` (the ablation switch: retrieval off,
//!   or its best `drop_top` documents left out) and `POST /admin/reindex` need the admin token; `GET /flags` says what is switched on.
//! - **docs** ([`docs`]): the document store. **llm** ([`llm`]): an OpenAI-compatible
//!   model provider. **cache** ([`cache`]): the answer cache.

pub mod cache;
pub mod docs;
pub mod knobs;
pub mod llm;
pub mod text;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::metrics::Metrics;
use crate::server::{Reply, ServedRequest, json, reply, serve};
use knobs::RagDefect;

#[derive(Debug, Clone)]
pub struct RagConfig {
    pub port: u16,
    pub version: String,
    /// The document store's base URL.
    pub docs: String,
    pub cache: Option<String>,
    pub primary: String,
    pub secondary: Option<String>,
    /// The system prompt, a file (protected by the spec's lock).
    pub prompt: PathBuf,
    pub admin_token: Option<String>,
    /// The most documents one question may fetch.
    pub max_k: usize,
    pub defects: Vec<RagDefect>,
}

struct State {
    config: RagConfig,
    system: String,
    metrics: Metrics,
    client: crate::server::Client,
    retrieval: AtomicBool,
    /// How many of the best documents are left out of every prompt (the ablation switch).
    drop_top: AtomicUsize,
    /// Until when the document store is left alone after it refused (429) or failed.
    store_backoff: std::sync::Mutex<Option<Instant>>,
}

/// A provider with another behind it is given this long; the last one longer.
const PROVIDER_TIMEOUT: Duration = Duration::from_millis(500);
const LAST_PROVIDER_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_K: usize = 3;
/// How long a document store that throttled or failed is left alone.
const STORE_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
struct Asked {
    question: String,
    #[serde(default)]
    top_k: Option<usize>,
}

impl State {
    fn has(&self, knob: RagDefect) -> bool {
        self.config.defects.contains(&knob)
    }

    fn admin(&self, request: &ServedRequest) -> bool {
        let given = request
            .headers
            .get("x-admin-token")
            .and_then(|v| v.to_str().ok());
        matches!((given, &self.config.admin_token), (Some(g), Some(t)) if crate::app::same_secret(g, t))
    }
}

/// Serves until the process ends; see [`gauntlet_net::BoxFuture`] for why it is boxed here.
#[inline(never)]
pub fn run_rag(
    config: RagConfig,
) -> gauntlet_net::BoxFuture<'static, Result<(), Box<dyn std::error::Error + Send + Sync>>> {
    Box::pin(serving(config))
}

async fn serving(config: RagConfig) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let system = std::fs::read_to_string(&config.prompt)
        .map_err(|e| format!("{}: {e}", config.prompt.display()))?;
    let state = Arc::new(State {
        metrics: Metrics::new("rag", &config.version),
        system,
        client: crate::server::client(),
        retrieval: AtomicBool::new(true),
        drop_top: AtomicUsize::new(0),
        store_backoff: std::sync::Mutex::new(None),
        config,
    });
    let port = state.config.port;
    let handler = move |request: ServedRequest| {
        let state = state.clone();
        async move {
            let started = Instant::now();
            let (route, response) = route(&state, request).await;
            let status = response.status().as_u16();
            state
                .metrics
                .observe(route, status, started.elapsed().as_secs_f64());
            response
        }
    };
    serve(port, Arc::new(handler)).await?;
    Ok(())
}

async fn route(state: &State, request: ServedRequest) -> (&'static str, Reply) {
    match (&request.method, request.raw_path.as_str()) {
        (_, "/healthz") => ("/healthz", reply(StatusCode::OK, "ok\n")),
        (_, "/metrics") => (
            "/metrics",
            crate::server::openmetrics(state.metrics.encode()),
        ),
        (&Method::POST, "/answer") => ("/answer", answer(state, &request).await),
        (&Method::GET, "/flags") => ("/flags", json(StatusCode::OK, &flags(state))),
        (&Method::POST, "/admin/retrieval") => ("/admin", switch_retrieval(state, &request)),
        (&Method::POST, "/admin/reindex") => (
            "/admin",
            if state.admin(&request) {
                reply(StatusCode::ACCEPTED, "reindexing\n")
            } else {
                reply(StatusCode::UNAUTHORIZED, "admin token required\n")
            },
        ),
        _ => ("other", reply(StatusCode::NOT_FOUND, "not found\n")),
    }
}

/// The feature flags in force, as preflight freezes them.
fn flags(state: &State) -> serde_json::Value {
    serde_json::json!({
        "retrieval": state.retrieval.load(Ordering::Relaxed),
        "drop_top": state.drop_top.load(Ordering::Relaxed),
        "max_k": state.config.max_k,
        "answer_cache": state.config.cache.is_some(),
        "provider_failover": state.config.secondary.is_some(),
    })
}

/// The ablation switch: retrieval on or off, and how many of the best documents to leave
/// out, for every later question (what is not named stays as it is).
fn switch_retrieval(state: &State, request: &ServedRequest) -> Reply {
    if !state.admin(request) {
        return reply(StatusCode::UNAUTHORIZED, "admin token required\n");
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Switch {
        enabled: Option<bool>,
        drop_top: Option<usize>,
    }
    match serde_json::from_slice::<Switch>(&request.body) {
        Ok(switch) => {
            if let Some(enabled) = switch.enabled {
                state.retrieval.store(enabled, Ordering::Relaxed);
            }
            if let Some(n) = switch.drop_top {
                state
                    .drop_top
                    .store(n.min(state.config.max_k), Ordering::Relaxed);
            }
            json(StatusCode::OK, &flags(state))
        }
        Err(_) => reply(
            StatusCode::BAD_REQUEST,
            "expected {\"enabled\": true|false, \"drop_top\": N}\n",
        ),
    }
}

async fn answer(state: &State, request: &ServedRequest) -> Reply {
    let Ok(asked) = serde_json::from_slice::<Asked>(&request.body) else {
        return reply(
            StatusCode::BAD_REQUEST,
            "expected {\"question\": \"...\"}\n",
        );
    };
    let guarded = !state.has(RagDefect::FollowsInjection);
    if guarded && text::is_injection(&asked.question) {
        return json(
            StatusCode::OK,
            &serde_json::json!({"answer": "I can only answer questions about the shop.", "refused": true, "sources": []}),
        );
    }
    let mut k = asked.top_k.unwrap_or(DEFAULT_K);
    if !state.has(RagDefect::NoFanoutLimit) {
        k = k.clamp(1, state.config.max_k);
    }
    let key = hex::encode(Sha256::digest(format!("{k}\n{}", asked.question)));
    let cached = !state.has(RagDefect::CacheOff) && state.config.cache.is_some();
    // `Cache-Control: no-cache` asks for a fresh answer (which is then cached).
    let fresh = request
        .headers
        .get(hyper::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("no-cache"));
    if cached
        && !fresh
        && let Some(hit) = cache_get(state, &key).await
    {
        return json(StatusCode::OK, &hit);
    }
    // Without the document store the service still answers, from no context (degraded):
    // an answer that says it does not know beats an error page.
    let (documents, degraded) = match retrieve(state, &asked.question, k).await {
        Ok(documents) => (documents, false),
        Err(_) => (Vec::new(), true),
    };
    let context: Vec<String> = documents
        .iter()
        .map(|d| {
            let text = if guarded {
                text::without_injections(&d.text)
            } else {
                d.text.clone()
            };
            format!("[{}] {text}", d.id)
        })
        .collect();
    let user = format!(
        "Context:\n{}\n\n{} {}",
        context.join("\n"),
        llm::QUESTION,
        asked.question
    );
    let (provider, completion) = match complete(state, &user).await {
        Ok(answered) => answered,
        Err(why) => return reply(StatusCode::BAD_GATEWAY, format!("model providers: {why}\n")),
    };
    let said = completion["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default();
    let said = if state.has(RagDefect::LeaksPii) {
        said.to_string()
    } else {
        text::redact_pii(said)
    };
    let body = serde_json::json!({
        "answer": said,
        "sources": documents.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        "provider": provider,
        "model": completion["model"],
        "usage": completion["usage"],
        "degraded": degraded,
    });
    if cached && !degraded {
        cache_put(state, &key, &body).await;
    }
    let mut response = json(StatusCode::OK, &body);
    if let Some(cost) = cost_of(&completion)
        && let Ok(value) = hyper::header::HeaderValue::from_str(&format!("{cost:.9}"))
    {
        response.headers_mut().insert("x-answer-cost", value);
    }
    response
}

/// What a fresh answer cost, by the providers' price list (per million tokens), as the
/// service bills it: stated in `x-answer-cost` (a cached answer costs nothing new).
fn cost_of(completion: &serde_json::Value) -> Option<f64> {
    let (prompt, completion_price) = match completion["model"].as_str()? {
        "demo-small" => (0.15, 0.60),
        "demo-large" => (2.50, 10.00),
        _ => return None,
    };
    let usage = &completion["usage"];
    let tokens = |name: &str| usage[name].as_u64().map(|n| n as f64);
    Some(
        (tokens("prompt_tokens")? * prompt + tokens("completion_tokens")? * completion_price) / 1e6,
    )
}

/// The documents for a question (none with retrieval switched or knocked off; the best one
/// dropped by its knob).
async fn retrieve(state: &State, question: &str, k: usize) -> Result<Vec<docs::Document>, String> {
    if state.has(RagDefect::RetrievalOff) || !state.retrieval.load(Ordering::Relaxed) {
        return Ok(Vec::new());
    }
    let backoff = || {
        state
            .store_backoff
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    };
    if backoff().is_some_and(|until| Instant::now() < until) {
        return Err("backing off the document store".into());
    }
    let url = format!("{}/search", state.config.docs.trim_end_matches('/'));
    let body = serde_json::json!({"query": question, "k": k});
    let (status, found) = call(
        state,
        Method::POST,
        &url,
        Some(&body),
        LAST_PROVIDER_TIMEOUT,
    )
    .await
    .inspect_err(|_| *backoff() = Some(Instant::now() + STORE_BACKOFF))?;
    if status != 200 {
        state.metrics.dependency("docs", "error");
        // A store that throttles (429) or fails is given time before it is asked again.
        *backoff() = Some(Instant::now() + STORE_BACKOFF);
        return Err(format!("status {status}"));
    }
    state.metrics.dependency("docs", "ok");
    let mut documents: Vec<docs::Document> =
        serde_json::from_value(found["documents"].clone()).map_err(|e| e.to_string())?;
    let knob = usize::from(state.has(RagDefect::Top1Dropped));
    let dropped = knob.max(state.drop_top.load(Ordering::Relaxed));
    documents.drain(..dropped.min(documents.len()));
    Ok(documents)
}

/// A completion from the first provider that gives one: its name and its answer.
async fn complete(state: &State, user: &str) -> Result<(&'static str, serde_json::Value), String> {
    let providers: Vec<(&'static str, &str)> = if state.has(RagDefect::CostSurge) {
        state
            .config
            .secondary
            .as_deref()
            .map(|s| ("secondary", s))
            .into_iter()
            .collect()
    } else if state.has(RagDefect::NoProviderFailover) {
        vec![("primary", state.config.primary.as_str())]
    } else {
        std::iter::once(("primary", state.config.primary.as_str()))
            .chain(state.config.secondary.as_deref().map(|s| ("secondary", s)))
            .collect()
    };
    let chat = serde_json::json!({
        "model": "demo",
        "messages": [{"role": "system", "content": state.system}, {"role": "user", "content": user}],
    });
    let mut last = "no provider configured".to_string();
    for (i, (name, base)) in providers.iter().enumerate() {
        let timeout = if i + 1 == providers.len() {
            LAST_PROVIDER_TIMEOUT
        } else {
            PROVIDER_TIMEOUT
        };
        let url = format!("{}/v1/chat/completions", base.trim_end_matches('/'));
        match call(state, Method::POST, &url, Some(&chat), timeout).await {
            Ok((200, completion)) => {
                state.metrics.dependency(name, "ok");
                return Ok((name, completion));
            }
            Ok((status, _)) => last = format!("{name}: status {status}"),
            Err(why) => last = format!("{name}: {why}"),
        }
        state.metrics.dependency(name, "error");
    }
    Err(last)
}

async fn cache_get(state: &State, key: &str) -> Option<serde_json::Value> {
    let base = state.config.cache.as_deref()?;
    let url = format!("{}/cache/{key}", base.trim_end_matches('/'));
    match call(state, Method::GET, &url, None, PROVIDER_TIMEOUT).await {
        Ok((200, value)) => {
            state.metrics.dependency("cache", "hit");
            Some(value)
        }
        _ => {
            state.metrics.dependency("cache", "miss");
            None
        }
    }
}

async fn cache_put(state: &State, key: &str, value: &serde_json::Value) {
    if let Some(base) = state.config.cache.as_deref() {
        let url = format!("{}/cache/{key}", base.trim_end_matches('/'));
        let _ = call(state, Method::PUT, &url, Some(value), PROVIDER_TIMEOUT).await;
    }
}

/// One JSON exchange, bounded: the status and the body (null when not JSON).
async fn call(
    state: &State,
    method: Method,
    url: &str,
    body: Option<&serde_json::Value>,
    timeout: Duration,
) -> Result<(u16, serde_json::Value), String> {
    use http_body_util::BodyExt;
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let request = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(bytes)))
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let response = state
            .client
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok((
            status,
            serde_json::from_slice(&body.to_bytes()).unwrap_or_default(),
        ))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}
