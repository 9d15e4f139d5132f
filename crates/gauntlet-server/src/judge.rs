//! The judge that progressive-delivery controllers call.
//!
//! - **Argo Rollouts** (web metric provider): `POST /v1/judge/argo` with a service and a key
//!   (the AnalysisRun's, e.g. rollout and revision). The first call starts the run the key
//!   names; every call answers 200 with `{decision, reason, run, url}`: `CONTINUE` while it
//!   runs, then its decision. A template with `successCondition: result.decision == "GO"`
//!   and `failureCondition: result.decision == "NO-GO"` sees anything else as inconclusive.
//!   Non-2xx is kept for gauntlet itself failing (Argo counts it as an error).
//! - **Flagger** (webhooks): `POST /v1/judge/flagger/{hook}` with Flagger's payload; the key
//!   is the canary's name, namespace and checksum. Only 200–202 count for Flagger, so each
//!   hook answers 2xx exactly when its condition holds (409 otherwise, with the verdict in
//!   the body, which Flagger shows in its events): `confirm-rollout` starts the run of the
//!   pre-traffic steps and holds the rollout until it is GO or CONDITIONAL;
//!   `confirm-traffic-increase` starts the canary (keyed `KEY/canary`, judging the traffic
//!   Flagger moves, from Prometheus) and says yes to the first increase, then to one more
//!   each time a stage's sequential test accepts; `confirm-promotion` holds until both runs
//!   are GO with their sign-offs; `rollback` answers 2xx when either is NO-GO;
//!   `post-rollout` and `event` are recorded.

use std::collections::BTreeMap;
use std::path::Path;

use gauntlet_report::Decision;
use gauntlet_spec::StepName;
use serde::{Deserialize, Serialize};

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::{ApiError, Asked, Shared, audit, authorize, parse_body, with_store};
use crate::runs::{Increase, RunRequest};
use crate::tokens::Role;

/// What a run says to a controller now.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Verdict {
    /// `CONTINUE` while the run is in progress, then its decision (sign-offs given since the
    /// run count: a CONDITIONAL whose sign-offs are all in is GO).
    pub decision: String,
    pub reason: String,
    pub run: String,
    pub url: String,
}

pub const CONTINUE: &str = "CONTINUE";

/// Argo's request: the service, the key that names the run, and what to run.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArgoRequest {
    pub service: String,
    pub key: String,
    #[serde(default)]
    pub only: Vec<String>,
    #[serde(default)]
    pub skip: Vec<String>,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub seed: Option<u64>,
    /// Values for variables the spec passes to its systems (see `RunRequest`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl ArgoRequest {
    pub fn run_request(&self) -> RunRequest {
        RunRequest {
            only: self.only.clone(),
            skip: self.skip.clone(),
            profile: self.profile.clone(),
            seed: self.seed,
            env: self.env.clone(),
        }
    }
}

/// Flagger's webhook payload (fields it may add later are ignored). Its metadata values are
/// strings: `service` (default: the canary's name), `only` and `skip` (comma-separated
/// steps), `profile`, `seed`, `env.NAME` (a value for a variable the spec passes), and
/// `token` when the webhook cannot send a header.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct FlaggerPayload {
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub checksum: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl FlaggerPayload {
    pub fn service(&self) -> &str {
        self.metadata.get("service").unwrap_or(&self.name)
    }

    /// The run this canary revision is judged by.
    pub fn key(&self) -> String {
        format!(
            "flagger/{}/{}/{}",
            self.namespace,
            self.name,
            self.checksum.as_deref().unwrap_or("-")
        )
    }

    /// What to run; by default the pre-traffic steps of `configured`: everything but the
    /// canary and its rehearsal (skipped), which need the traffic Flagger has not moved yet.
    pub fn run_request(&self, configured: &[StepName]) -> Result<RunRequest, ApiError> {
        let list = |key: &str| {
            self.metadata
                .get(key)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let only: Vec<String> = list("only");
        let mut skip: Vec<String> = list("skip");
        if only.is_empty() && skip.is_empty() {
            // Skipped rather than the rest listed in `only`: a spec whose only step needs
            // traffic must not run it here (an empty `only` would mean every step).
            let needs_traffic = [StepName::Canary, StepName::RollbackRehearsal];
            skip = configured
                .iter()
                .filter(|s| needs_traffic.contains(s))
                .map(|s| s.as_str().to_string())
                .collect();
        }
        let seed =
            match self.metadata.get("seed") {
                Some(s) => Some(s.parse().map_err(|_| {
                    ApiError::Invalid(format!("metadata.seed `{s}` is not a number"))
                })?),
                None => None,
            };
        let env = self
            .metadata
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("env.")?.to_string(), v.clone())))
            .collect();
        Ok(RunRequest {
            only,
            skip,
            profile: self.metadata.get("profile").cloned(),
            seed,
            env,
        })
    }
}

/// The Flagger hooks answered, and when each answers 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    ConfirmRollout,
    ConfirmTrafficIncrease,
    ConfirmPromotion,
    Rollback,
    Record,
}

impl Hook {
    pub fn parse(name: &str) -> Option<Hook> {
        Some(match name {
            "confirm-rollout" => Hook::ConfirmRollout,
            "confirm-traffic-increase" => Hook::ConfirmTrafficIncrease,
            "confirm-promotion" => Hook::ConfirmPromotion,
            "rollback" => Hook::Rollback,
            "post-rollout" | "event" => Hook::Record,
            _ => return None,
        })
    }

    /// Whether the verdict lets the hook say yes.
    pub fn holds(self, decision: &str) -> bool {
        match self {
            Hook::ConfirmRollout => decision == "GO" || decision == "CONDITIONAL",
            // Every stage accepted: the canary is GO, and more traffic may go on.
            Hook::ConfirmTrafficIncrease => decision == "GO",
            Hook::ConfirmPromotion => decision == "GO",
            Hook::Rollback => decision == "NO-GO",
            Hook::Record => true,
        }
    }
}

/// What a finished run's report and sign-offs decide now.
pub fn decided(
    run_dir: &Path,
    report: &gauntlet_report::Report,
    keyring: &Path,
) -> (Decision, String) {
    let plan = std::fs::read_to_string(run_dir.join("spec.yaml"))
        .ok()
        .and_then(|text| gauntlet_spec::plan_str("spec.yaml", &text, &Default::default(), 1).ok());
    let trust = gauntlet_trust::Keyring::open(keyring)
        .ok()
        .map(gauntlet_trust::Trust::Keyring);
    let section = plan.as_ref().and_then(|p| p.signoffs.as_ref());
    let valid: Vec<String> =
        gauntlet_review::signoff::verify_all(run_dir, &report.run_id, section, trust.as_ref())
            .into_iter()
            .filter(|(_, checked)| checked.is_ok())
            .map(|(role, _)| role)
            .collect();
    let (decision, _still_open) = gauntlet_review::signoff::effective(report, &valid);
    let reason = if decision == report.decision {
        report.summary.clone()
    } else {
        format!(
            "{decision}: every required sign-off is in ({}); recorded {}",
            valid.join(", "),
            report.summary
        )
    };
    (decision, reason)
}

/// What a run says now: `CONTINUE` while it runs, then its decision with the sign-offs
/// given since.
pub(crate) async fn verdict(state: &Shared, run: &str) -> Result<Verdict, ApiError> {
    let id = run.to_string();
    let found = with_store(state, move |store| store.find_run(&id)).await;
    let url = format!("/v1/runs/{run}");
    let answer = |decision: &str, reason: String| Verdict {
        decision: decision.to_string(),
        reason,
        run: run.to_string(),
        url: url.clone(),
    };
    let found = match found {
        Ok(found) => found,
        // Claimed and launched, not yet recorded by the engine.
        Err(ApiError::NotFound(_)) if state.runs.live_service(run).is_some() => {
            return Ok(answer(CONTINUE, "the run is starting".into()));
        }
        Err(ApiError::NotFound(_)) => {
            let why = "the run this key names never started (its server stopped first)";
            return Ok(answer("INCONCLUSIVE", why.into()));
        }
        Err(e) => return Err(e),
    };
    if found.status == "running" {
        return Ok(answer(CONTINUE, format!("run {} in progress", found.id)));
    }
    let id = found.id.clone();
    let report = with_store(state, move |store| store.report(&id)).await?;
    let Some(report) = report else {
        let decision = found.decision.unwrap_or_else(|| "ABORTED".into());
        return Ok(answer(
            &decision,
            format!("run {} ended without a report", found.id),
        ));
    };
    let keyring = state.config.keyring.clone();
    let run_dir = PathBuf::from(&found.run_dir);
    let (decision, reason) =
        tokio::task::spawn_blocking(move || decided(&run_dir, &report, &keyring))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(answer(&decision.to_string(), reason))
}

pub(crate) async fn argo(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Verdict>, ApiError> {
    // Who asks is known before what is asked is read.
    let door = Asked::new(
        &headers,
        remote,
        "judge for Argo Rollouts",
        "/v1/judge/argo",
    );
    authorize(&state, &door, Role::Operator, None)?;
    let asked_for: ArgoRequest = parse_body(&body)?;
    let resource = format!("/v1/judge/argo {} {}", asked_for.service, asked_for.key);
    let asked = Asked::new(&headers, remote, "judge for Argo Rollouts", resource);
    let caller = authorize(&state, &asked, Role::Operator, Some(&asked_for.service))?;
    let key = format!("argo/{}/{}", asked_for.service, asked_for.key);
    let (run, started) = state
        .runs
        .start_keyed(&asked_for.service, &key, &asked_for.run_request(), &caller)
        .await?;
    if started {
        audit(&state, Some(&caller), &asked, &format!("started {run}"))?;
    }
    Ok(Json(verdict(&state, &run).await?))
}

pub(crate) async fn flagger(
    State(state): State<Shared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    UrlPath(hook): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut headers = headers;
    let payload = flagger_payload(&state, remote, &hook, &mut headers, &body)?;
    let resource = format!("/v1/judge/flagger/{hook} {}", payload.key());
    let asked = Asked::new(&headers, remote, "judge for Flagger", resource);
    let caller = authorize(&state, &asked, Role::Operator, Some(payload.service()))?;
    let hook = Hook::parse(&hook).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no Flagger hook `{hook}`: confirm-rollout, confirm-traffic-increase, confirm-promotion, rollback, post-rollout, event"
        ))
    })?;
    let asking = Asking {
        state: &state,
        asked: &asked,
        caller: &caller,
        payload: &payload,
    };
    match hook {
        Hook::Record => {
            let phase = payload.phase.clone().unwrap_or_default();
            audit(
                &state,
                Some(&caller),
                &asked,
                &format!("recorded ({phase})"),
            )?;
            let body = json!({"recorded": true, "key": payload.key()});
            Ok((StatusCode::OK, Json(body)).into_response())
        }
        Hook::ConfirmRollout => {
            let configured = state.runs.configured(payload.service())?;
            let request = payload.run_request(&configured)?;
            let run = asking.start(&payload.key(), &request).await?;
            answered(hook, verdict(&state, &run).await?)
        }
        Hook::ConfirmTrafficIncrease => asking.traffic_increase().await,
        Hook::ConfirmPromotion | Hook::Rollback => asking.after_traffic(hook).await,
    }
}

/// The payload, read once a token in a header is checked (before the body is read);
/// Flagger's webhooks send no headers, so the token may come in the canary's metadata
/// instead, and is put where the caller's check finds it.
fn flagger_payload(
    state: &Shared,
    remote: SocketAddr,
    hook: &str,
    headers: &mut HeaderMap,
    body: &Bytes,
) -> Result<FlaggerPayload, ApiError> {
    let has_header = headers.contains_key(header::AUTHORIZATION);
    if has_header {
        let route = format!("/v1/judge/flagger/{hook}");
        let door = Asked::new(headers, remote, "judge for Flagger", route);
        authorize(state, &door, Role::Operator, None)?;
    }
    let payload: FlaggerPayload = match parse_body(body) {
        Ok(payload) => payload,
        Err(_) if !has_header => return Err(ApiError::Unauthenticated),
        Err(e) => return Err(e),
    };
    let from_metadata = payload
        .metadata
        .get("token")
        .filter(|_| !has_header)
        .and_then(|token| HeaderValue::from_str(&format!("Bearer {token}")).ok());
    if let Some(value) = from_metadata {
        headers.insert(header::AUTHORIZATION, value);
    }
    Ok(payload)
}

/// 2xx exactly when the hook's condition holds; 409 with the verdict otherwise.
fn answered(hook: Hook, verdict: Verdict) -> Result<Response, ApiError> {
    let status = if hook.holds(&verdict.decision) {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok((status, Json(verdict)).into_response())
}

/// One Flagger request, authorised.
struct Asking<'a> {
    state: &'a Shared,
    asked: &'a Asked<'a>,
    caller: &'a crate::tokens::Caller,
    payload: &'a FlaggerPayload,
}

impl Asking<'_> {
    /// The run `key` names, started (and audited) now if it was not yet.
    async fn start(&self, key: &str, request: &RunRequest) -> Result<String, ApiError> {
        let service = self.payload.service();
        let (run, started) = self
            .state
            .runs
            .start_keyed(service, key, request, self.caller)
            .await?;
        if started {
            let said = format!("started {run}");
            audit(self.state, Some(self.caller), self.asked, &said)?;
        }
        Ok(run)
    }

    /// The canary on Flagger's traffic: yes to the first increase, then to one more per
    /// accepted stage; once the canary has ended, yes only if it is GO.
    async fn traffic_increase(&self) -> Result<Response, ApiError> {
        let request = RunRequest {
            only: vec![StepName::Canary.as_str().to_string()],
            ..self.payload.run_request(&[])?
        };
        let run = self
            .start(&canary_key(&self.payload.key()), &request)
            .await?;
        let answer = |status: StatusCode, reason: String| {
            let body = Verdict {
                decision: CONTINUE.to_string(),
                reason,
                run: run.clone(),
                url: format!("/v1/runs/{run}"),
            };
            Ok((status, Json(body)).into_response())
        };
        match self.state.runs.increase(&run) {
            Increase::Granted(why) => answer(StatusCode::OK, why),
            Increase::Held(why) => answer(StatusCode::CONFLICT, why),
            Increase::NotLive => answered(
                Hook::ConfirmTrafficIncrease,
                verdict(self.state, &run).await?,
            ),
        }
    }

    /// Promotion or rollback: the pre-traffic run's verdict and the canary's, as one.
    async fn after_traffic(&self, hook: Hook) -> Result<Response, ApiError> {
        let key = self.payload.key();
        let lookup = key.clone();
        let found = with_store(self.state, move |store| store.keyed_run(&lookup)).await?;
        let Some(run) = found else {
            let why = format!("no run for {key}: confirm-rollout starts it");
            let body = json!({"decision": "INCONCLUSIVE", "reason": why});
            return Ok((StatusCode::CONFLICT, Json(body)).into_response());
        };
        let lookup = canary_key(&key);
        let canary = with_store(self.state, move |store| store.keyed_run(&lookup)).await?;
        let mut verdicts = vec![verdict(self.state, &run).await?];
        if let Some(canary) = canary {
            verdicts.push(verdict(self.state, &canary).await?);
        }
        answered(hook, both(hook, verdicts))
    }
}

/// The key of the canary run judging the traffic a Flagger canary moves.
fn canary_key(key: &str) -> String {
    format!("{key}/canary")
}

/// The pre-traffic run's verdict and the canary's, as one: for a rollback the first NO-GO
/// (either is reason to roll back), else the first that is not GO (promotion needs both).
fn both(hook: Hook, verdicts: Vec<Verdict>) -> Verdict {
    let pick = |wanted: &dyn Fn(&Verdict) -> bool| verdicts.iter().find(|v| wanted(v)).cloned();
    let found = match hook {
        Hook::Rollback => pick(&|v| v.decision == "NO-GO"),
        _ => pick(&|v| v.decision != "GO"),
    };
    found
        .or_else(|| verdicts.last().cloned())
        .unwrap_or_else(|| Verdict {
            decision: "INCONCLUSIVE".into(),
            reason: "no run".into(),
            run: String::new(),
            url: String::new(),
        })
}
