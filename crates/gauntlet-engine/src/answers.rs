//! Asking a service something and reading its answer: what the quality gate and the AI
//! probes share. A request template's `{input}` is replaced by the text, JSON-escaped; the
//! answer is the body, or the value at a JSON Pointer in it.

use gauntlet_net::{HttpClient, Outgoing, Response};
use gauntlet_spec::Request;

/// The most a dataset or probe file a spec names may hold: bytes, and documents.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
const MAX_LINES: usize = 100_000;

/// A JSON Lines file the spec names (relative to it, never outside its directory), each
/// non-blank line parsed as `T`.
pub fn read_spec_lines<T: serde::de::DeserializeOwned>(
    spec_path: &std::path::Path,
    rel: &str,
    shape: &str,
) -> Result<Vec<T>, String> {
    let path = crate::prom::spec_file(spec_path, rel).map_err(|e| format!("{rel}: {e}"))?;
    read_json_lines(&path, rel, shape)
}

/// JSON Lines at `path` (shown as `shown`), bounded in size and count; a bad line is named
/// by file:line:col with `shape`, what a line should look like.
pub fn read_json_lines<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    shown: &str,
    shape: &str,
) -> Result<Vec<T>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "{shown} is over {MAX_FILE_BYTES} bytes, the most it may be"
        ));
    }
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str(line).map_err(|e| {
            format!(
                "{shown}:{}:{}: {e} (each line is {shape})",
                number + 1,
                e.column()
            )
        })?;
        out.push(parsed);
        if out.len() > MAX_LINES {
            return Err(format!("{shown} has more than {MAX_LINES} lines"));
        }
    }
    Ok(out)
}

/// A request template filled in: each `{name}` replaced by its value (as given) in the
/// path, header values and body.
pub fn fill(request: &Request, base: &str, values: &[(&str, &str)]) -> Outgoing {
    let put = |text: &str| {
        values.iter().fold(text.to_string(), |t, (k, v)| {
            t.replace(&format!("{{{k}}}"), v)
        })
    };
    Outgoing {
        base: base.trim_end_matches('/').to_string(),
        method: request.method.as_str().to_string(),
        path: put(&request.path),
        headers: request
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), put(v)))
            .collect(),
        body: request.body.as_deref().map(put),
    }
}

/// The request for one input: `{input}` replaced by it, JSON-escaped (a template puts it
/// inside quotes in a JSON body).
pub fn request_for(request: &Request, base: &str, input: &str) -> Outgoing {
    let quoted = serde_json::to_string(input).unwrap_or_default();
    let escaped = quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default();
    fill(request, base, &[("input", escaped)])
}

/// The answer in a response: the whole body, or the value at `pointer` (a string as it is,
/// anything else as JSON). A refusal status or a missing answer says why.
pub fn answer_text(response: &Response, pointer: Option<&str>) -> Result<String, String> {
    if !response.is_success() {
        return Err(format!("answered {}", response.status));
    }
    let Some(at) = pointer else {
        return Ok(response.body_text());
    };
    let body: serde_json::Value =
        serde_json::from_slice(&response.body).map_err(|_| "the answer is not JSON".to_string())?;
    match body.pointer(at) {
        Some(serde_json::Value::String(text)) => Ok(text.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(format!("no answer at {at}")),
    }
}

/// What asking gave: an answer, a refusal (a 4xx: the service said no), or nothing (a
/// server error or no answer at all: unmeasured).
#[derive(Debug, Clone, PartialEq)]
pub enum Answered {
    Said(String),
    Refused(u16),
    Unanswered(String),
}

/// Asks every input, `at_once` at a time, within `budget`: one result per input asked, in
/// order (inputs left when the budget ran out are not asked).
pub async fn ask_all(
    client: &HttpClient,
    (request, base, pointer): (&Request, &str, Option<&str>),
    inputs: &[String],
    at_once: usize,
    budget: std::time::Duration,
) -> Vec<Answered> {
    in_waves(inputs, at_once, budget, |input| async move {
        let sent = request_for(request, base, input);
        match client.send(&sent).await {
            Ok(r) if (400..500).contains(&r.status) => Answered::Refused(r.status),
            Ok(r) => match answer_text(&r, pointer) {
                Ok(text) => Answered::Said(text),
                Err(why) => Answered::Unanswered(why),
            },
            Err(e) => Answered::Unanswered(format!("no answer: {e}")),
        }
    })
    .await
}

/// `ask` for every input, `at_once` at a time, until `budget` runs out: one result per input
/// asked, in input order (those left when the budget ran out are not asked).
pub async fn in_waves<'a, T, R, F, Fut>(
    inputs: &'a [T],
    at_once: usize,
    budget: std::time::Duration,
    ask: F,
) -> Vec<R>
where
    F: Fn(&'a T) -> Fut,
    Fut: std::future::Future<Output = R>,
{
    let started = std::time::Instant::now();
    let mut out = Vec::with_capacity(inputs.len());
    for wave in inputs.chunks(at_once.max(1)) {
        if started.elapsed() >= budget {
            break;
        }
        out.extend(futures_util::future::join_all(wave.iter().map(&ask)).await);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_is_escaped_into_a_json_body() {
        let request = Request {
            method: gauntlet_spec::Method::Post,
            path: "/answer".into(),
            headers: Default::default(),
            body: Some(r#"{"question": "{input}"}"#.into()),
            weight: std::num::NonZeroU32::MIN,
        };
        let out = request_for(&request, "http://127.0.0.1:1/", "say \"hi\"\n\\ now");
        let body: serde_json::Value = serde_json::from_str(out.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["question"], "say \"hi\"\n\\ now");
        assert_eq!(out.base, "http://127.0.0.1:1");
    }
}
