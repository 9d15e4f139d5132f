//! The HTTP plumbing both roles share: accept loop, request reading with a size cap,
//! responses, and exit on SIGTERM or SIGINT.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub type Reply = Response<Full<Bytes>>;

pub struct ServedRequest {
    pub method: hyper::Method,
    /// The path exactly as sent, before any normalisation.
    pub raw_path: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    pub peer: SocketAddr,
}

pub fn reply(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
    let mut response = reply(status, value.to_string());
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A `/metrics` answer: the text, labelled as OpenMetrics (what `prometheus-client` writes).
pub fn openmetrics(text: String) -> Reply {
    let mut response = reply(StatusCode::OK, text);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    response
}

/// The HTTP client a demo service calls its dependencies with.
pub type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

/// A client that gives up connecting after 500 ms (a dead dependency is seen quickly).
pub fn client() -> Client {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_connect_timeout(Some(std::time::Duration::from_millis(500)));
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector)
}

const MAX_BODY: usize = 1024 * 1024;

/// Serves `handler` on `port` of 127.0.0.1 until SIGTERM or SIGINT.
pub async fn serve<H, F>(port: u16, handler: Arc<H>) -> std::io::Result<()>
where
    H: Fn(ServedRequest) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => continue,
            },
            _ = term.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let handler = handler.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let body = match Limited::new(body, MAX_BODY).collect().await {
                        Ok(collected) => collected.to_bytes(),
                        Err(_) => {
                            return Ok::<_, Infallible>(reply(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                "body too large\n",
                            ));
                        }
                    };
                    let incoming = ServedRequest {
                        method: parts.method,
                        raw_path: parts.uri.path().to_string(),
                        headers: parts.headers,
                        body,
                        peer,
                    };
                    Ok(handler(incoming).await)
                }
            });
            // HTTP/1.1 and HTTP/2 (prior knowledge) on the same port.
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
        });
    }
}
