//! The control API: a small HTTP endpoint on loopback that lists, adds and removes faults
//! on running proxies — what a step does through the library, and what a person does with
//! `curl` during a manual gameday.
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

use super::{Fault, FaultProxy, Shared};

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
    pub async fn start(listen: SocketAddr, proxies: &[&FaultProxy]) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let proxies: Arc<Vec<Arc<Shared>>> = Arc::new(proxies.iter().map(|p| p.shared()).collect());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => continue,
                    },
                    _ = stop.cancelled() => return,
                };
                let proxies = proxies.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let proxies = proxies.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(&proxies, request).await) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = connection => {}
                        _ = stop.cancelled() => {}
                    }
                });
            }
        });
        Ok(Self { addr, shutdown })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
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

async fn handle(proxies: &[Arc<Shared>], request: Request<Incoming>) -> Response<Full<Bytes>> {
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
                        Ok(fault) => fault,
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
                        Err(problem) => error(StatusCode::UNPROCESSABLE_ENTITY, problem),
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
