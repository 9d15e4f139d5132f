//! Toxiproxy's HTTP API (v2) over gauntlet's fault proxies, so that scripts and test suites
//! written for Toxiproxy drive gauntlet unchanged: they create proxies, add, update and
//! remove toxics, disable and enable proxies, and reset.
//!
//! ```text
//! GET    /version                          {"version": ...}
//! GET    /proxies                          every proxy by name, with its toxics
//! POST   /proxies                          create one ({name, listen, upstream, enabled})
//! POST   /populate                         create or replace several (a JSON array)
//! POST   /reset                            enable every proxy, remove every toxic
//! GET    /proxies/NAME                     one proxy
//! POST   /proxies/NAME (or PATCH)          change listen, upstream, enabled
//! DELETE /proxies/NAME                     remove it (its connections close)
//! GET    /proxies/NAME/toxics              its toxics
//! POST   /proxies/NAME/toxics              add one ({name, type, stream, toxicity, attributes})
//! GET    /proxies/NAME/toxics/TOXIC        one toxic
//! POST   /proxies/NAME/toxics/TOXIC        change its attributes or toxicity (or PATCH)
//! DELETE /proxies/NAME/toxics/TOXIC        remove it
//! ```
//!
//! Each toxic becomes one gauntlet fault (see [`toxic_fault`] for the mapping). Toxiproxy's
//! clients send no token, so this API takes none; instead it listens on loopback only, opens
//! its proxies on loopback only (an unspecified address such as `0.0.0.0` means loopback
//! here, any other address is refused), and refuses a foreign `Host` (DNS rebinding) or
//! `Origin` (a browser's cross-site request). Its proxies pass plain TCP, as Toxiproxy's
//! do: a server that speaks first (a database) works through them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::control::{REQUEST_TIMEOUT, not_local, serve};
use gauntlet_spec::toxiproxy::{shown_attributes, toxic_fault as spec_toxic_fault};

use super::{Direction, Fault, FaultProxy, Protocol, ProxySet};

/// How the proxies this API creates behave.
#[derive(Debug, Clone, Default)]
pub struct ToxiproxyOptions {
    /// Seed for which connections a partial toxic touches.
    pub seed: u64,
    /// How long a toxic stays in (`None`: until removed, as in Toxiproxy).
    pub toxic_ttl: Option<Duration>,
}

/// A running Toxiproxy API; dropping it stops the API and every proxy it created.
pub struct ToxiproxyApi {
    addr: SocketAddr,
    shutdown: CancellationToken,
}

impl Drop for ToxiproxyApi {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl ToxiproxyApi {
    /// Listens on `listen`, which must be a loopback address. `proxies` is the set gauntlet's
    /// own control API serves (proxies created here join it); a proxy already in it is not
    /// visible here, and its name cannot be taken.
    #[inline(never)]
    pub fn start(
        listen: SocketAddr,
        proxies: ProxySet,
        options: ToxiproxyOptions,
    ) -> crate::BoxFuture<'static, std::io::Result<Self>> {
        Box::pin(Self::listen(listen, proxies, options))
    }

    async fn listen(
        listen: SocketAddr,
        proxies: ProxySet,
        options: ToxiproxyOptions,
    ) -> std::io::Result<Self> {
        if !listen.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "the Toxiproxy API takes no token, so it listens on loopback only, not {listen}"
                ),
            ));
        }
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let state = Arc::new(Api {
            set: proxies,
            options,
            table: tokio::sync::Mutex::new(BTreeMap::new()),
        });
        let app = router(state.clone()).layer(axum::middleware::from_fn(
            move |request: Request, next: axum::middleware::Next| async move {
                if let Some(refusal) = not_local(addr, request.headers()) {
                    return ApiError::new(StatusCode::FORBIDDEN, refusal).into_response();
                }
                tokio::time::timeout(REQUEST_TIMEOUT, next.run(request))
                    .await
                    .unwrap_or_else(|_| {
                        ApiError::new(StatusCode::REQUEST_TIMEOUT, "the request took too long")
                            .into_response()
                    })
            },
        ));
        let service = hyper_util::service::TowerToHyperService::new(app);
        let stop = shutdown.clone();
        tokio::spawn(async move {
            serve(listener, service, stop.clone()).await;
            // The API is gone: so are the proxies it made, and their faults.
            let mut table = state.table.lock().await;
            for (name, _) in std::mem::take(&mut *table) {
                state.set.remove(&name);
            }
        });
        Ok(Self { addr, shutdown })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

struct Api {
    set: ProxySet,
    options: ToxiproxyOptions,
    table: tokio::sync::Mutex<BTreeMap<String, Entry>>,
}

/// One proxy as Toxiproxy describes it; `live` while it is enabled.
struct Entry {
    listen: SocketAddr,
    upstream: String,
    live: Option<FaultProxy>,
    toxics: Vec<Toxic>,
}

/// One toxic as a client wrote it, the fault it is, and that fault's id while it is in.
#[derive(Clone)]
struct Toxic {
    name: String,
    kind: String,
    stream: Direction,
    toxicity: f64,
    attributes: Map<String, Value>,
    fault: Fault,
    id: Option<u64>,
}

/// An answer in Toxiproxy's error shape: `{"error": ..., "status": ...}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.message, "status": self.status.as_u16()});
        (self.status, Json(body)).into_response()
    }
}

type Answer = Result<Response, ApiError>;

fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/reset", post(reset))
        .route("/populate", post(populate))
        .route("/proxies", get(proxy_index).post(proxy_create))
        .route(
            "/proxies/{proxy}",
            get(proxy_show)
                .post(proxy_update)
                .patch(proxy_update)
                .delete(proxy_delete),
        )
        .route(
            "/proxies/{proxy}/toxics",
            get(toxic_index).post(toxic_create),
        )
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(toxic_show)
                .post(toxic_update)
                .patch(toxic_update)
                .delete(toxic_delete),
        )
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not a Toxiproxy API route: /version, /reset, /populate, /proxies[/NAME[/toxics[/TOXIC]]]",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this route does not take that method",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(api)
}

async fn version() -> Response {
    let version = format!("gauntlet {} (Toxiproxy API 2)", env!("CARGO_PKG_VERSION"));
    Json(json!({ "version": version })).into_response()
}

async fn proxy_index(State(api): State<Arc<Api>>) -> Response {
    let mut table = api.table.lock().await;
    let all: Map<String, Value> = table
        .iter_mut()
        .map(|(name, entry)| (name.clone(), entry.describe(name)))
        .collect();
    Json(Value::Object(all)).into_response()
}

/// A proxy as a client sends it; what it leaves out keeps its current value.
#[derive(Debug, Default, Deserialize)]
struct ProxyBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    listen: Option<String>,
    #[serde(default)]
    upstream: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad(format!("bad request body: {e}")))
}

async fn proxy_create(State(api): State<Arc<Api>>, bytes: Bytes) -> Answer {
    let input: ProxyBody = body(&bytes)?;
    let (name, listen, upstream) = input.required(None)?;
    let mut table = api.table.lock().await;
    if table.contains_key(&name) || api.set.find(&name).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("proxy already exists: `{name}`"),
        ));
    }
    let mut entry = Entry::new(listen, upstream);
    if input.enabled.unwrap_or(true) {
        entry.enable(&api, &name).await?;
    }
    let shown = entry.describe(&name);
    table.insert(name, entry);
    Ok((StatusCode::CREATED, Json(shown)).into_response())
}

async fn populate(State(api): State<Arc<Api>>, bytes: Bytes) -> Answer {
    let inputs: Vec<ProxyBody> = body(&bytes)?;
    // Every proxy is checked before any is made: a bad one changes nothing.
    let mut wanted = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        wanted.push((input.required(Some(i + 1))?, input.enabled.unwrap_or(true)));
    }
    let mut table = api.table.lock().await;
    let mut made = Vec::new();
    for ((name, listen, upstream), enabled) in wanted {
        if !table.contains_key(&name) && api.set.find(&name).is_some() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("proxy already exists: `{name}` (gauntlet's own)"),
            ));
        }
        let same = table
            .get(&name)
            .is_some_and(|e| e.upstream == upstream && e.listen == listen);
        if !same {
            if let Some(mut old) = table.remove(&name) {
                old.disable(&api, &name).await;
            }
            let mut entry = Entry::new(listen, upstream);
            if enabled {
                entry.enable(&api, &name).await?;
            }
            table.insert(name.clone(), entry);
        }
        made.push(name);
    }
    let proxies: Vec<Value> = made
        .iter()
        .filter_map(|name| Some(table.get_mut(name)?.describe(name)))
        .collect();
    Ok((StatusCode::CREATED, Json(json!({ "proxies": proxies }))).into_response())
}

async fn reset(State(api): State<Arc<Api>>) -> Answer {
    let mut table = api.table.lock().await;
    for (name, entry) in table.iter_mut() {
        entry.toxics.clear();
        match &entry.live {
            Some(live) => {
                live.clear();
            }
            None => entry.enable(&api, name).await?,
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn proxy_show(State(api): State<Arc<Api>>, Path(name): Path<String>) -> Answer {
    let mut table = api.table.lock().await;
    let entry = found(&mut table, &name)?;
    Ok(Json(entry.describe(&name)).into_response())
}

async fn proxy_update(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Answer {
    let input: ProxyBody = body(&bytes)?;
    let mut table = api.table.lock().await;
    let entry = found(&mut table, &name)?;
    let listen = match &input.listen {
        Some(listen) => loopback_listen(listen)?,
        None => entry.listen,
    };
    let upstream = match &input.upstream {
        Some(upstream) => checked_upstream(upstream)?,
        None => entry.upstream.clone(),
    };
    let enabled = input.enabled.unwrap_or(entry.live.is_some());
    if listen != entry.listen || upstream != entry.upstream {
        entry.disable(&api, &name).await;
        (entry.listen, entry.upstream) = (listen, upstream);
    }
    match (enabled, entry.live.is_some()) {
        (true, false) => entry.enable(&api, &name).await?,
        (false, true) => entry.disable(&api, &name).await,
        _ => {}
    }
    Ok(Json(entry.describe(&name)).into_response())
}

async fn proxy_delete(State(api): State<Arc<Api>>, Path(name): Path<String>) -> Answer {
    let mut table = api.table.lock().await;
    let mut entry = table.remove(&name).ok_or_else(|| proxy_not_found(&name))?;
    entry.disable(&api, &name).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn toxic_index(State(api): State<Arc<Api>>, Path(name): Path<String>) -> Answer {
    let mut table = api.table.lock().await;
    let entry = found(&mut table, &name)?;
    entry.tidy();
    let toxics: Vec<Value> = entry.toxics.iter().map(Toxic::describe).collect();
    Ok(Json(toxics).into_response())
}

/// A toxic as a client sends it.
#[derive(Debug, Deserialize)]
struct ToxicBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    toxicity: Option<f64>,
    #[serde(default)]
    attributes: Option<Map<String, Value>>,
}

async fn toxic_create(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Answer {
    let input: ToxicBody = body(&bytes)?;
    let kind = input.kind.clone().unwrap_or_default();
    let stream = parse_stream(input.stream.as_deref().unwrap_or("downstream"))?;
    let attributes = input.attributes.clone().unwrap_or_default();
    let toxicity = input.toxicity.unwrap_or(1.0);
    let fault = toxic_fault(&kind, stream, toxicity, &attributes)?;
    let mut table = api.table.lock().await;
    let entry = found(&mut table, &name)?;
    entry.tidy();
    let toxic_name = input
        .name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("{kind}_{}", stream_name(stream)));
    if entry.toxics.iter().any(|t| t.name == toxic_name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("toxic already exists: `{toxic_name}`"),
        ));
    }
    let mut toxic = Toxic::new(toxic_name, kind, fault, api.options.toxic_ttl);
    entry.apply(&mut toxic)?;
    let shown = toxic.describe();
    entry.toxics.push(toxic);
    Ok(Json(shown).into_response())
}

async fn toxic_show(
    State(api): State<Arc<Api>>,
    Path((name, toxic)): Path<(String, String)>,
) -> Answer {
    let mut table = api.table.lock().await;
    let entry = found(&mut table, &name)?;
    let index = entry.toxic(&toxic)?;
    Ok(Json(entry.toxics[index].describe()).into_response())
}

async fn toxic_update(
    State(api): State<Arc<Api>>,
    Path((name, toxic)): Path<(String, String)>,
    bytes: Bytes,
) -> Answer {
    let input: ToxicBody = body(&bytes)?;
    let mut table = api.table.lock().await;
    let entry = found(&mut table, &name)?;
    let index = entry.toxic(&toxic)?;
    let old = entry.toxics[index].clone();
    // What the update leaves out keeps its value; the name, type and stream stay.
    let mut attributes = old.attributes.clone();
    attributes.extend(input.attributes.unwrap_or_default());
    let toxicity = input.toxicity.unwrap_or(old.toxicity);
    let fault = toxic_fault(&old.kind, old.stream, toxicity, &attributes)?;
    let mut new = Toxic::new(
        old.name.clone(),
        old.kind.clone(),
        fault,
        api.options.toxic_ttl,
    );
    entry.withdraw(&old);
    entry.apply(&mut new)?;
    let shown = new.describe();
    entry.toxics[index] = new;
    Ok(Json(shown).into_response())
}

async fn toxic_delete(
    State(api): State<Arc<Api>>,
    Path((name, toxic)): Path<(String, String)>,
) -> Answer {
    let mut table = api.table.lock().await;
    let entry = found(&mut table, &name)?;
    let index = entry.toxic(&toxic)?;
    let removed = entry.toxics.remove(index);
    entry.withdraw(&removed);
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn found<'t>(
    table: &'t mut BTreeMap<String, Entry>,
    name: &str,
) -> Result<&'t mut Entry, ApiError> {
    table.get_mut(name).ok_or_else(|| proxy_not_found(name))
}

fn proxy_not_found(name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("proxy not found: `{name}`"))
}

impl ProxyBody {
    /// Name, listen address and upstream of a proxy to create (`at`: its place in a
    /// populate list).
    fn required(&self, at: Option<usize>) -> Result<(String, SocketAddr, String), ApiError> {
        let place = at.map(|i| format!(" at proxy {i}")).unwrap_or_default();
        let missing =
            |field: &str| ApiError::bad(format!("missing required field: {field}{place}"));
        let name = self
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| missing("name"))?;
        let upstream = self
            .upstream
            .as_deref()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| missing("upstream"))?;
        let listen = loopback_listen(self.listen.as_deref().unwrap_or(""))?;
        Ok((name, listen, checked_upstream(upstream)?))
    }
}

/// Where a proxy listens: `host:port` with a loopback host, or an unspecified one (`0.0.0.0`,
/// `[::]`, none) which means loopback here. Port 0 or none: a free one.
fn loopback_listen(listen: &str) -> Result<SocketAddr, ApiError> {
    let (host, port) = listen.rsplit_once(':').unwrap_or((listen, "0"));
    let port: u16 = if port.is_empty() {
        0
    } else {
        port.parse()
            .map_err(|_| ApiError::bad(format!("listen `{listen}`: `{port}` is not a port")))?
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host {
        "" | "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        host => host.parse::<IpAddr>().map_err(|_| {
            ApiError::bad(format!(
                "listen `{listen}`: `{host}` is not an IP address (use 127.0.0.1, localhost or 0.0.0.0)"
            ))
        })?,
    };
    let ip = match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip if ip.is_loopback() => ip,
        ip => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "listen `{listen}`: gauntlet's Toxiproxy API opens proxies on loopback only, not on {ip} (it takes no token)"
                ),
            ));
        }
    };
    Ok(SocketAddr::new(ip, port))
}

fn checked_upstream(upstream: &str) -> Result<String, ApiError> {
    match upstream.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(upstream.to_string())
        }
        _ => Err(ApiError::bad(format!(
            "upstream `{upstream}` is not host:port (e.g. 127.0.0.1:6379)"
        ))),
    }
}

fn parse_stream(stream: &str) -> Result<Direction, ApiError> {
    match stream.to_ascii_lowercase().as_str() {
        "upstream" => Ok(Direction::Upstream),
        "downstream" => Ok(Direction::Downstream),
        _ => Err(ApiError::bad(format!(
            "stream was invalid, can be either upstream or downstream (got `{stream}`)"
        ))),
    }
}

fn stream_name(stream: Direction) -> &'static str {
    match stream {
        Direction::Upstream => "upstream",
        _ => "downstream",
    }
}

/// The fault a toxic is, or a 400 saying why it cannot be one.
fn toxic_fault(
    kind: &str,
    stream: Direction,
    toxicity: f64,
    attributes: &Map<String, Value>,
) -> Result<Fault, ApiError> {
    spec_toxic_fault(kind, stream, toxicity, attributes).map_err(ApiError::bad)
}

impl Toxic {
    /// A toxic for `fault` (made by [`toxic_fault`]), lasting `ttl` once applied.
    fn new(name: String, kind: String, fault: Fault, ttl: Option<Duration>) -> Self {
        Self {
            name,
            kind,
            stream: fault.direction,
            toxicity: fault.toxicity,
            attributes: shown_attributes(&fault),
            fault: Fault {
                duration: ttl,
                ..fault
            },
            id: None,
        }
    }

    fn describe(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "stream": stream_name(self.stream),
            "toxicity": self.toxicity,
            "attributes": self.attributes,
        })
    }
}

impl Entry {
    fn new(listen: SocketAddr, upstream: String) -> Self {
        Self {
            listen,
            upstream,
            live: None,
            toxics: Vec::new(),
        }
    }

    fn describe(&mut self, name: &str) -> Value {
        self.tidy();
        json!({
            "name": name,
            "listen": self.listen.to_string(),
            "upstream": self.upstream,
            "enabled": self.live.is_some(),
            "toxics": self.toxics.iter().map(Toxic::describe).collect::<Vec<_>>(),
        })
    }

    /// Forgets toxics whose fault is no longer in: expired (`--fault-ttl`), or removed
    /// through gauntlet's control API. A listing never shows a toxic that does not act.
    fn tidy(&mut self) {
        if let Some(live) = &self.live {
            let active: Vec<u64> = live.faults().iter().map(|f| f.id).collect();
            self.toxics
                .retain(|t| t.id.is_some_and(|id| active.contains(&id)));
        }
    }

    fn toxic(&mut self, name: &str) -> Result<usize, ApiError> {
        self.tidy();
        self.toxics
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, format!("toxic not found: `{name}`"))
            })
    }

    /// Puts `toxic`'s fault into the running proxy (a disabled one takes it when enabled).
    fn apply(&self, toxic: &mut Toxic) -> Result<(), ApiError> {
        if let Some(live) = &self.live {
            let id = live
                .add(toxic.fault.clone())
                .map_err(|e| ApiError::bad(e.to_string()))?;
            toxic.id = Some(id);
        }
        Ok(())
    }

    fn withdraw(&self, toxic: &Toxic) {
        if let (Some(live), Some(id)) = (&self.live, toxic.id) {
            live.remove(id);
        }
    }

    /// Opens the proxy on its listen address with its toxics in.
    async fn enable(&mut self, api: &Api, name: &str) -> Result<(), ApiError> {
        let proxy = FaultProxy::start(
            name,
            self.listen,
            &self.upstream,
            Protocol::Tcp,
            api.options.seed,
        )
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::CONFLICT,
                format!("proxy `{name}` cannot listen on {}: {e}", self.listen),
            )
        })?;
        self.listen = proxy.addr();
        api.set.put(&proxy);
        self.live = Some(proxy);
        // Each was accepted by a proxy like this one when it was added.
        let mut toxics = std::mem::take(&mut self.toxics);
        toxics.retain_mut(|toxic| self.apply(toxic).is_ok());
        self.toxics = toxics;
        Ok(())
    }

    /// Closes the proxy and every connection through it, and returns once its port refuses
    /// connections; its toxics wait for `enable`.
    async fn disable(&mut self, api: &Api, name: &str) {
        if let Some(live) = self.live.take() {
            api.set.remove(name);
            live.stop().await;
        }
        for toxic in &mut self.toxics {
            toxic.id = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_listen_on_loopback_only() {
        assert_eq!(
            loopback_listen("0.0.0.0:0").unwrap().to_string(),
            "127.0.0.1:0"
        );
        assert_eq!(
            loopback_listen("[::]:8000").unwrap().to_string(),
            "[::1]:8000"
        );
        assert_eq!(
            loopback_listen("localhost:26379").unwrap().to_string(),
            "127.0.0.1:26379"
        );
        assert_eq!(loopback_listen("").unwrap().to_string(), "127.0.0.1:0");
        assert_eq!(
            loopback_listen(":9000").unwrap().to_string(),
            "127.0.0.1:9000"
        );
        assert_eq!(
            loopback_listen("10.1.2.3:80").unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert!(loopback_listen("db.example:80").is_err());
        assert!(loopback_listen("127.0.0.1:99999").is_err());
        assert!(checked_upstream("127.0.0.1").is_err());
        assert!(checked_upstream("redis:6379").is_ok());
    }
}
