//! CANCEL while ringing: 200 for the CANCEL, 487 for the INVITE, ACK absorbed; the server
//! then still completes a normal call.
mod common;

#[test]
fn cancel_before_answer_gets_487() {
    if !common::sip::have_sipp("cancel_before_answer_gets_487") {
        return;
    }
    // A long ring so the CANCEL surely arrives before the answer.
    let mut server = common::sip::SipServer::start(|t| {
        t.replace("answer_delay_ms: 300", "answer_delay_ms: 2000")
    });
    let out = common::sip::sipp(server.sip, "uac_cancel.xml", &["-m", "5", "-r", "5"]);
    assert!(out.status.success(), "sipp failed: {}", out.status);
    assert!(server.alive());
    let metrics = server.metrics();
    assert!(
        metrics.contains("voicenav_sip_responses_total{code=\"487\"} 5"),
        "{metrics}"
    );
}
