//! One proxied connection: admitted (or reset, or held by a partition), then relayed by
//! two pumps and a watchdog until it ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

use super::framing::RequestFramer;
use super::lanes;
use super::pump::{End, Pump};
use super::state::{Shared, View};
use super::{Direction, FaultKind, Protocol};
use crate::rng::SplitMix64;

pub(super) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shared.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                let conn = shared.counters.connections.fetch_add(1, Ordering::Relaxed) + 1;
                let shared = shared.clone();
                match lanes::next() {
                    // Moved to the lane's own event loop.
                    Some(lane) => {
                        if let Ok(stream) = stream.into_std() {
                            lane.spawn(async move {
                                if let Ok(stream) = TcpStream::from_std(stream) {
                                    open(&shared, stream, conn).await;
                                }
                            });
                        }
                    }
                    None => {
                        tokio::spawn(async move { open(&shared, stream, conn).await });
                    }
                }
            }
            // Out of descriptors or a connection reset before accept: keep serving the
            // others; a short pause keeps a full descriptor table from spinning the loop.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// One connection from accept to close, counted as open meanwhile; the proxy's shutdown
/// ends it.
async fn open(shared: &Shared, stream: TcpStream, conn: u64) {
    shared.counters.open.fetch_add(1, Ordering::Relaxed);
    tokio::select! {
        _ = serve(shared, stream, conn) => {}
        _ = shared.shutdown.cancelled() => {}
    }
    shared.counters.open.fetch_sub(1, Ordering::Relaxed);
}

pub(super) fn reset(stream: &TcpStream) {
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
    if let Some(f) = view.find(&list, FaultKind::resets_at_once, None, 0) {
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
            dropped: 0,
            aborting: None,
            limited: None,
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
            dropped: 0,
            aborting: None,
            limited: None,
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
                    match end {
                        End::Abort => break Ending::Reset,
                        End::Cut => break Ending::Closed,
                        End::Closed => {}
                    }
                }
                end = &mut downstream, if down_open => {
                    down_open = false;
                    match end {
                        End::Abort => break Ending::Reset,
                        End::Cut => break Ending::Closed,
                        End::Closed => {}
                    }
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
pub(super) struct Activity {
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
    pub(super) fn touch(&self) {
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
        if let Some(f) = view.find(&list, FaultKind::resets_at_once, None, 0) {
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
