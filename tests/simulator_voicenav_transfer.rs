//! The caller simulator against voicenav's own SIP endpoint (the sip driver, in-process,
//! playing the IVR): the IVR answers, plays a 1.5 s "greeting" tone over RTP, and waits for
//! the caller's key. The simulator must wait for the greeting to end before pressing 9,
//! send it as RFC 4733 events that voicenav's RTP session decodes as exactly one `9`, and
//! accept the REFER to elderly_priority that follows (202, NOTIFY 200 → the endpoint
//! reports success and hangs up). The JSON line carries the lane and the reply latency.
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use voicenav::media::g711::Law;
use voicenav::routing::{Lane, Queue, TransferContext};
use voicenav::rtp::session::{RtpSession, SessionConfig};
use voicenav::sdp::LocalMedia;
use voicenav::simulator::{self, caller::CallerConfig, Options};
use voicenav::sip::endpoint::TransferOutcome;
use voicenav::sip::{driver, transfer, CallCommand, CallEvent, EndpointConfig};

fn tone_frame(n: usize) -> Vec<u8> {
    let pcm: Vec<i16> = (0..160)
        .map(|i| (((n * 160 + i) as f32 * 0.35).sin() * 9000.0) as i16)
        .collect();
    Law::Ulaw.encode(&pcm)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_presses_after_the_greeting_and_is_transferred() {
    let (sip, mut events, _task) = driver::spawn(
        &["127.0.0.1:0".parse().unwrap()],
        &[],
        EndpointConfig::loopback(0),
    )
    .await
    .unwrap();
    let target = sip.udp[0];
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("calls.yaml");
    std::fs::write(
        &script,
        "- id: elderly-one-press\n  turns:\n    - dtmf: 9\n  expect: {queue: elderly_priority, lane: elderly}\n",
    )
    .unwrap();
    let opts = Options {
        target: format!("sip:{target}"),
        script,
        rate: 1.0,
        concurrency: 1,
        repeat: 1,
        timeout: Duration::from_secs(30),
        allow_remote: false,
        caller: CallerConfig::default(),
    };
    let sim = std::thread::spawn(move || {
        let mut out = Vec::new();
        let code = simulator::run(&opts, &mut out).expect("simulator runs");
        (code, String::from_utf8(out).unwrap())
    });

    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut session = RtpSession::new(SessionConfig::new(Law::Ulaw), None);
    let mut caller_rtp: Option<SocketAddr> = None;
    let mut call = None;
    let mut greeting_end = None;
    let mut first_key_at = None;
    let mut digits = Vec::new();
    let mut progress = Vec::new();
    let mut outcome = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 2048];
    let mut frame = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(CallEvent::Incoming { call: c, remote_rtp, .. }) => {
                    caller_rtp = remote_rtp;
                    let media = LocalMedia {
                        address: "127.0.0.1".parse().unwrap(),
                        rtp_port: rtp.local_addr().unwrap().port(),
                        session_id: 1,
                        version: 1,
                    };
                    sip.command(CallCommand::Answer { call: c.clone(), media }).await;
                    call = Some(c);
                }
                Some(CallEvent::Established { .. }) => {}
                Some(CallEvent::TransferProgress { code, .. }) => progress.push(code),
                Some(CallEvent::TransferResult { outcome: o, .. }) => outcome = Some(o),
                Some(CallEvent::Closed { .. }) | None => break,
                Some(_) => {}
            },
            r = rtp.recv_from(&mut buf) => {
                let (n, from) = r.unwrap();
                let now = Instant::now();
                let _ = session.handle_datagram(now, from, &buf[..n]);
                while session.poll_playout(now).is_some() {}
                if buf[1] & 0x7f == 101 && first_key_at.is_none() {
                    first_key_at = Some(now);
                }
                while let Some(d) = session.poll_digit() {
                    digits.push(d.digit.as_char());
                    let ctx = TransferContext {
                        queue: Some(Queue::ElderlyPriority),
                        scenario: None,
                        confidence: None,
                        transcript: String::new(),
                        call_id: "t1".into(),
                        lane: Lane::Elderly,
                        dialect: None,
                    };
                    if let Some(c) = call.clone() {
                        sip.command(CallCommand::Refer {
                            call: c,
                            target: "sip:elderly_priority@127.0.0.1:5080".into(),
                            headers: transfer::transfer_headers(&ctx),
                        })
                        .await;
                    }
                }
            }
            _ = tick.tick(), if caller_rtp.is_some() && frame < 75 => {
                // 75 frames = 1.5 s of greeting, then silence (nothing sent).
                let mut out = voicenav::rtp::RtpHeader {
                    payload_type: 0, marker: frame == 0, seq: frame as u16, timestamp: frame as u32 * 160,
                    ssrc: voicenav::rtp::Ssrc(7),
                }.emit(&tone_frame(frame)).unwrap();
                rtp.send_to(&out, caller_rtp.unwrap()).await.unwrap();
                out.clear();
                frame += 1;
                if frame == 75 {
                    greeting_end = Some(Instant::now());
                }
            }
            _ = tokio::time::sleep_until(deadline) => panic!("the call did not finish in time"),
        }
    }
    let (code, out) = tokio::task::spawn_blocking(move || sim.join().unwrap())
        .await
        .unwrap();
    assert_eq!(
        digits,
        vec!['9'],
        "exactly one key, decoded from RFC 4733 events"
    );
    let wait = first_key_at.unwrap() - greeting_end.unwrap();
    assert!(
        wait >= Duration::from_millis(600),
        "the caller pressed {wait:?} after the greeting ended"
    );
    assert_eq!(
        progress,
        vec![202, 200],
        "REFER accepted, NOTIFY sipfrag 200"
    );
    assert_eq!(outcome, Some(TransferOutcome::Success));
    assert_eq!(code, std::process::ExitCode::SUCCESS, "{out}");
    let line: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(line["outcome"], "transferred", "{line}");
    assert_eq!(line["queue"], "elderly_priority");
    assert_eq!(line["headers"]["X-Voicenav-Lane"], "elderly");
    assert_eq!(line["refer_to"], "sip:elderly_priority@127.0.0.1:5080");
    assert_eq!(line["passed"], true);
    sip.stop().await;
}
