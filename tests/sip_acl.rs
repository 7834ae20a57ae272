//! Inbound ACL: an INVITE from outside every trunk's networks (no digest users) gets 403,
//! is counted, and the server stays up.
mod common;

#[test]
fn invite_from_outside_the_acl_is_forbidden() {
    if !common::sip::have_sipp("invite_from_outside_the_acl_is_forbidden") {
        return;
    }
    let mut server = common::sip::SipServer::start(|t| {
        t.replace(
            "allow: [\"127.0.0.0/8\", \"::1/128\"]",
            "allow: [\"10.0.0.0/8\"]",
        )
    });
    let out = common::sip::sipp(server.sip, "uac_forbidden.xml", &["-m", "3", "-r", "3"]);
    assert!(out.status.success(), "sipp failed: {}", out.status);
    assert!(server.alive());
    let metrics = server.metrics();
    assert!(
        metrics.contains("voicenav_sip_acl_rejected_total{action=\"forbidden\"} 3"),
        "{metrics}"
    );
}
