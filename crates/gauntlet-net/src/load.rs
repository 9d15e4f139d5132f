//! The load generator. Open model: a constant arrival rate where request i is due at
//! start + i/rate and its latency counts from that intended time, so a stalled server cannot
//! hide its stalls (no coordinated omission; the wrk2 approach). Closed model: N connections
//! as fast as they go. Each worker owns one keep-alive connection (HTTP/1.1, or HTTP/2 with
//! prior knowledge), its own share
//! of the schedule and its own HDR histogram; the histograms are merged once at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::rng::SplitMix64;
use crate::traffic::WeightedRequest;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Model {
    /// Requests per second, spread over the connections.
    Open { rate: f64 },
    /// Every connection sends its next request as soon as the last one is answered.
    Closed,
}

#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// `host:port` of the server (loopback in tests and benchmarks).
    pub authority: String,
    pub mix: Vec<WeightedRequest>,
    pub model: Model,
    pub connections: usize,
    pub duration: Duration,
    /// Stop after this many requests, whichever bound comes first.
    pub max_requests: u64,
    pub seed: u64,
    /// HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    pub http2: bool,
}

#[derive(Debug, Clone)]
pub struct LoadReport {
    pub sent: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: BTreeMap<String, u64>,
    pub elapsed: Duration,
    /// Latency in microseconds (from the intended send time in the open model).
    pub latency_us: Histogram<u64>,
}

impl LoadReport {
    pub fn answered(&self) -> u64 {
        self.statuses.values().sum()
    }
    pub fn achieved_rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    pub fn percentile_ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 1 hour at 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant histogram bounds are valid")
}

struct Worker {
    histogram: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    errors: BTreeMap<String, u64>,
    sent: u64,
}

/// One keep-alive connection of either protocol.
enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }
}

async fn connect(authority: &str, h2: bool) -> Result<Sender, String> {
    let stream = TcpStream::connect(authority)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    if h2 {
        let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| format!("h2 handshake: {e}"))?;
        tokio::spawn(connection);
        return Ok(Sender::H2(sender));
    }
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    Ok(Sender::H1(sender))
}

/// Runs the plan until its duration, its request count, or `stop` ends it.
pub async fn run_load(plan: &LoadPlan, stop: Arc<AtomicBool>) -> LoadReport {
    let connections = plan.connections.max(1);
    let total_weight: u64 = plan.mix.iter().map(|w| u64::from(w.weight)).sum();
    let started = Instant::now();
    let deadline = started + plan.duration;
    let mut workers = tokio::task::JoinSet::new();
    for k in 0..connections {
        let plan = plan.clone();
        let stop = stop.clone();
        workers.spawn(async move {
            let mut me = Worker {
                histogram: new_histogram(),
                statuses: BTreeMap::new(),
                errors: BTreeMap::new(),
                sent: 0,
            };
            let mut rng = SplitMix64::new(plan.seed ^ (k as u64).wrapping_mul(0x9E37_79B9));
            let mut sender: Option<Sender> = None;
            let per_worker = plan.max_requests / connections as u64
                + u64::from((k as u64) < plan.max_requests % connections as u64);
            for j in 0..per_worker {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let intended = match plan.model {
                    Model::Open { rate } => {
                        let i = k as u64 + j * connections as u64;
                        let due = started + Duration::from_secs_f64(i as f64 / rate);
                        if due >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    Model::Closed => Instant::now(),
                };
                if intended >= deadline || Instant::now() >= deadline {
                    break;
                }
                let mut pick = rng.below(total_weight.max(1));
                let Some(chosen) = plan.mix.iter().find(|w| {
                    let hit = pick < u64::from(w.weight);
                    pick = pick.saturating_sub(u64::from(w.weight));
                    hit
                }) else {
                    break;
                };
                me.sent += 1;
                let outcome =
                    send_one(&mut sender, &plan.authority, plan.http2, chosen, deadline).await;
                let micros = intended.elapsed().as_micros().max(1) as u64;
                match outcome {
                    Ok(status) => {
                        *me.statuses.entry(status).or_default() += 1;
                        let _ = me.histogram.record(micros.min(3_600_000_000));
                    }
                    Err(e) => {
                        *me.errors.entry(e).or_default() += 1;
                        sender = None;
                    }
                }
            }
            me
        });
    }
    let mut report = LoadReport {
        sent: 0,
        statuses: BTreeMap::new(),
        errors: BTreeMap::new(),
        elapsed: Duration::ZERO,
        latency_us: new_histogram(),
    };
    while let Some(joined) = workers.join_next().await {
        let Ok(worker) = joined else { continue };
        report.sent += worker.sent;
        for (status, n) in worker.statuses {
            *report.statuses.entry(status).or_default() += n;
        }
        for (error, n) in worker.errors {
            *report.errors.entry(error).or_default() += n;
        }
        let _ = report.latency_us.add(&worker.histogram);
    }
    report.elapsed = started.elapsed();
    report
}

async fn send_one(
    sender: &mut Option<Sender>,
    authority: &str,
    h2: bool,
    chosen: &WeightedRequest,
    deadline: Instant,
) -> Result<u16, String> {
    if sender.as_ref().is_none_or(|s| s.is_closed()) {
        *sender = Some(connect(authority, h2).await?);
    }
    let Some(active) = sender.as_mut() else {
        return Err("no connection".into());
    };
    let out = &chosen.request;
    // HTTP/2 carries the authority in the URI (its pseudo-headers); HTTP/1.1 in Host.
    let uri = if h2 {
        format!("http://{authority}{}", out.path)
    } else {
        out.path.clone()
    };
    let mut builder = hyper::Request::builder()
        .method(out.method.as_str())
        .uri(uri);
    if !h2 {
        builder = builder.header(hyper::header::HOST, authority);
    }
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
    let request = builder
        .body(Full::new(Bytes::from(out.body.clone().unwrap_or_default())))
        .map_err(|e| format!("request: {e}"))?;
    let exchange = async {
        let response = match active {
            Sender::H1(s) => {
                s.ready().await.map_err(|e| format!("connection: {e}"))?;
                s.send_request(request).await
            }
            Sender::H2(s) => {
                s.ready().await.map_err(|e| format!("connection: {e}"))?;
                s.send_request(request).await
            }
        }
        .map_err(|e| format!("send: {e}"))?;
        let status = response.status().as_u16();
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?;
        Ok(status)
    };
    // A request still unanswered a little after the deadline is given up, so the run ends.
    let limit = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(2);
    tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| "timed out".to_string())?
}
