//! The readiness certificate a release manager files with a release: the decision as it
//! stands now (sign-offs given since the run count), its conditions, sign-offs, checklist,
//! gates, steps and the digests of the evidence, as Markdown and as a standalone HTML page.
//! Rendering only: the caller gathers and verifies what goes in.

use std::fmt::Write as _;

use crate::markdown::{cell, gates_markdown, readiness_markdown};
use crate::{Condition, Decision, ReadinessReport, Report};

/// One role's sign-off as the certificate shows it.
#[derive(Debug, Clone)]
pub enum SignoffRow {
    Verified {
        role: String,
        by: String,
        time: String,
        key: String,
    },
    Refused {
        role: String,
        why: String,
    },
    Awaited {
        role: String,
    },
}

/// A file's sha256, or why it could not be read.
pub type Digest = Result<String, String>;

/// Everything a certificate says, gathered from a stored run.
#[derive(Debug, Clone)]
pub struct Certificate<'a> {
    pub report: &'a Report,
    /// The decision now, and the conditions still open.
    pub decision: Decision,
    pub conditions: Vec<Condition>,
    pub signoffs: Vec<SignoffRow>,
    /// Whether there was a keyring to verify sign-offs with.
    pub verifier: bool,
    pub readiness: Option<ReadinessReport>,
    /// The attestation's full path (for the command that verifies it) and its digest.
    pub attestation: Option<(String, Digest)>,
    pub report_digest: Digest,
    pub issued_at: String,
}

impl Certificate<'_> {
    pub fn title(&self) -> String {
        format!(
            "Readiness certificate — {} {}",
            self.report.service.name, self.report.service.version
        )
    }

    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        self.header(&mut md);
        self.conditions(&mut md);
        self.signoffs(&mut md);
        match &self.readiness {
            Some(r) => md.push_str(&readiness_markdown(r)),
            None => md.push_str("## Readiness\n\nThe spec has no readiness checklist.\n\n"),
        }
        match &self.report.gates {
            Some(gates) => md.push_str(&gates_markdown(gates)),
            None => md.push_str("## Gates\n\nThe spec has no gates.\n\n"),
        }
        self.steps(&mut md);
        self.evidence(&mut md);
        md
    }

    /// The same certificate as a standalone HTML page (raw HTML in cells is escaped).
    pub fn to_html(&self) -> String {
        html(self.decision, &self.title(), &self.to_markdown())
    }

    fn header(&self, md: &mut String) {
        let report = self.report;
        let _ = writeln!(md, "# {}\n", self.title());
        let recorded = if self.decision == report.decision {
            String::new()
        } else {
            format!(" (recorded at the end of the run: {})", report.decision)
        };
        let _ = writeln!(md, "**Decision: {}**{recorded}\n", self.decision);
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
    }

    fn conditions(&self, md: &mut String) {
        let _ = writeln!(md, "## Conditions\n");
        if self.conditions.is_empty() {
            let _ = writeln!(md, "None.\n");
            return;
        }
        let _ = writeln!(md, "| condition | owner | deadline | reason |");
        let _ = writeln!(md, "|---|---|---|---|");
        for c in &self.conditions {
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

    fn signoffs(&self, md: &mut String) {
        let _ = writeln!(md, "## Sign-offs\n");
        if self.signoffs.is_empty() {
            let _ = writeln!(md, "None required, none made.\n");
            return;
        }
        let _ = writeln!(md, "| role | by | when | key | status |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        for row in &self.signoffs {
            let _ = match row {
                SignoffRow::Verified {
                    role,
                    by,
                    time,
                    key,
                } => writeln!(
                    md,
                    "| {role} | {} | {time} | `{key}` | ✅ verified |",
                    cell(by)
                ),
                SignoffRow::Refused { role, why } => {
                    writeln!(md, "| {role} | — | — | — | ❌ refused: {} |", cell(why))
                }
                SignoffRow::Awaited { role } => writeln!(md, "| {role} | — | — | — | awaited |"),
            };
        }
        if !self.verifier {
            let _ = writeln!(
                md,
                "\nNo keyring to verify sign-offs with: none is counted."
            );
        }
        md.push('\n');
    }

    fn steps(&self, md: &mut String) {
        let _ = writeln!(md, "## Steps\n");
        let _ = writeln!(md, "| step | outcome | checks passed |");
        let _ = writeln!(md, "|---|---|---|");
        for step in &self.report.steps {
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
    }

    fn evidence(&self, md: &mut String) {
        let digest = |d: &Digest| d.clone().unwrap_or_else(|e| format!("unreadable: {e}"));
        let _ = writeln!(md, "## Evidence\n");
        let trust = self.report.trust.clone().unwrap_or_default();
        let _ = writeln!(
            md,
            "- Green fingerprint: {}",
            trust
                .green_fingerprint
                .as_deref()
                .map_or("none (no preflight)".to_string(), |f| format!("`{f}`"))
        );
        match &self.attestation {
            Some((path, sha)) => {
                let _ = writeln!(
                    md,
                    "- Attestation: `{}`, sha256 `{}`, signed by key `{}` (`gauntlet attest verify {path} --key KEY.pub`)",
                    trust.attestation.as_deref().unwrap_or(path),
                    digest(sha),
                    trust.signing_key.as_deref().unwrap_or("?"),
                );
            }
            None => {
                let _ = writeln!(md, "- Attestation: none");
            }
        }
        let _ = writeln!(
            md,
            "- Report: `report.json`, sha256 `{}`",
            digest(&self.report_digest)
        );
        let _ = writeln!(
            md,
            "\n_Issued {} from the stored run; nothing here was typed in by hand._",
            self.issued_at
        );
    }
}

/// Markdown as a standalone HTML page whose decision is coloured; raw HTML in the Markdown
/// (text from the run: reasons, names) is shown as text, never as markup.
fn html(decision: Decision, title: &str, markdown: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser, html};
    let parser = Parser::new_ext(markdown, Options::ENABLE_TABLES).map(|event| match event {
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
    let title = crate::svg::escape(title);
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>body{{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem}}table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}}strong{{color:{colour}}}code{{background:#f6f8fa}}</style></head>\n<body>\n{body}</body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        serde_json::from_value(serde_json::json!({
            "schema": crate::REPORT_SCHEMA, "run_id": "r1", "gauntlet_version": "0",
            "service": {"name": "shop", "version": "2"},
            "spec": {"path": "g.yaml", "sha256": "ab"},
            "started_at": "t0", "finished_at": "t1", "duration_ms": 1, "gating": "hard",
            "decision": "CONDITIONAL", "exit_code": 0,
            "summary": "CONDITIONAL: <script>alert(1)</script>",
            "conditions": [], "steps": [], "timeline": [], "evidence": []
        }))
        .unwrap()
    }

    #[test]
    fn a_certificate_says_the_decision_now_and_what_it_was() {
        let report = report();
        let certificate = Certificate {
            report: &report,
            decision: Decision::Go,
            conditions: Vec::new(),
            signoffs: vec![
                SignoffRow::Verified {
                    role: "security".into(),
                    by: "ana".into(),
                    time: "t2".into(),
                    key: "k1".into(),
                },
                SignoffRow::Awaited { role: "sre".into() },
            ],
            verifier: true,
            readiness: None,
            attestation: None,
            report_digest: Err("gone".into()),
            issued_at: "t3".into(),
        };
        let md = certificate.to_markdown();
        assert!(md.contains("**Decision: GO** (recorded at the end of the run: CONDITIONAL)"));
        assert!(md.contains("| security | ana | t2 | `k1` | ✅ verified |"));
        assert!(md.contains("| sre | — | — | — | awaited |"));
        assert!(md.contains("sha256 `unreadable: gone`"), "{md}");
        let html = certificate.to_html();
        assert!(
            !html.contains("<script>"),
            "text from the run is never markup"
        );
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("strong{color:#1a7f37}"));
    }
}
