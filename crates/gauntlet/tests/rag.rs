//! `gauntlet demo rag` end to end: the retrieval-augmented demo is GO clean, and NO-GO for
//! each of its defect knobs, the report naming the check that caught it.

mod common;
use common::{Scratch, check, heavy_turn, report, text};

/// Every failed check's id in a report.
fn failed(report: &serde_json::Value) -> Vec<String> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap())
        .filter(|c| c["outcome"] == "fail")
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_rag_demo_is_go_and_measures_what_an_ai_service_needs() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    let out = s.run(&["demo", "rag"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run_dir = s.run_dirs().pop().unwrap();
    let report = report(&run_dir);
    assert_eq!(report["decision"], "GO", "{}", report["summary"]);
    let quality = check(&report, "quality.golden set against the baseline");
    assert_eq!(quality["outcome"], "pass");
    // The judge decided on a subset of the golden set, and said how each tag did.
    let asked = quality["samples"].as_u64().unwrap();
    assert!((50..=150).contains(&asked), "{asked}");
    assert!(quality["reason"].as_str().unwrap().contains("by tag: "));
    let items = std::fs::read_to_string(run_dir.join("evidence/quality/items.jsonl")).unwrap();
    assert_eq!(items.lines().count() as u64, asked);
    let measurements = &report["measurements"];
    for name in ["quality.candidate.cost_p95", "quality.baseline.tokens_p95"] {
        assert!(
            measurements[name].as_f64().is_some_and(|v| v > 0.0),
            "{name}: {measurements}"
        );
    }
    // The required regression: the top document dropped through the candidate's ablation
    // switch (an action fault), caught by the golden set's judge, rolled back, put back.
    let caught = check(&report, "rollback-rehearsal.regression detected");
    assert!(
        caught["reason"].as_str().unwrap().contains("golden set: "),
        "{caught}"
    );
    let undone = check(&report, "rollback-rehearsal.faults undone");
    assert!(
        undone["reason"]
            .as_str()
            .unwrap()
            .contains("verified: GET "),
        "{undone}"
    );
    for id in [
        "rollback-rehearsal.recovered",
        "quality.retrieval ablation",
        "security.prompt injection",
        "security.pii leakage",
        "security.fan-out to docs",
        "chaos.provider-outage: hold",
        "chaos.cache-cold-start: side effect cache-warms-again",
    ] {
        assert_eq!(check(&report, id)["outcome"], "pass", "{id}");
    }
    // The corpus, golden set, prompt and probes are in the signed lock.
    let lock = std::fs::read_to_string(s.path().join(".gauntlet/demo-rag/gauntlet.lock")).unwrap();
    for file in [
        "corpus.jsonl",
        "golden.jsonl",
        "prompts/rag-system.txt",
        "probes/injection.jsonl",
    ] {
        assert!(lock.contains(file), "{file} in {lock}");
    }
}

/// How a knob's test reaches the check meant to catch it.
enum Through {
    /// `demo rag --defect KNOB` with only these steps.
    Steps(&'static [&'static str]),
    /// The rag example's one drill, the knob handed to the candidate as `demo --defect`
    /// hands it.
    Drill(&'static str),
}

/// Each knob runs only what holds the check meant to catch it: the whole demo runs in the GO
/// test above, and the other steps and drills add nothing this test asserts (eight whole
/// demos were a quarter of the suite's time: #22).
#[test]
fn each_rag_knob_is_no_go_naming_the_check_that_caught_it() {
    use Through::{Drill, Steps};
    for (knob, through, id) in [
        (
            "retrieval-off",
            Steps(&["quality"]),
            "quality.golden set against the baseline",
        ),
        (
            "top1-dropped",
            Steps(&["quality"]),
            "quality.golden set against the baseline",
        ),
        ("leaks-pii", Steps(&["security"]), "security.pii leakage"),
        (
            "follows-injection",
            Steps(&["security"]),
            "security.prompt injection",
        ),
        (
            "no-fanout-limit",
            Steps(&["security"]),
            "security.fan-out to docs",
        ),
        (
            "no-provider-failover",
            Drill("provider-throttled"),
            "chaos.provider-throttled: hold",
        ),
        (
            "cost-surge",
            Steps(&["quality", "gates"]),
            "gates.cost per answer (p95)",
        ),
        (
            "cache-off",
            Drill("cache-purged"),
            "chaos.cache-purged: side effect cache-missed",
        ),
    ] {
        let _turn = heavy_turn();
        let s = Scratch::new();
        let out = match through {
            Steps(steps) => {
                let mut args = vec!["demo", "rag", "--defect", knob];
                for step in steps {
                    args.extend(["--only", step]);
                }
                s.run(&args)
            }
            Drill(drill) => {
                rag_project(&s, include_str!("../../../examples/rag/gauntlet.yaml"));
                s.drill("gauntlet.yaml", drill, knob)
            }
        };
        assert_eq!(out.status.code(), Some(1), "{knob}: {}", text(&out.stderr));
        let report = report(&s.run_dirs().pop().unwrap());
        assert_eq!(report["decision"], "NO-GO", "{knob}");
        let summary = report["summary"].as_str().unwrap();
        assert!(summary.contains(&format!("`{id}`")), "{knob}: {summary}");
        assert!(failed(&report).contains(&id.to_string()), "{knob}");
    }
}

/// The rag example's project, with `spec` as its spec: what its chaos drills read.
fn rag_project(s: &Scratch, spec: &str) {
    s.write("gauntlet.yaml", spec);
    s.write(
        "corpus.jsonl",
        include_str!("../../../examples/rag/corpus.jsonl"),
    );
    s.write(
        "prompts/rag-system.txt",
        include_str!("../../../examples/rag/prompts/rag-system.txt"),
    );
}

#[test]
fn a_knob_of_the_other_demo_is_invalid_input() {
    let s = Scratch::new();
    let out = s.run(&["demo", "rag", "--defect", "auth-bypass"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown rag defect `auth-bypass`"));
}

/// A failover to the expensive provider that costs more per answer than the probe's cap
/// breaks the drill's steady state, the cost named; so does one whose cost, as the service
/// states it (`x-answer-cost`), disagrees with its tokens at the spec's prices.
#[test]
fn a_failover_over_the_cost_cap_or_misbilled_breaks_the_drill() {
    let spec = include_str!("../../../examples/rag/gauntlet.yaml");
    for (from, to, says) in [
        ("max_cost: 0.001 ", "max_cost: 0.0001 ", "cap 0.000100"),
        (
            "demo-large: {prompt: 2.50, completion: 10.00}",
            "demo-large: {prompt: 1.00, completion: 4.00}",
            "`x-answer-cost` says",
        ),
    ] {
        let _turn = heavy_turn();
        let s = Scratch::new();
        assert!(spec.contains(from), "{from}");
        rag_project(&s, &spec.replace(from, to));
        let out = s.run(&["chaos", "gauntlet.yaml", "--drill", "provider-throttled"]);
        assert_eq!(out.status.code(), Some(1), "{to}: {}", text(&out.stderr));
        let report = report(&s.run_dirs().pop().unwrap());
        let hold = check(&report, "chaos.provider-throttled: hold");
        assert_eq!(hold["outcome"], "fail", "{to}");
        assert!(hold["reason"].as_str().unwrap().contains(says), "{hold}");
    }
}

/// With a real Prometheus and Alertmanager (`demo rag --prometheus`), the failover to the
/// secondary provider pages: the run's Prometheus evaluates the release's own alert rules
/// and the alert reaches gauntlet's receiver through the Alertmanager.
#[test]
fn a_provider_failover_pages_through_a_real_alertmanager() {
    let _turn = heavy_turn();
    let s = Scratch::new();
    // The demo writes its project (Prometheus and Alertmanager in its spec); the failover
    // drill then runs on its own against it (the chaos step's other drills read no alert).
    let out = s.run(&["demo", "rag", "--prometheus", "--only", "security"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let spec = ".gauntlet/demo-rag/gauntlet.yaml";
    let out = s.run(&["chaos", spec, "--drill", "provider-throttled"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = report(&s.run_dirs().pop().unwrap());
    let paged = check(
        &report,
        "chaos.provider-throttled: alert RagPrimaryProviderFailing",
    );
    assert_eq!(paged["outcome"], "pass", "{paged}");
    let after =
        report["measurements"]["chaos.provider-throttled.time_to_alert.RagPrimaryProviderFailing"]
            .as_f64()
            .unwrap();
    assert!(after > 0.0 && after <= 20.0, "{after}");
    // The page is acknowledged (here by the unattended run's responder, after 1s): MTTA.
    let mtta = check(&report, "chaos.provider-throttled: MTTA");
    assert_eq!(mtta["outcome"], "pass", "{mtta}");
    assert!(
        mtta["reason"]
            .as_str()
            .unwrap()
            .contains("configured responder")
    );
    let measured = report["measurements"]["chaos.provider-throttled.mtta"]
        .as_f64()
        .unwrap();
    assert!((1.0..2.0).contains(&measured), "{measured}");
}
