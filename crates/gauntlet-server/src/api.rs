//! The routes. Every `/v1` route needs a bearer token; [`ROUTES`] says which role each
//! needs, and every decision (allowed, denied, unauthenticated) goes to the audit log with
//! the token's id, never the token.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, MatchedPath, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gauntlet_store::{Store, StoreError};
use serde_json::json;

use crate::audit::{Audit, Event};
use crate::config::ServerConfig;
use crate::judge;
use crate::metrics::Metrics;
use crate::runs::{RunRequest, Runs, StartError};
use crate::tokens::{Caller, Role, Tokens};

pub use crate::openapi::ROUTES;

pub struct AppState {
    pub config: ServerConfig,
    pub tokens: Tokens,
    pub audit: Arc<Audit>,
    pub metrics: Arc<Metrics>,
    pub runs: Arc<Runs>,
    /// The dashboard's signed-in visitors.
    pub sessions: crate::web::Sessions,
}

impl AppState {
    pub fn new(config: ServerConfig, audit: Arc<Audit>) -> AppState {
        let metrics = Arc::new(Metrics::new());
        let notifier =
            crate::notify::Notifier::new(config.notify.clone(), audit.clone(), metrics.clone());
        AppState {
            tokens: Tokens::new(&config.tokens),
            runs: Arc::new(Runs::new(
                config.clone(),
                metrics.clone(),
                Arc::new(notifier),
            )),
            config,
            audit,
            metrics,
            sessions: Default::default(),
        }
    }
}

pub(crate) type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/services", get(services))
        .route("/v1/services/{service}/runs", post(start_run))
        .route("/v1/runs", get(list_runs))
        .route("/v1/runs/{run}", get(show_run))
        .route("/v1/runs/{run}/files/{*path}", get(run_file))
        .route("/v1/runs/{run}/cancel", post(cancel_run))
        .route("/v1/runs/{run}/ack/{drill}", post(ack_page))
        .route("/v1/runs/{run}/confirm/{step}", post(confirm_step))
        .route("/v1/runs/{run}/signoff", post(sign_off))
        .route("/v1/runs/{run}/readiness", get(readiness))
        .route("/v1/runs/{run}/certificate", get(certificate))
        .route("/v1/judge/argo", post(judge::argo))
        .route("/v1/judge/flagger/{hook}", post(judge::flagger))
        .route(
            "/v1/openapi.json",
            get(|| async { Json(crate::openapi::document()) }),
        )
        .merge(crate::web::routes(state.clone()))
        .fallback(|| async { ApiError::NotFound("no such route: see /v1/openapi.json".into()) })
        .layer(middleware::from_fn_with_state(state.clone(), measure))
        .with_state(state)
}

/// Counts and times every request by its route (the pattern, never the path asked for).
async fn measure(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    state.metrics.request(&route, &method, status, seconds);
    response
}

/// How a request fails, as JSON with a status a client can act on.
#[derive(Debug)]
pub enum ApiError {
    Unauthenticated,
    Forbidden(String),
    NotFound(String),
    Invalid(String),
    Conflict(String),
    Internal(String),
}

impl ApiError {
    /// The HTTP status this error is answered with (by the API and the dashboard alike).
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (kind, message) = match self {
            ApiError::Unauthenticated => (
                "unauthenticated",
                "a valid token is needed: `Authorization: Bearer gauntlet_…` (`gauntlet token create`)".to_string(),
            ),
            ApiError::Forbidden(m) => ("forbidden", m),
            ApiError::NotFound(m) => ("not-found", m),
            ApiError::Invalid(m) => ("invalid", m),
            ApiError::Conflict(m) => ("conflict", m),
            ApiError::Internal(m) => ("internal", m),
        };
        let mut response =
            (status, Json(json!({"error": kind, "message": message}))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StartError> for ApiError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::NoService(_) => ApiError::NotFound(e.to_string()),
            StartError::Invalid(_) => ApiError::Invalid(e.to_string()),
            StartError::Internal(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSuchRun(_) | StoreError::Ambiguous(_) => {
                ApiError::NotFound(e.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Who is asking, from where, for what.
pub(crate) struct Asked<'a> {
    headers: &'a HeaderMap,
    remote: SocketAddr,
    action: &'a str,
    resource: String,
}

impl<'a> Asked<'a> {
    pub(crate) fn new(
        headers: &'a HeaderMap,
        remote: SocketAddr,
        action: &'a str,
        resource: impl Into<String>,
    ) -> Self {
        Asked {
            headers,
            remote,
            action,
            resource: resource.into(),
        }
    }
}

/// The caller, allowed `needed`, and the run it asks about, which it may see.
async fn asked_run(
    state: &Shared,
    asked: &Asked<'_>,
    needed: Role,
    run: &str,
) -> Result<(Caller, gauntlet_store::RunSummary), ApiError> {
    let caller = authorize(state, asked, needed, None)?;
    let found = visible_run(state, &caller, run).await?;
    Ok((caller, found))
}

/// The caller, when its token is valid and its role (and services) allow `needed` on
/// `service`; every answer is audited.
pub(crate) fn authorize(
    state: &AppState,
    asked: &Asked<'_>,
    needed: Role,
    service: Option<&str>,
) -> Result<Caller, ApiError> {
    let bearer = asked
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let caller = bearer.and_then(|b| state.tokens.authenticate(b.trim()));
    permit(state, asked, caller, needed, service)
}

/// `caller` (from a bearer token or a dashboard session), when its role (and services)
/// allow `needed` on `service`; every answer is audited.
pub(crate) fn permit(
    state: &AppState,
    asked: &Asked<'_>,
    caller: Option<Caller>,
    needed: Role,
    service: Option<&str>,
) -> Result<Caller, ApiError> {
    let allowed = caller
        .as_ref()
        .map(|c| c.role.allows(needed) && service.is_none_or(|s| c.covers(s)));
    let outcome = match allowed {
        None => "unauthenticated",
        Some(true) => "allowed",
        Some(false) => "denied",
    };
    audit(state, caller.as_ref(), asked, outcome)?;
    match (caller, allowed) {
        (Some(caller), Some(true)) => Ok(caller),
        (Some(caller), _) => Err(ApiError::Forbidden(format!(
            "a {} token may not {}{}",
            caller.role.as_str(),
            asked.action,
            service.map(|s| format!(" on `{s}`")).unwrap_or_default()
        ))),
        (None, _) => Err(ApiError::Unauthenticated),
    }
}

/// One audit line; a log that cannot be written refuses the request rather than act
/// unrecorded.
pub(crate) fn audit(
    state: &AppState,
    caller: Option<&Caller>,
    asked: &Asked<'_>,
    outcome: &str,
) -> Result<(), ApiError> {
    let event = Event {
        token: caller.map(|c| c.token.clone()),
        role: caller.map(|c| c.role.as_str().to_string()),
        action: asked.action.to_string(),
        resource: asked.resource.clone(),
        outcome: outcome.to_string(),
        remote: Some(asked.remote.to_string()),
    };
    state.audit.record(event).map_err(|e| {
        tracing::error!("the audit log cannot be written: {e}");
        ApiError::Internal("the audit log cannot be written".into())
    })
}

async fn readyz(State(state): State<Shared>) -> Response {
    let store = state.config.store.clone();
    match tokio::task::spawn_blocking(move || Store::connect(&store)).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready\n").into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the run store cannot be opened\n",
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<Shared>) -> Response {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

async fn services(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let asked = Asked::new(&headers, remote, "list services", "/v1/services");
    let caller = authorize(&state, &asked, Role::Viewer, None)?;
    let names: Vec<&String> = state
        .config
        .services
        .keys()
        .filter(|s| caller.covers(s))
        .collect();
    Ok(Json(json!({ "services": names })))
}

async fn start_run(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath(service): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let resource = format!("/v1/services/{service}/runs");
    let asked = Asked::new(&headers, remote, "start a run", resource);
    let caller = authorize(&state, &asked, Role::Operator, Some(&service))?;
    let request: RunRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RunRequest::default()
    } else {
        parse_body(&body)?
    };
    let started = state.runs.start(&service, &request, &caller);
    let outcome = match &started {
        Ok(run) => format!("started {run}"),
        Err(e) => format!("refused: {e}"),
    };
    audit(&state, Some(&caller), &asked, &outcome)?;
    let run = started?;
    let body = json!({"run": run, "service": service, "url": format!("/v1/runs/{run}")});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Debug, serde::Deserialize)]
struct ListQuery {
    service: Option<String>,
    limit: Option<usize>,
}

async fn list_runs(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let asked = Asked::new(&headers, remote, "list runs", "/v1/runs");
    let caller = authorize(&state, &asked, Role::Viewer, query.service.as_deref())?;
    let limit = query.limit.unwrap_or(50).min(1000);
    let runs = with_store(&state, move |store| store.list_runs(limit)).await?;
    let runs: Vec<_> = runs
        .into_iter()
        .filter(|r| caller.covers(&r.service))
        .filter(|r| query.service.as_ref().is_none_or(|s| *s == r.service))
        .map(summary)
        .collect();
    Ok(Json(json!({ "runs": runs })))
}

fn summary(r: gauntlet_store::RunSummary) -> serde_json::Value {
    json!({
        "run": r.id, "service": r.service, "version": r.version, "status": r.status,
        "decision": r.decision, "exit_code": r.exit_code, "started_at": r.started_at,
        "finished_at": r.finished_at, "url": format!("/v1/runs/{}", r.id),
    })
}

/// A run the caller may see: found in the store and in one of its services.
pub(crate) async fn visible_run(
    state: &Shared,
    caller: &Caller,
    run: &str,
) -> Result<gauntlet_store::RunSummary, ApiError> {
    let id = run_id(run)?.to_string();
    let found = with_store(state, move |store| store.find_run(&id)).await?;
    if !caller.covers(&found.service) {
        // Not a 403: a token scoped to other services learns nothing of this run.
        return Err(ApiError::NotFound(format!("no run `{run}`")));
    }
    Ok(found)
}

async fn show_run(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath(run): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let asked = Asked::new(&headers, remote, "show a run", format!("/v1/runs/{run}"));
    let (_, found) = asked_run(&state, &asked, Role::Viewer, &run).await?;
    let id = found.id.clone();
    let report = with_store(&state, move |store| store.report(&id)).await?;
    let live = state.runs.live_service(&found.id).is_some();
    let mut body = summary(found);
    body["live"] = json!(live);
    if let Some(report) = report {
        body["summary"] = json!(report.summary);
        body["report"] =
            serde_json::to_value(&report).map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    Ok(Json(body))
}

async fn run_file(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath((run, path)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let resource = format!("/v1/runs/{run}/files/{path}");
    let asked = Asked::new(&headers, remote, "read a run's file", resource);
    let (_, found) = asked_run(&state, &asked, Role::Viewer, &run).await?;
    // This server's disk first; else (another server's run) the copy kept by digest on the
    // shared path, checked against its digest.
    let local = match inside(Path::new(&found.run_dir), &path) {
        Ok(file) => tokio::fs::read(&file).await.ok(),
        Err(ApiError::NotFound(_)) => None,
        Err(refused) => return Err(refused),
    };
    let missing = || ApiError::NotFound(format!("no file `{path}` in run {}", found.id));
    let bytes = match (local, &state.config.shared_files) {
        (Some(bytes), _) => bytes,
        (None, Some(shared)) => {
            let (shared, id, wanted) = (shared.clone(), found.id.clone(), path.clone());
            tokio::task::spawn_blocking(move || {
                gauntlet_store::SharedFiles::new(shared).read(&id, &wanted)
            })
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| match e {
                gauntlet_store::FilesError::Missing(_) => missing(),
                other => ApiError::Internal(other.to_string()),
            })?
        }
        (None, None) => return Err(missing()),
    };
    let mut response = bytes.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(Path::new(&path))),
    );
    Ok(response)
}

async fn cancel_run(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath(run): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let asked = Asked::new(
        &headers,
        remote,
        "cancel a run",
        format!("/v1/runs/{run}/cancel"),
    );
    let (caller, found) = asked_run(&state, &asked, Role::Operator, &run).await?;
    if !state.runs.cancel(&found.id) {
        return Err(ApiError::Conflict(format!(
            "run {} is not running ({})",
            found.id, found.status
        )));
    }
    audit(&state, Some(&caller), &asked, "cancelling")?;
    let body =
        json!({"run": found.id, "cancelling": true, "url": format!("/v1/runs/{}", found.id)});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// Acknowledges a drill's (or the rehearsal's) page in a live run, as `gauntlet ack` does:
/// the caller's token is who acknowledged, in the report's incident timeline.
async fn ack_page(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath((run, drill)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let asked = Asked::new(
        &headers,
        remote,
        "acknowledge a page",
        format!("/v1/runs/{run}/ack/{drill}"),
    );
    let (caller, found) = asked_run(&state, &asked, Role::Operator, &run).await?;
    if found.status != "running" {
        return Err(ApiError::Conflict(format!(
            "run {} is not running ({})",
            found.id, found.status
        )));
    }
    let run_dir = PathBuf::from(&found.run_dir);
    if !gauntlet_engine::incident::pages(&run_dir, &drill) {
        return Err(ApiError::NotFound(format!(
            "run {} has no drill named `{drill}`",
            found.id
        )));
    }
    let by = caller.describe();
    let waiting = gauntlet_engine::incident::record_ack(&run_dir, &drill, &by)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    audit(&state, Some(&caller), &asked, "acknowledged")?;
    let body =
        json!({"run": found.id, "drill": drill, "acknowledged_by": by, "was_waiting": waiting});
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// Confirms a runbook's manual step a live run waits for, as `gauntlet confirm` does: the
/// caller's token is who confirmed, in the runbook's report.
async fn confirm_step(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath((run, step)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let asked = Asked::new(
        &headers,
        remote,
        "confirm a runbook step",
        format!("/v1/runs/{run}/confirm/{step}"),
    );
    let (caller, found) = asked_run(&state, &asked, Role::Operator, &run).await?;
    if found.status != "running" {
        return Err(ApiError::Conflict(format!(
            "run {} is not running ({})",
            found.id, found.status
        )));
    }
    let by = caller.describe();
    let run_dir = PathBuf::from(&found.run_dir);
    let name = match gauntlet_engine::runbook::record_confirmation(&run_dir, Some(&step), &by) {
        Ok(name) => name,
        Err(gauntlet_engine::runbook::ConfirmError::Io(e)) => {
            return Err(ApiError::Internal(e.to_string()));
        }
        Err(refused) => return Err(ApiError::Conflict(format!("run {}: {refused}", found.id))),
    };
    audit(&state, Some(&caller), &asked, "confirmed")?;
    let body = json!({"run": found.id, "step": name, "confirmed_by": by});
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// A run id as runs are named (`20261122T143700Z-3fa9`, or a prefix of one).
fn run_id(run: &str) -> Result<&str, ApiError> {
    let plain = !run.is_empty()
        && run.len() <= 64
        && run.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    plain
        .then_some(run)
        .ok_or_else(|| ApiError::Invalid(format!("`{run}` is not a run id")))
}

/// `relative` inside `dir`, or refused: no `..`, no absolute path, and no symbolic link that
/// leads out.
pub(crate) fn inside(dir: &Path, relative: &str) -> Result<PathBuf, ApiError> {
    let refused = || ApiError::Invalid(format!("`{relative}` is not a path inside the run"));
    let path = Path::new(relative);
    if relative.is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(refused());
    }
    let root = dir
        .canonicalize()
        .map_err(|_| ApiError::NotFound("the run's directory is gone".into()))?;
    let file = root
        .join(path)
        .canonicalize()
        .map_err(|_| ApiError::NotFound(format!("no file `{relative}`")))?;
    if !file.starts_with(&root) || !file.is_file() {
        return Err(refused());
    }
    Ok(file)
}

pub(crate) fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => "application/json",
        Some("md") => "text/markdown; charset=utf-8",
        Some("xml") => "application/xml",
        Some("svg") => "image/svg+xml",
        Some("html") => "text/html; charset=utf-8",
        Some("log" | "txt" | "jsonl" | "yaml" | "lock") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Runs a store query off the async workers (SQLite blocks).
pub(crate) async fn with_store<T: Send + 'static>(
    state: &Shared,
    query: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let path = state.config.store.clone();
    tokio::task::spawn_blocking(move || query(&Store::connect(&path)?))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::from)
}

/// A sign-off asked through the API.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignoffRequest {
    /// A role of the run's `service.owners`.
    role: String,
    /// Who signs (default: the role's owner).
    #[serde(default)]
    by: Option<String>,
}

/// Signs the run's report digest as a role of its spec, with the server's signing key (a
/// spec that pins another key for the role needs `gauntlet signoff` by that key's holder).
async fn sign_off(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath(run): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let resource = format!("/v1/runs/{run}/signoff");
    let asked = Asked::new(&headers, remote, "sign off a run", resource);
    let (caller, found) = asked_run(&state, &asked, Role::Approver, &run).await?;
    let asked_for: SignoffRequest = parse_body(&body)?;
    let (made, key) = sign_run(
        &state,
        &caller,
        &asked,
        &found,
        asked_for.role,
        asked_for.by,
    )
    .await?;
    let now = judge::verdict(&state, &found.id).await?;
    let body = json!({"run": found.id, "role": made.role, "by": made.by, "key": key, "report_sha256": made.report_sha256, "decision": now.decision, "reason": now.reason});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Signs a finished run's report as `role` with the server's signing key, as `gauntlet
/// signoff` does (the role must be the spec's; a key it pins for the role must be this one);
/// the outcome is audited. Returns the sign-off and the key's id.
pub(crate) async fn sign_run(
    state: &Shared,
    caller: &Caller,
    asked: &Asked<'_>,
    found: &gauntlet_store::RunSummary,
    role: String,
    by: Option<String>,
) -> Result<(gauntlet_review::signoff::Signoff, String), ApiError> {
    if found.status == "running" {
        return Err(ApiError::Conflict(format!(
            "run {} has no report to sign yet",
            found.id
        )));
    }
    let keyring = state.config.keyring.clone();
    let (run_dir, id) = (PathBuf::from(&found.run_dir), found.id.clone());
    let signed = tokio::task::spawn_blocking(move || {
        let key = gauntlet_trust::Keyring::open(&keyring)?.signing_key()?;
        let text = std::fs::read_to_string(run_dir.join("spec.yaml")).ok();
        let plan = text
            .and_then(|t| gauntlet_spec::plan_str("spec.yaml", &t, &Default::default(), 1).ok());
        gauntlet_review::signoff::sign_as(&run_dir, &id, plan.as_ref(), &role, by, &key)
            .map(|made| (made, key.id))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let outcome = match &signed {
        Ok((made, _)) => format!("signed as {} ({})", made.role, made.by),
        Err(e) => format!("refused: {e}"),
    };
    audit(state, Some(caller), asked, &outcome)?;
    signed.map_err(|e| match e {
        gauntlet_trust::TrustError::Input(m) | gauntlet_trust::TrustError::Key(m) => {
            ApiError::Invalid(m)
        }
        other => ApiError::Internal(other.to_string()),
    })
}

/// The readiness checklist as the run scored it.
async fn readiness(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath(run): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let asked = Asked::new(
        &headers,
        remote,
        "read a run's readiness",
        format!("/v1/runs/{run}/readiness"),
    );
    let (_, found) = asked_run(&state, &asked, Role::Viewer, &run).await?;
    let id = found.id.clone();
    let report = with_store(&state, move |store| store.report(&id)).await?;
    let readiness = report.and_then(|r| r.readiness).ok_or_else(|| {
        ApiError::NotFound(format!("run {} has no readiness checklist", found.id))
    })?;
    Ok(Json(
        serde_json::to_value(readiness).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
}

/// A JSON body, read once the caller is known; what is wrong with it is said.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::Invalid(format!("the JSON body: {e}")))
}

/// The certificate as it stands now: sign-offs verified against the server's keyring,
/// the checklist scored as of now.
async fn certificate(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath(run): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let asked = Asked::new(
        &headers,
        remote,
        "read a run's certificate",
        format!("/v1/runs/{run}/certificate"),
    );
    let (_, found) = asked_run(&state, &asked, Role::Viewer, &run).await?;
    let id = found.id.clone();
    let report = with_store(&state, move |store| store.report(&id))
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("run {} has no report yet", found.id)))?;
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let (keyring, run_dir) = (state.config.keyring.clone(), PathBuf::from(&found.run_dir));
    let rendered = tokio::task::spawn_blocking(move || {
        let text = std::fs::read_to_string(run_dir.join("spec.yaml")).ok();
        let plan = text
            .and_then(|t| gauntlet_spec::plan_str("spec.yaml", &t, &Default::default(), 1).ok());
        let trust = gauntlet_trust::Keyring::open(&keyring)
            .ok()
            .map(gauntlet_trust::Trust::Keyring);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let certificate = gauntlet_review::certificate::gather(
            &report,
            &run_dir,
            plan.as_ref(),
            trust.as_ref(),
            now,
        );
        if html {
            certificate.to_html()
        } else {
            certificate.to_markdown()
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut response = rendered.into_response();
    let kind = if html {
        "text/html; charset=utf-8"
    } else {
        "text/markdown; charset=utf-8"
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    Ok(response)
}
