//! `gauntlet readiness RUN` and `gauntlet certificate RUN`: the PRR checklist scored from a
//! stored run's checks, and the readiness certificate (Markdown and HTML) a release manager
//! files with the release.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gauntlet_engine::exit;
use gauntlet_report::{Decision, ReadinessReport, Report, StepReport, table_cell as cell};
use gauntlet_review::{readiness, signoff};
use gauntlet_store::Store;

use crate::CliError;
use crate::cli::{Global, TrustArgs};

struct Stored {
    report: Report,
    run_dir: PathBuf,
    spec: Option<gauntlet_spec::Plan>,
}

/// A finished run: its summary and its report; `missing` says what an unfinished run lacks.
pub(crate) fn finished_run(
    store: &Store,
    run: &str,
    missing: &str,
) -> Result<(gauntlet_store::RunSummary, Report), CliError> {
    let summary = store.find_run(run).map_err(CliError::from_store)?;
    let report = store
        .report(&summary.id)
        .map_err(anyhow::Error::from)?
        .ok_or_else(|| CliError::Usage(format!("run {} never finished: {missing}", summary.id)))?;
    Ok((summary, report))
}

/// The spec a run executed (its copy in the run directory), if it still loads.
pub(crate) fn run_spec(run_dir: &Path) -> Option<gauntlet_spec::Plan> {
    let text = crate::read_spec(&run_dir.join("spec.yaml")).ok()?;
    gauntlet_spec::plan_str("spec.yaml", &text, &Default::default(), 1).ok()
}

fn load(store: &Store, run: &str) -> Result<Stored, CliError> {
    let (summary, report) = finished_run(store, run, "it has no checks to score")?;
    let run_dir = PathBuf::from(&summary.run_dir);
    let spec = run_spec(&run_dir);
    Ok(Stored {
        report,
        run_dir,
        spec,
    })
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The checklist scored from the run's stored checks, with waivers judged as of now (a
/// waiver that has expired since the run shows as expired).
fn score(stored: &Stored) -> Result<(ReadinessReport, StepReport), CliError> {
    let Some((spec, section)) = stored
        .spec
        .as_ref()
        .and_then(|s| s.readiness().map(|r| (s, r)))
    else {
        return Err(CliError::Usage(format!(
            "run {} has no readiness checklist: add a `readiness` section to its spec",
            stored.report.run_id
        )));
    };
    let evaluated = readiness::evaluate(
        section,
        &spec.service.owners,
        &stored.report.steps,
        &readiness::signatures_from(&stored.report.steps),
        now_secs(),
    );
    Ok((evaluated.report, evaluated.step))
}

pub fn readiness_command(store: &Store, run: &str, json: bool) -> Result<i32, CliError> {
    let stored = load(store, run)?;
    let (report, step) = score(&stored)?;
    let failing = step.checks.iter().any(|c| c.outcome.as_str() == "fail");
    if json {
        say!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        say!(
            "readiness of run {} ({} {}): {:.1}% (minimum {})",
            stored.report.run_id,
            stored.report.service.name,
            stored.report.service.version,
            report.score * 100.0,
            report.minimum
        );
        for category in &report.categories {
            say!(
                "\n{} (weight {}): {:.1}%",
                category.name,
                category.weight,
                category.score * 100.0
            );
            for item in &category.items {
                let owner = item.owner.as_deref().unwrap_or("no one named");
                say!(
                    "  {:<8} {} — {} ({owner}, {})",
                    item.status,
                    item.name,
                    item.owner_role,
                    item.kind
                );
                say!("           {}", item.detail);
                if !item.evidence.is_empty() {
                    say!("           evidence: {}", item.evidence.join(", "));
                }
                if let Some(w) = &item.waiver {
                    say!(
                        "           waiver by {} until {}{}: {}",
                        w.by,
                        w.expires,
                        if w.expired { " (EXPIRED)" } else { "" },
                        w.reason
                    );
                }
            }
        }
        for check in &step.checks {
            say!(
                "\n{}: {} — {}",
                check.id,
                check.outcome.as_str(),
                check.reason
            );
        }
    }
    Ok(if failing { exit::NO_GO } else { exit::GO })
}

pub fn certificate_command(
    store: &Store,
    global: &Global,
    run: &str,
    trust: &TrustArgs,
) -> Result<i32, CliError> {
    let (md_path, html_path) = write_certificate(store, global, run, trust)?;
    say!("{}", md_path.display());
    say!("{}", html_path.display());
    Ok(exit::GO)
}

/// Renders RUN_DIR/certificate.md and certificate.html; returns their paths.
pub fn write_certificate(
    store: &Store,
    global: &Global,
    run: &str,
    trust: &TrustArgs,
) -> Result<(PathBuf, PathBuf), CliError> {
    let stored = load(store, run)?;
    let trust = crate::keys::optional_trust(global, trust)?;
    let markdown = certificate(&stored, trust.as_ref())?;
    let md_path = stored.run_dir.join("certificate.md");
    let html_path = stored.run_dir.join("certificate.html");
    gauntlet_report::write_atomic(&md_path, markdown.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", md_path.display()))?;
    let decision = markdown_decision(&markdown).unwrap_or(stored.report.decision);
    let title = format!(
        "Readiness certificate — {} {}",
        stored.report.service.name, stored.report.service.version
    );
    gauntlet_report::write_atomic(&html_path, html(decision, &title, &markdown).as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", html_path.display()))?;
    Ok((md_path, html_path))
}

fn certificate(stored: &Stored, trust: Option<&gauntlet_trust::Trust>) -> Result<String, CliError> {
    let report = &stored.report;
    // Sign-offs count only when they verify against the role's key in the spec, else the
    // keyring (or the given key).
    let signoffs = signoff::verify_all(
        &stored.run_dir,
        &report.run_id,
        stored.spec.as_ref().and_then(|s| s.signoffs.as_ref()),
        trust,
    );
    let valid: Vec<String> = signoffs
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(role, _)| role.clone())
        .collect();
    let (decision, conditions) = signoff::effective(report, &valid);
    let readiness = score(stored).ok();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Readiness certificate — {} {}\n",
        report.service.name, report.service.version
    );
    let _ = writeln!(
        md,
        "**Decision: {decision}**{}\n",
        if decision == report.decision {
            String::new()
        } else {
            format!(" (recorded at the end of the run: {})", report.decision)
        }
    );
    let _ = writeln!(md, "{}\n", report.summary);
    let _ = writeln!(
        md,
        "Run `{}` · {} → {} · gauntlet {} · spec `{}` (sha256 `{}`)\n",
        report.run_id,
        report.started_at,
        report.finished_at,
        report.gauntlet_version,
        report.spec.path,
        report.spec.sha256
    );
    let _ = writeln!(md, "## Conditions\n");
    if conditions.is_empty() {
        let _ = writeln!(md, "None.\n");
    } else {
        let _ = writeln!(md, "| condition | owner | deadline | reason |");
        let _ = writeln!(md, "|---|---|---|---|");
        for c in &conditions {
            let owner = match (&c.owner, &c.owner_role) {
                (Some(who), Some(role)) => format!("{who} ({role})"),
                (None, Some(role)) => role.clone(),
                _ => "—".into(),
            };
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} |",
                c.check,
                cell(&owner),
                c.deadline.as_deref().unwrap_or("—"),
                cell(&c.reason)
            );
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## Sign-offs\n");
    let required: Vec<String> = stored
        .spec
        .as_ref()
        .and_then(|s| s.signoffs.as_ref())
        .map(|s| s.required.clone())
        .unwrap_or_default();
    if signoffs.is_empty() && required.is_empty() {
        let _ = writeln!(md, "None required, none made.\n");
    } else {
        let _ = writeln!(md, "| role | by | when | key | status |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        for (role, result) in &signoffs {
            match result {
                Ok((s, key)) => {
                    let _ = writeln!(
                        md,
                        "| {role} | {} | {} | `{key}` | ✅ verified |",
                        cell(&s.by),
                        s.time
                    );
                }
                Err(e) => {
                    let _ = writeln!(md, "| {role} | — | — | — | ❌ refused: {} |", cell(e));
                }
            }
        }
        for role in required
            .iter()
            .filter(|r| !signoffs.iter().any(|(s, _)| s == *r))
        {
            let _ = writeln!(md, "| {role} | — | — | — | awaited |");
        }
        if trust.is_none() {
            let _ = writeln!(
                md,
                "\nNo keyring to verify sign-offs with: none is counted."
            );
        }
        md.push('\n');
    }
    match &readiness {
        Some((r, _)) => md.push_str(&gauntlet_report::readiness_markdown(r)),
        None => {
            let _ = writeln!(md, "## Readiness\n\nThe spec has no readiness checklist.\n");
        }
    }
    match &report.gates {
        Some(gates) => md.push_str(&gauntlet_report::gates_markdown(gates)),
        None => {
            let _ = writeln!(md, "## Gates\n\nThe spec has no gates.\n");
        }
    }
    let _ = writeln!(md, "## Steps\n");
    let _ = writeln!(md, "| step | outcome | checks passed |");
    let _ = writeln!(md, "|---|---|---|");
    for step in &report.steps {
        let passed = step.checks.iter().filter(|c| c.outcome.is_pass()).count();
        let _ = writeln!(
            md,
            "| {} | {} | {passed}/{} |",
            step.name,
            step.outcome.as_str(),
            step.checks.len()
        );
    }
    md.push('\n');
    let _ = writeln!(md, "## Evidence\n");
    let trust_info = report.trust.clone().unwrap_or_default();
    let _ = writeln!(
        md,
        "- Green fingerprint: {}",
        trust_info
            .green_fingerprint
            .as_deref()
            .map_or("none (no preflight)".to_string(), |f| format!("`{f}`"))
    );
    match &trust_info.attestation {
        Some(att) => {
            let digest = std::fs::read(stored.run_dir.join(att))
                .map(|b| gauntlet_report::sha256_hex(&b))
                .unwrap_or_else(|e| format!("unreadable: {e}"));
            let _ = writeln!(
                md,
                "- Attestation: `{att}`, sha256 `{digest}`, signed by key `{}` (`gauntlet attest verify {} --key KEY.pub`)",
                trust_info.signing_key.as_deref().unwrap_or("?"),
                stored.run_dir.join(att).display()
            );
        }
        None => {
            let _ = writeln!(md, "- Attestation: none");
        }
    }
    let report_digest = std::fs::read(stored.run_dir.join("report.json"))
        .map(|b| gauntlet_report::sha256_hex(&b))
        .unwrap_or_else(|e| format!("unreadable: {e}"));
    let _ = writeln!(md, "- Report: `report.json`, sha256 `{report_digest}`");
    let _ = writeln!(
        md,
        "\n_Issued {} from the stored run; nothing here was typed in by hand._",
        gauntlet_engine::now_rfc3339()
    );
    Ok(md)
}

/// The decision line the certificate opens with.
fn markdown_decision(markdown: &str) -> Option<Decision> {
    let line = markdown.lines().find(|l| l.starts_with("**Decision: "))?;
    [
        Decision::Go,
        Decision::Conditional,
        Decision::NoGo,
        Decision::Inconclusive,
        Decision::Aborted,
    ]
    .into_iter()
    .find(|d| line.starts_with(&format!("**Decision: {d}**")))
}

/// The same certificate as a standalone HTML page (raw HTML in cells is escaped).
fn html(decision: Decision, title: &str, markdown: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser, html};
    let parser = Parser::new_ext(markdown, Options::ENABLE_TABLES).map(|event| match event {
        // Text from the run (reasons, names) is never markup.
        Event::Html(text) | Event::InlineHtml(text) => Event::Text(text),
        other => other,
    });
    let mut body = String::new();
    html::push_html(&mut body, parser);
    let colour = match decision {
        Decision::Go => "#1a7f37",
        Decision::Conditional => "#9a6700",
        _ => "#cf222e",
    };
    let title = gauntlet_report::svg::escape(title);
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>body{{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem}}table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}}strong{{color:{colour}}}code{{background:#f6f8fa}}</style></head>\n<body>\n{body}</body></html>\n"
    )
}
