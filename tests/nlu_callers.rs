//! Text-only routing of the labelled caller sentences in `../shared/speech/callers/`
//! (a set the catalogue and the dev set were not written from): a check of
//! generalisation. Skips when the folder is not there.

use std::path::Path;

use voicenav::nlu::eval::{evaluate, parse_tsv};
use voicenav::nlu::Nlu;

#[test]
fn caller_sentences_route_to_the_right_queue() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = std::env::var_os("VOICENAV_CALLERS_TSV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/speech/callers/callers.tsv"));
    let file = if file.exists() {
        file
    } else {
        Path::new("/work/shared/speech/callers/callers.tsv").to_path_buf()
    };
    let Ok(text) = std::fs::read_to_string(&file) else {
        println!(
            "SKIP: {} not found (set VOICENAV_CALLERS_TSV)",
            file.display()
        );
        return;
    };
    let rows = parse_tsv(&text).expect("callers.tsv parses");
    let nlu = Nlu::load(&root.join("flows")).unwrap_or_else(|d| panic!("catalogue errors: {d:?}"));
    let report = evaluate(&nlu, &rows);
    println!("{report}");
    for (text, expected, got) in &report.errors {
        println!("  MISS {text}  expected {expected}  got {got}");
    }
    // Floors at the level reached so far (targets: queue 97%, core 90%).
    assert!(
        report.queue.value() >= 0.85,
        "queue accuracy {}",
        report.queue
    );
    assert!(report.core.value() >= 0.80, "core accuracy {}", report.core);
    assert!(
        report.vague_wrong_route <= 3,
        "vague rows routed: {}",
        report.vague_wrong_route
    );
}
