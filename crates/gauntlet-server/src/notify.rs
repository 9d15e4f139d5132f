//! Notifications: when a run ends (its decision) and when a CONDITIONAL waits for sign-offs,
//! a generic webhook (JSON, signed with HMAC-SHA256 in `X-Gauntlet-Signature`), a Slack
//! incoming webhook (blocks: decision, reason, link) and email over SMTP (STARTTLS when the
//! server offers it). Each delivery is tried up to four times with doubling backoff, every
//! attempt is in the audit log, and a delivery that fails never changes a decision.
//! Secrets (the HMAC key, the Slack URL, SMTP credentials) come from the environment or a
//! file and never reach a log, an audit line or an answer.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use serde_json::json;

use crate::audit::{Audit, Event};
use crate::metrics::Metrics;

/// What a target is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Occasion {
    /// A run ended: its decision.
    Decision,
    /// A run ended CONDITIONAL on sign-offs not yet given.
    AwaitingSignoff,
    /// A run's decision rests on a waiver that expires within a week.
    WaiverExpiring,
}

impl Occasion {
    pub fn parse(text: &str) -> Option<Occasion> {
        match text {
            "decision" => Some(Occasion::Decision),
            "awaiting-signoff" => Some(Occasion::AwaitingSignoff),
            "waiver-expiring" => Some(Occasion::WaiverExpiring),
            _ => None,
        }
    }
}

/// Where a notice goes. `Debug` never shows a secret.
#[derive(Clone)]
pub enum Channel {
    Webhook {
        url: String,
        secret: Option<Vec<u8>>,
    },
    Slack {
        url: String,
    },
    Email(Email),
}

#[derive(Clone)]
pub struct Email {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub to: Vec<String>,
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Channel {
    /// How the audit log and metrics name it: never its URL, which may be a secret.
    pub fn name(&self) -> &'static str {
        match self {
            Channel::Webhook { .. } => "webhook",
            Channel::Slack { .. } => "slack",
            Channel::Email(_) => "email",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Target {
    pub channel: Channel,
    pub on: Vec<Occasion>,
}

/// What happened, as every channel tells it.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub occasion: Occasion,
    pub service: String,
    pub version: String,
    pub run: String,
    pub decision: String,
    pub summary: String,
    pub url: String,
    /// Roles whose sign-off is awaited.
    pub awaiting: Vec<String>,
    /// Waivers that expire soon: the check, its owner and the deadline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expiring: Vec<String>,
}

pub struct Notifier {
    targets: Vec<Target>,
    audit: Arc<Audit>,
    metrics: Arc<Metrics>,
    /// The wait before the second attempt; it doubles after each.
    backoff: Duration,
}

const ATTEMPTS: u32 = 4;

impl Notifier {
    pub fn new(targets: Vec<Target>, audit: Arc<Audit>, metrics: Arc<Metrics>) -> Notifier {
        Notifier {
            targets,
            audit,
            metrics,
            backoff: Duration::from_millis(500),
        }
    }

    /// Sends `notice` to every target that wants it, in the background.
    pub fn send(self: &Arc<Self>, notice: Notice) {
        for (index, target) in self.targets.iter().enumerate() {
            if !target.on.contains(&notice.occasion) {
                continue;
            }
            let (notifier, channel, notice) =
                (self.clone(), target.channel.clone(), notice.clone());
            tokio::spawn(async move { notifier.deliver(index, &channel, &notice).await });
        }
    }

    async fn deliver(&self, index: usize, channel: &Channel, notice: &Notice) {
        let mut wait = self.backoff;
        for attempt in 1..=ATTEMPTS {
            let sent = tokio::time::timeout(Duration::from_secs(10), send(channel, notice))
                .await
                .unwrap_or_else(|_| Err("no answer within 10s".into()));
            let outcome = match &sent {
                Ok(said) => format!("delivered on attempt {attempt}: {said}"),
                Err(why) => format!("attempt {attempt} of {ATTEMPTS} failed: {why}"),
            };
            let recorded = self.audit.record(Event {
                action: format!("notify {:?}", notice.occasion).to_lowercase(),
                resource: format!("{} #{} run {}", channel.name(), index + 1, notice.run),
                outcome: outcome.clone(),
                ..Event::default()
            });
            if let Err(e) = recorded {
                tracing::error!("the audit log cannot be written: {e}");
            }
            let done = sent.is_ok() || attempt == ATTEMPTS;
            let result = if sent.is_ok() {
                "delivered"
            } else if done {
                "failed"
            } else {
                "retried"
            };
            self.metrics.notification(channel.name(), result);
            if done {
                tracing::info!(run = %notice.run, channel = channel.name(), "{outcome}");
                return;
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
}

async fn send(channel: &Channel, notice: &Notice) -> Result<String, String> {
    match channel {
        Channel::Webhook { url, secret } => {
            let body = serde_json::to_vec(notice).map_err(|e| e.to_string())?;
            let mut headers = vec![(
                "x-gauntlet-event",
                format!("{:?}", notice.occasion).to_lowercase(),
            )];
            if let Some(key) = secret {
                let mut mac =
                    hmac::Hmac::<sha2::Sha256>::new_from_slice(key).map_err(|e| e.to_string())?;
                mac.update(&body);
                let signature = hex::encode(mac.finalize().into_bytes());
                headers.push(("x-gauntlet-signature", format!("sha256={signature}")));
            }
            post(url, &headers, body).await
        }
        Channel::Slack { url } => {
            let body = serde_json::to_vec(&slack_message(notice)).map_err(|e| e.to_string())?;
            post(url, &[], body).await
        }
        Channel::Email(email) => send_mail(email, notice).await,
    }
}

/// A Slack message: the decision as its header, the reason, and the link.
pub fn slack_message(notice: &Notice) -> serde_json::Value {
    let title = format!(
        "{} — {} {}",
        notice.decision, notice.service, notice.version
    );
    let mut reason = notice.summary.clone();
    if !notice.awaiting.is_empty() {
        reason.push_str(&format!(
            "\nAwaiting sign-off: {}",
            notice.awaiting.join(", ")
        ));
    }
    for waiver in &notice.expiring {
        reason.push_str(&format!("\nWaiver expiring: {waiver}"));
    }
    json!({
        "text": format!("{title}: {}", notice.summary),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title}},
            {"type": "section", "text": {"type": "mrkdwn", "text": reason}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("run `{}` · <{}|report>", notice.run, notice.url)}]}
        ]
    })
}

/// POSTs JSON over HTTP or HTTPS (web PKI roots); a non-2xx answer is a failure.
async fn post(url: &str, headers: &[(&str, String)], body: Vec<u8>) -> Result<String, String> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<Bytes>>(connector);
    let mut request = hyper::Request::post(url).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| "the target's URL is not valid".to_string())?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("cannot send: {}", without_url(&e.to_string(), url)))?;
    let status = response.status();
    // Read (and drop) the answer so the connection ends cleanly.
    let _ = response.into_body().collect().await;
    if status.is_success() {
        Ok(status.as_u16().to_string())
    } else {
        Err(format!("answered {}", status.as_u16()))
    }
}

/// An error message with the URL (a secret for Slack) taken out.
fn without_url(message: &str, url: &str) -> String {
    message.replace(url, "[the target's URL]")
}

async fn send_mail(email: &Email, notice: &Notice) -> Result<String, String> {
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let mut message = Message::builder()
        .from(email.from.parse().map_err(|e| format!("from: {e}"))?)
        .subject(format!(
            "[gauntlet] {}: {} {}",
            notice.decision, notice.service, notice.version
        ));
    for to in &email.to {
        message = message.to(to.parse().map_err(|e| format!("to: {e}"))?);
    }
    let mut text = format!("{}\n\nRun {}: {}\n", notice.summary, notice.run, notice.url);
    if !notice.awaiting.is_empty() {
        text.push_str(&format!(
            "Awaiting sign-off: {}\n",
            notice.awaiting.join(", ")
        ));
    }
    for waiver in &notice.expiring {
        text.push_str(&format!("Waiver expiring: {waiver}\n"));
    }
    let message = message.body(text).map_err(|e| e.to_string())?;
    let tls = TlsParameters::new(email.host.clone()).map_err(|e| e.to_string())?;
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&email.host)
        .port(email.port)
        .tls(Tls::Opportunistic(tls))
        .timeout(Some(Duration::from_secs(10)));
    if let Some((user, password)) = &email.credentials {
        transport =
            transport.credentials(lettre::transport::smtp::authentication::Credentials::new(
                user.clone(),
                password.clone(),
            ));
    }
    let sent = transport
        .build()
        .send(message)
        .await
        .map_err(|e| format!("SMTP: {e}"))?;
    Ok(format!("SMTP {}", sent.code()))
}
