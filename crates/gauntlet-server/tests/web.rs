//! The dashboard over real HTTP (the browser tests come with the rest of issue 18): a token
//! exchanged for a session cookie, pages that escape what a spec says, filters, a strict CSP,
//! and sign-off forms that only an approver gets and that need the session's CSRF token.

mod common;
use common::{Server, finished_run, json, until_status};

/// The CONDITIONAL run, its service name markup.
fn spec() -> String {
    common::CONDITIONAL.replace("name: shop", "name: '<script>alert(1)</script>'")
}

/// What a browser gets: status, headers, body.
struct Page {
    status: u16,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Page {
    fn body_text(&self) -> String {
        self.body.clone()
    }
}

/// A browser's request: the session cookie, and a form body when posting.
async fn visit(
    server: &Server,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Page {
    visit_with(server, method, path, cookie, form, &[]).await
}

/// The same, with more headers.
async fn visit_with(
    server: &Server,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
    extra: &[(&str, &str)],
) -> Page {
    use http_body_util::BodyExt;
    let authority = server.base.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(connection);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", &authority);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    if form.is_some() {
        request = request.header("content-type", "application/x-www-form-urlencoded");
    }
    let body = http_body_util::Full::new(bytes::Bytes::from(form.unwrap_or("").to_string()));
    let answered = sender
        .send_request(request.body(body).unwrap())
        .await
        .unwrap();
    let status = answered.status().as_u16();
    let headers = answered.headers().clone();
    let bytes = answered.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn header<'a>(page: &'a Page, name: &str) -> &'a str {
    page.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Signs in with the role's token: the session cookie to send back.
async fn sign_in(server: &Server, role: &str) -> String {
    let form = format!("token={}", server.tokens[role]);
    let answered = visit(server, "POST", "/ui/login", None, Some(&form)).await;
    assert_eq!(answered.status, 303, "{}", answered.body_text());
    let cookie = header(&answered, "set-cookie").to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    cookie.split(';').next().unwrap().to_string()
}

/// The CSRF token of the page's forms.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..at + 64].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_signs_in_reads_escaped_pages_and_only_an_approver_signs_off() {
    let server = Server::start(&spec()).await;
    let (run, ended) = finished_run(&server, "web").await;
    assert_eq!(ended["decision"], "CONDITIONAL", "{ended}");

    // Without a session: the sign-in form. A bad token: refused there.
    let anonymous = visit(&server, "GET", "/ui/runs", None, None).await;
    assert_eq!(anonymous.status, 303);
    assert_eq!(header(&anonymous, "location"), "/ui/login");
    let bad = visit(
        &server,
        "POST",
        "/ui/login",
        None,
        Some("token=gauntlet_nope_nope"),
    )
    .await;
    // A sign-in (or any form) posted from another site is refused, even with a good token.
    let form = format!("token={}", server.tokens["viewer"]);
    let foreign = [("origin", "http://evil.example")];
    let forged = visit_with(&server, "POST", "/ui/login", None, Some(&form), &foreign).await;
    assert_eq!(forged.status, 403);
    assert!(header(&forged, "set-cookie").is_empty());
    assert_eq!(bad.status, 401);
    assert!(header(&bad, "set-cookie").is_empty());

    // A viewer: the list, with its CSP, the service name escaped, no script anywhere.
    let viewer = sign_in(&server, "viewer").await;
    let list = visit(&server, "GET", "/ui/runs", Some(&viewer), None).await;
    assert_eq!(list.status, 200);
    let csp = header(&list, "content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let body = list.body_text();
    assert!(body.contains(&run), "{body}");
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{body}"
    );
    assert!(!body.contains("<script"), "{body}");
    // Who started it: the operator's token (its id and role, never the token).
    assert!(body.contains("(operator)"), "{body}");
    assert!(!body.contains(server.tokens["operator"].as_str()), "{body}");
    let filtered = visit(
        &server,
        "GET",
        "/ui/runs?decision=NO-GO",
        Some(&viewer),
        None,
    )
    .await;
    assert!(!filtered.body_text().contains(&run));

    // Its checks, filtered; the run page without a sign-off form for a viewer.
    let checks = visit(
        &server,
        "GET",
        &format!("/ui/runs/{run}/checks?outcome=pass"),
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(checks.status, 200);
    assert!(
        checks.body_text().contains("pass"),
        "{}",
        checks.body_text()
    );
    let page = visit(
        &server,
        "GET",
        &format!("/ui/runs/{run}"),
        Some(&viewer),
        None,
    )
    .await
    .body_text();
    assert!(page.contains("CONDITIONAL"), "{page}");
    assert!(
        !page.contains("/signoff\""),
        "a viewer sees no sign-off form: {page}"
    );
    let forged = format!("csrf={}&role=security", csrf(&page));
    let refused = visit(
        &server,
        "POST",
        &format!("/ui/runs/{run}/signoff"),
        Some(&viewer),
        Some(&forged),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body_text());

    // An approver: the form; without the session's CSRF token refused, with it signed: GO
    // (with the server's signing key).
    gauntlet_trust::Keyring::open(&server.config.keyring)
        .unwrap()
        .generate(None)
        .unwrap();
    let approver = sign_in(&server, "approver").await;
    let page = visit(
        &server,
        "GET",
        &format!("/ui/runs/{run}"),
        Some(&approver),
        None,
    )
    .await
    .body_text();
    assert!(page.contains(&format!("/ui/runs/{run}/signoff")), "{page}");
    let signoff = format!("/ui/runs/{run}/signoff");
    let no_csrf = visit(
        &server,
        "POST",
        &signoff,
        Some(&approver),
        Some("role=security"),
    )
    .await;
    assert_eq!(no_csrf.status, 403);
    let wrong = format!("csrf={}&role=security", "0".repeat(64));
    assert_eq!(
        visit(&server, "POST", &signoff, Some(&approver), Some(&wrong))
            .await
            .status,
        403
    );
    let signed = format!("csrf={}&role=security", csrf(&page));
    let done = visit(&server, "POST", &signoff, Some(&approver), Some(&signed)).await;
    assert_eq!(done.status, 303, "{}", done.body_text());
    let page = visit(
        &server,
        "GET",
        &format!("/ui/runs/{run}"),
        Some(&approver),
        None,
    )
    .await
    .body_text();
    assert!(page.contains("badge go"), "{page}");

    // Its drills (the chaos drill's times and timeline), its canary (none ran), and the
    // service's gates across runs (none evaluated), each said as such.
    let drills = visit(
        &server,
        "GET",
        &format!("/ui/runs/{run}/drills"),
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(drills.status, 200);
    let body = drills.body_text();
    assert!(
        body.contains("Time to detect") && body.contains("fault-applied"),
        "{body}"
    );
    let canary = visit(
        &server,
        "GET",
        &format!("/ui/runs/{run}/canary"),
        Some(&viewer),
        None,
    )
    .await;
    assert!(
        canary.body_text().contains("did not run"),
        "{}",
        canary.body_text()
    );
    let service = "%3Cscript%3Ealert%281%29%3C%2Fscript%3E";
    assert!(
        list.body_text()
            .contains(&format!("/ui/services/{service}/gates"))
    );
    let gates = visit(
        &server,
        "GET",
        &format!("/ui/services/{service}/gates"),
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(gates.status, 200, "{}", gates.body_text());
    assert!(
        gates
            .body_text()
            .contains("No run of this service evaluated gates")
    );
    assert!(!gates.body_text().contains("<script"));

    // Pages are gzipped for a browser that takes it; the live stream never is.
    let gzip = [("accept-encoding", "gzip")];
    let zipped = visit_with(&server, "GET", "/ui/runs", Some(&viewer), None, &gzip).await;
    assert_eq!(header(&zipped, "content-encoding"), "gzip");
    let path = format!("/ui/runs/{run}/events");
    let stream = visit_with(&server, "GET", &path, Some(&viewer), None, &gzip).await;
    assert_eq!(header(&stream, "content-encoding"), "");
    assert!(stream.body_text().starts_with("event: decision"));

    // A run's files come in a sandbox of their own.
    let file = visit(
        &server,
        "GET",
        &format!("/ui/runs/{run}/files/report.json"),
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(file.status, 200);
    assert!(header(&file, "content-security-policy").starts_with("sandbox"));
    let escape = visit(
        &server,
        "GET",
        &format!("/ui/runs/{run}/files/..%2F..%2Fserver.yaml"),
        Some(&viewer),
        None,
    )
    .await;
    assert!(matches!(escape.status, 400 | 404), "{}", escape.status);

    // A forged sign-out is refused; the session's own ends it.
    let forged = format!("csrf={}", "0".repeat(64));
    let refused = visit(&server, "POST", "/ui/logout", Some(&viewer), Some(&forged)).await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        visit(&server, "GET", "/ui/runs", Some(&viewer), None)
            .await
            .status,
        200
    );
    let out = visit(
        &server,
        "POST",
        "/ui/logout",
        Some(&viewer),
        Some(&format!("csrf={}", csrf(&list.body_text()))),
    )
    .await;
    assert_eq!(out.status, 303);
    assert_eq!(
        visit(&server, "GET", "/ui/runs", Some(&viewer), None)
            .await
            .status,
        303
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_mid_session_ends_the_session() {
    let server = Server::start(&spec()).await;
    let viewer = sign_in(&server, "viewer").await;
    assert_eq!(
        visit(&server, "GET", "/ui/runs", Some(&viewer), None)
            .await
            .status,
        200
    );
    let listed = gauntlet_server::tokens::list(&server.config.tokens).unwrap();
    let entry = listed
        .iter()
        .find(|t| t.role == gauntlet_server::tokens::Role::Viewer)
        .unwrap();
    gauntlet_server::tokens::revoke(&server.config.tokens, &entry.id).unwrap();
    let after = visit(&server, "GET", "/ui/runs", Some(&viewer), None).await;
    assert_eq!(after.status, 303);
    assert_eq!(header(&after, "location"), "/ui/login");
    server.stop().await;
}

/// A candidate whose every answer is markup: it fails its probe and lets anyone in, so
/// what it said reaches a check's reason and the security step's evidence.
const MARKUP: &str = r#"schema_version: 1
service: {name: shop, version: '1'}
targets:
  candidate:
    command:
      - python3
      - -c
      - |
        import http.server, sys
        class Answer(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"<script>alert(3)</script><img src=x onerror=alert(4)>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass
        http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Answer).serve_forever()
      - '{port}'
    health: /
    ready_timeout: 20s
traffic: {rate: 5/s, requests: [{path: /}]}
steps:
  security:
    auth:
      credential_headers: [x-api-key]
      requests: [{method: GET, path: /private}]
  chaos:
    interval: 100ms
    steady_state:
      before: 200ms
      after: 200ms
      probes: [{name: welcome, http: {path: /, body_contains: welcome, within: 1s}}]
    drills:
      - {name: slow, faults: [{kind: latency, target: candidate, latency: 5ms}], duration: 300ms}
"#;

/// What a target answered is shown as text: quoted in a failed probe's reason, kept in the
/// security step's evidence, and escaped on every page (the evidence file itself is served
/// in a sandbox, as data, never as a page of the dashboard).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_target_answered_is_shown_as_text() {
    let server = Server::start(MARKUP).await;
    let (run, ended) = finished_run(&server, "web").await;
    assert_eq!(ended["decision"], "NO-GO", "{ended}");
    let viewer = sign_in(&server, "viewer").await;

    let pages = [
        format!("/ui/runs/{run}"),
        format!("/ui/runs/{run}/checks"),
        format!("/ui/runs/{run}/checks?outcome=fail"),
        format!("/ui/runs/{run}/drills"),
        "/ui/runs".to_string(),
        "/ui/services/web/gates".to_string(),
    ];
    for path in &pages {
        let page = visit(&server, "GET", path, Some(&viewer), None).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body_text());
        let body = page.body_text();
        for raw in ["<script>alert", "<img src=x"] {
            assert!(!body.contains(raw), "{path} shows {raw} unescaped: {body}");
        }
    }
    // The failed probe says what came back, as text (no steady state: the drill is
    // inconclusive).
    let checks = visit(
        &server,
        "GET",
        &format!("/ui/runs/{run}/checks?outcome=inconclusive"),
        Some(&viewer),
        None,
    )
    .await
    .body_text();
    assert!(
        checks.contains("&lt;script&gt;alert(3)&lt;/script&gt;&lt;img src=x onerror=alert(4)&gt;"),
        "{checks}"
    );

    // The security step kept the answer as evidence: served as JSON, in a sandbox, unsniffed.
    let report: serde_json::Value = serde_json::from_str(
        &visit(
            &server,
            "GET",
            &format!("/ui/runs/{run}/files/report.json"),
            Some(&viewer),
            None,
        )
        .await
        .body_text(),
    )
    .unwrap();
    let evidence = report["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["path"].as_str())
        .find(|p| p.contains("security") && p.ends_with(".json"))
        .expect("the security step kept evidence")
        .to_string();
    let file = visit(
        &server,
        "GET",
        &format!("/ui/runs/{run}/files/{evidence}"),
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(file.status, 200, "{evidence}");
    assert!(
        file.body_text().contains("<script>alert(3)"),
        "{}",
        file.body_text()
    );
    assert!(header(&file, "content-security-policy").starts_with("sandbox"));
    assert_eq!(header(&file, "x-content-type-options"), "nosniff");
    assert!(
        header(&file, "content-type").starts_with("application/json"),
        "{}",
        header(&file, "content-type")
    );
    server.stop().await;
}

/// Malformed and hostile form bodies get a client error or the sign-in form, never a server
/// error or a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_forms_never_get_a_server_error_or_a_session() {
    let server = Server::start(&spec()).await;
    let viewer = sign_in(&server, "viewer").await;
    let long = "a".repeat(200_000);
    let bodies = [
        "",
        "token",
        "token=",
        "%zz=%zz",
        "token=%ff%fe%00",
        "token=gauntlet_x_y&token=gauntlet_a_b",
        "csrf=&role=",
        "role=security&role=admin",
        long.as_str(),
    ];
    for body in bodies {
        for (path, cookie) in [
            ("/ui/login", None),
            ("/ui/logout", Some(viewer.as_str())),
            (
                "/ui/runs/20261130T000000Z-abcd/signoff",
                Some(viewer.as_str()),
            ),
        ] {
            let answered = visit(&server, "POST", path, cookie, Some(body)).await;
            assert!(
                answered.status < 500,
                "{path} {body:.40}: {}",
                answered.status
            );
            if path == "/ui/login" {
                assert!(header(&answered, "set-cookie").is_empty(), "{body:.40}");
            }
        }
    }
    server.stop().await;
}

/// A running run's page follows it live: the events stream carries its timeline and steps
/// as they happen and ends with its decision (what the page's script shows without a
/// reload); a finished run's stream is its decision at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_run_streams_its_steps_and_ends_in_its_decision() {
    let long = spec().replace("duration: 1s", "duration: 3s");
    let server = Server::start(&long).await;
    let viewer = sign_in(&server, "viewer").await;
    let operator = Some(server.tokens["operator"].as_str());
    let started = server
        .call("POST", "/v1/services/web/runs", operator, None)
        .await;
    let run = json(&started)["run"].as_str().unwrap().to_string();
    until_status(&server, &run, &["running"]).await;
    let page = visit(
        &server,
        "GET",
        &format!("/ui/runs/{run}"),
        Some(&viewer),
        None,
    )
    .await;
    let body = page.body_text();
    assert!(body.contains("id=\"live-timeline\""), "{body}");
    assert!(
        body.contains("<script src=\"/ui/assets/live.js\" defer>"),
        "{body}"
    );
    let script = visit(&server, "GET", "/ui/assets/live.js", Some(&viewer), None).await;
    assert!(script.body_text().contains("textContent"));
    assert!(!script.body_text().contains("innerHTML"));

    let events = format!("/ui/runs/{run}/events");
    let streamed = visit(&server, "GET", &events, Some(&viewer), None).await;
    assert_eq!(header(&streamed, "content-type"), "text/event-stream");
    let text = streamed.body_text();
    assert!(text.contains("event: event"), "{text}");
    assert!(text.contains("event: step"), "{text}");
    let decision = text
        .lines()
        .skip_while(|l| *l != "event: decision")
        .find_map(|l| l.strip_prefix("data: "))
        .expect("the stream ends with the decision");
    let decision: serde_json::Value = serde_json::from_str(decision).unwrap();
    assert_eq!(decision["decision"], "CONDITIONAL", "{decision}");

    // Once finished, the stream is the decision alone.
    let again = visit(&server, "GET", &events, Some(&viewer), None)
        .await
        .body_text();
    assert!(again.starts_with("event: decision"), "{again}");
    assert!(!again.contains("event: step"));
    server.stop().await;
}
