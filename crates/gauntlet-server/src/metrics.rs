//! What `/metrics` says, in the Prometheus text format: HTTP requests by route and status
//! with their latency, runs finished by service and decision, runs live.

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
        Metrics {
            registry,
            requests,
            latency,
            runs,
            notifications,
            live_runs,
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
