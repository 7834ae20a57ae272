//! Draining a node behind Kamailio (docs/DEPLOY.md §4): a node that answers 503 to INVITEs
//! and to OPTIONS probes (what voicenav does after SIGTERM) loses no call — Kamailio fails
//! each INVITE it still sends there over to the other node — and is then taken out of the
//! rotation by its failed probes, so it gets no more INVITEs.

mod common;

use std::time::Duration;

use common::services::{DrainingNode, Kamailio, SippUas};

#[test]
fn draining_node_gets_no_calls_lost_and_is_taken_out() {
    let kamailio_bin = require_tool!("kamailio");
    let sipp = require_tool!("sipp");
    let live = SippUas::start(&sipp);
    let draining = DrainingNode::start();
    // Kamailio starts with both nodes active; the draining one has not been probed yet.
    let k = Kamailio::start(&kamailio_bin, &[live.port, draining.port]);

    let (ok, out) = common::services::sipp_calls(&sipp, k.port, 6);
    assert!(ok, "calls failed while a node drained:\n{out}\n{}", k.log());
    assert_eq!(live.invites(), 6, "every call answered by the live node");

    // Failed probes (503) take the draining node out: no INVITE reaches it any more.
    std::thread::sleep(Duration::from_secs(4));
    assert!(draining.options() >= 2, "the node was probed with OPTIONS");
    let before = draining.invites();
    let (ok, out) = common::services::sipp_calls(&sipp, k.port, 6);
    assert!(ok, "{out}");
    assert_eq!(
        draining.invites(),
        before,
        "no INVITE sent to the drained node"
    );
    assert_eq!(live.invites(), 12);
}
