//! Steady-state probes: an HTTP request with an expected status, latency bound and body;
//! a metric scraped from the candidate (its value, or its increase since a phase began);
//! a command with an expected exit code. A probe that cannot be run fails: a drill never
//! counts "could not look" as "looked and it was fine".

use std::collections::BTreeMap;
use std::time::Duration;

use gauntlet_net::{HttpClient, Outgoing};
use gauntlet_spec::{HttpProbe, MetricProbe, Probe, Usage};

/// One probe's result.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub name: String,
    pub pass: bool,
    pub detail: String,
    /// How long an HTTP probe's answer took (none for other probes, or no answer).
    pub latency: Option<Duration>,
}

/// Values of `increase` metric probes when a phase began, by probe name.
pub type MetricBase = BTreeMap<String, f64>;

/// What a probe needs besides itself: where to send, the metric values a phase began with,
/// the environment of commands, and the spec's `usage` (to price answers under a cost cap).
pub struct ProbeContext<'a> {
    pub client: &'a HttpClient,
    pub base_url: &'a str,
    pub metric_base: &'a MetricBase,
    pub env: &'a crate::child_env::ChildEnv,
    pub usage: Option<&'a Usage>,
}

pub async fn run_probe(cx: &ProbeContext<'_>, probe: &Probe) -> ProbeResult {
    let ProbeContext {
        client,
        base_url,
        metric_base,
        env,
        usage,
    } = *cx;
    let mut latency = None;
    let (pass, detail) = if let Some(http) = &probe.http {
        let started = std::time::Instant::now();
        let (pass, detail) = http_probe(client, base_url, http, usage).await;
        latency = Some(started.elapsed());
        (pass, detail)
    } else if let Some(metric) = &probe.metric {
        match scrape(client, base_url, metric).await {
            Ok(value) => {
                let shown = match metric_base.get(&probe.name) {
                    Some(start) if metric.increase => value - start,
                    _ => value,
                };
                let ok =
                    metric.min.is_none_or(|m| shown >= m) && metric.max.is_none_or(|m| shown <= m);
                let what = if metric.increase { "increase" } else { "value" };
                (ok, format!("{} {what} {shown}", metric.name))
            }
            Err(e) => (false, e),
        }
    } else if let Some(command) = &probe.command {
        command_probe(&command.run, command.exit, command.timeout.as_std(), env).await
    } else {
        (false, "the probe has no kind".to_string())
    };
    ProbeResult {
        name: probe.name.clone(),
        pass,
        detail,
        latency,
    }
}

async fn http_probe(
    client: &HttpClient,
    base_url: &str,
    http: &HttpProbe,
    usage: Option<&Usage>,
) -> (bool, String) {
    let out = Outgoing {
        base: base_url.trim_end_matches('/').to_string(),
        method: http.method.as_str().to_string(),
        path: http.path.clone(),
        headers: http.headers.clone(),
        body: http.body.clone(),
    };
    // A hung request must not stall the drill's clock: wait at most twice the bound.
    let limit = http.within.map_or(Duration::from_secs(2), |w| {
        (w.as_std() * 2).max(Duration::from_millis(200))
    });
    let answer = match tokio::time::timeout(limit, client.send(&out)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return (false, format!("{} {}: {e}", out.method, out.path)),
        Err(_) => {
            return (
                false,
                format!("{} {}: no answer within {limit:?}", out.method, out.path),
            );
        }
    };
    let status_ok = if http.status.is_empty() {
        answer.is_success()
    } else {
        http.status.contains(&answer.status)
    };
    let fast = http.within.is_none_or(|w| answer.elapsed <= w.as_std());
    let body_ok = http
        .body_contains
        .as_ref()
        .is_none_or(|text| answer.body_text().contains(text.as_str()));
    let mut detail = format!(
        "{} {} -> {} in {:.0}ms",
        out.method,
        out.path,
        answer.status,
        answer.elapsed.as_secs_f64() * 1000.0,
    );
    if !body_ok {
        let began = opening(&answer.body_text());
        detail.push_str(&format!(
            " (body lacks the expected text; it began {began})"
        ));
    }
    let cost_ok = match http.max_cost {
        Some(cap) => {
            let (ok, said) = within_cost(&answer, usage, cap);
            detail.push_str(&format!(" ({said})"));
            ok
        }
        None => true,
    };
    (status_ok && fast && body_ok && cost_ok, detail)
}

/// Whether an answer's cost is under the cap, and what it cost: an answer whose cost cannot
/// be read (no usage, a model without a price) is not shown to be under it, nor is one whose
/// stated cost (the spec's `cost_header`) disagrees with its tokens.
fn within_cost(answer: &gauntlet_net::Response, usage: Option<&Usage>, cap: f64) -> (bool, String) {
    let Some(usage) = usage else {
        return (false, "no prices to cost the answer with".into());
    };
    let read = serde_json::from_slice::<serde_json::Value>(&answer.body)
        .map_err(|_| "the answer is not JSON".to_string())
        .and_then(|body| usage.of(&body));
    let stated = usage
        .cost_header
        .as_deref()
        .and_then(|h| answer.headers.get(h))
        .map(|v| v.to_str().unwrap_or("(not text)"));
    match read {
        Ok((tokens, Some(priced))) => match usage.cross_check(stated, priced) {
            Ok(cost) => (
                cost <= cap,
                format!("{tokens} tokens cost {cost:.6}, cap {cap:.6}"),
            ),
            Err(why) => (false, why),
        },
        Ok((tokens, None)) => (
            false,
            format!("{tokens} tokens from a model without a price"),
        ),
        Err(why) => (false, format!("cost unknown: {why}")),
    }
}

/// The first characters of an answer, quoted, control characters escaped: what a reader
/// needs to see why a probe failed, without pasting a whole page into a report.
pub(crate) fn opening(body: &str) -> String {
    const SHOWN: usize = 80;
    let mut shown: String = body.chars().take(SHOWN).collect();
    if body.chars().nth(SHOWN).is_some() {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// The sum of the series that match the probe's name and labels.
pub async fn scrape(
    client: &HttpClient,
    base_url: &str,
    metric: &MetricProbe,
) -> Result<f64, String> {
    let answer = client
        .send(&Outgoing::get(base_url, &metric.path))
        .await
        .map_err(|e| format!("scrape {}: {e}", metric.path))?;
    if !answer.is_success() {
        return Err(format!("scrape {}: status {}", metric.path, answer.status));
    }
    let families = gauntlet_metrics::parse_text(&answer.body_text())
        .map_err(|e| format!("scrape {}: {e}", metric.path))?;
    let mut total = 0.0;
    let mut found = false;
    for family in &families {
        for sample in &family.samples {
            let named = sample.name == metric.name
                || (family.name == metric.name
                    && !sample.name.ends_with("_created")
                    && !sample.name.ends_with("_bucket"));
            if named
                && metric
                    .labels
                    .iter()
                    .all(|(k, v)| sample.label(k) == Some(v.as_str()))
            {
                total += sample.value;
                found = true;
            }
        }
    }
    if found {
        Ok(total)
    } else {
        // A counter not yet incremented is absent: that is zero, not an error.
        Ok(0.0)
    }
}

async fn command_probe(
    run: &[String],
    expected: i32,
    timeout: Duration,
    env: &crate::child_env::ChildEnv,
) -> (bool, String) {
    let Some((program, args)) = run.split_first() else {
        return (false, "empty command".into());
    };
    let child = env
        .command(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    match tokio::time::timeout(timeout, child).await {
        Ok(Ok(status)) => {
            let code = status.code().unwrap_or(-1);
            (code == expected, format!("`{program}` exited {code}"))
        }
        Ok(Err(e)) => (false, format!("cannot run `{program}`: {e}")),
        Err(_) => (
            false,
            format!("`{program}` did not finish within {timeout:?}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::opening;

    #[test]
    fn an_answer_is_quoted_short_with_its_control_characters_escaped() {
        assert_eq!(opening("<b>hi</b>\n"), r#""<b>hi</b>\n""#);
        let long = "x".repeat(200);
        let shown = opening(&long);
        assert_eq!(shown.chars().filter(|c| *c == 'x').count(), 80);
        assert!(shown.ends_with("…\""), "{shown}");
        assert_eq!(opening(""), "\"\"");
    }
}

#[cfg(test)]
mod cost {
    use super::within_cost;
    use gauntlet_spec::Usage;

    fn usage() -> Usage {
        serde_json::from_value(serde_json::json!({
            "prices": {"small": {"prompt": 1.0, "completion": 2.0}},
            "cost_header": "x-request-cost"
        }))
        .unwrap()
    }

    fn answer(body: &[u8], stated: Option<&str>) -> gauntlet_net::Response {
        let mut headers = hyper::HeaderMap::new();
        if let Some(cost) = stated {
            headers.insert("x-request-cost", cost.parse().unwrap());
        }
        gauntlet_net::Response {
            status: 200,
            headers,
            body: bytes::Bytes::copy_from_slice(body),
            elapsed: std::time::Duration::ZERO,
        }
    }

    const BODY: &[u8] =
        br#"{"model": "small", "usage": {"prompt_tokens": 1000, "completion_tokens": 500}}"#;

    #[test]
    fn an_answer_is_priced_and_held_under_the_cap() {
        // 1000 x 1.0 + 500 x 2.0 per million tokens: 0.002.
        assert!(within_cost(&answer(BODY, None), Some(&usage()), 0.002).0);
        assert!(!within_cost(&answer(BODY, None), Some(&usage()), 0.0019).0);
        // What cannot be priced is not shown to be under the cap.
        let unknown =
            br#"{"model": "large", "usage": {"prompt_tokens": 1, "completion_tokens": 1}}"#;
        assert!(!within_cost(&answer(unknown, None), Some(&usage()), 1.0).0);
        assert!(!within_cost(&answer(b"{}", None), Some(&usage()), 1.0).0);
        assert!(!within_cost(&answer(b"not json", None), Some(&usage()), 1.0).0);
        assert!(!within_cost(&answer(BODY, None), None, 1.0).0);
    }

    #[test]
    fn a_stated_cost_must_agree_with_the_tokens() {
        let ok = within_cost(&answer(BODY, Some("0.00201")), Some(&usage()), 0.0021);
        assert!(ok.0, "{}", ok.1);
        // The cap holds to the larger of the two.
        assert!(!within_cost(&answer(BODY, Some("0.00201")), Some(&usage()), 0.002).0);
        for stated in ["0.0001", "0.004", "free", "-1", "NaN"] {
            let (ok, said) = within_cost(&answer(BODY, Some(stated)), Some(&usage()), 1.0);
            assert!(!ok, "{stated}: {said}");
            assert!(said.contains("x-request-cost"), "{said}");
        }
    }
}
