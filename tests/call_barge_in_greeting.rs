//! Barge-in over the greeting: the disclosure plays to its end, but caller speech during
//! the open question stops it at once (well within a frame of the VAD's decision) — the
//! record shows the question cut short and marked barged-in.
mod common;

use common::call::{build_pcap, run_sipp, scenario, CallServer, Ending, Expect, Turn};
use std::time::Duration;

#[test]
fn speech_during_the_greeting_question_stops_it() {
    if !common::sip::have_sipp("speech_during_the_greeting_question_stops_it") {
        return;
    }
    // Keypad-only server: barge-in is the VAD's and the player's work, no model needed.
    let server = CallServer::start(false, "", |t| t);
    let pcap = server.dir.path().join("barge.pcap");
    build_pcap(
        &[
            // Speech during the disclosure: ignored, the disclosure plays on.
            Turn::Silence(0.6),
            Turn::Say {
                name: "cc_bill_01",
                text: "我想查一下这个月的信用卡账单。",
            },
            Turn::Silence(1.0),
            // Speech during the open question: barge-in.
            Turn::Say {
                name: "cc_bill_02",
                text: "信用卡本期账单出来了吗，一共欠多少钱。",
            },
            Turn::Key('1'),
            Turn::Silence(2.0),
        ],
        &pcap,
    );
    let end = Ending::Refer(Expect {
        queue: "credit_card",
        lane: "standard",
        ..Expect::default()
    });
    let sf = scenario(server.dir.path(), "13900006666", Some(&pcap), &end);
    let out = run_sipp(server.sip, &sf, 1);
    let records = server.wait_records(1, Duration::from_secs(10));
    assert!(
        out.status.success(),
        "the SIPp caller/trunk failed its checks: {records:?}\n{}",
        server.log()
    );
    let r = &records[0];
    let p = r["prompts"].as_array().expect("prompts");
    assert_eq!(
        p[0]["heard_ms"], p[0]["duration_ms"],
        "the disclosure played to its end: {r}"
    );
    assert_eq!(p[0]["barged_in"], false);
    assert_eq!(
        p[1]["barged_in"], true,
        "the open question was interrupted: {r}"
    );
    let heard = p[1]["heard_ms"].as_u64().unwrap();
    let total = p[1]["duration_ms"].as_u64().unwrap();
    assert!(
        heard > 0 && heard < total,
        "cut short: {heard} of {total} ms"
    );
}
