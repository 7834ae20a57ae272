//! `voicenav call` refuses bad input with a clear message and a non-zero exit, before
//! placing any call: a target that is not `sip:HOST:PORT`, a non-loopback target without
//! `--allow-remote`, a script with a bad turn (reported as file:line:col), unbounded load.
mod common;

#[test]
fn simulator_rejects_bad_targets_scripts_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "- id: a\n  turns: [{dtmf: 1}]\n").unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "- id: a\n  turns: [{dtmf: x}]\n").unwrap();
    let g = good.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["call", "127.0.0.1:5060", "--script", g],
            "expected sip:HOST:PORT",
        ),
        (
            &["call", "sip:192.0.2.1:5060", "--script", g],
            "not a loopback address",
        ),
        (
            &[
                "call",
                "sip:127.0.0.1:5060",
                "--script",
                bad.to_str().unwrap(),
            ],
            "bad.yaml:1:1: call `a`, turn 1: dtmf",
        ),
        (
            &[
                "call",
                "sip:127.0.0.1:5060",
                "--script",
                "/nonexistent/calls.yaml",
            ],
            "cannot read",
        ),
        (
            &[
                "call",
                "sip:127.0.0.1:5060",
                "--script",
                g,
                "--concurrency",
                "0",
            ],
            "--concurrency 0",
        ),
        (
            &[
                "call",
                "sip:127.0.0.1:5060",
                "--script",
                g,
                "--repeat",
                "1000000",
            ],
            "--repeat",
        ),
    ];
    for (args, want) in cases {
        let (code, out, err) = common::run(args, None);
        assert_ne!(code, 0, "{args:?} should fail");
        assert!(out.is_empty(), "{args:?}: no call is placed: {out}");
        assert!(
            err.contains(want),
            "{args:?}: stderr should say `{want}`:\n{err}"
        );
    }
}
