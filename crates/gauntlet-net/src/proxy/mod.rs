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
//!
//! The fault model is `gauntlet_spec::fault` (shared with the spec and the engine); here,
//! `state` holds the fault list and counters, `connection` admits and relays one
//! connection, and `pump` moves one direction's bytes through the faults. Two HTTP APIs
//! drive running proxies: gauntlet's own `control` API (with a token), and `toxiproxy`,
//! which answers Toxiproxy's API so its clients can create proxies and add toxics.

mod connection;
mod control;
mod framing;
mod lanes;
mod pump;
mod state;
mod toxiproxy;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use control::{ControlAccess, ControlServer};
pub use gauntlet_spec::fault::{Direction, Fault, FaultKind};
use state::Counters;
pub(crate) use state::Shared;
pub use toxiproxy::{ToxiproxyApi, ToxiproxyOptions};

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

/// A running proxy; dropping it closes the listener and every connection (soon after:
/// [`FaultProxy::stop`] waits until the listener is closed).
pub struct FaultProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accepting: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

/// The proxies an API serves, by name: fixed for `gauntlet proxy --listen`, growing and
/// shrinking as Toxiproxy clients create and delete proxies. Both APIs share one set, so a
/// proxy a Toxiproxy client made shows in gauntlet's control API too.
#[derive(Clone, Default)]
pub struct ProxySet(Arc<std::sync::RwLock<Vec<Arc<Shared>>>>);

impl ProxySet {
    pub fn of(proxies: &[&FaultProxy]) -> Self {
        let set = Self::default();
        for proxy in proxies {
            set.put(proxy);
        }
        set
    }

    pub fn names(&self) -> Vec<String> {
        self.list().iter().map(|p| p.name.clone()).collect()
    }

    pub(crate) fn list(&self) -> Vec<Arc<Shared>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn find(&self, name: &str) -> Option<Arc<Shared>> {
        self.list().into_iter().find(|p| p.name == name)
    }

    /// Adds `proxy`, in place of one of the same name.
    pub fn put(&self, proxy: &FaultProxy) {
        let mut list = self.0.write().unwrap_or_else(|e| e.into_inner());
        list.retain(|p| p.name != proxy.name());
        list.push(proxy.shared());
    }

    pub(crate) fn remove(&self, name: &str) {
        let mut list = self.0.write().unwrap_or_else(|e| e.into_inner());
        list.retain(|p| p.name != name);
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
    #[inline(never)]
    pub fn start<'a>(
        name: &'a str,
        listen: SocketAddr,
        upstream: &'a str,
        protocol: Protocol,
        seed: u64,
    ) -> crate::BoxFuture<'a, std::io::Result<Self>> {
        Box::pin(Self::listen(name, listen, upstream, protocol, seed))
    }

    async fn listen(
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
        lanes::start();
        let accepting = tokio::spawn(connection::accept_loop(listener, shared.clone()));
        Ok(Self {
            shared,
            addr,
            accepting: Some(accepting),
        })
    }

    /// Closes the listener and every connection, and returns once the port refuses
    /// connections.
    pub async fn stop(mut self) {
        self.shared.shutdown.cancel();
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.await;
        }
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
