//! The latency judge's false rejects on two identical servers, stage by stage, in shadow
//! stages and in 50% stages side by side: both arms must be measured alike in every stage
//! kind, so both rates stay within α. Run by `scripts/bench-shadow`.
//!
//! Each server is a hyper server on a runtime of its own, answering at once; the traffic is
//! four closed-loop clients on loopback, bounded in count.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use gauntlet_net::{HttpClient, Outgoing, TrafficSplit};
use gauntlet_stats::{Arm, Judge, LatencyJudge, Verdict, mann_whitney};
use http_body_util::Full;
use hyper::Response;
use hyper_util::rt::TokioIo;

const STAGES: usize = 40;
const PER_STAGE: usize = 1200;
const ALPHA: f64 = 0.05;

fn server() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .expect("a port");
            tx.send(listener.local_addr().expect("an address"))
                .expect("the bench waits");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|_req| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    format!("http://{}", rx.recv().expect("the server starts"))
}

/// One stage: the judge's verdict and P(candidate slower).
async fn stage(shadow: bool, seed: u64, a: &str, b: &str) -> (Verdict, f64) {
    let (split, mut rx) = TrafficSplit::start(a, b, None, None, seed)
        .await
        .expect("the split starts");
    if shadow {
        split.set_shadow();
    } else {
        split.set_weight(0.5);
    }
    let client = HttpClient::new(Duration::from_secs(5));
    let url = format!("http://{}", split.addr());
    let requests = if shadow { PER_STAGE / 2 } else { PER_STAGE };
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                for _ in 0..requests / 4 {
                    let _ = client.send(&Outgoing::get(&url, "/")).await;
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let mut judge = LatencyJudge::new(0.10, ALPHA, 0.05, 200, 1.0)
        .expect("valid parameters")
        .with_min_samples(100);
    let (mut base, mut cand) = (Vec::new(), Vec::new());
    while let Ok(Some(o)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
        judge.observe(&o);
        match o.arm {
            Arm::Baseline => base.push(o.latency_ms),
            Arm::Candidate => cand.push(o.latency_ms),
        }
    }
    let effect = mann_whitney(&cand, &base).map_or(0.5, |m| m.effect);
    (judge.verdict(), effect)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (a, b) = (server(), server());
    println!("latency judge on two identical servers, {STAGES} stages per kind, alpha {ALPHA}");
    println!(
        "{:<8} {:>8} {:>8} {:>10} {:>22}",
        "stage", "rejects", "accepts", "rate", "P(candidate slower)"
    );
    for (kind, shadow) in [("shadow", true), ("50%", false)] {
        let (mut rejects, mut accepts, mut effects) = (0, 0, 0.0);
        for i in 0..STAGES {
            let (verdict, effect) = stage(shadow, i as u64 + 1, &a, &b).await;
            rejects += usize::from(verdict == Verdict::Reject);
            accepts += usize::from(verdict == Verdict::Accept);
            effects += effect;
        }
        println!(
            "{kind:<8} {rejects:>8} {accepts:>8} {:>9.1}% {:>22.3}",
            100.0 * rejects as f64 / STAGES as f64,
            effects / STAGES as f64
        );
    }
}
