//! Scale-out with real `voicenav serve` nodes (first part of the issue-11 loopback test):
//! Kamailio (the shipped kamailio.cfg) in front of two `voicenav serve` processes configured
//! to share one real Redis. SIPp callers through Kamailio reach both nodes; node B is drained
//! with SIGTERM (exit 0) mid-run; every later call is answered by node A.
//! Still to come with the call server: calls placed by `voicenav call` with speech, resume
//! across the nodes, and the zero-lost-records check.

mod common;

use std::time::Duration;

use common::services::{sipp_calls, Kamailio, Redis};
use common::sip::SipServer;

/// INVITEs Kamailio sent to 127.0.0.1:`port`: its `INVITE $ci -> $du` log lines, and its
/// `failing $ci over to $du` lines (a call that node B did not take, relayed to A).
fn invites_to(k: &Kamailio, port: u16) -> usize {
    let direct = format!("-> sip:127.0.0.1:{port}");
    let failover = format!("over to sip:127.0.0.1:{port}");
    k.log()
        .lines()
        .filter(|l| (l.contains("INVITE ") && l.contains(&direct)) || l.contains(&failover))
        .count()
}

#[test]
fn kamailio_with_two_serve_nodes_survives_draining_one() {
    let kamailio_bin = require_tool!("kamailio");
    let sipp = require_tool!("sipp");
    let redis_bin = require_tool!("redis-server");
    let redis = Redis::start(&redis_bin);
    let shared = |t: String| {
        t.replace(
            "# redis_url: redis://127.0.0.1:6379/",
            &format!("redis_url: {}", redis.url()),
        )
    };
    let a = SipServer::start(shared);
    let mut b = SipServer::start(shared);
    let (pa, pb) = (a.sip.port(), b.sip.port());
    let k = Kamailio::start(&kamailio_bin, &[pa, pb]);
    std::thread::sleep(Duration::from_millis(1500));

    let (ok, out) = sipp_calls(&sipp, k.port, 6);
    assert!(
        ok,
        "calls through kamailio to the nodes failed:\n{out}\n{}\n--- node a ---\n{}",
        k.log(),
        a.server.log()
    );
    let (a1, b1) = (invites_to(&k, pa), invites_to(&k, pb));
    assert_eq!(a1 + b1, 6, "{}", k.log());
    assert!(a1 > 0 && b1 > 0, "both nodes took calls (a {a1}, b {b1})");

    // Drain node B: SIGTERM, it finishes and exits 0.
    let status = b.server.terminate();
    assert!(
        status.success(),
        "node b exit: {status}\n{}",
        b.server.log()
    );
    let (ok, out) = sipp_calls(&sipp, k.port, 4);
    assert!(
        ok,
        "calls right after node b stopped failed:\n{out}\n{}",
        k.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    let before_b = invites_to(&k, pb);
    let (ok, out) = sipp_calls(&sipp, k.port, 4);
    assert!(ok, "{out}");
    assert_eq!(
        invites_to(&k, pb),
        before_b,
        "no INVITE to the drained node once probed out"
    );
    assert_eq!(
        invites_to(&k, pa),
        a1 + 8,
        "node a took every later call\n{}",
        k.log()
    );
}
