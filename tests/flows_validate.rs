//! `voicenav flows validate`: the shipped flows are valid, and each kind of broken flow is
//! reported as `file:line:col: message` with exit status 1.

mod common;

use common::{flows_with, line_col, run};

/// A small valid main flow; tests break one thing in it.
const GOOD: &str = r#"flow: main
entry: start
nodes:
  start:
    then:
      - if: senior
        goto: elderly
      - goto: greeting
  greeting:
    prompt: 您好，请说出您要办理的业务。
    listen: {grammar: open}
    on:
      - intent: {decision: route}
        transfer: $intent
      - dtmf: "0"
        transfer: human_agent
      - no_input: 1
        goto: menu
      - no_match: 1
        transfer: human_agent
  menu:
    prompt: 信用卡请按1。
    listen: {grammar: digits}
    on:
      - dtmf: "1"
        scenario: credit_card.bill_query
        transfer: credit_card
      - no_input: 1
        transfer: human_agent
      - no_match: 1
        transfer: human_agent
  elderly:
    prompt: {text: 正在为您转接。, rate: 0.8}
    then:
      - transfer: elderly_priority
"#;

/// Runs validate on a folder holding `main.yaml` = `text`; returns (exit code, stdout).
fn validate(text: &str) -> (i32, String, String) {
    let dir = flows_with(&[("main.yaml", text)]);
    let path = dir.path().display().to_string();
    let (code, out, err) = run(&["flows", "validate", &path], None);
    (code, out.replace(&format!("{path}/"), ""), err)
}

fn expect_error(text: &str, needle: &str, message: &str) {
    let (code, out, err) = validate(text);
    assert_eq!(code, 1, "exit 1 expected; stdout:\n{out}\nstderr:\n{err}");
    let (line, col) = line_col(text, needle);
    let want = format!("main.yaml:{line}:{col}: ");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&want) && l.contains(message)),
        "expected `{want}…{message}…` in:\n{out}\nstderr:\n{err}"
    );
}

#[test]
fn shipped_flows_are_valid() {
    let (code, out, err) = run(&["flows", "validate", "flows"], None);
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn good_sample_is_valid() {
    let (code, out, err) = validate(GOOD);
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn unknown_node_reference() {
    let text = GOOD.replace("        goto: menu", "        goto: mnu");
    expect_error(&text, "mnu", "unknown node `mnu`");
}

#[test]
fn unknown_subflow_reference() {
    let text = GOOD.replace("        goto: menu", "        goto: cards.ask");
    expect_error(&text, "cards.ask", "unknown subflow `cards`");
}

#[test]
fn unreachable_node() {
    let text =
        format!("{GOOD}  orphan:\n    prompt: 没人来这里。\n    then:\n      - hangup: true\n");
    expect_error(&text, "orphan:", "unreachable node `main.orphan`");
}

#[test]
fn non_terminal_dead_end() {
    let text = GOOD.replace(
        "      - goto: greeting\n",
        "      - goto: greeting\n  stuck:\n    prompt: 这里什么也不做。\n",
    );
    expect_error(&text, "stuck:", "dead end");
}

#[test]
fn dead_end_without_path_to_an_ending() {
    // Two listening nodes that only lead to each other never end the call.
    let text = r#"flow: main
entry: a
nodes:
  a:
    prompt: 甲
    listen: {}
    on:
      - {dtmf: "1", goto: b}
      - {no_input: 1, goto: b}
      - {no_match: 1, goto: b}
  b:
    prompt: 乙
    listen: {}
    on:
      - {dtmf: "1", goto: a}
      - {no_input: 1, goto: a}
      - {no_match: 1, stay: true}
"#;
    expect_error(text, "a:", "dead end: from node `main.a`");
    expect_error(text, "b:", "dead end: from node `main.b`");
}

#[test]
fn listen_without_no_input_handling() {
    let text = GOOD.replace("      - no_input: 1\n        transfer: human_agent\n", "");
    expect_error(&text, "menu:", "no `no_input` transition");
}

#[test]
fn listen_without_no_match_handling() {
    let text = GOOD.replace(
        "      - no_match: 1\n        transfer: human_agent\n  elderly",
        "  elderly",
    );
    expect_error(&text, "menu:", "no `no_match` transition");
}

#[test]
fn transfer_to_unknown_queue() {
    let text = GOOD.replace("transfer: elderly_priority", "transfer: elderly_lane");
    expect_error(&text, "elderly_lane", "unknown queue `elderly_lane`");
}

#[test]
fn scenario_missing_from_catalogue() {
    let text = GOOD.replace(
        "scenario: credit_card.bill_query",
        "scenario: credit_card.no_such_thing",
    );
    expect_error(&text, "credit_card.no_such_thing", "not in the catalogue");
}

#[test]
fn duplicate_dtmf_keys() {
    let text = GOOD.replace(
        "      - no_input: 1\n        transfer: human_agent\n",
        "      - dtmf: \"1\"\n        transfer: loan\n      - no_input: 1\n        transfer: human_agent\n",
    );
    let (line, _) = line_col(&text, "transfer: loan");
    let (code, out, _) = validate(&text);
    assert_eq!(code, 1);
    let want = format!("main.yaml:{}:9: duplicate DTMF key `1`", line - 1);
    assert!(
        out.lines().any(|l| l.starts_with(&want)),
        "expected `{want}` in:\n{out}"
    );
}

#[test]
fn loop_without_caller_input() {
    let text = GOOD.replace(
        "    then:\n      - transfer: elderly_priority\n",
        "    then:\n      - if: senior\n        goto: start\n      - transfer: elderly_priority\n",
    );
    expect_error(
        &text,
        "start:",
        "loop without caller input: main.start → main.elderly → main.start",
    );
}

#[test]
fn yaml_syntax_and_unknown_keys() {
    let text = GOOD.replace(
        "    listen: {grammar: digits}",
        "    listne: {grammar: digits}",
    );
    expect_error(&text, "listne", "listne");
    let text = GOOD.replace("prompt: 信用卡请按1。", "prompt: [信用卡请按1。");
    let (code, out, _) = validate(&text);
    assert_eq!(code, 1);
    assert!(out.starts_with("main.yaml:"), "{out}");
}

#[test]
fn missing_folder_is_a_clear_error() {
    let (code, _, err) = run(&["flows", "validate", "/nonexistent/flows"], None);
    assert_ne!(code, 0);
    assert!(err.contains("not a flows folder"), "{err}");
}
