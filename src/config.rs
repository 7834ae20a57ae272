//! Server configuration (`sip-config/voicenav.yaml`), in two phases: [`RawConfig`] is the
//! YAML as written (serde, unknown keys rejected, errors as `file:line:col`), and
//! [`Config::load`] resolves it: relative paths against the config file's folder, `~`
//! expanded, secrets taken from the environment.
//!
//! Secrets never need to sit in the YAML: a trunk's `password_env` names an environment
//! variable, and `VOICENAV_TRUNK_<NAME>_PASSWORD` overrides any password.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::routing::Queue;
use crate::yaml::{self, Diagnostic};

/// The embedded default configuration file, relative to the repository root.
pub const DEFAULT_CONFIG: &str = "sip-config/voicenav.yaml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub http: HttpConfig,
    #[serde(default)]
    pub asr: AsrConfig,
    #[serde(default)]
    pub tts: TtsConfig,
    pub paths: PathsConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Queue id → SIP URI the caller is transferred to (REFER's Refer-To).
    #[serde(default)]
    pub queues: BTreeMap<Queue, String>,
    #[serde(default)]
    pub trunks: Vec<TrunkConfig>,
    #[serde(default)]
    pub continuity: ContinuityConfig,
    /// Per-call timers of the call task (`src/call.rs`).
    #[serde(default)]
    pub call: CallConfig,
}

/// Timers of one call (issue 10 §9): how long the call task waits before it ends or
/// recovers a call that went wrong.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallConfig {
    /// Seconds without RTP from the caller (not on hold) before the call is ended.
    #[serde(default = "default_rtp_timeout")]
    pub rtp_timeout_secs: f64,
    /// Seconds a recognition may take before it counts as no-match.
    #[serde(default = "default_recognition_timeout")]
    pub recognition_timeout_secs: f64,
    /// Longest call in seconds.
    #[serde(default = "default_max_call")]
    pub max_call_secs: f64,
    /// Name of this node in call records (several nodes behind a dispatcher).
    #[serde(default)]
    pub node: Option<String>,
}

impl Default for CallConfig {
    fn default() -> Self {
        CallConfig {
            rtp_timeout_secs: default_rtp_timeout(),
            recognition_timeout_secs: default_recognition_timeout(),
            max_call_secs: default_max_call(),
            node: None,
        }
    }
}

fn default_rtp_timeout() -> f64 {
    20.0
}
fn default_recognition_timeout() -> f64 {
    10.0
}
fn default_max_call() -> f64 {
    1800.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// UDP listen addresses.
    #[serde(default)]
    pub udp: Vec<SocketAddr>,
    /// TCP listen addresses.
    #[serde(default)]
    pub tcp: Vec<SocketAddr>,
    /// Address put in Contact/Via/SDP when it differs from the listen address (NAT, SBC).
    #[serde(default)]
    pub advertised_address: Option<String>,
    /// User part / display of our Contact.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// RFC 3261 timer T1 in milliseconds (T2 = 8·T1, T4 = 10·T1; Timer H = 64·T1). Only
    /// tests lower it (a lost ACK then ends in seconds, not 32 s).
    #[serde(default = "default_t1_ms")]
    pub timer_t1_ms: u64,
    /// Milliseconds between 180 Ringing and 200 OK when `serve` answers a call (a caller
    /// may CANCEL in between).
    #[serde(default = "default_answer_delay_ms")]
    pub answer_delay_ms: u64,
    /// Digest algorithms offered when an inbound INVITE is challenged, in order of
    /// preference (RFC 7616): `SHA-256`, `MD5`, `SHA-256-sess`, `MD5-sess`.
    #[serde(default = "default_digest_algorithms")]
    pub digest_algorithms: Vec<String>,
}

fn default_digest_algorithms() -> Vec<String> {
    vec!["SHA-256".into(), "MD5".into()]
}

fn default_t1_ms() -> u64 {
    500
}

fn default_answer_delay_ms() -> u64 {
    300
}

fn default_user_agent() -> String {
    format!("voicenav/{}", env!("CARGO_PKG_VERSION"))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtpConfig {
    pub port_min: u16,
    pub port_max: u16,
    /// Jitter-buffer depth in milliseconds.
    #[serde(default = "default_jitter_ms")]
    pub jitter_ms: u32,
}

fn default_jitter_ms() -> u32 {
    60
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of the observability endpoint (/healthz, /readyz, /metrics).
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AsrBackend {
    #[default]
    Whisper,
    Vosk,
    /// Keypad-only: no recogniser.
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsrConfig {
    #[serde(default)]
    pub backend: AsrBackend,
    /// Folder of the Whisper CTranslate2 model (model.bin, config.json, tokenizer.json …).
    #[serde(default = "default_whisper_model")]
    pub whisper_model: PathBuf,
    /// Folder of a Vosk model.
    #[serde(default = "default_vosk_model")]
    pub vosk_model: PathBuf,
    /// Recognition worker threads (0 = number of cores).
    #[serde(default)]
    pub workers: usize,
    /// Whisper beam size (1 = greedy).
    #[serde(default = "default_beam")]
    pub beam_size: usize,
    /// Whisper encoder window: `full` (30 s, as trained) or `fit` (utterance + 1 s, ≥ 10 s;
    /// the default for calls: half the CPU for +1 CER point, docs/BENCHMARKS.md `## speech`).
    #[serde(default = "default_window")]
    pub window: String,
    /// Start decoding on a short pause; discarded if the caller resumes.
    #[serde(default = "yes_asr")]
    pub speculative: bool,
    /// How long a listen waits for a free recogniser before degrading to keypad (ms).
    #[serde(default = "default_asr_wait")]
    pub max_wait_ms: u64,
}

fn default_beam() -> usize {
    5
}
fn default_window() -> String {
    "fit".into()
}
fn yes_asr() -> bool {
    true
}
fn default_asr_wait() -> u64 {
    500
}

impl Default for AsrConfig {
    fn default() -> Self {
        AsrConfig {
            backend: AsrBackend::default(),
            whisper_model: default_whisper_model(),
            vosk_model: default_vosk_model(),
            workers: 0,
            beam_size: default_beam(),
            window: default_window(),
            speculative: true,
            max_wait_ms: default_asr_wait(),
        }
    }
}

/// Where `scripts/setup.sh` installs models: `$VOICENAV_DATA`, else ~/.local/share/voicenav.
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VOICENAV_DATA") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".local/share/voicenav")
}

fn default_whisper_model() -> PathBuf {
    data_dir().join("models/whisper-base")
}

fn default_vosk_model() -> PathBuf {
    data_dir().join("models/vosk-model-small-cn")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtsConfig {
    /// espeak-ng voice for Mandarin prompts (Debian's `cmn` reads Hanzi as English).
    #[serde(default = "default_voice")]
    pub voice: String,
    /// Voice for Cantonese-area callers.
    #[serde(default = "default_yue_voice")]
    pub cantonese_voice: String,
    /// Words per minute for normal prompts.
    #[serde(default = "default_rate")]
    pub rate: u32,
    /// Prompt cache folder (ready G.711 frames by content hash).
    #[serde(default = "default_prompt_cache")]
    pub cache_dir: PathBuf,
}

impl Default for TtsConfig {
    fn default() -> Self {
        TtsConfig {
            voice: default_voice(),
            cantonese_voice: default_yue_voice(),
            rate: default_rate(),
            cache_dir: default_prompt_cache(),
        }
    }
}

fn default_voice() -> String {
    "cmn-latn-pinyin".into()
}
fn default_yue_voice() -> String {
    "yue".into()
}
fn default_rate() -> u32 {
    160
}
fn default_prompt_cache() -> PathBuf {
    data_dir().join("prompt-cache")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsConfig {
    /// Dialog flows and the scenario catalogue (flows/catalog/).
    pub flows: PathBuf,
    /// Grammars and lexicons (dialect lexicon, yes/no words, compliance phrases).
    pub grammars: PathBuf,
    /// Daily JSONL call records.
    pub records: PathBuf,
    /// Stereo WAV recordings (when `limits.record_calls` is on).
    pub recordings: PathBuf,
    /// Senior caller list (one ANI per line).
    pub seniors: PathBuf,
    /// Dialect areas by ANI prefix.
    pub dialect_areas: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Ceiling of concurrent calls; above it new INVITEs get 503 + Retry-After.
    #[serde(default = "default_max_calls")]
    pub max_calls: usize,
    /// Ceiling of new calls per second.
    #[serde(default = "default_max_cps")]
    pub max_calls_per_second: u32,
    /// Record both directions of every call to a stereo WAV.
    #[serde(default)]
    pub record_calls: bool,
    /// Seconds a draining server lets calls finish after SIGTERM before sending BYE.
    #[serde(default = "default_drain")]
    pub shutdown_grace_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_calls: default_max_calls(),
            max_calls_per_second: default_max_cps(),
            record_calls: false,
            shutdown_grace_secs: default_drain(),
        }
    }
}

fn default_max_calls() -> usize {
    600
}
fn default_max_cps() -> u32 {
    400
}
fn default_drain() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    pub name: String,
    /// Registrar to REGISTER with (host:port), if the carrier wants registration.
    #[serde(default)]
    pub registrar: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// Environment variable holding the password (never the password itself).
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default = "default_expires")]
    pub expires: u32,
    /// Source networks allowed to send INVITEs without a challenge.
    #[serde(default)]
    pub allow: Vec<ipnet::IpNet>,
    /// Users that may authenticate inbound INVITEs by digest (passwords from env).
    #[serde(default)]
    pub inbound_users: Vec<InboundUser>,
    /// Whether the trunk supports REFER; without it transfers use a 3xx/re-INVITE.
    #[serde(default = "yes")]
    pub refer: bool,
}

fn default_expires() -> u32 {
    3600
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundUser {
    pub username: String,
    pub password_env: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContinuityConfig {
    /// Minutes within which a caller who calls back may resume (0 disables).
    #[serde(default)]
    pub resume_window_minutes: Option<u32>,
    /// Redis URL for a context store shared by several nodes; embedded store when absent.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// File of the embedded store (default: `continuity.redb` beside the records folder).
    #[serde(default)]
    pub store_path: Option<PathBuf>,
    /// Environment variable holding the salt of the hashed caller ids (default
    /// `VOICENAV_CONTINUITY_SALT`); nodes sharing Redis must share the salt.
    #[serde(default)]
    pub salt_env: Option<String>,
    /// Milliseconds a call waits for the context store at most (default 250).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// A resolved configuration: paths absolute, secrets read.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub raw: RawConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Yaml(#[from] Diagnostic),
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
}

impl Config {
    /// Loads and resolves `file`.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = yaml::load(file)?;
        Config::resolve(file, raw)
    }

    fn resolve(file: &Path, mut raw: RawConfig) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            file: file.to_path_buf(),
            message,
        };
        if raw.rtp.port_min > raw.rtp.port_max || raw.rtp.port_min % 2 == 1 {
            return Err(invalid(format!(
                "rtp: port_min ({}) must be even and not above port_max ({})",
                raw.rtp.port_min, raw.rtp.port_max
            )));
        }
        if raw.sip.udp.is_empty() && raw.sip.tcp.is_empty() {
            return Err(invalid(
                "sip: at least one udp or tcp listen address is needed".into(),
            ));
        }
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        // Paths in the file are relative to the repository root when the config sits in
        // sip-config/, else relative to the config file's own folder.
        let root = if base.file_name().is_some_and(|n| n == "sip-config") {
            base.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            base
        };
        let fix = |p: &mut PathBuf| *p = resolve_path(&root, p);
        fix(&mut raw.paths.flows);
        fix(&mut raw.paths.grammars);
        fix(&mut raw.paths.records);
        fix(&mut raw.paths.recordings);
        fix(&mut raw.paths.seniors);
        fix(&mut raw.paths.dialect_areas);
        fix(&mut raw.asr.whisper_model);
        fix(&mut raw.asr.vosk_model);
        fix(&mut raw.tts.cache_dir);
        if let Some(p) = raw.continuity.store_path.as_mut() {
            fix(p);
        }
        Ok(Config {
            file: file.to_path_buf(),
            raw,
        })
    }

    /// The password of a trunk or inbound user: `VOICENAV_TRUNK_<NAME>_PASSWORD` first, then
    /// the variable named by `password_env`.
    pub fn secret(trunk: &str, password_env: Option<&str>) -> Option<String> {
        let key = format!(
            "VOICENAV_TRUNK_{}_PASSWORD",
            trunk.to_uppercase().replace('-', "_")
        );
        std::env::var(key)
            .ok()
            .or_else(|| password_env.and_then(|v| std::env::var(v).ok()))
    }

    /// The SIP URI of a queue (Refer-To); a sensible local default when unconfigured.
    pub fn queue_uri(&self, queue: Queue) -> String {
        self.raw
            .queues
            .get(&queue)
            .cloned()
            .unwrap_or_else(|| format!("sip:{}@127.0.0.1:5080", queue.as_str()))
    }
}

/// Expands `~/` and makes a relative path absolute against `root`.
pub fn resolve_path(root: &Path, p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/sip-config/voicenav.yaml"
        ))
        .unwrap()
    }

    #[test]
    fn shipped_config_loads() {
        let cfg = Config::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/sip-config/voicenav.yaml"
        )))
        .unwrap();
        assert_eq!(cfg.raw.sip.udp[0].port(), 5060);
        assert!(cfg.raw.paths.flows.is_absolute());
        assert!(cfg.raw.paths.flows.ends_with("flows"));
    }

    #[test]
    fn typo_key_is_an_error_with_position() {
        let text = sample().replacen("max_calls:", "max_cals:", 1);
        let line = text.lines().position(|l| l.contains("max_cals:")).unwrap() as u64 + 1;
        let err = yaml::parse::<RawConfig>(Path::new("v.yaml"), &text).unwrap_err();
        assert_eq!(err.pos.line, line, "{err}");
        assert!(err.message.contains("max_cals"), "{err}");
    }

    #[test]
    fn wrong_type_is_an_error_with_position() {
        let text = sample().replacen("port_min: 20000", "port_min: twenty", 1);
        let line = text
            .lines()
            .position(|l| l.contains("port_min: twenty"))
            .unwrap() as u64
            + 1;
        let err = yaml::parse::<RawConfig>(Path::new("v.yaml"), &text).unwrap_err();
        assert_eq!(err.pos.line, line, "{err}");
    }

    #[test]
    fn password_comes_from_environment() {
        std::env::set_var("VOICENAV_TEST_PW_X", "s3cret");
        assert_eq!(
            Config::secret("nope", Some("VOICENAV_TEST_PW_X")).as_deref(),
            Some("s3cret")
        );
        assert_eq!(Config::secret("nope", None), None);
    }
}
