//! Overload: with a ceiling of 5 new calls per second, a burst of 40 calls at 40/s gets
//! 503 + Retry-After for the excess (SIPp checks the header and ACKs), the calls under the
//! ceiling complete, the rejections are counted, and the server keeps answering.
mod common;

#[test]
fn calls_above_the_rate_ceiling_get_503_with_retry_after() {
    if !common::sip::have_sipp("calls_above_the_rate_ceiling_get_503_with_retry_after") {
        return;
    }
    let mut server = common::sip::SipServer::start(|t| {
        t.replace("max_calls_per_second: 400", "max_calls_per_second: 5")
            .replace("answer_delay_ms: 300", "answer_delay_ms: 0")
    });
    let out = common::sip::sipp(
        server.sip,
        "uac_overload.xml",
        &["-m", "40", "-r", "40", "-l", "40"],
    );
    assert!(out.status.success(), "sipp failed: {}", out.status);
    assert!(server.alive());
    let metrics = server.metrics();
    let rejected: u64 = metrics
        .lines()
        .find(|l| l.starts_with("voicenav_sip_overload_rejected_total{limit=\"calls_per_second\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        (20..40).contains(&rejected),
        "most of the burst is rejected, not all ({rejected})\n{metrics}"
    );
}
