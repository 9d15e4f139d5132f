//! The control API: a small HTTP endpoint on loopback that lists, adds and removes faults
//! on running proxies — what a person does with `curl` during a manual gameday (gauntlet's
//! own steps use the library).
//!
//! Whoever can reach it can break a system, so it answers only a caller that shows its token
//! (`Authorization: Bearer TOKEN`), that names it by a loopback `Host` (no DNS rebinding),
//! and that brings no foreign `Origin` (no cross-site request from a browser). Slow clients
//! are timed out, and a fault added without a duration gets the server's default one, so a
//! forgotten proxy does not keep a fault for ever.
//!
//! ```text
//! GET    /proxies                       every proxy, its faults and counters
//! GET    /proxies/NAME                  one proxy
//! POST   /proxies/NAME/faults           add a fault (JSON, e.g. {"kind":"latency","latency_ms":200})
//! DELETE /proxies/NAME/faults/ID        remove one fault
//! DELETE /proxies/NAME/faults           remove every fault
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Fault, ProxySet, Shared};

/// How long a client may take to send a request's head, and a whole request.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
pub(super) const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Who may use a control endpoint, and for how long a fault lasts by default.
#[derive(Debug, Clone)]
pub struct ControlAccess {
    /// The bearer token every request must carry.
    pub token: String,
    /// The duration of a fault added without one (`None`: until removed).
    pub default_ttl: Option<std::time::Duration>,
}

impl ControlAccess {
    /// A fresh random token (hex, 32 bytes of entropy).
    pub fn generate(default_ttl: Option<std::time::Duration>) -> std::io::Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        Ok(Self {
            token: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            default_ttl,
        })
    }
}

/// A running control endpoint; dropping it stops it (the proxies keep running).
pub struct ControlServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl ControlServer {
    #[inline(never)]
    pub fn start(
        listen: SocketAddr,
        proxies: ProxySet,
        access: ControlAccess,
    ) -> crate::BoxFuture<'static, std::io::Result<Self>> {
        Box::pin(Self::listen(listen, proxies, access))
    }

    async fn listen(
        listen: SocketAddr,
        proxies: ProxySet,
        access: ControlAccess,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let access = Arc::new(access);
        let shutdown = CancellationToken::new();
        let service = hyper::service::service_fn(move |request| {
            let proxies = proxies.list();
            let access = access.clone();
            async move {
                let answer = match refused(&access, addr, &request) {
                    Some(refusal) => refusal,
                    None => {
                        tokio::time::timeout(REQUEST_TIMEOUT, handle(&proxies, &access, request))
                            .await
                            .unwrap_or_else(|_| {
                                error(StatusCode::REQUEST_TIMEOUT, "the request took too long")
                            })
                    }
                };
                Ok::<_, std::convert::Infallible>(answer)
            }
        });
        tokio::spawn(serve(listener, service, shutdown.clone()));
        Ok(Self { addr, shutdown })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Serves HTTP/1.1 on `listener` with `service` until `stop`: a client gets a few seconds to
/// send a request's head, and every connection ends with the server.
pub(super) async fn serve<S, B>(listener: TcpListener, service: S, stop: CancellationToken)
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
            _ = stop.cancelled() => return,
        };
        let (service, stop) = (service.clone(), stop.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut text = serde_json::to_vec_pretty(&body).unwrap_or_default();
    text.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    answer(status, serde_json::json!({ "error": message.into() }))
}

/// The refusal for a request that may not use the control API, if it may not: a missing or
/// wrong token (401), a `Host` that is not this loopback endpoint (DNS rebinding, 403), or an
/// `Origin` other than this endpoint (a browser's cross-site request, 403).
fn refused(
    access: &ControlAccess,
    addr: SocketAddr,
    request: &Request<Incoming>,
) -> Option<Response<Full<Bytes>>> {
    if let Some(refusal) = not_local(addr, request.headers()) {
        return Some(error(StatusCode::FORBIDDEN, refusal));
    }
    let header = |name: hyper::header::HeaderName| {
        request
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{fffd}").to_string())
    };
    let expected = format!("Bearer {}", access.token);
    let given = header(hyper::header::AUTHORIZATION).unwrap_or_default();
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "the control API needs its token: `Authorization: Bearer TOKEN` (printed when the proxy started)",
        ));
    }
    None
}

/// Why a request may not use an API on loopback `addr`, if it may not: a `Host` that is
/// not this endpoint (DNS rebinding), or an `Origin` other than this endpoint (a browser's
/// cross-site request).
pub(super) fn not_local(addr: SocketAddr, headers: &hyper::HeaderMap) -> Option<String> {
    let header = |name: hyper::header::HeaderName| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{fffd}").to_string())
    };
    let port = addr.port();
    let ours = |host: &str| {
        let host = host.trim().to_ascii_lowercase();
        [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
            addr.to_string(),
        ]
        .contains(&host)
    };
    match header(hyper::header::HOST) {
        Some(host) if ours(&host) => {}
        other => {
            return Some(format!(
                "Host `{}` is not this API: use http://127.0.0.1:{port}",
                other.unwrap_or_default()
            ));
        }
    }
    let origin = header(hyper::header::ORIGIN)?;
    let host = origin.strip_prefix("http://").unwrap_or("");
    (!ours(host)).then(|| {
        "requests from web pages are refused: this API takes no cross-site requests".to_string()
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

async fn handle(
    proxies: &[Arc<Shared>],
    access: &ControlAccess,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let find = |name: &str| proxies.iter().find(|p| p.name == name);
    match (&method, parts.as_slice()) {
        (&Method::GET, ["proxies"]) => answer(
            StatusCode::OK,
            serde_json::Value::Array(proxies.iter().map(|p| p.describe()).collect()),
        ),
        (_, ["proxies", name, rest @ ..]) => {
            let Some(proxy) = find(name) else {
                let known: Vec<&str> = proxies.iter().map(|p| p.name.as_str()).collect();
                return error(
                    StatusCode::NOT_FOUND,
                    format!("no proxy named `{name}`; proxies: {}", known.join(", ")),
                );
            };
            match (&method, rest) {
                (&Method::GET, []) => answer(StatusCode::OK, proxy.describe()),
                (&Method::GET, ["faults"]) => answer(
                    StatusCode::OK,
                    serde_json::to_value(proxy.list()).unwrap_or_default(),
                ),
                (&Method::POST, ["faults"]) => {
                    let body = match Limited::new(request.into_body(), 64 * 1024).collect().await {
                        Ok(body) => body.to_bytes(),
                        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
                    };
                    let fault = match Fault::from_json(&body) {
                        // A manual fault lasts the default time unless it says otherwise.
                        Ok(fault) => Fault {
                            duration: fault.duration.or(access.default_ttl),
                            ..fault
                        },
                        Err(e) => {
                            return error(
                                StatusCode::BAD_REQUEST,
                                format!(
                                    "not a fault: {e}; e.g. {{\"kind\": \"latency\", \"latency_ms\": 200, \"toxicity\": 0.5}}"
                                ),
                            );
                        }
                    };
                    match proxy.add(fault) {
                        Ok(id) => answer(
                            StatusCode::CREATED,
                            serde_json::to_value(proxy.list().into_iter().find(|f| f.id == id))
                                .unwrap_or_default(),
                        ),
                        Err(problem) => {
                            error(StatusCode::UNPROCESSABLE_ENTITY, problem.to_string())
                        }
                    }
                }
                (&Method::DELETE, ["faults"]) => answer(
                    StatusCode::OK,
                    serde_json::json!({ "removed": proxy.clear() }),
                ),
                (&Method::DELETE, ["faults", id]) => match id.parse::<u64>() {
                    Ok(id) if proxy.remove(id) => {
                        answer(StatusCode::OK, serde_json::json!({ "removed": 1 }))
                    }
                    _ => error(StatusCode::NOT_FOUND, format!("no active fault `{id}`")),
                },
                _ => error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("{method} {path} is not supported"),
                ),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "routes: GET /proxies, GET /proxies/NAME, POST|GET|DELETE /proxies/NAME/faults, DELETE /proxies/NAME/faults/ID",
        ),
    }
}
