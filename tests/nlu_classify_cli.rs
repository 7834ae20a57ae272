//! `voicenav classify` and `voicenav catalog stats` through the real binary: JSON lines per
//! the CLI contract, bad lines answered with an error object without stopping the stream.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_voicenav"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn classify_answers_every_line_even_bad_ones() {
    let mut child = bin()
        .args(["classify", "--flows", "flows"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn voicenav");
    let mut input: Vec<u8> = Vec::new();
    input.extend_from_slice("我的信用卡丢了\n".as_bytes());
    input.extend_from_slice(b"\n");
    input.extend_from_slice("长".repeat(10_000).as_bytes());
    input.push(b'\n');
    input.extend_from_slice(&[0xff, 0xfe, b'a', b'\n']);
    input.extend_from_slice("我想咨询一下\n".as_bytes());
    input.extend_from_slice("转人工".as_bytes()); // last line without newline
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&input).expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .expect("utf8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    let first = &lines[0];
    for key in [
        "text",
        "queue",
        "scenario",
        "confidence",
        "decision",
        "alternatives",
    ] {
        assert!(first.get(key).is_some(), "missing {key}: {first}");
    }
    assert_eq!(first["queue"], "credit_card");
    assert!(
        first["scenario"]
            .as_str()
            .unwrap_or_default()
            .starts_with("credit_card.loss_report"),
        "{first}"
    );
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("empty"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("too long"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("UTF-8"),
        "{}",
        lines[3]
    );
    assert_eq!(lines[4]["decision"], "clarify", "{}", lines[4]);
    assert_eq!(lines[5]["queue"], "human_agent", "{}", lines[5]);
}

#[test]
fn catalog_stats_counts_at_least_2480_scenarios() {
    let out = bin()
        .args(["catalog", "stats", "--json", "--flows", "flows"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(v["total"].as_u64().unwrap_or(0) >= 2480, "{v}");
    assert_eq!(v["core"], 39);
    assert_eq!(v["queues"].as_object().map(|q| q.len()), Some(16));
    let text = bin()
        .args(["catalog", "stats", "--flows", "flows"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&text.stdout).contains("credit_card"));
}

#[test]
fn broken_catalogue_is_reported_as_file_line_col() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cat = dir.path().join("flows/catalog");
    std::fs::create_dir_all(&cat).expect("mkdir");
    std::fs::write(
        cat.join("loan.yaml"),
        "queue: loan\nscenarios:\n  - id: loan.mortgage\n    name: 房贷\n",
    )
    .expect("write");
    let out = bin()
        .args(["catalog", "stats", "--flows"])
        .arg(dir.path().join("flows"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:3:", Path::new(&cat).join("loan.yaml").display());
    assert!(
        err.contains(&expected) && err.contains("no examples"),
        "{err}"
    );
}
