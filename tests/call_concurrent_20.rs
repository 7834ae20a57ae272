//! Twenty concurrent calls, all routed: twenty SIPp callers at once, each sending live
//! RTP and pressing 4 at the greeting, are all transferred to auto_claim, with twenty
//! complete records.
mod common;

use common::call::{build_pcap, run_sipp, scenario, CallServer, Ending, Expect, Turn};
use std::time::Duration;

#[test]
fn twenty_concurrent_calls_are_all_routed() {
    if !common::sip::have_sipp("twenty_concurrent_calls_are_all_routed") {
        return;
    }
    let server = CallServer::start(false, "", |t| t);
    let pcap = server.dir.path().join("press4.pcap");
    build_pcap(
        &[Turn::Silence(1.5), Turn::Key('4'), Turn::Silence(2.0)],
        &pcap,
    );
    let end = Ending::Refer(Expect {
        queue: "auto_claim",
        lane: "standard",
        ..Expect::default()
    });
    let sf = scenario(server.dir.path(), "13900007777", Some(&pcap), &end);
    let out = run_sipp(server.sip, &sf, 20);
    let records = server.wait_records(20, Duration::from_secs(20));
    assert!(
        out.status.success(),
        "not every call was routed: {records:?}\n{}",
        server.log()
    );
    assert_eq!(records.len(), 20);
    let mut ids: Vec<&str> = records
        .iter()
        .map(|r| r["call_id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "one record per call");
    for r in &records {
        assert_eq!(r["outcome"], "transferred", "{r}");
        assert_eq!(r["queue"], "auto_claim");
        assert_eq!(r["transfer"]["result"], "completed");
    }
}
