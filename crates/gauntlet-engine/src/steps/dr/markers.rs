//! The records DR writes through the service to measure what a restore keeps: written before
//! the backup (they must survive) and after it (what a disaster then would lose).

use tokio::time::Instant;

use gauntlet_spec::DrPlan;

use crate::answers::fill;
use crate::context::RunContext;

/// A record written through the service.
pub(super) struct Marker {
    id: Option<String>,
    name: String,
    /// When the service confirmed it (monotonic: a clock stepping back cannot shrink the RPO).
    pub written: Instant,
}

pub(super) async fn write_marker(
    ctx: &RunContext,
    config: &DrPlan,
    base: &str,
    name: String,
) -> Result<Marker, String> {
    let out = fill(&config.markers.write, base, &[("marker", &name)]);
    let answer = ctx
        .client
        .send(&out)
        .await
        .map_err(|e| format!("{} {}: {e}", out.method, out.path))?;
    if !answer.is_success() {
        return Err(format!(
            "{} {} -> {}: {}",
            out.method,
            out.path,
            answer.status,
            answer.body_text().trim()
        ));
    }
    let id = serde_json::from_slice::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|v| match &v["id"] {
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::String(s) => Some(s.clone()),
            _ => None,
        });
    Ok(Marker {
        id,
        name,
        written: Instant::now(),
    })
}

pub(super) async fn marker_present(
    ctx: &RunContext,
    config: &DrPlan,
    base: &str,
    marker: &Marker,
) -> bool {
    let id = marker.id.clone().unwrap_or_default();
    let out = fill(
        &config.markers.read,
        base,
        &[("marker", &marker.name), ("id", &id)],
    );
    ctx.client.send(&out).await.is_ok_and(|a| a.is_success())
}
