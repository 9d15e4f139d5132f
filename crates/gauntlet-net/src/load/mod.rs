//! The load generator. Open model: a constant arrival rate where request i is due at
//! start + i/rate and its latency counts from that intended time, so a stalled server cannot
//! hide its stalls (no coordinated omission; the wrk2 approach). Closed model: N connections
//! as fast as they go. Each worker owns one keep-alive connection (HTTP/1.1 on a raw socket,
//! [`wire`], or HTTP/2 with prior knowledge through hyper), its own share of the schedule
//! and its own HDR histogram; the histograms are merged once at the end.

mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
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
    pub threads: Threads,
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

/// A latency histogram in microseconds at 3 significant digits, from 1 µs up to what it
/// records (at most the hour callers cap values at): it grows as slower answers come, so a
/// stage of millisecond answers holds a few dozen KiB, not the 184 KiB of the whole range.
pub fn latency_histogram() -> Histogram<u64> {
    let mut histogram =
        Histogram::new_with_bounds(1, 2, 3).expect("constant histogram bounds are valid");
    histogram.auto(true);
    histogram
}

struct Worker {
    histogram: Histogram<u64>,
    /// Counts by status code (100–599), a flat array: no map lookup per request.
    statuses: Vec<u64>,
    errors: BTreeMap<String, u64>,
    sent: u64,
}

/// One keep-alive connection of either protocol. HTTP/1.1 is read and written in the
/// worker's own task, so a request costs no task switch; HTTP/2 multiplexes and keeps a
/// task of its own.
enum Sender {
    H1(wire::Connection),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            // A peer's close shows on the next write or read: an error, then a new connection.
            Sender::H1(_) => false,
            Sender::H2(s) => s.is_closed(),
        }
    }
}

async fn connect(authority: &str, h2: bool) -> Result<Sender, String> {
    if !h2 {
        return wire::Connection::open(authority).await.map(Sender::H1);
    }
    let stream = TcpStream::connect(authority)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .map_err(|e| format!("h2 handshake: {e}"))?;
    tokio::spawn(connection);
    Ok(Sender::H2(sender))
}

/// Sends one HTTP/2 request and reads its body to the end.
async fn exchange_h2(
    sender: &mut http2::SendRequest<Full<Bytes>>,
    request: hyper::Request<Full<Bytes>>,
) -> Result<u16, String> {
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        frame.map_err(|e| format!("body: {e}"))?;
    }
    Ok(status)
}

/// Runs the plan until its duration, its request count, or `stop` ends it.
#[inline(never)]
pub fn run_load(plan: &LoadPlan, stop: Arc<AtomicBool>) -> crate::BoxFuture<'_, LoadReport> {
    Box::pin(drive(plan, stop))
}

async fn drive(plan: &LoadPlan, stop: Arc<AtomicBool>) -> LoadReport {
    let mut report = LoadReport {
        sent: 0,
        statuses: BTreeMap::new(),
        errors: BTreeMap::new(),
        elapsed: Duration::ZERO,
        latency_us: latency_histogram(),
    };
    let prepared: Result<Vec<Prepared>, String> = plan
        .mix
        .iter()
        .map(|w| prepare(&plan.authority, plan.http2, w))
        .collect();
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            report.errors.insert(e, 1);
            return report;
        }
    };
    let started = Instant::now();
    let job = Arc::new(Job {
        plan: plan.clone(),
        total_weight: plan.mix.iter().map(|w| u64::from(w.weight)).sum(),
        prepared,
        stop,
        started,
        deadline: started + plan.duration,
    });
    let workers = match plan.threads {
        Threads::Caller => run_workers(job, 0, 1).await,
        Threads::PerCore => per_core(job, &mut report.errors).await,
    };
    for worker in workers {
        report.sent += worker.sent;
        for (status, n) in worker.statuses.iter().enumerate().filter(|(_, n)| **n > 0) {
            *report.statuses.entry(status as u16).or_default() += n;
        }
        for (error, n) in worker.errors {
            *report.errors.entry(error).or_default() += n;
        }
        let _ = report.latency_us.add(&worker.histogram);
    }
    report.elapsed = started.elapsed();
    report
}

/// Where a load's connections run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Threads {
    /// One single-threaded event loop per core, each with its share of the connections (as
    /// wrk does): a connection's I/O task and its worker stay on one thread, so a request
    /// never crosses cores.
    #[default]
    PerCore,
    /// On the caller's runtime: a test on a paused clock drives the load in virtual time.
    Caller,
}

/// What every worker of one load shares.
struct Job {
    plan: LoadPlan,
    total_weight: u64,
    prepared: Vec<Prepared>,
    stop: Arc<AtomicBool>,
    started: Instant,
    deadline: Instant,
}

/// The connections spread over one thread per core (at most one per connection).
async fn per_core(job: Arc<Job>, errors: &mut BTreeMap<String, u64>) -> Vec<Worker> {
    let connections = job.plan.connections.max(1);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(connections);
    let mut finished = Vec::new();
    for t in 0..threads {
        let (tx, rx) = tokio::sync::oneshot::channel::<Vec<Worker>>();
        finished.push(rx);
        let job = job.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("gauntlet-load-{t}"))
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                let _ = tx.send(runtime.block_on(run_workers(job, t, threads)));
            });
        if let Err(e) = spawned {
            errors.insert(format!("cannot start a load thread: {e}"), 1);
        }
    }
    let mut workers = Vec::new();
    for rx in finished {
        match rx.await {
            Ok(done) => workers.extend(done),
            // Its connections' requests are not counted: the run says so instead.
            Err(_) => {
                *errors
                    .entry(
                        "a load thread ended without its results (no runtime, or it panicked)"
                            .into(),
                    )
                    .or_default() += 1
            }
        }
    }
    workers
}

/// Connections `first`, `first + step`, … on the current runtime, until each is done.
async fn run_workers(job: Arc<Job>, first: usize, step: usize) -> Vec<Worker> {
    let mut set = tokio::task::JoinSet::new();
    for k in (first..job.plan.connections.max(1)).step_by(step) {
        set.spawn(worker(job.clone(), k));
    }
    let mut done = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(worker) = joined {
            done.push(worker);
        }
    }
    done
}

/// Connection `k`: its share of the schedule, one request at a time.
async fn worker(job: Arc<Job>, k: usize) -> Worker {
    let (plan, connections) = (&job.plan, job.plan.connections.max(1));
    // A request still unanswered a little after the deadline is given up, so the run ends.
    let give_up = tokio::time::sleep_until((job.deadline + Duration::from_secs(2)).into());
    tokio::pin!(give_up);
    let mut me = Worker {
        histogram: latency_histogram(),
        statuses: vec![0; 600],
        errors: BTreeMap::new(),
        sent: 0,
    };
    let mut rng = SplitMix64::new(plan.seed ^ (k as u64).wrapping_mul(0x9E37_79B9));
    let mut sender: Option<Sender> = None;
    let per_worker = plan.max_requests / connections as u64
        + u64::from((k as u64) < plan.max_requests % connections as u64);
    for j in 0..per_worker {
        if job.stop.load(Ordering::Relaxed) {
            break;
        }
        let intended = match plan.model {
            Model::Open { rate } => {
                let i = k as u64 + j * connections as u64;
                let due = job.started + Duration::from_secs_f64(i as f64 / rate);
                if due >= job.deadline {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                due
            }
            Model::Closed => Instant::now(),
        };
        if intended >= job.deadline {
            break;
        }
        let Some(chosen) = pick(&job.prepared, rng.below(job.total_weight.max(1))) else {
            break;
        };
        me.sent += 1;
        let outcome = tokio::select! {
            outcome = send_one(&mut sender, &plan.authority, plan.http2, chosen) => outcome,
            _ = &mut give_up => Err("timed out".to_string()),
        };
        let micros = intended.elapsed().as_micros().max(1) as u64;
        match outcome {
            Ok(status) => {
                if let Some(count) = me.statuses.get_mut(usize::from(status)) {
                    *count += 1;
                }
                let _ = me.histogram.record(micros.min(3_600_000_000));
            }
            Err(e) => {
                *me.errors.entry(e).or_default() += 1;
                sender = None;
            }
        }
    }
    me
}

/// The request of the mix that a draw below the total weight falls on.
fn pick(prepared: &[Prepared], mut draw: u64) -> Option<&Prepared> {
    prepared.iter().find(|w| {
        let hit = draw < w.weight;
        draw = draw.saturating_sub(w.weight);
        hit
    })
}

/// A request of the mix, checked and composed once: HTTP/1.1 writes the same bytes each
/// time; HTTP/2 clones cheap parts instead of parsing the method, URI and headers again.
struct Prepared {
    method: hyper::Method,
    uri: hyper::Uri,
    headers: hyper::HeaderMap,
    body: Bytes,
    /// The whole HTTP/1.1 request (empty for HTTP/2).
    wire: Vec<u8>,
    weight: u64,
}

fn prepare(authority: &str, h2: bool, chosen: &WeightedRequest) -> Result<Prepared, String> {
    let out = &chosen.request;
    // HTTP/2 carries the authority in the URI (its pseudo-headers); HTTP/1.1 in Host.
    let uri = if h2 {
        format!("http://{authority}{}", out.path)
    } else {
        out.path.clone()
    };
    let (parts, ()) = crate::client::request_builder(out, &uri)
        .body(())
        .map_err(|e| format!("request {} {}: {e}", out.method, out.path))?
        .into_parts();
    let body = Bytes::from(out.body.clone().unwrap_or_default());
    let wire = match h2 {
        true => Vec::new(),
        false => wire::compose(&parts.method, &uri, authority, &parts.headers, &body),
    };
    Ok(Prepared {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
        wire,
        weight: u64::from(chosen.weight),
    })
}

async fn send_one(
    sender: &mut Option<Sender>,
    authority: &str,
    h2: bool,
    prepared: &Prepared,
) -> Result<u16, String> {
    if sender.as_ref().is_none_or(|s| s.is_closed()) {
        *sender = Some(connect(authority, h2).await?);
    }
    let Some(active) = sender.as_mut() else {
        return Err("no connection".into());
    };
    match active {
        Sender::H1(connection) => {
            let head_request = prepared.method == hyper::Method::HEAD;
            let answer = connection.exchange(&prepared.wire, head_request).await?;
            if !answer.reusable {
                *sender = None;
            }
            Ok(answer.status)
        }
        Sender::H2(s) => {
            let mut request = hyper::Request::new(Full::new(prepared.body.clone()));
            *request.method_mut() = prepared.method.clone();
            *request.uri_mut() = prepared.uri.clone();
            *request.headers_mut() = prepared.headers.clone();
            exchange_h2(s, request).await
        }
    }
}
