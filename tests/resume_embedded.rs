//! Breakpoint resume on one node with the embedded store, built from a configuration file
//! the way `voicenav serve` builds it: a caller who hangs up and calls back within the
//! window is found; after the window, or with resume disabled, not.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use chrono::Utc;
use voicenav::config::Config;
use voicenav::continuity::{Continuity, Lookup, ResumeContext};

fn config_in(dir: &Path, window: &str) -> Config {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sip-config/voicenav.yaml"
    ))
    .unwrap();
    let text = shipped.replace(
        "resume_window_minutes: 10",
        &format!("resume_window_minutes: {window}"),
    );
    let file = dir.join("voicenav.yaml");
    std::fs::write(&file, text).unwrap();
    Config::load(&file).unwrap()
}

#[tokio::test]
async fn caller_resumes_within_the_window_only() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_in(dir.path(), "10");
    let c = Continuity::from_config(&cfg)
        .unwrap()
        .expect("resume enabled");
    assert_eq!(c.backend(), "embedded");
    assert_eq!(c.window().as_secs(), 600);
    let salt = dir.path().join("var/continuity.salt");
    assert_eq!(
        std::fs::metadata(&salt).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(dir.path().join("var/continuity.redb").exists());

    let ctx = ResumeContext {
        flow_version: "v7".into(),
        node: "auto_claim_details".into(),
        scenario: Some("auto_claim.accident_report".into()),
        transcript: vec!["我的车刚被撞了，要报案".into()],
        saved_at: Utc::now(),
    };
    // First call: hangs up after the first turn.
    assert!(c.save("02088886666", &ctx).await);
    // Calls back 3 minutes later, from the same number written another way.
    let later = Utc::now() + chrono::Duration::minutes(3);
    assert_eq!(
        c.lookup("+86 20 8888 6666", later).await,
        Lookup::Found(ctx.clone())
    );
    // 11 minutes later: outside the window.
    assert_eq!(
        c.lookup("02088886666", Utc::now() + chrono::Duration::minutes(11))
            .await,
        Lookup::NotFound
    );
    // Anonymous callers are never stored or found.
    assert!(!c.save("anonymous", &ctx).await);
    assert_eq!(c.lookup("anonymous", Utc::now()).await, Lookup::NotFound);
    // Declined or finished: forgotten.
    assert!(c.forget("02088886666").await);
    assert_eq!(c.lookup("02088886666", Utc::now()).await, Lookup::NotFound);
    // Nothing personal on disk: no raw number in the store file.
    let raw = std::fs::read(dir.path().join("var/continuity.redb")).unwrap();
    assert!(!raw.windows(11).any(|w| w == b"02088886666"));
}

#[test]
fn window_zero_disables_resume() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_in(dir.path(), "0");
    assert!(Continuity::from_config(&cfg).unwrap().is_none());
}
