//! SIGTERM mid-call loses no record: three calls are in progress when the server gets
//! SIGTERM; a new INVITE is refused with 503 while it drains; after the grace period the
//! calls get BYE, every record is written (outcome shutdown), and the process exits 0.
mod common;

use common::call::{build_pcap, run_sipp, scenario, CallServer, Ending, Turn};
use std::time::Duration;

#[test]
fn sigterm_mid_call_ends_calls_with_bye_and_writes_every_record() {
    if !common::sip::have_sipp("sigterm_mid_call_ends_calls_with_bye_and_writes_every_record") {
        return;
    }
    let mut server = CallServer::start(false, "", |t| {
        t.replace("shutdown_grace_secs: 30", "shutdown_grace_secs: 2")
    });
    let pcap = server.dir.path().join("talk.pcap");
    build_pcap(&[Turn::Silence(20.0)], &pcap);
    // The callers wait for our BYE and answer it.
    let sf = scenario(
        server.dir.path(),
        "13900008888",
        Some(&pcap),
        &Ending::ExpectBye(Duration::from_secs(30)),
    );
    let target = server.sip;
    let callers = std::thread::spawn(move || run_sipp(target, &sf, 3));
    // Wait until the three calls are up (their greetings started).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !server.metrics().contains("voicenav_calls_active 3") {
        assert!(
            std::time::Instant::now() < deadline,
            "three calls did not come up:\n{}",
            server.metrics()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(server.server.child.id() as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(300));
    // While draining, a new call is refused with 503.
    let late = scenario(
        server.dir.path(),
        "13900009999",
        None,
        &Ending::ExpectBye(Duration::from_secs(5)),
    );
    let refused = common::sip::sipp_args(
        &[&target.to_string(), "-sf", common::sip::path_str(&late)],
        &["-m", "1", "-timeout", "10s"],
    );
    assert!(
        !refused.status.success(),
        "a call during the drain was not answered"
    );
    let status = server.server.child.wait().expect("wait");
    assert!(status.success(), "exit status {status}:\n{}", server.log());
    let out = callers.join().expect("sipp thread");
    assert!(
        out.status.success(),
        "the callers got their BYE:\n{}",
        server.log()
    );
    let records = server.records();
    assert_eq!(records.len(), 3, "no record lost: {records:?}");
    for r in &records {
        assert_eq!(r["outcome"], "shutdown", "{r}");
    }
    assert!(
        server.log().contains("503") || server.log().contains("draining"),
        "{}",
        server.log()
    );
}
