//! OPTIONS: 200 with Allow and Accept, over UDP and over TCP.
mod common;

#[test]
fn options_answered_on_udp_and_tcp() {
    if !common::sip::have_sipp("options_answered_on_udp_and_tcp") {
        return;
    }
    let server = common::sip::SipServer::start(|t| t);
    let out = common::sip::sipp(server.sip, "uac_options.xml", &["-m", "5"]);
    assert!(out.status.success(), "sipp over udp failed: {}", out.status);
    let out = common::sip::sipp(server.sip, "uac_options.xml", &["-m", "5", "-t", "t1"]);
    assert!(out.status.success(), "sipp over tcp failed: {}", out.status);
}
