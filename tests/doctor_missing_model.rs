//! `voicenav doctor` reports a missing model with the fix, and exits 1.
mod common;

#[test]
fn missing_whisper_model_is_reported_with_fix_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-model");
    let (config, _) = common::write_config(dir.path(), |t| {
        t.replace(
            "whisper_model: ~/.local/share/voicenav/models/whisper-base",
            &format!("whisper_model: {}", missing.display()),
        )
    });
    let (code, out, _) = common::run(&["doctor", "--config", config.to_str().unwrap()], None);
    assert_eq!(code, 1, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("whisper model"))
        .expect("a whisper model line");
    assert!(line.starts_with('✗'), "{out}");
    assert!(line.contains("no-such-model"), "{out}");
    assert!(out.contains("fix: run `bash scripts/setup.sh`"), "{out}");
}

#[test]
fn broken_config_is_reported_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) =
        common::write_config(dir.path(), |t| t.replacen("port_min:", "port_min: [", 1));
    let (code, out, _) = common::run(&["doctor", "--config", config.to_str().unwrap()], None);
    assert_eq!(code, 1, "{out}");
    assert!(out.lines().any(|l| l.starts_with("✗ config")), "{out}");
}

#[test]
fn busy_http_port_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (config, ports) = common::write_config(dir.path(), |t| t);
    let _hold = std::net::TcpListener::bind(("127.0.0.1", ports.http)).unwrap();
    let (code, out, _) = common::run(&["doctor", "--config", config.to_str().unwrap()], None);
    assert_eq!(code, 1, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains(&format!("http 127.0.0.1:{}", ports.http)))
        .expect("http line");
    assert!(line.starts_with('✗'), "{out}");
}
