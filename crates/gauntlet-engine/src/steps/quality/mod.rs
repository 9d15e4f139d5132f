//! The quality step: the golden set, item by item in a seeded order, asked of baseline and
//! candidate alike; each answer scored by the spec's assertions; the pairs fed to the
//! paired sequential judge, which stops as soon as it can decide (every item is a model
//! call someone pays for). Undecided when the set or the budget runs out: inconclusive.

mod ablation;
mod score;

use std::collections::BTreeMap;
use std::time::Instant;

use gauntlet_report::{Check, Outcome};
use gauntlet_spec::{QualityPlan, StepMeta, StepName};
use gauntlet_stats::{Paired, Verdict};

use super::{Step, StepFuture, StepOutput, severity};
use crate::answers::request_for;
use crate::context::RunContext;
use score::{Item, Scored, Scorer, ask, read_items};

const STEP: &str = StepName::Quality.as_str();

pub struct Quality(pub(crate) QualityPlan);

impl Step for Quality {
    fn step(&self) -> StepName {
        StepName::Quality
    }
    fn meta(&self) -> &StepMeta {
        &self.0.meta
    }
    fn run<'a>(&'a self, ctx: &'a RunContext) -> StepFuture<'a> {
        Box::pin(async move { gate(ctx, &self.0).await })
    }
}

/// One item's pair of answers.
struct Pair {
    index: usize,
    baseline: Scored,
    candidate: Scored,
}

/// Pass counts of one tag: items, baseline passes, candidate passes.
type Tally = (u64, u64, u64);

async fn gate(ctx: &RunContext, plan: &QualityPlan) -> StepOutput {
    let check = Check::new(
        STEP,
        "golden set against the baseline",
        severity(&plan.meta),
    )
    .threshold(format!(
        "not worse by {:.0} points (alpha {:.0}%, beta {:.0}%)",
        plan.delta * 100.0,
        plan.alpha * 100.0,
        plan.beta * 100.0
    ));
    let (items, baseline) = match prepare(ctx, plan) {
        Ok(ready) => ready,
        Err(why) => return vec![check.outcome(Outcome::Inconclusive, why)].into(),
    };
    let scorer = match Scorer::new(plan) {
        Ok(scorer) => scorer,
        Err(why) => return vec![check.outcome(Outcome::Inconclusive, why)].into(),
    };
    // The plan checked these; a judge that refuses them still answers, inconclusive.
    let paired = match Paired::new(plan.delta, plan.alpha, plan.beta) {
        Ok(paired) => paired,
        Err(why) => return vec![check.outcome(Outcome::Inconclusive, why.to_string())].into(),
    };
    let order = shuffled(items.len(), plan.seed);
    ctx.recorder.event(
        Some(STEP),
        "golden-set",
        format!(
            "{} items, asked of both arms in a seeded order until the judge decides",
            items.len()
        ),
    );
    let (judge, pairs) = judge(ctx, plan, (&items, &order), (&baseline, &scorer), paired).await;
    let mut out = conclude(ctx, plan, check, &items, &judge, &pairs);
    if let Some(ablation) = &plan.ablation {
        let first: Vec<&Item> = order
            .iter()
            .take(ablation.items as usize)
            .map(|&i| &items[i])
            .collect();
        let (check, drop) = ablation::ablate(ctx, plan, ablation, &scorer, first).await;
        if let Some(drop) = drop {
            out.measure("quality.ablation.drop", drop);
        }
        out.checks.push(check);
    }
    out
}

/// The golden set as a detector (the rollback rehearsal's `quality: true`): asked of both
/// arms in the gate's order until the paired judge decides or the set or budget runs out.
/// Returns its verdict, what it said (with the first item the candidate lost), and how many
/// items it asked; `Err` when it cannot be asked at all.
pub(crate) async fn detect(
    ctx: &RunContext,
    plan: &QualityPlan,
) -> Result<(Verdict, String, usize), String> {
    let (items, baseline) = prepare(ctx, plan)?;
    let scorer = Scorer::new(plan)?;
    let paired = Paired::new(plan.delta, plan.alpha, plan.beta).map_err(|e| e.to_string())?;
    let order = shuffled(items.len(), plan.seed);
    let (judge, pairs) = judge(ctx, plan, (&items, &order), (&baseline, &scorer), paired).await;
    let mut said = format!("golden set: {}", judge.explain());
    if let Some(first) = pairs.iter().find(|p| p.baseline.pass && !p.candidate.pass) {
        let why = first.candidate.why.as_deref().unwrap_or("failed");
        said.push_str(&format!(
            "; e.g. `{}`: the candidate's answer {why}",
            items[first.index].input
        ));
    }
    Ok((judge.verdict(), said, pairs.len()))
}

/// The golden set and the baseline's URL, or why the gate cannot run.
fn prepare(ctx: &RunContext, plan: &QualityPlan) -> Result<(Vec<Item>, String), String> {
    let baseline = ctx
        .baseline
        .clone()
        .ok_or("the quality gate needs a baseline, and none is running")?;
    let path = crate::prom::spec_file(&ctx.spec_path, &plan.dataset)
        .map_err(|e| format!("golden set {}: {e}", plan.dataset))?;
    let items = read_items(&path, &plan.dataset)?;
    if items.is_empty() {
        return Err(format!("{} has no items", plan.dataset));
    }
    Ok((items, baseline))
}

/// Indices 0..n in a seeded random order (Fisher–Yates).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = gauntlet_net::SplitMix64::new(seed);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// Asks the items in waves of `concurrency`, feeding the judge in the items' order, until it
/// decides, the set runs out or the budget does.
async fn judge(
    ctx: &RunContext,
    plan: &QualityPlan,
    (items, order): (&[Item], &[usize]),
    (baseline, scorer): (&str, &Scorer),
    mut judge: Paired,
) -> (Paired, Vec<Pair>) {
    let mut pairs = Vec::new();
    let started = Instant::now();
    for wave in order.chunks(plan.concurrency.max(1) as usize) {
        if judge.verdict() != Verdict::Continue || started.elapsed() >= plan.budget {
            break;
        }
        let asked =
            wave.iter().map(|&index| async move {
                let item = &items[index];
                let ask_arm = |base: &str| {
                    let out = request_for(&plan.request, base, &item.input);
                    async move {
                        ask(&ctx.client, &out, plan.repeat, scorer, item, &ctx.child_env).await
                    }
                };
                let (b, c) = tokio::join!(ask_arm(baseline), ask_arm(&ctx.candidate));
                Pair {
                    index,
                    baseline: b,
                    candidate: c,
                }
            });
        for pair in futures_util::future::join_all(asked).await {
            if judge.verdict() == Verdict::Continue {
                judge.record(pair.baseline.pass, pair.candidate.pass);
                pairs.push(pair);
            }
        }
    }
    (judge, pairs)
}

/// The check, the per-tag results, the measurements and the evidence.
fn conclude(
    ctx: &RunContext,
    plan: &QualityPlan,
    check: Check,
    items: &[Item],
    judge: &Paired,
    pairs: &[Pair],
) -> StepOutput {
    let tags = by_tag(items, pairs);
    let asked = pairs.len() as u64;
    let rate = |passes: u64| passes as f64 / asked.max(1) as f64;
    let [both, base_only, cand_only, _] = judge.counts();
    let (base_rate, cand_rate) = (rate(both + base_only), rate(both + cand_only));
    let mut out = StepOutput::default();
    out.measure("quality.baseline.pass_rate", base_rate);
    out.measure("quality.candidate.pass_rate", cand_rate);
    out.measure("quality.items", asked as f64);
    usage(&mut out, pairs);
    for (tag, (n, b, c)) in &tags {
        out.measure(
            format!("quality.tag.{tag}.baseline.pass_rate"),
            *b as f64 / *n as f64,
        );
        out.measure(
            format!("quality.tag.{tag}.candidate.pass_rate"),
            *c as f64 / *n as f64,
        );
    }
    let per_tag: Vec<String> = tags
        .iter()
        .map(|(tag, (n, b, c))| format!("{tag} {c}/{n} (baseline {b}/{n})"))
        .collect();
    let outcome = match judge.verdict() {
        Verdict::Accept => Outcome::Pass,
        Verdict::Reject => Outcome::Fail,
        Verdict::Continue => Outcome::Inconclusive,
    };
    let mut reason = judge.explain();
    if outcome == Outcome::Inconclusive {
        reason = format!("{}; {reason}", undecided(plan, items.len(), asked));
    }
    if let Some(first) = pairs.iter().find(|p| p.baseline.pass && !p.candidate.pass) {
        let why = first.candidate.why.as_deref().unwrap_or("failed");
        reason.push_str(&format!(
            "; e.g. `{}`: the candidate's answer {why}",
            items[first.index].input
        ));
    }
    reason.push_str(&format!("; by tag: {}", per_tag.join(", ")));
    let mut check = check
        .measured(format!(
            "candidate {:.1}% vs baseline {:.1}% passed",
            cand_rate * 100.0,
            base_rate * 100.0
        ))
        .samples(asked)
        .outcome(outcome, reason);
    if let Ok(path) = ctx
        .recorder
        .evidence(STEP, "items.jsonl", &evidence(items, pairs))
    {
        check.evidence.push(path);
    }
    out.checks.push(check);
    out
}

/// Tokens and cost per request of each arm, as measurements: p50, p95 and mean (each only
/// when every answer asked said it: a partial count would flatter the arm that hid some).
fn usage(out: &mut StepOutput, pairs: &[Pair]) {
    for arm in ["baseline", "candidate"] {
        let of = |p: &Pair| {
            if arm == "baseline" {
                (p.baseline.tokens, p.baseline.cost)
            } else {
                (p.candidate.tokens, p.candidate.cost)
            }
        };
        let tokens: Option<Vec<f64>> = pairs.iter().map(|p| of(p).0.map(|t| t as f64)).collect();
        let costs: Option<Vec<f64>> = pairs.iter().map(|p| of(p).1).collect();
        for (what, values) in [("tokens", tokens), ("cost", costs)] {
            let Some(mut values) = values.filter(|v| !v.is_empty()) else {
                continue;
            };
            values.sort_by(f64::total_cmp);
            let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
            out.measure(format!("quality.{arm}.{what}_p50"), at(0.5));
            out.measure(format!("quality.{arm}.{what}_p95"), at(0.95));
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            out.measure(format!("quality.{arm}.{what}_mean"), mean);
        }
    }
}

/// Why the judge could not decide.
fn undecided(plan: &QualityPlan, items: usize, asked: u64) -> String {
    let fewest = gauntlet_stats::fewest_to_accept(plan.delta, plan.beta).unwrap_or(0);
    if (items as u64) < fewest {
        format!(
            "too few items: the golden set has {items}, and even full agreement needs {fewest} to show the candidate is not worse by {:.0} points",
            plan.delta * 100.0
        )
    } else if asked < items as u64 {
        format!(
            "the budget ({:?}) ran out after {asked} of {items} items",
            plan.budget
        )
    } else {
        format!("all {items} items asked and the judge could not decide")
    }
}

fn by_tag(items: &[Item], pairs: &[Pair]) -> BTreeMap<String, Tally> {
    let mut tags: BTreeMap<String, Tally> = BTreeMap::new();
    for pair in pairs {
        for tag in &items[pair.index].tags {
            let t = tags.entry(tag.clone()).or_default();
            t.0 += 1;
            t.1 += u64::from(pair.baseline.pass);
            t.2 += u64::from(pair.candidate.pass);
        }
    }
    tags
}

/// One JSON line per item asked: the item, each arm's answer and verdict.
fn evidence(items: &[Item], pairs: &[Pair]) -> Vec<u8> {
    let clip = |s: &Scored| {
        let mut shown = s.clone();
        shown.answer = shown.answer.chars().take(500).collect();
        shown
    };
    let mut out = Vec::new();
    for pair in pairs {
        let line = serde_json::json!({
            "item": pair.index + 1,
            "input": items[pair.index].input,
            "expected": items[pair.index].expected,
            "tags": items[pair.index].tags,
            "baseline": clip(&pair.baseline),
            "candidate": clip(&pair.candidate),
        });
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::shuffled;

    #[test]
    fn the_order_is_a_seeded_permutation() {
        let order = shuffled(50, 7);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_eq!(order, shuffled(50, 7));
        assert_ne!(order, shuffled(50, 8));
    }
}
