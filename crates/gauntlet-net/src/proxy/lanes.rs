//! Where proxied connections run: a few threads, one per core, each with its own
//! single-threaded runtime. A connection stays on the lane it was handed to, so its reads,
//! writes and wake-ups never cross threads (a work-stealing runtime wakes a parked worker to
//! share a woken task, which on a request-response stream is a futex call and a context
//! switch per hop). Shared by every proxy in the process; the threads live as long as it.
//!
//! Only a proxy started on a multi-threaded runtime uses them. On a single-threaded one the
//! embedder chose one thread for everything, and its clock may be paused (the engine's step
//! tests): connections then stay on the caller's runtime, with its clock.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::{Handle, RuntimeFlavor};

struct Lanes {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

static LANES: OnceLock<Lanes> = OnceLock::new();

/// Starts the lanes if the caller's runtime is multi-threaded and they are not running yet.
/// A proxy calls it as it starts listening, so its first connection does not wait for them.
pub(super) fn start() {
    running();
}

/// The lane for the next connection (round robin), or `None`: serve it on the caller's
/// runtime (a single-threaded one, or no lane could be started).
pub(super) fn next() -> Option<&'static Handle> {
    let lanes = running()?;
    let count = lanes.handles.len();
    (count > 0).then(|| &lanes.handles[lanes.next.fetch_add(1, Ordering::Relaxed) % count])
}

fn running() -> Option<&'static Lanes> {
    if Handle::current().runtime_flavor() != RuntimeFlavor::MultiThread {
        return None;
    }
    Some(LANES.get_or_init(|| {
        let count = std::thread::available_parallelism().map_or(1, |n| n.get());
        Lanes {
            handles: (0..count).map_while(lane).collect(),
            next: AtomicUsize::new(0),
        }
    }))
}

fn lane(index: usize) -> Option<Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name(format!("proxy-lane-{index}"))
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .ok()?;
    Some(handle)
}
