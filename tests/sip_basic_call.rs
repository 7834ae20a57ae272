//! Basic calls at a small rate: SIPp UAC → `voicenav serve` → 100/180/200 with an SDP
//! answer in PCMU + telephone-event → ACK → BYE → 200. Every call must succeed.
mod common;

#[test]
fn basic_calls_complete() {
    if !common::sip::have_sipp("basic_calls_complete") {
        return;
    }
    let server = common::sip::SipServer::start(|t| t);
    let out = common::sip::sipp(
        server.sip,
        "uac_basic.xml",
        &["-m", "20", "-r", "20", "-l", "20"],
    );
    assert!(out.status.success(), "sipp failed: {}", out.status);
    let metrics = server.metrics();
    assert!(
        metrics.contains("voicenav_sip_responses_total{code=\"200\"}"),
        "{metrics}"
    );
}
