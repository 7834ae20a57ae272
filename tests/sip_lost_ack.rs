//! Lost ACK: the caller never ACKs; voicenav retransmits the 200 on Timer G and sends BYE
//! after Timer H. T1 is lowered to 50 ms so Timer H (64·T1) fires after 3.2 s.
mod common;

#[test]
fn lost_ack_retransmits_200_then_byes() {
    if !common::sip::have_sipp("lost_ack_retransmits_200_then_byes") {
        return;
    }
    let server = common::sip::SipServer::start(|t| {
        t.replace("timer_t1_ms: 500", "timer_t1_ms: 50")
            .replace("answer_delay_ms: 300", "answer_delay_ms: 0")
    });
    let log = server.dir.path().join("messages.log");
    let started = std::time::Instant::now();
    let out = common::sip::sipp(
        server.sip,
        "uac_lost_ack.xml",
        &[
            "-m",
            "1",
            "-trace_msg",
            "-message_file",
            common::sip::path_str(&log),
        ],
    );
    assert!(out.status.success(), "sipp failed: {}", out.status);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(3000),
        "BYE came before Timer H"
    );
    let text = std::fs::read_to_string(&log).expect("sipp message log");
    let received_200 = text
        .split("message received")
        .skip(1)
        .filter(|m| m.contains("SIP/2.0 200") && m.contains("INVITE"))
        .count();
    assert!(
        received_200 >= 3,
        "the 200 was retransmitted ({received_200} copies seen)\n{text}"
    );
}
