//! The dashboard in a real browser: Debian's headless Chromium driven over WebDriver
//! (chromium-driver, through fantoccini), clicked through as a person would; a screenshot of
//! each page in the target directory (`target/tmp/screenshots/`); and axe-core (the npm
//! package) run in the same browser on every page, with no serious or critical violation.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

mod common;
use common::{CONDITIONAL, Server, finished_run, json, until_status};

/// The same, with a drill that breaks what it claims holds (NO-GO).
fn broken() -> String {
    CONDITIONAL
        .replace("name: shop", "name: broken")
        .replace("signoffs: {required: [security]}\n", "")
        .replace(
            "{kind: latency, target: candidate, latency: 5ms}], duration: 1s",
            "{kind: http_abort, target: candidate, status: 503}], duration: 1s, expect: hold",
        )
}

/// The chromedriver process, stopped when the test ends.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn driver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian's chromium-driver) is installed: scripts/test installs it");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver { child, port }
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"],
        }),
    );
    // chromedriver is on loopback: plain HTTP, no TLS stack needed.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a browser session")
}

/// The page as a picture, in the target directory.
async fn screenshot(client: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// axe-core's serious and critical violations on the page now.
async fn accessibility(client: &Client, page: &str) {
    let npm = std::env::var("GAUNTLET_NPMDEPS").expect("GAUNTLET_NPMDEPS (scripts/test sets it)");
    let axe = PathBuf::from(npm).join("node_modules/axe-core/axe.min.js");
    let source = std::fs::read_to_string(&axe)
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/test installs axe-core)", axe.display()));
    client.execute(&source, vec![]).await.unwrap();
    let found = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations
               .filter(v => v.impact === 'serious' || v.impact === 'critical')
               .map(v => v.id + ': ' + v.help + ' (' + v.nodes.length + ')')));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(found, json!([]), "axe-core on {page}");
}

async fn sign_in(client: &Client, base: &str, token: &str) {
    client.goto(&format!("{base}/ui/login")).await.unwrap();
    client
        .find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    client
        .find(Locator::Css("form.login button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Signed in: the page has the sign-out form.
    client
        .wait()
        .for_element(Locator::Css("form.who"))
        .await
        .unwrap();
}

/// The text of the element `css` names, once the page has it; an element replaced while it
/// was read (a page still loading) is found again.
async fn text_of(client: &Client, css: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let element = client.wait().for_element(Locator::Css(css)).await;
        match element.unwrap().text().await {
            Ok(text) => return text,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{css}: {e}"),
        }
    }
}

/// Waits (bounded) until the browser is on a page whose address contains `needle`: a click
/// that navigates returns before the new page is there.
async fn navigated(client: &Client, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let at = client.current_url().await.unwrap().to_string();
        if at.contains(needle) {
            client
                .wait()
                .for_element(Locator::Css("main"))
                .await
                .unwrap();
            return;
        }
        assert!(Instant::now() < deadline, "never reached {needle}: at {at}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_reads_a_no_go_signs_off_a_conditional_and_watches_a_run_live() {
    let broken = broken();
    let live = CONDITIONAL
        .replace("name: shop", "name: live")
        .replace("duration: 1s", "duration: 4s");
    let server =
        Server::start_services(&[("shop", CONDITIONAL), ("broken", &broken), ("live", &live)])
            .await;
    gauntlet_trust::Keyring::open(&server.config.keyring)
        .unwrap()
        .generate(None)
        .unwrap();
    let nogo = finished_run(&server, "broken").await.0;
    let conditional = finished_run(&server, "shop").await.0;
    let driver = driver();
    let client = browser(&driver).await;
    let base = server.base.clone();

    // A viewer: runs list → the NO-GO run → its failed checks → the deciding reason.
    sign_in(&client, &base, &server.tokens["viewer"]).await;
    screenshot(&client, "runs").await;
    accessibility(&client, "runs").await;
    client
        .find(Locator::Css(&format!("a[href='/ui/runs/{nogo}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    navigated(&client, &format!("/ui/runs/{nogo}")).await;
    assert!(text_of(&client, "#decision").await.contains("NO-GO"));
    screenshot(&client, "run-no-go").await;
    accessibility(&client, "a NO-GO run").await;
    client
        .find(Locator::LinkText("Checks"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    navigated(&client, "/checks").await;
    client
        .find(Locator::Id("outcome"))
        .await
        .unwrap()
        .select_by_value("fail")
        .await
        .unwrap();
    client
        .find(Locator::Css("form.filters button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    navigated(&client, "outcome=fail").await;
    let report: Value = json(
        &server
            .call(
                "GET",
                &format!("/v1/runs/{nogo}/files/report.json"),
                Some(&server.tokens["viewer"]),
                None,
            )
            .await,
    );
    let deciding = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap())
        .find(|c| c["outcome"] == "fail")
        .expect("a failed check")
        .clone();
    let table = text_of(&client, "table.checks").await;
    assert!(
        table.contains(deciding["name"].as_str().unwrap()),
        "{table}"
    );
    let reason: String = deciding["reason"]
        .as_str()
        .unwrap()
        .chars()
        .take(40)
        .collect();
    assert!(
        table.contains(&reason),
        "the deciding reason is on the screen: {table}"
    );
    let badges = client
        .find_all(Locator::Css("table.checks tbody .badge"))
        .await
        .unwrap();
    assert!(!badges.is_empty());
    for badge in badges {
        let class = badge.attr("class").await.unwrap().unwrap_or_default();
        assert_eq!(
            class, "badge fail",
            "only failed checks are listed: {table}"
        );
    }
    screenshot(&client, "checks-failed").await;
    accessibility(&client, "failed checks").await;

    // The run's canary (none ran), drills and DR, and the service's gates across its runs.
    for (tab, name) in [("Canary", "canary"), ("Drills and DR", "drills")] {
        client
            .find(Locator::LinkText(tab))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        navigated(&client, &format!("/{name}")).await;
        client
            .wait()
            .for_element(Locator::Css("nav.tabs"))
            .await
            .unwrap();
        screenshot(&client, &format!("run-{name}")).await;
        accessibility(&client, name).await;
    }
    assert!(
        text_of(&client, "main").await.contains("slow"),
        "the drill is listed"
    );
    client
        .goto(&format!("{base}/ui/services/broken/gates"))
        .await
        .unwrap();
    screenshot(&client, "gates").await;
    accessibility(&client, "gates").await;

    // The viewer has no sign-off form; a forged POST with the session's own CSRF token is
    // refused for the role.
    client
        .goto(&format!("{base}/ui/runs/{conditional}"))
        .await
        .unwrap();
    assert!(
        client
            .find_all(Locator::Css("form.signoff"))
            .await
            .unwrap()
            .is_empty()
    );
    let status = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const csrf = document.querySelector('input[name=csrf]').value;
             fetch(location.pathname + '/signoff', {method: 'POST',
               headers: {'content-type': 'application/x-www-form-urlencoded'},
               body: 'role=security&csrf=' + csrf}).then(r => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(403));

    // An approver signs off the CONDITIONAL run, which becomes GO.
    client
        .find(Locator::Css("form.who button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    navigated(&client, "/ui/login").await;
    sign_in(&client, &base, &server.tokens["approver"]).await;
    client
        .goto(&format!("{base}/ui/runs/{conditional}"))
        .await
        .unwrap();
    assert!(text_of(&client, "#decision").await.contains("CONDITIONAL"));
    screenshot(&client, "run-conditional").await;
    accessibility(&client, "a CONDITIONAL run, with the sign-off form").await;
    client
        .find(Locator::Css("form.signoff button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Back on the run's page (the same address as before the form): until it says GO.
    let deadline = Instant::now() + Duration::from_secs(30);
    let decision = loop {
        let shown = text_of(&client, "#decision").await;
        if !shown.contains("CONDITIONAL") || Instant::now() > deadline {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        decision.contains("GO") && !decision.contains("CONDITIONAL"),
        "{decision}"
    );
    let reason = text_of(&client, "#reason").await;
    assert!(reason.contains("every required sign-off is in"), "{reason}");
    screenshot(&client, "run-signed-off").await;

    // A live run: its page updates and ends in the decision without a reload.
    let operator = Some(server.tokens["operator"].as_str());
    let started = server
        .call("POST", "/v1/services/live/runs", operator, None)
        .await;
    let run = json(&started)["run"].as_str().unwrap().to_string();
    until_status(&server, &run, &["running"]).await;
    client.goto(&format!("{base}/ui/runs/{run}")).await.unwrap();
    client
        .execute("window.stillHere = 'same page';", vec![])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let decided = loop {
        let shown = text_of(&client, "#decision").await;
        if ["GO", "CONDITIONAL", "NO-GO", "INCONCLUSIVE"]
            .iter()
            .any(|d| shown.contains(d))
        {
            break shown;
        }
        assert!(
            Instant::now() < deadline,
            "the page never showed the decision: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(decided.contains("CONDITIONAL"), "{decided}");
    let same = client
        .execute("return window.stillHere;", vec![])
        .await
        .unwrap();
    assert_eq!(same, json!("same page"), "the page was not reloaded");
    let items = client
        .find_all(Locator::Css("#live-timeline li"))
        .await
        .unwrap();
    assert!(!items.is_empty(), "the timeline grew as the run went");
    screenshot(&client, "run-live").await;
    accessibility(&client, "a live run").await;

    client.close().await.unwrap();
    server.stop().await;
}
