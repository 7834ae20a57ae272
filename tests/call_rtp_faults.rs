//! Bad media: garbage datagrams and a stray RTP stream (another SSRC) on the call's RTP
//! port are counted and ignored — the caller's key still routes the call; a caller who
//! sends no RTP at all is ended by the RTP inactivity timer with BYE, a record (outcome
//! error, reason rtp_timeout) and a fault metric. The server keeps serving.
mod common;

use common::call::{build_pcap, run_sipp, scenario, CallServer, Ending, Expect, Turn};
use std::time::Duration;

#[test]
fn garbage_and_missing_rtp_end_or_recover_the_call() {
    if !common::sip::have_sipp("garbage_and_missing_rtp_end_or_recover_the_call") {
        return;
    }
    let server = CallServer::start(false, "  rtp_timeout_secs: 3", |t| t);
    // 1. Garbage and a foreign SSRC, then the caller's own key.
    let pcap = server.dir.path().join("garbage.pcap");
    build_pcap(
        &[
            Turn::Silence(0.5),
            Turn::Garbage(20),
            Turn::ForeignSsrc(20),
            Turn::Key('2'),
            Turn::Silence(2.0),
        ],
        &pcap,
    );
    let end = Ending::Refer(Expect {
        queue: "bank_account",
        lane: "standard",
        ..Expect::default()
    });
    let sf = scenario(server.dir.path(), "13900001111", Some(&pcap), &end);
    let out = run_sipp(server.sip, &sf, 1);
    assert!(
        out.status.success(),
        "the call with garbage media was not routed:\n{}",
        server.log()
    );
    // 2. No RTP at all: ended by the timer; the caller gets our BYE.
    let sf = scenario(
        server.dir.path(),
        "13900001112",
        None,
        &Ending::ExpectBye(Duration::from_secs(20)),
    );
    let out = run_sipp(server.sip, &sf, 1);
    assert!(
        out.status.success(),
        "the silent (no RTP) call was not ended with BYE:\n{}",
        server.log()
    );
    let records = server.wait_records(2, Duration::from_secs(10));
    assert_eq!(records.len(), 2);
    let routed = records
        .iter()
        .find(|r| r["ani"] == "139****1111")
        .expect("first record");
    assert_eq!(routed["outcome"], "transferred");
    assert_eq!(routed["queue"], "bank_account");
    let silent = records
        .iter()
        .find(|r| r["ani"] == "139****1112")
        .expect("second record");
    assert_eq!(silent["outcome"], "error", "{silent}");
    assert_eq!(silent["reason"], "rtp_timeout");
    let m = server.metrics();
    assert!(
        m.contains("voicenav_call_faults_total{kind=\"rtp_timeout\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("voicenav_call_faults_total{kind=\"bad_rtp\"}"),
        "{m}"
    );
}
