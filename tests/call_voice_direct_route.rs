//! A direct route by voice: after the disclosure the caller says "我想查一下这个月的信用卡账单"
//! (a natural-voice recording sent as G.711 RTP) and is transferred to credit_card by a
//! REFER whose X-Voicenav-* and User-to-User headers carry the queue, the scenario, the
//! transcript, the call id and the lane; the record holds the recognition with its n-best
//! and latency, the classifier's decision, and the transfer.
mod common;

use common::call::{build_pcap, have_model, run_sipp, scenario, CallServer, Ending, Expect, Turn};
use std::time::Duration;

#[test]
fn a_caller_saying_what_they_want_is_transferred_with_context() {
    let name = "a_caller_saying_what_they_want_is_transferred_with_context";
    if !common::sip::have_sipp(name) || !have_model(name) {
        return;
    }
    let server = CallServer::start(true, "  recognition_timeout_secs: 30", |t| t);
    let pcap = server.dir.path().join("say.pcap");
    build_pcap(
        &[
            Turn::Silence(4.0),
            Turn::Say {
                name: "cc_bill_01",
                text: "我想查一下这个月的信用卡账单。",
            },
            Turn::Silence(3.0),
        ],
        &pcap,
    );
    let end = Ending::Refer(Expect {
        queue: "credit_card",
        lane: "standard",
        scenario: Some("^ *credit_card\\.bill_query"),
        // 信用卡, URL-encoded.
        transcript: Some("%E4%BF%A1%E7%94%A8%E5%8D%A1"),
        ..Expect::default()
    });
    let sf = scenario(server.dir.path(), "13900002222", Some(&pcap), &end);
    let out = run_sipp(server.sip, &sf, 1);
    assert!(
        out.status.success(),
        "the SIPp caller/trunk failed its checks:\n{}",
        server.log()
    );
    let records = server.wait_records(1, Duration::from_secs(10));
    let r = &records[0];
    assert_eq!(r["outcome"], "transferred", "{r}");
    assert_eq!(r["queue"], "credit_card");
    assert!(
        r["scenario"]
            .as_str()
            .is_some_and(|s| s.starts_with("credit_card.bill_query")),
        "{r}"
    );
    let rec = &r["recognitions"][0];
    assert!(
        rec["text"].as_str().is_some_and(|t| t.contains("信用卡")),
        "{r}"
    );
    assert!(!rec["nbest"].as_array().expect("n-best").is_empty());
    assert!(rec["latency_ms"].as_u64().is_some());
    assert_eq!(r["decisions"][0]["decision"], "route");
    assert_eq!(r["routed_on_first_utterance"], true);
    assert_eq!(r["turns"], 1);
    assert_eq!(r["transfer"]["result"], "completed");
    // The open question was interrupted by the caller's speech (barge-in).
    assert_eq!(r["prompts"][1]["barged_in"], true, "{r}");
    let m = server.metrics();
    assert!(
        m.contains("voicenav_turn_latency_seconds"),
        "turn latency histogram exported"
    );
    assert!(m.contains("voicenav_asr_latency_seconds"));
}
