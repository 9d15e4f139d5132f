//! Step 4, disaster recovery, for real: write timestamped records through the service, back
//! its data up (SQLite's online backup and plain copies, or the spec's command), keep
//! writing, destroy the live copy (moved aside, kept as evidence), restore into a fresh
//! directory, verify the restored data against the backup (row counts and a checksum per
//! table), start the service on it and read the records back through its own API.
//!
//! RTO = restore start to the service verified healthy on the restored data.
//! RPO = the age, at the moment of the disaster, of the newest record present after the
//! restore: what a real disaster at that moment would have lost. Both are measured on the
//! monotonic clock, so a wall clock stepping back cannot shrink them.
//!
//! `data.rs` backs up, restores and fingerprints; `markers.rs` writes and reads the records.

mod data;
mod markers;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

use gauntlet_report::{Check, Outcome, Severity};
use gauntlet_spec::{DrPlan, StepMeta};

use super::{Step, StepFuture, StepOutput, severity};
use crate::context::RunContext;
use crate::journal::Undo;
use crate::supervisor::{Endpoint, wait_ready};
use crate::timeline::{Timeline, Times};
use data::{Fingerprint, builtin_backup, builtin_restore, fingerprint, run_command};
use markers::{Marker, marker_present, write_marker};

const STEP: &str = gauntlet_spec::StepName::Dr.as_str();

pub struct Dr(pub(crate) DrPlan);

impl Step for Dr {
    fn step(&self) -> gauntlet_spec::StepName {
        gauntlet_spec::StepName::Dr
    }
    fn meta(&self) -> &StepMeta {
        &self.0.meta
    }
    fn run<'a>(&'a self, ctx: &'a RunContext) -> StepFuture<'a> {
        Box::pin(run(ctx, &self.0))
    }
}

/// Phases: records before, **backup**, records after, the **disaster**, the **restore**,
/// the restored data and service **verified**, RTO and RPO.
async fn run(ctx: &RunContext, plan: &DrPlan) -> StepOutput {
    let Some(mut dr) = Restore::new(ctx, plan) else {
        let target = &plan.target;
        return vec![Check::new(STEP, "restore", severity(&plan.meta)).outcome(
            Outcome::Inconclusive,
            format!("gauntlet did not start `{target}`, so it cannot stop it and restore its data"),
        )]
        .into();
    };
    if let Err(why) = dr.write_before().await {
        return dr.stop(Outcome::Inconclusive, "restore", why);
    }
    let expected = match dr.backup().await {
        Ok(expected) => expected,
        Err(why) => return dr.stop(Outcome::Fail, "backup", why),
    };
    dr.write_after().await;
    let Some(disaster) = dr.disaster().await else {
        return dr.finish(None);
    };
    let restore_started = dr.restore(expected.as_ref()).await;
    let present = dr.restart_and_read().await;
    let verified_at = dr.note("verified", "checked through the service's API");
    let rto = verified_at.saturating_sub(restore_started);
    dr.rto_check(rto);
    dr.rpo_check(disaster, present);
    dr.finish(Some(rto))
}

/// One DR rehearsal in progress: what it has done so far and the checks it made.
struct Restore<'a> {
    ctx: &'a RunContext,
    plan: &'a DrPlan,
    severity: Severity,
    timeline: Timeline,
    /// Where the target answers, and its live data directory.
    base: String,
    live: PathBuf,
    backup_dir: PathBuf,
    /// The placeholders of the spec's commands: `{dir}`, `{backup}`, `{restore}`.
    values: BTreeMap<String, String>,
    markers: Vec<Marker>,
    /// Backup rows, for the data check's measure.
    rows: u64,
    /// The destroyed copy's journal entry, closed once the service runs on the restore.
    journal_id: Option<u64>,
    /// `Ok` once the service answers on the restored data.
    ready: Result<(), String>,
    checks: Vec<Check>,
    /// RTO and RPO, once measured.
    measured: StepOutput,
}

impl<'a> Restore<'a> {
    fn new(ctx: &'a RunContext, plan: &'a DrPlan) -> Option<Self> {
        let target = plan.target.as_str();
        let system = ctx.systems.get(target)?;
        let live = ctx
            .supervisor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .dir(target)?;
        let backup_dir = ctx.recorder.run_dir().join("dr").join("backup");
        let values = BTreeMap::from([
            ("dir".to_string(), live.display().to_string()),
            ("backup".to_string(), backup_dir.display().to_string()),
        ]);
        let mut restore = Self {
            ctx,
            plan,
            severity: severity(&plan.meta),
            timeline: Timeline::start(STEP, "restore"),
            base: system.url.clone(),
            live,
            backup_dir,
            values,
            markers: Vec::new(),
            rows: 0,
            journal_id: None,
            ready: Err("not restarted".into()),
            checks: Vec::new(),
            measured: StepOutput::default(),
        };
        let start = format!("data of {target} in {}", restore.live.display());
        restore.note("start", start);
        Some(restore)
    }

    fn check(&self, name: &str) -> Check {
        Check::new(STEP, name, self.severity)
    }

    fn note(&mut self, kind: &str, detail: impl Into<String>) -> Duration {
        self.timeline.note(&self.ctx.recorder, kind, detail)
    }

    /// A record name unique to this run.
    fn marker_name(&self, when: &str, i: u32) -> String {
        let run = self
            .ctx
            .recorder
            .run_dir()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("gauntlet-dr-{run}-{when}-{i}")
    }

    /// Records written before the backup must survive the restore.
    async fn write_before(&mut self) -> Result<(), String> {
        for i in 0..self.plan.markers.before {
            let name = self.marker_name("before", i);
            let marker = write_marker(self.ctx, self.plan, &self.base, name)
                .await
                .map_err(|e| format!("cannot write the records that measure the RPO: {e}"))?;
            self.markers.push(marker);
        }
        let written = format!("{} records written before the backup", self.markers.len());
        self.note("markers", written);
        Ok(())
    }

    /// Backup, while the service runs: by the spec's command, or built in (then
    /// fingerprinted, to compare the restore with).
    async fn backup(&mut self) -> Result<Option<Fingerprint>, String> {
        let started = Instant::now();
        let backed_up = match &self.plan.backup_command {
            Some(command) => {
                let _ = std::fs::create_dir_all(&self.backup_dir);
                run_command(self.ctx, command, &self.values).await
            }
            None => {
                let (plan, live, backup) = (
                    self.plan.clone(),
                    self.live.clone(),
                    self.backup_dir.clone(),
                );
                tokio::task::spawn_blocking(move || builtin_backup(&plan, &live, &backup))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()))
            }
        };
        backed_up?;
        let took = started.elapsed().as_secs_f64() * 1000.0;
        let expected = match self.plan.backup_command {
            None => fingerprint(self.plan, &self.backup_dir).ok(),
            Some(_) => None,
        };
        self.rows = expected
            .iter()
            .flat_map(|f| f.tables.values())
            .map(|(n, _)| n)
            .sum();
        let rows = self.rows;
        self.note("backup", format!("backup in {took:.0}ms ({rows} rows)"));
        let check = self
            .check("backup")
            .threshold("a backup is taken while the service runs")
            .measured(format!("{took:.0}ms, {rows} rows"))
            .outcome(
                Outcome::Pass,
                format!("backed up into {}", self.backup_dir.display()),
            );
        self.checks.push(check);
        Ok(expected)
    }

    /// Writes after the backup: a real disaster now would lose them.
    async fn write_after(&mut self) {
        let until = Instant::now() + self.plan.after_backup.as_std();
        let mut i = 0;
        while Instant::now() < until {
            let name = self.marker_name("after", i);
            if let Ok(marker) = write_marker(self.ctx, self.plan, &self.base, name).await {
                self.markers.push(marker);
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.note("markers", format!("{i} records written after the backup"));
    }

    /// The disaster: the service stops and its data is moved aside (journaled, kept as
    /// evidence). Returns when it happened; `None` if the data could not be moved.
    async fn disaster(&mut self) -> Option<Instant> {
        let at = Instant::now();
        let lost = sibling(&self.live, "destroyed");
        let stop = {
            let supervisor = self.ctx.supervisor.clone();
            let target = self.plan.target.clone();
            tokio::task::spawn_blocking(move || {
                supervisor
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .stop(&target)
            })
            .await
            .ok()
            .flatten()
        };
        self.journal_id = self
            .ctx
            .journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register(Undo::RestoreFile {
                path: self.live.clone(),
                original: lost.clone(),
            })
            .ok();
        if let Err(e) = std::fs::rename(&self.live, &lost) {
            let check = self.check("restore").outcome(
                Outcome::Inconclusive,
                format!("cannot move the live data aside: {e}"),
            );
            self.checks.push(check);
            return None;
        }
        let stopped = stop.unwrap_or_else(|| format!("{} was not running", self.plan.target));
        self.note(
            "disaster",
            format!("{stopped}; live data moved to {}", lost.display()),
        );
        Some(at)
    }

    /// The restore into a fresh directory, and the restored data checked against the
    /// backup (and by the spec's verify command). Returns when the restore started.
    async fn restore(&mut self, expected: Option<&Fingerprint>) -> Duration {
        let fresh = sibling(&self.live, "restored");
        self.values
            .insert("restore".to_string(), fresh.display().to_string());
        let started = self.note("restore-started", format!("into {}", fresh.display()));
        let restored = match &self.plan.restore_command {
            Some(command) => {
                let _ = std::fs::create_dir_all(&fresh);
                run_command(self.ctx, command, &self.values).await
            }
            None => {
                let (plan, backup, into) =
                    (self.plan.clone(), self.backup_dir.clone(), fresh.clone());
                tokio::task::spawn_blocking(move || builtin_restore(&plan, &backup, &into))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()))
            }
        };
        self.check_data(&restored, expected, &fresh);
        if let (Ok(()), Some(command)) = (&restored, &self.plan.verify_command) {
            let check = self.check("verify command").threshold("exits 0");
            let check = match run_command(self.ctx, command, &self.values).await {
                Ok(()) => check.outcome(Outcome::Pass, "the verify command passed"),
                Err(e) => check.outcome(Outcome::Fail, e),
            };
            self.checks.push(check);
        }
        started
    }

    fn check_data(
        &mut self,
        restored: &Result<(), String>,
        expected: Option<&Fingerprint>,
        fresh: &std::path::Path,
    ) {
        let check = self
            .check("restored data matches the backup")
            .threshold("row counts and a checksum per table, and file digests, equal the backup's");
        let check = match (restored, expected) {
            (Err(e), _) => check.outcome(Outcome::Fail, format!("the restore failed: {e}")),
            (Ok(()), None) => return,
            (Ok(()), Some(expected)) => match fingerprint(self.plan, fresh) {
                Ok(found) if &found == expected => {
                    let same = format!(
                        "{} tables, {} files identical to the backup",
                        found.tables.len(),
                        found.files.len()
                    );
                    self.note("data-verified", same);
                    check
                        .measured(format!("{} rows", self.rows))
                        .outcome(Outcome::Pass, "identical to the backup")
                }
                Ok(found) => check.outcome(
                    Outcome::Fail,
                    format!(
                        "restored {:?} differs from the backup {:?}",
                        found.tables, expected.tables
                    ),
                ),
                Err(e) => check.outcome(Outcome::Fail, e),
            },
        };
        self.checks.push(check);
    }

    /// The service started again on the restored data, and every record read back through
    /// its own API. Returns which records are present.
    async fn restart_and_read(&mut self) -> Vec<bool> {
        let check = self
            .check("service healthy on the restored data")
            .threshold(
                "it starts on the restored data and serves every record written before the backup",
            );
        self.ready = self.restart().await;
        // From here the destroyed copy stays aside as evidence; had the run died before this,
        // the journal would have put it back.
        if let Some(id) = self.journal_id.take() {
            let _ = self
                .ctx
                .journal
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .done(id);
        }
        if let Err(e) = &self.ready {
            let failed = check.outcome(
                Outcome::Fail,
                format!("the service did not come up on the restored data: {e}"),
            );
            self.checks.push(failed);
            return Vec::new();
        }
        let restarted = format!("{} runs on {}", self.plan.target, self.values["restore"]);
        self.note("restarted", restarted);
        let mut present = Vec::new();
        for marker in &self.markers {
            present.push(marker_present(self.ctx, self.plan, &self.base, marker).await);
        }
        let before = self.plan.markers.before as usize;
        let kept = present.iter().take(before).filter(|p| **p).count();
        self.checks.push(if kept == before {
            check.measured(format!("{kept}/{before} records")).outcome(
                Outcome::Pass,
                "every record from before the backup is served",
            )
        } else {
            check.outcome(
                Outcome::Fail,
                format!("only {kept} of the {before} records written before the backup are served"),
            )
        });
        present
    }

    async fn restart(&self) -> Result<(), String> {
        let target = self.plan.target.as_str();
        let fresh = PathBuf::from(&self.values["restore"]);
        let endpoint = self
            .ctx
            .supervisor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .respawn(target, Some(&fresh))
            .map_err(|e| e.to_string())?;
        let system = self
            .ctx
            .plan
            .systems
            .in_start_order()
            .find(|s| s.name == target)
            .ok_or_else(|| format!("the plan has no system `{target}`"))?;
        let endpoint = Endpoint {
            url: self.base.clone(),
            ..endpoint
        };
        wait_ready(
            &self.ctx.supervisor,
            &self.ctx.client,
            &endpoint,
            &system.health,
            system.ready_timeout.as_std(),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    fn rto_check(&mut self, rto: Duration) {
        let check = self.check("RTO").threshold(format!("≤ {}", self.plan.rto));
        let healthy = self.checks.iter().all(|c| c.outcome == Outcome::Pass);
        let measured = format!("{:.2}s", rto.as_secs_f64());
        let check = if !healthy {
            check.outcome(
                Outcome::Fail,
                "the restore did not end in a verified, healthy service",
            )
        } else if rto <= self.plan.rto.as_std() {
            self.measured.measure("dr.rto", rto.as_secs_f64());
            check
                .measured(measured)
                .outcome(Outcome::Pass, "restore start to verified healthy")
        } else {
            check.measured(measured).outcome(
                Outcome::Fail,
                "restore start to verified healthy took longer than the RTO",
            )
        };
        self.checks.push(check);
    }

    /// The age, at the disaster, of the newest record present after the restore.
    fn rpo_check(&mut self, disaster: Instant, present: Vec<bool>) {
        let check = self.check("RPO").threshold(format!("≤ {}", self.plan.rpo));
        let newest = self
            .markers
            .iter()
            .zip(&present)
            .filter(|(_, p)| **p)
            .map(|(m, _)| m.written)
            .max();
        let lost = present.iter().filter(|p| !**p).count();
        let check = match newest {
            // A record confirmed after the disaster (it cannot be) is not a zero RPO.
            Some(newest) if newest > disaster => check.outcome(
                Outcome::Inconclusive,
                "a record present after the restore was confirmed after the disaster: the RPO cannot be measured",
            ),
            Some(newest) => {
                let rpo = disaster.duration_since(newest);
                self.measured.measure("dr.rpo", rpo.as_secs_f64());
                let measured = format!(
                    "{:.2}s ({lost} of {} records lost)",
                    rpo.as_secs_f64(),
                    self.markers.len()
                );
                if rpo <= self.plan.rpo.as_std() {
                    check.measured(measured).outcome(
                        Outcome::Pass,
                        "age of the newest record present after the restore, at the disaster",
                    )
                } else {
                    check
                        .measured(measured)
                        .outcome(Outcome::Fail, "more data lost than the RPO allows")
                }
            }
            None => check.outcome(
                if self.ready.is_ok() {
                    Outcome::Fail
                } else {
                    Outcome::Inconclusive
                },
                "no record written through the service is present after the restore",
            ),
        };
        self.checks.push(check);
    }

    /// Ends early with one check.
    fn stop(mut self, outcome: Outcome, name: &str, why: String) -> StepOutput {
        self.checks.push(self.check(name).outcome(outcome, why));
        self.finish(None)
    }

    fn finish(mut self, rto: Option<Duration>) -> StepOutput {
        let worst = if self.checks.iter().any(|c| c.outcome == Outcome::Fail) {
            Outcome::Fail
        } else if self
            .checks
            .iter()
            .any(|c| c.outcome == Outcome::Inconclusive)
        {
            Outcome::Inconclusive
        } else {
            Outcome::Pass
        };
        self.note("end", worst.as_str());
        let times = Times {
            detect: None,
            recover: rto,
            bound: Some(self.plan.rto.as_std()),
        };
        let report = self.timeline.finish(
            &self.ctx.recorder,
            "restore-timeline.svg",
            format!("RPO ≤ {}, RTO ≤ {}", self.plan.rpo, self.plan.rto),
            worst,
            &[],
            times,
        );
        let mut output = self.measured;
        output.checks = self.checks;
        output.drill(report);
        output
    }
}

/// `DIR-WORD` beside `dir`.
fn sibling(dir: &std::path::Path, word: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!("{name}-{word}"))
}
