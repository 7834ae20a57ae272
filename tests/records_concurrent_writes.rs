//! Many calls ending at once, on two writers sharing one records folder (as two nodes on
//! one machine would): every record is on disk, each on its own whole line, masked.

use chrono::{TimeZone, Utc};
use voicenav::observe::records::{CallRecord, Outcome, RecognitionRecord, RecordWriter};

fn record(writer: usize, i: usize) -> CallRecord {
    let start = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    let mut r = CallRecord::new(format!("w{writer}-c{i}"), "13812345678", start);
    r.end = start + chrono::Duration::seconds(30);
    r.outcome = Outcome::Hangup;
    // A long line, so interleaving would show.
    r.recognitions.push(RecognitionRecord {
        at_ms: 1000,
        node: "greeting".into(),
        text: format!(
            "我的身份证是11010519491231002X，第{i}次{}",
            "很长的句子".repeat(200)
        ),
        nbest: vec![],
        latency_ms: 300,
        no_match: true,
    });
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_never_lose_or_interleave_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let writers = [
        RecordWriter::start(dir.path()).unwrap(),
        RecordWriter::start(dir.path()).unwrap(),
    ];
    let mut tasks = Vec::new();
    for (w, writer) in writers.iter().enumerate() {
        for task in 0..50 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                for k in 0..4 {
                    let i = task * 4 + k;
                    writer.write(&record(w, i)).await.expect("record written");
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let text = std::fs::read_to_string(dir.path().join("2026-11-24.jsonl")).unwrap();
    let mut ids: Vec<String> = text
        .lines()
        .map(|l| {
            assert!(
                !l.contains("11010519491231002X"),
                "ID number written in the clear"
            );
            assert!(!l.contains("13812345678"), "ANI written in the clear");
            serde_json::from_str::<CallRecord>(l)
                .expect("every line is one whole record")
                .call_id
        })
        .collect();
    assert_eq!(ids.len(), 400);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 400, "each record exactly once");
}

#[test]
fn blocking_writes_from_threads() {
    let dir = tempfile::tempdir().unwrap();
    let writer = RecordWriter::start(dir.path()).unwrap();
    std::thread::scope(|s| {
        for t in 0..8 {
            let writer = writer.clone();
            s.spawn(move || {
                for i in 0..10 {
                    writer.write_blocking(&record(t, i)).unwrap();
                }
            });
        }
    });
    let text = std::fs::read_to_string(dir.path().join("2026-11-24.jsonl")).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| serde_json::from_str::<CallRecord>(l).is_ok())
            .count(),
        80
    );
}
