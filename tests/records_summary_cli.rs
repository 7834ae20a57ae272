//! `voicenav records summary` over records written by the real writer, with compliance
//! flags found by the shipped compliance grammar and one corrupt line.

mod common;

use std::io::Write;
use std::process::Command;

use chrono::{TimeZone, Utc};
use voicenav::nlu::compliance::{ComplianceMatcher, ComplianceWatch};
use voicenav::observe::records::{
    CallRecord, Outcome, RecognitionRecord, RecordWriter, TransferRecord, TransferResult,
};
use voicenav::routing::Queue;

fn said(at_ms: u64, text: &str, no_match: bool) -> RecognitionRecord {
    RecognitionRecord {
        at_ms,
        node: "greeting".into(),
        text: text.into(),
        nbest: vec![],
        latency_ms: 320,
        no_match,
    }
}

fn call(
    id: &str,
    day: u32,
    utterances: &[(&str, bool)],
    matcher: &ComplianceMatcher,
) -> CallRecord {
    let start = Utc.with_ymd_and_hms(2026, 11, day, 9, 0, 0).unwrap();
    let mut r = CallRecord::new(id, "02088886666", start);
    r.end = start + chrono::Duration::seconds(40);
    let mut watch = ComplianceWatch::new(matcher);
    for (i, (text, no_match)) in utterances.iter().enumerate() {
        let at = 1000 * (i as u64 + 1);
        r.recognitions.push(said(at, text, *no_match));
        watch.observe(at, text);
        if *no_match {
            r.no_matches += 1;
        }
    }
    r.compliance = watch.into_flags();
    r
}

fn transferred(mut r: CallRecord, queue: Queue, result: TransferResult, first: bool) -> CallRecord {
    r.outcome = Outcome::Transferred;
    r.queue = Some(queue);
    r.routed_on_first_utterance = first;
    r.transfer = Some(TransferRecord {
        at_ms: 5000,
        queue,
        target: format!("sip:{queue}@127.0.0.1"),
        result,
        sip_status: None,
    });
    r
}

fn summary(args: &[&str]) -> std::process::Output {
    Command::new(common::bin())
        .args(["records", "summary"])
        .args(args)
        .output()
        .expect("running voicenav")
}

#[test]
fn summary_reports_counts_flags_and_corrupt_lines() {
    let dir = tempfile::tempdir().unwrap();
    let m = ComplianceMatcher::shipped().unwrap();
    let writer = RecordWriter::start(dir.path()).unwrap();
    let calls = [
        transferred(
            call("a", 20, &[("我想查一下信用卡账单", false)], &m),
            Queue::CreditCard,
            TransferResult::Completed,
            true,
        ),
        transferred(
            call("b", 21, &[("我的车被撞了要报案", false)], &m),
            Queue::AutoClaim,
            TransferResult::Failed,
            true,
        ),
        transferred(
            call(
                "c",
                21,
                &[("嗯那个什么", true), ("对方让我把钱转到安全账户", false)],
                &m,
            ),
            Queue::HumanAgent,
            TransferResult::Completed,
            false,
        ),
        transferred(
            call("d", 22, &[("我要投诉到银保监会", false)], &m),
            Queue::Complaint,
            TransferResult::Completed,
            true,
        ),
        {
            let mut r = call("e", 22, &[("嗯那个什么", true)], &m);
            r.no_inputs = 2;
            r.outcome = Outcome::Hangup;
            r
        },
    ];
    for c in &calls {
        writer.write_blocking(c).unwrap();
    }
    // A torn line, as a crash mid-write would leave.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("2026-11-22.jsonl"))
        .unwrap();
    f.write_all(b"{\"call_id\":\"torn\",\"ani\"").unwrap();
    drop(f);

    let out = summary(&["--dir", dir.path().to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["calls"], 5);
    assert_eq!(v["files"], 3);
    assert_eq!(v["queues"]["credit_card"], 1);
    assert_eq!(v["queues"]["human_agent"], 1);
    assert_eq!(v["transfers_failed"], 1);
    assert_eq!(v["routed_on_first_utterance"], 3);
    assert!((v["first_utterance_routing_rate"].as_f64().unwrap() - 0.6).abs() < 1e-9);
    assert!((v["no_input_rate"].as_f64().unwrap() - 0.2).abs() < 1e-9);
    assert!((v["no_match_rate"].as_f64().unwrap() - 0.4).abs() < 1e-9);
    assert_eq!(v["compliance"]["fraud_safe_account"], 1, "{v}");
    assert_eq!(v["compliance_by_severity"]["critical"], 1, "{v}");
    assert_eq!(v["compliance_by_severity"]["high"], 1, "{v}");
    assert!(
        v["compliance_flags"].as_u64().unwrap() >= 4,
        "two phrases in each flagged call: {v}"
    );
    assert_eq!(v["compliance"]["regulator_complaint"], 1, "{v}");
    assert_eq!(v["calls_flagged"], 2);
    assert_eq!(v["top_unrecognised"][0]["text"], "嗯那个什么");
    assert_eq!(v["top_unrecognised"][0]["count"], 2);
    assert_eq!(v["corrupt_lines"], 1);
    assert!(
        v["corrupt_examples"][0]
            .as_str()
            .unwrap()
            .contains("2026-11-22.jsonl:3:"),
        "{v}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 corrupt line"));

    let out = summary(&[
        "--dir",
        dir.path().to_str().unwrap(),
        "--since",
        "2026-11-22",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("calls                      2"), "{text}");
    assert!(text.contains("regulator_complaint"), "{text}");
    assert!(!text.contains("fraud_safe_account"), "{text}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = summary(&[
        "--dir",
        dir.path().to_str().unwrap(),
        "--since",
        "yesterday",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("YYYY-MM-DD"));
    let out = summary(&["--dir", "/nonexistent/records"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}
