//! The caller presses a key (INFO application/dtmf-relay → 200) and hangs up (BYE → 200).
mod common;

#[test]
fn caller_hangs_up_after_a_keypress() {
    if !common::sip::have_sipp("caller_hangs_up_after_a_keypress") {
        return;
    }
    let server = common::sip::SipServer::start(|t| t);
    let out = common::sip::sipp(server.sip, "uac_caller_hangup.xml", &["-m", "3", "-r", "3"]);
    assert!(out.status.success(), "sipp failed: {}", out.status);
}
