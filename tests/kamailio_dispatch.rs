//! Harness check of the scale-out set-up: Kamailio (the shipped kamailio.cfg) in front of
//! two SIPp UAS instances (`tests/sipp/uas_node.xml`) standing in for voicenav nodes. Calls placed by a SIPp
//! caller through Kamailio reach both nodes; after one node is killed, new calls all reach
//! the survivor (OPTIONS probing takes the dead node out; failover covers the gap).
//! The full test with two `voicenav serve` nodes and Redis comes with the call server.

mod common;

use std::time::Duration;

use common::services::{Kamailio, SippUas};

#[test]
fn kamailio_spreads_calls_and_routes_around_a_dead_node() {
    let kamailio_bin = require_tool!("kamailio");
    let sipp = require_tool!("sipp");
    let a = SippUas::start(&sipp);
    let mut b = SippUas::start(&sipp);
    let k = Kamailio::start(&kamailio_bin, &[a.port, b.port]);
    // Let the first probes mark both nodes alive.
    std::thread::sleep(Duration::from_millis(1500));

    let (ok, out) = sipp_or_log(&k, &sipp, 6);
    assert!(ok, "calls through kamailio failed:\n{out}");
    let (a1, b1) = (a.invites(), b.invites());
    assert_eq!(
        a1 + b1,
        6,
        "every call reached exactly one node (a {a1}, b {b1})"
    );
    assert!(
        a1 > 0 && b1 > 0,
        "round robin used both nodes (a {a1}, b {b1})"
    );

    b.kill();
    // Two failed 1-second probes take node b out.
    std::thread::sleep(Duration::from_secs(4));
    let (ok, out) = sipp_or_log(&k, &sipp, 4);
    assert!(ok, "calls after node b died failed:\n{out}");
    assert_eq!(a.invites(), a1 + 4, "all new calls went to the survivor");
}

fn sipp_or_log(k: &Kamailio, sipp: &std::path::Path, calls: usize) -> (bool, String) {
    let (ok, out) = common::services::sipp_calls(sipp, k.port, calls);
    if ok {
        (ok, out)
    } else {
        (ok, format!("{out}\n--- kamailio log ---\n{}", k.log()))
    }
}
