//! `gauntlet serve`: one long-running process that many services and pipelines share. It
//! knows the services of its config (each a spec, validated when loaded), runs their
//! gauntlets through the engine, answers what was decided, and serves the evidence; every
//! caller holds a token with a role, and every auth decision and change is appended to a
//! hash-chained audit log.
//!
//! - `config.rs`: `server.yaml`, located errors like a spec's.
//! - `tokens.rs`: roles, tokens stored as hashes, compared in constant time.
//! - `audit.rs`: the JSONL audit log, each line chained to the one before.
//! - `runs.rs`: runs started, live and cancelled.
//! - `api.rs`: the routes.
//! - `judge.rs`: the routes Argo Rollouts and Flagger call, and what they are answered.
//! - `metrics.rs`: what `/metrics` exposes.
//! - `notify.rs`: webhooks, Slack and email when a run ends or waits for sign-offs.
//! - `openapi.rs`: the routes as data, and the OpenAPI document made from them.
//! - `web/`: the dashboard: sessions, pages rendered on the server, a strict CSP.

pub mod api;
pub mod audit;
pub mod config;
pub mod judge;
pub mod metrics;
pub mod notify;
pub mod openapi;
pub mod runs;
pub mod tokens;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;

pub use config::ServerConfig;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the run store: {0}")]
    Store(#[from] gauntlet_store::StoreError),
    #[error(transparent)]
    Engine(#[from] gauntlet_engine::EngineError),
    #[error("the audit log {path}: {source}")]
    Audit {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

/// Prepares the server: runs a killed server left behind are marked ABORTED and their
/// faults undone (as `gauntlet recover` does), the audit log is opened, the listener bound.
pub async fn bind(
    config: ServerConfig,
) -> Result<(tokio::net::TcpListener, Arc<api::AppState>), ServerError> {
    recover(&config)?;
    let audit = audit::Audit::open(&config.audit).map_err(|source| ServerError::Audit {
        path: config.audit.clone(),
        source,
    })?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: config.listen,
            source,
        })?;
    let state = Arc::new(api::AppState::new(config, Arc::new(audit)));
    Ok((listener, state))
}

/// Serves until `shutdown` resolves; then every live run is cancelled (its faults undone)
/// and waited for.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<api::AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let app = api::router(state.clone());
    let watch = tokio::spawn(leases(state.config.clone()));
    let served = match state.config.tls.clone() {
        None => {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
        Some(tls) => {
            serve_tls(listener, app, tls, shutdown).await;
            Ok(())
        }
    };
    state.runs.shut_down().await;
    watch.abort();
    served.map_err(ServerError::Serve)
}

/// The watch on the runs of servers that are gone: every third of the lease (each run renews
/// its own lease as often), a run whose lease ran out, or whose server on this machine is
/// gone, is marked ABORTED and its cleanup journal undone where this machine reaches it.
async fn leases(config: ServerConfig) {
    let mut store: Option<Arc<gauntlet_store::Store>> = None;
    let mut tick = tokio::time::interval(config.lease / 3);
    loop {
        tick.tick().await;
        let opened = match store.clone() {
            Some(open) => Ok(open),
            None => {
                let location = config.store.clone();
                tokio::task::spawn_blocking(move || gauntlet_store::Store::connect(&location))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|s| s.map(Arc::new).map_err(|e| e.to_string()))
            }
        };
        let open = match opened {
            Ok(open) => open,
            Err(why) => {
                tracing::warn!(
                    "the run store is unreachable; abandoned runs not looked for: {why}"
                );
                continue;
            }
        };
        store = Some(open.clone());
        let beat = tokio::task::spawn_blocking(move || -> Result<Vec<String>, String> {
            let reaped = gauntlet_engine::reap_abandoned(&open).map_err(|e| e.to_string())?;
            let mut said = Vec::new();
            for (run, _) in reaped {
                let undone = gauntlet_engine::recover_runs(&open, Some(&run))
                    .map(|r| {
                        r.iter()
                            .map(|r| r.undone.join("; "))
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .unwrap_or_else(|e| format!("its journal could not be undone: {e}"));
                said.push(format!("{run}: {undone}"));
            }
            Ok(said)
        })
        .await;
        match beat {
            Ok(Ok(reaped)) => {
                for line in reaped {
                    tracing::warn!(
                        "a run of a server that is gone (its process ended, or its lease ran out) was marked ABORTED: {line}"
                    );
                }
            }
            Ok(Err(why)) => tracing::warn!("looking for abandoned runs: {why}"),
            Err(e) => tracing::warn!("looking for abandoned runs: {e}"),
        }
    }
}

/// What the last server left: runs whose process is gone are ABORTED, their journals undone.
fn recover(config: &ServerConfig) -> Result<(), ServerError> {
    let store = gauntlet_store::Store::connect(&config.store)?;
    for (run, _) in gauntlet_engine::reap_abandoned(&store)? {
        tracing::warn!(run = %run, "a run of a previous server never finished: marked ABORTED");
    }
    for recovered in gauntlet_engine::recover_runs(&store, None)? {
        tracing::warn!(
            run = %recovered.run_id,
            undone = recovered.undone.len(),
            "a run of a previous server was aborted; its cleanup journal was undone: {}",
            recovered.undone.join("; ")
        );
    }
    Ok(())
}

/// HTTPS: each connection's TLS handshake, then the same routes, until `shutdown`.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: config::Tls,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.0);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            // A handshake that does not finish in 10 s is dropped.
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream));
            let Ok(Ok(stream)) = handshake.await else {
                return;
            };
            let app = app.layer(axum::Extension(axum::extract::ConnectInfo(remote)));
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
        });
    }
}
