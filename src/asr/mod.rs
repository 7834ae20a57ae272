//! Speech recognition: the [`Recognizer`] trait every backend implements, the shared
//! result types, per-listen-node biasing ([`bias`]), and the bounded recognition
//! [`pool`] that keeps decoding off tokio's worker threads.
//!
//! Backends:
//! - [`whisper`] — OpenAI Whisper (base, multilingual) through CTranslate2 (`ct2rs`), with
//!   voicenav's own reference log-mel front end ([`mel`]), language fixed to `zh`,
//!   Simplified output and guards ([`text`]) against Whisper's known failures.
//! - [`vosk`] — Kaldi/Vosk streaming recogniser (`vosk` crate over libvosk), true partials,
//!   grammar mode swapped per listen node with `vosk_recognizer_set_grm`.
//!
//! # Contract
//! A listen opens a stream with [`Engine::start`] (sample rate 8000 or 16000, the node's
//! [`bias::Bias`]); the driver feeds frames as they arrive with [`Recognizer::accept`]
//! (which may return a partial); on a short pause it calls [`Recognizer::pause`] so a
//! backend may decode speculatively; when the endpointer declares the end of the
//! utterance it calls [`Recognizer::finish`], which hands back a [`Pending`] result
//! computed on the pool. The final [`Transcript`] carries an n-best list with confidences
//! (best first), or no hypothesis and a [`NoResult`] reason.

pub mod bias;
pub mod mel;
pub mod pool;
pub mod text;
pub mod transcribe;
pub mod voice;
#[cfg(feature = "vosk")]
pub mod vosk;
#[cfg(feature = "whisper")]
pub mod whisper;

use std::time::Duration;

use serde::Serialize;

pub use bias::Bias;
pub use pool::{AsrPool, Pending};

/// Errors of the recognisers.
#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    #[error("model missing or unreadable at {path}: {reason} (run `bash scripts/setup.sh`; `voicenav doctor` says more)")]
    Model { path: String, reason: String },
    #[error("unsupported sample rate {0} Hz (8000 or 16000)")]
    Rate(u32),
    #[error("recogniser failed: {0}")]
    Backend(String),
    #[error("recognition pool saturated: degrade to keypad")]
    Saturated,
    #[error("recognition job was lost (worker stopped)")]
    Lost,
    #[error("audio too long: {secs:.0} s (limit {limit:.0} s)")]
    TooLong { secs: f32, limit: f32 },
    #[error("backend `{0}` is not compiled into this build")]
    NotBuilt(&'static str),
}

/// One recognition hypothesis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hypothesis {
    pub text: String,
    /// 0..1; for Whisper the geometric-mean token probability, for Vosk its confidence.
    pub confidence: f32,
}

/// Why a final result carries no hypothesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoResult {
    /// The audio holds no speech-like energy (silence, line hiss).
    Silence,
    /// Energy but not speech: a tone (DTMF, dial tone), music, noise — or the model's
    /// no-speech probability was high with a low-probability decode.
    NotSpeech,
    /// The only output was a known hallucination or prompt recitation.
    Hallucination,
    /// Speech was heard but nothing matched (grammar mode `[unk]`).
    NoMatch,
}

/// Timings of one recognition, milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Audio length.
    pub audio_ms: u64,
    /// Feature extraction.
    pub features_ms: u64,
    /// Decoding (encoder + decoder).
    pub decode_ms: u64,
    /// From `finish()` to the result (what the caller waits for after the endpoint).
    pub after_end_ms: u64,
    /// Encoder window in 10 ms frames (Whisper only).
    pub window_frames: usize,
    /// Whether a speculative decode started on a pause was used.
    pub speculative: bool,
}

/// A final recognition result.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Transcript {
    /// n-best, best first; empty with `reason` set when nothing was recognised.
    pub alternatives: Vec<Hypothesis>,
    pub reason: Option<NoResult>,
    /// Guards that fired (for logs and benchmarks): `repetition`, `prompt_recitation`, ….
    pub guards: Vec<&'static str>,
    pub timings: Timings,
}

impl Transcript {
    /// The best text, or "" when nothing was recognised.
    pub fn text(&self) -> &str {
        self.alternatives
            .first()
            .map(|h| h.text.as_str())
            .unwrap_or("")
    }
    /// The best confidence, 0 when nothing was recognised.
    pub fn confidence(&self) -> f32 {
        self.alternatives
            .first()
            .map(|h| h.confidence)
            .unwrap_or(0.0)
    }
    /// An empty result with a reason.
    pub fn none(reason: NoResult) -> Transcript {
        Transcript {
            reason: Some(reason),
            ..Transcript::default()
        }
    }
    /// The n-best list as `nlu::IntentClassifier::classify_nbest` takes it.
    pub fn nbest(&self) -> Vec<(String, f32)> {
        self.alternatives
            .iter()
            .map(|h| (h.text.clone(), h.confidence))
            .collect()
    }
}

/// A partial (not final) result while audio still arrives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Partial {
    pub text: String,
}

/// One utterance being recognised. Frames are 16-bit PCM at the rate given to
/// [`Engine::start`], any length.
pub trait Recognizer: Send {
    /// Feeds audio as it arrives; may return a partial result.
    fn accept(&mut self, pcm: &[i16]) -> Result<Option<Partial>, AsrError>;
    /// The endpointer saw a short silence: the backend may start decoding what it has,
    /// to be used if the caller does not resume. Default: nothing.
    fn pause(&mut self) {}
    /// The utterance ended; the final result is computed on the pool.
    fn finish(&mut self) -> Pending;
}

/// A loaded model that opens recognition streams (shared by all calls).
pub trait Engine: Send + Sync {
    /// Backend name (`whisper`, `vosk`).
    fn name(&self) -> &'static str;
    /// Opens a stream for one utterance.
    fn start(&self, sample_rate: u32, bias: &Bias) -> Result<Box<dyn Recognizer>, AsrError>;
}

/// Longest utterance a listen accepts (a phone request is a few seconds).
pub const MAX_UTTERANCE: Duration = Duration::from_secs(30);

/// Converts 16-bit PCM to −1..1 floats.
pub fn pcm_to_f32(pcm: &[i16]) -> Vec<f32> {
    pcm.iter().map(|s| *s as f32 / 32768.0).collect()
}

/// Decoding options the config asks for.
#[cfg(feature = "whisper")]
pub fn whisper_options(cfg: &crate::config::AsrConfig) -> Result<whisper::DecodeOptions, AsrError> {
    use whisper::{DecodeOptions, Window};
    let window = match cfg.window.as_str() {
        "full" => Window::Full,
        "fit" => Window::FIT,
        other => {
            return Err(AsrError::Backend(format!(
                "asr.window `{other}`: use full or fit"
            )))
        }
    };
    Ok(DecodeOptions {
        beam_size: cfg.beam_size.max(1),
        window,
        speculative: cfg.speculative,
        ..DecodeOptions::default()
    })
}

/// The recogniser the config names, loaded once, on a pool of `asr.workers` threads (one
/// per core by default); `Ok(None)` for backend `none` (keypad-only flows). A missing or
/// broken model is an error the server reports before running keypad-only with a warning.
pub fn load_engine(
    cfg: &crate::config::AsrConfig,
) -> Result<Option<std::sync::Arc<dyn Engine>>, AsrError> {
    use crate::config::AsrBackend;
    let cores = num_cpus::get().max(1);
    let workers = if cfg.workers == 0 { cores } else { cfg.workers };
    match cfg.backend {
        AsrBackend::None => Ok(None),
        #[cfg(feature = "whisper")]
        AsrBackend::Whisper => {
            let wcfg = whisper::WhisperConfig {
                replicas: workers,
                threads: (cores / workers).max(1),
                ..whisper::WhisperConfig::new(&cfg.whisper_model)
            };
            let model = std::sync::Arc::new(whisper::WhisperModel::load(&wcfg)?);
            let pool = AsrPool::new(workers, Duration::from_millis(cfg.max_wait_ms));
            Ok(Some(std::sync::Arc::new(whisper::WhisperEngine {
                model,
                pool,
                options: whisper_options(cfg)?,
            })))
        }
        #[cfg(not(feature = "whisper"))]
        AsrBackend::Whisper => Err(AsrError::NotBuilt("whisper")),
        #[cfg(feature = "vosk")]
        AsrBackend::Vosk => Ok(Some(std::sync::Arc::new(vosk::VoskEngine::load(
            &cfg.vosk_model,
        )?))),
        #[cfg(not(feature = "vosk"))]
        AsrBackend::Vosk => Err(AsrError::NotBuilt("vosk")),
    }
}

/// [`load_engine`] for the server: a missing or broken model is logged as a warning with
/// the fix, and the server runs keypad-only flows (`None`).
pub fn load_engine_or_keypad(cfg: &crate::config::AsrConfig) -> Option<std::sync::Arc<dyn Engine>> {
    match load_engine(cfg) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "speech recognition unavailable: serving keypad-only flows (`voicenav doctor` says how to fix it)");
            None
        }
    }
}
