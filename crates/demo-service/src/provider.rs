//! A quote provider: the dependency the app calls. Each provider is its own process.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::StatusCode;

use crate::server::{ServedRequest, json, reply, serve};

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub port: u16,
    pub name: String,
}

/// Serves until the process ends; see [`gauntlet_net::BoxFuture`] for why it is boxed here.
#[inline(never)]
pub fn run_provider(
    config: ProviderConfig,
) -> gauntlet_net::BoxFuture<'static, std::io::Result<()>> {
    Box::pin(serving(config))
}

async fn serving(config: ProviderConfig) -> std::io::Result<()> {
    let served = Arc::new(AtomicU64::new(0));
    let name = config.name.clone();
    let handler = move |request: ServedRequest| {
        let served = served.clone();
        let name = name.clone();
        async move {
            match request.raw_path.as_str() {
                "/healthz" => reply(StatusCode::OK, "ok\n"),
                "/quote" => {
                    let n = served.fetch_add(1, Ordering::Relaxed) + 1;
                    // When the quote was made, by this provider's clock: the shop refuses
                    // quotes too far from its own (stale, or from the future).
                    let issued_at = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    json(
                        StatusCode::OK,
                        &serde_json::json!({"provider": name, "price_cents": 1000 + (n % 7), "served": n, "issued_at": issued_at}),
                    )
                }
                "/metrics" => reply(
                    StatusCode::OK,
                    format!(
                        "# TYPE provider_quotes_total counter\nprovider_quotes_total{{provider=\"{name}\"}} {}\n",
                        served.load(Ordering::Relaxed)
                    ),
                ),
                _ => reply(StatusCode::NOT_FOUND, "not found\n"),
            }
        }
    };
    serve(config.port, Arc::new(handler)).await
}
