//! The gameday timeline of one drill (a chaos drill, the DR restore): what happened when,
//! since the drill started. Every event also goes to the run's live timeline; at the end the
//! drill's events, its times (to detect, to recover, to each alert) and a chart of it become
//! the report's drill entry and an SVG in the run directory.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use gauntlet_report::{DrillEvent, DrillReport, Outcome};

use crate::context::Recorder;

pub struct Timeline {
    started: Instant,
    step: &'static str,
    drill: String,
    events: Vec<DrillEvent>,
    /// Alert name → from the first fault to its notification, in milliseconds.
    alerts: BTreeMap<String, u64>,
}

/// How long a drill took to notice and to recover, and the bound recovery had.
#[derive(Debug, Default, Clone, Copy)]
pub struct Times {
    pub detect: Option<Duration>,
    pub recover: Option<Duration>,
    pub bound: Option<Duration>,
}

impl Timeline {
    pub fn start(step: &'static str, drill: &str) -> Self {
        Self {
            started: Instant::now(),
            step,
            drill: drill.to_string(),
            events: Vec::new(),
            alerts: BTreeMap::new(),
        }
    }

    /// When the drill started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Since the drill started.
    pub fn at(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records `kind` now, on the drill's timeline and the run's; returns when.
    pub fn note(&mut self, recorder: &Recorder, kind: &str, detail: impl Into<String>) -> Duration {
        let at = self.at();
        let detail = detail.into();
        recorder.event(
            Some(self.step),
            &format!("drill-{kind}"),
            format!("{} +{:.2}s {kind}: {detail}", self.drill, at.as_secs_f64()),
        );
        self.mark(at, kind, detail);
        at
    }

    /// Records `kind` at `at` on the drill's timeline only (something learnt afterwards).
    pub fn mark(&mut self, at: Duration, kind: &str, detail: impl Into<String>) {
        self.events.push(DrillEvent {
            at_ms: at.as_millis() as u64,
            kind: kind.to_string(),
            detail: detail.into(),
        });
    }

    /// An alert that reached gauntlet `after` the first fault (which went in at `fault_at`).
    pub fn alert(
        &mut self,
        recorder: &Recorder,
        name: &str,
        after: Duration,
        fault_at: Duration,
        via: &str,
    ) {
        let at = after + fault_at;
        self.mark(
            at,
            "alert",
            format!("{name} reached gauntlet's receiver via Alertmanager ({via})"),
        );
        recorder.event(
            Some(self.step),
            "drill-alert",
            format!(
                "{} +{:.2}s alert: {name} notified {:.2}s after the fault",
                self.drill,
                at.as_secs_f64(),
                after.as_secs_f64()
            ),
        );
        self.alerts
            .insert(name.to_string(), after.as_millis() as u64);
    }

    /// Whether an event of `kind` is on the timeline.
    pub fn saw(&self, kind: &str) -> bool {
        self.events.iter().any(|e| e.kind == kind)
    }

    /// When events of `kind` happened.
    pub fn when(&self, kind: &str) -> impl Iterator<Item = Duration> + '_ {
        let kind = kind.to_string();
        self.events
            .iter()
            .filter(move |e| e.kind == kind)
            .map(|e| Duration::from_millis(e.at_ms))
    }

    /// Ends the drill: writes its chart (`svg`, under the step's evidence) and returns its
    /// entry in the report. `rounds` are the probe rounds (when, and whether the hypothesis held).
    pub fn finish(
        self,
        recorder: &Recorder,
        svg: &str,
        expect: String,
        outcome: Outcome,
        rounds: &[(Duration, bool)],
        times: Times,
    ) -> DrillReport {
        let mut events = self.events;
        events.sort_by_key(|e| e.at_ms);
        let chart = gauntlet_report::svg::timeline(&self.drill, &events, rounds);
        let svg = recorder.evidence(self.step, svg, chart.as_bytes()).ok();
        let ms = |d: Option<Duration>| d.map(|d| d.as_millis() as u64);
        DrillReport {
            step: self.step.into(),
            name: self.drill,
            expect,
            outcome,
            time_to_detect_ms: ms(times.detect),
            time_to_recover_ms: ms(times.recover),
            recovery_bound_ms: ms(times.bound),
            time_to_alert_ms: self.alerts,
            events,
            svg,
            chaostoolkit: None,
        }
    }
}
