//! A client of the Prometheus HTTP API: instant and range queries, alerts, rules, targets.
//!
//! Every call has a timeout; a server that cannot be reached or answers 5xx is retried a
//! bounded number of times with exponential backoff, then reported as unavailable; a query
//! the server rejects (400/422) is not retried and carries the server's own message.
//! Credentials come from the environment: `GAUNTLET_PROMETHEUS_TOKEN` (bearer) or
//! `GAUNTLET_PROMETHEUS_USER` and `GAUNTLET_PROMETHEUS_PASSWORD` (basic).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use gauntlet_net::{HttpClient, Outgoing};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::Value;

/// The data of an API answer (`whole`: one with warnings, a partial answer, is refused).
fn answer(status: u16, body: &[u8], path: &str, whole: bool) -> Result<Value, PromError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        PromError::Decode(format!(
            "HTTP {status} to {path}, not API JSON ({e}): {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    })?;
    if envelope.status != "success" {
        return Err(PromError::Query {
            error_type: envelope.error_type,
            error: envelope.error,
        });
    }
    if whole && !envelope.warnings.is_empty() {
        return Err(PromError::Partial(envelope.warnings.join("; ")));
    }
    Ok(envelope.data)
}

/// Answers up to this size are read whole (rules and targets of a large server).
const BODY_LIMIT: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromError {
    /// Not reachable, timed out, or 5xx after every retry.
    #[error("Prometheus at {url} is unavailable after {attempts} attempt(s): {last}")]
    Unavailable {
        url: String,
        attempts: u32,
        last: String,
    },
    /// The server refused the request, with its own words (`bad_data: parse error …`).
    #[error("Prometheus refused the query: {error_type}: {error}")]
    Query { error_type: String, error: String },
    /// An answer that is not what the API documents.
    #[error("unexpected answer from Prometheus: {0}")]
    Decode(String),
    /// The server answered with warnings (a partial answer from Thanos or Mimir, a store
    /// that did not respond): what it says cannot be trusted as whole.
    #[error("Prometheus answered partially: {0}")]
    Partial(String),
    /// HTTP 401 or 403: the server wants credentials, or refused the ones sent.
    #[error("Prometheus at {url} refused access (HTTP {status}): {hint}")]
    Unauthorized {
        url: String,
        status: u16,
        hint: String,
    },
}

/// Credentials; `Debug` never shows them.
#[derive(Clone)]
pub enum Auth {
    Bearer(String),
    Basic { user: String, password: String },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(redacted)"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}, redacted)"),
        }
    }
}

impl Auth {
    /// From `GAUNTLET_PROMETHEUS_TOKEN`, or `GAUNTLET_PROMETHEUS_USER` and `_PASSWORD`.
    pub fn from_env() -> Option<Auth> {
        if let Ok(token) = std::env::var("GAUNTLET_PROMETHEUS_TOKEN") {
            return Some(Auth::Bearer(token));
        }
        let user = std::env::var("GAUNTLET_PROMETHEUS_USER").ok()?;
        let password = std::env::var("GAUNTLET_PROMETHEUS_PASSWORD").unwrap_or_default();
        Some(Auth::Basic { user, password })
    }

    fn header(&self) -> String {
        match self {
            Auth::Bearer(token) => format!("Bearer {token}"),
            Auth::Basic { user, password } => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ),
        }
    }
}

/// One series of an instant query: its labels and its value (NaN and ±Inf included).
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    pub labels: BTreeMap<String, String>,
    pub time: f64,
    pub value: f64,
}

/// One series of a range query.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `pending` or `firing`.
    pub state: String,
    #[serde(rename = "activeAt", default)]
    pub active_at: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Target {
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "scrapeUrl")]
    pub scrape_url: String,
    /// `up`, `down` or `unknown`.
    pub health: String,
    #[serde(rename = "lastError", default)]
    pub last_error: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RuleGroup {
    pub name: String,
    pub file: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Rule {
    pub name: String,
    /// `alerting` or `recording`.
    #[serde(rename = "type")]
    pub kind: String,
    pub query: String,
    #[serde(default)]
    pub health: String,
    #[serde(rename = "lastError", default)]
    pub last_error: String,
    #[serde(default)]
    pub state: Option<String>,
}

#[derive(Clone)]
pub struct Prometheus {
    base: String,
    client: HttpClient,
    auth: Option<Auth>,
    /// Sent as `X-Scope-OrgID` (Mimir, Cortex, Thanos receive/query with tenancy).
    tenant: Option<String>,
    attempts: u32,
    backoff: Duration,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Prometheus({}, auth: {:?})", self.base, self.auth)
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Value,
    #[serde(rename = "errorType", default)]
    error_type: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    warnings: Vec<String>,
}

impl Prometheus {
    /// A client of the server at `base` (`http://127.0.0.1:9090`), each call bounded by `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Prometheus {
        Prometheus {
            base: base.trim_end_matches('/').to_string(),
            client: HttpClient::new(timeout).with_body_limit(BODY_LIMIT),
            auth: Auth::from_env(),
            tenant: None,
            attempts: 3,
            backoff: Duration::from_millis(200),
        }
    }

    /// At most `attempts` tries, waiting `backoff`, then twice that, … between them.
    pub fn with_retries(mut self, attempts: u32, backoff: Duration) -> Prometheus {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    pub fn with_auth(mut self, auth: Option<Auth>) -> Prometheus {
        self.auth = auth;
        self
    }

    /// Queries as tenant `tenant` (`X-Scope-OrgID`), when one is given.
    pub fn with_tenant(mut self, tenant: Option<String>) -> Prometheus {
        self.tenant = tenant;
        self
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// A GET with the credentials, if any.
    fn outgoing(&self, path: &str) -> Outgoing {
        let mut out = Outgoing::get(&self.base, path);
        if let Some(auth) = &self.auth {
            out.headers.insert("authorization".into(), auth.header());
        }
        if let Some(tenant) = &self.tenant {
            out.headers.insert("x-scope-orgid".into(), tenant.clone());
        }
        out
    }

    fn unauthorized(&self, status: u16) -> PromError {
        let hint = match &self.auth {
            None => {
                "it needs credentials: set GAUNTLET_PROMETHEUS_TOKEN (bearer) or GAUNTLET_PROMETHEUS_USER and GAUNTLET_PROMETHEUS_PASSWORD (basic)"
            }
            Some(Auth::Bearer(_)) => {
                "the bearer token from GAUNTLET_PROMETHEUS_TOKEN was not accepted"
            }
            Some(Auth::Basic { .. }) => {
                "the user and password from GAUNTLET_PROMETHEUS_USER and GAUNTLET_PROMETHEUS_PASSWORD were not accepted"
            }
        };
        PromError::Unauthorized {
            url: self.base.clone(),
            status,
            hint: hint.to_string(),
        }
    }

    async fn get(&self, path: &str) -> Result<Value, PromError> {
        self.get_whole(path, false).await
    }

    /// `whole`: an answer with warnings is refused as partial.
    async fn get_whole(&self, path: &str, whole: bool) -> Result<Value, PromError> {
        let out = self.outgoing(path);
        let mut last = String::new();
        let mut wait = self.backoff;
        for attempt in 1..=self.attempts {
            match self.client.send(&out).await {
                // Credentials do not get better by asking again.
                Ok(r) if matches!(r.status, 401 | 403) => {
                    return Err(self.unauthorized(r.status));
                }
                Ok(r) if r.status < 500 => return answer(r.status, &r.body, path, whole),
                Ok(r) => {
                    last = format!(
                        "HTTP {}: {}",
                        r.status,
                        String::from_utf8_lossy(&r.body[..r.body.len().min(200)]).trim()
                    )
                }
                Err(e) => last = e.to_string(),
            }
            if attempt < self.attempts {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        Err(PromError::Unavailable {
            url: self.base.clone(),
            attempts: self.attempts,
            last,
        })
    }

    /// `GET /-/ready`: Ok once the server answers that it is ready.
    pub async fn ready(&self) -> Result<(), PromError> {
        let out = self.outgoing("/-/ready");
        match self.client.send(&out).await {
            Ok(r) if r.status == 200 => Ok(()),
            Ok(r) if matches!(r.status, 401 | 403) => Err(self.unauthorized(r.status)),
            Ok(r) => Err(PromError::Unavailable {
                url: self.base.clone(),
                attempts: 1,
                last: format!("/-/ready answered {}", r.status),
            }),
            Err(e) => Err(PromError::Unavailable {
                url: self.base.clone(),
                attempts: 1,
                last: e.to_string(),
            }),
        }
    }

    /// An instant query at `time` (Unix seconds; the server's now when `None`).
    pub async fn query(
        &self,
        query: &str,
        time: Option<f64>,
    ) -> Result<Vec<InstantSample>, PromError> {
        self.instant(query, time, false).await
    }

    /// An instant query now whose answer must be whole: one with warnings (a partial
    /// answer) is `PromError::Partial`. What a decision is read from.
    pub async fn query_whole(&self, query: &str) -> Result<Vec<InstantSample>, PromError> {
        self.instant(query, None, true).await
    }

    async fn instant(
        &self,
        query: &str,
        time: Option<f64>,
        whole: bool,
    ) -> Result<Vec<InstantSample>, PromError> {
        let mut path = format!("/api/v1/query?query={}", encode(query));
        if let Some(t) = time {
            path.push_str(&format!("&time={t}"));
        }
        let data = self.get_whole(&path, whole).await?;
        match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .ok_or_else(|| PromError::Decode("a vector without `result`".into()))?
                .iter()
                .map(|s| {
                    let (time, value) = point(&s["value"])?;
                    Ok(InstantSample {
                        labels: labels(&s["metric"]),
                        time,
                        value,
                    })
                })
                .collect(),
            Some("scalar") => {
                let (time, value) = point(&data["result"])?;
                Ok(vec![InstantSample {
                    labels: BTreeMap::new(),
                    time,
                    value,
                }])
            }
            other => Err(PromError::Decode(format!(
                "an instant query answered a {}",
                other.unwrap_or("result of no type")
            ))),
        }
    }

    /// A range query from `start` to `end` (Unix seconds) every `step`.
    pub async fn query_range(
        &self,
        query: &str,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<Vec<RangeSeries>, PromError> {
        let path = format!(
            "/api/v1/query_range?query={}&start={start}&end={end}&step={}",
            encode(query),
            step.as_secs_f64()
        );
        let data = self.get(&path).await?;
        if data["resultType"].as_str() != Some("matrix") {
            return Err(PromError::Decode("a range query answered no matrix".into()));
        }
        data["result"]
            .as_array()
            .ok_or_else(|| PromError::Decode("a matrix without `result`".into()))?
            .iter()
            .map(|s| {
                Ok(RangeSeries {
                    labels: labels(&s["metric"]),
                    points: s["values"]
                        .as_array()
                        .map(|v| v.iter().map(point).collect::<Result<Vec<_>, _>>())
                        .transpose()?
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    pub async fn alerts(&self) -> Result<Vec<Alert>, PromError> {
        let data = self.get("/api/v1/alerts").await?;
        serde_json::from_value(data["alerts"].clone()).map_err(|e| PromError::Decode(e.to_string()))
    }

    pub async fn rules(&self) -> Result<Vec<RuleGroup>, PromError> {
        let data = self.get("/api/v1/rules").await?;
        serde_json::from_value(data["groups"].clone()).map_err(|e| PromError::Decode(e.to_string()))
    }

    /// The active targets.
    pub async fn targets(&self) -> Result<Vec<Target>, PromError> {
        let data = self.get("/api/v1/targets?state=active").await?;
        serde_json::from_value(data["activeTargets"].clone())
            .map_err(|e| PromError::Decode(e.to_string()))
    }
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

fn labels(metric: &Value) -> BTreeMap<String, String> {
    metric
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// `[1700000000.123, "0.25"]`: Prometheus sends values as strings (`NaN`, `+Inf` included).
fn point(value: &Value) -> Result<(f64, f64), PromError> {
    let bad = || PromError::Decode(format!("not a [time, \"value\"] pair: {value}"));
    let pair = value.as_array().filter(|a| a.len() == 2).ok_or_else(bad)?;
    let time = pair[0].as_f64().ok_or_else(bad)?;
    let value = match pair[1].as_str().ok_or_else(bad)? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        text => text.parse::<f64>().map_err(|_| bad())?,
    };
    Ok((time, value))
}

#[cfg(test)]
mod tests {
    /// A partial answer as the query API carries it (a success with `warnings`, what
    /// Thanos and Mimir send when a store did not answer). Read whole, it is refused; read
    /// as is, its data is kept.
    #[test]
    fn a_tenant_is_sent_as_x_scope_orgid_and_credentials_as_authorization() {
        let prom = Prometheus::new("http://127.0.0.1:9090/", Duration::from_secs(1))
            .with_auth(Some(Auth::Bearer("t0ken".into())))
            .with_tenant(Some("team-shop".into()));
        let out = prom.outgoing("/api/v1/query?query=up");
        assert_eq!(out.headers["x-scope-orgid"], "team-shop");
        assert_eq!(out.headers["authorization"], "Bearer t0ken");
        let none = Prometheus::new("http://127.0.0.1:9090", Duration::from_secs(1)).with_auth(None);
        assert!(!none.outgoing("/").headers.contains_key("x-scope-orgid"));
    }

    #[test]
    fn an_answer_with_warnings_is_partial_when_it_must_be_whole() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[]},"warnings":["receive: store 10.0.0.7:10901 unavailable"]}"#;
        let err = answer(200, body, "/api/v1/query", true).unwrap_err();
        assert!(
            matches!(&err, PromError::Partial(w) if w.contains("unavailable")),
            "{err}"
        );
        assert!(answer(200, body, "/api/v1/query", false).is_ok());
        let refused = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(matches!(
            answer(400, refused, "/q", true),
            Err(PromError::Query { .. })
        ));
    }

    use super::*;

    #[test]
    fn points_read_prometheus_strings() {
        let p = |v: Value| point(&v);
        assert_eq!(p(serde_json::json!([1.5, "0.25"])).unwrap(), (1.5, 0.25));
        assert_eq!(p(serde_json::json!([1, "+Inf"])).unwrap().1, f64::INFINITY);
        assert!(p(serde_json::json!([1, "NaN"])).unwrap().1.is_nan());
        assert!(p(serde_json::json!([1, 0.25])).is_err());
        assert!(p(serde_json::json!("x")).is_err());
    }

    #[test]
    fn queries_are_encoded_whole() {
        assert_eq!(
            encode(r#"sum(rate(x{a="b"}[1m]))"#),
            "sum%28rate%28x%7Ba%3D%22b%22%7D%5B1m%5D%29%29"
        );
    }

    #[test]
    fn basic_auth_is_base64_of_user_and_password() {
        let auth = Auth::Basic {
            user: "u".into(),
            password: "p".into(),
        };
        assert_eq!(auth.header(), "Basic dTpw");
    }
}
