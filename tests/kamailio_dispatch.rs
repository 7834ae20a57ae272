//! Harness check of the scale-out set-up: Kamailio (the shipped kamailio.cfg) in front of
//! two SIPp UAS instances (`tests/sipp/uas_node.xml`) standing in for voicenav nodes. Calls placed by a SIPp
//! caller through Kamailio reach both nodes; after one node is killed, new calls all reach
//! the survivor: at once by failover on the INVITE timeout, then directly once OPTIONS
//! probing has taken the dead node out.
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
    // At once, before any probe noticed: INVITEs sent to the dead node time out
    // (INVITE_TIMEOUT) and fail over to the survivor.
    let (ok, out) = sipp_or_log(&k, &sipp, 4);
    assert!(
        ok,
        "calls right after node b died failed:
{out}"
    );
    assert_eq!(a.invites(), a1 + 4, "all new calls went to the survivor");
    // Two failed 1-second probes take node b out; calls go straight to a.
    std::thread::sleep(Duration::from_secs(3));
    let (ok, out) = sipp_or_log(&k, &sipp, 4);
    assert!(
        ok,
        "calls after node b was taken out failed:
{out}"
    );
    assert_eq!(a.invites(), a1 + 8);
    assert!(
        k.log().contains("marking it for probing") || k.log().contains("failing"),
        "the failover path was used:\n{}",
        k.log()
    );
}

fn sipp_or_log(k: &Kamailio, sipp: &std::path::Path, calls: usize) -> (bool, String) {
    let (ok, out) = common::services::sipp_calls(sipp, k.port, calls);
    if ok {
        (ok, out)
    } else {
        (ok, format!("{out}\n--- kamailio log ---\n{}", k.log()))
    }
}
