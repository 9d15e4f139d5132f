//! Step 7, observability: scrape the candidate's metrics, send traffic, scrape again, and
//! check each required family exists, carries its labels, and moved. An endpoint that
//! cannot be reached makes the checks inconclusive; a family that is missing fails.

use std::time::Duration;

use gauntlet_metrics::{MetricFamily, MetricKind, parse_text};
use gauntlet_net::{Outgoing, WeightedRequest, send_paced};
use gauntlet_report::{Check, Outcome, Severity};
use gauntlet_spec::{ObservabilityPlan, RequiredMetric, StepMeta};

mod dashboards;
mod rules;

use dashboards::dashboard_checks;
use rules::{alert_rule_checks, slo_rule_checks};

use super::{Step, StepFuture, severity};
use crate::context::RunContext;

const STEP: &str = gauntlet_spec::StepName::Observability.as_str();

pub struct Observability(pub(crate) ObservabilityPlan);

impl Step for Observability {
    fn step(&self) -> gauntlet_spec::StepName {
        gauntlet_spec::StepName::Observability
    }
    fn meta(&self) -> &StepMeta {
        &self.0.meta
    }
    fn run<'a>(&'a self, ctx: &'a RunContext) -> StepFuture<'a> {
        Box::pin(async move { run(ctx, &self.0).await.into() })
    }
}

enum Scrape {
    Parsed(Vec<MetricFamily>),
    /// The endpoint answered, but not in the text format: a defect of the service.
    Invalid(String),
    /// The endpoint could not be read: nothing can be concluded.
    Unreachable(String),
}

async fn scrape(ctx: &RunContext, path: &str, label: &str) -> (Scrape, Option<String>) {
    let result = ctx.client.send(&Outgoing::get(&ctx.candidate, path)).await;
    let response = match result {
        Ok(r) if r.is_success() => r,
        Ok(r) => {
            return (
                Scrape::Unreachable(format!("{path} answered {}", r.status)),
                None,
            );
        }
        Err(e) => return (Scrape::Unreachable(format!("{path}: {e}")), None),
    };
    let evidence = ctx
        .recorder
        .evidence(STEP, &format!("scrape-{label}.txt"), &response.body)
        .ok();
    let text = response.body_text();
    let scrape = match parse_text(&text) {
        Ok(families) => Scrape::Parsed(families),
        Err(e) => Scrape::Invalid(format!("{path} is not valid Prometheus text format: {e}")),
    };
    (scrape, evidence)
}

/// The family's total: the sum of counters and gauges, the `_count` series of histograms
/// and summaries. It moves when the family records anything new.
fn total(family: &MetricFamily) -> f64 {
    family
        .samples
        .iter()
        .filter(|s| match family.kind {
            MetricKind::Histogram | MetricKind::Summary => s.name.ends_with("_count"),
            _ => !s.name.ends_with("_created"),
        })
        .map(|s| s.value)
        .filter(|v| v.is_finite())
        .sum()
}

async fn run(ctx: &RunContext, config: &ObservabilityPlan) -> Vec<Check> {
    let severity = severity(&config.meta);
    let recorder = &ctx.recorder;
    let (before, before_file) = scrape(ctx, &config.metrics_path, "before").await;
    let requests = u64::from(config.requests);
    let rate = ctx.plan.traffic.rate.per_second();
    let mix: Vec<WeightedRequest> =
        crate::steps::canary::mix_for(&ctx.plan.traffic.requests, &ctx.candidate);
    let budget = Duration::from_secs_f64(requests as f64 / rate * 2.0 + 5.0);
    recorder.event(
        Some(STEP),
        "traffic",
        format!("sending {requests} requests at {rate}/s"),
    );
    let traffic = send_paced(
        &ctx.client,
        &mix,
        requests,
        rate,
        budget,
        ctx.plan
            .seed
            .of(gauntlet_spec::StepName::Observability)
            .derive("traffic", 0),
        &|sent| recorder.progress(STEP, "requests", sent, requests),
    )
    .await;
    let statuses = traffic
        .statuses
        .iter()
        .map(|(s, n)| format!("{n}×{s}"))
        .collect::<Vec<_>>()
        .join(", ");
    recorder.event(
        Some(STEP),
        "traffic",
        format!(
            "{} of {} requests answered ({statuses}) in {:.2}s",
            traffic.answered(),
            traffic.sent,
            traffic.elapsed.as_secs_f64()
        ),
    );
    let _ = recorder.evidence(
        STEP,
        "traffic.json",
        &serde_json::to_vec_pretty(&serde_json::json!({
            "sent": traffic.sent, "statuses": traffic.statuses, "errors": traffic.errors,
            "elapsed_ms": traffic.elapsed.as_millis() as u64, "seed": ctx.plan.seed.0,
        }))
        .unwrap_or_default(),
    );
    let (after, after_file) = scrape(ctx, &config.metrics_path, "after").await;
    let evidence: Vec<String> = before_file.into_iter().chain(after_file).collect();
    let mut checks: Vec<Check> = config
        .required
        .iter()
        .flat_map(|required| {
            judge(
                required,
                &before,
                &after,
                traffic.answered(),
                requests,
                severity,
            )
            .into_iter()
            .map(|mut c| {
                c.evidence = evidence.clone();
                c
            })
            .collect::<Vec<_>>()
        })
        .collect();
    if let Some(alerts) = &config.alerts {
        checks.extend(alert_rule_checks(ctx, alerts, severity).await);
    }
    checks.extend(slo_rule_checks(ctx, severity).await);
    for dashboard in &config.dashboards {
        checks.extend(dashboard_checks(ctx, dashboard, severity));
    }
    checks
}

/// The checks for one required family: exists, labels, moves.
fn judge(
    required: &RequiredMetric,
    before: &Scrape,
    after: &Scrape,
    answered: u64,
    sent: u64,
    severity: Severity,
) -> Vec<Check> {
    let name = &required.name;
    let exists =
        Check::new(STEP, &format!("{name} exists"), severity).threshold("exposed by the candidate");
    let labels = Check::new(STEP, &format!("{name} labels"), severity).threshold(format!(
        "every series carries [{}]",
        required.labels.join(", ")
    ));
    let moves = Check::new(STEP, &format!("{name} moves"), severity)
        .threshold(format!("changes across {sent} requests"));
    let families = match after {
        Scrape::Parsed(f) => f,
        Scrape::Unreachable(why) => {
            let why = format!("metrics endpoint unreachable: {why}");
            return vec![
                exists.outcome(Outcome::Inconclusive, why.clone()),
                labels.outcome(Outcome::Inconclusive, why.clone()),
                moves.outcome(Outcome::Inconclusive, why),
            ];
        }
        Scrape::Invalid(why) => {
            return vec![
                exists.outcome(Outcome::Fail, why.clone()),
                labels.outcome(Outcome::Skipped, "the exposition could not be parsed"),
                moves.outcome(Outcome::Skipped, "the exposition could not be parsed"),
            ];
        }
    };
    let Some(family) = families.iter().find(|f| &f.name == name) else {
        let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
        let hint = gauntlet_spec::did_you_mean(name, names.iter().copied())
            .map(|n| format!("; did you mean `{n}`?"))
            .unwrap_or_default();
        return vec![
            exists
                .measured(format!("{} families exposed", families.len()))
                .outcome(Outcome::Fail, format!("`{name}` is not exposed{hint}")),
            labels.outcome(Outcome::Skipped, format!("`{name}` is not exposed")),
            moves.outcome(Outcome::Skipped, format!("`{name}` is not exposed")),
        ];
    };
    let series = family.samples.len() as u64;
    let exists = exists
        .measured(format!("{series} series"))
        .samples(series)
        .outcome(
            if series > 0 {
                Outcome::Pass
            } else {
                Outcome::Fail
            },
            if series > 0 {
                format!("`{name}` exposed with {series} series")
            } else {
                format!("`{name}` is declared but has no series")
            },
        );
    let labels = labels_check(required, family, labels);
    let moves = moves_check(required, family, before, answered, sent, moves);
    vec![exists, labels, moves]
}

/// Every series of the family carries the required labels.
fn labels_check(required: &RequiredMetric, family: &MetricFamily, check: Check) -> Check {
    let series = family.samples.len() as u64;
    let missing: Vec<String> = family
        .samples
        .iter()
        .flat_map(|s| {
            required
                .labels
                .iter()
                .filter(|l| s.label(l).is_none())
                .map(move |l| format!("{}: {l}", s.name))
        })
        .collect();
    if series == 0 {
        return check.outcome(Outcome::Skipped, "no series to inspect");
    }
    let check = check.samples(series);
    match missing.first() {
        None => check.measured(format!("{series} series checked")).outcome(
            Outcome::Pass,
            format!("all {series} series carry [{}]", required.labels.join(", ")),
        ),
        Some(first) => check
            .measured(format!("{} series lack a label", missing.len()))
            .outcome(Outcome::Fail, format!("missing labels, e.g. {first}")),
    }
}

/// The family's total changed between the scrape before the requests and the one after.
fn moves_check(
    required: &RequiredMetric,
    family: &MetricFamily,
    before: &Scrape,
    answered: u64,
    sent: u64,
    check: Check,
) -> Check {
    if !required.moves {
        return check.outcome(Outcome::Skipped, "not required to move");
    }
    if answered == 0 {
        return check.outcome(
            Outcome::Inconclusive,
            format!(
                "none of {sent} requests reached the candidate, so no movement could be expected"
            ),
        );
    }
    let now = total(family);
    let earlier = match before {
        Scrape::Parsed(f) => f
            .iter()
            .find(|f| f.name == required.name)
            .map(total)
            .unwrap_or(0.0),
        _ => {
            return check.outcome(
                Outcome::Inconclusive,
                "the first scrape failed, so there is nothing to compare",
            );
        }
    };
    let check = check
        .samples(answered)
        .measured(format!("{earlier} → {now}"));
    if now != earlier {
        let why = format!("moved from {earlier} to {now} across {answered} answered requests");
        check.outcome(Outcome::Pass, why)
    } else {
        let why = format!("stayed at {now} across {answered} answered requests");
        check.outcome(Outcome::Fail, why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn required(name: &str, labels: &[&str]) -> RequiredMetric {
        RequiredMetric {
            name: name.into(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            moves: true,
        }
    }

    fn parsed(text: &str) -> Scrape {
        Scrape::Parsed(parse_text(text).unwrap())
    }

    fn outcomes(checks: &[Check]) -> Vec<Outcome> {
        checks.iter().map(|c| c.outcome).collect()
    }

    const BEFORE: &str = "# TYPE req counter\nreq_total{route=\"/a\"} 1\n";
    const AFTER: &str = "# TYPE req counter\nreq_total{route=\"/a\"} 5\n";

    #[test]
    fn a_family_that_exists_is_labelled_and_moves_passes() {
        let checks = judge(
            &required("req", &["route"]),
            &parsed(BEFORE),
            &parsed(AFTER),
            4,
            4,
            Severity::Hard,
        );
        assert_eq!(outcomes(&checks), vec![Outcome::Pass; 3]);
    }

    #[test]
    fn a_missing_family_fails_with_a_suggestion() {
        let checks = judge(
            &required("rq", &[]),
            &parsed(BEFORE),
            &parsed(AFTER),
            4,
            4,
            Severity::Hard,
        );
        assert_eq!(checks[0].outcome, Outcome::Fail);
        assert!(
            checks[0].reason.contains("did you mean `req`"),
            "{}",
            checks[0].reason
        );
    }

    #[test]
    fn a_missing_label_and_a_still_counter_fail() {
        let checks = judge(
            &required("req", &["route", "status"]),
            &parsed(AFTER),
            &parsed(AFTER),
            4,
            4,
            Severity::Hard,
        );
        assert_eq!(
            outcomes(&checks),
            vec![Outcome::Pass, Outcome::Fail, Outcome::Fail]
        );
    }

    #[test]
    fn an_unreachable_endpoint_or_no_traffic_is_inconclusive() {
        let down = Scrape::Unreachable("connection refused".into());
        let checks = judge(&required("req", &[]), &down, &down, 4, 4, Severity::Hard);
        assert_eq!(outcomes(&checks), vec![Outcome::Inconclusive; 3]);
        let checks = judge(
            &required("req", &[]),
            &parsed(BEFORE),
            &parsed(BEFORE),
            0,
            4,
            Severity::Hard,
        );
        assert_eq!(checks[2].outcome, Outcome::Inconclusive);
    }

    #[test]
    fn histograms_move_by_their_count() {
        let before = "# TYPE lat histogram\nlat_bucket{le=\"+Inf\"} 2\nlat_sum 0.5\nlat_count 2\n";
        let after = "# TYPE lat histogram\nlat_bucket{le=\"+Inf\"} 3\nlat_sum 0.7\nlat_count 3\n";
        let checks = judge(
            &required("lat", &[]),
            &parsed(before),
            &parsed(after),
            1,
            1,
            Severity::Hard,
        );
        assert_eq!(checks[2].outcome, Outcome::Pass);
        assert_eq!(checks[2].measured.as_deref(), Some("2 → 3"));
    }
}
