//! The dashboard: pages rendered on the server from the stored runs, behind the same tokens
//! and roles as the API. A token is given once at `/ui/login` and exchanged for a session
//! cookie (HttpOnly, SameSite=Strict); forms that change something carry the session's CSRF
//! token; every page is sent with a strict Content-Security-Policy (no inline script or
//! style, nothing from elsewhere). Every auth decision is audited, as for the API.

mod pages;
mod session;
mod views;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::Form;
use axum::Router;
use axum::extract::{ConnectInfo, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::Deserialize;

use crate::api::{ApiError, Asked, Shared, permit, visible_run, with_store};
use crate::tokens::Role;
pub use session::Sessions;
use session::Visitor;

/// What every dashboard page is sent with: nothing runs or loads but gauntlet's own files.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What a run's files are sent with: a sandbox of their own, never the dashboard's origin
/// (a response body kept as evidence may hold anything).
const FILE_CSP: &str =
    "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'";

pub fn routes(state: Shared) -> Router<Shared> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/runs") }))
        .route("/ui", get(|| async { Redirect::to("/ui/runs") }))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/runs", get(runs))
        .route("/ui/runs/{run}", get(run))
        .route("/ui/runs/{run}/checks", get(checks))
        .route("/ui/runs/{run}/canary", get(canary))
        .route("/ui/runs/{run}/drills", get(drills))
        .route("/ui/services/{service}/gates", get(gates))
        .route("/ui/runs/{run}/signoff", post(sign_off))
        .route("/ui/runs/{run}/files/{*path}", get(file))
        .route("/ui/runs/{run}/events", get(events))
        .route("/ui/assets/gauntlet.css", get(style))
        .route("/ui/assets/live.js", get(script))
        .layer(middleware::from_fn_with_state(state, secure))
        // Pages are text: gzip when the browser takes it (server-sent events never are).
        .layer(tower_http::compression::CompressionLayer::new())
}

/// The security headers every dashboard answer carries; a form posted from another site
/// (its `Origin` not this server) is refused before it is read.
async fn secure(State(_): State<Shared>, request: Request, next: Next) -> Response {
    if request.method() == axum::http::Method::POST && !same_origin(request.headers()) {
        let e = ApiError::Forbidden("a form from another site is not accepted".into());
        return problem(None, &e);
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Whether a request's `Origin`, when it has one, is this server (the `Host` it was sent
/// to); browsers send it with every POST (`null` when the page hides where it came from,
/// which is refused: the dashboard's own pages use `Referrer-Policy: same-origin`).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let authority = origin.split_once("://").map(|(_, rest)| rest);
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

fn page(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

fn problem(visitor: Option<&Visitor>, e: &ApiError) -> Response {
    let status = e.status();
    let (title, message) = match e {
        ApiError::Unauthenticated => (
            "Sign in",
            "Your session has ended: sign in again.".to_string(),
        ),
        ApiError::Forbidden(m) => ("Not allowed", m.clone()),
        ApiError::NotFound(m) => ("Not found", m.clone()),
        ApiError::Invalid(m) | ApiError::Conflict(m) => ("Not done", m.clone()),
        ApiError::Internal(_) => (
            "Something went wrong",
            "gauntlet could not answer; the server's log says why".to_string(),
        ),
    };
    (status, page(pages::problem(visitor, title, &message))).into_response()
}

/// Why a page is not shown: no session (the sign-in form), or a refusal said on a page.
enum Refused {
    SignIn,
    Said(ApiError, Option<Box<Visitor>>),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::SignIn => Redirect::to("/ui/login").into_response(),
            Refused::Said(e, visitor) => problem(visitor.as_deref(), &e),
        }
    }
}

/// The signed-in visitor allowed `needed`, audited; a visitor without a session is sent to
/// the sign-in form.
fn visitor(
    state: &Shared,
    headers: &HeaderMap,
    remote: SocketAddr,
    action: &'static str,
    resource: String,
    needed: Role,
) -> Result<Visitor, Refused> {
    let found = state.sessions.visitor(&state.tokens, headers);
    let asked = Asked::new(headers, remote, action, resource);
    let caller = found.as_ref().map(|v| v.caller.clone());
    match (permit(state, &asked, caller, needed, None), found) {
        (Ok(_), Some(visitor)) => Ok(visitor),
        (Err(e), found) if !matches!(e, ApiError::Unauthenticated) => {
            Err(Refused::Said(e, found.map(Box::new)))
        }
        _ => Err(Refused::SignIn),
    }
}

async fn login_form() -> Response {
    page(pages::login(None))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let asked = Asked::new(&headers, remote, "sign in to the dashboard", "/ui/login");
    let caller = state.tokens.authenticate(form.token.trim());
    if permit(&state, &asked, caller, Role::Viewer, None).is_err() {
        let page = page(pages::login(Some(
            "That token is not valid (revoked, mistyped or expired).",
        )));
        return (StatusCode::UNAUTHORIZED, page).into_response();
    }
    let Some(id) = state.sessions.begin(&state.tokens, form.token.trim()) else {
        let e = ApiError::Internal("no session".into());
        return problem(None, &e);
    };
    let cookie = session::set_cookie(&id, state.config.tls.is_some());
    let mut response = Redirect::to("/ui/runs").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Ends the session; only the session's own form may (a forged sign-out is refused).
async fn logout(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let visitor = state.sessions.visitor(&state.tokens, &headers);
    if let Some(visitor) = visitor.filter(|v| !v.csrf_holds(&form.csrf)) {
        let e = ApiError::Forbidden(
            "the form is not this session's (CSRF token missing or wrong): reload the page".into(),
        );
        return problem(Some(&visitor), &e);
    }
    state.sessions.end(&headers);
    let mut response = Redirect::to("/ui/login").into_response();
    if let Ok(value) = HeaderValue::from_str(&session::clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
struct RunsQuery {
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    decision: Option<String>,
}

/// How many runs the list reads at most.
const LISTED: usize = 200;

async fn runs(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<RunsQuery>,
) -> Response {
    let visitor = match visitor(
        &state,
        &headers,
        remote,
        "view runs",
        "/ui/runs".into(),
        Role::Viewer,
    ) {
        Ok(v) => v,
        Err(refused) => return refused.into_response(),
    };
    let service = query.service.filter(|s| !s.is_empty());
    let decision = query.decision.filter(|s| !s.is_empty());
    let caller = visitor.caller.clone();
    let (wanted_service, wanted_decision) = (service.clone(), decision.clone());
    let listed = with_store(&state, move |store| {
        let mut rows = Vec::new();
        for summary in store.list_runs(LISTED)? {
            let shown_as = summary
                .decision
                .clone()
                .unwrap_or_else(|| summary.status.clone());
            let visible = caller.covers(&summary.service)
                && wanted_service
                    .as_ref()
                    .is_none_or(|s| *s == summary.service)
                && wanted_decision.as_ref().is_none_or(|d| *d == shown_as);
            if visible {
                let report = store.report(&summary.id).ok().flatten();
                rows.push(pages::RunRow { summary, report });
            }
        }
        Ok(rows)
    })
    .await;
    match listed {
        Ok(rows) => {
            let services: Vec<String> = state
                .config
                .services
                .keys()
                .filter(|s| visitor.caller.covers(s))
                .cloned()
                .collect();
            page(pages::runs(
                &visitor,
                &rows,
                &services,
                service.as_deref(),
                decision.as_deref(),
            ))
        }
        Err(e) => problem(Some(&visitor), &e),
    }
}

/// A visitor, a run it may see, and the run's report once it has one.
type Visited = (
    Visitor,
    gauntlet_store::RunSummary,
    Option<gauntlet_report::Report>,
);

/// The visitor, allowed `needed`, and a run it may see, with its report.
async fn visited_run(
    state: &Shared,
    headers: &HeaderMap,
    remote: SocketAddr,
    action: &'static str,
    run: &str,
    needed: Role,
) -> Result<Visited, Refused> {
    let resource = format!("/ui/runs/{run}");
    let visitor = visitor(state, headers, remote, action, resource, needed)?;
    let found = match visible_run(state, &visitor.caller, run).await {
        Ok(found) => found,
        Err(e) => return Err(Refused::Said(e, Some(Box::new(visitor)))),
    };
    let id = found.id.clone();
    match with_store(state, move |store| store.report(&id)).await {
        Ok(report) => Ok((visitor, found, report)),
        Err(e) => Err(Refused::Said(e, Some(Box::new(visitor)))),
    }
}

async fn run(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath(run): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let (visitor, found, report) =
        match visited_run(&state, &headers, remote, "view a run", &run, Role::Viewer).await {
            Ok(found) => found,
            Err(refused) => return refused.into_response(),
        };
    let now = match crate::judge::verdict(&state, &found.id).await {
        Ok(v) => v,
        Err(e) => return problem(Some(&visitor), &e),
    };
    let (signoffs, attested) = review(&state, &visitor, &found).await;
    page(pages::run(
        &visitor,
        &found,
        report.as_ref(),
        &now,
        &signoffs,
        &attested,
    ))
}

/// The run's sign-offs (required, given and verified) and its attestation, verified with
/// the server's keyring.
async fn review(
    state: &Shared,
    visitor: &Visitor,
    found: &gauntlet_store::RunSummary,
) -> (pages::Signoffs, pages::Attested) {
    let keyring = state.config.keyring.clone();
    let (run_dir, id) = (PathBuf::from(&found.run_dir), found.id.clone());
    let may_sign = visitor.caller.role.allows(Role::Approver) && found.status != "running";
    let looked = tokio::task::spawn_blocking(move || look(&run_dir, &id, &keyring, may_sign)).await;
    looked.unwrap_or_else(|_| {
        let none = pages::Signoffs {
            required: Vec::new(),
            given: Vec::new(),
            form: None,
        };
        (
            none,
            pages::Attested {
                path: None,
                verified: None,
            },
        )
    })
}

fn look(
    run_dir: &Path,
    id: &str,
    keyring: &Path,
    may_sign: bool,
) -> (pages::Signoffs, pages::Attested) {
    let plan = std::fs::read_to_string(run_dir.join("spec.yaml"))
        .ok()
        .and_then(|t| gauntlet_spec::plan_str("spec.yaml", &t, &Default::default(), 1).ok());
    let trust = gauntlet_trust::Keyring::open(keyring)
        .ok()
        .map(gauntlet_trust::Trust::Keyring);
    let section = plan.as_ref().and_then(|p| p.signoffs.as_ref());
    let given = gauntlet_review::signoff::verify_all(run_dir, id, section, trust.as_ref())
        .into_iter()
        .map(|(role, checked)| (role, checked.map(|(s, key)| (s.by, key))))
        .collect();
    let required = section.map(|s| s.required.clone()).unwrap_or_default();
    let owners: Vec<String> = plan
        .as_ref()
        .map(|p| p.service.owners.keys().cloned().collect())
        .unwrap_or_default();
    let form = (may_sign && !owners.is_empty()).then_some(owners);
    let attestation = "attestation.dsse.json";
    let path = run_dir
        .join(attestation)
        .exists()
        .then(|| attestation.to_string());
    let verified = path.as_ref().map(|p| {
        let bytes = std::fs::read(run_dir.join(p)).map_err(|e| e.to_string())?;
        let trust = trust
            .as_ref()
            .ok_or("the server has no keyring to verify with")?;
        gauntlet_trust::attest::verify(&bytes, trust, "the attestation")
            .map(|v| v.key_id)
            .map_err(|e| e.to_string())
    });
    let signoffs = pages::Signoffs {
        required,
        given,
        form,
    };
    (signoffs, pages::Attested { path, verified })
}

#[derive(Deserialize)]
struct ChecksQuery {
    #[serde(default)]
    step: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
}

async fn checks(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath(run): UrlPath<String>,
    headers: HeaderMap,
    Query(query): Query<ChecksQuery>,
) -> Response {
    let action = "view a run's checks";
    let (visitor, found, report) = match finished_run(&state, &headers, remote, action, &run).await
    {
        Ok(found) => found,
        Err(refused) => return refused.into_response(),
    };
    let step = query.step.filter(|s| !s.is_empty());
    let outcome = query.outcome.filter(|s| !s.is_empty());
    page(pages::checks(
        &visitor,
        &found,
        &report,
        step.as_deref(),
        outcome.as_deref(),
    ))
}

/// The visitor and a finished run it may see, with the run's report; a run without a
/// report yet is said as such.
async fn finished_run(
    state: &Shared,
    headers: &HeaderMap,
    remote: SocketAddr,
    action: &'static str,
    run: &str,
) -> Result<(Visitor, gauntlet_store::RunSummary, gauntlet_report::Report), Refused> {
    match visited_run(state, headers, remote, action, run, Role::Viewer).await? {
        (visitor, found, Some(report)) => Ok((visitor, found, report)),
        (visitor, found, None) => {
            let e = ApiError::Conflict(format!("run {} has no report yet", found.id));
            Err(Refused::Said(e, Some(Box::new(visitor))))
        }
    }
}

/// A page of one part of a finished run.
async fn part(
    state: Shared,
    remote: SocketAddr,
    run: String,
    headers: HeaderMap,
    action: &'static str,
    render: fn(&Visitor, &gauntlet_store::RunSummary, &gauntlet_report::Report) -> Markup,
) -> Response {
    match finished_run(&state, &headers, remote, action, &run).await {
        Ok((visitor, found, report)) => page(render(&visitor, &found, &report)),
        Err(refused) => refused.into_response(),
    }
}

async fn canary(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath(run): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    part(
        state,
        remote,
        run,
        headers,
        "view a run's canary",
        views::canary,
    )
    .await
}

async fn drills(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath(run): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    part(
        state,
        remote,
        run,
        headers,
        "view a run's drills",
        views::drills,
    )
    .await
}

#[derive(Deserialize)]
struct GatesQuery {
    #[serde(default)]
    runs: Option<usize>,
}

/// The gates of a service's last finished runs (10 by default, at most 50).
async fn gates(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath(service): UrlPath<String>,
    headers: HeaderMap,
    Query(query): Query<GatesQuery>,
) -> Response {
    let resource = format!("/ui/services/{service}/gates");
    let visitor = match visitor(
        &state,
        &headers,
        remote,
        "view a service's gates",
        resource,
        Role::Viewer,
    ) {
        Ok(v) => v,
        Err(refused) => return refused.into_response(),
    };
    if !visitor.caller.covers(&service) {
        let e = ApiError::NotFound(format!("no service `{service}`"));
        return problem(Some(&visitor), &e);
    }
    let wanted = query.runs.unwrap_or(10).clamp(1, 50);
    let name = service.clone();
    let found = with_store(&state, move |store| {
        let mut runs = Vec::new();
        for summary in store.list_runs(LISTED)? {
            if runs.len() >= wanted {
                break;
            }
            if summary.service == name
                && let Some(report) = store.report(&summary.id).ok().flatten()
            {
                runs.push((summary, report));
            }
        }
        Ok(runs)
    })
    .await;
    match found {
        Ok(runs) => page(views::gates(&visitor, &service, &runs)),
        Err(e) => problem(Some(&visitor), &e),
    }
}

#[derive(Deserialize)]
struct SignoffForm {
    #[serde(default)]
    csrf: String,
    role: String,
    #[serde(default)]
    by: Option<String>,
}

/// Signs off as a role of the run's spec, as `gauntlet signoff` and the API do; only an
/// approver, only with the session's CSRF token.
async fn sign_off(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath(run): UrlPath<String>,
    headers: HeaderMap,
    Form(form): Form<SignoffForm>,
) -> Response {
    let (visitor, found, _) = match visited_run(
        &state,
        &headers,
        remote,
        "sign off a run",
        &run,
        Role::Approver,
    )
    .await
    {
        Ok(found) => found,
        Err(refused) => return refused.into_response(),
    };
    let resource = format!("/ui/runs/{}/signoff", found.id);
    let asked = Asked::new(&headers, remote, "sign off a run", resource);
    if !visitor.csrf_holds(&form.csrf) {
        let _ = crate::api::audit(
            &state,
            Some(&visitor.caller),
            &asked,
            "refused: no valid CSRF token",
        );
        let e = ApiError::Forbidden(
            "the form is not this session's (CSRF token missing or wrong): reload the page".into(),
        );
        return problem(Some(&visitor), &e);
    }
    let by = form.by.filter(|b| !b.trim().is_empty());
    match crate::api::sign_run(&state, &visitor.caller, &asked, &found, form.role, by).await {
        Ok(_) => Redirect::to(&format!("/ui/runs/{}", found.id)).into_response(),
        Err(e) => problem(Some(&visitor), &e),
    }
}

/// A run's file, in a sandbox of its own.
async fn file(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath((run, path)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (visitor, found, _) = match visited_run(
        &state,
        &headers,
        remote,
        "read a run's file",
        &run,
        Role::Viewer,
    )
    .await
    {
        Ok(found) => found,
        Err(refused) => return refused.into_response(),
    };
    let read = match crate::api::inside(Path::new(&found.run_dir), &path) {
        Ok(file) => tokio::fs::read(&file).await.map(|bytes| (file, bytes)).ok(),
        Err(e) => return problem(Some(&visitor), &e),
    };
    let Some((file, bytes)) = read else {
        let e = ApiError::NotFound(format!("no file `{path}` in run {}", found.id));
        return problem(Some(&visitor), &e);
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::api::content_type(&file)),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(FILE_CSP),
    );
    response
}

/// A run's steps, timeline and decision as they happen (server-sent events); a run not
/// running here is answered with its decision at once.
async fn events(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath(run): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let resource = format!("/ui/runs/{run}/events");
    let visitor = match visitor(
        &state,
        &headers,
        remote,
        "watch a run",
        resource,
        Role::Viewer,
    ) {
        Ok(v) => v,
        Err(refused) => return refused.into_response(),
    };
    let found = match visible_run(&state, &visitor.caller, &run).await {
        Ok(found) => found,
        Err(e) => return problem(Some(&visitor), &e),
    };
    let said = |event: &crate::runs::LiveEvent| {
        Event::default()
            .event(event.name())
            .json_data(event)
            .unwrap_or_else(|_| Event::default().comment("unserialisable"))
    };
    let Some(receiver) = state.runs.subscribe(&found.id) else {
        let decision = match crate::judge::verdict(&state, &found.id).await {
            Ok(v) => crate::runs::LiveEvent::Decision {
                decision: v.decision,
                summary: v.reason,
            },
            Err(e) => return problem(Some(&visitor), &e),
        };
        let once = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(said(&decision))]);
        return Sse::new(once).into_response();
    };
    // Until the decision, or the run's end (its sender dropped).
    let stream =
        futures_util::stream::unfold((receiver, false), move |(mut rx, done)| async move {
            if done {
                return None;
            }
            use tokio::sync::broadcast::error::RecvError;
            let said = match rx.recv().await {
                Ok(event) => {
                    let last = matches!(event, crate::runs::LiveEvent::Decision { .. });
                    return Some((Ok::<_, std::convert::Infallible>(said(&event)), (rx, last)));
                }
                Err(RecvError::Lagged(missed)) => {
                    Event::default().comment(format!("{missed} event(s) missed"))
                }
                Err(RecvError::Closed) => return None,
            };
            Some((Ok(said), (rx, false)))
        });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn script() -> Response {
    let mut response = pages::SCRIPT.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    response
}

async fn style() -> Response {
    let mut response = pages::STYLE.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    response
}
