//! `gauntlet proxy`: a fault proxy with gauntlet's control API, and, with `--toxiproxy`,
//! Toxiproxy's API beside it, until Ctrl-C or SIGTERM. Every fault lives in this process
//! only, so stopping it removes them all.

use std::net::SocketAddr;
use std::time::Duration;

use gauntlet_net::{
    ControlAccess, ControlServer, FaultProxy, Protocol, ProxySet, ToxiproxyApi, ToxiproxyOptions,
};
use gauntlet_report::exit;

use crate::cli::{ProxyArgs, ProxyProtocol};
use crate::{CliError, runtime};

/// The token for the control API: GAUNTLET_PROXY_TOKEN, else a fresh one.
const TOKEN_ENV: &str = "GAUNTLET_PROXY_TOKEN";

/// How long a control-API fault without a duration stays in, unless --fault-ttl says.
const DEFAULT_FAULT_TTL: Duration = Duration::from_secs(600);

pub fn proxy(args: ProxyArgs) -> Result<i32, CliError> {
    let ttl = args.fault_ttl.as_deref().map(parse_ttl).transpose()?;
    let control = args.control.unwrap_or(match args.toxiproxy {
        Some(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
        None => SocketAddr::from(([127, 0, 0, 1], 8474)),
    });
    guard_control(control, args.allow_remote_control)?;
    if let Some(toxiproxy) = args.toxiproxy
        && !toxiproxy.ip().is_loopback()
    {
        return Err(CliError::Usage(format!(
            "--toxiproxy {toxiproxy}: Toxiproxy's API takes no token, so gauntlet answers it on loopback only (e.g. 127.0.0.1:8474)"
        )));
    }
    let mut access = ControlAccess::generate(ttl.unwrap_or(Some(DEFAULT_FAULT_TTL)))
        .map_err(|e| CliError::Internal(e.into()))?;
    let given = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
    if let Some(token) = &given {
        access.token = token.clone();
    }
    runtime()?.block_on(async {
        let set = ProxySet::default();
        let _fixed = match (args.listen, &args.upstream) {
            (Some(listen), Some(upstream)) => {
                let protocol = match args.protocol {
                    ProxyProtocol::Http => Protocol::Http,
                    ProxyProtocol::Tcp => Protocol::Tcp,
                };
                if !listen.ip().is_loopback() {
                    note!("note: the proxy itself listens on {listen}, reachable from other hosts");
                }
                let proxy = FaultProxy::start(&args.name, listen, upstream, protocol, args.seed)
                    .await
                    .map_err(|e| CliError::Usage(format!("cannot listen on {listen}: {e}")))?;
                note!(
                    "gauntlet proxy `{}`: {} -> {upstream}",
                    args.name,
                    proxy.addr()
                );
                set.put(&proxy);
                Some(proxy)
            }
            _ => None,
        };
        let api = ControlServer::start(control, set.clone(), access.clone())
            .await
            .map_err(|e| {
                CliError::Usage(format!(
                    "cannot listen on {control} for the control API: {e}"
                ))
            })?;
        note!("control API: http://{}/proxies", api.addr());
        let _toxiproxy = match args.toxiproxy {
            Some(listen) => {
                let options = ToxiproxyOptions {
                    seed: args.seed,
                    toxic_ttl: ttl.flatten(),
                };
                let toxiproxy = ToxiproxyApi::start(listen, set, options)
                    .await
                    .map_err(|e| {
                        CliError::Usage(format!(
                            "cannot listen on {listen} for the Toxiproxy API: {e}"
                        ))
                    })?;
                note!(
                    "Toxiproxy API (no token, loopback only): http://{}",
                    toxiproxy.addr()
                );
                Some(toxiproxy)
            }
            None => None,
        };
        match given {
            Some(_) => note!("control token: from {TOKEN_ENV}"),
            // Printed once, here: send it as `Authorization: Bearer TOKEN`.
            None => say!("control token: {}", access.token),
        }
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| CliError::Internal(e.into()))?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        Ok(exit::GO)
    })
}

/// `--fault-ttl`: a duration, `0s` for none.
fn parse_ttl(text: &str) -> Result<Option<Duration>, CliError> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Ok(None),
        Ok(d) => Ok(Some(d)),
        Err(e) => Err(CliError::Usage(format!(
            "--fault-ttl `{text}`: {e} (e.g. 10m, 1h; 0s for none)"
        ))),
    }
}

/// The control API can break the system behind the proxy: off loopback only when asked.
fn guard_control(control: SocketAddr, allowed: bool) -> Result<(), CliError> {
    if control.ip().is_loopback() {
        return Ok(());
    }
    if !allowed {
        return Err(CliError::Usage(format!(
            "the control API would listen on {control}, where other hosts can reach it and break the system behind the proxy; keep it on loopback (127.0.0.1:8474), or pass --allow-remote-control if you must"
        )));
    }
    note!(
        "WARNING: the control API listens on {control}: anyone who can reach it and holds the token can inject faults"
    );
    Ok(())
}
