//! The quality gate's assertions agree with promptfoo's: the same golden-set items, the same
//! answers (served by a real service that gauntlet asks, and given to promptfoo through its
//! `echo` provider) and the same assertions; item by item, both say pass or fail alike.
//! promptfoo comes from `scripts/test` (npm), run offline.

mod common;
use std::collections::BTreeMap;
use std::process::Command;

use common::{Scratch, text};
use serde_json::{Value, json};

fn promptfoo() -> String {
    std::env::var("GAUNTLET_PROMPTFOO").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/promptfoo/node_modules/.bin/promptfoo"
        )
        .into()
    })
}

/// Golden-set items and, for each, an answer that passes or fails in a different way.
fn items_and_answers() -> Vec<(Value, String)> {
    let golden = include_str!("../../../examples/rag/golden.jsonl");
    golden
        .lines()
        .take(30)
        .enumerate()
        .map(|(i, line)| {
            let item: Value = serde_json::from_str(line).unwrap();
            let fact = item["expected"][0].as_str().unwrap().to_string();
            let answer = match i % 6 {
                0 => format!("As listed: {fact}."),
                1 => format!("It is {}.", fact.to_uppercase()),
                2 => "I don't know.".to_string(),
                3 => format!("{fact}; write to sales@shop.example for more"),
                4 => format!("{} {fact}", "9".repeat(3)),
                _ => fact.replace(' ', "  "),
            };
            (item, answer)
        })
        .collect()
}

/// gauntlet's verdict on each answer (by input), from a run of the quality step against a
/// service that answers each question with its canned answer.
fn gauntlet_says(s: &Scratch, assert: &str, answers: &[(Value, String)]) -> BTreeMap<String, bool> {
    let canned: BTreeMap<&str, &str> = answers
        .iter()
        .map(|(item, answer)| (item["input"].as_str().unwrap(), answer.as_str()))
        .collect();
    s.write("answers.json", &serde_json::to_string(&canned).unwrap());
    s.write("canned.py", include_str!("support/canned_answers.py"));
    let golden: String = answers
        .iter()
        .map(|(item, _)| format!("{item}\n"))
        .collect();
    s.write("golden.jsonl", &golden);
    let target = r#"{command: [python3, "{spec_dir}/canned.py", "{port}", "{spec_dir}/answers.json"], health: /, ready_timeout: 20s}"#;
    let spec = format!(
        "schema_version: 1\nservice: {{name: scorer, version: '1'}}\ntargets:\n  baseline: {target}\n  candidate: {target}\n\
         traffic: {{rate: 5/s, requests: [{{path: /}}]}}\nsteps:\n  quality:\n    dataset: golden.jsonl\n\
         \x20   request: {{method: POST, path: /answer, headers: {{content-type: application/json}}, body: '{{\"question\": \"{{input}}\"}}'}}\n\
         \x20   answer: /answer\n    assert: {assert}\n"
    );
    s.write("spec.yaml", &spec);
    let out = s.run(&["run", "spec.yaml", "--only", "quality"]);
    // Thirty items that all agree cannot decide (fewer than the 50 that can accept): every
    // item is asked, and the gate is inconclusive.
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let run = s.run_dirs().pop().unwrap();
    let items = std::fs::read_to_string(run.join("evidence/quality/items.jsonl")).unwrap();
    items
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["baseline"]["pass"], v["candidate"]["pass"]);
            (
                v["input"].as_str().unwrap().to_string(),
                v["candidate"]["pass"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// promptfoo's verdict on the same answers with the same assertions.
fn promptfoo_says(
    s: &Scratch,
    assert: &[Value],
    answers: &[(Value, String)],
) -> BTreeMap<String, bool> {
    let tests: Vec<Value> = answers
        .iter()
        .map(|(item, answer)| {
            let asserts: Vec<Value> = assert
                .iter()
                .map(|a| match a["type"].as_str().unwrap() {
                    kind @ ("contains-all" | "icontains-all") => {
                        json!({"type": kind, "value": item["expected"]})
                    }
                    _ => a.clone(),
                })
                .collect();
            json!({"description": item["input"], "vars": {"answer": answer}, "assert": asserts})
        })
        .collect();
    let config = json!({"prompts": ["{{answer}}"], "providers": ["echo"], "tests": tests});
    let path = s.write("promptfooconfig.json", &config.to_string());
    let output = s.path().join("promptfoo-out.json");
    let ran = Command::new(promptfoo())
        .args([
            "eval",
            "-c",
            path.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
        ])
        .args(["--no-cache", "--no-progress-bar", "--no-table"])
        .current_dir(s.path())
        .env("HOME", s.path())
        .env("PROMPTFOO_DISABLE_TELEMETRY", "1")
        .env("PROMPTFOO_DISABLE_UPDATE", "1")
        .env("PROMPTFOO_DISABLE_REMOTE_GENERATION", "1")
        .output()
        .expect("promptfoo is installed by scripts/test (npm) into target/promptfoo");
    let written: Value = serde_json::from_slice(
        &std::fs::read(&output)
            .unwrap_or_else(|e| panic!("promptfoo wrote no results ({e}): {}", text(&ran.stderr))),
    )
    .unwrap();
    written["results"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let input = r["testCase"]["description"].as_str().unwrap().to_string();
            (input, r["success"].as_bool().unwrap())
        })
        .collect()
}

#[test]
fn gauntlet_and_promptfoo_score_the_same_answers_alike() {
    let answers = items_and_answers();
    for assert in [
        json!([{"type": "icontains-all"}, {"type": "not-regex", "value": "[a-z]+@[a-z.]+"}]),
        json!([{"type": "contains-all"}, {"type": "regex", "value": "^[A-Z0-9]"}]),
    ] {
        let s = Scratch::new();
        let ours = gauntlet_says(&s, &assert.to_string(), &answers);
        let theirs = promptfoo_says(&s, assert.as_array().unwrap(), &answers);
        assert_eq!(ours.len(), answers.len());
        assert_eq!(ours, theirs, "assertions {assert}");
        let passed = ours.values().filter(|p| **p).count();
        assert!(
            0 < passed && passed < ours.len(),
            "{assert}: {passed} of {} passed",
            ours.len()
        );
    }
}
