//! Step 3, chaos drills. For each drill: the steady-state hypothesis must hold before
//! (else the drill is inconclusive — we do not break a broken system); the faults go in,
//! each through the cleanup journal; the probes run every interval while they are in;
//! the faults come out; the hypothesis must hold again. The gameday timeline (start,
//! fault applied, detection, action, recovery, fault removed) gives the time to detect and
//! the time to recover, in the report and as an SVG in the run directory.
//!
//! `drill.rs` holds a drill's phases, `rounds.rs` the probe rounds, `expect.rs` the judging
//! of `hold` and `recover within`.

mod drill;
mod expect;
mod rounds;

use gauntlet_spec::{ChaosPlan, StepMeta};

use super::{Step, StepFuture};
use crate::context::RunContext;

const STEP: &str = gauntlet_spec::StepName::Chaos.as_str();

pub struct Chaos(pub(crate) ChaosPlan);

impl Step for Chaos {
    fn step(&self) -> gauntlet_spec::StepName {
        gauntlet_spec::StepName::Chaos
    }
    fn meta(&self) -> &StepMeta {
        &self.0.meta
    }
    fn run<'a>(&'a self, ctx: &'a RunContext) -> StepFuture<'a> {
        Box::pin(async move {
            let mut checks = Vec::new();
            for drill in &self.0.drills {
                checks.extend(drill::run(ctx, &self.0, drill).await);
            }
            checks
        })
    }
}
