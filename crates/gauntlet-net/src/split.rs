//! The traffic split: a proxy on loopback in front of a baseline and a candidate. It sends
//! a share of requests to the candidate (sticky per client when asked), or in shadow mode
//! serves every request from the baseline and mirrors read-only ones to the candidate,
//! discarding its answers. Every request's outcome is recorded per arm for the judges.
//! A regression can be injected into the candidate arm (for the rollback rehearsal).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gauntlet_stats::{Arm, Observation};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::rng::SplitMix64;

/// A regression injected into the candidate arm by the proxy itself.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ArmFault {
    /// Share of candidate requests answered 500 without reaching the candidate.
    pub error_rate: f64,
    pub added_latency: Duration,
}

struct State {
    baseline: String,
    candidate: String,
    weight_bits: AtomicU64,
    shadow: AtomicBool,
    sticky_header: Option<String>,
    mirror: Option<Vec<String>>,
    fault: Mutex<Option<ArmFault>>,
    rng: Mutex<SplitMix64>,
    client: Client<HttpConnector, Full<Bytes>>,
    observations: mpsc::UnboundedSender<Observation>,
    started: Instant,
    failures: Mutex<HashMap<(Arm, String, String, String), FailedRequests>>,
}

/// Failed requests through the split that share an arm, a method, a route and a cause.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedRequests {
    pub arm: Arm,
    pub method: String,
    /// The path with identifiers folded (`/items/{id}`), without the query.
    pub route: String,
    /// `status 503`, or the error class when no answer came (`timeout`, `connection refused`,
    /// `connection reset`, `transport error`), or `injected by gauntlet`.
    pub cause: String,
    pub count: u64,
    /// The first such failure: status line or error text.
    pub example: String,
}

/// A path with identifiers folded so that one route collects its failures: segments that
/// are numbers, UUIDs or long hex strings become `{id}`.
pub fn route_of(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let folded: Vec<&str> = path
        .split('/')
        .map(|segment| {
            let digits = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
            let hex =
                segment.len() >= 16 && segment.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
            if digits || hex { "{id}" } else { segment }
        })
        .collect();
    let route = folded.join("/");
    if route.is_empty() { "/".into() } else { route }
}

/// The class of a transport error, from its text.
fn error_class(error: &str) -> &'static str {
    let e = error.to_ascii_lowercase();
    if e.contains("timed out") || e.contains("timeout") {
        "timeout"
    } else if e.contains("refused") {
        "connection refused"
    } else if e.contains("reset") || e.contains("broken pipe") || e.contains("closed") {
        "connection reset"
    } else {
        "transport error"
    }
}

/// A running split; dropping it stops the proxy.
pub struct TrafficSplit {
    state: Arc<State>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TrafficSplit {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const BODY_LIMIT: usize = 1024 * 1024;

impl TrafficSplit {
    /// Starts the proxy on a free loopback port with all traffic on the baseline. In shadow
    /// mode only GET and HEAD requests are mirrored, and with `mirror` only those whose path
    /// starts with one of its prefixes.
    #[inline(never)]
    pub fn start<'a>(
        baseline: &'a str,
        candidate: &'a str,
        sticky_header: Option<String>,
        mirror: Option<Vec<String>>,
        seed: u64,
    ) -> crate::BoxFuture<'a, std::io::Result<(Self, mpsc::UnboundedReceiver<Observation>)>> {
        Box::pin(Self::listen(
            baseline,
            candidate,
            sticky_header,
            mirror,
            seed,
        ))
    }

    async fn listen(
        baseline: &str,
        candidate: &str,
        sticky_header: Option<String>,
        mirror: Option<Vec<String>>,
        seed: u64,
    ) -> std::io::Result<(Self, mpsc::UnboundedReceiver<Observation>)> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let state = Arc::new(State {
            baseline: baseline.trim_end_matches('/').to_string(),
            candidate: candidate.trim_end_matches('/').to_string(),
            weight_bits: AtomicU64::new(0f64.to_bits()),
            shadow: AtomicBool::new(false),
            sticky_header,
            mirror,
            fault: Mutex::new(None),
            rng: Mutex::new(SplitMix64::new(seed)),
            client: Client::builder(TokioExecutor::new()).build(connector),
            observations: tx,
            started: Instant::now(),
            failures: Mutex::new(HashMap::new()),
        });
        let serving = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(&state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok((Self { state, addr, task }, rx))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The failed requests so far, grouped by arm, method, route and cause; most first.
    pub fn failures(&self) -> Vec<FailedRequests> {
        let mut all: Vec<FailedRequests> = self
            .state
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| (&a.route, &a.cause).cmp(&(&b.route, &b.cause)))
        });
        all
    }

    /// The candidate's share of traffic, 0 to 1; leaves shadow mode.
    pub fn set_weight(&self, weight: f64) {
        self.state.shadow.store(false, Ordering::SeqCst);
        self.state
            .weight_bits
            .store(weight.clamp(0.0, 1.0).to_bits(), Ordering::SeqCst);
    }

    pub fn weight(&self) -> f64 {
        f64::from_bits(self.state.weight_bits.load(Ordering::SeqCst))
    }

    /// Serve from the baseline and mirror read-only requests to the candidate.
    pub fn set_shadow(&self) {
        self.state
            .weight_bits
            .store(0f64.to_bits(), Ordering::SeqCst);
        self.state.shadow.store(true, Ordering::SeqCst);
    }

    pub fn set_fault(&self, fault: Option<ArmFault>) {
        *self.state.fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }
}

fn choose(state: &State, request: &Request<Incoming>) -> Arm {
    let weight = f64::from_bits(state.weight_bits.load(Ordering::SeqCst));
    let draw = match state
        .sticky_header
        .as_deref()
        .and_then(|h| request.headers().get(h))
        .map(|v| v.as_bytes())
    {
        // Sticky: the same client always lands on the same arm for a given weight.
        Some(client) => {
            let mut hash = SplitMix64::new(client.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
            }));
            hash.next_f64()
        }
        None => state
            .rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_f64(),
    };
    if draw < weight {
        Arm::Candidate
    } else {
        Arm::Baseline
    }
}

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

async fn handle(state: &Arc<State>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let arm = if state.shadow.load(Ordering::SeqCst) {
        Arm::Baseline
    } else {
        choose(state, &request)
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, BODY_LIMIT)
        .collect()
        .await
        .map(|b| b.to_bytes())
    else {
        return reply(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
    };
    let read_only = parts.method == hyper::Method::GET || parts.method == hyper::Method::HEAD;
    let mirrored = state.mirror.as_ref().is_none_or(|prefixes| {
        prefixes
            .iter()
            .any(|prefix| parts.uri.path().starts_with(prefix.as_str()))
    });
    if state.shadow.load(Ordering::SeqCst) && read_only && mirrored {
        return shadow(state, &parts, body).await;
    }
    forward(state, arm, &parts, body).await
}

/// A mirrored request: both arms are sent from this one task, started together, in an
/// order drawn per request, so each arm's latency is measured the same way (a mirror
/// spawned as a task of its own was timed by another schedule, and looked faster). The
/// client gets the baseline's answer once both are in.
async fn shadow(
    state: &Arc<State>,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let candidate_first = state
        .rng
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .next_f64()
        < 0.5;
    let baseline = forward(state, Arm::Baseline, parts, body.clone());
    let candidate = forward(state, Arm::Candidate, parts, body);
    if candidate_first {
        tokio::join!(candidate, baseline).1
    } else {
        tokio::join!(baseline, candidate).0
    }
}

/// Sends the request to `arm`, records the outcome, and returns the answer.
async fn forward(
    state: &State,
    arm: Arm,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let began = Instant::now();
    let result = match injected(state, arm).await {
        Some(failure) => Err(failure),
        None => send(state, arm, parts, body).await,
    };
    let latency_ms = began.elapsed().as_secs_f64() * 1000.0;
    let (ok, response, failed) = outcome(result);
    if let Some((cause, example)) = failed {
        count_failure(state, arm, parts, cause, example);
    }
    let _ = state.observations.send(Observation {
        arm,
        ok,
        latency_ms,
        t_ms: state.started.elapsed().as_millis() as u64,
    });
    response
}

/// The candidate arm's injected regression: its added latency is waited out, and its error
/// rate drawn.
async fn injected(state: &State, arm: Arm) -> Option<Failure> {
    if arm != Arm::Candidate {
        return None;
    }
    let fault = (*state.fault.lock().unwrap_or_else(|e| e.into_inner()))?;
    if !fault.added_latency.is_zero() {
        tokio::time::sleep(fault.added_latency).await;
    }
    let draw = state
        .rng
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .next_f64();
    (draw < fault.error_rate).then_some(Failure::Injected)
}

/// The request as the arm's upstream gets it, and its whole answer (bounded to 10 s).
async fn send(
    state: &State,
    arm: Arm,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, Failure> {
    let base = if arm == Arm::Candidate {
        &state.candidate
    } else {
        &state.baseline
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut builder = Request::builder()
        .method(parts.method.clone())
        .uri(format!("{base}{path}"));
    for (name, value) in &parts.headers {
        if name != hyper::header::HOST {
            builder = builder.header(name, value);
        }
    }
    let transport = |e: String| Failure::Transport(e);
    let upstream = builder
        .body(Full::new(body))
        .map_err(|e| transport(e.to_string()))?;
    let response = tokio::time::timeout(Duration::from_secs(10), state.client.request(upstream))
        .await
        .map_err(|_| transport("upstream timed out after 10s".into()))?
        .map_err(|e| transport(error_chain(&e)))?;
    let (head, incoming) = response.into_parts();
    let bytes = incoming
        .collect()
        .await
        .map_err(|e| transport(error_chain(&e)))?
        .to_bytes();
    Ok(Response::from_parts(head, Full::new(bytes)))
}

/// Whether the arm answered well, what the client gets, and for a failure its cause and an
/// example.
fn outcome(
    result: Result<Response<Full<Bytes>>, Failure>,
) -> (bool, Response<Full<Bytes>>, Option<(String, String)>) {
    match result {
        Ok(response) if response.status().as_u16() < 500 => (true, response, None),
        Ok(response) => {
            let status = response.status();
            let cause = format!("status {}", status.as_u16());
            let example = format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            );
            (false, response, Some((cause, example)))
        }
        Err(Failure::Injected) => (
            false,
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "error injected by gauntlet\n",
            ),
            Some((
                "injected by gauntlet".into(),
                "500 injected by the split".into(),
            )),
        ),
        Err(Failure::Transport(e)) => (
            false,
            reply(StatusCode::BAD_GATEWAY, "upstream failed\n"),
            Some((error_class(&e).to_string(), e)),
        ),
    }
}

/// Counts a failed request by arm, method, route and cause, for the failure taxonomy.
fn count_failure(
    state: &State,
    arm: Arm,
    parts: &hyper::http::request::Parts,
    cause: String,
    example: String,
) {
    let route = route_of(parts.uri.path());
    let method = parts.method.to_string();
    let key = (arm, method.clone(), route.clone(), cause.clone());
    state
        .failures
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_insert_with(|| FailedRequests {
            arm,
            method,
            route,
            cause,
            count: 0,
            example,
        })
        .count += 1;
}

/// Why a forwarded request produced no answer of the arm's own.
enum Failure {
    Injected,
    Transport(String),
}

/// An error with its sources, so the class of the cause (refused, reset) is visible.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
