//! Breakpoint resume: a caller who hangs up (or is cut off) mid-flow and calls back from the
//! same number within the resume window (default 10 minutes) is offered to continue where
//! they left ("您上次咨询的是信用卡账单查询，继续请说'是'或按1").
//!
//! The call task saves a [`ResumeContext`] when a call ends without an outcome and looks it
//! up when a call starts, through [`Continuity`], which wraps a [`ContextStore`]; what to
//! do with what it found is the sans-IO [`offer::ResumeOffer`]. The stores:
//!
//! - [`embedded::EmbeddedStore`] (redb, one file in the data folder, nothing to start) for a
//!   single node — the default;
//! - [`redis_store::RedisStore`] (the `redis` crate's connection manager, multiplexed, with
//!   connect and response timeouts) when several nodes behind Kamailio share one Redis.
//!
//! Privacy: the key is `sha256(salt ‖ 0x00 ‖ normalised ANI)` ([`AniHasher`]) with a
//! per-deployment salt from the environment (never the raw ANI); the value holds the flow
//! version, node id, last scenario, the (masked) transcript and the time — nothing else.
//! Entries expire after the window (Redis `PX`; the embedded store checks the expiry on
//! read and sweeps expired entries).
//!
//! Never blocking a call: every operation of [`Continuity`] is bounded by a timeout; a store
//! that is down or slow makes the call go on without resume, counted in
//! `voicenav_continuity_unavailable_total{op}`.

pub mod embedded;
pub mod offer;
pub mod redis_store;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::observe::mask::{ani_user_part, mask_pii};

/// The resume window when the configuration sets none.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10 * 60);
/// How long a call waits for the context store at most, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
/// The environment variable holding the ANI salt, by default.
pub const DEFAULT_SALT_ENV: &str = "VOICENAV_CONTINUITY_SALT";

/// Where a caller was when the call broke off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeContext {
    /// Version of the flow the caller was in (a resume into a changed flow is refused).
    pub flow_version: String,
    /// The flow node to resume at.
    pub node: String,
    /// The last scenario understood, if any.
    pub scenario: Option<String>,
    /// What the caller said so far (recognised text, PII masked).
    pub transcript: Vec<String>,
    /// When the context was saved.
    pub saved_at: DateTime<Utc>,
}

impl ResumeContext {
    /// The offer to play: `您上次咨询的是{name}，继续请说'是'或按1，重新开始请说'否'或按2。`
    pub fn offer_prompt(&self, scenario_name: Option<&str>) -> String {
        match scenario_name {
            Some(name) => {
                format!("您上次咨询的是{name}，继续请说'是'或按1，重新开始请说'否'或按2。")
            }
            None => {
                "您上次的咨询还没有完成，继续请说'是'或按1，重新开始请说'否'或按2。".to_string()
            }
        }
    }

    /// Whether the context is still inside `window` at `now`.
    pub fn fresh(&self, now: DateTime<Utc>, window: Duration) -> bool {
        let age = now.signed_duration_since(self.saved_at);
        age >= chrono::Duration::zero() && age.to_std().is_ok_and(|a| a <= window)
    }

    /// A copy with the transcript masked (what is stored).
    pub fn masked(&self) -> ResumeContext {
        ResumeContext {
            transcript: self.transcript.iter().map(|t| mask_pii(t)).collect(),
            ..self.clone()
        }
    }
}

/// The caller's answer to the resume offer: key `1` or a yes word resumes, key `2` or a no
/// word starts fresh; anything else is no answer (`None`).
pub fn resume_answer(input: &str) -> Option<bool> {
    let t: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_ascii_punctuation())
        .collect();
    let t = t.trim_matches(|c: char| "，。！？、".contains(c));
    match t {
        "1" => return Some(true),
        "2" => return Some(false),
        _ => {}
    }
    const NO: [&str; 9] = [
        "不",
        "否",
        "不用",
        "不要",
        "不是",
        "重新",
        "不继续",
        "算了",
        "没有",
    ];
    const YES: [&str; 7] = ["是", "对", "好", "继续", "要", "可以", "行"];
    // A filler "嗯" alone or before a yes word is a yes; "嗯那个…" is not an answer.
    let t = match t.trim_start_matches('嗯') {
        "" if !t.is_empty() => return Some(true),
        rest => rest,
    };
    if NO.iter().any(|w| t.starts_with(w)) {
        Some(false)
    } else if YES.iter().any(|w| t.starts_with(w)) {
        Some(true)
    } else {
        None
    }
}

/// A hashed caller id: the only key the stores ever see.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AniKey(String);

impl AniKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Hashes caller ids with the deployment's salt.
#[derive(Clone)]
pub struct AniHasher {
    salt: Vec<u8>,
}

impl std::fmt::Debug for AniHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AniHasher { salt: <hidden> }")
    }
}

impl AniHasher {
    pub fn new(salt: impl Into<Vec<u8>>) -> AniHasher {
        AniHasher { salt: salt.into() }
    }

    /// The key of a caller id, or `None` for ids that do not identify a caller (anonymous,
    /// withheld, fewer than 5 digits) — those callers are never resumed.
    pub fn key(&self, ani: &str) -> Option<AniKey> {
        let number = normalise_ani(ani)?;
        let mut h = Sha256::new();
        h.update(&self.salt);
        h.update([0u8]);
        h.update(number.as_bytes());
        Some(AniKey(hex::encode(h.finalize())))
    }
}

/// The national form of a caller id: digits only, `+86`/`0086` removed (landlines get their
/// trunk `0` back), so `+86 138…`, `0086138…` and `138…` are one caller.
pub fn normalise_ani(ani: &str) -> Option<String> {
    let digits: String = ani_user_part(ani)
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect();
    let national = if let Some(rest) = digits.strip_prefix("0086") {
        rest.to_string()
    } else if digits.len() >= 12 && digits.starts_with("86") {
        digits[2..].to_string()
    } else {
        digits
    };
    let national =
        if national.len() >= 9 && !national.starts_with('1') && !national.starts_with('0') {
            format!("0{national}")
        } else {
            national
        };
    (national.len() >= 5).then_some(national)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("context store unavailable: {0}")]
    Unavailable(String),
    #[error("context store: {0}")]
    Backend(String),
    #[error("context store value: {0}")]
    Decode(String),
}

/// A boxed future of a store operation.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A key-value store of resume contexts with expiry.
pub trait ContextStore: Send + Sync {
    /// Stores `ctx` under `key`, expiring after `ttl`.
    fn put<'a>(
        &'a self,
        key: &'a AniKey,
        ctx: &'a ResumeContext,
        ttl: Duration,
    ) -> StoreFuture<'a, ()>;
    /// The unexpired context under `key`.
    fn get<'a>(&'a self, key: &'a AniKey) -> StoreFuture<'a, Option<ResumeContext>>;
    /// Forgets `key` (the caller resumed, declined, or finished).
    fn remove<'a>(&'a self, key: &'a AniKey) -> StoreFuture<'a, ()>;
    /// `embedded` or `redis` (for logs and metrics).
    fn backend(&self) -> &'static str;
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Found(ResumeContext),
    NotFound,
    /// The store could not answer in time; the call goes on without resume.
    Unavailable,
}

#[derive(Debug, thiserror::Error)]
pub enum ContinuityError {
    #[error("continuity store {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("continuity.redis_url `{url}`: {message}")]
    RedisUrl { url: String, message: String },
    #[error("continuity salt: {0}")]
    Salt(String),
}

/// The resume service a call task uses: hashing, window, bounded time, metrics.
#[derive(Clone)]
pub struct Continuity {
    store: Arc<dyn ContextStore>,
    hasher: AniHasher,
    window: Duration,
    timeout: Duration,
}

impl std::fmt::Debug for Continuity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Continuity")
            .field("backend", &self.store.backend())
            .field("window", &self.window)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Continuity {
    pub fn new(
        store: Arc<dyn ContextStore>,
        hasher: AniHasher,
        window: Duration,
        timeout: Duration,
    ) -> Self {
        Continuity {
            store,
            hasher,
            window,
            timeout,
        }
    }

    /// Builds the service the configuration asks for; `None` when resume is disabled
    /// (`continuity.resume_window_minutes: 0`). Nothing connects here: a Redis that is down
    /// at start-up only makes lookups `Unavailable` until it is back.
    pub fn from_config(cfg: &Config) -> Result<Option<Continuity>, ContinuityError> {
        let c = &cfg.raw.continuity;
        let minutes = c.resume_window_minutes.unwrap_or(10);
        if minutes == 0 {
            return Ok(None);
        }
        let window = Duration::from_secs(u64::from(minutes) * 60);
        let timeout = c
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_TIMEOUT);
        let data_dir = cfg
            .raw
            .paths
            .records
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cfg.raw.paths.records.clone());
        let salt_env = c.salt_env.as_deref().unwrap_or(DEFAULT_SALT_ENV);
        let salt = match std::env::var(salt_env) {
            Ok(s) if !s.is_empty() => s.into_bytes(),
            _ => {
                if c.redis_url.is_some() {
                    tracing::warn!(
                        env = salt_env,
                        "continuity: no salt in the environment; nodes sharing Redis must share one salt, or callers cannot resume across nodes"
                    );
                }
                local_salt(&data_dir.join("continuity.salt"))?
            }
        };
        let store: Arc<dyn ContextStore> = match &c.redis_url {
            Some(url) => Arc::new(redis_store::RedisStore::new(url, timeout).map_err(|e| {
                ContinuityError::RedisUrl {
                    url: url.clone(),
                    message: e.to_string(),
                }
            })?),
            None => {
                let path = c
                    .store_path
                    .clone()
                    .unwrap_or_else(|| data_dir.join("continuity.redb"));
                Arc::new(embedded::EmbeddedStore::open(&path)?)
            }
        };
        Ok(Some(Continuity::new(
            store,
            AniHasher::new(salt),
            window,
            timeout,
        )))
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// The resume context of a caller, if one was saved within the window.
    pub async fn lookup(&self, ani: &str, now: DateTime<Utc>) -> Lookup {
        let Some(key) = self.hasher.key(ani) else {
            return Lookup::NotFound;
        };
        let result = match tokio::time::timeout(self.timeout, self.store.get(&key)).await {
            Ok(Ok(Some(ctx))) if ctx.fresh(now, self.window) => Lookup::Found(ctx),
            Ok(Ok(_)) => Lookup::NotFound,
            Ok(Err(e)) => {
                self.unavailable("get", &e.to_string());
                Lookup::Unavailable
            }
            Err(_) => {
                self.unavailable("get", "timed out");
                Lookup::Unavailable
            }
        };
        let label = match result {
            Lookup::Found(_) => "found",
            Lookup::NotFound => "not_found",
            Lookup::Unavailable => "unavailable",
        };
        metrics::counter!("voicenav_continuity_lookups_total", "result" => label).increment(1);
        result
    }

    /// Saves where a caller was (transcript masked); `false` when the store was unavailable.
    pub async fn save(&self, ani: &str, ctx: &ResumeContext) -> bool {
        let Some(key) = self.hasher.key(ani) else {
            return false;
        };
        let ctx = ctx.masked();
        match tokio::time::timeout(self.timeout, self.store.put(&key, &ctx, self.window)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => self.unavailable("put", &e.to_string()),
            Err(_) => self.unavailable("put", "timed out"),
        }
    }

    /// Forgets a caller's context; `false` when the store was unavailable.
    pub async fn forget(&self, ani: &str) -> bool {
        let Some(key) = self.hasher.key(ani) else {
            return false;
        };
        match tokio::time::timeout(self.timeout, self.store.remove(&key)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => self.unavailable("remove", &e.to_string()),
            Err(_) => self.unavailable("remove", "timed out"),
        }
    }

    /// Counts and logs an unavailable store; always `false` (the operation did not happen).
    fn unavailable(&self, op: &'static str, why: &str) -> bool {
        metrics::counter!("voicenav_continuity_unavailable_total", "op" => op).increment(1);
        tracing::warn!(
            backend = self.store.backend(),
            op,
            error = why,
            "context store unavailable; call goes on without resume"
        );
        false
    }
}

/// This node's salt file (created with 32 random bytes, mode 0600, on first use).
fn local_salt(path: &Path) -> Result<Vec<u8>, ContinuityError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| ContinuityError::Salt(format!("{}: {e}", path.display()));
    if let Ok(s) = std::fs::read_to_string(path) {
        let s = s.trim();
        if !s.is_empty() {
            return Ok(s.as_bytes().to_vec());
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let salt = hex::encode(rand::random::<[u8; 32]>());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(salt.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    Ok(salt.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ani_forms_of_one_caller_share_a_key() {
        let h = AniHasher::new("pepper");
        let k = h.key("13812345678").unwrap();
        assert_eq!(h.key("+8613812345678"), Some(k.clone()));
        assert_eq!(h.key("sip:008613812345678@10.0.0.1"), Some(k.clone()));
        assert_ne!(h.key("13812345679"), Some(k.clone()));
        assert_eq!(h.key("+862088886666"), h.key("02088886666"));
        assert!(!k.as_str().contains("13812345678"));
        assert_eq!(k.as_str().len(), 64);
    }

    #[test]
    fn salt_changes_the_key_and_anonymous_has_none() {
        assert_ne!(
            AniHasher::new("a").key("13812345678"),
            AniHasher::new("b").key("13812345678")
        );
        let h = AniHasher::new("a");
        assert_eq!(h.key("anonymous"), None);
        assert_eq!(h.key("sip:anonymous@anonymous.invalid"), None);
        assert_eq!(h.key("1001"), None);
    }

    #[test]
    fn freshness_honours_the_window() {
        let now = Utc::now();
        let ctx = ResumeContext {
            flow_version: "v1".into(),
            node: "confirm".into(),
            scenario: Some("credit_card.bill_query".into()),
            transcript: vec!["我的卡号4111111111111111".into()],
            saved_at: now - chrono::Duration::minutes(9),
        };
        assert!(ctx.fresh(now, DEFAULT_WINDOW));
        assert!(!ctx.fresh(now + chrono::Duration::minutes(2), DEFAULT_WINDOW));
        assert!(
            !ctx.fresh(now - chrono::Duration::minutes(10), DEFAULT_WINDOW),
            "saved in the future"
        );
        assert_eq!(ctx.masked().transcript[0], "我的卡号************1111");
        assert!(ctx
            .offer_prompt(Some("信用卡账单查询"))
            .starts_with("您上次咨询的是信用卡账单查询，继续请说'是'或按1"));
    }

    #[test]
    fn resume_answers() {
        for yes in [
            "1",
            "是",
            "是的",
            "对",
            "继续",
            "好的",
            "嗯 继续。",
            "嗯",
            "嗯嗯",
        ] {
            assert_eq!(resume_answer(yes), Some(true), "{yes}");
        }
        for no in ["2", "不", "不用了", "否", "重新开始", "不是", "嗯不用"] {
            assert_eq!(resume_answer(no), Some(false), "{no}");
        }
        for other in ["", "3", "信用卡账单", "嗯那个"] {
            assert_eq!(resume_answer(other), None, "{other}");
        }
    }
}
