//! Step 4, disaster recovery, as a spec writes it: what data to back up (SQLite, files, or
//! commands), the marker records that measure the RPO, the RTO; with its checks.

use std::time::Duration as StdDuration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Section, StepName};
use crate::limits::{MAX_TIMEOUT, MINUTE};
use crate::model::{Request, Severity};
use crate::plan::{Seed, StepMeta, StepPlan};
use crate::units::Duration;
use crate::validate::{Context, Problems, quoted};

const AT: &str = "steps.dr";

fn candidate() -> String {
    "candidate".into()
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

/// Step 4: disaster recovery, measured for real.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrStep {
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
    /// The system whose data is protected (started by gauntlet): `candidate` or a dependency.
    #[serde(default = "candidate")]
    pub target: String,
    /// A SQLite database in the target's directory, backed up online by gauntlet.
    #[serde(default)]
    pub sqlite: Option<String>,
    /// Plain files in the target's directory, copied.
    #[serde(default)]
    pub files: Vec<String>,
    /// Back up with this command instead (placeholders `{dir}`: the live directory,
    /// `{backup}`: a directory to write into).
    #[serde(default)]
    pub backup_command: Option<Vec<String>>,
    /// Restore with this command instead (`{backup}`, and `{restore}`: the fresh directory).
    #[serde(default)]
    pub restore_command: Option<Vec<String>>,
    /// An extra verification after the restore (`{restore}`); must exit 0.
    #[serde(default)]
    pub verify_command: Option<Vec<String>>,
    /// Timestamped records written through the service to measure the RPO.
    #[schemars(with = "MarkerWrites")]
    pub markers: Spanned<MarkerWrites>,
    /// How long records keep being written after the backup (they are the loss to measure).
    #[serde(default = "one_second")]
    pub after_backup: Duration,
    #[serde(default = "fifteen_minutes")]
    pub rpo: Duration,
    #[serde(default = "thirty_minutes")]
    pub rto: Duration,
}

fn fifteen_minutes() -> Duration {
    Duration::from_secs(15 * 60)
}

fn thirty_minutes() -> Duration {
    Duration::from_secs(30 * 60)
}

/// `write` creates a record (`{marker}` in its body or path is a unique name); its JSON
/// answer's `id` fills `{id}` in `read`, which must answer 2xx while the record exists.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkerWrites {
    pub write: Request,
    pub read: Request,
    /// Records written before the backup.
    #[serde(default = "default_marker_count")]
    pub before: u32,
}

fn default_marker_count() -> u32 {
    3
}

impl Section for DrStep {
    fn step(&self) -> StepName {
        StepName::Dr
    }

    fn owner(&self) -> Option<&Spanned<String>> {
        self.owner.as_ref()
    }

    fn check(&self, cx: &Context<'_>, p: &mut Problems<'_>) {
        cx.check_system(
            p,
            &format!("{AT}.target"),
            "dr.target",
            &self.target,
            Some(""),
        );
        if self.sqlite.is_none() && self.files.is_empty() && self.backup_command.is_none() {
            p.key(
                AT,
                "the DR step has nothing to back up".into(),
                Some(
                    "name the data: `sqlite: app.db` and/or `files: [...]`, or give a `backup_command`"
                        .into(),
                ),
            );
        }
        if self.backup_command.is_some() != self.restore_command.is_some() {
            let given = if self.backup_command.is_some() {
                "backup_command"
            } else {
                "restore_command"
            };
            p.key(
                &format!("{AT}.{given}"),
                "`backup_command` and `restore_command` go together".into(),
                Some("a built-in backup is restored built-in; a backup made by a command needs its restore command".into()),
            );
        }
        if let Some(sqlite) = &self.sqlite {
            p.system_file(&format!("{AT}.sqlite"), sqlite, "dr");
        }
        for (i, file) in self.files.iter().enumerate() {
            p.system_file(&format!("{AT}.files[{i}]"), file, "dr");
        }
        let markers = &self.markers.value;
        for (key, request) in [("write", &markers.write), ("read", &markers.read)] {
            if !request.path.starts_with('/') {
                p.key(
                    &format!("{AT}.markers.{key}.path"),
                    format!(
                        "dr.markers: path `{}` does not start with `/`",
                        quoted(&request.path)
                    ),
                    None,
                );
            }
        }
        if markers.before == 0 {
            p.key(
                &format!("{AT}.markers.before"),
                "dr.markers.before must be at least 1".into(),
                Some("the restore must show a record written before the backup".into()),
            );
        }
        p.count(
            &format!("{AT}.markers.before"),
            u64::from(markers.before),
            10_000,
        );
        p.duration(
            &format!("{AT}.after_backup"),
            self.after_backup,
            true,
            10 * MINUTE,
        );
        p.duration(&format!("{AT}.rpo"), self.rpo, false, MAX_TIMEOUT);
        p.duration(&format!("{AT}.rto"), self.rto, false, MAX_TIMEOUT);
    }

    fn worst_case(&self, cx: &Context<'_>) -> Vec<(String, StdDuration)> {
        let ready = cx.spec.targets.candidate.value.ready_timeout.as_std();
        vec![(
            "dr".to_string(),
            self.after_backup.as_std() + ready + MINUTE,
        )]
    }

    fn plan(&self, _cx: &Context<'_>, _seed: Seed) -> Result<StepPlan, String> {
        Ok(StepPlan::Dr(DrPlan {
            meta: StepMeta::new(StepName::Dr, self.severity, self.owner.as_ref()),
            target: self.target.clone(),
            sqlite: self.sqlite.clone(),
            files: self.files.clone(),
            backup_command: self.backup_command.clone(),
            restore_command: self.restore_command.clone(),
            verify_command: self.verify_command.clone(),
            markers: self.markers.value.clone(),
            after_backup: self.after_backup,
            rpo: self.rpo,
            rto: self.rto,
        }))
    }
}

/// Disaster recovery as a run rehearses it.
#[derive(Debug, Clone)]
pub struct DrPlan {
    pub meta: StepMeta,
    /// The system whose data is protected (started by gauntlet).
    pub target: String,
    pub sqlite: Option<String>,
    pub files: Vec<String>,
    pub backup_command: Option<Vec<String>>,
    pub restore_command: Option<Vec<String>>,
    pub verify_command: Option<Vec<String>>,
    pub markers: MarkerWrites,
    pub after_backup: Duration,
    pub rpo: Duration,
    pub rto: Duration,
}
