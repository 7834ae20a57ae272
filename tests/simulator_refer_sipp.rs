//! The caller simulator accepts a transfer: a SIPp IVR stand-in (tests/sipp/uas_refer.xml,
//! RTP echoed back) answers, hears the caller press 4, then sends a REFER with voicenav's
//! context headers. `voicenav call` must answer 202 and NOTIFY (SIPp checks the sipfrag
//! 200 OK), accept the IVR's BYE, and print the Refer-To target, the headers, the decoded
//! User-to-User and `passed: true` for the script's `expect`.
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn simulator_answers_refer_and_reports_headers() {
    if !common::sip::have_sipp("simulator_answers_refer_and_reports_headers") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("calls.yaml");
    std::fs::write(
        &script,
        "- id: accident\n  caller: {ani: \"02088886666\"}\n  turns:\n    - dtmf: 4\n  \
expect: {queue: auto_claim, scenario: auto_claim.accident_report, outcome: transferred, max_turns: 1}\n",
    )
    .unwrap();
    let port = common::free_port();
    let media = common::free_port();
    let sf = common::repo().join("tests/sipp/uas_refer.xml");
    let mut sipp = Command::new("sipp")
        .args([
            "-sf",
            sf.to_str().unwrap(),
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .args([
            "-mp",
            &media.to_string(),
            "-rtp_echo",
            "-d",
            "8000",
            "-m",
            "1",
        ])
        .args(["-timeout", "40s", "-timeout_error", "-nostdin"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sipp");
    std::thread::sleep(Duration::from_millis(500));
    let target = format!("sip:127.0.0.1:{port}");
    let (code, out, err) = common::run(
        &[
            "call",
            &target,
            "--script",
            script.to_str().unwrap(),
            "--timeout",
            "30",
        ],
        None,
    );
    let sipp_status = sipp.wait().expect("sipp");
    assert_eq!(code, 0, "voicenav call failed:\n{out}\n{err}");
    let line: serde_json::Value =
        serde_json::from_str(out.lines().next().expect("one JSON line")).unwrap();
    assert_eq!(line["id"], "accident");
    assert_eq!(line["outcome"], "transferred");
    assert_eq!(line["queue"], "auto_claim");
    assert_eq!(line["scenario"], "auto_claim.accident_report");
    assert_eq!(line["refer_to"], "sip:auto_claim@127.0.0.1:5080");
    assert_eq!(line["headers"]["X-Voicenav-Confidence"], "0.91");
    assert_eq!(line["headers"]["X-Voicenav-Lane"], "standard");
    assert_eq!(line["uui"]["queue"], "auto_claim");
    assert_eq!(line["turns"], 1);
    assert_eq!(line["passed"], true);
    assert!(line["setup_ms"].as_f64().is_some());
    assert!(line["refer_ms"].as_f64().unwrap() >= 8000.0, "{line}");
    assert!(
        line["rtp_sent"].as_u64().unwrap() > 50,
        "RTP flows while the call is up: {line}"
    );
    assert!(
        line["rtp_received"].as_u64().unwrap() > 50,
        "the echo comes back: {line}"
    );
    assert!(
        sipp_status.success(),
        "SIPp (the IVR) failed its checks of 202 and NOTIFY: {sipp_status}"
    );
}
