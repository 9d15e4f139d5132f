//! HTTPS from certificate files (made here by the stock `openssl` tool), and what a TLS
//! configuration allows.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gauntlet_server::ServerConfig;
use gauntlet_server::tokens::{self, Role};
use http_body_util::{BodyExt, Empty};

const SPEC: &str = "schema_version: 1
service: {name: web, version: '1'}
targets:
  candidate:
    command: [python3, -m, http.server, '{port}', --bind, 127.0.0.1]
    health: /
traffic: {rate: 5/s, requests: [{path: /}]}
steps:
  chaos:
    interval: 100ms
    steady_state:
      before: 200ms
      after: 1s
      probes: [{name: up, http: {path: /, status: [200], within: 1s}}]
    drills:
      - {name: d, faults: [{kind: latency, target: candidate, latency: 5ms}], duration: 1s}
";

/// A certificate authority (`ca.pem`) and a server certificate it signed for 127.0.0.1
/// (`cert.pem`, `key.pem`).
fn certificate(dir: &Path) {
    let openssl = |args: &[&str]| {
        let made = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca-key.pem",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=gauntlet test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "key.pem",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "1",
        "-extfile",
        "server.ext",
    ]);
}

fn project(dir: &Path, listen: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("web.yaml"), SPEC).unwrap();
    let path = dir.join("server.yaml");
    let text = format!(
        "listen: '{listen}'\ntls: {{cert: cert.pem, key: key.pem}}\nservices:\n  web: {{spec: web.yaml}}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// GET over HTTPS, trusting only the test's certificate.
async fn get(url: &str, cert: &Path, token: Option<&str>) -> Result<(u16, String), String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Empty<Bytes>>(connector);
    let mut request = hyper::Request::get(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(request.body(Empty::new()).unwrap()),
    )
    .await
    .map_err(|_| "timed out".to_string())?
    .map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_speaks_https_from_its_certificate_files() {
    let dir = tempfile::tempdir().unwrap();
    certificate(dir.path());
    let config =
        ServerConfig::load(&project(dir.path(), "127.0.0.1:0"), dir.path().join("keys")).unwrap();
    let (token, _) = tokens::create(&config.tokens, Role::Viewer, vec![], None).unwrap();
    let (listener, state) = gauntlet_server::bind(config).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        gauntlet_server::serve(listener, state, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let cert = dir.path().join("ca.pem");
    let healthz = get(&format!("https://{addr}/healthz"), &cert, None)
        .await
        .unwrap();
    assert_eq!(healthz.0, 200);
    let services = get(&format!("https://{addr}/v1/services"), &cert, Some(&token))
        .await
        .unwrap();
    assert_eq!(services, (200, "{\"services\":[\"web\"]}".to_string()));
    let anonymous = get(&format!("https://{addr}/v1/services"), &cert, None)
        .await
        .unwrap();
    assert_eq!(anonymous.0, 401);
    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let plain = gauntlet_net::HttpClient::new(Duration::from_secs(5))
        .send(&gauntlet_net::Outgoing::get(
            &format!("http://{addr}"),
            "/healthz",
        ))
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status != 200));
    let _ = stop.send(());
    server.await.unwrap();
}

#[test]
fn tls_allows_listening_beyond_loopback_and_bad_files_are_located() {
    let dir = tempfile::tempdir().unwrap();
    certificate(dir.path());
    // Only loaded, never bound: no traffic leaves loopback.
    let config = ServerConfig::load(
        &project(dir.path(), "0.0.0.0:8787"),
        dir.path().join("keys"),
    )
    .unwrap();
    assert!(config.tls.is_some());
    std::fs::write(dir.path().join("key.pem"), "not a key\n").unwrap();
    let errors = ServerConfig::load(&project(dir.path(), "127.0.0.1:0"), dir.path().join("keys"))
        .unwrap_err();
    let said = errors.0[0].to_string();
    assert!(
        said.contains("server.yaml:2:") && said.contains("key.pem"),
        "{said}"
    );
}
