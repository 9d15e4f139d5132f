//! One HTTP exchange at a time, with a timeout and a cap on the body kept.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Bodies beyond this are cut; probes only need the start of an answer as evidence.
const BODY_LIMIT: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("invalid request {0}: {1}")]
    InvalidRequest(String, String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("reading the response failed: {0}")]
    Body(String),
}

/// A request to send: the base URL of a target, a raw path (sent exactly as written, so
/// traversal forms reach the server unnormalised), headers and an optional body.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub base: String,
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
}

impl Outgoing {
    pub fn get(base: &str, path: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            method: "GET".into(),
            path: path.to_string(),
            headers: BTreeMap::new(),
            body: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    pub elapsed: Duration,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The request `out` describes, addressed to `uri`: its method and headers, and a JSON
/// content type when it has a body and names none.
pub(crate) fn request_builder(out: &Outgoing, uri: &str) -> hyper::http::request::Builder {
    let mut builder = Request::builder().method(out.method.as_str()).uri(uri);
    for (name, value) in &out.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if out.body.is_some()
        && !out
            .headers
            .keys()
            .any(|h| h.eq_ignore_ascii_case("content-type"))
    {
        builder = builder.header("content-type", "application/json");
    }
    builder
}

/// A keep-alive HTTP/1.1 client; cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    body_limit: usize,
}

impl HttpClient {
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Self {
            inner,
            timeout,
            body_limit: BODY_LIMIT,
        }
    }

    /// Keeps bodies up to `limit` bytes (an API client needs whole answers); a longer body
    /// is replaced by a note saying so.
    pub fn with_body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    /// Sends one request and keeps its answer (see [`crate::BoxFuture`] for the box).
    #[inline(never)]
    pub fn send<'a>(
        &'a self,
        out: &'a Outgoing,
    ) -> crate::BoxFuture<'a, Result<Response, NetError>> {
        Box::pin(self.exchange(out))
    }

    async fn exchange(&self, out: &Outgoing) -> Result<Response, NetError> {
        let url = format!("{}{}", out.base.trim_end_matches('/'), out.path);
        let invalid = |e: &dyn std::fmt::Display| {
            NetError::InvalidRequest(format!("{} {url}", out.method), e.to_string())
        };
        let body = Full::new(Bytes::from(out.body.clone().unwrap_or_default()));
        let request = request_builder(out, &url)
            .body(body)
            .map_err(|e| invalid(&e))?;
        let started = Instant::now();
        let exchange = async {
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|e| NetError::Connect(error_chain(&e)))?;
            let status = response.status().as_u16();
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, self.body_limit)
                .collect()
                .await
                .map(|collected| collected.to_bytes())
                .unwrap_or_else(|_| {
                    Bytes::from(format!(
                        "<body larger than {} bytes, not kept>",
                        self.body_limit
                    ))
                });
            Ok::<_, NetError>(Response {
                status,
                headers: parts.headers,
                body,
                elapsed: started.elapsed(),
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| NetError::Timeout(self.timeout))?
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
