//! The proxy's state: the fault list every connection watches, the counters, and one
//! connection's view of the list.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{ActiveFault, Direction, Fault, FaultKind, FaultRefused, Protocol, ProxyStats};
use crate::rng::SplitMix64;

#[derive(Default)]
pub(super) struct Counters {
    pub(super) connections: AtomicU64,
    pub(super) open: AtomicU64,
    pub(super) requests: AtomicU64,
    pub(super) aborted_requests: AtomicU64,
    pub(super) resets: AtomicU64,
    pub(super) bytes_upstream: AtomicU64,
    pub(super) bytes_downstream: AtomicU64,
}

pub(super) type FaultList = Arc<Vec<ActiveFault>>;

pub(crate) struct Shared {
    pub(super) name: String,
    pub(super) upstream: String,
    pub(super) protocol: Protocol,
    pub(super) seed: u64,
    pub(super) faults: watch::Sender<FaultList>,
    /// Bumped after every change of `faults`.
    pub(super) generation: Arc<AtomicU64>,
    pub(super) next_id: AtomicU64,
    pub(super) counters: Counters,
    /// How many times each fault (by id) acted on a connection or request: what tells a
    /// fault that took effect from one that nothing passed through.
    pub(super) acted: std::sync::Mutex<std::collections::BTreeMap<u64, u64>>,
    pub(super) shutdown: CancellationToken,
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
    pub(super) fn act(&self, id: u64) {
        *self
            .acted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id)
            .or_default() += 1;
    }

    pub(super) fn acted_count(&self, id: u64) -> u64 {
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

    pub(super) fn stats(&self) -> ProxyStats {
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
    pub(super) fn hits(&self, fault: &ActiveFault, conn: u64, request: u64) -> bool {
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

pub(super) fn remove_from(
    sender: &watch::Sender<FaultList>,
    generation: &AtomicU64,
    id: u64,
) -> bool {
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
pub(super) fn bump(generation: &AtomicU64) {
    generation.fetch_add(1, Ordering::Release);
}

/// One connection's view of the faults: the pumps and the watchdog each hold one. The
/// list is re-read only when its generation moved, so a pump with nothing to do pays one
/// atomic load per read.
pub(super) struct View<'a> {
    pub(super) shared: &'a Shared,
    rx: watch::Receiver<FaultList>,
    pub(super) faults: FaultList,
    generation: u64,
    pub(super) conn: u64,
}

impl<'a> View<'a> {
    pub(super) fn new(shared: &'a Shared, conn: u64) -> Self {
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
    pub(super) fn current(&mut self) -> FaultList {
        let generation = self.shared.generation.load(Ordering::Acquire);
        if generation != self.generation {
            self.generation = generation;
            self.faults = self.rx.borrow_and_update().clone();
        }
        self.faults.clone()
    }

    /// Waits for the next change of the list and takes it (Err: the proxy is gone).
    pub(super) async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        self.rx.changed().await?;
        self.generation = self.shared.generation.load(Ordering::Acquire);
        self.faults = self.rx.borrow_and_update().clone();
        Ok(())
    }

    /// Holds for `delay`, or less: until fault `id` is removed (or expires), or the proxy
    /// goes. What a latency, bandwidth or delay fault holds is released with it.
    pub(super) async fn hold(&mut self, id: u64, delay: Duration) {
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

    pub(super) fn is_clear(&self) -> bool {
        self.shared.generation.load(Ordering::Acquire) == self.generation && self.faults.is_empty()
    }

    /// The first active fault that matches and touches this connection.
    pub(super) fn find<'f>(
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
    pub(super) fn paused(&self, list: &[ActiveFault]) -> Option<u64> {
        self.find(
            list,
            |k| matches!(k, FaultKind::Blackhole | FaultKind::Timeout { .. }),
            None,
            0,
        )
        .map(|f| f.id)
    }
}
