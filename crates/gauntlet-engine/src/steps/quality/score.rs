//! The golden set and how one answer is scored: the dataset read (bounded, every line
//! checked), an arm asked, the answer found and held to every assertion.

use std::path::Path;
use std::time::Duration;

use gauntlet_net::{HttpClient, Outgoing, Response};
use gauntlet_spec::{Assertion, QualityPlan, Usage};
use serde::{Deserialize, Serialize};

use crate::child_env::ChildEnv;

/// One item of the golden set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub input: String,
    #[serde(default)]
    pub expected: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Reads the golden set; a line that is not an item is named by file:line:col.
pub fn read_items(path: &Path, shown: &str) -> Result<Vec<Item>, String> {
    let shape = r#"{"input": "...", "expected": ["..."], "tags": ["..."]}"#;
    crate::answers::read_json_lines(path, shown, shape)
}

/// The assertions, ready to apply (regular expressions compiled once).
pub struct Scorer {
    checks: Vec<(Assertion, Option<regex::Regex>)>,
    answer_at: Option<String>,
    usage: Option<Usage>,
}

/// One arm's answer to one item: whether it passed, what it said, and why not.
#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    pub pass: bool,
    pub answer: String,
    /// Tokens the answer used (prompt + completion) and what they cost, when it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl Scored {
    fn fail(answer: String, why: String) -> Scored {
        Scored {
            pass: false,
            answer,
            tokens: None,
            cost: None,
            why: Some(why),
        }
    }
}

impl Scorer {
    pub fn new(plan: &QualityPlan) -> Result<Scorer, String> {
        let mut checks = Vec::new();
        for assertion in &plan.assertions {
            let compiled = match assertion {
                Assertion::Regex { value } | Assertion::NotRegex { value } => Some(
                    regex::RegexBuilder::new(value)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|e| format!("regex `{value}`: {e}"))?,
                ),
                _ => None,
            };
            checks.push((assertion.clone(), compiled));
        }
        Ok(Scorer {
            checks,
            answer_at: plan.answer.clone(),
            usage: plan.usage.clone(),
        })
    }

    /// The answer in a response, held to every assertion (the first that fails says why).
    pub async fn score(&self, item: &Item, response: &Response, env: &ChildEnv) -> Scored {
        let answer = match crate::answers::answer_text(response, self.answer_at.as_deref()) {
            Ok(answer) => answer,
            Err(why) => return Scored::fail(response.body_text(), why),
        };
        let body: Option<serde_json::Value> = serde_json::from_slice(&response.body).ok();
        let (tokens, cost) = self.usage_of(body.as_ref(), response);
        let mut scored = Scored {
            pass: true,
            answer,
            tokens,
            cost,
            why: None,
        };
        for (assertion, compiled) in &self.checks {
            let held = hold(
                assertion,
                compiled.as_ref(),
                item,
                &scored.answer,
                body.as_ref(),
                env,
            );
            if let Err(why) = held.await {
                scored.pass = false;
                scored.why = Some(why);
                break;
            }
        }
        scored
    }

    /// The tokens an answer says it used, and their cost by the price of the model that
    /// answered (none when the model has no price, or when the cost the answer states in
    /// the spec's `cost_header` disagrees with it: a cost that cannot be trusted is unknown).
    fn usage_of(
        &self,
        body: Option<&serde_json::Value>,
        response: &Response,
    ) -> (Option<u64>, Option<f64>) {
        let (Some(usage), Some(body)) = (&self.usage, body) else {
            return (None, None);
        };
        let Ok((tokens, priced)) = usage.of(body) else {
            return (None, None);
        };
        let stated = usage
            .cost_header
            .as_deref()
            .and_then(|h| response.headers.get(h))
            .map(|v| v.to_str().unwrap_or("(not text)"));
        let cost = priced.and_then(|p| usage.cross_check(stated, p).ok());
        (Some(tokens), cost)
    }
}

async fn hold(
    assertion: &Assertion,
    compiled: Option<&regex::Regex>,
    item: &Item,
    answer: &str,
    body: Option<&serde_json::Value>,
    env: &ChildEnv,
) -> Result<(), String> {
    match assertion {
        Assertion::ContainsAll => match item.expected.iter().find(|f| !answer.contains(f.as_str()))
        {
            Some(missing) => Err(format!("lacks `{missing}`")),
            None => Ok(()),
        },
        Assertion::IcontainsAll => {
            let lower = answer.to_lowercase();
            match item
                .expected
                .iter()
                .find(|f| !lower.contains(&f.to_lowercase()))
            {
                Some(missing) => Err(format!("lacks `{missing}` (any case)")),
                None => Ok(()),
            }
        }
        Assertion::Regex { value } => match compiled.is_some_and(|r| r.is_match(answer)) {
            true => Ok(()),
            false => Err(format!("does not match `{value}`")),
        },
        Assertion::NotRegex { value } => match compiled.is_some_and(|r| r.is_match(answer)) {
            true => Err(format!("matches `{value}`")),
            false => Ok(()),
        },
        Assertion::JsonEquals { path, value } => match body.and_then(|b| b.pointer(path)) {
            Some(found) if found == value => Ok(()),
            Some(found) => Err(format!("{path} is {found}, not {value}")),
            None => Err(format!("no {path} in the response")),
        },
        Assertion::Command { run, timeout } => {
            grade(run, timeout.as_std(), item, answer, env).await
        }
    }
}

/// An external grader: the item and the answer on its standard input, exit 0 a pass.
async fn grade(
    run: &[String],
    timeout: Duration,
    item: &Item,
    answer: &str,
    env: &ChildEnv,
) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let Some((program, args)) = run.split_first() else {
        return Err("empty grader command".into());
    };
    let input = serde_json::json!({"input": item.input, "expected": item.expected, "tags": item.tags, "answer": answer});
    let mut child = env
        .command(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run grader `{program}`: {e}"))?;
    let graded = async {
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input.to_string().as_bytes()).await;
        }
        child.wait().await
    };
    match tokio::time::timeout(timeout, graded).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("grader `{program}` said no ({status})")),
        Ok(Err(e)) => Err(format!("grader `{program}`: {e}")),
        Err(_) => Err(format!(
            "grader `{program}` did not finish within {timeout:?}"
        )),
    }
}

/// Asks one arm `repeat` times: passed only if every answer passed (the first failure kept).
pub async fn ask(
    client: &HttpClient,
    out: &Outgoing,
    repeat: u32,
    scorer: &Scorer,
    item: &Item,
    env: &ChildEnv,
) -> Scored {
    let mut last = Scored::fail(String::new(), "not asked".into());
    for _ in 0..repeat {
        last = match client.send(out).await {
            Ok(response) => scorer.score(item, &response, env).await,
            Err(e) => Scored::fail(String::new(), format!("no answer: {e}")),
        };
        if !last.pass {
            break;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_bad_line_is_named_by_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("golden.jsonl");
        std::fs::write(
            &path,
            "{\"input\": \"a\", \"expected\": [\"b\"]}\n\n{\"input\": 3}\n",
        )
        .unwrap();
        let err = read_items(&path, "golden.jsonl").unwrap_err();
        assert!(err.starts_with("golden.jsonl:3:"), "{err}");
        std::fs::write(
            &path,
            "{\"input\": \"a\", \"tags\": [\"t\"], \"extra\": 1}\n",
        )
        .unwrap();
        assert!(read_items(&path, "golden.jsonl").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Whatever a golden set holds, reading it answers items or a located error, never
        /// a panic.
        #[test]
        fn any_golden_set_reads_or_is_refused_with_a_location(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("golden.jsonl");
            std::fs::write(&path, &bytes).unwrap();
            match read_items(&path, "golden.jsonl") {
                Ok(items) => prop_assert!(items.len() <= bytes.len()),
                Err(why) => prop_assert!(why.contains("golden.jsonl"), "{}", why),
            }
        }
    }
}
