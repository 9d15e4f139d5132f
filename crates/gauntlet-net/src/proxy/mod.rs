//! The fault proxy: a TCP proxy on loopback in front of a system, with faults that switch on
//! and off while connections stay up. Each fault has a toxicity (the share of connections —
//! or, for HTTP faults, of requests — it affects, chosen by a seeded hash so a run replays),
//! a direction, and an optional duration after which it removes itself.
//!
//! With no fault active a connection is two byte pumps and nothing else. Every pump reads
//! the fault list through a `watch` channel, so a change reaches open connections at their
//! next read (and connection-wide faults, a reset or a timeout, at once).
//!
//! In `http` mode the proxy also finds request boundaries (see [`framing`]) so it can answer
//! a share of requests itself (`http_abort`) or hold them back (`http_delay`), and it opens
//! the upstream connection on the client's first byte rather than on accept.

mod control;
mod framing;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use control::{ControlAccess, ControlServer};
use framing::{Event, RequestFramer};

use crate::rng::SplitMix64;
pub use gauntlet_spec::fault::{Direction, Fault, FaultKind};

/// An active fault with its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveFault {
    pub id: u64,
    #[serde(flatten)]
    pub fault: Fault,
}

/// `tcp`: bytes only, upstream connected on accept. `http`: HTTP/1.1 request faults too,
/// upstream connected on the client's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    #[default]
    Http,
}

/// Counters since the proxy started.
#[derive(Debug, Default, Serialize)]
pub struct ProxyStats {
    pub connections: u64,
    pub open: u64,
    pub requests: u64,
    pub aborted_requests: u64,
    pub resets: u64,
    pub bytes_upstream: u64,
    pub bytes_downstream: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    open: AtomicU64,
    requests: AtomicU64,
    aborted_requests: AtomicU64,
    resets: AtomicU64,
    bytes_upstream: AtomicU64,
    bytes_downstream: AtomicU64,
}

type FaultList = Arc<Vec<ActiveFault>>;

pub(crate) struct Shared {
    name: String,
    upstream: String,
    protocol: Protocol,
    seed: u64,
    faults: watch::Sender<FaultList>,
    /// Bumped after every change of `faults`.
    generation: Arc<AtomicU64>,
    next_id: AtomicU64,
    counters: Counters,
    /// How many times each fault (by id) acted on a connection or request: what tells a
    /// fault that took effect from one that nothing passed through.
    acted: std::sync::Mutex<std::collections::BTreeMap<u64, u64>>,
    shutdown: CancellationToken,
}

/// A running proxy; dropping it closes the listener and every connection.
pub struct FaultProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

/// Why a proxy refused a fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultRefused {
    /// Settings a fault cannot have (a toxicity outside 0–1, a zero rate).
    #[error("{0}")]
    Invalid(String),
    /// An HTTP fault on a proxy that passes plain TCP.
    #[error(
        "{fault} acts on HTTP requests; proxy `{proxy}` passes plain TCP (protocol: http is needed)"
    )]
    NeedsHttp { fault: String, proxy: String },
}

impl FaultProxy {
    /// Listens on `listen` (port 0: a free one) and forwards to `upstream` (`host:port`).
    pub async fn start(
        name: &str,
        listen: SocketAddr,
        upstream: &str,
        protocol: Protocol,
        seed: u64,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            name: name.to_string(),
            upstream: upstream.to_string(),
            protocol,
            seed,
            faults: watch::channel(Arc::new(Vec::new())).0,
            generation: Arc::new(AtomicU64::new(0)),
            next_id: AtomicU64::new(1),
            counters: Counters::default(),
            acted: Default::default(),
            shutdown: CancellationToken::new(),
        });
        tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Self { shared, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn upstream(&self) -> &str {
        &self.shared.upstream
    }

    pub fn protocol(&self) -> Protocol {
        self.shared.protocol
    }

    /// Applies a fault at once; returns its id.
    pub fn add(&self, fault: Fault) -> Result<u64, FaultRefused> {
        self.shared.add(fault)
    }

    /// Removes a fault; false if it was not active.
    pub fn remove(&self, id: u64) -> bool {
        self.shared.remove(id)
    }

    /// Removes every fault; returns how many were active.
    pub fn clear(&self) -> usize {
        self.shared.clear()
    }

    pub fn faults(&self) -> Vec<ActiveFault> {
        self.shared.faults.borrow().as_ref().clone()
    }

    pub fn stats(&self) -> ProxyStats {
        self.shared.stats()
    }

    /// How many times fault `id` has acted (on a connection, or for HTTP faults a request),
    /// also after it was removed: zero means nothing it could act on passed through.
    pub fn acted(&self, id: u64) -> u64 {
        self.shared.acted_count(id)
    }

    /// A handle the control API shares.
    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }
}

impl Shared {
    pub(crate) fn describe(&self) -> serde_json::Value {
        let acted = self.acted.lock().unwrap_or_else(|e| e.into_inner()).clone();
        serde_json::json!({
            "name": self.name,
            "upstream": self.upstream,
            "protocol": self.protocol,
            "faults": self.list(),
            "acted": acted,
            "stats": self.stats(),
        })
    }

    /// Counts one action of fault `id`.
    fn act(&self, id: u64) {
        *self
            .acted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id)
            .or_default() += 1;
    }

    fn acted_count(&self, id: u64) -> u64 {
        self.acted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn list(&self) -> Vec<ActiveFault> {
        self.faults.borrow().as_ref().clone()
    }

    pub(crate) fn add(self: &Shared, fault: Fault) -> Result<u64, FaultRefused> {
        if let Some(problem) = fault.problem() {
            return Err(FaultRefused::Invalid(problem));
        }
        if fault.kind.per_request() && self.protocol == Protocol::Tcp {
            return Err(FaultRefused::NeedsHttp {
                fault: fault.kind.name().to_string(),
                proxy: self.name.clone(),
            });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let duration = fault.duration;
        self.faults.send_modify(|list| {
            let mut next = list.as_ref().clone();
            next.push(ActiveFault { id, fault });
            *list = Arc::new(next);
            bump(&self.generation);
        });
        if let Some(duration) = duration {
            // A dropped proxy cancels the expiry: nothing is left to remove.
            let sender = self.faults.clone();
            let generation = self.generation.clone();
            let shutdown = self.shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(duration) => {}
                    _ = shutdown.cancelled() => return,
                }
                remove_from(&sender, &generation, id);
            });
        }
        Ok(id)
    }

    pub(crate) fn remove(&self, id: u64) -> bool {
        remove_from(&self.faults, &self.generation, id)
    }

    pub(crate) fn clear(&self) -> usize {
        let mut removed = 0;
        self.faults.send_if_modified(|list| {
            removed = list.len();
            *list = Arc::new(Vec::new());
            bump(&self.generation);
            removed > 0
        });
        removed
    }

    fn stats(&self) -> ProxyStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProxyStats {
            connections: get(&c.connections),
            open: get(&c.open),
            requests: get(&c.requests),
            aborted_requests: get(&c.aborted_requests),
            resets: get(&c.resets),
            bytes_upstream: get(&c.bytes_upstream),
            bytes_downstream: get(&c.bytes_downstream),
        }
    }

    /// Whether `fault` touches connection `conn` (and request `request`, for HTTP faults).
    fn hits(&self, fault: &ActiveFault, conn: u64, request: u64) -> bool {
        if fault.fault.toxicity >= 1.0 {
            return true;
        }
        let mixed = self.seed
            ^ fault.id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ conn.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            ^ request.wrapping_mul(0x1656_67B1_9E37_79F9);
        SplitMix64::new(mixed).next_f64() < fault.fault.toxicity
    }
}

fn remove_from(sender: &watch::Sender<FaultList>, generation: &AtomicU64, id: u64) -> bool {
    sender.send_if_modified(|list| {
        if !list.iter().any(|f| f.id == id) {
            return false;
        }
        *list = Arc::new(list.iter().filter(|f| f.id != id).cloned().collect());
        bump(generation);
        true
    })
}

/// Marks a change of the fault list; called inside the watch's write lock, before its
/// waiters are woken. A waiter woken by the change then always sees the new generation (had
/// it been bumped after the send, a woken watchdog could keep the old list and, its change
/// already consumed, sleep through a reset), and a reader that sees the new generation
/// before the write ends waits on the lock for the new list.
fn bump(generation: &AtomicU64) {
    generation.fetch_add(1, Ordering::Release);
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shared.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                let conn = shared.counters.connections.fetch_add(1, Ordering::Relaxed) + 1;
                let shared = shared.clone();
                tokio::spawn(async move {
                    shared.counters.open.fetch_add(1, Ordering::Relaxed);
                    let shutdown = shared.shutdown.clone();
                    tokio::select! {
                        _ = serve(&shared, stream, conn) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    shared.counters.open.fetch_sub(1, Ordering::Relaxed);
                });
            }
            // Out of descriptors or a connection reset before accept: keep serving the
            // others; a short pause keeps a full descriptor table from spinning the loop.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// One connection's view of the faults: the pumps and the watchdog each hold one. The
/// list is re-read only when its generation moved, so a pump with nothing to do pays one
/// atomic load per read.
struct View<'a> {
    shared: &'a Shared,
    rx: watch::Receiver<FaultList>,
    faults: FaultList,
    generation: u64,
    conn: u64,
}

impl<'a> View<'a> {
    fn new(shared: &'a Shared, conn: u64) -> Self {
        let mut rx = shared.faults.subscribe();
        let generation = shared.generation.load(Ordering::Acquire);
        let faults = rx.borrow_and_update().clone();
        Self {
            shared,
            rx,
            faults,
            generation,
            conn,
        }
    }

    /// The current list (cheap when nothing changed).
    fn current(&mut self) -> FaultList {
        let generation = self.shared.generation.load(Ordering::Acquire);
        if generation != self.generation {
            self.generation = generation;
            self.faults = self.rx.borrow_and_update().clone();
        }
        self.faults.clone()
    }

    /// Waits for the next change of the list and takes it (Err: the proxy is gone).
    async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        self.rx.changed().await?;
        self.generation = self.shared.generation.load(Ordering::Acquire);
        self.faults = self.rx.borrow_and_update().clone();
        Ok(())
    }

    /// Holds for `delay`, or less: until fault `id` is removed (or expires), or the proxy
    /// goes. What a latency, bandwidth or delay fault holds is released with it.
    async fn hold(&mut self, id: u64, delay: Duration) {
        let until = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => return,
                changed = self.changed() => {
                    if changed.is_err() || !self.faults.iter().any(|f| f.id == id) {
                        return;
                    }
                }
            }
        }
    }

    fn is_clear(&self) -> bool {
        self.shared.generation.load(Ordering::Acquire) == self.generation && self.faults.is_empty()
    }

    /// The first active fault that matches and touches this connection.
    fn find<'f>(
        &self,
        list: &'f [ActiveFault],
        want: impl Fn(&FaultKind) -> bool,
        direction: Option<Direction>,
        request: u64,
    ) -> Option<&'f ActiveFault> {
        list.iter().find(|f| {
            want(&f.fault.kind)
                && direction.is_none_or(|d| f.fault.direction.covers(d))
                && self.shared.hits(f, self.conn, request)
        })
    }

    /// The partition (blackhole or timeout) holding this connection, if one is.
    fn paused(&self, list: &[ActiveFault]) -> Option<u64> {
        self.find(
            list,
            |k| matches!(k, FaultKind::Blackhole | FaultKind::Timeout { .. }),
            None,
            0,
        )
        .map(|f| f.id)
    }
}

fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

async fn serve(shared: &Shared, down: TcpStream, conn: u64) {
    let _ = down.set_nodelay(true);
    if !admit(shared, &down, conn).await {
        return;
    }
    if shared.protocol == Protocol::Http {
        // Opened on the first byte: an idle client holds no upstream connection.
        if !matches!(down.peek(&mut [0u8; 1]).await, Ok(1..)) {
            return;
        }
    }
    let Ok(up) = TcpStream::connect(shared.upstream.as_str()).await else {
        // The upstream is down: the client sees its connection reset, as it would directly.
        reset(&down);
        return;
    };
    let _ = up.set_nodelay(true);
    let ending = relay(shared, &down, &up, conn).await;
    match ending {
        Ending::Reset => {
            reset(&down);
            reset(&up);
        }
        Ending::Closed => {
            for stream in [&down, &up] {
                let _ = socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// Before a byte passes: a reset fault resets the connection at once, and a connection
/// accepted during a partition waits for it to heal (or for a timeout fault to end it).
/// Whether the connection may go on.
async fn admit(shared: &Shared, down: &TcpStream, conn: u64) -> bool {
    let mut view = View::new(shared, conn);
    let list = view.current();
    if let Some(f) = view.find(&list, |k| *k == FaultKind::Reset, None, 0) {
        shared.act(f.id);
        shared.counters.resets.fetch_add(1, Ordering::Relaxed);
        reset(down);
        return false;
    }
    // A connection accepted during a partition waits for it to heal (or to time out).
    let accepted = Instant::now();
    let mut held_by = None;
    loop {
        let list = view.current();
        let Some(partition) = view.paused(&list) else {
            break;
        };
        if held_by != Some(partition) {
            shared.act(partition);
            held_by = Some(partition);
        }
        let deadline = list
            .iter()
            .filter(|f| shared.hits(f, conn, 0))
            .find_map(|f| match f.fault.kind {
                FaultKind::Timeout { after } => Some(accepted + after),
                _ => None,
            });
        let expired = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = view.changed() => if changed.is_err() { return false },
            _ = expired => return false,
        }
    }
    true
}

/// The two pumps and the watchdog, until the connection ends, and how it ends.
async fn relay(shared: &Shared, down: &TcpStream, up: &TcpStream, conn: u64) -> Ending {
    let framer = match shared.protocol {
        Protocol::Http => RequestFramer::new(),
        Protocol::Tcp => RequestFramer::opaque(),
    };
    let activity = Activity::default();
    {
        let upstream = Pump {
            shared,
            view: View::new(shared, conn),
            direction: Direction::Upstream,
            from: down,
            to: up,
            framer,
            rng: SplitMix64::new(shared.seed ^ conn.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            activity: &activity,
        }
        .run();
        let downstream = Pump {
            shared,
            view: View::new(shared, conn),
            direction: Direction::Downstream,
            from: up,
            to: down,
            framer: RequestFramer::opaque(),
            rng: SplitMix64::new(!shared.seed ^ conn.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            activity: &activity,
        }
        .run();
        let watchdog = watchdog(View::new(shared, conn));
        tokio::pin!(upstream, downstream, watchdog);
        let (mut up_open, mut down_open) = (true, true);
        // Each direction ends on its own (a half close passes on); an error in either, or
        // a connection-wide fault, ends both with a reset. Once one side has closed, the
        // other may finish what it was sending, but not sit idle: a peer that neither sends
        // nor closes for LINGER is closed (no socket waits in CLOSE-WAIT behind the proxy).
        // Over HTTP a server that closes ends the exchange at once.
        loop {
            if !up_open && !down_open {
                break Ending::Closed;
            }
            let lingering = async {
                if up_open && down_open {
                    std::future::pending::<()>().await;
                }
                activity.idle_for(LINGER).await;
            };
            tokio::select! {
                end = &mut upstream, if up_open => {
                    up_open = false;
                    if end == End::Abort { break Ending::Reset }
                }
                end = &mut downstream, if down_open => {
                    down_open = false;
                    if end == End::Abort { break Ending::Reset }
                    if shared.protocol == Protocol::Http { break Ending::Closed }
                }
                () = &mut watchdog => break Ending::Reset,
                () = lingering => break Ending::Closed,
            }
        }
    }
}

/// How long a half-closed connection may sit without a byte in the direction still open.
const LINGER: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Both sides done (or one closed and the other went quiet): close normally.
    Closed,
    /// An error or a connection-wide fault: reset both sides.
    Reset,
}

/// When a connection last carried a byte, either way.
struct Activity {
    since: Instant,
    last_ms: AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            since: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

impl Activity {
    fn touch(&self) {
        let ms = self.since.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Returns once nothing has moved for `quiet`.
    async fn idle_for(&self, quiet: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let wake = self.since + last + quiet;
            if Instant::now() >= wake {
                return;
            }
            tokio::time::sleep_until(wake.into()).await;
        }
    }
}

/// Applies connection-wide faults to an open connection as they appear: a reset at once,
/// a timeout after its delay. Returns when the connection must end.
async fn watchdog(mut view: View<'_>) {
    let mut close_at: Option<tokio::time::Instant> = None;
    loop {
        let list = view.current();
        if let Some(f) = view.find(&list, |k| *k == FaultKind::Reset, None, 0) {
            view.shared.act(f.id);
            view.shared.counters.resets.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let timeout = view
            .find(&list, |k| matches!(k, FaultKind::Timeout { .. }), None, 0)
            .and_then(|f| match f.fault.kind {
                FaultKind::Timeout { after } => Some((f.id, after)),
                _ => None,
            });
        close_at = match (timeout, close_at) {
            (Some(_), Some(at)) => Some(at),
            (Some((id, after)), None) => {
                view.shared.act(id);
                Some(tokio::time::Instant::now() + after)
            }
            (None, _) => None,
        };
        let expired = async {
            match close_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = view.changed() => if changed.is_err() { return std::future::pending().await },
            () = expired => return,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The source closed; the close was passed on.
    Closed,
    /// An error or a fault: end the whole connection.
    Abort,
}

struct Pump<'a> {
    shared: &'a Shared,
    view: View<'a>,
    direction: Direction,
    from: &'a TcpStream,
    to: &'a TcpStream,
    framer: RequestFramer,
    rng: SplitMix64,
    activity: &'a Activity,
}

const CHUNK: usize = 16 * 1024;

impl Pump<'_> {
    async fn run(mut self) -> End {
        let mut buf: Vec<u8> = Vec::new();
        let mut dropped: u64 = 0;
        // The request being answered by the proxy itself, if any.
        let mut aborting: Option<u16> = None;
        let counter = match self.direction {
            Direction::Upstream => &self.shared.counters.bytes_upstream,
            _ => &self.shared.counters.bytes_downstream,
        };
        loop {
            if self.from.readable().await.is_err() {
                return End::Abort;
            }
            // Paused by a partition: the bytes wait in the kernel, as they would on a wire.
            let mut held_by = None;
            loop {
                let list = self.view.current();
                let Some(partition) = self.view.paused(&list) else {
                    break;
                };
                if held_by != Some(partition) {
                    self.shared.act(partition);
                    held_by = Some(partition);
                }
                if self.view.changed().await.is_err() {
                    return End::Abort;
                }
            }
            if buf.is_empty() {
                buf.resize(CHUNK, 0);
            }
            let n = match self.from.try_read(&mut buf) {
                Ok(0) => return self.close().await,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return End::Abort,
            };
            counter.fetch_add(n as u64, Ordering::Relaxed);
            self.activity.touch();
            if self.view.is_clear() && self.framer.is_opaque() {
                if write_all(self.to, &buf[..n]).await.is_err() {
                    return End::Abort;
                }
                continue;
            }
            let list = self.view.current();
            // A reset that came in while these bytes were on their way: they go no further,
            // whether or not the watchdog has run yet.
            if let Some(f) = self.view.find(&list, |k| *k == FaultKind::Reset, None, 0) {
                self.shared.act(f.id);
                self.shared.counters.resets.fetch_add(1, Ordering::Relaxed);
                return End::Abort;
            }
            let mut data = &buf[..n];
            // Bytes dropped from the start of the stream.
            if let Some(f) = self.view.find(
                &list,
                |k| matches!(k, FaultKind::DropBytes { .. }),
                Some(self.direction),
                0,
            ) && let FaultKind::DropBytes { bytes } = f.fault.kind
                && dropped < bytes
            {
                let skip = (bytes - dropped).min(data.len() as u64);
                self.shared.act(f.id);
                dropped += skip;
                data = &data[skip as usize..];
            }
            if let Some(f) = self.view.find(
                &list,
                |k| matches!(k, FaultKind::Latency { .. }),
                Some(self.direction),
                0,
            ) && let FaultKind::Latency { latency, jitter } = f.fault.kind
            {
                let (id, delay) = (f.id, self.jittered(latency, jitter));
                self.shared.act(id);
                self.view.hold(id, delay).await;
            }
            if self.framer.is_opaque() && aborting.is_none() {
                if write_all(self.to, data).await.is_err() {
                    return End::Abort;
                }
            } else if !self.framed(data, &list, &mut aborting).await {
                return End::Abort;
            }
            if let Some(f) = self.view.find(
                &list,
                |k| matches!(k, FaultKind::Bandwidth { .. }),
                Some(self.direction),
                0,
            ) && let FaultKind::Bandwidth { bytes_per_second } = f.fault.kind
            {
                let seconds = data.len() as f64 / bytes_per_second as f64;
                let id = f.id;
                self.shared.act(id);
                self.view.hold(id, Duration::from_secs_f64(seconds)).await;
            }
        }
    }

    /// Passes `data` on request by request, acting on HTTP faults. False: end the connection.
    async fn framed(
        &mut self,
        mut data: &[u8],
        list: &[ActiveFault],
        aborting: &mut Option<u16>,
    ) -> bool {
        while !data.is_empty() || self.framer.has_pending_end() {
            let (used, event) = self.framer.step(data);
            let (piece, rest) = data.split_at(used);
            data = rest;
            match event {
                Event::RequestStart => {
                    self.shared
                        .counters
                        .requests
                        .fetch_add(1, Ordering::Relaxed);
                    let request = self.framer.requests + 1;
                    let find = |want: fn(&FaultKind) -> bool| {
                        list.iter()
                            .find(|f| {
                                want(&f.fault.kind) && self.shared.hits(f, self.view.conn, request)
                            })
                            .map(|f| (f.id, f.fault.kind.clone()))
                    };
                    if let Some((id, FaultKind::HttpAbort { status })) =
                        find(|k| matches!(k, FaultKind::HttpAbort { .. }))
                    {
                        self.shared.act(id);
                        *aborting = Some(status);
                    } else if let Some((id, FaultKind::HttpDelay { delay })) =
                        find(|k| matches!(k, FaultKind::HttpDelay { .. }))
                    {
                        self.shared.act(id);
                        self.view.hold(id, delay).await;
                    }
                }
                Event::Bytes if aborting.is_none() => {
                    if write_all(self.to, piece).await.is_err() {
                        return false;
                    }
                }
                Event::Bytes => {}
                Event::RequestEnd => {
                    if let Some(status) = aborting.take() {
                        self.shared
                            .counters
                            .aborted_requests
                            .fetch_add(1, Ordering::Relaxed);
                        if write_all(self.from, &synthetic_response(status, false))
                            .await
                            .is_err()
                        {
                            return false;
                        }
                    }
                }
                Event::Opaque => {
                    // An aborted request whose end cannot be found: answer it and close.
                    if let Some(status) = aborting.take() {
                        let _ = write_all(self.from, &synthetic_response(status, true)).await;
                        return false;
                    }
                }
            }
        }
        true
    }

    fn jittered(&mut self, latency: Duration, jitter: Duration) -> Duration {
        if jitter.is_zero() {
            return latency;
        }
        let offset = (self.rng.next_f64() * 2.0 - 1.0) * jitter.as_secs_f64();
        Duration::from_secs_f64((latency.as_secs_f64() + offset).max(0.0))
    }

    /// The source closed its side: pass the close on (after a slow-close delay).
    async fn close(&mut self) -> End {
        let list = self.view.current();
        if let Some(f) = self.view.find(
            &list,
            |k| matches!(k, FaultKind::SlowClose { .. }),
            Some(self.direction),
            0,
        ) && let FaultKind::SlowClose { delay } = f.fault.kind
        {
            let id = f.id;
            self.shared.act(id);
            self.view.hold(id, delay).await;
        }
        let _ = socket2::SockRef::from(self.to).shutdown(std::net::Shutdown::Write);
        // The other direction's linger counts from this close.
        self.activity.touch();
        End::Closed
    }
}

fn synthetic_response(status: u16, close: bool) -> Vec<u8> {
    let reason = hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Injected");
    let body = format!("{status} {reason} (injected by the gauntlet fault proxy)\n");
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nx-gauntlet-fault: http_abort\r\n",
        body.len()
    );
    if status == 429 || status == 503 {
        head.push_str("retry-after: 1\r\n");
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    head.push_str(&body);
    head.into_bytes()
}

async fn write_all(stream: &TcpStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
