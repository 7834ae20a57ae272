//! Hot reload: editing a prompt in a watched flows folder is live for the next scripted
//! call (edit→live is measured and printed, figure in docs/BENCHMARKS.md); a call in
//! progress keeps its version; a broken edit is reported as file:line:col and the old
//! version keeps serving.

mod common;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use voicenav::dialog::{
    Action, CallerDirectory, CallerInfo, Event, FlowSet, FlowStore, ReloadEvent, Reloader, Session,
};
use voicenav::replay::classifier_for;
use voicenav::replay::script::{run_call, ScriptedCall};

fn prompts_of_probe_call(
    store: &FlowStore,
    classifier: &Arc<dyn voicenav::nlu::IntentClassifier>,
) -> Vec<String> {
    let calls: Vec<ScriptedCall> = serde_saphyr::from_str("- id: probe\n  turns: []\n").unwrap();
    let mut hear = |t: &str| classifier.classify(t);
    run_call(
        &calls[0],
        store.current(),
        &CallerDirectory::default(),
        &mut hear,
    )
    .trace
}

#[test]
fn prompt_edit_goes_live_and_broken_edit_keeps_the_old_version() {
    let dir = common::flows_copy();
    let classifier = classifier_for(dir.path()).expect("catalogue");
    let store = FlowStore::new(FlowSet::load(dir.path(), classifier.clone()).expect("flows"));
    let v1 = store.current().version;
    let reloader = Reloader::new(
        store.clone(),
        dir.path().to_path_buf(),
        Box::new(classifier_for),
    );
    let (tx, rx) = mpsc::channel();
    let _watch = reloader
        .watch(move |e| {
            let _ = tx.send(e);
        })
        .expect("watching flows");

    // A call already in progress on v1.
    let t0 = Instant::now();
    let mut old_call = Session::new(store.current(), CallerInfo::default(), t0);
    while let Some(a) = old_call.poll_action() {
        if matches!(a, Action::Play(_)) {
            old_call.handle_event(
                t0,
                Event::PromptFinished {
                    heard: Duration::ZERO,
                },
            );
        }
    }

    let main = dir.path().join("main.yaml");
    let text = std::fs::read_to_string(&main).unwrap();
    assert!(text.contains("欢迎致电金融服务热线") && text.contains("您好，请问有什么可以帮您？"));
    let edited = text
        .replace("欢迎致电金融服务热线", "欢迎致电新版服务热线")
        .replace("您好，请问有什么可以帮您？", "新版：请问有什么可以帮您？");

    let edit = Instant::now();
    std::fs::write(&main, &edited).unwrap();
    let live = loop {
        let trace = prompts_of_probe_call(&store, &classifier);
        if trace.iter().any(|l| l.contains("欢迎致电新版服务热线")) {
            break edit.elapsed();
        }
        assert!(
            edit.elapsed() < Duration::from_secs(20),
            "edit never went live"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    println!(
        "edit→live: {:.1} ms (prompt edit in main.yaml, next scripted call hears it)",
        live.as_secs_f64() * 1e3
    );
    assert!(store.current().version > v1);

    // The call in progress finishes on v1: its reprompt is the old text.
    assert_eq!(old_call.flow_version(), v1);
    let due = old_call.poll_timeout().expect("no-input armed");
    old_call.handle_timeout(due);
    let mut reprompt = None;
    while let Some(a) = old_call.poll_action() {
        if let Action::Play(p) = a {
            reprompt.get_or_insert(p.text);
        }
    }
    assert_eq!(
        reprompt
            .as_deref()
            .map(|t| t.starts_with("您好，请问有什么可以帮您？")),
        Some(true),
        "{reprompt:?}"
    );

    // A broken edit: reported with its position, the last good version keeps serving.
    while rx.try_recv().is_ok() {}
    let served = store.current().version;
    let broken = edited.replace(
        "        goto: menu\n      - no_match: 1\n        if: dialect",
        "        goto: menuu\n      - no_match: 1\n        if: dialect",
    );
    assert_ne!(broken, edited);
    std::fs::write(&main, &broken).unwrap();
    let (line, col) = common::line_col(&broken, "menuu");
    let want = format!("main.yaml:{line}:{col}: unknown node `menuu`");
    let deadline = Instant::now() + Duration::from_secs(20);
    let diags = loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(ReloadEvent::Rejected(d)) => break d,
            Ok(ReloadEvent::Swapped { .. }) => continue,
            Err(_) => panic!("no rejection reported"),
        }
    };
    assert!(
        diags
            .iter()
            .any(|d| d.to_string().ends_with(&want) || d.to_string().contains(&want)),
        "{diags:?}"
    );
    assert_eq!(store.current().version, served, "old version keeps serving");
    assert!(prompts_of_probe_call(&store, &classifier)
        .iter()
        .any(|l| l.contains("欢迎致电新版服务热线")));
}
