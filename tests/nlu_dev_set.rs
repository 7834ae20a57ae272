//! The NLU dev set (`tests/nlu/dev.tsv`, written by the team, not derived from the
//! catalogue): reports queue / core-scenario accuracy, clarify precision/recall and
//! per-style accuracy, and fails below queue 95% / core 88% or when a vague row is routed
//! more than rarely.

use std::path::Path;

use voicenav::nlu::eval::{evaluate, parse_tsv};
use voicenav::nlu::Nlu;

#[test]
fn dev_set_accuracy_meets_the_floor() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let nlu = Nlu::load(&root.join("flows")).unwrap_or_else(|d| panic!("catalogue errors: {d:?}"));
    let text = std::fs::read_to_string(root.join("tests/nlu/dev.tsv")).expect("dev set");
    let rows = parse_tsv(&text).expect("dev set parses");
    assert!(rows.len() >= 400, "dev set has {} rows", rows.len());

    // The dev set must not repeat training phrases (catalogue examples, vague list).
    let mut training = std::collections::HashSet::new();
    for s in &nlu.catalog().scenarios {
        for e in &s.examples {
            training.insert(nlu.normalize(e));
        }
    }
    for v in std::fs::read_to_string(root.join("grammars/vague.txt"))
        .unwrap_or_default()
        .lines()
    {
        training.insert(nlu.normalize(v));
    }
    let leaked: Vec<&str> = rows
        .iter()
        .filter(|r| training.contains(&nlu.normalize(&r.text)))
        .map(|r| r.text.as_str())
        .collect();
    assert!(
        leaked.is_empty(),
        "dev rows that are training phrases: {leaked:?}"
    );

    let report = evaluate(&nlu, &rows);
    println!("training: {:?}", nlu.report);
    println!("{report}");
    for (text, expected, got) in &report.errors {
        println!("  MISS {text}  expected {expected}  got {got}");
    }
    assert!(
        report.queue.value() >= 0.95,
        "queue accuracy {}",
        report.queue
    );
    assert!(report.core.value() >= 0.88, "core accuracy {}", report.core);
    assert!(
        report.clarify_recall.value() >= 0.8,
        "clarify recall {}",
        report.clarify_recall
    );
}
