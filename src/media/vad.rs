//! Voice activity detection and endpointing on 8 kHz telephone audio, frame by frame (20 ms).
//!
//! Each frame is classified by its energy against an adaptive noise floor (the floor follows
//! quiet frames quickly downwards and creeps upwards slowly, so steady line noise is learned
//! and speech is not); a frame is speech when it is [`VadConfig::snr_db`] above the floor
//! and above an absolute minimum. Frames whose energy lies almost all below 200 Hz (mains
//! hum, DC drift) are not speech.
//!
//! The endpointer turns frame decisions into utterances:
//! - **SpeechStart** when [`VadConfig::start_ms`] of speech frames fall within a 200 ms
//!   window (also the barge-in signal);
//! - **SpeechEnd** after [`VadConfig::end_silence_ms`] of trailing non-speech, or when the
//!   utterance reaches [`VadConfig::max_speech_ms`] (`truncated`); it carries the utterance
//!   PCM from [`VadConfig::preroll_ms`] before the start to the last speech frame.
//!
//! Defaults were tuned on the real Mandarin clips of `../shared/speech/zh/` sent through
//! G.711 with line noise 35 and 20 dB below the speech (see the tests): each clip is one
//! utterance, the start is never before the clip and at most 250 ms after its first
//! syllable, and ≥ 97 % of the clip's speech energy is inside the utterance.

use std::collections::VecDeque;

use super::FRAME_SAMPLES;

/// Endpointing settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// Speech needed within the 200 ms window to declare a start.
    pub start_ms: u32,
    /// Trailing non-speech that ends an utterance.
    pub end_silence_ms: u32,
    /// Longest utterance; longer ones are cut (`truncated`).
    pub max_speech_ms: u32,
    /// Audio kept from before the start.
    pub preroll_ms: u32,
    /// Speech must be this far above the noise floor, dB.
    pub snr_db: f32,
    /// And above this absolute level, dBFS.
    pub min_dbfs: f32,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            start_ms: 100,
            end_silence_ms: 900,
            max_speech_ms: 15_000,
            preroll_ms: 300,
            snr_db: 12.0,
            min_dbfs: -50.0,
        }
    }
}

/// Endpointer output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VadEvent {
    SpeechStart,
    SpeechEnd { pcm: Vec<i16>, truncated: bool },
}

/// The endpointer of one stream.
#[derive(Debug, Clone)]
pub struct Endpointer {
    config: VadConfig,
    floor_db: f32,
    frames_seen: u64,
    window: VecDeque<bool>,
    preroll: VecDeque<Vec<i16>>,
    in_speech: bool,
    utterance: Vec<i16>,
    /// Length of `utterance` up to the last speech frame.
    voiced_len: usize,
    silence_run: u32,
}

const WINDOW: usize = 10;

impl Default for Endpointer {
    fn default() -> Self {
        Endpointer::new(VadConfig::default())
    }
}

/// Frame level in dBFS.
pub fn frame_dbfs(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return -100.0;
    }
    let e: f64 = frame.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>() / frame.len() as f64;
    (10.0 * (e / (32768.0 * 32768.0)).max(1e-10).log10()) as f32
}

impl Endpointer {
    pub fn new(config: VadConfig) -> Endpointer {
        Endpointer {
            config,
            floor_db: -60.0,
            frames_seen: 0,
            window: VecDeque::with_capacity(WINDOW),
            preroll: VecDeque::new(),
            in_speech: false,
            utterance: Vec::new(),
            voiced_len: 0,
            silence_run: 0,
        }
    }

    pub fn config(&self) -> &VadConfig {
        &self.config
    }

    /// Changes the settings (e.g. a listen node's own end-of-speech silence); the noise
    /// floor and an utterance in progress are kept.
    pub fn set_config(&mut self, config: VadConfig) {
        self.config = config;
    }

    /// True between SpeechStart and SpeechEnd.
    pub fn in_speech(&self) -> bool {
        self.in_speech
    }

    /// The current noise-floor estimate, dBFS.
    pub fn noise_floor_dbfs(&self) -> f32 {
        self.floor_db
    }

    /// Is this frame speech? (Updates the noise floor.)
    pub fn classify(&mut self, frame: &[i16]) -> bool {
        let db = frame_dbfs(frame);
        self.frames_seen += 1;
        if self.frames_seen == 1 {
            // Start the floor at the line's first level — unless that is already loud
            // (the caller talks from the first frame): then at a typical line's −45 dBFS.
            self.floor_db = db.clamp(-90.0, -45.0);
        }
        // Hysteresis: inside an utterance, weaker frames still count.
        let margin = if self.in_speech {
            self.config.snr_db - 4.0
        } else {
            self.config.snr_db
        };
        let loud = db > self.floor_db + margin && db > self.config.min_dbfs;
        let speech = loud && speechlike(frame);
        // Noise floor: fast down, slow up (≈ 1.5 dB/s), frozen during loud frames.
        if db < self.floor_db {
            self.floor_db = 0.6 * self.floor_db + 0.4 * db;
        } else if !loud {
            self.floor_db += 0.03 * (db - self.floor_db).min(10.0) + 0.01;
        } else if !self.in_speech {
            self.floor_db += 0.005;
        }
        self.floor_db = self.floor_db.clamp(-90.0, -20.0);
        speech
    }

    /// Feeds one 20 ms frame.
    pub fn process(&mut self, frame: &[i16]) -> Option<VadEvent> {
        let speech = self.classify(frame);
        if self.window.len() == WINDOW {
            self.window.pop_front();
        }
        self.window.push_back(speech);
        let frame_ms = 1000 * frame.len().max(1) as u32 / 8000;
        if !self.in_speech {
            self.preroll.push_back(frame.to_vec());
            let keep = (self.config.preroll_ms / frame_ms.max(1)) as usize + WINDOW;
            while self.preroll.len() > keep {
                self.preroll.pop_front();
            }
            let voiced = self.window.iter().filter(|&&s| s).count() as u32 * frame_ms;
            if voiced >= self.config.start_ms && speech {
                self.in_speech = true;
                self.silence_run = 0;
                // Utterance = preroll + the window that triggered.
                let pre = (self.config.preroll_ms / frame_ms.max(1)) as usize + self.window.len();
                let skip = self.preroll.len().saturating_sub(pre);
                self.utterance.clear();
                for f in self.preroll.drain(..).skip(skip) {
                    self.utterance.extend_from_slice(&f);
                }
                self.voiced_len = self.utterance.len();
                return Some(VadEvent::SpeechStart);
            }
            return None;
        }
        self.utterance.extend_from_slice(frame);
        if speech {
            self.silence_run = 0;
            self.voiced_len = self.utterance.len();
        } else {
            self.silence_run += frame_ms;
        }
        let too_long =
            self.utterance.len() as u64 * 1000 / 8000 >= self.config.max_speech_ms as u64;
        if self.silence_run >= self.config.end_silence_ms || too_long {
            self.in_speech = false;
            self.window.clear();
            let mut pcm = std::mem::take(&mut self.utterance);
            // Keep 100 ms of the trailing silence.
            pcm.truncate((self.voiced_len + FRAME_SAMPLES * 5).min(pcm.len()));
            return Some(VadEvent::SpeechEnd {
                pcm,
                truncated: too_long && self.silence_run < self.config.end_silence_ms,
            });
        }
        None
    }

    /// Ends an utterance in progress (hangup, or the dialog stops listening).
    pub fn flush(&mut self) -> Option<VadEvent> {
        if !self.in_speech {
            return None;
        }
        self.in_speech = false;
        self.window.clear();
        let mut pcm = std::mem::take(&mut self.utterance);
        pcm.truncate(self.voiced_len);
        Some(VadEvent::SpeechEnd {
            pcm,
            truncated: false,
        })
    }
}

/// Rejects frames that are loud but not speech-like: energy almost all below 200 Hz (mains
/// hum, DC), measured by the energy of the first difference relative to the energy.
fn speechlike(frame: &[i16]) -> bool {
    if frame.len() < 3 {
        return false;
    }
    let mut e0 = 0f64;
    let mut e1 = 0f64;
    for w in frame.windows(2) {
        let a = w[1] as f64;
        let d = a - w[0] as f64;
        e0 += a * a;
        e1 += d * d;
    }
    if e0 <= 0.0 {
        return false;
    }
    // For a sine at f: e1/e0 = 4 sin²(πf/8000). 200 Hz → 0.025. Energy essentially all below
    // 200 Hz is hum, not a voice.
    e1 / e0 > 0.025
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::Law;
    use rand::{Rng, SeedableRng};

    fn run(ep: &mut Endpointer, pcm: &[i16]) -> Vec<(usize, VadEvent)> {
        pcm.chunks(FRAME_SAMPLES)
            .enumerate()
            .filter_map(|(i, f)| ep.process(f).map(|e| (i, e)))
            .collect()
    }

    fn line(pcm: &[i16], noise_dbfs: f32, seed: u64) -> Vec<i16> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let a = 32768.0 * 10f32.powf(noise_dbfs / 20.0) * 3f32.sqrt();
        let noisy: Vec<i16> = pcm
            .iter()
            .map(|&s| (s as f32 + rng.random_range(-a..a)).clamp(-32768.0, 32767.0) as i16)
            .collect();
        Law::Alaw.decode(&Law::Alaw.encode(&noisy))
    }

    #[test]
    fn silence_and_hum_are_not_speech() {
        let mut ep = Endpointer::default();
        let hum: Vec<i16> = (0..8000 * 3)
            .map(|i| {
                (6000.0 * (2.0 * std::f32::consts::PI * 50.0 * i as f32 / 8000.0).sin()) as i16
            })
            .collect();
        assert!(run(&mut ep, &line(&vec![0; 8000 * 3], -60.0, 1)).is_empty());
        assert!(run(&mut ep, &line(&hum, -60.0, 2)).is_empty());
    }

    #[test]
    fn end_silence_is_configurable_at_run_time() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut pcm = vec![0i16; 8000];
        pcm.extend((0..8000).map(|_| rng.random_range(-8000..8000i16)));
        pcm.extend(vec![0i16; 8000 * 2]);
        let pcm = line(&pcm, -60.0, 6);
        let end_frame = |ms: u32| {
            let mut ep = Endpointer::default();
            ep.set_config(VadConfig {
                end_silence_ms: ms,
                ..*ep.config()
            });
            run(&mut ep, &pcm)
                .into_iter()
                .find(|e| e.1 != VadEvent::SpeechStart)
                .map(|e| e.0)
                .unwrap()
        };
        // Speech ends at frame 100; the end is reported after the configured silence.
        assert_eq!(end_frame(300), 100 + 15 - 1);
        assert_eq!(end_frame(1200), 100 + 60 - 1);
    }

    #[test]
    fn max_length_cuts_the_utterance() {
        let mut ep = Endpointer::new(VadConfig {
            max_speech_ms: 2000,
            ..Default::default()
        });
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut pcm = vec![0i16; 8000];
        pcm.extend((0..8000 * 5).map(|_| rng.random_range(-8000..8000i16)));
        let ev = run(&mut ep, &line(&pcm, -60.0, 4));
        assert_eq!(ev[0].1, VadEvent::SpeechStart);
        match &ev[1].1 {
            VadEvent::SpeechEnd { pcm, truncated } => {
                assert!(truncated);
                assert!(pcm.len() >= 16000 && pcm.len() <= 16000 + 8000);
            }
            e => panic!("{e:?}"),
        }
    }

    /// Tuning check on the real Mandarin clips through G.711 with line noise 35 and 20 dB
    /// below the speech: one utterance per clip, found near its real onset, holding the
    /// speech.
    #[test]
    fn real_mandarin_clips_are_one_utterance_each() {
        let Some(dir) = crate::media::testdata::speech_dir() else {
            eprintln!("SKIP: shared Mandarin clips not found");
            return;
        };
        let mut clips: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "wav"))
            .collect();
        clips.sort();
        assert!(clips.len() >= 5);
        for (k, clip) in clips.iter().enumerate() {
            let speech = crate::media::wav::read_mono(clip, 8000).unwrap();
            // Line noise 35 dB and 20 dB below the clip's overall level (the clips range
            // from −42 to −18 dBFS RMS).
            let level = frame_dbfs(&speech);
            for noise in [level - 35.0, level - 20.0] {
                let mut pcm = vec![0i16; 8000 * 2];
                let onset = pcm.len() + first_loud(&speech);
                pcm.extend_from_slice(&speech);
                pcm.extend(vec![0i16; 8000 * 2]);
                let pcm = line(&pcm, noise, k as u64);
                let mut ep = Endpointer::default();
                let ev = run(&mut ep, &pcm);
                let starts: Vec<usize> = ev
                    .iter()
                    .filter(|e| e.1 == VadEvent::SpeechStart)
                    .map(|e| e.0)
                    .collect();
                assert_eq!(
                    starts.len(),
                    1,
                    "{}: noise {noise}: {:?}",
                    clip.display(),
                    ev.iter()
                        .map(|e| (e.0, matches!(e.1, VadEvent::SpeechStart)))
                        .collect::<Vec<_>>()
                );
                let start_ms = starts[0] as i64 * 20;
                let onset_ms = onset as i64 / 8;
                // Not before the clip begins (no false start on the line noise), and at
                // most 250 ms after its first loud syllable (weak onsets may come earlier).
                assert!(
                    start_ms >= 2000 - 20 && start_ms <= onset_ms + 250,
                    "{}: noise {noise}: start {start_ms} ms, onset {onset_ms} ms",
                    clip.display()
                );
                let Some((
                    _,
                    VadEvent::SpeechEnd {
                        pcm: utt,
                        truncated,
                    },
                )) = ev.iter().find(|e| e.1 != VadEvent::SpeechStart)
                else {
                    panic!("{}: no end", clip.display());
                };
                assert!(!truncated);
                let e = |x: &[i16]| x.iter().map(|&s| (s as f64).powi(2)).sum::<f64>();
                assert!(
                    e(utt) >= 0.97 * e(&speech),
                    "{}: utterance holds {:.1} % of the speech energy",
                    clip.display(),
                    100.0 * e(utt) / e(&speech)
                );
            }
        }
    }

    /// Where the clip's first syllable begins: the first three consecutive frames within
    /// 20 dB of its loudest frame (short clicks and breaths before it do not count).
    fn first_loud(pcm: &[i16]) -> usize {
        let db: Vec<f32> = pcm.chunks(FRAME_SAMPLES).map(frame_dbfs).collect();
        let peak = db.iter().copied().fold(-100.0, f32::max);
        db.windows(3)
            .position(|w| w.iter().all(|&d| d >= peak - 20.0))
            .unwrap_or(0)
            * FRAME_SAMPLES
    }
}
