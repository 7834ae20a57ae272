//! voicenav ends the call: the library's driver runs in the test, answers, and on the ACK
//! sends BYE; the SIPp caller answers it 200 and the call is closed.
mod common;

use std::time::Duration;

use voicenav::sdp::LocalMedia;
use voicenav::sip::driver;
use voicenav::sip::{CallCommand, CallEvent, EndpointConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voicenav_hangs_up_with_bye() {
    if !common::sip::have_sipp("voicenav_hangs_up_with_bye") {
        return;
    }
    let addr = "127.0.0.1:0".parse().unwrap();
    let (sip, mut events, _task) = driver::spawn(&[addr], &[], EndpointConfig::loopback(0))
        .await
        .unwrap();
    let target = sip.udp[0];
    let sipp = tokio::task::spawn_blocking(move || {
        common::sip::sipp(target, "uac_voicenav_hangup.xml", &["-m", "1"])
    });
    let mut closed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, events.recv()).await {
        match ev {
            CallEvent::Incoming { call, .. } => {
                let media = LocalMedia {
                    address: "127.0.0.1".parse().unwrap(),
                    rtp_port: 20000,
                    session_id: 1,
                    version: 1,
                };
                sip.command(CallCommand::Answer { call, media }).await;
            }
            CallEvent::Established { call } => {
                sip.command(CallCommand::Hangup { call }).await;
            }
            CallEvent::Closed { .. } => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    let out = sipp.await.unwrap();
    assert!(out.status.success(), "sipp failed: {}", out.status);
    assert!(closed, "the call was closed after our BYE was answered");
    sip.stop().await;
}
