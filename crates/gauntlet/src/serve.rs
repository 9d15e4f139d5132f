//! `gauntlet serve`, `gauntlet token` and `gauntlet audit`: the shared server, its tokens
//! and its audit log (the server itself is gauntlet-server).

use std::path::Path;

use gauntlet_report::exit;
use gauntlet_server::ServerConfig;
use gauntlet_server::tokens::{self, Role};

use crate::CliError;
use crate::cli::{AuditCommand, Global, LogFormat, TokenCommand};

fn load(global: &Global, config: &Path) -> Result<ServerConfig, CliError> {
    let keyring = crate::keys::keyring_dir(global)?;
    ServerConfig::load(config, keyring).map_err(CliError::Spec)
}

/// Serves until SIGINT or SIGTERM; then every live run is stopped and undone first.
pub fn serve_command(global: &Global, config: &Path, format: LogFormat) -> Result<i32, CliError> {
    let config = load(global, config)?;
    logs(format);
    for (service, known) in &config.services {
        match &known.locked {
            Some(lock) => {
                tracing::info!(service, lock = %lock, "spec verified against its signed lock")
            }
            None => tracing::warn!(service, "no signed lock: the spec is not verified"),
        }
    }
    serve_until_stopped(config, |addr| {
        note!("gauntlet serve: listening on http://{addr}");
    })?;
    Ok(exit::GO)
}

/// Binds `config`'s address, says where (`listening`), and serves until SIGINT or SIGTERM.
pub fn serve_until_stopped(
    config: ServerConfig,
    listening: impl FnOnce(std::net::SocketAddr),
) -> Result<(), CliError> {
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let (listener, state) = gauntlet_server::bind(config)
            .await
            .map_err(|e| CliError::Internal(e.into()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::Internal(e.into()))?;
        tracing::info!(%addr, services = state.config.services.len(), "gauntlet serve listening");
        listening(addr);
        gauntlet_server::serve(listener, state, shutdown())
            .await
            .map_err(|e| CliError::Internal(e.into()))
    })
}

/// SIGINT or SIGTERM.
async fn shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down: live runs are stopped and their faults undone first");
}

fn logs(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GAUNTLET_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        );
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub fn token_command(global: &Global, command: TokenCommand) -> Result<i32, CliError> {
    let usage = |e: tokens::TokenError| CliError::Usage(e.to_string());
    match command {
        TokenCommand::Create {
            config,
            role,
            services,
            label,
        } => {
            let config = load(global, &config)?;
            let role: Role = role.parse().map_err(CliError::Usage)?;
            if let Some(unknown) = services.iter().find(|s| !config.services.contains_key(*s)) {
                return Err(CliError::Usage(format!(
                    "no service `{unknown}` in the config"
                )));
            }
            let (token, entry) =
                tokens::create(&config.tokens, role, services, label).map_err(usage)?;
            say!("{token}");
            note!(
                "token {} ({}) created in {}; it is shown only now",
                entry.id,
                role.as_str(),
                config.tokens.display()
            );
            Ok(exit::GO)
        }
        TokenCommand::List { config, json } => {
            let config = load(global, &config)?;
            let listed = tokens::list(&config.tokens).map_err(usage)?;
            if json {
                say!(
                    "{}",
                    serde_json::to_string_pretty(&listed).unwrap_or_default()
                );
                return Ok(exit::GO);
            }
            for t in listed {
                say!(
                    "{}  {:<8}  {:<20}  created {}{}",
                    t.id,
                    t.role.as_str(),
                    if t.services.is_empty() {
                        "all services".to_string()
                    } else {
                        t.services.join(",")
                    },
                    t.created,
                    t.revoked
                        .map(|r| format!("  revoked {r}"))
                        .unwrap_or_default()
                );
            }
            Ok(exit::GO)
        }
        TokenCommand::Revoke { config, id } => {
            let config = load(global, &config)?;
            let revoked = tokens::revoke(&config.tokens, &id).map_err(usage)?;
            say!("revoked {} ({})", revoked.id, revoked.role.as_str());
            Ok(exit::GO)
        }
    }
}

pub fn audit_command(command: AuditCommand) -> Result<i32, CliError> {
    match command {
        AuditCommand::Verify { file } => match gauntlet_server::audit::verify(&file) {
            Ok(lines) => {
                say!("{}: {lines} line(s), the chain holds", file.display());
                Ok(exit::GO)
            }
            Err(why) => Err(CliError::Refused(format!("{}: {why}", file.display()))),
        },
    }
}
