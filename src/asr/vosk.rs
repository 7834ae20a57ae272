//! The Vosk backend: Kaldi's online decoder through libvosk (the `vosk` crate; libvosk.so
//! from the `vosk` wheel, linked by build.rs). True streaming: every [`VoskStream::accept`]
//! advances the decoder and yields a partial; Vosk's own endpointer marks the end of an
//! utterance. A listen node's phrases switch the recogniser into grammar mode
//! (`["phrase", …, "[unk]"]`, so out-of-grammar speech comes back as `[unk]` = no-match),
//! swapped per node with `vosk_recognizer_set_grm`, which libvosk exports but the crate
//! does not bind — declared below.
//!
//! Grammar mode needs a model with a dynamic graph (`graph/HCLr.fst` + `Gr.fst`: the small
//! models, e.g. vosk-model-small-cn-0.22 and the Korean test model); big static-graph
//! models ignore the grammar.
//!
//! Vosk decodes inside `accept`, so a call driver runs the stream on a blocking/pool thread,
//! not a tokio worker; [`VoskStream::finish`] only collects the result.

use std::ffi::{c_char, CString};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::{
    AsrError, Bias, Engine, Hypothesis, NoResult, Partial, Pending, Recognizer, Timings, Transcript,
};

#[allow(non_camel_case_types)]
type VoskRecognizerPtr = *mut std::ffi::c_void;

extern "C" {
    /// libvosk: reconfigure a recogniser to use `grm` (JSON array of phrases), or no
    /// grammar at all for `NULL`/empty. Present in libvosk ≥ 0.3.42.
    fn vosk_recognizer_set_grm(recognizer: VoskRecognizerPtr, grm: *const c_char);
}

// `vosk::Recognizer` is a one-field newtype over `NonNull<VoskRecognizer>`; we read that
// pointer to call the unbound function. Checked at compile time to be pointer-sized.
const _: () =
    assert!(std::mem::size_of::<vosk::Recognizer>() == std::mem::size_of::<VoskRecognizerPtr>());

fn raw(rec: &mut vosk::Recognizer) -> VoskRecognizerPtr {
    // SAFETY: `vosk::Recognizer` holds exactly one `NonNull<VoskRecognizer>` (size checked
    // above); reading it as a raw pointer does not take ownership.
    unsafe { std::mem::transmute_copy::<vosk::Recognizer, VoskRecognizerPtr>(rec) }
}

/// A loaded Vosk model, shared by every stream.
#[derive(Clone)]
pub struct VoskEngine {
    model: Arc<vosk::Model>,
    /// n-best length asked of Vosk.
    pub nbest: u16,
}

impl std::fmt::Debug for VoskEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoskEngine")
            .field("nbest", &self.nbest)
            .finish()
    }
}

impl VoskEngine {
    /// Loads the model folder (a clear error instead of the crate's `None`).
    pub fn load(dir: &Path) -> Result<VoskEngine, AsrError> {
        let err = |reason: &str| AsrError::Model {
            path: dir.display().to_string(),
            reason: reason.into(),
        };
        if !dir.join("am/final.mdl").is_file() {
            return Err(err("no am/final.mdl: not a Vosk model folder"));
        }
        let path = dir.to_str().ok_or_else(|| err("path is not UTF-8"))?;
        vosk::set_log_level(vosk::LogLevel::Error);
        let model = vosk::Model::new(path).ok_or_else(|| err("libvosk could not load it"))?;
        Ok(VoskEngine {
            model: Arc::new(model),
            nbest: 3,
        })
    }

    /// Opens a concrete stream (the trait object is [`Engine::start`]).
    pub fn stream(&self, sample_rate: u32, bias: &Bias) -> Result<VoskStream, AsrError> {
        if sample_rate != 8000 && sample_rate != 16000 {
            return Err(AsrError::Rate(sample_rate));
        }
        let mut rec = vosk::Recognizer::new(&self.model, sample_rate as f32)
            .ok_or_else(|| AsrError::Backend("libvosk could not create a recogniser".into()))?;
        rec.set_max_alternatives(self.nbest);
        let mut s = VoskStream {
            rec,
            rate: sample_rate,
            samples: 0,
            endpoint: None,
            partial: String::new(),
        };
        if bias.grammar && !bias.phrases.is_empty() {
            s.set_grammar(&bias.phrases)?;
        }
        Ok(s)
    }
}

impl Engine for VoskEngine {
    fn name(&self) -> &'static str {
        "vosk"
    }
    fn start(&self, sample_rate: u32, bias: &Bias) -> Result<Box<dyn Recognizer>, AsrError> {
        Ok(Box::new(self.stream(sample_rate, bias)?))
    }
}

/// One Vosk recognition stream.
pub struct VoskStream {
    rec: vosk::Recognizer,
    rate: u32,
    samples: usize,
    /// The result Vosk finalised at its own endpoint, if it saw one.
    endpoint: Option<Transcript>,
    partial: String,
}

/// The JSON grammar Vosk takes: the phrases (quotes escaped) and `[unk]`.
pub fn grammar_json(phrases: &[String]) -> String {
    let mut all: Vec<String> = phrases.to_vec();
    all.push("[unk]".into());
    serde_json::to_string(&all).unwrap_or_else(|_| "[\"[unk]\"]".into())
}

impl VoskStream {
    /// Switches to grammar mode with `phrases` (+ `[unk]`); an empty list returns to open
    /// vocabulary. Used per listen node.
    pub fn set_grammar(&mut self, phrases: &[String]) -> Result<(), AsrError> {
        let json = if phrases.is_empty() {
            String::new()
        } else {
            grammar_json(phrases)
        };
        let c = CString::new(json)
            .map_err(|_| AsrError::Backend("grammar contains a NUL byte".into()))?;
        let ptr = if phrases.is_empty() {
            std::ptr::null()
        } else {
            c.as_ptr()
        };
        // SAFETY: `raw` yields the live recogniser owned by `self.rec`; `c` outlives the call.
        unsafe { vosk_recognizer_set_grm(raw(&mut self.rec), ptr) };
        Ok(())
    }

    /// Whether Vosk's endpointer has declared the end of the utterance.
    pub fn endpointed(&self) -> bool {
        self.endpoint.is_some()
    }

    fn collect(&mut self, final_: bool) -> Transcript {
        let res = if final_ {
            self.rec.final_result()
        } else {
            self.rec.result()
        };
        let mut alts: Vec<(String, f32)> = match res {
            vosk::CompleteResult::Multiple(m) => m
                .alternatives
                .iter()
                .map(|a| (clean_text(a.text), a.confidence))
                .collect(),
            vosk::CompleteResult::Single(s) => vec![(clean_text(s.text), 1.0)],
        };
        // Vosk's alternative confidences are lattice scores (larger is better): turn them
        // into posteriors over the n-best.
        let max = alts.iter().map(|a| a.1).fold(f32::NEG_INFINITY, f32::max);
        let z: f32 = alts.iter().map(|a| (a.1 - max).exp()).sum();
        for a in &mut alts {
            a.1 = ((a.1 - max).exp() / z.max(f32::MIN_POSITIVE)).clamp(0.0, 1.0);
        }
        let mut t = Transcript {
            timings: Timings {
                audio_ms: self.samples as u64 * 1000 / self.rate as u64,
                ..Timings::default()
            },
            ..Transcript::default()
        };
        let mut heard_unk = false;
        for (text, conf) in alts {
            if text.split_whitespace().all(|w| w == "[unk]") {
                heard_unk |= !text.is_empty();
                continue;
            }
            let text = text
                .split_whitespace()
                .filter(|w| *w != "[unk]")
                .collect::<Vec<_>>()
                .join(" ");
            if !text.is_empty() && !t.alternatives.iter().any(|h| h.text == text) {
                t.alternatives.push(Hypothesis {
                    text,
                    confidence: conf,
                });
            }
        }
        if t.alternatives.is_empty() {
            t.reason = Some(if heard_unk {
                NoResult::NoMatch
            } else {
                NoResult::Silence
            });
        }
        t
    }
}

/// Vosk writes words space-separated; Chinese text is joined back.
fn clean_text(text: &str) -> String {
    let han = text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    if han {
        text.split_whitespace().collect::<Vec<_>>().concat()
    } else {
        text.trim().to_string()
    }
}

impl Recognizer for VoskStream {
    fn accept(&mut self, pcm: &[i16]) -> Result<Option<Partial>, AsrError> {
        if self.endpoint.is_some() {
            // The utterance already ended; later audio belongs to the next listen.
            return Ok(None);
        }
        self.samples += pcm.len();
        match self.rec.accept_waveform(pcm) {
            Ok(vosk::DecodingState::Finalized) => {
                let t = self.collect(false);
                self.endpoint = Some(t);
                Ok(None)
            }
            Ok(vosk::DecodingState::Running) => {
                let p = clean_text(self.rec.partial_result().partial);
                if !p.is_empty() && p != self.partial {
                    self.partial = p.clone();
                    return Ok(Some(Partial { text: p }));
                }
                Ok(None)
            }
            Ok(vosk::DecodingState::Failed) => {
                Err(AsrError::Backend("libvosk failed to decode".into()))
            }
            Err(e) => Err(AsrError::Backend(e.to_string())),
        }
    }

    fn finish(&mut self) -> Pending {
        let started = Instant::now();
        let mut t = match self.endpoint.take() {
            Some(t) if !t.alternatives.is_empty() => t,
            _ => self.collect(true),
        };
        t.timings.after_end_ms = started.elapsed().as_millis() as u64;
        self.rec.reset();
        self.samples = 0;
        self.partial.clear();
        Pending::ready(Ok(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_json_quotes_phrases_and_allows_unknown() {
        assert_eq!(
            grammar_json(&["네".into(), "say \"hi\"".into()]),
            r#"["네","say \"hi\"","[unk]"]"#
        );
    }

    #[test]
    fn chinese_words_are_joined_other_text_kept() {
        assert_eq!(clean_text("信用卡 账单 查询"), "信用卡账单查询");
        assert_eq!(clean_text(" 안녕 하세요 "), "안녕 하세요");
    }
}
