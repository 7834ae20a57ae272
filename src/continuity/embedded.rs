//! The embedded context store: one redb file (default `var/continuity.redb`), nothing to
//! start, for a single node. redb is a pure-Rust ACID key-value store; each put is one
//! durable transaction. Its calls block, so they run on tokio's blocking pool.
//!
//! Expiry: each value carries its expiry time; `get` treats an expired value as absent and
//! deletes it, and expired entries are swept when the store opens and every
//! [`SWEEP_EVERY`] puts. The clock is injectable so tests can move time.
//!
//! redb locks its file: a second process opening the same file gets an error (two nodes on
//! one machine each need their own file — or share Redis).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{AniKey, ContextStore, ContinuityError, ResumeContext, StoreError, StoreFuture};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("resume_contexts");

/// Sweep expired entries every this many puts.
pub const SWEEP_EVERY: u64 = 256;

/// A wall clock (injectable for tests).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

#[derive(Serialize, Deserialize)]
struct Entry {
    expires_at: DateTime<Utc>,
    ctx: ResumeContext,
}

pub struct EmbeddedStore {
    db: Arc<Database>,
    clock: Clock,
    puts: AtomicU64,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmbeddedStore")
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl EmbeddedStore {
    /// Opens (or creates) the store file, creating its folder, and sweeps expired entries.
    pub fn open(path: &Path) -> Result<EmbeddedStore, ContinuityError> {
        Self::open_with_clock(path, Arc::new(Utc::now))
    }

    pub fn open_with_clock(path: &Path, clock: Clock) -> Result<EmbeddedStore, ContinuityError> {
        let err = |m: String| ContinuityError::Open {
            path: path.to_path_buf(),
            message: m,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let db = Database::create(path).map_err(|e| err(e.to_string()))?;
        let store = EmbeddedStore {
            db: Arc::new(db),
            clock,
            puts: AtomicU64::new(0),
        };
        store.sweep_blocking().map_err(|e| err(e.to_string()))?;
        Ok(store)
    }

    /// Deletes every expired entry; how many were deleted.
    pub fn sweep_blocking(&self) -> Result<usize, StoreError> {
        sweep(&self.db, (self.clock)())
    }

    /// Number of entries (expired ones included), for tests and `doctor`.
    pub fn len_blocking(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        match tx.open_table(TABLE) {
            Ok(t) => t.len().map_err(backend),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(backend(e)),
        }
    }
}

fn sweep(db: &Database, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let tx = db.begin_write().map_err(backend)?;
    let removed = {
        let mut table = tx.open_table(TABLE).map_err(backend)?;
        let mut expired = Vec::new();
        for item in table.iter().map_err(backend)? {
            let (k, v) = item.map_err(backend)?;
            let dead = serde_json::from_slice::<Entry>(v.value())
                .map(|e| e.expires_at <= now)
                .unwrap_or(true);
            if dead {
                expired.push(k.value().to_string());
            }
        }
        for k in &expired {
            table.remove(k.as_str()).map_err(backend)?;
        }
        expired.len()
    };
    tx.commit().map_err(backend)?;
    Ok(removed)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(format!("store task: {e}")))?
}

impl ContextStore for EmbeddedStore {
    fn put<'a>(
        &'a self,
        key: &'a AniKey,
        ctx: &'a ResumeContext,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let now = (self.clock)();
            let ttl = chrono::Duration::from_std(ttl).map_err(backend)?;
            let value = serde_json::to_vec(&Entry {
                expires_at: now + ttl,
                ctx: ctx.clone(),
            })
            .map_err(backend)?;
            let db = self.db.clone();
            let key = key.as_str().to_string();
            let sweep_now =
                self.puts.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1;
            blocking(move || {
                let tx = db.begin_write().map_err(backend)?;
                {
                    let mut table = tx.open_table(TABLE).map_err(backend)?;
                    table
                        .insert(key.as_str(), value.as_slice())
                        .map_err(backend)?;
                }
                tx.commit().map_err(backend)?;
                if sweep_now {
                    sweep(&db, now)?;
                }
                Ok(())
            })
            .await
        })
    }

    fn get<'a>(&'a self, key: &'a AniKey) -> StoreFuture<'a, Option<ResumeContext>> {
        Box::pin(async move {
            let now = (self.clock)();
            let db = self.db.clone();
            let key = key.as_str().to_string();
            blocking(move || {
                let raw = {
                    let tx = db.begin_read().map_err(backend)?;
                    let table = match tx.open_table(TABLE) {
                        Ok(t) => t,
                        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                        Err(e) => return Err(backend(e)),
                    };
                    let v = table.get(key.as_str()).map_err(backend)?;
                    v.map(|v| v.value().to_vec())
                };
                let Some(raw) = raw else { return Ok(None) };
                match serde_json::from_slice::<Entry>(&raw) {
                    Ok(e) if e.expires_at > now => Ok(Some(e.ctx)),
                    Ok(_) => {
                        remove_key(&db, &key)?;
                        Ok(None)
                    }
                    Err(e) => {
                        remove_key(&db, &key)?;
                        Err(StoreError::Decode(e.to_string()))
                    }
                }
            })
            .await
        })
    }

    fn remove<'a>(&'a self, key: &'a AniKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let db = self.db.clone();
            let key = key.as_str().to_string();
            blocking(move || remove_key(&db, &key)).await
        })
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }
}

fn remove_key(db: &Database, key: &str) -> Result<(), StoreError> {
    let tx = db.begin_write().map_err(backend)?;
    {
        let mut table = tx.open_table(TABLE).map_err(backend)?;
        table.remove(key).map_err(backend)?;
    }
    tx.commit().map_err(backend)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::continuity::AniHasher;
    use std::sync::Mutex;

    fn ctx(now: DateTime<Utc>) -> ResumeContext {
        ResumeContext {
            flow_version: "v1".into(),
            node: "confirm_scenario".into(),
            scenario: Some("credit_card.bill_query".into()),
            transcript: vec!["我想查信用卡账单".into()],
            saved_at: now,
        }
    }

    fn fake_clock() -> (Clock, Arc<Mutex<DateTime<Utc>>>) {
        let t = Arc::new(Mutex::new(Utc::now()));
        let t2 = t.clone();
        (Arc::new(move || *t2.lock().unwrap()), t)
    }

    #[tokio::test]
    async fn put_get_remove_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let (clock, time) = fake_clock();
        let store = EmbeddedStore::open_with_clock(&dir.path().join("c.redb"), clock).unwrap();
        let key = AniHasher::new("s").key("13812345678").unwrap();
        let other = AniHasher::new("s").key("13900000000").unwrap();
        let now = *time.lock().unwrap();
        assert_eq!(store.get(&key).await.unwrap(), None);
        store
            .put(&key, &ctx(now), Duration::from_secs(600))
            .await
            .unwrap();
        assert_eq!(store.get(&key).await.unwrap(), Some(ctx(now)));
        assert_eq!(store.get(&other).await.unwrap(), None);
        // Nine minutes later still there; eleven minutes later gone (and deleted).
        *time.lock().unwrap() = now + chrono::Duration::minutes(9);
        assert!(store.get(&key).await.unwrap().is_some());
        *time.lock().unwrap() = now + chrono::Duration::minutes(11);
        assert_eq!(store.get(&key).await.unwrap(), None);
        assert_eq!(store.len_blocking().unwrap(), 0);
        // Remove.
        store
            .put(&key, &ctx(now), Duration::from_secs(600))
            .await
            .unwrap();
        store.remove(&key).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap(), None);
    }

    #[tokio::test]
    async fn survives_reopen_and_sweeps_expired_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/c.redb");
        let (clock, time) = fake_clock();
        let now = *time.lock().unwrap();
        let h = AniHasher::new("s");
        {
            let store = EmbeddedStore::open_with_clock(&path, clock.clone()).unwrap();
            store
                .put(
                    &h.key("13812345678").unwrap(),
                    &ctx(now),
                    Duration::from_secs(60),
                )
                .await
                .unwrap();
            store
                .put(
                    &h.key("13912345678").unwrap(),
                    &ctx(now),
                    Duration::from_secs(600),
                )
                .await
                .unwrap();
        }
        *time.lock().unwrap() = now + chrono::Duration::minutes(2);
        let store = EmbeddedStore::open_with_clock(&path, clock).unwrap();
        assert_eq!(
            store.len_blocking().unwrap(),
            1,
            "the expired entry was swept"
        );
        assert!(store
            .get(&h.key("13912345678").unwrap())
            .await
            .unwrap()
            .is_some());
    }

    #[test]
    fn second_open_of_the_same_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.redb");
        let _a = EmbeddedStore::open(&path).unwrap();
        let e = EmbeddedStore::open(&path).unwrap_err();
        assert!(e.to_string().contains("c.redb"), "{e}");
    }
}
