//! A caller who hangs up after the first turn and calls back is offered to resume, says
//! yes, and continues at the node they left — on one node (embedded store) and across two
//! nodes sharing a real Redis. Both calls leave records; the summary counts the resume.
//! This drives the records/continuity pieces the way the call task does (the SIP call
//! itself is covered by the call-server tests).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use voicenav::continuity::embedded::EmbeddedStore;
use voicenav::continuity::offer::{ResumeOffer, ResumeStep};
use voicenav::continuity::redis_store::RedisStore;
use voicenav::continuity::{AniHasher, ContextStore, Continuity, ResumeContext};
use voicenav::nlu::{Classification, Decision};
use voicenav::observe::recorder::CallRecorder;
use voicenav::observe::records::{Outcome, RecordWriter, TransferResult};
use voicenav::observe::summary::summarise;
use voicenav::routing::Queue;

const ANI: &str = "13812345678";
const FLOW: &str = "main@v3";

fn node(store: Arc<dyn ContextStore>) -> Continuity {
    Continuity::new(
        store,
        AniHasher::new("shared-salt"),
        Duration::from_secs(600),
        Duration::from_millis(250),
    )
}

/// Call 1: the caller states the need, is asked to confirm, and hangs up.
async fn first_call(cont: &Continuity, writer: &RecordWriter, node_name: &str) {
    let t0 = Instant::now();
    let mut rec = CallRecorder::new("call-1", ANI, Utc::now(), t0);
    rec.record_mut().node = Some(node_name.into());
    assert_eq!(
        cont.lookup(ANI, Utc::now()).await,
        voicenav::continuity::Lookup::NotFound
    );
    rec.recognised(
        t0,
        "greeting",
        &[("我想查一下信用卡账单".into(), 0.9)],
        Duration::from_millis(300),
        false,
    );
    rec.decided(
        t0,
        &Classification {
            text: "我想查一下信用卡账单".into(),
            queue: Some(Queue::CreditCard),
            scenario: Some("credit_card.bill_query".into()),
            confidence: 0.7,
            decision: Decision::Confirm,
            alternatives: vec![],
        },
        Duration::from_millis(2),
    );
    // Caller hangs up during the confirmation prompt: save where they were.
    let ctx = ResumeContext {
        flow_version: FLOW.into(),
        node: "confirm_scenario".into(),
        scenario: Some("credit_card.bill_query".into()),
        transcript: vec!["我想查一下信用卡账单".into()],
        saved_at: Utc::now(),
    };
    assert!(cont.save(ANI, &ctx).await);
    writer
        .write(&rec.finish(Utc::now(), Outcome::Abandoned))
        .await
        .unwrap();
}

/// Call 2: the same caller (number written another way) calls back and resumes.
async fn second_call(cont: &Continuity, writer: &RecordWriter, node_name: &str) {
    let t0 = Instant::now();
    let mut rec = CallRecorder::new("call-2", "+86 138 1234 5678", Utc::now(), t0);
    rec.record_mut().node = Some(node_name.into());
    let found = cont.lookup("+86 138 1234 5678", Utc::now()).await;
    let mut offer = ResumeOffer::start(&found, FLOW, Some("信用卡账单查询")).expect("an offer");
    assert!(offer.prompt().contains("信用卡账单查询"));
    rec.key(t0, '1', "rfc4733");
    let ResumeStep::Resume(ctx) = offer.handle_input("1") else {
        panic!("not resumed")
    };
    assert_eq!(ctx.node, "confirm_scenario");
    assert_eq!(ctx.transcript, vec!["我想查一下信用卡账单".to_string()]);
    rec.resume(offer.record());
    assert!(cont.forget(ANI).await);
    rec.transfer_started(
        t0,
        Queue::CreditCard,
        "sip:credit_card@pbx",
        ctx.scenario.as_deref(),
    );
    rec.transfer_result(TransferResult::Completed, Some(200));
    writer
        .write(&rec.finish(Utc::now(), Outcome::Transferred))
        .await
        .unwrap();
}

fn check_records(dir: &Path) {
    let s = summarise(dir, None).unwrap();
    assert_eq!(s.calls, 2);
    assert_eq!((s.resume_offered, s.resume_accepted), (1, 1));
    assert_eq!(s.queues.get("credit_card"), Some(&1));
    assert_eq!(s.outcomes.get("abandoned"), Some(&1));
}

#[tokio::test]
async fn hang_up_and_call_back_resumes_on_one_node() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("continuity.redb")).unwrap();
    let cont = node(Arc::new(store));
    let writer = RecordWriter::start(&dir.path().join("records")).unwrap();
    first_call(&cont, &writer, "a").await;
    second_call(&cont, &writer, "a").await;
    check_records(&dir.path().join("records"));
}

#[tokio::test]
async fn hang_up_on_node_a_and_resume_on_node_b_via_redis() {
    let bin = require_tool!("redis-server");
    let redis = common::services::Redis::start(&bin);
    let a = node(Arc::new(
        RedisStore::new(&redis.url(), Duration::from_millis(250)).unwrap(),
    ));
    let b = node(Arc::new(
        RedisStore::new(&redis.url(), Duration::from_millis(250)).unwrap(),
    ));
    let dir = tempfile::tempdir().unwrap();
    // Both nodes write to one shared records folder.
    let (wa, wb) = (
        RecordWriter::start(dir.path()).unwrap(),
        RecordWriter::start(dir.path()).unwrap(),
    );
    first_call(&a, &wa, "a").await;
    second_call(&b, &wb, "b").await;
    check_records(dir.path());
}
