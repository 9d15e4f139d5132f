//! Step 6, security: abuse probes the candidate must refuse. Each probe that needs a
//! working endpoint first sends a legitimate control request; if that fails, a refusal
//! would prove nothing, so the probe is inconclusive rather than a pass.

use std::collections::BTreeMap;

use gauntlet_net::{NetError, Outgoing, Response};
use gauntlet_report::{Check, Outcome, Severity};
use gauntlet_spec::{Request, SecurityPlan, StepMeta};
use serde_json::json;

use super::{Step, StepFuture, severity};
use crate::context::RunContext;

mod fanout;
mod injection;
mod pii;

const STEP: &str = gauntlet_spec::StepName::Security.as_str();

pub struct Security(pub(crate) SecurityPlan);

impl Step for Security {
    fn step(&self) -> gauntlet_spec::StepName {
        gauntlet_spec::StepName::Security
    }
    fn meta(&self) -> &StepMeta {
        &self.0.meta
    }
    fn run<'a>(&'a self, ctx: &'a RunContext) -> StepFuture<'a> {
        Box::pin(async move {
            let config = &self.0;
            let probe = Probe {
                ctx,
                severity: severity(&config.meta),
                secrets: config
                    .auth
                    .as_ref()
                    .map(|a| a.credential_headers.clone())
                    .unwrap_or_else(|| vec!["authorization".into(), "x-api-key".into()]),
            };
            let mut checks = Vec::new();
            if let Some(auth) = &config.auth {
                for request in &auth.requests {
                    checks.push(probe.auth(request, &auth.credential_headers).await);
                }
            }
            if let Some(tokens) = &config.control_tokens {
                checks.extend(probe.control_tokens(tokens).await);
            }
            if let Some(injection) = &config.prompt_injection {
                checks.push(probe.prompt_injection(injection).await);
            }
            if let Some(pii) = &config.pii {
                checks.push(probe.pii(pii).await);
            }
            if let Some(fanout) = &config.fanout {
                checks.push(probe.fanout(fanout).await);
            }
            if let Some(paths) = &config.paths {
                for path in &paths.probes {
                    checks.push(probe.path(path, &paths.headers).await);
                }
            }
            // Last, so a drained rate-limit bucket cannot disturb the other probes.
            if let Some(rate_limit) = &config.rate_limit {
                checks.push(probe.rate_limit(rate_limit).await);
            }
            checks.into()
        })
    }
}

struct Probe<'a> {
    ctx: &'a RunContext,
    severity: Severity,
    /// Header names whose values never reach evidence files.
    secrets: Vec<String>,
}

fn outgoing(base: &str, request: &Request) -> Outgoing {
    Outgoing {
        base: base.trim_end_matches('/').to_string(),
        method: request.method.as_str().to_string(),
        path: request.path.clone(),
        headers: request.headers.clone(),
        body: request.body.clone(),
    }
}

fn describe(result: &Result<Response, NetError>) -> String {
    match result {
        Ok(r) => format!("{}", r.status),
        Err(e) => format!("no answer ({e})"),
    }
}

impl Probe<'_> {
    fn check(&self, name: &str) -> Check {
        Check::new(STEP, name, self.severity)
    }

    fn redacted(&self, out: &Outgoing) -> serde_json::Value {
        let headers: BTreeMap<&str, &str> = out
            .headers
            .iter()
            .map(|(k, v)| {
                let secret = self.secrets.iter().any(|s| s.eq_ignore_ascii_case(k));
                (k.as_str(), if secret { "<redacted>" } else { v.as_str() })
            })
            .collect();
        json!({"method": out.method, "path": out.path, "headers": headers, "body": out.body})
    }

    fn exchange(&self, out: &Outgoing, result: &Result<Response, NetError>) -> serde_json::Value {
        let response = match result {
            Ok(r) => {
                let body = r.body_text();
                json!({"status": r.status, "elapsed_ms": r.elapsed.as_secs_f64() * 1000.0,
                       "body": body.chars().take(2048).collect::<String>()})
            }
            Err(e) => json!({"error": e.to_string()}),
        };
        json!({"sent": self.redacted(out), "received": response})
    }

    /// Writes the evidence and attaches it; a failed write is noted in the reason.
    fn attach(&self, mut check: Check, evidence: serde_json::Value) -> Check {
        let bytes = serde_json::to_vec_pretty(&evidence).unwrap_or_default();
        match self
            .ctx
            .recorder
            .evidence(STEP, &format!("{}.json", check.name), &bytes)
        {
            Ok(path) => check.evidence.push(path),
            Err(e) => check.reason.push_str(&format!(" (evidence not kept: {e})")),
        }
        check
    }

    async fn send(&self, out: &Outgoing) -> Result<Response, NetError> {
        self.ctx.client.send(out).await
    }

    async fn auth(&self, request: &Request, credential_headers: &[String]) -> Check {
        let name = format!("auth {} {}", request.method.as_str(), request.path);
        let check = self
            .check(&name)
            .threshold("2xx with credentials; 401 or 403 without");
        let with = outgoing(&self.ctx.candidate, request);
        let mut without = with.clone();
        without
            .headers
            .retain(|k, _| !credential_headers.iter().any(|c| c.eq_ignore_ascii_case(k)));
        let control = self.send(&with).await;
        let probe = self.send(&without).await;
        let evidence = json!({"with_credentials": self.exchange(&with, &control),
                              "without_credentials": self.exchange(&without, &probe)});
        let measured = format!(
            "with credentials: {}; without: {}",
            describe(&control),
            describe(&probe)
        );
        let check = check.measured(measured).samples(2);
        let check = match (&control, &probe) {
            (Ok(c), _) if !c.is_success() => check.outcome(
                Outcome::Inconclusive,
                format!("the request failed even with credentials ({}), so a refusal without them proves nothing", c.status),
            ),
            (Err(e), _) | (_, Err(e)) => check.outcome(Outcome::Inconclusive, format!("no answer: {e}")),
            (Ok(_), Ok(p)) if p.status == 401 || p.status == 403 => check.outcome(
                Outcome::Pass,
                format!("refused with {} without credentials", p.status),
            ),
            (Ok(_), Ok(p)) if p.is_success() => check.outcome(
                Outcome::Fail,
                format!("accepted without credentials ({}): authentication is bypassed", p.status),
            ),
            (Ok(_), Ok(p)) => check.outcome(
                Outcome::Fail,
                format!("answered {} without credentials; expected 401 or 403", p.status),
            ),
        };
        self.attach(check, evidence)
    }

    async fn control_tokens(&self, config: &gauntlet_spec::ControlTokenProbe) -> Vec<Check> {
        let with_value = |value: &str| {
            let mut request = config.request.clone();
            request.body = request
                .body
                .map(|b| b.replace("{token}", &json_escape(value)));
            outgoing(&self.ctx.candidate, &request)
        };
        let control_request = with_value(&config.control_value);
        let control = self.send(&control_request).await;
        let mut checks = Vec::new();
        for (index, token) in config.tokens.iter().enumerate() {
            let name = format!("control-token {}", index + 1);
            let check = self
                .check(&name)
                .threshold("a 4xx refusal; the same request without the token succeeds");
            let out = with_value(token);
            let result = self.send(&out).await;
            let evidence = json!({"token": token, "control": self.exchange(&control_request, &control),
                                  "probe": self.exchange(&out, &result)});
            let check = check
                .measured(format!(
                    "control: {}; with `{token}`: {}",
                    describe(&control),
                    describe(&result)
                ))
                .samples(2);
            let check = match (&control, &result) {
                (Ok(c), _) if !c.is_success() => check.outcome(
                    Outcome::Inconclusive,
                    format!(
                        "the benign control request was refused ({}), so a refusal proves nothing",
                        c.status
                    ),
                ),
                (Err(e), _) | (_, Err(e)) => {
                    check.outcome(Outcome::Inconclusive, format!("no answer: {e}"))
                }
                (Ok(_), Ok(r)) if (400..500).contains(&r.status) && r.status != 429 => check
                    .outcome(
                        Outcome::Pass,
                        format!("body with `{token}` refused with {}", r.status),
                    ),
                (Ok(_), Ok(r)) if r.is_success() => check.outcome(
                    Outcome::Fail,
                    format!("body with `{token}` accepted ({})", r.status),
                ),
                (Ok(_), Ok(r)) => check.outcome(
                    Outcome::Fail,
                    format!(
                        "body with `{token}` answered {}; expected a 4xx refusal",
                        r.status
                    ),
                ),
            };
            checks.push(self.attach(check, evidence));
        }
        checks
    }

    async fn path(&self, path: &str, headers: &BTreeMap<String, String>) -> Check {
        let name = format!("path {path}");
        let check = self
            .check(&name)
            .threshold("400, 401, 403, 404 or 405; never 2xx");
        let mut out = Outgoing::get(&self.ctx.candidate, path);
        out.headers = headers.clone();
        let result = self.send(&out).await;
        let evidence = self.exchange(&out, &result);
        let check = check.measured(describe(&result)).samples(1);
        let check = match &result {
            Err(NetError::InvalidRequest(_, why)) => check.outcome(
                Outcome::Skipped,
                format!("`{path}` cannot be sent as an HTTP request target: {why}"),
            ),
            Err(e) => check.outcome(Outcome::Inconclusive, format!("no answer: {e}")),
            Ok(r) if [400, 401, 403, 404, 405].contains(&r.status) => {
                check.outcome(Outcome::Pass, format!("refused with {}", r.status))
            }
            Ok(r) if r.is_success() => check.outcome(
                Outcome::Fail,
                format!(
                    "served with {}: the path is outside the allow-list but reachable",
                    r.status
                ),
            ),
            Ok(r) => check.outcome(
                Outcome::Warn,
                format!("answered {} instead of a clean refusal", r.status),
            ),
        };
        self.attach(check, evidence)
    }

    async fn rate_limit(&self, config: &gauntlet_spec::RateLimitProbe) -> Check {
        let within = u64::from(config.within.get());
        let concurrency = u64::from(config.concurrency.get());
        let check = self
            .check("rate-limit burst")
            .threshold(format!("a 429 within {within} requests"));
        let out = outgoing(&self.ctx.candidate, &config.request);
        let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        let mut sent = 0u64;
        let mut first_429 = None;
        let started = tokio::time::Instant::now();
        let max_duration = config.max_duration.as_std();
        // Bounded in count (`within`) and in time (`max_duration`, plus one batch).
        while sent < within && first_429.is_none() && started.elapsed() < max_duration {
            let batch = concurrency.min(within - sent);
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..batch {
                let client = self.ctx.client.clone();
                let out = out.clone();
                set.spawn(async move { client.send(&out).await });
            }
            let mut position = sent;
            while let Some(joined) = set.join_next().await {
                position += 1;
                match joined {
                    Ok(Ok(r)) => {
                        *statuses.entry(r.status).or_default() += 1;
                        if r.status == 429 && first_429.is_none() {
                            first_429 = Some(position);
                        }
                    }
                    Ok(Err(e)) => *errors.entry(e.to_string()).or_default() += 1,
                    Err(e) => *errors.entry(e.to_string()).or_default() += 1,
                }
            }
            sent += batch;
        }
        let answered: u64 = statuses.values().sum();
        let summary = statuses
            .iter()
            .map(|(s, n)| format!("{n}×{s}"))
            .collect::<Vec<_>>()
            .join(", ");
        let evidence = json!({"request": self.redacted(&out), "sent": sent, "statuses": statuses,
                              "errors": errors, "first_429_at": first_429,
                              "elapsed_ms": started.elapsed().as_millis() as u64});
        let successes: u64 = statuses
            .iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum();
        let check = check.samples(sent).measured(match first_429 {
            Some(n) => format!("429 after {n} requests ({summary})"),
            None => format!("no 429 in {sent} requests ({summary})"),
        });
        let check = match first_429 {
            Some(n) => check.outcome(Outcome::Pass, format!("rate limited after {n} of at most {within} requests")),
            None if answered == 0 => check.outcome(
                Outcome::Inconclusive,
                format!("none of {sent} requests was answered: {}", errors.keys().next().cloned().unwrap_or_default()),
            ),
            None if successes == 0 => check.outcome(
                Outcome::Inconclusive,
                format!("the request never succeeded ({summary}), so the burst did not exercise the limit"),
            ),
            None => {
                let achieved = sent as f64 / started.elapsed().as_secs_f64().max(1e-6);
                // A token bucket of capacity B at limit L answers 429 only after B/(r−L)
                // seconds of a burst at r: a burst barely above L may never empty it.
                match config.limit {
                    Some(limit) if achieved <= 2.0 * limit.per_second() => check.outcome(
                        Outcome::Inconclusive,
                        format!(
                            "the burst reached only {achieved:.0} requests/s, not twice the expected limit of {:.0}/s, so the absence of a 429 proves nothing",
                            limit.per_second()
                        ),
                    ),
                    _ => check.outcome(
                        Outcome::Fail,
                        format!("{sent} requests in {:.2}s ({achieved:.0}/s) and no 429: there is no effective rate limit", started.elapsed().as_secs_f64()),
                    ),
                }
            }
        };
        self.attach(check, evidence)
    }
}

/// A value placed inside a JSON string literal in a body template.
fn json_escape(value: &str) -> String {
    let quoted = serde_json::to_string(value).unwrap_or_default();
    quoted[1..quoted.len().saturating_sub(1).max(1)].to_string()
}

#[cfg(test)]
mod tests {
    use super::json_escape;

    #[test]
    fn tokens_are_escaped_for_json_bodies() {
        assert_eq!(json_escape("<|im_start|>"), "<|im_start|>");
        assert_eq!(json_escape("a\"b"), "a\\\"b");
    }
}
