//! The load a stage or the rehearsal drives through the split: the plan's traffic mix,
//! open model, bounded in time and count, stopped at once when dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gauntlet_net::{LoadPlan, Model, Outgoing, Threads, TrafficSplit, WeightedRequest, run_load};

use crate::context::RunContext;

/// Open-model load through the split, running in the background. Dropping it raises the
/// stop flag, so a cancelled stage (Ctrl-C, a panic) stops its load threads at once instead
/// of at the end of their time.
pub struct RunningLoad {
    stop: Arc<AtomicBool>,
    handle: Option<tokio::task::JoinHandle<gauntlet_net::LoadReport>>,
}

/// The load a stage or the rehearsal drives through the split.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Requests a second (open model).
    pub rate: f64,
    pub connections: usize,
    /// Which requests of the mix are sent, in which order.
    pub seed: u64,
}

impl RunningLoad {
    /// Starts the plan's traffic mix through `split` for at most `duration`.
    pub fn start(ctx: &RunContext, split: &TrafficSplit, load: Load, duration: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let Load {
            rate,
            connections,
            seed,
        } = load;
        let plan = LoadPlan {
            authority: split.addr().to_string(),
            mix: mix_for(
                &ctx.plan.traffic.requests,
                &format!("http://{}", split.addr()),
            ),
            model: Model::Open { rate },
            connections,
            duration,
            max_requests: (rate * duration.as_secs_f64()).ceil() as u64 + 1,
            seed,
            http2: false,
            // A single-threaded caller (the steps' unit tests, on a paused clock) keeps the
            // load on its own runtime, in its time; a run spreads it over the cores.
            threads: match tokio::runtime::Handle::current().runtime_flavor() {
                tokio::runtime::RuntimeFlavor::CurrentThread => Threads::Caller,
                _ => Threads::PerCore,
            },
        };
        let handle = {
            let stop = stop.clone();
            tokio::spawn(async move { run_load(&plan, stop).await })
        };
        Self {
            stop,
            handle: Some(handle),
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Stops the load and waits (bounded) for its threads to finish.
    pub async fn finish(mut self) {
        self.stop();
        if let Some(handle) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), handle).await;
        }
    }
}

impl Drop for RunningLoad {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The traffic mix of the spec aimed at the split.
pub fn mix_for(requests: &[gauntlet_spec::Request], base: &str) -> Vec<WeightedRequest> {
    requests
        .iter()
        .map(|r| WeightedRequest {
            request: Outgoing {
                base: base.to_string(),
                method: r.method.as_str().to_string(),
                path: r.path.clone(),
                headers: r.headers.clone(),
                body: r.body.clone(),
            },
            weight: r.weight.get(),
        })
        .collect()
}
