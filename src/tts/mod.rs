//! Speaking to the caller: the [`Synthesizer`] trait, the espeak-ng backend ([`espeak`]),
//! and the [`cache::PromptCache`] of ready 20 ms G.711 frames.
//!
//! A prompt is either a recorded WAV (what real hotlines use for fixed prompts; any rate
//! and channel count, resampled) or text spoken by espeak-ng's command-line tool
//! (GPL-3.0, so voicenav runs it as a separate process and never links it): voice
//! `cmn-latn-pinyin` for Mandarin (Debian's `cmn` reads Hanzi as English), `yue` for
//! Cantonese-area callers, speaking rate per node (slower on the elderly lane). Audio is
//! resampled to 8 kHz and G.711-encoded into 160-byte frames (20 ms).
//!
//! The `tts`/tts-rs crate is not used: it only drives the platform's sound output and
//! cannot hand back a buffer to send over RTP.

pub mod cache;
pub mod espeak;

use std::path::PathBuf;

pub use cache::{PromptCache, PromptFrames};
pub use espeak::EspeakNg;

/// Errors of the synthesisers and the prompt cache.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("espeak-ng could not be run ({0}); install it: apt-get install espeak-ng")]
    Spawn(std::io::Error),
    #[error("espeak-ng failed: {0}")]
    Failed(String),
    #[error("espeak-ng did not finish within {0} s")]
    Timeout(u64),
    #[error("espeak-ng output is not a WAV stream: {0}")]
    BadOutput(&'static str),
    #[error("prompt recording {path}: {reason}")]
    Recording { path: PathBuf, reason: String },
    #[error("prompt cache {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("resampling failed: {0}")]
    Resample(String),
}

/// Synthesised audio: mono 16-bit PCM at `rate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub rate: u32,
    pub samples: Vec<i16>,
}

/// How to speak a text prompt.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Voice {
    /// espeak-ng voice name (`cmn-latn-pinyin`, `yue`, `ko`, …).
    pub name: String,
    /// Words per minute (espeak-ng `-s`; its default is 175).
    pub rate: u32,
}

impl Voice {
    pub fn new(name: impl Into<String>, rate: u32) -> Voice {
        Voice {
            name: name.into(),
            rate,
        }
    }
    /// Mandarin at espeak-ng's normal rate.
    pub fn mandarin() -> Voice {
        Voice::new("cmn-latn-pinyin", 160)
    }
}

/// Turns text into audio.
pub trait Synthesizer: Send + Sync {
    /// Speaks `text` with `voice`.
    fn synthesize(&self, text: &str, voice: &Voice) -> Result<Audio, TtsError>;
    /// A name and version for cache keys (output changes when it changes).
    fn id(&self) -> String;
}

/// What a prompt is made of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PromptSource {
    /// Spoken by the synthesiser.
    Text { text: String, voice: Voice },
    /// A recorded WAV file.
    Recording(PathBuf),
}
