//! The fault proxy against a real loopback HTTP server: every fault kind, switched on and
//! off while connections stay up, through the library and through the control API.
//! The tests run on a multi-threaded runtime, as gauntlet does, so connections are served on
//! the proxy's lanes (on a single-threaded runtime they stay on it; the engine's step tests
//! cover that path).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gauntlet_net::{
    ControlAccess, ControlServer, Direction, Fault, FaultKind, FaultProxy, HttpClient, Outgoing,
    Protocol, ProxySet,
};
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A keep-alive HTTP/1.1 server: `/big` answers 100,000 bytes, anything else `hello`.
/// Returns its address and a count of the connections it accepted.
async fn upstream() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |request: Request<hyper::body::Incoming>| async move {
                        let body = if request.uri().path() == "/big" {
                            Bytes::from(vec![b'x'; 100_000])
                        } else {
                            Bytes::from_static(b"hello")
                        };
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(body)))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, accepted)
}

async fn proxy_for(upstream: SocketAddr, protocol: Protocol) -> FaultProxy {
    FaultProxy::start(
        "test",
        "127.0.0.1:0".parse().unwrap(),
        &upstream.to_string(),
        protocol,
        7,
    )
    .await
    .unwrap()
}

fn base(proxy: &FaultProxy) -> String {
    format!("http://{}", proxy.addr())
}

/// One request on a raw connection; returns the whole response text.
async fn raw_get(stream: &mut TcpStream, path: &str) -> std::io::Result<String> {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                return Ok(text);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_faults_requests_pass_on_one_kept_connection() {
    let (addr, accepted) = upstream().await;
    let proxy = proxy_for(addr, Protocol::Http).await;
    let client = HttpClient::new(Duration::from_secs(2));
    for _ in 0..20 {
        let response = client
            .send(&Outgoing::get(&base(&proxy), "/"))
            .await
            .unwrap();
        assert_eq!(
            (response.status, response.body_text().as_str()),
            (200, "hello")
        );
    }
    assert_eq!(
        accepted.load(Ordering::Relaxed),
        1,
        "keep-alive through the proxy"
    );
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let big = raw_get(&mut stream, "/big").await.unwrap();
    assert!(
        big.ends_with(&"x".repeat(100_000)),
        "a 100,000-byte body passes whole"
    );
    assert_eq!(proxy.stats().requests, 21);
}

/// An echo server: every byte it reads goes straight back.
async fn echo_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

// The pump takes a short read as a drained socket and waits for the next readiness event
// instead of reading again: bytes that arrive in pieces of every size, with pauses between
// them, must all pass, in order, in both directions, without a stall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_in_pieces_of_every_size_pass_whole_both_ways() {
    let proxy = proxy_for(echo_upstream().await, Protocol::Tcp).await;
    let mut rng = gauntlet_net::SplitMix64::new(22);
    let mut sent = vec![0u8; 3 << 20];
    rng.fill(&mut sent);
    let stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let pieces = sent.clone();
    let writer = tokio::spawn(async move {
        let mut rest = &pieces[..];
        let mut n = 0u64;
        while !rest.is_empty() {
            // 1 byte up to 96 KiB (more than the pump's 16 KiB reads), sometimes a pause.
            let size = [1, 7, 100, 1460, 16 * 1024, 16 * 1024 + 1, 96 * 1024][(n % 7) as usize];
            let (piece, tail) = rest.split_at(size.min(rest.len()));
            write.write_all(piece).await.unwrap();
            rest = tail;
            n += 1;
            if n.is_multiple_of(5) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        write.shutdown().await.unwrap();
    });
    let mut echoed = Vec::with_capacity(sent.len());
    tokio::time::timeout(Duration::from_secs(30), read.read_to_end(&mut echoed))
        .await
        .expect("the echo stalled")
        .unwrap();
    writer.await.unwrap();
    assert_eq!(echoed.len(), sent.len());
    assert!(echoed == sent, "the bytes came back changed");
    assert_eq!(proxy.stats().bytes_upstream, sent.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_abort_answers_a_share_of_requests_and_keeps_the_connection() {
    let (addr, accepted) = upstream().await;
    let proxy = proxy_for(addr, Protocol::Http).await;
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(
        raw_get(&mut stream, "/")
            .await
            .unwrap()
            .starts_with("HTTP/1.1 200")
    );
    let id = proxy
        .add(Fault {
            toxicity: 0.5,
            ..Fault::new(FaultKind::HttpAbort { status: 503 })
        })
        .unwrap();
    let mut aborted = 0;
    for _ in 0..200 {
        let answer = raw_get(&mut stream, "/").await.unwrap();
        if answer.starts_with("HTTP/1.1 503") {
            assert!(answer.contains("retry-after: 1"));
            aborted += 1;
        } else {
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
    }
    assert!(
        (70..=130).contains(&aborted),
        "about half of 200 aborted: {aborted}"
    );
    assert!(proxy.remove(id));
    for _ in 0..20 {
        assert!(
            raw_get(&mut stream, "/")
                .await
                .unwrap()
                .starts_with("HTTP/1.1 200")
        );
    }
    assert_eq!(
        accepted.load(Ordering::Relaxed),
        1,
        "one connection throughout"
    );
    assert_eq!(proxy.stats().aborted_requests, aborted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_post_swallows_its_body() {
    let (addr, _) = upstream().await;
    let proxy = proxy_for(addr, Protocol::Http).await;
    proxy
        .add(Fault::new(FaultKind::HttpAbort { status: 429 }))
        .unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    stream
        .write_all(b"POST /x HTTP/1.1\r\nhost: x\r\ncontent-length: 11\r\n\r\nhello world")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 429 Too Many Requests"));
    proxy.clear();
    assert!(raw_get(&mut stream, "/").await.unwrap().ends_with("hello"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_http_delay_slow_answers_down() {
    let (addr, _) = upstream().await;
    let proxy = proxy_for(addr, Protocol::Http).await;
    let client = HttpClient::new(Duration::from_secs(2));
    let id = proxy
        .add(Fault::new(FaultKind::Latency {
            latency: Duration::from_millis(150),
            jitter: Duration::from_millis(20),
        }))
        .unwrap();
    let slow = client
        .send(&Outgoing::get(&base(&proxy), "/"))
        .await
        .unwrap();
    assert!(
        slow.elapsed >= Duration::from_millis(130),
        "{:?}",
        slow.elapsed
    );
    proxy.remove(id);
    let fast = client
        .send(&Outgoing::get(&base(&proxy), "/"))
        .await
        .unwrap();
    assert!(
        fast.elapsed < Duration::from_millis(100),
        "{:?}",
        fast.elapsed
    );
    proxy
        .add(Fault::new(FaultKind::HttpDelay {
            delay: Duration::from_millis(200),
        }))
        .unwrap();
    let delayed = client
        .send(&Outgoing::get(&base(&proxy), "/"))
        .await
        .unwrap();
    assert!(
        delayed.elapsed >= Duration::from_millis(200),
        "{:?}",
        delayed.elapsed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_is_limited() {
    let (addr, _) = upstream().await;
    let proxy = proxy_for(addr, Protocol::Tcp).await;
    proxy
        .add(Fault::new(FaultKind::Bandwidth {
            bytes_per_second: 200_000,
        }))
        .unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let started = Instant::now();
    let answer = raw_get(&mut stream, "/big").await.unwrap();
    assert!(answer.len() > 100_000);
    // 100 KB at 200 KB/s: the last chunk's pause may fall after the read, so allow one chunk.
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_drops_open_connections_and_refuses_new_ones() {
    let (addr, _) = upstream().await;
    let proxy = proxy_for(addr, Protocol::Http).await;
    let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(raw_get(&mut open, "/").await.is_ok());
    let id = proxy
        .add(Fault::new(FaultKind::Reset {
            after: Duration::ZERO,
        }))
        .unwrap();
    assert!(
        raw_get(&mut open, "/").await.is_err(),
        "the open connection was reset"
    );
    // A new one too: reset as it is accepted, which the client sees on its first request, or
    // already as it connects when the reset overtakes the end of the handshake.
    let fresh = match TcpStream::connect(proxy.addr()).await {
        Ok(mut fresh) => raw_get(&mut fresh, "/").await.is_err(),
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(fresh, "a new connection was reset too");
    proxy.remove(id);
    let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(raw_get(&mut after, "/").await.is_ok());
    assert!(proxy.stats().resets >= 2);
}

/// Faults are switched from one thread while connections run on others: every open
/// connection must see every reset, however the threads interleave (a watchdog woken before
/// the change was fully published once slept through it, and a keep-alive connection went
/// on serving through an outage).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_reaches_every_open_connection_across_threads() {
    let (addr, _) = upstream().await;
    let proxy = proxy_for(addr, Protocol::Http).await;
    for round in 0..300 {
        let mut open = Vec::new();
        for _ in 0..4 {
            let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
            raw_get(&mut stream, "/").await.unwrap();
            open.push(stream);
        }
        let mut idle = TcpStream::connect(proxy.addr()).await.unwrap();
        raw_get(&mut idle, "/").await.unwrap();
        let id = proxy
            .add(Fault::new(FaultKind::Reset {
                after: Duration::ZERO,
            }))
            .unwrap();
        // An idle connection is closed by the proxy without a byte from the client.
        let mut buf = [0u8; 16];
        let closed = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(0) | Err(_))),
            "round {round}: an idle connection outlived the reset: {closed:?}"
        );
        for stream in &mut open {
            let answer = tokio::time::timeout(Duration::from_secs(10), raw_get(stream, "/"))
                .await
                .expect("a reset connection answers at once");
            assert!(
                answer.is_err(),
                "round {round}: a connection open before the reset still served: {answer:?}"
            );
        }
        assert!(proxy.remove(id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackhole_holds_bytes_until_it_heals() {
    let (addr, _) = upstream().await;
    let proxy = proxy_for(addr, Protocol::Http).await;
    let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(raw_get(&mut open, "/").await.is_ok());
    let id = proxy.add(Fault::new(FaultKind::Blackhole)).unwrap();
    let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
    // Nothing comes back while the partition lasts, on either connection.
    for stream in [&mut open, &mut fresh] {
        let waited = tokio::time::timeout(Duration::from_millis(300), raw_get(stream, "/")).await;
        assert!(waited.is_err(), "no answer during the partition");
    }
    proxy.remove(id);
    // Healed: the requests held back are answered on the same connections.
    for stream in [&mut open, &mut fresh] {
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_closes_the_connection_after_its_delay() {
    let (addr, _) = upstream().await;
    let proxy = proxy_for(addr, Protocol::Tcp).await;
    proxy
        .add(Fault::new(FaultKind::Timeout {
            after: Duration::from_millis(200),
        }))
        .unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(2), raw_get(&mut stream, "/"))
        .await
        .expect("closed within 2s");
    assert!(result.is_err(), "closed without an answer");
    assert!(
        started.elapsed() >= Duration::from_millis(190),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_bytes_and_slow_close_act_on_the_byte_stream() {
    // A server that says one line and closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(b"hello world").await;
        }
    });
    let proxy = proxy_for(addr, Protocol::Tcp).await;
    proxy
        .add(Fault::new(FaultKind::DropBytes { bytes: 6 }))
        .unwrap();
    proxy
        .add(Fault::new(FaultKind::SlowClose {
            delay: Duration::from_millis(300),
        }))
        .unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let started = Instant::now();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    assert_eq!(text, "world");
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_with_a_duration_removes_itself() {
    let (addr, _) = upstream().await;
    let proxy = proxy_for(addr, Protocol::Http).await;
    proxy
        .add(Fault {
            duration: Some(Duration::from_millis(100)),
            ..Fault::new(FaultKind::HttpAbort { status: 502 })
        })
        .unwrap();
    assert_eq!(proxy.faults().len(), 1);
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(
        raw_get(&mut stream, "/")
            .await
            .unwrap()
            .starts_with("HTTP/1.1 502")
    );
    // The fault goes by itself; nothing else removes it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !proxy.faults().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the fault never expired"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        raw_get(&mut stream, "/")
            .await
            .unwrap()
            .starts_with("HTTP/1.1 200")
    );
}

const TOKEN: &str = "test-token-5e1f";

fn access(default_ttl: Option<Duration>) -> ControlAccess {
    ControlAccess {
        token: TOKEN.into(),
        default_ttl,
    }
}

fn authorized(mut out: Outgoing) -> Outgoing {
    out.headers
        .insert("authorization".into(), format!("Bearer {TOKEN}"));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_lists_adds_and_removes_faults() {
    let (addr, _) = upstream().await;
    let proxy = proxy_for(addr, Protocol::Http).await;
    let control = ControlServer::start(
        "127.0.0.1:0".parse().unwrap(),
        ProxySet::of(&[&proxy]),
        access(None),
    )
    .await
    .unwrap();
    let api = format!("http://{}", control.addr());
    let client = HttpClient::new(Duration::from_secs(2));
    let post = |body: &str| Outgoing {
        method: "POST".into(),
        body: Some(body.into()),
        ..authorized(Outgoing::get(&api, "/proxies/test/faults"))
    };
    let added = client
        .send(&post(
            r#"{"kind": "http_abort", "status": 429, "direction": "downstream"}"#,
        ))
        .await
        .unwrap();
    assert_eq!(added.status, 201, "{}", added.body_text());
    let id = serde_json::from_slice::<serde_json::Value>(&added.body).unwrap()["id"]
        .as_u64()
        .unwrap();
    assert_eq!(
        proxy.faults()[0].fault.kind,
        FaultKind::HttpAbort { status: 429 }
    );
    let listed = client
        .send(&authorized(Outgoing::get(&api, "/proxies")))
        .await
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed.body).unwrap();
    assert_eq!(listed[0]["faults"][0]["kind"], "http_abort");
    let bad = client.send(&post(r#"{"kind": "latency"}"#)).await.unwrap();
    assert_eq!(bad.status, 400);
    assert!(
        bad.body_text().contains("latency_ms"),
        "{}",
        bad.body_text()
    );
    let typo = client
        .send(&post(r#"{"kind": "reset", "toxicty": 0.5}"#))
        .await
        .unwrap();
    assert_eq!(typo.status, 400);
    assert!(
        typo.body_text().contains("unknown field `toxicty`"),
        "{}",
        typo.body_text()
    );
    let unknown = client
        .send(&authorized(Outgoing::get(&api, "/proxies/nope/faults")))
        .await
        .unwrap();
    assert_eq!(unknown.status, 404);
    let delete = Outgoing {
        method: "DELETE".into(),
        ..authorized(Outgoing::get(&api, &format!("/proxies/test/faults/{id}")))
    };
    assert_eq!(client.send(&delete).await.unwrap().status, 200);
    assert!(proxy.faults().is_empty());
    assert_eq!(client.send(&delete).await.unwrap().status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_faults_need_an_http_proxy_and_directions_are_respected() {
    let (addr, _) = upstream().await;
    let proxy = proxy_for(addr, Protocol::Tcp).await;
    assert!(
        proxy
            .add(Fault::new(FaultKind::HttpAbort { status: 503 }))
            .is_err()
    );
    // Latency on requests only still slows the exchange.
    proxy
        .add(Fault {
            direction: Direction::Upstream,
            ..Fault::new(FaultKind::Latency {
                latency: Duration::from_millis(120),
                jitter: Duration::from_millis(0),
            })
        })
        .unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let started = Instant::now();
    raw_get(&mut stream, "/").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(120));
}

/// Sockets still open on either side of `port` (loopback, IPv4): established, or closed by
/// the peer and not yet by their owner (CLOSE_WAIT), the state a leaked descriptor stays in.
/// Counted from the kernel's table rather than this process's descriptors, which the tests
/// running beside this one open and close as they please.
fn open_sockets(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/self/net/tcp").unwrap();
    let port_hex = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3
                && matches!(fields[3], "01" | "08")
                && (fields[1].ends_with(&port_hex) || fields[2].ends_with(&port_hex))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_leave_no_descriptors_behind() {
    let (addr, _) = upstream().await;
    let proxy = proxy_for(addr, Protocol::Http).await;
    let ports = [proxy.addr().port(), addr.port()];
    let mut clients = Vec::new();
    for _ in 0..2_000 {
        clients.push(TcpStream::connect(proxy.addr()).await.unwrap());
    }
    // A request on the last one proves the proxy still serves with 2,000 idle ones open.
    assert!(raw_get(clients.last_mut().unwrap(), "/").await.is_ok());
    drop(clients);
    // The proxy notices each close at its next read; wait (bounded) until it has.
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.stats().open > 0 && Instant::now() < deadline {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(proxy.stats().open, 0);
    assert_eq!(proxy.stats().connections, 2_000);
    // The upstream side of the one used connection closes with it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let open = || ports.iter().map(|p| open_sockets(*p)).sum::<usize>();
    while open() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        open(),
        0,
        "no socket of the proxy or its upstream is left open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_delay_releases_what_it_holds() {
    let (addr, _) = upstream().await;
    for (kind, protocol) in [
        (
            FaultKind::Latency {
                latency: Duration::from_millis(30_000),
                jitter: Duration::from_millis(0),
            },
            Protocol::Tcp,
        ),
        (
            FaultKind::HttpDelay {
                delay: Duration::from_millis(30_000),
            },
            Protocol::Http,
        ),
        (
            FaultKind::Bandwidth {
                bytes_per_second: 1,
            },
            Protocol::Tcp,
        ),
    ] {
        let proxy = proxy_for(addr, protocol).await;
        let id = proxy
            .add(Fault {
                direction: Direction::Both,
                ..Fault::new(kind.clone())
            })
            .unwrap();
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        let held = tokio::spawn(async move { raw_get(&mut stream, "/").await });
        // The request is in the proxy's hands (it read it) before the fault goes.
        let deadline = Instant::now() + Duration::from_secs(10);
        while proxy.stats().bytes_upstream == 0 {
            assert!(
                Instant::now() < deadline,
                "{kind:?}: the request never reached the proxy"
            );
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(proxy.remove(id));
        // Released: answered long before the 30 s it was held for (or ~50 s at 1 byte/s).
        let answer = tokio::time::timeout(Duration::from_secs(10), held).await;
        let answer =
            answer.unwrap_or_else(|_| panic!("{kind:?}: still held after the fault was removed"));
        assert!(answer.unwrap().unwrap().ends_with("hello"), "{kind:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_closed_connection_to_a_stuck_server_does_not_linger_forever() {
    // A server that reads and then neither answers nor closes.
    let stuck = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = stuck.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = stuck.accept().await {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            held.push(stream);
        }
    });
    // Both proxies at once: each waits out its own linger.
    let linger = |protocol: Protocol| async move {
        let proxy = proxy_for(addr, protocol).await;
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        client.shutdown().await.unwrap();
        // The proxy closes it within its linger (10 s of silence), not never.
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(Duration::from_secs(30), client.read(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "{protocol:?}: {closed:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while proxy.stats().open > 0 {
            assert!(
                Instant::now() < deadline,
                "{protocol:?}: the proxy kept the connection"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::join!(linger(Protocol::Http), linger(Protocol::Tcp));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_closes_closes_its_client_at_once_over_http() {
    // A server that answers once and closes; the client then says nothing.
    let closing = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closing.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = closing.accept().await {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        }
    });
    let proxy = proxy_for(addr, Protocol::Http).await;
    let mut clients = Vec::new();
    for _ in 0..50 {
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        clients.push(client);
    }
    // Every client sees the answer and the end of the stream, and the proxy holds nothing.
    for client in &mut clients {
        let mut seen = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut seen)).await;
        assert!(read.is_ok(), "a client was left waiting");
        assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 500"));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.stats().open > 0 {
        assert!(
            Instant::now() < deadline,
            "{} connections still open",
            proxy.stats().open
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One raw request to the control API; returns the status line.
async fn raw_request(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_answers_only_its_owner() {
    let (addr, _) = upstream().await;
    let proxy = proxy_for(addr, Protocol::Http).await;
    let control = ControlServer::start(
        "127.0.0.1:0".parse().unwrap(),
        ProxySet::of(&[&proxy]),
        access(Some(Duration::from_secs(600))),
    )
    .await
    .unwrap();
    let at = control.addr();
    let body = r#"{"kind": "reset"}"#;
    let post = |headers: &str| {
        format!(
            "POST /proxies/test/faults HTTP/1.1\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{headers}\r\n{body}",
            body.len()
        )
    };
    let host = format!("host: 127.0.0.1:{}\r\n", at.port());
    let token = format!("authorization: Bearer {TOKEN}\r\n");
    // No token; a wrong one; a rebinding Host; a cross-site Origin: all refused.
    for (headers, status) in [
        (host.clone(), "401"),
        (format!("{host}authorization: Bearer nope\r\n"), "401"),
        (format!("host: evil.example\r\n{token}"), "403"),
        (
            format!("{host}{token}origin: http://evil.example\r\n"),
            "403",
        ),
    ] {
        let line = raw_request(at, &post(&headers)).await;
        assert!(line.contains(status), "{headers:?}: {line}");
    }
    assert!(proxy.faults().is_empty(), "nothing was injected");
    // The owner adds a fault, which gets the default lifetime.
    let line = raw_request(at, &post(&format!("{host}{token}"))).await;
    assert!(line.contains("201"), "{line}");
    assert_eq!(
        proxy.faults()[0].fault.duration,
        Some(Duration::from_secs(600))
    );
    proxy.clear();
    // A client that never finishes its request head is cut off.
    let mut slow = TcpStream::connect(at).await.unwrap();
    slow.write_all(b"GET /proxies HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let cut = tokio::time::timeout(Duration::from_secs(20), slow.read(&mut buf)).await;
    assert!(
        matches!(cut, Ok(Ok(_)) | Ok(Err(_))),
        "the half-sent request was held: {cut:?}"
    );
    // A wrong kind is named as such.
    let client = HttpClient::new(Duration::from_secs(2));
    let wrong = client
        .send(&Outgoing {
            method: "POST".into(),
            body: Some(r#"{"kind": 5}"#.into()),
            ..authorized(Outgoing::get(
                &format!("http://{at}"),
                "/proxies/test/faults",
            ))
        })
        .await
        .unwrap();
    assert_eq!(wrong.status, 400);
    assert!(
        wrong
            .body_text()
            .contains("`kind` 5 is not a proxy fault kind"),
        "{}",
        wrong.body_text()
    );
}

/// Seeded mutations of valid fault bodies; `GAUNTLET_FUZZ_CASES` sets how many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_bodies_never_break_the_proxy() {
    let (addr, _) = upstream().await;
    let proxy = proxy_for(addr, Protocol::Http).await;
    let control = ControlServer::start(
        "127.0.0.1:0".parse().unwrap(),
        ProxySet::of(&[&proxy]),
        access(None),
    )
    .await
    .unwrap();
    let api = format!("http://{}", control.addr());
    let client = HttpClient::new(Duration::from_secs(5));
    let seeds = [
        r#"{"kind": "latency", "latency_ms": 200, "jitter_ms": 20, "toxicity": 0.5, "direction": "both", "duration_ms": 1000}"#,
        r#"{"kind": "http_abort", "status": 503}"#,
        r#"{"kind": "bandwidth", "bytes_per_second": 1000}"#,
        r#"{"kind": "drop_bytes", "bytes": 10, "direction": "upstream"}"#,
    ];
    let cases: usize = std::env::var("GAUNTLET_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut state: u64 = 0x00C0_FFEE;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    for case in 0..cases {
        let mut body = seeds[case % seeds.len()].as_bytes().to_vec();
        for _ in 0..1 + next() % 3 {
            let at = (next() as usize) % (body.len() + 1);
            match next() % 4 {
                0 if !body.is_empty() => {
                    let i = at.min(body.len() - 1);
                    body[i] ^= 1 << (next() % 8);
                }
                1 => body.truncate(at),
                2 => {
                    body.splice(at..at, [b'9'; 24]);
                }
                _ => {
                    body.splice(at..at, [b'"', b'{', b'[', b'-']);
                }
            }
        }
        let answer = client
            .send(&Outgoing {
                method: "POST".into(),
                body: Some(String::from_utf8_lossy(&body).into_owned()),
                ..authorized(Outgoing::get(&api, "/proxies/test/faults"))
            })
            .await
            .unwrap_or_else(|e| panic!("case {case}: the control API went away: {e}"));
        assert!(
            [201, 400, 422].contains(&answer.status),
            "case {case}: {} for {}",
            answer.status,
            String::from_utf8_lossy(&body)
        );
        proxy.clear();
    }
}

/// A reset due `after` a connection's first request bytes: the request waits that long, never
/// reaches the server, and the connection is reset; an idle connection is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_reset_acts_on_the_first_bytes_in_its_direction() {
    let (addr, accepted) = upstream().await;
    let proxy = proxy_for(addr, Protocol::Tcp).await;
    let idle = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut fault = Fault::new(FaultKind::Reset {
        after: Duration::from_millis(200),
    });
    fault.direction = Direction::Upstream;
    let id = proxy.add(fault).unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let started = Instant::now();
    let answer = raw_get(&mut stream, "/").await;
    assert!(answer.is_err(), "{answer:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(190),
        "{:?}",
        started.elapsed()
    );
    assert!(proxy.acted(id) >= 1);
    assert!(proxy.stats().resets >= 1);
    proxy.remove(id);
    // The idle connection was never touched: it still carries a request.
    let mut idle = idle;
    assert!(raw_get(&mut idle, "/").await.unwrap().ends_with("hello"));
    assert!(accepted.load(Ordering::Relaxed) >= 1);
}

/// The slicer passes every byte, in pieces; the data limit closes the connection once it
/// has carried that many bytes in its direction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slicer_cuts_the_stream_and_the_data_limit_closes_it() {
    let (addr, _) = upstream().await;
    let proxy = proxy_for(addr, Protocol::Http).await;
    let sliced = proxy
        .add(Fault::new(FaultKind::Slicer {
            average_size: 1000,
            size_variation: 500,
            delay: Duration::from_millis(2),
        }))
        .unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    stream
        .write_all(b"GET /big HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let (mut seen, mut reads, mut buf) = (Vec::new(), 0, vec![0u8; 256 * 1024]);
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        reads += 1;
    }
    assert!(seen.ends_with(&[b'x'; 100_000]), "every byte passed");
    assert!(reads >= 50, "{reads} reads: the stream came in slices");
    assert!(proxy.acted(sliced) >= 1);
    proxy.remove(sliced);
    let mut limit = Fault::new(FaultKind::LimitData { bytes: 10 });
    limit.direction = Direction::Upstream;
    proxy.add(limit).unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let answer = raw_get(&mut stream, "/").await;
    assert!(
        answer.is_err(),
        "the request was cut after 10 bytes: {answer:?}"
    );
}
