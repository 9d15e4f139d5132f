//! Promotion and rollback hooks: a command and/or a webhook, each told the event, stage,
//! service and version.

use std::time::Duration;

use gauntlet_net::Outgoing;
use gauntlet_spec::Action;

use crate::context::RunContext;

/// Runs a promotion or rollback hook; returns what happened, or why it failed.
pub async fn run_action(
    ctx: &RunContext,
    action: Option<&Action>,
    event: &str,
    stage: &str,
) -> Result<String, String> {
    let Some(action) = action else {
        let (moved, done) = match event {
            "rollback" => ("to the baseline", "rolled back"),
            _ => ("to the candidate", "promoted"),
        };
        return Ok(format!(
            "only gauntlet's traffic split moved (every request {moved}); no {event} hook is configured, so nothing outside gauntlet was {done}"
        ));
    };
    let mut done = Vec::new();
    if let Some(command) = &action.command {
        let Some((program, args)) = command.split_first() else {
            return Err("the hook command is empty".into());
        };
        let status = tokio::time::timeout(
            Duration::from_secs(60),
            ctx.child_env
                .command(program)
                .args(args)
                .env("GAUNTLET_EVENT", event)
                .env("GAUNTLET_STAGE", stage)
                .env("GAUNTLET_SERVICE", &ctx.plan.service.name)
                .env("GAUNTLET_VERSION", &ctx.plan.service.version)
                .kill_on_drop(true)
                .status(),
        )
        .await
        .map_err(|_| format!("`{program}` did not finish within 60s"))?
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
        if !status.success() {
            return Err(format!("`{program}` exited with {status}"));
        }
        done.push(format!("`{program}` succeeded"));
    }
    if let Some(url) = &action.webhook {
        let split_at = url.match_indices('/').nth(2).map_or(url.len(), |(i, _)| i);
        let (base, path) = url.split_at(split_at);
        let mut out = Outgoing::get(base, if path.is_empty() { "/" } else { path });
        out.method = "POST".into();
        out.body = Some(
            serde_json::json!({"event": event, "stage": stage, "service": ctx.plan.service.name,
                               "version": ctx.plan.service.version})
            .to_string(),
        );
        let response = ctx
            .client
            .send(&out)
            .await
            .map_err(|e| format!("webhook {url}: {e}"))?;
        if !response.is_success() {
            return Err(format!("webhook {url} answered {}", response.status));
        }
        done.push(format!("webhook answered {}", response.status));
    }
    Ok(done.join("; "))
}
