//! Costs on the call path of the records/compliance/continuity pieces: masking an utterance,
//! scanning it for compliance phrases, writing call records durably (one at a time and 64
//! calls ending at once, group-committed), and the embedded resume store.
//! Run: `scripts/bench-records`; figures in docs/BENCHMARKS.md.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use voicenav::continuity::embedded::EmbeddedStore;
use voicenav::continuity::{AniHasher, Continuity, ResumeContext};
use voicenav::nlu::compliance::ComplianceMatcher;
use voicenav::observe::mask::mask_pii;
use voicenav::observe::records::{CallRecord, Outcome, RecognitionRecord, RecordWriter};

const PLAIN: &str = "你好，我想查一下我上个月的信用卡账单，顺便问一下还款日";
const WITH_PII: &str = "我的卡号是6222021234567890123，手机13812345678，身份证11010519491231002X";

fn record(i: usize) -> CallRecord {
    let mut r = CallRecord::new(format!("bench-{i}"), "13812345678", Utc::now());
    r.outcome = Outcome::Transferred;
    for k in 0..3 {
        r.recognitions.push(RecognitionRecord {
            at_ms: 1000 * k,
            node: "greeting".into(),
            text: PLAIN.into(),
            nbest: vec![],
            latency_ms: 300,
            no_match: false,
        });
    }
    r
}

fn masking(c: &mut Criterion) {
    let mut g = c.benchmark_group("mask_pii");
    for (name, text) in [("plain", PLAIN), ("with_pii", WITH_PII)] {
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::from_parameter(name), text, |b, t| {
            b.iter(|| mask_pii(t))
        });
    }
    g.finish();
}

fn compliance(c: &mut Criterion) {
    let m = ComplianceMatcher::shipped().expect("shipped grammar");
    let mut g = c.benchmark_group("compliance_scan");
    for (name, text) in [
        ("plain", PLAIN),
        (
            "fraud",
            "对方说我涉嫌洗钱，让我把钱转到安全账户，还问我要验证码",
        ),
    ] {
        g.bench_with_input(BenchmarkId::from_parameter(name), text, |b, t| {
            b.iter(|| m.scan(t))
        });
    }
    g.finish();
}

fn record_writes(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let writer = RecordWriter::start(dir.path()).expect("writer");
    let mut g = c.benchmark_group("record_write_fsync");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(1));
    g.bench_function("one_call", |b| {
        b.iter(|| writer.write_blocking(&record(0)).expect("written"))
    });
    g.throughput(Throughput::Elements(64));
    g.bench_function("64_calls_at_once", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..64)
                    .map(|i| {
                        let w = writer.clone();
                        tokio::spawn(async move { w.write(&record(i)).await })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("task").expect("written");
                }
            })
        })
    });
    // Baseline: the obvious design, a mutex around the file and one fsync per record.
    let naive = std::sync::Arc::new(std::sync::Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("naive.jsonl"))
            .expect("naive file"),
    ));
    g.bench_function("64_calls_at_once_baseline_mutex_fsync_each", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..64)
                    .map(|i| {
                        let f = naive.clone();
                        tokio::task::spawn_blocking(move || {
                            use std::io::Write;
                            let line = record(i).to_line().expect("line");
                            let mut f = f.lock().expect("lock");
                            f.write_all(&line).expect("write");
                            f.sync_data().expect("fsync");
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("task");
                }
            })
        })
    });
    g.finish();
}

fn resume_store(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(&dir.path().join("c.redb")).expect("store");
    let cont = Continuity::new(
        Arc::new(store),
        AniHasher::new("bench"),
        Duration::from_secs(600),
        Duration::from_secs(1),
    );
    let ctx = ResumeContext {
        flow_version: "v1".into(),
        node: "confirm".into(),
        scenario: Some("credit_card.bill_query".into()),
        transcript: vec![PLAIN.into()],
        saved_at: Utc::now(),
    };
    let mut g = c.benchmark_group("resume_embedded");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.bench_function("save", |b| {
        b.iter(|| rt.block_on(cont.save("13812345678", &ctx)))
    });
    g.bench_function("lookup", |b| {
        b.iter(|| rt.block_on(cont.lookup("13812345678", Utc::now())))
    });
    g.finish();
}

criterion_group!(benches, masking, compliance, record_writes, resume_store);
criterion_main!(benches);
