//! NLU benchmark: start-up training time, memory, single-utterance classification
//! throughput (criterion) and p50/p99 latency with the full catalogue loaded, plus the dev
//! set scores. Writes `$CARGO_TARGET_DIR/nlu-bench.json` and the training examples as
//! `$CARGO_TARGET_DIR/nlu-train.tsv` (label, text) for the scikit-learn baseline of
//! `scripts/bench-nlu`, which runs it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{black_box, Criterion};
use voicenav::nlu::eval::{evaluate, parse_tsv};
use voicenav::nlu::{IntentClassifier, Nlu};

fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn out_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rss_before = rss_kib().unwrap_or(0);
    let t0 = Instant::now();
    let nlu = Nlu::load(&root.join("flows")).expect("catalogue loads");
    let train = t0.elapsed();
    let rss_after = rss_kib().unwrap_or(0);
    // Training again, a few times, for a steadier figure.
    let mut trains: Vec<Duration> = (0..3)
        .map(|_| {
            let t = Instant::now();
            let _ = black_box(Nlu::load(&root.join("flows")).expect("loads"));
            t.elapsed()
        })
        .collect();
    trains.push(train);
    trains.sort();

    let dev = parse_tsv(&std::fs::read_to_string(root.join("tests/nlu/dev.tsv")).expect("dev set"))
        .expect("parses");
    let texts: Vec<String> = dev.iter().map(|r| r.text.clone()).collect();

    // Latency distribution: every dev utterance, 20 rounds.
    let mut lat: Vec<Duration> = Vec::with_capacity(texts.len() * 20);
    for _ in 0..20 {
        for t in &texts {
            let s = Instant::now();
            black_box(nlu.classify(black_box(t)));
            lat.push(s.elapsed());
        }
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e6;
    let total: f64 = lat.iter().map(|d| d.as_secs_f64()).sum();
    let per_sec = lat.len() as f64 / total;

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(30)
        .measurement_time(Duration::from_secs(5));
    let mut i = 0usize;
    c.bench_function("nlu_classify_dev_utterance", |b| {
        b.iter(|| {
            i = (i + 1) % texts.len();
            black_box(nlu.classify(black_box(&texts[i])))
        })
    });
    let mut g = c.benchmark_group("nlu_train");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("nlu_load_and_train", |b| {
        b.iter(|| black_box(Nlu::load(&root.join("flows")).expect("loads")))
    });
    g.finish();

    let report = evaluate(&nlu, &dev);
    println!("{report}");
    let summary = serde_json::json!({
        "scenarios": nlu.report.scenarios,
        "training_examples": nlu.report.examples,
        "features": nlu.report.features,
        "train_ms_median": trains[trains.len() / 2].as_secs_f64() * 1e3,
        "rss_kib_added_by_load": rss_after.saturating_sub(rss_before),
        "rss_kib_total": rss_after,
        "utterances_per_sec_one_core": per_sec,
        "latency_us_p50": pct(0.5),
        "latency_us_p99": pct(0.99),
        "dev": report,
    });
    let dir = out_dir();
    let _ = std::fs::create_dir_all(&dir);
    std::fs::write(
        dir.join("nlu-bench.json"),
        serde_json::to_string_pretty(&summary).unwrap_or_default(),
    )
    .expect("write summary");
    // Training data for the baseline: the same catalogue examples, labelled by the class
    // our first stage learns (core id, top-level id, or "-" for vague).
    let mut tsv = String::from("label\ttext\n");
    for s in &nlu.catalog().scenarios {
        let label = s
            .core
            .map(str::to_string)
            .unwrap_or_else(|| s.id.split('.').take(2).collect::<Vec<_>>().join("."));
        for e in &s.examples {
            tsv.push_str(&format!("{label}\t{}\n", e.replace(['\t', '\n'], " ")));
        }
    }
    for v in std::fs::read_to_string(root.join("grammars/vague.txt"))
        .unwrap_or_default()
        .lines()
    {
        let v = v.trim();
        if !v.is_empty() && !v.starts_with('#') {
            tsv.push_str(&format!("-\t{v}\n"));
        }
    }
    std::fs::write(dir.join("nlu-train.tsv"), tsv).expect("write training data");
    println!(
        "summary: {}",
        serde_json::to_string(&summary["dev"]["queue"]).unwrap_or_default()
    );
    println!(
        "train {:.0} ms, {:.0} utterances/s, p50 {:.1} us, p99 {:.1} us, +{} KiB RSS",
        trains[trains.len() / 2].as_secs_f64() * 1e3,
        per_sec,
        pct(0.5),
        pct(0.99),
        rss_after.saturating_sub(rss_before)
    );
    c.final_summary();
}
