//! Probe rounds: every probe of a hypothesis once, and what a run of rounds says.

use std::time::Duration;

use gauntlet_spec::Probe;

use crate::context::RunContext;
use crate::probes::{MetricBase, ProbeContext, ProbeResult, run_probe, scrape};
use crate::timeline::Timeline;

/// One round of probes, `at` since the drill started.
#[derive(Clone)]
pub(super) struct Round {
    pub at: Duration,
    pub results: Vec<ProbeResult>,
}

impl Round {
    pub fn holds(&self) -> bool {
        self.results.iter().all(|r| r.pass)
    }

    /// What failed: `probe: why; …` (empty when every probe passed).
    pub fn failures(&self) -> String {
        self.results
            .iter()
            .filter(|r| !r.pass)
            .map(|r| format!("{}: {}", r.name, r.detail))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Where the probes look, and from what `increase` probes count.
pub(super) struct Prober<'a> {
    pub ctx: &'a RunContext,
    pub url: String,
}

impl Prober<'_> {
    pub async fn round(&self, probes: &[Probe], base: &MetricBase, timeline: &Timeline) -> Round {
        let mut results = Vec::with_capacity(probes.len());
        for probe in probes {
            results.push(self.probe(probe, base).await);
        }
        Round {
            at: timeline.at(),
            results,
        }
    }

    pub async fn probe(&self, probe: &Probe, base: &MetricBase) -> ProbeResult {
        let cx = ProbeContext {
            client: &self.ctx.client,
            base_url: &self.url,
            metric_base: base,
            env: &self.ctx.child_env,
            usage: self.ctx.plan.usage.as_ref(),
        };
        run_probe(&cx, probe).await
    }

    /// Probe values that `increase` probes compare against.
    pub async fn base(&self, probes: &[Probe]) -> MetricBase {
        let mut base = MetricBase::new();
        for probe in probes {
            if let Some(metric) = probe.metric.as_ref().filter(|m| m.increase) {
                base.insert(
                    probe.name.clone(),
                    scrape(&self.ctx.client, &self.url, metric)
                        .await
                        .unwrap_or(0.0),
                );
            }
        }
        base
    }
}

/// One probe's share of passing rounds, against its tolerance.
pub(super) struct Share {
    pub probe: String,
    pub passed: usize,
    pub total: usize,
    pub tolerance: f64,
}

impl Share {
    pub fn short(&self) -> bool {
        (self.passed as f64) < self.tolerance * self.total as f64
    }
}

/// Per probe: how many of `rounds` it passed.
pub(super) fn shares(rounds: &[Round], probes: &[Probe]) -> Vec<Share> {
    probes
        .iter()
        .enumerate()
        .map(|(i, probe)| Share {
            probe: probe.name.clone(),
            passed: rounds
                .iter()
                .filter(|r| r.results.get(i).is_some_and(|x| x.pass))
                .count(),
            total: rounds.len(),
            tolerance: probe.tolerance.ratio(),
        })
        .collect()
}

/// Each round as a dot on the chart: when, and whether it held.
pub(super) fn marks(rounds: &[Round]) -> Vec<(Duration, bool)> {
    rounds.iter().map(|r| (r.at, r.holds())).collect()
}
