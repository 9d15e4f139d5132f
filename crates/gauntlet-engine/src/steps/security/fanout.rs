//! The fan-out limit: one greedy request (a huge top-k, many sub-queries) to the candidate,
//! judged by what its dependency served for it, counted by gauntlet's proxy in front of
//! that dependency: requests and bytes. A request that never reached the dependency proves
//! nothing (a cache may have answered): inconclusive.

use gauntlet_report::{Check, Outcome};
use gauntlet_spec::FanoutProbe;
use serde_json::json;

use super::{Probe, describe, outgoing};

impl Probe<'_> {
    pub(super) async fn fanout(&self, config: &FanoutProbe) -> Check {
        let (max_requests, max_bytes) = (
            u64::from(config.max_requests.get()),
            config.max_bytes.bytes(),
        );
        let check = self
            .check(&format!("fan-out to {}", config.dependency))
            .threshold(format!(
                "at most {max_requests} requests and {max_bytes} bytes from {} for one request",
                config.dependency
            ));
        let Some(proxy) = self
            .ctx
            .systems
            .get(&config.dependency)
            .and_then(|s| s.proxy.clone())
        else {
            return check.outcome(
                Outcome::Inconclusive,
                format!(
                    "{} has no proxy in front of it to count what reaches it",
                    config.dependency
                ),
            );
        };
        let before = proxy.stats();
        let out = outgoing(&self.ctx.candidate, &config.request);
        let result = self.send(&out).await;
        let after = proxy.stats();
        let requests = after.requests.saturating_sub(before.requests);
        let bytes = after
            .bytes_downstream
            .saturating_sub(before.bytes_downstream);
        let said = describe(&result);
        let check = check
            .measured(format!(
                "{requests} requests, {bytes} bytes from {}; the candidate answered {said}",
                config.dependency
            ))
            .samples(1);
        let check = if requests == 0 {
            let why = format!(
                "the request never reached {} (answered {said}): nothing was measured",
                config.dependency
            );
            check.outcome(Outcome::Inconclusive, why)
        } else if requests <= max_requests && bytes <= max_bytes {
            check.outcome(
                Outcome::Pass,
                "the fan-out was refused or clamped".to_string(),
            )
        } else {
            let why = format!(
                "one request made {} serve {requests} requests and {bytes} bytes: the fan-out is not limited",
                config.dependency
            );
            check.outcome(Outcome::Fail, why)
        };
        let evidence = json!({"request": self.redacted(&out), "answered": said,
                              "dependency": config.dependency, "requests": requests, "bytes": bytes});
        self.attach(check, evidence)
    }
}
