//! A paced sender for the spec's weighted request mix: a fixed count of requests on an
//! absolute schedule at a target rate, chosen by a seeded generator, bounded in time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::client::{HttpClient, Outgoing};
use crate::rng::SplitMix64;

#[derive(Debug, Clone)]
pub struct WeightedRequest {
    pub request: Outgoing,
    pub weight: u32,
}

/// What came back from a paced batch; statuses by code, failures by message.
#[derive(Debug, Clone, Default)]
pub struct TrafficSummary {
    pub sent: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: BTreeMap<String, u64>,
    pub elapsed: Duration,
}

impl TrafficSummary {
    pub fn answered(&self) -> u64 {
        self.statuses.values().sum()
    }
}

/// Sends `count` requests from `mix` at `rate_per_second`, stopping early at `deadline`.
/// Requests that are due are sent concurrently, so a slow answer does not delay the schedule.
/// `on_sent` hears how many have been sent so far (for a progress bar).
#[inline(never)]
pub fn send_paced<'a>(
    client: &'a HttpClient,
    mix: &'a [WeightedRequest],
    count: u64,
    rate_per_second: f64,
    deadline: Duration,
    seed: u64,
    on_sent: &'a (dyn Fn(u64) + Sync),
) -> crate::BoxFuture<'a, TrafficSummary> {
    Box::pin(pace(
        client,
        mix,
        count,
        rate_per_second,
        deadline,
        seed,
        on_sent,
    ))
}

async fn pace(
    client: &HttpClient,
    mix: &[WeightedRequest],
    count: u64,
    rate_per_second: f64,
    deadline: Duration,
    seed: u64,
    on_sent: &(dyn Fn(u64) + Sync),
) -> TrafficSummary {
    let mut summary = TrafficSummary::default();
    let total_weight: u64 = mix.iter().map(|w| u64::from(w.weight)).sum();
    if total_weight == 0 || count == 0 || rate_per_second <= 0.0 {
        return summary;
    }
    let mut rng = SplitMix64::new(seed);
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate_per_second);
    let mut in_flight = tokio::task::JoinSet::new();
    for i in 0..count {
        let due = started + interval.mul_f64(i as f64);
        if due.duration_since(started) > deadline {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let mut pick = rng.below(total_weight);
        let chosen = mix
            .iter()
            .find(|w| {
                let hit = pick < u64::from(w.weight);
                pick = pick.saturating_sub(u64::from(w.weight));
                hit
            })
            .unwrap_or(&mix[0]);
        let client = client.clone();
        let request = chosen.request.clone();
        in_flight.spawn(async move { client.send(&request).await });
        summary.sent += 1;
        on_sent(summary.sent);
    }
    let remaining = deadline.saturating_sub(started.elapsed()) + Duration::from_secs(1);
    let _ = tokio::time::timeout(remaining, async {
        while let Some(joined) = in_flight.join_next().await {
            match joined {
                Ok(Ok(response)) => *summary.statuses.entry(response.status).or_default() += 1,
                Ok(Err(e)) => *summary.errors.entry(e.to_string()).or_default() += 1,
                Err(e) => *summary.errors.entry(e.to_string()).or_default() += 1,
            }
        }
    })
    .await;
    in_flight.abort_all();
    summary.elapsed = started.elapsed();
    summary
}
