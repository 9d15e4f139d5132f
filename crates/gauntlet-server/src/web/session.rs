//! Dashboard sessions: a token given once at the login form is exchanged for a random
//! session id in an HttpOnly, SameSite=Strict cookie. The token stays on the server and is
//! checked again on every request, so a token revoked mid-session is refused at once. Each
//! session has its own CSRF token, which every form that changes something must carry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

use crate::tokens::{Caller, Tokens};

/// The cookie that carries the session id.
pub const COOKIE: &str = "gauntlet_session";

/// A session ends this long after it began, whatever happens in it.
const LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// At most this many sessions are kept; the oldest goes first.
const MOST: usize = 10_000;

struct Session {
    bearer: String,
    csrf: String,
    began: Instant,
}

#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

/// A signed-in visitor: who the token says it is, and the session's CSRF token.
#[derive(Clone)]
pub struct Visitor {
    pub caller: Caller,
    pub csrf: String,
}

impl Sessions {
    /// A new session for `bearer` when the token is valid: its id (for the cookie).
    pub fn begin(&self, tokens: &Tokens, bearer: &str) -> Option<String> {
        tokens.authenticate(bearer)?;
        let (id, csrf) = (random()?, random()?);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, s| s.began.elapsed() < LIFETIME);
        if open.len() >= MOST
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.began)
                .map(|(k, _)| k.clone())
        {
            open.remove(&oldest);
        }
        let session = Session {
            bearer: bearer.to_string(),
            csrf,
            began: Instant::now(),
        };
        open.insert(id.clone(), session);
        Some(id)
    }

    /// The visitor whose session cookie `headers` carry, its token still valid.
    pub fn visitor(&self, tokens: &Tokens, headers: &HeaderMap) -> Option<Visitor> {
        let id = cookie(headers, COOKIE)?;
        let (bearer, csrf) = {
            let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let session = open.get(&id).filter(|s| s.began.elapsed() < LIFETIME)?;
            (session.bearer.clone(), session.csrf.clone())
        };
        let caller = tokens.authenticate(&bearer)?;
        Some(Visitor { caller, csrf })
    }

    /// Ends the session the cookie names.
    pub fn end(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE) {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            open.remove(&id);
        }
    }
}

impl Visitor {
    /// Whether a form's CSRF token is this session's (compared in constant time).
    pub fn csrf_holds(&self, given: &str) -> bool {
        !given.is_empty() && bool::from(given.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

/// The `Set-Cookie` value that opens a session (`secure` over HTTPS).
pub fn set_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    let max_age = LIFETIME.as_secs();
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// The `Set-Cookie` value that ends it.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn random() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}
