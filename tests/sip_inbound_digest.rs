//! Inbound digest: a PBX outside the trunk's networks is challenged (401, RFC 7616) and,
//! answering with the configured user's password (from the environment), gets its call
//! through; a wrong password stays challenged.
mod common;

#[test]
fn invite_from_outside_the_networks_passes_after_a_digest_challenge() {
    if !common::sip::have_sipp("invite_from_outside_the_networks_passes_after_a_digest_challenge") {
        return;
    }
    std::env::set_var("VOICENAV_TEST_PBX_PASSWORD", "pbx-secret");
    let server = common::sip::SipServer::start(|t| {
        t.replace(
            "allow: [\"127.0.0.0/8\", \"::1/128\"]",
            "allow: [\"10.0.0.0/8\"]",
        )
        .replace(
            "inbound_users: []",
            "inbound_users: [{username: pbx, password_env: VOICENAV_TEST_PBX_PASSWORD}]",
        )
        // SIPp answers only MD5 challenges (and takes the first one offered).
        .replace(
            "digest_algorithms: [SHA-256, MD5]",
            "digest_algorithms: [MD5]",
        )
    });
    let out = common::sip::sipp(server.sip, "uac_digest.xml", &["-m", "2", "-r", "2"]);
    assert!(out.status.success(), "sipp failed: {}", out.status);
    let metrics = server.metrics();
    assert!(
        metrics.contains("voicenav_sip_acl_rejected_total{action=\"challenge\"} 2"),
        "{metrics}"
    );
    // The same PBX with a wrong password: challenged again instead of answered, so SIPp fails.
    let text = std::fs::read_to_string(common::repo().join("tests/sipp/uac_digest.xml")).unwrap();
    let wrong = server.dir.path().join("uac_digest_wrong.xml");
    std::fs::write(
        &wrong,
        text.replace("password=pbx-secret", "password=not-it"),
    )
    .unwrap();
    let out = common::sip::sipp_args(
        &[
            &server.sip.to_string(),
            "-sf",
            common::sip::path_str(&wrong),
        ],
        &["-m", "1", "-timeout", "8s"],
    );
    assert!(
        !out.status.success(),
        "a wrong password must not get through"
    );
    let metrics = server.metrics();
    assert!(
        metrics.contains("voicenav_sip_acl_rejected_total{action=\"challenge\"} 4"),
        "{metrics}"
    );
}
