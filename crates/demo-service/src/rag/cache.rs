//! The rag demo's answer cache, its own process: `GET /cache/KEY` (200 with the value, or
//! 404), `PUT /cache/KEY` (kept for the TTL), `POST /purge` (everything dropped: a cold
//! start), `/metrics` (hits, misses, entries).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};

use crate::server::{ServedRequest, reply, serve};

#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub port: u16,
    pub ttl: Duration,
}

/// At most this many entries; a full cache drops the oldest.
const CAPACITY: usize = 10_000;

struct Cache {
    entries: Mutex<HashMap<String, (Instant, Bytes)>>,
    ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Cache {
    fn get(&self, key: &str) -> Option<Bytes> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let found = entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone());
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn put(&self, key: &str, value: Bytes) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY && !entries.contains_key(key) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(key.to_string(), (Instant::now(), value));
    }

    fn metrics(&self) -> String {
        let size = self.entries.lock().unwrap_or_else(|e| e.into_inner()).len();
        format!(
            "# TYPE cache_hits_total counter\ncache_hits_total {}\n\
             # TYPE cache_misses_total counter\ncache_misses_total {}\n\
             # TYPE cache_entries gauge\ncache_entries {size}\n",
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed)
        )
    }
}

/// Serves until the process ends; see [`gauntlet_net::BoxFuture`] for why it is boxed here.
#[inline(never)]
pub fn run_cache(config: CacheConfig) -> gauntlet_net::BoxFuture<'static, std::io::Result<()>> {
    Box::pin(serving(config))
}

async fn serving(config: CacheConfig) -> std::io::Result<()> {
    let cache = Arc::new(Cache {
        entries: Mutex::new(HashMap::new()),
        ttl: config.ttl,
        hits: AtomicU64::new(0),
        misses: AtomicU64::new(0),
    });
    let handler = move |request: ServedRequest| {
        let cache = cache.clone();
        async move {
            let path = request.raw_path.as_str();
            match (&request.method, path) {
                (_, "/healthz") => reply(StatusCode::OK, "ok\n"),
                (_, "/metrics") => reply(StatusCode::OK, cache.metrics()),
                (&Method::POST, "/purge") => {
                    cache
                        .entries
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clear();
                    reply(StatusCode::NO_CONTENT, "")
                }
                (&Method::GET, _) if path.starts_with("/cache/") => {
                    match cache.get(&path["/cache/".len()..]) {
                        Some(value) => reply(StatusCode::OK, value),
                        None => reply(StatusCode::NOT_FOUND, ""),
                    }
                }
                (&Method::PUT, _) if path.starts_with("/cache/") => {
                    cache.put(&path["/cache/".len()..], request.body.clone());
                    reply(StatusCode::NO_CONTENT, "")
                }
                _ => reply(StatusCode::NOT_FOUND, "not found\n"),
            }
        }
    };
    serve(config.port, Arc::new(handler)).await
}
