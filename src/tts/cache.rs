//! The prompt cache: every prompt as ready 20 ms G.711 frames (160 bytes at 8 kHz), kept
//! in memory and on disk under a content hash, so the player only copies bytes.
//!
//! Key = SHA-256 over a format version, the G.711 law, the synthesiser's id (name and
//! version), the voice, the rate and the text — or, for a recording, the WAV file's own
//! SHA-256. A changed text, voice, rate, recording or espeak-ng version is a new key;
//! unchanged prompts survive restarts and reloads. Files are `<hash>.ulaw` / `<hash>.alaw`,
//! written to a temporary name and renamed, so a crash never leaves a half file.
//!
//! Static prompts of the loaded flows are rendered at start and on reload with
//! [`PromptCache::prewarm`]; prompts with variables are rendered on demand by
//! [`PromptCache::frames`] (espeak-ng takes tens of milliseconds for a sentence;
//! `scripts/bench-asr` measures it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::{PromptSource, Synthesizer, TtsError};
use crate::media::g711::Law;
use crate::media::{resample, wav};

/// Bytes of one 20 ms G.711 frame at 8 kHz.
pub const FRAME_BYTES: usize = 160;
const FORMAT_VERSION: &str = "voicenav-prompt-v1";

/// A rendered prompt: whole 20 ms frames, the last padded with G.711 silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptFrames {
    pub law: Law,
    pub key: String,
    bytes: Vec<u8>,
}

impl PromptFrames {
    /// The frames, 160 bytes each.
    pub fn frames(&self) -> std::slice::ChunksExact<'_, u8> {
        self.bytes.chunks_exact(FRAME_BYTES)
    }
    /// Number of frames.
    pub fn len(&self) -> usize {
        self.bytes.len() / FRAME_BYTES
    }
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    /// Duration in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.len() as u64 * 20
    }
    /// All encoded bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// What [`PromptCache::prewarm`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrewarmStats {
    pub rendered: usize,
    pub from_disk: usize,
    pub in_memory: usize,
}

/// Memory + disk cache of rendered prompts.
pub struct PromptCache {
    dir: PathBuf,
    law: Law,
    synth: Arc<dyn Synthesizer>,
    synth_id: String,
    memory: Mutex<HashMap<String, Arc<PromptFrames>>>,
}

impl std::fmt::Debug for PromptCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptCache")
            .field("dir", &self.dir)
            .field("law", &self.law)
            .finish()
    }
}

enum Origin {
    Memory,
    Disk,
    Rendered,
}

impl PromptCache {
    /// A cache in `dir` (created) for `law`, rendering text with `synth`.
    pub fn new(
        dir: impl Into<PathBuf>,
        law: Law,
        synth: Arc<dyn Synthesizer>,
    ) -> Result<PromptCache, TtsError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| TtsError::Cache {
            path: dir.clone(),
            source,
        })?;
        let synth_id = synth.id();
        Ok(PromptCache {
            dir,
            law,
            synth,
            synth_id,
            memory: Mutex::new(HashMap::new()),
        })
    }

    /// The content key of a prompt.
    pub fn key(&self, prompt: &PromptSource) -> Result<String, TtsError> {
        let mut h = Sha256::new();
        h.update(FORMAT_VERSION);
        h.update([0, self.law.payload_type()]);
        match prompt {
            PromptSource::Text { text, voice } => {
                for part in [
                    self.synth_id.as_str(),
                    voice.name.as_str(),
                    &voice.rate.to_string(),
                    text.as_str(),
                ] {
                    h.update(part.as_bytes());
                    h.update([0]);
                }
            }
            PromptSource::Recording(path) => {
                let data = std::fs::read(path).map_err(|e| TtsError::Recording {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                h.update(b"recording\0");
                h.update(Sha256::digest(&data));
            }
        }
        Ok(hex::encode(h.finalize()))
    }

    /// The frames of a prompt: from memory, else disk, else rendered now (and stored).
    pub fn frames(&self, prompt: &PromptSource) -> Result<Arc<PromptFrames>, TtsError> {
        self.lookup(prompt).map(|(f, _)| f)
    }

    fn lookup(&self, prompt: &PromptSource) -> Result<(Arc<PromptFrames>, Origin), TtsError> {
        let key = self.key(prompt)?;
        if let Some(f) = self.memory.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok((f, Origin::Memory));
        }
        let path = self.path(&key);
        let (frames, origin) = match std::fs::read(&path) {
            Ok(bytes) if !bytes.is_empty() && bytes.len() % FRAME_BYTES == 0 => (
                Arc::new(PromptFrames {
                    law: self.law,
                    key: key.clone(),
                    bytes,
                }),
                Origin::Disk,
            ),
            _ => {
                let bytes = self.render(prompt)?;
                self.store(&path, &bytes)?;
                (
                    Arc::new(PromptFrames {
                        law: self.law,
                        key: key.clone(),
                        bytes,
                    }),
                    Origin::Rendered,
                )
            }
        };
        if let Ok(mut m) = self.memory.lock() {
            m.insert(key, Arc::clone(&frames));
        }
        Ok((frames, origin))
    }

    /// Renders every prompt not yet cached (at start and on flow reload); the first error
    /// is returned after trying all of them.
    pub fn prewarm<'a, I>(&self, prompts: I) -> (PrewarmStats, Vec<TtsError>)
    where
        I: IntoIterator<Item = &'a PromptSource>,
    {
        let mut stats = PrewarmStats::default();
        let mut errors = Vec::new();
        for p in prompts {
            match self.lookup(p) {
                Ok((_, Origin::Memory)) => stats.in_memory += 1,
                Ok((_, Origin::Disk)) => stats.from_disk += 1,
                Ok((_, Origin::Rendered)) => stats.rendered += 1,
                Err(e) => errors.push(e),
            }
        }
        (stats, errors)
    }

    /// Where a key's frames live on disk.
    pub fn path(&self, key: &str) -> PathBuf {
        let ext = match self.law {
            Law::Ulaw => "ulaw",
            Law::Alaw => "alaw",
        };
        self.dir.join(format!("{key}.{ext}"))
    }

    /// Renders a prompt to G.711 frames without caching.
    pub fn render(&self, prompt: &PromptSource) -> Result<Vec<u8>, TtsError> {
        let pcm8k = match prompt {
            PromptSource::Text { text, voice } => {
                let audio = self.synth.synthesize(text, voice)?;
                resample::to_rate(&audio.samples, audio.rate, 8000)
                    .map_err(|e| TtsError::Resample(e.to_string()))?
            }
            PromptSource::Recording(path) => {
                wav::read_mono(path, 8000).map_err(|e| TtsError::Recording {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
            }
        };
        Ok(encode_frames(&pcm8k, self.law))
    }

    fn store(&self, path: &Path, bytes: &[u8]) -> Result<(), TtsError> {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let err = |source| TtsError::Cache {
            path: path.to_path_buf(),
            source,
        };
        std::fs::write(&tmp, bytes).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }
}

/// Encodes 8 kHz PCM into whole 20 ms frames, the last padded with silence.
pub fn encode_frames(pcm8k: &[i16], law: Law) -> Vec<u8> {
    let mut bytes = law.encode(pcm8k);
    let rem = bytes.len() % FRAME_BYTES;
    if rem != 0 || bytes.is_empty() {
        bytes.resize(bytes.len() + FRAME_BYTES - rem, law.silence());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tts::{Audio, Voice};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A synthesiser that counts calls and returns a 1 kHz tone of 0.5 s at 22.05 kHz.
    struct Counting(AtomicUsize);
    impl Synthesizer for Counting {
        fn synthesize(&self, _text: &str, _voice: &Voice) -> Result<Audio, TtsError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let samples = (0..11025).map(|n| {
                ((n as f32 * 2.0 * std::f32::consts::PI * 1000.0 / 22050.0).sin() * 8000.0) as i16
            });
            Ok(Audio {
                rate: 22050,
                samples: samples.collect(),
            })
        }
        fn id(&self) -> String {
            "counting 1".into()
        }
    }

    fn text(t: &str) -> PromptSource {
        PromptSource::Text {
            text: t.into(),
            voice: Voice::mandarin(),
        }
    }

    #[test]
    fn prompts_render_once_then_come_from_memory_and_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let synth = Arc::new(Counting(AtomicUsize::new(0)));
        let cache = PromptCache::new(dir.path(), Law::Alaw, synth.clone()).expect("cache");
        let (s, e) = cache.prewarm([&text("您好"), &text("再见"), &text("您好")]);
        assert!(e.is_empty());
        assert_eq!(
            s,
            PrewarmStats {
                rendered: 2,
                from_disk: 0,
                in_memory: 1
            }
        );
        let f = cache.frames(&text("您好")).expect("frames");
        assert_eq!(f.len(), 25, "0.5 s = 25 frames of 20 ms");
        assert!(f.frames().all(|fr| fr.len() == FRAME_BYTES));
        // a new cache over the same folder reads the disk, no synthesis
        let again = PromptCache::new(dir.path(), Law::Alaw, synth.clone()).expect("cache");
        let (s, _) = again.prewarm([&text("您好"), &text("再见")]);
        assert_eq!(s.from_disk, 2);
        assert_eq!(synth.0.load(Ordering::SeqCst), 2);
        assert_eq!(*again.frames(&text("您好")).expect("frames"), *f);
    }

    #[test]
    fn key_changes_with_text_voice_rate_and_law() {
        let dir = tempfile::tempdir().expect("tempdir");
        let synth = Arc::new(Counting(AtomicUsize::new(0)));
        let a = PromptCache::new(dir.path(), Law::Alaw, synth.clone()).expect("cache");
        let u = PromptCache::new(dir.path(), Law::Ulaw, synth).expect("cache");
        let k = |c: &PromptCache, p: &PromptSource| c.key(p).expect("key");
        let slow = PromptSource::Text {
            text: "您好".into(),
            voice: Voice::new("cmn-latn-pinyin", 120),
        };
        let yue = PromptSource::Text {
            text: "您好".into(),
            voice: Voice::new("yue", 160),
        };
        let all = [
            k(&a, &text("您好")),
            k(&a, &text("您好！")),
            k(&a, &slow),
            k(&a, &yue),
            k(&u, &text("您好")),
        ];
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j]);
            }
        }
    }

    #[test]
    fn a_missing_recording_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = PromptCache::new(
            dir.path(),
            Law::Ulaw,
            Arc::new(Counting(AtomicUsize::new(0))),
        )
        .expect("cache");
        let err = cache
            .frames(&PromptSource::Recording("/nonexistent/greeting.wav".into()))
            .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/greeting.wav"),
            "{err}"
        );
    }

    #[test]
    fn frames_are_whole_and_padded_with_silence() {
        let b = encode_frames(&[0i16; 170], Law::Ulaw);
        assert_eq!(b.len(), 320);
        assert!(b[170..].iter().all(|x| *x == Law::Ulaw.silence()));
    }
}
