//! The Whisper backend: OpenAI Whisper (base, multilingual) converted for CTranslate2,
//! run through `ct2rs::sys::Whisper` with voicenav's own reference log-mel features
//! ([`super::mel`]). Language fixed to `zh`, output converted to Simplified characters.
//!
//! One [`WhisperModel`] is loaded per process and shared (`Arc`) by every call; CTranslate2
//! runs `replicas` model replicas (weights shared) of `threads` threads each, and decoding
//! jobs are queued on the [`AsrPool`], never on tokio workers.
//!
//! Measures, each switchable for the benchmark (`scripts/bench-asr`):
//! - **encoder window**: the reference pads every utterance to a 30 s window (3000
//!   frames); [`Window::Fit`] feeds only the utterance plus a margin of padding frames.
//! - **speculative decoding**: [`WhisperStream::pause`] starts a decode on a short silence;
//!   [`WhisperStream::finish`] reuses it when the caller did not resume.
//! - **guards**: an energy gate for silence; the model's no-speech probability with a
//!   low-probability decode; known hallucinated phrases; prompt recitation (decode again
//!   without the prompt); looping repetitions cut.
//! - **biasing**: the node's prompt and the n-best re-ranked against its phrases ([`Bias`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ct2rs::sys::{self, ComputeType, Config as Ct2Config, StorageView, WhisperOptions};
use ct2rs::tokenizers::hf;
use ct2rs::Tokenizer as _;

use crate::media::resample::Resampler;

use super::mel::{LogMel, FULL_WINDOW, HOP, N_MELS, SAMPLE_RATE};
use super::text::{collapse_repeats, is_known_hallucination, recites_prompt, to_simplified};
use super::{
    pcm_to_f32, AsrError, AsrPool, Bias, Engine, Hypothesis, NoResult, Partial, Pending,
    Recognizer, Timings, Transcript, MAX_UTTERANCE,
};

/// The files a CTranslate2 Whisper folder must hold.
pub const MODEL_FILES: [&str; 4] = [
    "model.bin",
    "config.json",
    "tokenizer.json",
    "vocabulary.txt",
];

/// How the model is loaded.
#[derive(Debug, Clone)]
pub struct WhisperConfig {
    pub model_dir: PathBuf,
    /// Model replicas (concurrent decodes).
    pub replicas: usize,
    /// Threads per replica.
    pub threads: usize,
    /// `int8` (default), `float32`, `int8_float32`, `int16`.
    pub compute: String,
}

impl WhisperConfig {
    pub fn new(model_dir: impl Into<PathBuf>) -> WhisperConfig {
        WhisperConfig {
            model_dir: model_dir.into(),
            replicas: 1,
            threads: 0,
            compute: "int8".into(),
        }
    }
}

/// Encoder window policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Always the 30 s window Whisper was trained on (3000 frames).
    Full,
    /// The utterance plus `margin` padding frames, at least `min` frames.
    Fit { margin: usize, min: usize },
}

impl Window {
    /// The shipped short window: the utterance plus 1 s of padding, at least 10 s.
    pub const FIT: Window = Window::Fit {
        margin: 100,
        min: 1000,
    };

    fn frames(self, samples: usize) -> usize {
        match self {
            Window::Full => FULL_WINDOW,
            Window::Fit { margin, min } => {
                let f = samples.div_ceil(HOP) + margin;
                let f = f.max(min).min(FULL_WINDOW);
                f + f % 2
            }
        }
    }
}

/// Which guards run (all on by default; the benchmark switches them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guards {
    pub silence: bool,
    pub no_speech: bool,
    pub hallucination: bool,
    pub recitation: bool,
    pub repetition: bool,
}

impl Default for Guards {
    fn default() -> Self {
        Guards {
            silence: true,
            no_speech: true,
            hallucination: true,
            recitation: true,
            repetition: true,
        }
    }
}

impl Guards {
    pub fn none() -> Guards {
        Guards {
            silence: false,
            no_speech: false,
            hallucination: false,
            recitation: false,
            repetition: false,
        }
    }
}

/// Decoding settings.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    pub beam_size: usize,
    /// n-best length (≤ beam size).
    pub nbest: usize,
    pub window: Window,
    pub guards: Guards,
    /// Decode speculatively on a pause (streams only).
    pub speculative: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            beam_size: 5,
            nbest: 3,
            window: Window::Full,
            guards: Guards::default(),
            speculative: true,
        }
    }
}

/// A loaded Whisper model (share it with `Arc`).
pub struct WhisperModel {
    whisper: sys::Whisper,
    tokenizer: hf::Tokenizer,
    mel: LogMel,
    dir: PathBuf,
}

impl std::fmt::Debug for WhisperModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperModel")
            .field("dir", &self.dir)
            .finish()
    }
}

/// Whether `dir` holds the files of a CTranslate2 Whisper model.
pub fn model_present(dir: &Path) -> bool {
    MODEL_FILES.iter().all(|f| dir.join(f).is_file())
}

/// Frame RMS (20 ms frames) of 16 kHz audio.
fn frame_rms(audio: &[f32]) -> Vec<f32> {
    audio
        .chunks(320)
        .map(|c| (c.iter().map(|x| x * x).sum::<f32>() / c.len().max(1) as f32).sqrt())
        .collect()
}

/// Peak 20 ms RMS below which audio counts as silence (≈ −50 dBFS).
const SILENCE_RMS: f32 = 0.003;
/// no-speech probability above which a low-probability decode is dropped.
const NO_SPEECH_PROB: f32 = 0.6;
/// ... and that low probability (mean token log-probability).
const LOW_LOGPROB: f32 = -1.0;

impl WhisperModel {
    /// Loads the model; a clear error when files are missing or broken.
    pub fn load(cfg: &WhisperConfig) -> Result<WhisperModel, AsrError> {
        let dir = &cfg.model_dir;
        let model_err = |reason: String| AsrError::Model {
            path: dir.display().to_string(),
            reason,
        };
        let missing: Vec<&str> = MODEL_FILES
            .iter()
            .copied()
            .filter(|f| !dir.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(model_err(format!("missing {}", missing.join(", "))));
        }
        let compute = match cfg.compute.as_str() {
            "int8" => ComputeType::INT8,
            "int8_float32" => ComputeType::INT8_FLOAT32,
            "int16" => ComputeType::INT16,
            "float32" => ComputeType::FLOAT32,
            other => return Err(model_err(format!("unknown compute type {other}"))),
        };
        let threads = if cfg.threads == 0 {
            num_cpus::get().max(1)
        } else {
            cfg.threads
        };
        let ct2 = Ct2Config {
            compute_type: compute,
            device_indices: vec![0; cfg.replicas.max(1)],
            num_threads_per_replica: threads,
            ..Ct2Config::default()
        };
        let whisper = sys::Whisper::new(dir, ct2).map_err(|e| model_err(e.to_string()))?;
        if whisper.n_mels() != N_MELS {
            return Err(model_err(format!(
                "model wants {} mel bands, voicenav computes {N_MELS}",
                whisper.n_mels()
            )));
        }
        let mut tokenizer = hf::Tokenizer::new(dir).map_err(|e| model_err(e.to_string()))?;
        tokenizer.disable_spacial_token();
        Ok(WhisperModel {
            whisper,
            tokenizer,
            mel: LogMel::new(),
            dir: dir.clone(),
        })
    }

    /// Recognises one utterance (16 kHz, −1..1, ≤ 30 s).
    pub fn recognize(
        &self,
        audio: &[f32],
        bias: &Bias,
        opts: &DecodeOptions,
    ) -> Result<Transcript, AsrError> {
        let started = Instant::now();
        let secs = audio.len() as f32 / SAMPLE_RATE as f32;
        let limit = MAX_UTTERANCE.as_secs_f32();
        if secs > limit + 0.01 {
            return Err(AsrError::TooLong { secs, limit });
        }
        let mut timings = Timings {
            audio_ms: (secs * 1000.0) as u64,
            ..Timings::default()
        };
        let rms = frame_rms(audio);
        let peak = rms.iter().cloned().fold(0.0f32, f32::max);
        if opts.guards.silence && peak < SILENCE_RMS {
            let mut t = Transcript::none(NoResult::Silence);
            t.guards.push("silence");
            t.timings = timings;
            return Ok(t);
        }
        let frames = opts.window.frames(audio.len());
        timings.window_frames = frames;
        let mut features = self.mel.compute(audio, frames);
        timings.features_ms = started.elapsed().as_millis() as u64;

        let prompt = bias.whisper_prompt();
        let mut guards = Vec::new();
        let mut out = self.decode(&mut features, frames, secs, prompt.as_deref(), opts)?;
        if opts.guards.recitation {
            if let (Some(p), Some(best)) = (&prompt, out.hyps.first()) {
                if recites_prompt(&best.text, p) {
                    guards.push("prompt_recitation");
                    out = self.decode(&mut features, frames, secs, None, opts)?;
                }
            }
        }
        timings.decode_ms = started.elapsed().as_millis() as u64 - timings.features_ms;

        if opts.guards.no_speech
            && out.no_speech_prob > NO_SPEECH_PROB
            && out.best_logprob < LOW_LOGPROB
        {
            guards.push("no_speech");
            return Ok(Transcript {
                reason: Some(NoResult::NotSpeech),
                guards,
                timings,
                ..Transcript::default()
            });
        }
        let mut alts = Vec::new();
        let max_chars = (2.0 + 9.0 * secs).ceil() as usize;
        for mut h in out.hyps {
            if opts.guards.hallucination && is_known_hallucination(&h.text) {
                if !guards.contains(&"hallucination") {
                    guards.push("hallucination");
                }
                continue;
            }
            if opts.guards.recitation {
                if let Some(p) = &prompt {
                    if recites_prompt(&h.text, p) {
                        continue;
                    }
                }
            }
            if opts.guards.repetition {
                let (t, cut) = collapse_repeats(&h.text, 2);
                let mut chars: Vec<char> = t.chars().collect();
                let too_long = chars.len() > max_chars;
                chars.truncate(max_chars);
                if cut || too_long {
                    if !guards.contains(&"repetition") {
                        guards.push("repetition");
                    }
                    h.text = chars.into_iter().collect();
                }
            }
            if !h.text.is_empty() && !alts.iter().any(|a: &Hypothesis| a.text == h.text) {
                alts.push(h);
            }
        }
        let alts = bias.rerank(alts);
        let reason = if alts.is_empty() {
            Some(if guards.is_empty() {
                NoResult::NotSpeech
            } else {
                NoResult::Hallucination
            })
        } else {
            None
        };
        timings.after_end_ms = started.elapsed().as_millis() as u64;
        Ok(Transcript {
            alternatives: alts,
            reason,
            guards,
            timings,
        })
    }

    /// Transcribes audio of any length by 30 s pieces (the `transcribe` command); the
    /// n-best list is kept only when the audio fits one piece.
    pub fn transcribe_long(
        &self,
        audio: &[f32],
        bias: &Bias,
        opts: &DecodeOptions,
    ) -> Result<Transcript, AsrError> {
        let piece = SAMPLE_RATE as usize * MAX_UTTERANCE.as_secs() as usize;
        if audio.len() <= piece {
            return self.recognize(audio, bias, opts);
        }
        let mut text = String::new();
        let mut conf = Vec::new();
        let mut all = Transcript::default();
        for chunk in audio.chunks(piece) {
            let t = self.recognize(chunk, bias, opts)?;
            if let Some(h) = t.alternatives.first() {
                text.push_str(&h.text);
                conf.push(h.confidence);
            }
            for g in t.guards {
                if !all.guards.contains(&g) {
                    all.guards.push(g);
                }
            }
            all.timings.features_ms += t.timings.features_ms;
            all.timings.decode_ms += t.timings.decode_ms;
            all.timings.after_end_ms += t.timings.after_end_ms;
        }
        all.timings.audio_ms = audio.len() as u64 * 1000 / SAMPLE_RATE as u64;
        if text.is_empty() {
            all.reason = Some(NoResult::NotSpeech);
        } else {
            let c = conf.iter().sum::<f32>() / conf.len().max(1) as f32;
            all.alternatives.push(Hypothesis {
                text,
                confidence: c,
            });
        }
        Ok(all)
    }

    fn decode(
        &self,
        features: &mut [f32],
        frames: usize,
        secs: f32,
        prompt: Option<&str>,
        opts: &DecodeOptions,
    ) -> Result<Decoded, AsrError> {
        let backend = |e: anyhow::Error| AsrError::Backend(e.to_string());
        let mut tokens: Vec<String> = Vec::new();
        if let Some(p) = prompt {
            tokens.push("<|startofprev|>".into());
            let enc = self
                .tokenizer
                .encode(&format!(" {}", p.trim()))
                .map_err(backend)?;
            // Whisper keeps at most 223 prompt tokens; keep the end.
            let skip = enc.len().saturating_sub(223);
            tokens.extend(enc.into_iter().skip(skip));
        }
        let prefix_len = tokens.len();
        for t in [
            "<|startoftranscript|>",
            "<|zh|>",
            "<|transcribe|>",
            "<|notimestamps|>",
        ] {
            tokens.push(t.into());
        }
        let view = StorageView::new(&[1, N_MELS, frames], features, Default::default())
            .map_err(backend)?;
        let beam = opts.beam_size.max(1);
        let options = WhisperOptions {
            beam_size: beam,
            num_hypotheses: opts.nbest.clamp(1, beam),
            return_scores: true,
            return_no_speech_prob: true,
            max_length: (prefix_len + 4 + 16 + (14.0 * secs) as usize).min(448),
            ..WhisperOptions::default()
        };
        let res = self
            .whisper
            .generate(&view, &[tokens], &options)
            .map_err(backend)?;
        let Some(r) = res.into_iter().next() else {
            return Err(AsrError::Backend("CTranslate2 returned no result".into()));
        };
        let mut hyps = Vec::new();
        let mut best_logprob = f32::NEG_INFINITY;
        for (i, seq) in r.sequences.into_iter().enumerate() {
            let score = r.scores.get(i).copied().unwrap_or(-10.0);
            best_logprob = best_logprob.max(score);
            let words: Vec<String> = seq
                .into_iter()
                .filter(|t| !(t.starts_with("<|") && t.ends_with("|>")))
                .collect();
            let raw = self.tokenizer.decode(words).map_err(backend)?;
            let text = to_simplified(&raw);
            hyps.push(Hypothesis {
                text,
                confidence: score.exp().clamp(0.0, 1.0),
            });
        }
        Ok(Decoded {
            hyps,
            no_speech_prob: r.no_speech_prob,
            best_logprob,
        })
    }
}

struct Decoded {
    hyps: Vec<Hypothesis>,
    no_speech_prob: f32,
    best_logprob: f32,
}

/// The Whisper [`Engine`]: a shared model, the pool, decoding options.
#[derive(Clone)]
pub struct WhisperEngine {
    pub model: Arc<WhisperModel>,
    pub pool: AsrPool,
    pub options: DecodeOptions,
}

impl Engine for WhisperEngine {
    fn name(&self) -> &'static str {
        "whisper"
    }

    fn start(&self, sample_rate: u32, bias: &Bias) -> Result<Box<dyn Recognizer>, AsrError> {
        Ok(Box::new(WhisperStream::new(
            self.clone(),
            sample_rate,
            bias.clone(),
        )?))
    }
}

/// One utterance on the Whisper backend: buffers audio (no partials), decodes on the pool.
pub struct WhisperStream {
    engine: WhisperEngine,
    bias: Arc<Bias>,
    /// 8 kHz input is upsampled as it arrives.
    upsampler: Option<Resampler>,
    audio: Vec<f32>,
    peak_rms: f32,
    /// Speculative decode: audio length it covers, and its result.
    speculation: Option<(usize, Pending)>,
}

/// After a pause, a frame louder than this fraction of the utterance's peak RMS means the
/// caller resumed and the speculative decode is discarded.
const RESUME_FRACTION: f32 = 0.1;

impl WhisperStream {
    pub fn new(engine: WhisperEngine, rate: u32, bias: Bias) -> Result<WhisperStream, AsrError> {
        if rate != 8000 && rate != SAMPLE_RATE {
            return Err(AsrError::Rate(rate));
        }
        let upsampler = if rate == SAMPLE_RATE {
            None
        } else {
            Some(Resampler::new(rate, SAMPLE_RATE).map_err(|e| AsrError::Backend(e.to_string()))?)
        };
        Ok(WhisperStream {
            engine,
            bias: Arc::new(bias),
            upsampler,
            audio: Vec::new(),
            peak_rms: 0.0,
            speculation: None,
        })
    }

    /// Whether a speculative decode is in flight or done and still valid.
    pub fn speculating(&self) -> bool {
        self.speculation.is_some()
    }

    fn submit(&self, audio: Vec<f32>) -> Pending {
        let model = Arc::clone(&self.engine.model);
        let bias = Arc::clone(&self.bias);
        let opts = self.engine.options.clone();
        self.engine
            .pool
            .submit(move || model.recognize(&audio, &bias, &opts))
    }
}

impl Recognizer for WhisperStream {
    fn accept(&mut self, pcm: &[i16]) -> Result<Option<Partial>, AsrError> {
        let mut samples = pcm_to_f32(pcm);
        if let Some(r) = self.upsampler.as_mut() {
            let mut up = Vec::with_capacity(samples.len() * 2);
            r.process_f32(&samples, &mut up);
            samples = up;
        }
        let max_len = SAMPLE_RATE as usize * MAX_UTTERANCE.as_secs() as usize;
        let room = max_len.saturating_sub(self.audio.len());
        let samples = &samples[..samples.len().min(room)];
        let rms = frame_rms(samples);
        let loud = rms.iter().cloned().fold(0.0f32, f32::max);
        if self.speculation.is_some()
            && loud > self.peak_rms * RESUME_FRACTION
            && loud > SILENCE_RMS
        {
            // The caller resumed: the speculative result is stale.
            self.speculation = None;
        }
        self.peak_rms = self.peak_rms.max(loud);
        self.audio.extend_from_slice(samples);
        Ok(None)
    }

    fn pause(&mut self) {
        if self.engine.options.speculative && self.speculation.is_none() && !self.audio.is_empty() {
            let p = self.submit(self.audio.clone());
            self.speculation = Some((self.audio.len(), p));
        }
    }

    fn finish(&mut self) -> Pending {
        if let Some((_, p)) = self.speculation.take() {
            return p;
        }
        if let Some(r) = self.upsampler.as_mut() {
            r.flush_f32(&mut self.audio);
        }
        let audio = std::mem::take(&mut self.audio);
        self.submit(audio)
    }
}
