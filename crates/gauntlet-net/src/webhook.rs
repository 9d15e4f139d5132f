//! An Alertmanager-compatible webhook receiver: Alertmanager POSTs its notifications here
//! (the webhook payload, version 4) and every alert in them is recorded with the moment it
//! arrived, so the time from a fault to the page is measured, not assumed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// One alert of one notification.
#[derive(Debug, Clone)]
pub struct AlertNotice {
    /// When the notification reached gauntlet.
    pub arrived: Instant,
    pub arrived_at: SystemTime,
    /// `labels.alertname`.
    pub name: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// When Prometheus says the alert started firing (RFC 3339).
    pub starts_at: String,
    pub labels: BTreeMap<String, String>,
    /// The Alertmanager receiver that sent it.
    pub receiver: String,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    receiver: String,
    alerts: Vec<PayloadAlert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PayloadAlert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    starts_at: String,
}

struct Shared {
    notices: Mutex<Vec<AlertNotice>>,
    count: watch::Sender<usize>,
}

/// A running receiver; dropping it stops it.
pub struct AlertReceiver {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AlertReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AlertReceiver {
    /// Listens on `listen` (port 0: a free one).
    #[inline(never)]
    pub fn start(listen: SocketAddr) -> crate::BoxFuture<'static, std::io::Result<Self>> {
        Box::pin(Self::listen(listen))
    }

    async fn listen(listen: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            notices: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
        });
        let state = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(&state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { shared, addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to give Alertmanager's `webhook_configs`.
    pub fn url(&self) -> String {
        format!("http://{}/alerts", self.addr)
    }

    /// Every alert received so far, in order of arrival.
    pub fn notices(&self) -> Vec<AlertNotice> {
        self.shared
            .notices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The first alert received (already, or until `deadline`) that `wanted` accepts.
    pub async fn wait_for(
        &self,
        wanted: impl Fn(&AlertNotice) -> bool,
        deadline: tokio::time::Instant,
    ) -> Option<AlertNotice> {
        let mut changes = self.shared.count.subscribe();
        loop {
            changes.mark_unchanged();
            if let Some(found) = self.notices().into_iter().find(|n| wanted(n)) {
                return Some(found);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                _ => return None,
            }
        }
    }
}

async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, text: &str| {
        let mut response = Response::new(Full::new(Bytes::from(text.to_string())));
        *response.status_mut() = status;
        response
    };
    if request.method() != Method::POST {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST Alertmanager webhook notifications here\n",
        );
    }
    let arrived = Instant::now();
    let arrived_at = SystemTime::now();
    let body = match Limited::new(request.into_body(), BODY_LIMIT)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => return reply(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"),
    };
    let payload: Payload = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                &format!("not an Alertmanager webhook payload: {e}\n"),
            );
        }
    };
    let mut notices = shared.notices.lock().unwrap_or_else(|e| e.into_inner());
    for alert in payload.alerts {
        notices.push(AlertNotice {
            arrived,
            arrived_at,
            name: alert.labels.get("alertname").cloned().unwrap_or_default(),
            status: alert.status,
            starts_at: alert.starts_at,
            labels: alert.labels,
            receiver: payload.receiver.clone(),
        });
    }
    let count = notices.len();
    drop(notices);
    shared.count.send_replace(count);
    reply(StatusCode::OK, "ok\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HttpClient;
    use crate::client::Outgoing;
    use std::time::Duration;

    fn post(base: &str, body: &str) -> Outgoing {
        let mut out = Outgoing::get(base, "/alerts");
        out.method = "POST".into();
        out.headers
            .insert("content-type".into(), "application/json".into());
        out.body = Some(body.into());
        out
    }

    #[tokio::test]
    async fn a_notification_is_recorded_and_wakes_a_waiter() {
        let receiver = AlertReceiver::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let base = format!("http://{}", receiver.addr());
        let client = HttpClient::new(Duration::from_secs(5));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let waiting = receiver.wait_for(|n| n.name == "PrimaryDown", deadline);
        let send = async {
            let bad = client.send(&post(&base, "{\"version\": 4}")).await.unwrap();
            assert_eq!(bad.status, 400);
            let body = r#"{"version":"4","status":"firing","receiver":"gauntlet","groupKey":"{}:{alertname=\"PrimaryDown\"}",
                "alerts":[{"status":"firing","labels":{"alertname":"PrimaryDown","severity":"page"},
                "annotations":{},"startsAt":"2026-11-22T10:00:00.5Z","endsAt":"0001-01-01T00:00:00Z"}]}"#;
            let ok = client.send(&post(&base, body)).await.unwrap();
            assert_eq!(ok.status, 200);
        };
        let (found, ()) = tokio::join!(waiting, send);
        let found = found.expect("the waiter saw the alert");
        assert_eq!(found.status, "firing");
        assert_eq!(found.labels["severity"], "page");
        assert_eq!(found.receiver, "gauntlet");
        assert_eq!(found.starts_at, "2026-11-22T10:00:00.5Z");
        // A name that never comes: the wait ends at its deadline.
        let soon = tokio::time::Instant::now() + Duration::from_millis(50);
        assert!(
            receiver
                .wait_for(|n| n.name == "Other", soon)
                .await
                .is_none()
        );
        assert_eq!(receiver.notices().len(), 1);
    }
}
