//! Breakpoint resume across two nodes sharing a real `redis-server` (started on a free
//! loopback port): a caller saved on node A resumes on node B; entries expire; a Redis that
//! is down makes calls go on without resume, quickly, and is counted; a Redis that comes
//! back is used again.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::services::Redis;
use voicenav::continuity::redis_store::{RedisStore, RETRY_AFTER};
use voicenav::continuity::{AniHasher, Continuity, Lookup, ResumeContext};

const TIMEOUT: Duration = Duration::from_millis(200);

fn node(url: &str, window: Duration) -> Continuity {
    let store = RedisStore::new(url, TIMEOUT).expect("valid url");
    Continuity::new(
        Arc::new(store),
        AniHasher::new("deployment-salt"),
        window,
        TIMEOUT,
    )
}

fn ctx() -> ResumeContext {
    ResumeContext {
        flow_version: "main@3f2a".into(),
        node: "confirm_scenario".into(),
        scenario: Some("credit_card.bill_query".into()),
        transcript: vec!["我想查信用卡账单，卡号4111111111111111".into()],
        saved_at: Utc::now(),
    }
}

#[tokio::test]
async fn resume_across_nodes_expiry_and_outage() {
    let bin = require_tool!("redis-server");
    let _ = voicenav::observe::metrics_handle();
    let mut redis = Redis::start(&bin);
    let a = node(&redis.url(), Duration::from_secs(600));
    let b = node(&redis.url(), Duration::from_secs(600));

    // Saved on A, found on B under another form of the same number.
    assert!(a.save("sip:+8613812345678@10.0.0.5", &ctx()).await);
    let Lookup::Found(found) = b.lookup("13812345678", Utc::now()).await else {
        panic!("not resumed on node B")
    };
    assert_eq!(found.node, "confirm_scenario");
    assert_eq!(found.scenario.as_deref(), Some("credit_card.bill_query"));
    assert_eq!(
        found.transcript[0], "我想查信用卡账单，卡号************1111",
        "transcript stored masked"
    );
    assert_eq!(b.lookup("13912345678", Utc::now()).await, Lookup::NotFound);

    // What Redis holds: hashed key, no raw number, an expiry.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("voicenav:resume:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].contains("13812345678"));
    let value: String = redis::cmd("GET")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        !value.contains("13812345678") && !value.contains("4111111111111111"),
        "{value}"
    );
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= 600_000, "pttl {pttl}");

    // Forgotten on B: gone for A.
    assert!(b.forget("13812345678").await);
    assert_eq!(a.lookup("13812345678", Utc::now()).await, Lookup::NotFound);

    // Expiry by Redis itself.
    let short = node(&redis.url(), Duration::from_millis(300));
    assert!(short.save("13812345678", &ctx()).await);
    assert!(matches!(
        short.lookup("13812345678", Utc::now()).await,
        Lookup::Found(_)
    ));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        a.lookup("13812345678", Utc::now()).await,
        Lookup::NotFound,
        "expired"
    );

    // Outage: Redis dies; calls go on without resume, bounded in time, and it is counted.
    assert!(a.save("13812345678", &ctx()).await);
    redis.stop();
    let started = Instant::now();
    assert_eq!(
        a.lookup("13812345678", Utc::now()).await,
        Lookup::Unavailable
    );
    assert!(!a.save("13812345678", &ctx()).await);
    assert!(
        started.elapsed() < TIMEOUT * 10,
        "outage must not hold a call: {:?}",
        started.elapsed()
    );
    let metrics = voicenav::observe::metrics_handle().render();
    assert!(
        metrics.contains("voicenav_continuity_unavailable_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("voicenav_continuity_lookups_total{result=\"unavailable\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn redis_down_at_start_then_back() {
    let bin = require_tool!("redis-server");
    let port = common::free_port();
    let n = node(
        &format!("redis://127.0.0.1:{port}/"),
        Duration::from_secs(600),
    );
    let started = Instant::now();
    assert_eq!(
        n.lookup("13812345678", Utc::now()).await,
        Lookup::Unavailable
    );
    assert_eq!(
        n.lookup("13812345678", Utc::now()).await,
        Lookup::Unavailable,
        "fails fast after a failure"
    );
    assert!(started.elapsed() < TIMEOUT * 10, "{:?}", started.elapsed());
    let _redis = Redis::start_on(&bin, port);
    tokio::time::sleep(RETRY_AFTER + Duration::from_millis(100)).await;
    assert!(
        n.save("13812345678", &ctx()).await,
        "used again once Redis is back"
    );
    assert!(matches!(
        n.lookup("13812345678", Utc::now()).await,
        Lookup::Found(_)
    ));
}
