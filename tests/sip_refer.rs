//! Transfer with context: the driver runs in the test; once the call is up it sends REFER
//! to the credit_card queue with the headers built from a `TransferContext`. The SIPp
//! trunk checks Refer-To, every X-Voicenav-* header and User-to-User, answers 202, sends
//! NOTIFY 100 then 200, and gets our BYE; the test sees the progress and the success.
mod common;

use std::time::Duration;

use voicenav::routing::{Lane, Queue, TransferContext};
use voicenav::sdp::LocalMedia;
use voicenav::sip::endpoint::TransferOutcome;
use voicenav::sip::{driver, transfer};
use voicenav::sip::{CallCommand, CallEvent, EndpointConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_carries_context_and_follows_notify() {
    if !common::sip::have_sipp("refer_carries_context_and_follows_notify") {
        return;
    }
    let addr = "127.0.0.1:0".parse().unwrap();
    let (sip, mut events, _task) = driver::spawn(&[addr], &[], EndpointConfig::loopback(0))
        .await
        .unwrap();
    let target = sip.udp[0];
    let sipp = tokio::task::spawn_blocking(move || {
        common::sip::sipp(target, "uac_refer.xml", &["-m", "1"])
    });
    let mut progress = Vec::new();
    let mut outcome = None;
    let mut closed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, events.recv()).await {
        match ev {
            CallEvent::Incoming { call, .. } => {
                let media = LocalMedia {
                    address: "127.0.0.1".parse().unwrap(),
                    rtp_port: 20002,
                    session_id: 2,
                    version: 1,
                };
                sip.command(CallCommand::Answer { call, media }).await;
            }
            CallEvent::Established { call } => {
                let ctx = TransferContext {
                    queue: Some(Queue::CreditCard),
                    scenario: Some("credit_card.bill_query".into()),
                    confidence: Some(0.93),
                    transcript: "我想查一下信用卡账单".into(),
                    call_id: call.0.clone(),
                    lane: Lane::Standard,
                    dialect: None,
                };
                let headers = transfer::transfer_headers(&ctx);
                sip.command(CallCommand::Refer {
                    call,
                    target: "sip:credit_card@127.0.0.1:5080".into(),
                    headers,
                })
                .await;
            }
            CallEvent::TransferProgress { code, .. } => progress.push(code),
            CallEvent::TransferResult { outcome: o, .. } => outcome = Some(o),
            CallEvent::Closed { .. } => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    let out = sipp.await.unwrap();
    assert!(
        out.status.success(),
        "sipp (the trunk) failed its checks: {}",
        out.status
    );
    assert_eq!(
        progress,
        vec![202, 100, 200],
        "REFER accepted, then NOTIFY 100 and 200"
    );
    assert_eq!(outcome, Some(TransferOutcome::Success));
    assert!(closed, "the bot leg was hung up after the transfer");
    sip.stop().await;
}
