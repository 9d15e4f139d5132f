//! The service's alert rules: the file parses (gauntlet's reader, and promtool when it is
//! installed), defines every required alert, and is loaded by the run's Prometheus.

use std::time::Duration;

use gauntlet_report::{Check, Outcome, Severity};
use gauntlet_spec::AlertRulesSpec;

use super::STEP;
use crate::context::RunContext;

/// The rule file: readable, accepted by gauntlet's strict reader and by `promtool check
/// rules` when it is installed, defining every required alert, and (when the run's
/// Prometheus loaded it) evaluated by Prometheus without error.
pub(super) async fn alert_rule_checks(
    ctx: &RunContext,
    alerts: &AlertRulesSpec,
    severity: Severity,
) -> Vec<Check> {
    let shown = alerts.rules.as_str();
    let valid = Check::new(STEP, "alert rules valid", severity)
        .threshold("accepted by gauntlet's reader and by `promtool check rules` when installed");
    let defined = Check::new(STEP, "alert rules define the required alerts", severity)
        .threshold(format!("defines {}", alerts.required.join(", ")));
    let resolved = crate::prom::spec_file(&ctx.spec_path, shown).map_err(|e| e.to_string());
    let read = resolved.and_then(|path| {
        std::fs::read_to_string(&path)
            .map(|text| (path.clone(), text))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    });
    let (path, text) = match read {
        Ok(read) => read,
        Err(why) => {
            return vec![
                valid.outcome(Outcome::Fail, why.clone()),
                defined.outcome(Outcome::Fail, why),
            ];
        }
    };
    let evidence = ctx
        .recorder
        .evidence(STEP, "alert-rules.yml", text.as_bytes())
        .ok();
    let rules = match gauntlet_metrics::rules::parse_rules(&text) {
        Ok(rules) => rules,
        Err(e) => {
            let why = if e.line > 0 {
                format!("{shown}:{}:{}: {}", e.line, e.column, e.message)
            } else {
                format!("{shown}: {}", e.message)
            };
            return vec![
                valid.outcome(Outcome::Fail, why.clone()),
                defined.outcome(Outcome::Fail, format!("the file is refused: {why}")),
            ];
        }
    };
    let summary = format!(
        "{} group(s), {} alert(s), {} recording rule(s)",
        rules.groups.len(),
        rules.alerts.len(),
        rules.records.len()
    );
    let mut valid = match promtool(&path, &ctx.child_env).await {
        Some(Ok(said)) => valid
            .measured(format!("{summary}; promtool: {said}"))
            .outcome(Outcome::Pass, "gauntlet's reader and promtool accept the file"),
        Some(Err(said)) => valid
            .measured(summary)
            .outcome(Outcome::Fail, format!("promtool check rules refused {shown}: {said}")),
        None => valid.measured(summary).outcome(
            Outcome::Pass,
            "gauntlet's reader accepts the file (promtool is not installed: `apt-get install prometheus` adds the PromQL check)",
        ),
    };
    valid.evidence = evidence.iter().cloned().collect();
    let defined = defines_required(defined, shown, &alerts.required, &rules);
    let mut checks = vec![valid, defined];
    let started = ctx.plan.prometheus.as_ref().is_some_and(|p| p.start);
    if let (Some(url), true) = (&ctx.prometheus, started) {
        let check = Check::new(STEP, "alert rules loaded by Prometheus", severity);
        checks.push(loaded(ctx, url, &alerts.required, check).await);
    }
    checks
}

/// The burn-rate rules made from the spec's OpenSLO files: made (every SLO mapped),
/// accepted by promtool when installed, and loaded by the run's Prometheus when it started.
pub(super) async fn slo_rule_checks(ctx: &RunContext, severity: Severity) -> Vec<Check> {
    let check = Check::new(STEP, "SLO burn-rate rules", severity).threshold(
        "every OpenSLO SLO becomes 14.4x/1h+5m, 6x/6h+30m and 1x/3d+6h alerts that promtool accepts",
    );
    let run_dir = ctx.recorder.run_dir();
    let (path, slos) = match crate::prom::slo_rules(&ctx.plan, &ctx.spec_path, run_dir) {
        Ok(Some(made)) => made,
        Ok(None) => return Vec::new(),
        Err(why) => return vec![check.outcome(Outcome::Fail, why)],
    };
    let names: Vec<String> = slos
        .iter()
        .flat_map(gauntlet_metrics::openslo::alert_names)
        .collect();
    let summary = format!("{} SLO(s), {} alert(s)", slos.len(), names.len());
    let mut made = match promtool(&path, &ctx.child_env).await {
        Some(Ok(said)) => check
            .measured(format!("{summary}; promtool: {said}"))
            .outcome(
                Outcome::Pass,
                format!("written to {}", crate::prom::SLO_RULES),
            ),
        Some(Err(said)) => check.measured(summary).outcome(
            Outcome::Fail,
            format!("promtool check rules refused them: {said}"),
        ),
        None => check.measured(summary).outcome(
            Outcome::Pass,
            "gauntlet's reader accepts them (promtool is not installed to check them too)",
        ),
    };
    made.evidence = vec![crate::prom::SLO_RULES.to_string()];
    let mut checks = vec![made];
    let started = ctx.plan.prometheus.as_ref().is_some_and(|p| p.start);
    if let (Some(url), true) = (&ctx.prometheus, started) {
        let check = Check::new(STEP, "SLO burn-rate rules loaded by Prometheus", severity);
        checks.push(loaded(ctx, url, &names, check).await);
    }
    checks
}

/// Whether the rules define every alert the spec requires.
fn defines_required(
    check: Check,
    shown: &str,
    required: &[String],
    rules: &gauntlet_metrics::rules::Rules,
) -> Check {
    let missing: Vec<&str> = required
        .iter()
        .filter(|name| rules.alert(name).is_none())
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        let n = required.len();
        return check
            .measured(format!("{n} of {n} defined"))
            .outcome(Outcome::Pass, "every required alert has a rule");
    }
    let known: Vec<&str> = rules.alerts.iter().map(|a| a.name.as_str()).collect();
    let known = if known.is_empty() {
        "no alerts".to_string()
    } else {
        known.join(", ")
    };
    check
        .measured(format!("missing: {}", missing.join(", ")))
        .outcome(
            Outcome::Fail,
            format!(
                "{shown} does not define {} (it defines: {known})",
                missing.join(", ")
            ),
        )
}

/// `promtool check rules FILE`: `Some(Ok(what it said))`, `Some(Err(why))`, or `None` when
/// promtool is not installed.
async fn promtool(
    path: &std::path::Path,
    env: &crate::child_env::ChildEnv,
) -> Option<Result<String, String>> {
    if !crate::prom::which("promtool") {
        return None;
    }
    let run = env
        .command("promtool")
        .args(["check", "rules"])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(Duration::from_secs(30), run).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Some(Err(format!("cannot run promtool: {e}"))),
        Err(_) => return Some(Err("promtool did not finish within 30s".into())),
    };
    let said: String = String::from_utf8_lossy(&output.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&output.stderr).lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    Some(if output.status.success() {
        Ok(said)
    } else {
        Err(said)
    })
}

/// The run's Prometheus loaded the required alerts and none of them fails to evaluate.
async fn loaded(ctx: &RunContext, url: &str, required: &[String], check: Check) -> Check {
    let check = check.threshold("every required alert is loaded and evaluates without error");
    let Some(section) = ctx.plan.prometheus.as_ref() else {
        return check.outcome(Outcome::Inconclusive, "no Prometheus");
    };
    let groups = match crate::prom::client(url, section).rules().await {
        Ok(groups) => groups,
        Err(e) => return check.outcome(Outcome::Inconclusive, format!("{url}: {e}")),
    };
    let rules: Vec<_> = groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| r.kind == "alerting")
        .collect();
    let missing: Vec<&str> = required
        .iter()
        .filter(|name| !rules.iter().any(|r| &r.name == *name))
        .map(String::as_str)
        .collect();
    let broken: Vec<String> = rules
        .iter()
        .filter(|r| r.health == "err")
        .map(|r| format!("{}: {}", r.name, r.last_error))
        .collect();
    let check = check.measured(format!("{} alerting rule(s) loaded", rules.len()));
    if !missing.is_empty() {
        check.outcome(
            Outcome::Fail,
            format!("Prometheus has not loaded {}", missing.join(", ")),
        )
    } else if !broken.is_empty() {
        check.outcome(
            Outcome::Fail,
            format!("rules fail to evaluate: {}", broken.join("; ")),
        )
    } else {
        check.outcome(
            Outcome::Pass,
            "every required alert is loaded and evaluates",
        )
    }
}
