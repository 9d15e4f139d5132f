//! What `/metrics` says, in the Prometheus text format: HTTP requests by route and status
//! with their latency, runs finished by service and decision, runs live, and the judges of
//! live canaries (samples, statistic, boundaries, verdict).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteOnly {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Delivery {
    channel: String,
    outcome: String,
}

/// One judge of a live canary's stage.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JudgeLabels {
    service: String,
    run: String,
    stage: String,
    judge: String,
}

type Value = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Decided {
    service: String,
    decision: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<Route, Counter>,
    latency: Family<RouteOnly, Histogram>,
    runs: Family<Decided, Counter>,
    notifications: Family<Delivery, Counter>,
    pub live_runs: Gauge,
    judge_samples: Family<JudgeLabels, Value>,
    judge_statistic: Family<JudgeLabels, Value>,
    judge_reject_at: Family<JudgeLabels, Value>,
    judge_verdict: Family<JudgeLabels, Value>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("gauntlet");
        let requests = Family::<Route, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        let latency = Family::<RouteOnly, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            latency.clone(),
        );
        let runs = Family::<Decided, Counter>::default();
        registry.register(
            "runs_finished",
            "Runs finished, by service and decision",
            runs.clone(),
        );
        let notifications = Family::<Delivery, Counter>::default();
        registry.register(
            "notifications",
            "Notification attempts, by channel and outcome (delivered, retried, failed)",
            notifications.clone(),
        );
        let live_runs = Gauge::default();
        registry.register("runs_live", "Runs in progress", live_runs.clone());
        let mut family = |name: &str, help: &str| {
            let family = Family::<JudgeLabels, Value>::default();
            registry.register(name, help, family.clone());
            family
        };
        let judge_samples = family(
            "canary_judge_samples",
            "Observations a live canary stage's judge has used",
        );
        let judge_statistic = family(
            "canary_judge_statistic",
            "A live canary stage's judge statistic (a log-likelihood ratio, or a burn rate)",
        );
        let judge_reject_at = family(
            "canary_judge_reject_at",
            "The statistic at which the judge rejects the candidate",
        );
        let judge_verdict = family(
            "canary_judge_verdict",
            "A live canary stage's judge verdict: 1 accept, 0 continue, -1 reject",
        );
        Metrics {
            registry,
            requests,
            latency,
            runs,
            notifications,
            live_runs,
            judge_samples,
            judge_statistic,
            judge_reject_at,
            judge_verdict,
        }
    }

    /// The judges of a live canary stage now; returns the label sets shown, for
    /// [`Metrics::forget`] when the stage or the run is over.
    pub fn judging(
        &self,
        service: &str,
        run: &str,
        stage: &gauntlet_engine::StageState,
    ) -> Vec<JudgeLabels> {
        let mut shown = Vec::new();
        for judge in &stage.judges {
            let labels = JudgeLabels {
                service: service.to_string(),
                run: run.to_string(),
                stage: stage.label.clone(),
                judge: judge.name.to_string(),
            };
            self.judge_samples
                .get_or_create(&labels)
                .set(judge.samples as f64);
            let set = |family: &Family<JudgeLabels, Value>, value: Option<f64>| match value {
                Some(v) => {
                    family.get_or_create(&labels).set(v);
                }
                None => {
                    family.remove(&labels);
                }
            };
            set(&self.judge_statistic, judge.statistic);
            set(&self.judge_reject_at, judge.reject_at);
            let verdict = match judge.verdict {
                gauntlet_stats::Verdict::Accept => 1.0,
                gauntlet_stats::Verdict::Continue => 0.0,
                gauntlet_stats::Verdict::Reject => -1.0,
            };
            self.judge_verdict.get_or_create(&labels).set(verdict);
            shown.push(labels);
        }
        shown
    }

    /// Drops the series of judges no longer live.
    pub fn forget(&self, shown: &[JudgeLabels]) {
        for labels in shown {
            for family in [
                &self.judge_samples,
                &self.judge_statistic,
                &self.judge_reject_at,
                &self.judge_verdict,
            ] {
                family.remove(labels);
            }
        }
    }

    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let labels = Route {
            route: route.to_string(),
            method: method.to_string(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        let route = RouteOnly {
            route: route.to_string(),
        };
        self.latency.get_or_create(&route).observe(seconds);
    }

    pub fn run_finished(&self, service: &str, decision: &str) {
        let labels = Decided {
            service: service.to_string(),
            decision: decision.to_string(),
        };
        self.runs.get_or_create(&labels).inc();
    }

    pub fn notification(&self, channel: &str, outcome: &str) {
        let labels = Delivery {
            channel: channel.to_string(),
            outcome: outcome.to_string(),
        };
        self.notifications.get_or_create(&labels).inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
