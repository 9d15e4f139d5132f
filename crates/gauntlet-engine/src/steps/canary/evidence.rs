//! What a stage leaves behind: one check per judge (with its explanation), and the
//! evidence files (observations, each judge's trajectory as JSON and SVG).

use gauntlet_report::{Check, Outcome, Severity};
use gauntlet_stats::Verdict;

use super::panel::Panel;
use super::stage::{StageEnd, StageRun};
use crate::context::RunContext;

/// One check per judge for a finished stage.
pub fn judge_checks(
    step: &str,
    label: &str,
    panel: &Panel,
    run: &StageRun,
    severity: Severity,
    weight: &str,
) -> Vec<Check> {
    panel
        .seats
        .iter()
        .map(|seat| {
            let judge = &seat.judge;
            let alpha = if seat.dry_run {
                "dry run".to_string()
            } else {
                format!("alpha {:.4}", panel.alpha_each)
            };
            let context = format!(
                " ({:.1}s at {weight} weight, {alpha})",
                run.elapsed.as_secs_f64()
            );
            let (outcome, why) = match judge.verdict() {
                Verdict::Accept => (Outcome::Pass, "accepted"),
                Verdict::Reject => (Outcome::Fail, "rejected"),
                Verdict::Continue => match &run.end {
                    StageEnd::TimedOut if judge.samples() == 0 => (
                        Outcome::Inconclusive,
                        "no traffic reached both arms before the bake ended",
                    ),
                    StageEnd::TimedOut => (
                        Outcome::Inconclusive,
                        "no boundary crossed before the bake ended",
                    ),
                    StageEnd::Unmeasured(_) => {
                        (Outcome::Inconclusive, "the counts could not be trusted")
                    }
                    _ => (Outcome::Skipped, "undecided when the stage ended"),
                },
            };
            let mut check = Check::new(step, &format!("{label} {}", seat.name), severity)
                .samples(judge.samples())
                .measured(format!("{} after {} observations", why, judge.samples()))
                .threshold(if seat.dry_run {
                    "dry run: reported, never decides".to_string()
                } else {
                    "accept before the bake ends; never reject".to_string()
                })
                .outcome(outcome, format!("{}{context}", judge.explain()));
            check.dry_run = seat.dry_run;
            check
        })
        .collect()
}

/// Writes the stage's evidence: observations, each judge's trajectory (JSON and SVG).
pub fn stage_evidence(
    ctx: &RunContext,
    step: &str,
    label: &str,
    panel: &Panel,
    run: &StageRun,
) -> Vec<String> {
    let mut files = Vec::new();
    let slug = crate::context::file_safe(label);
    if let Ok(path) = ctx.recorder.evidence(
        step,
        &format!("{slug}-observations.jsonl.gz"),
        &run.recorded,
    ) {
        files.push(path);
    }
    for seat in &panel.seats {
        let trajectory = serde_json::to_vec(&seat.judge.trajectory().points).unwrap_or_default();
        if let Ok(path) =
            ctx.recorder
                .evidence(step, &format!("{slug}-{}.json", seat.name), &trajectory)
        {
            files.push(path);
        }
        let svg = gauntlet_report::svg::trajectory(
            &format!("{label}: {}", seat.name),
            &seat.judge.trajectory().points,
        );
        if let Ok(path) =
            ctx.recorder
                .evidence(step, &format!("{slug}-{}.svg", seat.name), svg.as_bytes())
        {
            files.push(path);
        }
    }
    files
}
