//! Trunk registration: a SIPp UAS plays the carrier's registrar, challenges with 401
//! (Digest MD5, qop=auth) and verifies the answer (SIPp `verifyauth`); the driver in the
//! test registers with the password from its configuration and reports `Registered`.
mod common;

use std::time::Duration;

use voicenav::sip::driver;
use voicenav::sip::registration::{RegistrationConfig, RegistrationStatus};
use voicenav::sip::{CallEvent, EndpointConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_digest_against_a_challenging_registrar() {
    if !common::sip::have_sipp("registers_with_digest_against_a_challenging_registrar") {
        return;
    }
    let reg_port = common::free_port();
    let sf = common::repo().join("tests/sipp/uas_registrar.xml");
    let registrar = tokio::task::spawn_blocking(move || {
        let port = reg_port.to_string();
        std::process::Command::new("sipp")
            .args([
                "-sf",
                common::sip::path_str(&sf),
                "-i",
                "127.0.0.1",
                "-p",
                &port,
                "-m",
                "1",
            ])
            .args([
                "-timeout",
                "30s",
                "-timeout_error",
                "-nostdin",
                "-mp",
                &common::free_port().to_string(),
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("running sipp")
    });
    // Give the registrar a moment to bind before the first REGISTER (a lost one is retried anyway).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut cfg = EndpointConfig::loopback(0);
    cfg.registrations.push(RegistrationConfig {
        trunk: "carrier".into(),
        registrar: format!("127.0.0.1:{reg_port}").parse().unwrap(),
        domain: "127.0.0.1".into(),
        username: "voicenav".into(),
        password: Some("s3cret-reg".into()),
        expires: 60,
        backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(5),
    });
    let (sip, mut events, _task) = driver::spawn(&["127.0.0.1:0".parse().unwrap()], &[], cfg)
        .await
        .unwrap();
    let mut registered = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, events.recv()).await {
        if let CallEvent::Registration { trunk, status } = ev {
            assert_eq!(trunk, "carrier");
            if let RegistrationStatus::Registered { expires } = status {
                registered = Some(expires);
                break;
            }
        }
    }
    let out = registrar.await.unwrap();
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    }
    assert!(
        out.status.success(),
        "the registrar refused or timed out: {}",
        out.status
    );
    assert_eq!(registered, Some(60));
    sip.stop().await;
}
