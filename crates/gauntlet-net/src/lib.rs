//! Network parts: a bounded HTTP/1.1 client for probes and a small paced sender for the
//! spec's traffic mix. Every call has a timeout and every loop a bound in count and time.
//! The load generator (open and closed models) and the traffic split with shadow mode
//! live here too, and the fault proxy the chaos step puts in front of systems.
//!
//! ```no_run
//! # async fn f() -> Result<(), gauntlet_net::NetError> {
//! let client = gauntlet_net::HttpClient::new(std::time::Duration::from_secs(5));
//! let response = client.send(&gauntlet_net::Outgoing::get("http://127.0.0.1:8080", "/healthz")).await?;
//! assert_eq!(response.status, 200);
//! # Ok(()) }
//! ```

mod client;
mod load;
mod proxy;
mod rng;
mod split;
mod traffic;
mod webhook;

pub use client::{HttpClient, NetError, Outgoing, Response};
pub use load::{LoadPlan, LoadReport, Model, Threads, latency_histogram, run_load};
pub use proxy::{
    ActiveFault, ControlAccess, ControlServer, Direction, Fault, FaultKind, FaultProxy,
    FaultRefused, Protocol, ProxySet, ProxyStats, ToxiproxyApi, ToxiproxyOptions,
};
pub use rng::SplitMix64;
pub use split::{ArmFault, FailedRequests, TrafficSplit, route_of};
pub use traffic::{TrafficSummary, WeightedRequest, send_paced};
pub use webhook::{AlertNotice, AlertReceiver};

/// What this crate's async entry points return: their work boxed where it is defined.
///
/// The state machine of an `async fn` is compiled in the crate that polls it, at that
/// crate's optimisation level. The proxy, the split, the load generator and the client are
/// hot code, and the crates that drive them (the engine, the server, the binary) are built
/// unoptimised to keep the build short (#22); so every public entry point is a plain
/// function, kept out of line, that boxes its future here. The coercion to `dyn Future`
/// compiles the state machine — and every task it spawns — in this crate; a caller only
/// forwards `poll` through a pointer.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
