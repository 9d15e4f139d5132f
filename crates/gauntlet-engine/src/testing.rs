//! The steps' test seam: a fake system (an HTTP server inside the test, answering as the
//! test says) and a run context around a plan, without a store, a spec file or a started
//! process. With `tokio::time::pause`, a stage's bake or a drill's wait passes in virtual
//! time, so a step's logic is tested in milliseconds.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::context::{RunContext, Silent, System};
use crate::journal::CleanupJournal;
use crate::supervisor::Supervisor;

/// How a fake system answers its `n`th request (from 0): a status and how long it takes.
pub type Answer = dyn Fn(u64) -> (u16, Duration) + Send + Sync;

/// An HTTP server on loopback, inside the test.
pub struct FakeSystem {
    pub url: String,
    served: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeSystem {
    pub async fn start(answer: impl Fn(u64) -> (u16, Duration) + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(AtomicU64::new(0));
        let answer: Arc<Answer> = Arc::new(answer);
        let counter = served.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (answer, counter) = (answer.clone(), counter.clone());
                let service = service_fn(move |_request: Request<hyper::body::Incoming>| {
                    let (status, after) = answer(counter.fetch_add(1, Ordering::Relaxed));
                    async move {
                        tokio::time::sleep(after).await;
                        let response = Response::builder()
                            .status(status)
                            .body(Full::new(Bytes::from_static(b"{}")))
                            .unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        FakeSystem { url, served, task }
    }

    /// Requests answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for FakeSystem {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A run context for `spec` (YAML, where `{candidate}` and `{baseline}` stand for the fake
/// systems' URLs), with its run directory in a temporary directory.
pub struct Harness {
    pub ctx: RunContext,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub fn new(spec: &str, candidate: &FakeSystem, baseline: Option<&FakeSystem>) -> Self {
        let mut text = spec.replace("{candidate}", &candidate.url);
        if let Some(baseline) = baseline {
            text = text.replace("{baseline}", &baseline.url);
        }
        let plan = gauntlet_spec::plan_str("test.yaml", &text, &Default::default(), 7)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(Mutex::new(CleanupJournal::create(dir.path()).unwrap()));
        let system = |url: &str| System {
            url: url.to_string(),
            proxy: None,
            twin: None,
        };
        let mut systems = BTreeMap::from([("candidate".to_string(), system(&candidate.url))]);
        if let Some(b) = baseline {
            systems.insert("baseline".to_string(), system(&b.url));
        }
        let ctx = RunContext {
            child_env: crate::child_env::ChildEnv::new("test", &plan),
            plan: Arc::new(plan),
            client: gauntlet_net::HttpClient::new(Duration::from_secs(2)),
            candidate: candidate.url.clone(),
            baseline: baseline.map(|b| b.url.clone()),
            recorder: Arc::new(crate::context::Recorder::new(dir.path(), Arc::new(Silent))),
            systems,
            supervisor: Arc::new(Mutex::new(Supervisor::new(journal.clone()))),
            journal,
            spec_path: dir.path().join("test.yaml"),
            spec_text: text,
            keyring: dir.path().join("keys"),
            prometheus: None,
            alerts: None,
            history: Vec::new(),
        };
        Harness { ctx, _dir: dir }
    }

    /// Puts a fault proxy in front of the candidate, as a run does for its drills.
    pub async fn with_proxy(mut self) -> Self {
        let candidate = self.ctx.systems.get_mut("candidate").expect("a candidate");
        let upstream = candidate.url.trim_start_matches("http://").to_string();
        let proxy = gauntlet_net::FaultProxy::start(
            "candidate",
            ([127, 0, 0, 1], 0).into(),
            &upstream,
            gauntlet_net::Protocol::Http,
            7,
        )
        .await
        .unwrap();
        candidate.proxy = Some(Arc::new(proxy));
        self
    }

    /// The plan's step called `name`, ready to run.
    pub fn step(&self, name: gauntlet_spec::StepName) -> Box<dyn crate::steps::Step> {
        let plan = self.ctx.plan.steps.iter().find(|s| s.step() == name);
        crate::steps::runner(plan.expect("the spec has the step")).expect("a pipeline step")
    }
}

/// What a step test asks of a step's output.
impl crate::steps::StepOutput {
    /// The check called `name` (the test fails without one).
    pub fn check(&self, name: &str) -> &gauntlet_report::Check {
        let found = self.checks.iter().find(|c| c.name == name);
        found.unwrap_or_else(|| panic!("no check `{name}` in {:#?}", self.checks))
    }

    pub fn outcome_of(&self, name: &str) -> gauntlet_report::Outcome {
        self.check(name).outcome
    }

    /// The checks that did not pass.
    pub fn not_passed(&self) -> Vec<&gauntlet_report::Check> {
        self.checks
            .iter()
            .filter(|c| !c.outcome.is_pass())
            .collect()
    }
}
