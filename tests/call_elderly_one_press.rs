//! The elderly one-press: at the greeting the caller presses 9 (RFC 4733 events) and is
//! transferred to elderly_priority in the elderly lane — REFER in the caller's dialog with
//! the context headers — and the call record shows the key, the lane and the transfer.
mod common;

use common::call::{build_pcap, run_sipp, scenario, CallServer, Ending, Expect, Turn};
use std::time::Duration;

#[test]
fn pressing_9_at_the_greeting_transfers_to_the_elderly_lane() {
    if !common::sip::have_sipp("pressing_9_at_the_greeting_transfers_to_the_elderly_lane") {
        return;
    }
    let server = CallServer::start(false, "", |t| t);
    let pcap = server.dir.path().join("press9.pcap");
    build_pcap(
        &[Turn::Silence(1.0), Turn::Key('9'), Turn::Silence(1.0)],
        &pcap,
    );
    let end = Ending::Refer(Expect {
        queue: "elderly_priority",
        lane: "elderly",
        ..Expect::default()
    });
    let sf = scenario(server.dir.path(), "13800001234", Some(&pcap), &end);
    let out = run_sipp(server.sip, &sf, 1);
    assert!(
        out.status.success(),
        "the SIPp caller/trunk failed its checks:\n{}",
        server.log()
    );
    let records = server.wait_records(1, Duration::from_secs(10));
    assert_eq!(records.len(), 1, "one record per call: {records:?}");
    let r = &records[0];
    assert_eq!(r["outcome"], "transferred");
    assert_eq!(r["queue"], "elderly_priority");
    assert_eq!(r["lane"], "elderly");
    assert_eq!(r["ani"], "138****1234", "the ANI is masked in the record");
    assert_eq!(r["keys"][0]["digit"], "9");
    assert_eq!(r["keys"][0]["source"], "rfc4733");
    assert_eq!(r["transfer"]["result"], "completed");
    assert_eq!(
        r["transfer"]["target"],
        "sip:elderly_priority@127.0.0.1:5080"
    );
    // The disclosure played to its end although the key came during it.
    assert_eq!(
        r["prompts"][0]["heard_ms"], r["prompts"][0]["duration_ms"],
        "{r}"
    );
}
