//! The caller's voice path offline, for `replay --script --audio`, `replay CALL.wav` and the
//! benchmarks: a `say` text is synthesised by espeak-ng (Mandarin voice), resampled to
//! 8 kHz, G.711-encoded and decoded as the line would, then the same 20 ms frames a call
//! carries go through the media endpointer (`media::vad`) into a recogniser stream.
//!
//! Two endpointers run side by side on the frames: the call's own (utterance end after
//! `end_silence_ms`, default 900 ms) and a short one (200 ms) whose end is only the
//! *pause* hint that lets the recogniser decode speculatively ([`Recognizer::pause`]).

use std::sync::Arc;

use crate::media::g711::Law;
use crate::media::vad::{Endpointer, VadConfig, VadEvent};
use crate::media::{resample, FRAME_SAMPLES};
use crate::tts::{Synthesizer, Voice};

use super::{AsrError, Bias, Engine, NoResult, Recognizer, Transcript};

/// Silence that counts as a pause (speculative decoding starts).
pub const PAUSE_MS: u32 = 200;

/// Errors of the voice path.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error(transparent)]
    Asr(#[from] AsrError),
    #[error(transparent)]
    Tts(#[from] crate::tts::TtsError),
    #[error("resampling: {0}")]
    Resample(String),
}

/// Text → line audio → endpointer → recogniser.
pub struct VoicePath {
    pub engine: Arc<dyn Engine>,
    pub synth: Arc<dyn Synthesizer>,
    pub voice: Voice,
    pub law: Law,
    pub vad: VadConfig,
}

impl VoicePath {
    /// The caller says `text`: what the recogniser makes of it through the line.
    pub fn say(&self, text: &str, bias: &Bias) -> Result<Transcript, VoiceError> {
        let pcm8k = self.line_audio(text)?;
        self.hear(&pcm8k, bias)
    }

    /// `text` as 8 kHz PCM after a G.711 round trip (what arrives from the line).
    pub fn line_audio(&self, text: &str) -> Result<Vec<i16>, VoiceError> {
        let audio = self.synth.synthesize(text, &self.voice)?;
        let pcm = resample::to_rate(&audio.samples, audio.rate, 8000)
            .map_err(|e| VoiceError::Resample(e.to_string()))?;
        Ok(self.law.decode(&self.law.encode(&pcm)))
    }

    /// Endpoints 8 kHz PCM (silence is appended, as a caller falls quiet) and recognises
    /// the first utterance; no utterance → an empty result with `Silence`.
    ///
    /// At a pause the utterance so far goes to a recogniser that may decode speculatively;
    /// if the caller resumes, that stream is dropped; at the real end its result is used
    /// when nothing was said after the pause, else the whole utterance is recognised.
    pub fn hear(&self, pcm8k: &[i16], bias: &Bias) -> Result<Transcript, VoiceError> {
        let mut endpoint = Endpointer::new(self.vad);
        let mut pause = Endpointer::new(VadConfig {
            end_silence_ms: PAUSE_MS,
            ..self.vad
        });
        let mut speculative: Option<Box<dyn Recognizer>> = None;
        let tail = vec![0i16; 8000 + self.vad.end_silence_ms as usize * 8];
        for frame in pcm8k
            .chunks(FRAME_SAMPLES)
            .chain(tail.chunks(FRAME_SAMPLES))
        {
            match pause.process(frame) {
                Some(VadEvent::SpeechEnd { pcm, .. }) if endpoint.in_speech() => {
                    let mut r = self.engine.start(8000, bias)?;
                    r.accept(&pcm)?;
                    r.pause();
                    speculative = Some(r);
                }
                Some(VadEvent::SpeechStart) => speculative = None,
                _ => {}
            }
            if let Some(VadEvent::SpeechEnd { pcm, .. }) = endpoint.process(frame) {
                let mut r = match speculative.take() {
                    Some(r) => r,
                    None => {
                        let mut r = self.engine.start(8000, bias)?;
                        r.accept(&pcm)?;
                        r
                    }
                };
                return Ok(r.finish().wait()?);
            }
        }
        Ok(Transcript::none(NoResult::Silence))
    }
}
