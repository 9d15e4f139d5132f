//! How an AI service's answers report what they used (JSON Pointers to token counts and the
//! model that answered, OpenAI-compatible by default) and what each model's tokens cost:
//! read by the quality step (tokens and cost per request) and by probes with a cost cap.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::validate::{Problems, quoted};

/// An answer's usage, as JSON Pointers into it (OpenAI-compatible defaults), and prices.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    #[serde(default = "prompt_tokens")]
    pub prompt_tokens: String,
    #[serde(default = "completion_tokens")]
    pub completion_tokens: String,
    #[serde(default = "model")]
    pub model: String,
    /// A response header in which the service states an answer's cost itself (e.g.
    /// `x-request-cost`): when an answer carries it, it must agree with its tokens at the
    /// spec's prices (within 1%), and a cost cap holds to the larger of the two.
    #[serde(default)]
    pub cost_header: Option<String>,
    /// Price per million tokens, by model name: `{demo-small: {prompt: 0.15, completion: 0.6}}`
    /// (any currency; reports say "per request" in the same one).
    #[serde(default)]
    pub prices: BTreeMap<String, Price>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub prompt: f64,
    pub completion: f64,
}

fn prompt_tokens() -> String {
    "/usage/prompt_tokens".into()
}
fn completion_tokens() -> String {
    "/usage/completion_tokens".into()
}
fn model() -> String {
    "/model".into()
}

impl Usage {
    pub(crate) fn check(&self, p: &mut Problems<'_>) {
        for (name, at) in [
            ("prompt_tokens", &self.prompt_tokens),
            ("completion_tokens", &self.completion_tokens),
            ("model", &self.model),
        ] {
            if !at.is_empty() && !at.starts_with('/') {
                p.key(
                    &format!("usage.{name}"),
                    format!("`{}` is not a JSON Pointer", quoted(at)),
                    Some(format!(
                        "write it from the root: `/{}`",
                        at.replace('.', "/")
                    )),
                );
            }
        }
        for (model, price) in &self.prices {
            let fine = |x: f64| x.is_finite() && x >= 0.0;
            if !fine(price.prompt) || !fine(price.completion) {
                p.key(
                    &format!("usage.prices.{model}"),
                    format!(
                        "the price of `{}` must be a number of zero or more",
                        quoted(model)
                    ),
                    None,
                );
            }
        }
    }

    /// The tokens an answer says it used (prompt + completion) and, when its model has a
    /// price, their cost; or why they cannot be read.
    pub fn of(&self, body: &serde_json::Value) -> Result<(u64, Option<f64>), String> {
        let count = |at: &str| {
            body.pointer(at)
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| format!("no token count at {at}"))
        };
        let (prompt, completion) = (count(&self.prompt_tokens)?, count(&self.completion_tokens)?);
        let model = body
            .pointer(&self.model)
            .and_then(serde_json::Value::as_str);
        let cost = model.and_then(|m| self.prices.get(m)).map(|price| {
            (prompt as f64 * price.prompt + completion as f64 * price.completion) / 1e6
        });
        Ok((prompt + completion, cost))
    }

    /// The cost an answer states in `cost_header` checked against its tokens' cost: the
    /// cost to hold to a cap (the larger), or why they disagree. `None` stated: the tokens'.
    pub fn cross_check(&self, stated: Option<&str>, priced: f64) -> Result<f64, String> {
        let (Some(header), Some(stated)) = (&self.cost_header, stated) else {
            return Ok(priced);
        };
        let said: f64 = stated
            .trim()
            .parse()
            .ok()
            .filter(|c: &f64| c.is_finite() && *c >= 0.0)
            .ok_or_else(|| format!("`{header}: {stated}` is not a cost"))?;
        let tolerance = priced.max(said) * 0.01 + 1e-12;
        if (said - priced).abs() > tolerance {
            return Err(format!(
                "`{header}` says {said:.6}, but its tokens at the spec's prices cost {priced:.6}"
            ));
        }
        Ok(said.max(priced))
    }
}
