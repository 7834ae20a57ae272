//! The Redis context store, for several voicenav nodes behind Kamailio: a caller who called
//! node A can resume on node B. Keys are `voicenav:resume:<sha256 hex>`, values JSON,
//! written with `SET … PX <window>` so Redis expires them.
//!
//! Connection: the `redis` crate's [`ConnectionManager`] (one multiplexed connection shared
//! by all calls, reconnecting by itself) with a connect timeout and a response timeout. It is
//! created lazily on first use, so a node starts while Redis is down. After a failed connect
//! the store answers `Unavailable` at once for [`RETRY_AFTER`] instead of making every call
//! wait for another connect timeout; only one task connects at a time.

use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{AniKey, ContextStore, ResumeContext, StoreError, StoreFuture};

/// How long after a failed connect the store fails fast instead of connecting again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

const PREFIX: &str = "voicenav:resume:";

pub struct RedisStore {
    client: redis::Client,
    timeout: Duration,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    last_failure: StdMutex<Option<Instant>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    /// A store for `url` (`redis://host:port/db`); nothing connects yet. `timeout` bounds
    /// connecting and each command.
    pub fn new(url: &str, timeout: Duration) -> Result<RedisStore, redis::RedisError> {
        let client = redis::Client::open(url)?;
        Ok(RedisStore {
            client,
            timeout,
            conn: tokio::sync::Mutex::new(None),
            last_failure: StdMutex::new(None),
        })
    }

    fn key(key: &AniKey) -> String {
        format!("{PREFIX}{}", key.as_str())
    }

    /// The shared connection, connecting if needed (bounded; fails fast after a failure).
    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let Ok(mut guard) = self.conn.try_lock() else {
            // Another task is connecting right now: do not queue calls behind it.
            return Err(StoreError::Unavailable("connecting".into()));
        };
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        if let Ok(last) = self.last_failure.lock() {
            if last.is_some_and(|t| t.elapsed() < RETRY_AFTER) {
                return Err(StoreError::Unavailable("recently unreachable".into()));
            }
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            .set_number_of_retries(0)
            .set_max_delay(self.timeout.as_millis() as u64);
        let attempt = tokio::time::timeout(
            self.timeout * 2,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await;
        match attempt {
            Ok(Ok(c)) => {
                *guard = Some(c.clone());
                if let Ok(mut last) = self.last_failure.lock() {
                    *last = None;
                }
                Ok(c)
            }
            Ok(Err(e)) => {
                self.failed();
                Err(unavailable(e))
            }
            Err(_) => {
                self.failed();
                Err(StoreError::Unavailable("connect timed out".into()))
            }
        }
    }

    fn failed(&self) {
        if let Ok(mut last) = self.last_failure.lock() {
            *last = Some(Instant::now());
        }
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, StoreError> {
        let mut conn = self.connection().await?;
        match tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e))
                if e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal() =>
            {
                Err(unavailable(e))
            }
            Ok(Err(e)) => Err(StoreError::Backend(e.to_string())),
            Err(_) => Err(StoreError::Unavailable("command timed out".into())),
        }
    }
}

impl ContextStore for RedisStore {
    fn put<'a>(
        &'a self,
        key: &'a AniKey,
        ctx: &'a ResumeContext,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let value =
                serde_json::to_string(ctx).map_err(|e| StoreError::Backend(e.to_string()))?;
            let ms = ttl.as_millis().max(1) as u64;
            let mut cmd = redis::cmd("SET");
            cmd.arg(Self::key(key)).arg(value).arg("PX").arg(ms);
            self.run::<()>(cmd).await
        })
    }

    fn get<'a>(&'a self, key: &'a AniKey) -> StoreFuture<'a, Option<ResumeContext>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("GET");
            cmd.arg(Self::key(key));
            let raw: Option<String> = self.run(cmd).await?;
            raw.map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Decode(e.to_string())))
                .transpose()
        })
    }

    fn remove<'a>(&'a self, key: &'a AniKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(Self::key(key));
            self.run::<()>(cmd).await
        })
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}
