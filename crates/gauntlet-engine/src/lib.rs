//! The engine: runs the pipeline's steps in order against the systems under test, keeps
//! the cleanup journal, folds checks into a decision, and writes reports and the run store.
//!
//! ```no_run
//! # async fn f(plan: gauntlet_spec::Plan, options: gauntlet_engine::RunOptions) {
//! let outcome = gauntlet_engine::run(plan, options, std::sync::Arc::new(gauntlet_engine::Silent)).await.unwrap();
//! println!("{} — {}", outcome.report.decision, outcome.run_dir.display());
//! # }
//! ```

mod alerts;
mod answers;
mod calls;
mod child_env;
mod context;
mod decision;
pub(crate) mod faults;
mod identity;
pub mod incident;
pub mod journal;
mod probes;
pub mod prom;
mod run;
pub mod runbook;
pub mod steps;
mod supervisor;
pub mod taxonomy;
#[cfg(test)]
mod testing;
mod timeline;
pub mod trust;

pub use context::{JudgeState, Observer, RunContext, Silent, StageState, file_safe, now_rfc3339};
pub use decision::{SETUP_STEP, decide};
pub use faults::clock::library as libfaketime;
pub use identity::{ProcessIdentity, host_name};
pub use run::{
    CLI_LEASE, EngineError, LeaseHolder, Recovered, RunOptions, RunOutcome, lease_until,
    new_run_id, reap_abandoned, recover_runs, run, write_reports,
};
pub use tokio_util::sync::CancellationToken;
