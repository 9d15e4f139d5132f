//! The service's own `/metrics`: request counts by route, status and version, and latency
//! histograms by route and version, through `prometheus-client`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub status: String,
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DependencyLabels {
    pub provider: String,
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    dependency: Family<DependencyLabels, Counter>,
    version: String,
}

impl Metrics {
    pub fn new(prefix: &str, version: &str) -> Self {
        let mut registry = Registry::with_prefix(prefix);
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5])
        });
        let dependency = Family::<DependencyLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests served", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            latency.clone(),
        );
        registry.register(
            "dependency_requests",
            "Calls to upstream providers by outcome",
            dependency.clone(),
        );
        // Every provider and outcome starts at zero, as Prometheus advises: a counter that
        // appears only at its first increment hides that increment from `increase()`.
        for provider in ["primary", "secondary"] {
            for outcome in ["ok", "error"] {
                let _ = dependency.get_or_create(&DependencyLabels {
                    provider: provider.into(),
                    outcome: outcome.into(),
                });
            }
        }
        Self {
            registry,
            requests,
            latency,
            dependency,
            version: version.to_string(),
        }
    }

    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                status: status.to_string(),
                version: self.version.clone(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
                version: self.version.clone(),
            })
            .observe(seconds);
    }

    pub fn dependency(&self, provider: &str, outcome: &str) {
        self.dependency
            .get_or_create(&DependencyLabels {
                provider: provider.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
