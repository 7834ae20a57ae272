//! The shipped Kamailio configuration (`docker/kamailio/kamailio.cfg`) passes Kamailio's own
//! check, with its defaults and with the loopback overrides the scale-out test uses; a broken
//! copy fails the same check (so the check can fail).

mod common;

use std::process::Command;

fn check(kamailio: &std::path::Path, cfg: &std::path::Path, defines: &[String]) -> (bool, String) {
    let mut cmd = Command::new(kamailio);
    cmd.arg("-c").arg("-f").arg(cfg);
    for d in defines {
        cmd.arg("-A").arg(d);
    }
    let out = cmd.output().expect("running kamailio -c");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && text.contains("config file ok"),
        text,
    )
}

#[test]
fn shipped_kamailio_cfg_passes_kamailio_check() {
    let kamailio = require_tool!("kamailio");
    let cfg = common::services::kamailio_cfg();
    let (ok, text) = check(&kamailio, &cfg, &[]);
    assert!(ok, "{text}");
    assert!(text.contains("0.0.0.0") && text.contains("5060"), "{text}");

    let list = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docker/kamailio/dispatcher.list"
    );
    let defines = [
        "SIP_LISTEN=udp:127.0.0.1:5999".to_string(),
        format!("DISPATCHER_LIST=\"{list}\""),
        "PROBE_INTERVAL=1".to_string(),
        "CTL_SOCKET=\"unix:/tmp/voicenav-kamailio-check.sock\"".to_string(),
    ];
    let (ok, text) = check(&kamailio, &cfg, &defines);
    assert!(ok, "{text}");
    assert!(
        text.contains("127.0.0.1") && text.contains("5999"),
        "{text}"
    );
}

#[test]
fn a_broken_cfg_fails_the_check() {
    let kamailio = require_tool!("kamailio");
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.cfg");
    let text = std::fs::read_to_string(common::services::kamailio_cfg()).unwrap();
    std::fs::write(
        &broken,
        text.replace("ds_select_dst(\"1\", \"4\")", "ds_select_dst(\"1\", \"4\""),
    )
    .unwrap();
    let (ok, text) = check(&kamailio, &broken, &[]);
    assert!(!ok, "{text}");
}
