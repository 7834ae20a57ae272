//! A caller hanging up in the middle of a prompt: the call ends at once and its record is
//! complete — outcome abandoned, the prompt with how much was heard, the end time.
mod common;

use common::call::{run_sipp, scenario, CallServer, Ending};
use std::time::Duration;

#[test]
fn a_caller_hanging_up_mid_prompt_leaves_a_complete_record() {
    if !common::sip::have_sipp("a_caller_hanging_up_mid_prompt_leaves_a_complete_record") {
        return;
    }
    let server = CallServer::start(false, "", |t| t);
    // No media at all from this caller; BYE 4 s after the ACK, inside the greeting.
    let sf = scenario(
        server.dir.path(),
        "13900005555",
        None,
        &Ending::HangUpAfter(Duration::from_secs(4)),
    );
    let out = run_sipp(server.sip, &sf, 1);
    assert!(
        out.status.success(),
        "the SIPp caller failed:\n{}",
        server.log()
    );
    let records = server.wait_records(1, Duration::from_secs(10));
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r["outcome"], "abandoned", "{r}");
    assert!(r["answer"].is_string() && r["end"].is_string());
    let prompts = r["prompts"].as_array().expect("prompts");
    let cut = prompts
        .iter()
        .find(|p| p["heard_ms"].as_u64() < p["duration_ms"].as_u64())
        .expect("a prompt was cut");
    let heard = cut["heard_ms"].as_u64().expect("heard");
    assert!(heard > 0, "the cut prompt had started playing: {r}");
    let start = chrono::DateTime::parse_from_rfc3339(r["start"].as_str().unwrap()).unwrap();
    let end = chrono::DateTime::parse_from_rfc3339(r["end"].as_str().unwrap()).unwrap();
    let secs = (end - start).num_milliseconds() as f64 / 1000.0;
    assert!(
        (3.5..8.0).contains(&secs),
        "the call ended with the BYE ({secs} s): {r}"
    );
    let m = server.metrics();
    assert!(
        m.contains("voicenav_calls_total{outcome=\"abandoned\""),
        "{m}"
    );
}
