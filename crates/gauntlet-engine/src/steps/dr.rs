//! Step 4, disaster recovery, for real: write timestamped records through the service, back
//! its data up (SQLite's online backup and plain copies, or the spec's command), keep
//! writing, destroy the live copy (moved aside, kept as evidence), restore into a fresh
//! directory, verify the restored data against the backup (row counts and a checksum per
//! table), start the service on it and read the records back through its own API.
//!
//! RTO = restore start to the service verified healthy on the restored data.
//! RPO = the age, at the moment of the disaster, of the newest record present after the
//! restore: what a real disaster at that moment would have lost.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use gauntlet_net::Outgoing;
use gauntlet_report::{Check, DrillEvent, DrillReport, Outcome};
use gauntlet_spec::{DrPlan, Request, StepMeta};
use sha2::{Digest, Sha256};

use super::{Step, StepFuture, severity};
use crate::context::RunContext;
use crate::journal::Undo;
use crate::supervisor::{Endpoint, substitute, wait_ready};

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

/// A record written through the service.
struct Marker {
    id: Option<String>,
    name: String,
    written: SystemTime,
}

struct Timeline {
    started: Instant,
    events: Vec<DrillEvent>,
}

impl Timeline {
    fn note(&mut self, ctx: &RunContext, kind: &str, detail: impl Into<String>) -> Instant {
        let detail = detail.into();
        let at = self.started.elapsed();
        ctx.recorder.event(
            Some(STEP),
            &format!("drill-{kind}"),
            format!("restore +{:.2}s {kind}: {detail}", at.as_secs_f64()),
        );
        self.events.push(DrillEvent {
            at_ms: at.as_millis() as u64,
            kind: kind.into(),
            detail,
        });
        Instant::now()
    }
}

fn fill(request: &Request, base: &str, values: &[(&str, &str)]) -> Outgoing {
    let put = |text: &str| {
        values.iter().fold(text.to_string(), |t, (k, v)| {
            t.replace(&format!("{{{k}}}"), v)
        })
    };
    Outgoing {
        base: base.to_string(),
        method: request.method.as_str().to_string(),
        path: put(&request.path),
        headers: request
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), put(v)))
            .collect(),
        body: request.body.as_deref().map(put),
    }
}

async fn write_marker(
    ctx: &RunContext,
    config: &DrPlan,
    base: &str,
    name: String,
) -> Result<Marker, String> {
    let out = fill(&config.markers.write, base, &[("marker", &name)]);
    let answer = ctx
        .client
        .send(&out)
        .await
        .map_err(|e| format!("{} {}: {e}", out.method, out.path))?;
    if !answer.is_success() {
        return Err(format!(
            "{} {} -> {}: {}",
            out.method,
            out.path,
            answer.status,
            answer.body_text().trim()
        ));
    }
    let id = serde_json::from_slice::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|v| match &v["id"] {
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::String(s) => Some(s.clone()),
            _ => None,
        });
    Ok(Marker {
        id,
        name,
        written: SystemTime::now(),
    })
}

async fn marker_present(ctx: &RunContext, config: &DrPlan, base: &str, marker: &Marker) -> bool {
    let id = marker.id.clone().unwrap_or_default();
    let out = fill(
        &config.markers.read,
        base,
        &[("marker", &marker.name), ("id", &id)],
    );
    ctx.client.send(&out).await.is_ok_and(|a| a.is_success())
}

/// Row counts and a checksum of every table: what "the same data" means for a restore.
fn sqlite_fingerprint(path: &Path) -> Result<BTreeMap<String, (u64, String)>, String> {
    use rusqlite::OpenFlags;
    let db = rusqlite::Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| format!("list tables of {}: {e}", path.display()))?;
    let mut out = BTreeMap::new();
    for table in tables {
        let quoted = table.replace('"', "\"\"");
        let mut statement = db
            .prepare(&format!("SELECT * FROM \"{quoted}\" ORDER BY 1"))
            .map_err(|e| format!("read {table}: {e}"))?;
        let columns = statement.column_count();
        let mut rows = statement
            .query([])
            .map_err(|e| format!("read {table}: {e}"))?;
        let mut hash = Sha256::new();
        let mut count = 0u64;
        while let Some(row) = rows.next().map_err(|e| format!("read {table}: {e}"))? {
            count += 1;
            for i in 0..columns {
                let value = row.get_ref(i).map_err(|e| e.to_string())?;
                hash.update(format!("{value:?}").as_bytes());
                hash.update([0x1f]);
            }
            hash.update([0x1e]);
        }
        out.insert(table, (count, hex::encode(hash.finalize())));
    }
    Ok(out)
}

fn file_digest(path: &Path) -> Result<String, String> {
    std::fs::read(path)
        .map(|b| gauntlet_report::sha256_hex(&b))
        .map_err(|e| format!("read {}: {e}", path.display()))
}

/// What the backup holds, to compare the restore with.
#[derive(Debug, PartialEq)]
struct Fingerprint {
    tables: BTreeMap<String, (u64, String)>,
    files: BTreeMap<String, String>,
}

fn fingerprint(config: &DrPlan, dir: &Path) -> Result<Fingerprint, String> {
    let tables = match &config.sqlite {
        Some(db) => sqlite_fingerprint(&dir.join(db))?,
        None => BTreeMap::new(),
    };
    let mut files = BTreeMap::new();
    for file in &config.files {
        files.insert(file.clone(), file_digest(&dir.join(file))?);
    }
    Ok(Fingerprint { tables, files })
}

fn builtin_backup(config: &DrPlan, live: &Path, backup: &Path) -> Result<(), String> {
    std::fs::create_dir_all(backup).map_err(|e| e.to_string())?;
    if let Some(db) = &config.sqlite {
        let source =
            rusqlite::Connection::open(live.join(db)).map_err(|e| format!("open {db}: {e}"))?;
        // SQLite's online backup: a consistent copy while the service keeps writing.
        source
            .backup(
                rusqlite::MAIN_DB,
                backup.join(db),
                None::<fn(rusqlite::backup::Progress)>,
            )
            .map_err(|e| format!("back up {db}: {e}"))?;
    }
    for file in &config.files {
        copy_into(&live.join(file), &backup.join(file))?;
    }
    Ok(())
}

fn copy_into(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))
}

fn builtin_restore(config: &DrPlan, backup: &Path, fresh: &Path) -> Result<(), String> {
    std::fs::create_dir_all(fresh).map_err(|e| e.to_string())?;
    for name in config.sqlite.iter().chain(config.files.iter()) {
        copy_into(&backup.join(name), &fresh.join(name))?;
    }
    // The copied database file must be durable before the service opens it.
    if let Some(db) = &config.sqlite {
        std::fs::File::open(fresh.join(db))
            .and_then(|f| f.sync_all())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn run_command(
    ctx: &RunContext,
    argv: &[String],
    values: &BTreeMap<String, String>,
) -> Result<(), String> {
    let argv: Vec<String> = argv.iter().map(|a| substitute(a, values)).collect();
    let Some((program, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let status = tokio::time::timeout(
        Duration::from_secs(600),
        ctx.child_env
            .command(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .status(),
    )
    .await
    .map_err(|_| format!("`{program}` did not finish within 10 minutes"))?
    .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` exited with {status}", argv.join(" ")))
    }
}

async fn run(ctx: &RunContext, config: &DrPlan) -> Vec<Check> {
    let severity = severity(&config.meta);
    let check = |name: &str| Check::new(STEP, name, severity);
    let target = config.target.as_str();
    let mut timeline = Timeline {
        started: Instant::now(),
        events: Vec::new(),
    };
    let inconclusive = |why: String| vec![check("restore").outcome(Outcome::Inconclusive, why)];
    let (Some(system), Some(live)) = (
        ctx.systems.get(target),
        ctx.supervisor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .dir(target),
    ) else {
        return inconclusive(format!(
            "gauntlet did not start `{target}`, so it cannot stop it and restore its data"
        ));
    };
    let base = system.url.clone();
    timeline.note(
        ctx,
        "start",
        format!("data of {target} in {}", live.display()),
    );

    // Records written before the backup must survive; those after it measure the loss.
    let run = ctx
        .recorder
        .run_dir()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut markers = Vec::new();
    for i in 0..config.markers.before {
        match write_marker(ctx, config, &base, format!("gauntlet-dr-{run}-before-{i}")).await {
            Ok(m) => markers.push(m),
            Err(e) => {
                return inconclusive(format!(
                    "cannot write the records that measure the RPO: {e}"
                ));
            }
        }
    }
    timeline.note(
        ctx,
        "markers",
        format!("{} records written before the backup", markers.len()),
    );

    // Backup.
    let backup_dir = ctx.recorder.run_dir().join("dr").join("backup");
    let mut values = BTreeMap::new();
    values.insert("dir".to_string(), live.display().to_string());
    values.insert("backup".to_string(), backup_dir.display().to_string());
    let backup_started = Instant::now();
    let backed_up = match &config.backup_command {
        Some(command) => {
            let _ = std::fs::create_dir_all(&backup_dir);
            run_command(ctx, command, &values).await
        }
        None => {
            let (c, l, b) = (config.clone(), live.clone(), backup_dir.clone());
            tokio::task::spawn_blocking(move || builtin_backup(&c, &l, &b))
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
        }
    };
    let backup_took = backup_started.elapsed();
    let backup_check = check("backup").threshold("a backup is taken while the service runs");
    if let Err(e) = backed_up {
        timeline.note(ctx, "end", "the backup failed");
        finish(ctx, timeline, None, config, Outcome::Fail);
        return vec![backup_check.outcome(Outcome::Fail, e)];
    }
    let expected = if config.backup_command.is_none() {
        fingerprint(config, &backup_dir).ok()
    } else {
        None
    };
    let rows: u64 = expected
        .iter()
        .flat_map(|f| f.tables.values())
        .map(|(n, _)| n)
        .sum();
    timeline.note(
        ctx,
        "backup",
        format!(
            "backup in {:.0}ms ({rows} rows)",
            backup_took.as_secs_f64() * 1000.0
        ),
    );
    let mut checks = vec![
        backup_check
            .measured(format!(
                "{:.0}ms, {rows} rows",
                backup_took.as_secs_f64() * 1000.0
            ))
            .outcome(
                Outcome::Pass,
                format!("backed up into {}", backup_dir.display()),
            ),
    ];

    // Writes after the backup: a real disaster now would lose them.
    let keep_writing = Instant::now() + config.after_backup.as_std();
    let mut i = 0;
    while Instant::now() < keep_writing {
        if let Ok(m) =
            write_marker(ctx, config, &base, format!("gauntlet-dr-{run}-after-{i}")).await
        {
            markers.push(m);
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    timeline.note(
        ctx,
        "markers",
        format!("{i} records written after the backup"),
    );

    // The disaster: the service stops and its data is moved aside (kept as evidence).
    let disaster = SystemTime::now();
    let lost = live.with_file_name(format!(
        "{}-destroyed",
        live.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let stop = {
        let supervisor = ctx.supervisor.clone();
        let target = target.to_string();
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
    let journal_id = ctx
        .journal
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .register(Undo::RestoreFile {
            path: live.clone(),
            original: lost.clone(),
        })
        .ok();
    if let Err(e) = std::fs::rename(&live, &lost) {
        checks.push(check("restore").outcome(
            Outcome::Inconclusive,
            format!("cannot move the live data aside: {e}"),
        ));
        return checks;
    }
    timeline.note(
        ctx,
        "disaster",
        format!(
            "{}; live data moved to {}",
            stop.unwrap_or_else(|| format!("{target} was not running")),
            lost.display()
        ),
    );

    // Restore into a fresh directory.
    let fresh = live.with_file_name(format!(
        "{}-restored",
        live.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    values.insert("restore".to_string(), fresh.display().to_string());
    let restore_started =
        timeline.note(ctx, "restore-started", format!("into {}", fresh.display()));
    let restored = match &config.restore_command {
        Some(command) => {
            let _ = std::fs::create_dir_all(&fresh);
            run_command(ctx, command, &values).await
        }
        None => {
            let (c, b, f) = (config.clone(), backup_dir.clone(), fresh.clone());
            tokio::task::spawn_blocking(move || builtin_restore(&c, &b, &f))
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
        }
    };
    let data_check = check("restored data matches the backup")
        .threshold("row counts and a checksum per table, and file digests, equal the backup's");
    match (&restored, &expected) {
        (Err(e), _) => {
            checks.push(data_check.outcome(Outcome::Fail, format!("the restore failed: {e}")))
        }
        (Ok(()), Some(expected)) => match fingerprint(config, &fresh) {
            Ok(found) if &found == expected => {
                timeline.note(
                    ctx,
                    "data-verified",
                    format!(
                        "{} tables, {} files identical to the backup",
                        found.tables.len(),
                        found.files.len()
                    ),
                );
                checks.push(
                    data_check
                        .measured(format!("{rows} rows"))
                        .outcome(Outcome::Pass, "identical to the backup"),
                );
            }
            Ok(found) => checks.push(data_check.outcome(
                Outcome::Fail,
                format!(
                    "restored {:?} differs from the backup {:?}",
                    found.tables, expected.tables
                ),
            )),
            Err(e) => checks.push(data_check.outcome(Outcome::Fail, e)),
        },
        (Ok(()), None) => {}
    }
    if let (Ok(()), Some(command)) = (&restored, &config.verify_command) {
        let c = check("verify command").threshold("exits 0");
        checks.push(match run_command(ctx, command, &values).await {
            Ok(()) => c.outcome(Outcome::Pass, "the verify command passed"),
            Err(e) => c.outcome(Outcome::Fail, e),
        });
    }

    // The service on the restored data, verified through its own API.
    let healthy_check = check("service healthy on the restored data").threshold(
        "it starts on the restored data and serves every record written before the backup",
    );
    let respawned = ctx
        .supervisor
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .respawn(target, Some(&fresh));
    let ready = match respawned {
        Ok(endpoint) => match ctx.plan.systems.in_start_order().find(|s| s.name == target) {
            Some(system) => {
                let endpoint = Endpoint {
                    url: base.clone(),
                    ..endpoint
                };
                wait_ready(
                    &ctx.supervisor,
                    &ctx.client,
                    &endpoint,
                    &system.health,
                    system.ready_timeout.as_std(),
                )
                .await
                .map_err(|e| e.to_string())
            }
            None => Err(format!("the plan has no system `{target}`")),
        },
        Err(e) => Err(e.to_string()),
    };
    // From here the destroyed copy stays aside as evidence; had the run died before this,
    // the journal would have put it back.
    if let Some(id) = journal_id {
        let _ = ctx
            .journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .done(id);
    }
    let mut present = Vec::new();
    if let Err(e) = &ready {
        checks.push(healthy_check.outcome(
            Outcome::Fail,
            format!("the service did not come up on the restored data: {e}"),
        ));
    } else {
        timeline.note(
            ctx,
            "restarted",
            format!("{target} runs on {}", fresh.display()),
        );
        for marker in &markers {
            present.push(marker_present(ctx, config, &base, marker).await);
        }
        let before = config.markers.before as usize;
        let kept = present.iter().take(before).filter(|p| **p).count();
        if kept == before {
            checks.push(
                healthy_check
                    .measured(format!("{kept}/{before} records"))
                    .outcome(
                        Outcome::Pass,
                        "every record from before the backup is served",
                    ),
            );
        } else {
            checks.push(healthy_check.outcome(
                Outcome::Fail,
                format!("only {kept} of the {before} records written before the backup are served"),
            ));
        }
    }
    let verified_at = timeline.note(ctx, "verified", "checked through the service's API");
    let rto = verified_at.duration_since(restore_started);

    let rto_check = check("RTO").threshold(format!("≤ {}", config.rto));
    let healthy = checks.iter().all(|c| c.outcome == Outcome::Pass);
    checks.push(if !healthy {
        rto_check.outcome(
            Outcome::Fail,
            "the restore did not end in a verified, healthy service",
        )
    } else if rto <= config.rto.as_std() {
        ctx.recorder.measure("dr.rto", rto.as_secs_f64());
        rto_check
            .measured(format!("{:.2}s", rto.as_secs_f64()))
            .outcome(Outcome::Pass, "restore start to verified healthy")
    } else {
        rto_check
            .measured(format!("{:.2}s", rto.as_secs_f64()))
            .outcome(
                Outcome::Fail,
                "restore start to verified healthy took longer than the RTO",
            )
    });
    let newest = markers
        .iter()
        .zip(&present)
        .filter(|(_, p)| **p)
        .map(|(m, _)| m.written)
        .max();
    let lost_count = present.iter().filter(|p| !**p).count();
    let rpo_check = check("RPO").threshold(format!("≤ {}", config.rpo));
    checks.push(match newest {
        Some(newest) => {
            let rpo = disaster.duration_since(newest).unwrap_or_default();
            ctx.recorder.measure("dr.rpo", rpo.as_secs_f64());
            let measured = format!(
                "{:.2}s ({lost_count} of {} records lost)",
                rpo.as_secs_f64(),
                markers.len()
            );
            if rpo <= config.rpo.as_std() {
                rpo_check.measured(measured).outcome(
                    Outcome::Pass,
                    "age of the newest record present after the restore, at the disaster",
                )
            } else {
                rpo_check
                    .measured(measured)
                    .outcome(Outcome::Fail, "more data lost than the RPO allows")
            }
        }
        None => rpo_check.outcome(
            if ready.is_ok() {
                Outcome::Fail
            } else {
                Outcome::Inconclusive
            },
            "no record written through the service is present after the restore",
        ),
    });
    let worst = if checks.iter().any(|c| c.outcome == Outcome::Fail) {
        Outcome::Fail
    } else if checks.iter().any(|c| c.outcome == Outcome::Inconclusive) {
        Outcome::Inconclusive
    } else {
        Outcome::Pass
    };
    timeline.note(ctx, "end", worst.as_str());
    finish(ctx, timeline, Some(rto), config, worst);
    checks
}

fn finish(
    ctx: &RunContext,
    timeline: Timeline,
    rto: Option<Duration>,
    config: &DrPlan,
    outcome: Outcome,
) {
    let events = timeline.events;
    let svg = gauntlet_report::svg::timeline("restore", &events, &[]);
    let svg = ctx
        .recorder
        .evidence(STEP, "restore-timeline.svg", svg.as_bytes())
        .ok();
    ctx.recorder.push_drill(DrillReport {
        step: STEP.into(),
        name: "restore".into(),
        expect: format!("RPO ≤ {}, RTO ≤ {}", config.rpo, config.rto),
        outcome,
        time_to_detect_ms: None,
        time_to_recover_ms: rto.map(|d| d.as_millis() as u64),
        recovery_bound_ms: Some(config.rto.as_std().as_millis() as u64),
        time_to_alert_ms: Default::default(),
        events,
        svg,
    });
}
