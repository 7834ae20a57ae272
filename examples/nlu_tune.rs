//! Developer tool: loads the NLU once and prints dev-set scores over a grid of calibration
//! temperatures and thresholds (`cargo run --example nlu_tune -- [dev.tsv]`).

use std::path::Path;

use voicenav::nlu::eval::{evaluate, parse_tsv};
use voicenav::nlu::{Nlu, Thresholds};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let t = std::time::Instant::now();
    let mut nlu = Nlu::load(&root.join("flows")).expect("loads");
    println!("load+train {:?} {:?}", t.elapsed(), nlu.report);
    let file = std::env::args()
        .nth(1)
        .unwrap_or_else(|| root.join("tests/nlu/dev.tsv").display().to_string());
    let rows = parse_tsv(&std::fs::read_to_string(&file).expect("tsv")).expect("parses");
    let verbose = std::env::var_os("VERBOSE").is_some();
    for temp in [0.05f32, 0.08, 0.12, 0.18, 0.25] {
        for (route, confirm) in [(0.55f32, 0.3f32), (0.5, 0.25), (0.45, 0.2)] {
            nlu.thresholds = Thresholds {
                route,
                confirm,
                queue: 0.7,
                temperature: temp,
            };
            let r = evaluate(&nlu, &rows);
            println!(
                "T={temp} route={route} confirm={confirm}: queue {} core {} direct {} clarify P {} R {} wrong-route-vague {} ece {:.3}",
                r.queue, r.core, r.direct_route, r.clarify_precision, r.clarify_recall, r.vague_wrong_route, r.ece
            );
        }
    }
    if verbose {
        nlu.thresholds = Thresholds::default();
        let r = evaluate(&nlu, &rows);
        println!("{r}");
        for (text, e, g) in &r.errors {
            println!("  MISS {text}  expected {e}  got {g}");
        }
    }
}
