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
        // The utterance so far as the call endpointer will cut it: recent frames are kept
        // for its pre-roll (+ its 200 ms start window).
        let keep = (self.vad.preroll_ms as usize + 200) * 8;
        let mut recent: std::collections::VecDeque<i16> = std::collections::VecDeque::new();
        let mut utterance: Vec<i16> = Vec::new();
        let tail = vec![0i16; 8000 + self.vad.end_silence_ms as usize * 8];
        for frame in pcm8k
            .chunks(FRAME_SAMPLES)
            .chain(tail.chunks(FRAME_SAMPLES))
        {
            let event = endpoint.process(frame);
            if matches!(event, Some(VadEvent::SpeechStart)) {
                utterance = recent.iter().copied().collect();
            }
            if endpoint.in_speech() || matches!(event, Some(VadEvent::SpeechEnd { .. })) {
                utterance.extend_from_slice(frame);
            } else {
                recent.extend(frame.iter().copied());
                while recent.len() > keep {
                    recent.pop_front();
                }
            }
            match pause.process(frame) {
                Some(VadEvent::SpeechEnd { .. }) if endpoint.in_speech() => {
                    let mut r = self.engine.start(8000, bias)?;
                    r.accept(&utterance)?;
                    r.pause();
                    speculative = Some(r);
                }
                Some(VadEvent::SpeechStart) => speculative = None,
                _ => {}
            }
            if let Some(VadEvent::SpeechEnd { pcm, .. }) = event {
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

impl VoicePath {
    /// The voice path of `replay --audio`: the configured recogniser (Whisper by default),
    /// espeak-ng's Mandarin voice, A-law (the law of Chinese trunks), default endpointing.
    pub fn from_config(cfg: &crate::config::AsrConfig) -> Result<VoicePath, AsrError> {
        let engine = super::load_engine(cfg)?.ok_or(AsrError::Backend(
            "asr.backend is `none`: --audio needs a recogniser".into(),
        ))?;
        Ok(VoicePath {
            engine,
            synth: Arc::new(crate::tts::EspeakNg::default()),
            voice: Voice::mandarin(),
            law: Law::Alaw,
            vad: VadConfig::default(),
        })
    }

    /// A `say` turn as the dialog hears it: through the line and the recogniser, the
    /// n-best to the classifier. A recogniser error or no speech is a no-match (the
    /// classification of nothing), never the end of the call.
    pub fn classify(
        &self,
        text: &str,
        bias: &Bias,
        classifier: &dyn crate::nlu::IntentClassifier,
    ) -> (crate::nlu::Classification, Option<Transcript>) {
        match self.say(text, bias) {
            Ok(t) if !t.alternatives.is_empty() => (classifier.classify_nbest(&t.nbest()), Some(t)),
            Ok(t) => (classifier.classify(""), Some(t)),
            Err(e) => {
                tracing::warn!(error = %e, "recognition failed: no-match");
                (classifier.classify(""), None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::{Hypothesis, Partial, Pending};
    use crate::tts::{Audio, TtsError};

    /// A recogniser that reports how much audio it was given and whether it was paused.
    struct Counting {
        samples: usize,
        paused: bool,
    }
    impl Recognizer for Counting {
        fn accept(&mut self, pcm: &[i16]) -> Result<Option<Partial>, AsrError> {
            self.samples += pcm.len();
            Ok(None)
        }
        fn pause(&mut self) {
            self.paused = true;
        }
        fn finish(&mut self) -> Pending {
            let text = format!(
                "{}{}",
                self.samples,
                if self.paused { " speculative" } else { "" }
            );
            Pending::ready(Ok(Transcript {
                alternatives: vec![Hypothesis {
                    text,
                    confidence: 1.0,
                }],
                ..Transcript::default()
            }))
        }
    }
    struct Fake;
    impl Engine for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn start(&self, _: u32, _: &Bias) -> Result<Box<dyn Recognizer>, AsrError> {
            Ok(Box::new(Counting {
                samples: 0,
                paused: false,
            }))
        }
    }
    struct NoTts;
    impl Synthesizer for NoTts {
        fn synthesize(&self, _: &str, _: &Voice) -> Result<Audio, TtsError> {
            Err(TtsError::BadOutput("unused"))
        }
        fn id(&self) -> String {
            "none".into()
        }
    }

    fn path() -> VoicePath {
        VoicePath {
            engine: Arc::new(Fake),
            synth: Arc::new(NoTts),
            voice: Voice::mandarin(),
            law: Law::Alaw,
            vad: VadConfig::default(),
        }
    }

    /// Noise bursts at −20 dBFS stand in for speech (the endpointer only needs energy
    /// spread above 200 Hz).
    fn speech(ms: usize, seed: &mut u32) -> Vec<i16> {
        (0..ms * 8)
            .map(|_| {
                *seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                ((*seed >> 16) as i16 as f32 * 0.1) as i16
            })
            .collect()
    }

    fn heard(pcm: &[i16]) -> (usize, bool) {
        let t = path().hear(pcm, &Bias::open()).expect("hear");
        let text = t.text().to_string();
        let n = text
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("count");
        (n, text.ends_with("speculative"))
    }

    #[test]
    fn the_pause_hint_decodes_the_whole_utterance_and_is_used_at_the_end() {
        let mut seed = 1;
        let mut pcm = vec![0i16; 4000];
        pcm.extend(speech(1000, &mut seed));
        let (n, spec) = heard(&pcm);
        assert!(spec, "the speculative stream should give the result");
        assert!(
            (8000..=8000 + 8 * (300 + 200 + 200 + 40)).contains(&n),
            "{n} samples"
        );
    }

    #[test]
    fn a_caller_who_resumes_after_a_pause_is_recognised_in_full() {
        let mut seed = 7;
        let mut pcm = vec![0i16; 4000];
        pcm.extend(speech(1000, &mut seed));
        pcm.extend(vec![0i16; 8 * 400]); // 400 ms gap: pause hint, not the end
        pcm.extend(speech(1000, &mut seed));
        let (n, _) = heard(&pcm);
        assert!(
            n >= 8 * 2400,
            "only {n} samples reached the recogniser: the first part was lost"
        );
    }

    #[test]
    fn silence_alone_is_no_utterance() {
        let t = path().hear(&[0i16; 16_000], &Bias::open()).expect("hear");
        assert_eq!(t.reason, Some(NoResult::Silence));
    }
}
