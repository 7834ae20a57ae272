//! The CLI contract: every command of ARCHITECTURE.md is listed, and bad arguments exit
//! non-zero with a helpful message.
mod common;

#[test]
fn help_lists_every_contract_command() {
    let (code, out, _) = common::run(&["--help"], None);
    assert_eq!(code, 0);
    for cmd in [
        "serve",
        "flows",
        "classify",
        "catalog",
        "replay",
        "call",
        "transcribe",
        "doctor",
        "records",
    ] {
        assert!(out.contains(cmd), "--help lacks `{cmd}`:\n{out}");
    }
}

#[test]
fn unknown_argument_exits_non_zero_with_help() {
    let (code, _, err) = common::run(&["serve", "--no-such-flag"], None);
    assert_ne!(code, 0);
    assert!(err.contains("--no-such-flag"), "{err}");
    assert!(err.to_lowercase().contains("usage"), "{err}");
}

#[test]
fn unknown_command_exits_non_zero() {
    let (code, _, err) = common::run(&["frobnicate"], None);
    assert_ne!(code, 0);
    assert!(err.contains("frobnicate"), "{err}");
}

#[test]
fn serve_with_broken_config_reports_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) =
        common::write_config(dir.path(), |t| t.replacen("max_calls:", "max_cals:", 1));
    let text = std::fs::read_to_string(&config).unwrap();
    let line = text.lines().position(|l| l.contains("max_cals:")).unwrap() + 1;
    let (code, _, err) = common::run(&["serve", "--config", config.to_str().unwrap()], None);
    assert_ne!(code, 0);
    let want = format!("{}:{line}:", config.display());
    assert!(err.contains(&want), "expected `{want}` in:\n{err}");
    assert!(err.contains("max_cals"), "{err}");
}
