//! Silence → keypad menu → digit: a caller who says nothing hears the greeting, a
//! re-prompt, then the keypad menu; pressing 1 there transfers to credit_card.
mod common;

use common::call::{build_pcap, run_sipp, scenario, CallServer, Ending, Expect, Turn};
use std::time::Duration;

#[test]
fn a_silent_caller_reaches_the_keypad_menu_and_presses_1() {
    if !common::sip::have_sipp("a_silent_caller_reaches_the_keypad_menu_and_presses_1") {
        return;
    }
    // The keypad-only server (no model needed for silence and keys).
    let server = CallServer::start(false, "", |t| t);
    let pcap = server.dir.path().join("silence.pcap");
    // Greeting (~10 s at the test's speaking rate) + 5 s no-input + re-prompt + 5 s: the
    // menu starts before 30 s and listens (repeating) long after 34 s.
    build_pcap(
        &[Turn::Silence(34.0), Turn::Key('1'), Turn::Silence(2.0)],
        &pcap,
    );
    let end = Ending::Refer(Expect {
        queue: "credit_card",
        lane: "standard",
        ..Expect::default()
    });
    let sf = scenario(server.dir.path(), "13900004444", Some(&pcap), &end);
    let out = run_sipp(server.sip, &sf, 1);
    let records = server.wait_records(1, Duration::from_secs(10));
    assert!(
        out.status.success(),
        "the SIPp caller/trunk failed its checks: {records:?}\n{}",
        server.log()
    );
    let r = &records[0];
    assert_eq!(r["no_inputs"], 2, "two no-inputs led to the menu: {r}");
    let prompts = r["prompts"].as_array().expect("prompts");
    let menu = prompts
        .iter()
        .find(|p| p["node"] == "main.menu")
        .expect("the keypad menu was played");
    let key_at = r["keys"][0]["at_ms"].as_u64().expect("key time");
    assert!(
        menu["at_ms"].as_u64().expect("menu time") < key_at,
        "the key came after the menu: {r}"
    );
    assert_eq!(r["keys"][0]["digit"], "1");
    assert_eq!(r["outcome"], "transferred");
    assert_eq!(r["queue"], "credit_card");
}
