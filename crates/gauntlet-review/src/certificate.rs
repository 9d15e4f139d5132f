//! What the readiness certificate of a stored run says, gathered from the run: its
//! sign-offs verified now, its checklist scored as of now, the digests of its files. The
//! report crate renders it; the binary writes it beside the run, the server answers it.

use std::path::Path;

use gauntlet_report::certificate::{Certificate, SignoffRow};
use gauntlet_report::{ReadinessReport, Report, StepReport};
use gauntlet_spec::Plan;
use gauntlet_trust::Trust;

use crate::{readiness, signoff};

/// The checklist scored from the run's stored checks, with waivers judged as of `now_secs`
/// (a waiver that has expired since the run shows as expired); `None` without a checklist.
pub fn rescore(
    report: &Report,
    spec: &Plan,
    now_secs: u64,
) -> Option<(ReadinessReport, StepReport)> {
    let section = spec.readiness()?;
    let evaluated = readiness::evaluate(
        section,
        &spec.service.owners,
        &report.steps,
        &readiness::signatures_from(&report.steps),
        now_secs,
    );
    Some((evaluated.report, evaluated.step))
}

/// The certificate of the run in `run_dir` whose report is `report`: sign-offs count only
/// when they verify against the role's key in the spec, else `trust`.
pub fn gather<'a>(
    report: &'a Report,
    run_dir: &Path,
    spec: Option<&Plan>,
    trust: Option<&Trust>,
    now_secs: u64,
) -> Certificate<'a> {
    let signoffs = signoff_rows(report, run_dir, spec, trust);
    let valid: Vec<String> = signoffs
        .iter()
        .filter_map(|row| match row {
            SignoffRow::Verified { role, .. } => Some(role.clone()),
            _ => None,
        })
        .collect();
    let (decision, conditions) = signoff::effective(report, &valid);
    let digest = |relative: &str| {
        std::fs::read(run_dir.join(relative))
            .map(|b| gauntlet_report::sha256_hex(&b))
            .map_err(|e| e.to_string())
    };
    Certificate {
        report,
        decision,
        conditions,
        signoffs,
        verifier: trust.is_some(),
        readiness: spec
            .and_then(|s| rescore(report, s, now_secs))
            .map(|(r, _)| r),
        attestation: report
            .trust
            .as_ref()
            .and_then(|t| t.attestation.as_ref())
            .map(|att| (run_dir.join(att).display().to_string(), digest(att))),
        report_digest: digest("report.json"),
        issued_at: crate::now_rfc3339(),
    }
}

/// Each sign-off made, verified; then each required role still awaited.
fn signoff_rows(
    report: &Report,
    run_dir: &Path,
    spec: Option<&Plan>,
    trust: Option<&Trust>,
) -> Vec<SignoffRow> {
    let section = spec.and_then(|s| s.signoffs.as_ref());
    let made = signoff::verify_all(run_dir, &report.run_id, section, trust);
    let awaited: Vec<SignoffRow> = section
        .map(|s| s.required.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|r| !made.iter().any(|(s, _)| s == r))
        .map(|role| SignoffRow::Awaited { role })
        .collect();
    made.into_iter()
        .map(|(role, checked)| match checked {
            Ok((s, key)) => SignoffRow::Verified {
                role,
                by: s.by,
                time: s.time,
                key,
            },
            Err(why) => SignoffRow::Refused { role, why },
        })
        .chain(awaited)
        .collect()
}
