//! In-band DTMF detection (ITU-T Q.23 frequencies, Q.24 reception tolerances) with the
//! Goertzel algorithm, for trunks that carry keys as tones in the audio instead of RFC 4733.
//!
//! The 8 kHz signal is cut into blocks of [`BLOCK`] = 102 samples (12.75 ms; bins ~78 Hz
//! wide, enough to tell neighbouring DTMF frequencies apart yet short enough for 40 ms
//! tones). A block is a valid digit when:
//! - one low-group and one high-group frequency each reach the minimum level
//!   ([`DtmfConfig::min_level_dbm0`], about −33 dBm0 by default);
//! - twist is within limits: high group at most 8 dB below (normal twist) or 4 dB above
//!   (reverse twist) the low group;
//! - the two tones hold at least 70 % of the block's energy. This is the talk-off guard
//!   (speech spreads its energy over many harmonics) and the frequency tolerance: a tone
//!   1.5 % off nominal keeps ≥ 72 % of its energy in the bin, one 3.5 % off keeps far less.
//!
//! Timing (Q.24): a digit is reported once when two consecutive blocks agree with similar
//! strength (≥ 205 samples ≈ 26 ms of tone needed; every tone of ≥ 40 ms contains two whole
//! blocks; a 20 ms tone cannot make two strong blocks). It ends after two blocks without it
//! (a pause of ≥ 40 ms always contains two whole blocks), so a repeated key needs a pause.
//! Frames the jitter buffer concealed are not analysed: a lost packet in the middle of a tone
//! neither ends the digit nor creates a second one.

use crate::rtp::event::Digit;

/// Samples per analysis block.
pub const BLOCK: usize = 102;

const LOW: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const HIGH: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Amplitude (16-bit PCM) of a 0 dBm0 sine in G.711 (full scale is +3.17 dBm0).
pub const DBM0_AMPLITUDE: f32 = 22_300.0;

/// Detector thresholds.
#[derive(Debug, Clone, Copy)]
pub struct DtmfConfig {
    /// Minimum level of each tone.
    pub min_level_dbm0: f32,
    /// High group may be this much weaker than low (normal twist), dB.
    pub normal_twist_db: f32,
    /// High group may be this much stronger than low (reverse twist), dB.
    pub reverse_twist_db: f32,
    /// Share of the block energy the two tones must hold.
    pub min_tone_share: f32,
}

impl Default for DtmfConfig {
    fn default() -> Self {
        DtmfConfig {
            min_level_dbm0: -33.0,
            normal_twist_db: 8.0,
            reverse_twist_db: 4.0,
            min_tone_share: 0.7,
        }
    }
}

/// The detector of one stream.
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    coef: [f32; 8],
    s1: [f32; 8],
    s2: [f32; 8],
    energy: f32,
    n: usize,
    min_power: f32,
    normal_twist: f32,
    reverse_twist: f32,
    share: f32,
    /// The digit being held, and blocks missed since it was last seen.
    current: Option<Digit>,
    misses: u32,
    /// Last valid block not yet confirmed: digit and tone power.
    candidate: Option<(Digit, f32)>,
}

impl Default for DtmfDetector {
    fn default() -> Self {
        DtmfDetector::new(DtmfConfig::default())
    }
}

impl DtmfDetector {
    pub fn new(c: DtmfConfig) -> DtmfDetector {
        let mut coef = [0.0; 8];
        for (i, f) in LOW.iter().chain(HIGH.iter()).enumerate() {
            coef[i] = 2.0 * (2.0 * std::f32::consts::PI * f / 8000.0).cos();
        }
        // Goertzel power of a sine of amplitude A over N samples is (A·N/2)².
        let a = DBM0_AMPLITUDE * 10f32.powf(c.min_level_dbm0 / 20.0);
        let min_power = (a * BLOCK as f32 / 2.0).powi(2);
        DtmfDetector {
            coef,
            s1: [0.0; 8],
            s2: [0.0; 8],
            energy: 0.0,
            n: 0,
            min_power,
            normal_twist: 10f32.powf(-c.normal_twist_db / 10.0),
            reverse_twist: 10f32.powf(c.reverse_twist_db / 10.0),
            share: c.min_tone_share,
            current: None,
            misses: 0,
            candidate: None,
        }
    }

    /// The digit currently held down, if any.
    pub fn active(&self) -> Option<Digit> {
        self.current
    }

    /// Feeds one frame of 8 kHz audio; returns a digit at the moment it is recognised.
    /// `concealed` frames (made up by loss concealment) are skipped.
    pub fn process(&mut self, frame: &[i16], concealed: bool) -> Option<Digit> {
        if concealed {
            self.reset_block();
            return None;
        }
        let mut found = None;
        for &x in frame {
            let x = x as f32;
            self.energy += x * x;
            for k in 0..8 {
                let s = x + self.coef[k] * self.s1[k] - self.s2[k];
                self.s2[k] = self.s1[k];
                self.s1[k] = s;
            }
            self.n += 1;
            if self.n == BLOCK {
                let block = self.analyse();
                self.reset_block();
                if let Some(d) = self.step(block) {
                    found = Some(d);
                }
            }
        }
        found
    }

    fn reset_block(&mut self) {
        self.s1 = [0.0; 8];
        self.s2 = [0.0; 8];
        self.energy = 0.0;
        self.n = 0;
    }

    /// The digit of the finished block and its tone power, if the block is valid.
    fn analyse(&self) -> Option<(Digit, f32)> {
        let mut p = [0.0f32; 8];
        for (k, pk) in p.iter_mut().enumerate() {
            *pk = self.s1[k] * self.s1[k] + self.s2[k] * self.s2[k]
                - self.coef[k] * self.s1[k] * self.s2[k];
        }
        let argmax = |v: &[f32]| (0..4).fold(0, |best, i| if v[i] > v[best] { i } else { best });
        let lo = argmax(&p[..4]);
        let hi = argmax(&p[4..]);
        let (pl, ph) = (p[lo], p[4 + hi]);
        if pl < self.min_power || ph < self.min_power {
            return None;
        }
        if ph < pl * self.normal_twist || ph > pl * self.reverse_twist {
            return None;
        }
        let share = 2.0 * (pl + ph) / (BLOCK as f32 * self.energy);
        if share < self.share {
            return None;
        }
        Some((Digit::from_char(KEYS[lo][hi])?, pl + ph))
    }

    fn step(&mut self, block: Option<(Digit, f32)>) -> Option<Digit> {
        let Some((d, power)) = block else {
            self.candidate = None;
            if self.current.is_some() {
                self.misses += 1;
                if self.misses >= 2 {
                    self.current = None;
                }
            }
            return None;
        };
        if self.current == Some(d) {
            self.misses = 0;
            self.candidate = None;
            return None;
        }
        let confirmed = match self.candidate {
            Some((cd, cp)) if cd == d => cp.min(power) >= 0.63 * cp.max(power),
            _ => false,
        };
        if confirmed {
            self.current = Some(d);
            self.misses = 0;
            self.candidate = None;
            Some(d)
        } else {
            self.candidate = Some((d, power));
            None
        }
    }
}

/// Synthesises a DTMF key (for tests, the caller simulator and in-band sending): `ms` of
/// tone at `level_dbm0` per frequency.
pub fn tone(digit: Digit, ms: u32, level_dbm0: f32) -> Vec<i16> {
    tone_with_offset(digit, ms, level_dbm0, 0.0)
}

/// Like [`tone`] with both frequencies shifted by `offset` (e.g. 0.015 = +1.5 %).
pub fn tone_with_offset(digit: Digit, ms: u32, level_dbm0: f32, offset: f32) -> Vec<i16> {
    let (mut fl, mut fh) = (0.0, 0.0);
    for (r, row) in KEYS.iter().enumerate() {
        for (c, &k) in row.iter().enumerate() {
            if k == digit.as_char() {
                fl = LOW[r];
                fh = HIGH[c];
            }
        }
    }
    let a = DBM0_AMPLITUDE * 10f32.powf(level_dbm0 / 20.0);
    let n = (ms * 8) as usize;
    (0..n)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let w = 2.0 * std::f32::consts::PI * t;
            (a * ((w * fl * (1.0 + offset)).sin() + (w * fh * (1.0 + offset)).sin()))
                .clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::Law;
    use rand::{Rng, SeedableRng};

    /// Runs audio through G.711 and the detector in 20 ms frames; the digits found.
    fn detect(pcm: &[i16]) -> String {
        let coded = Law::Alaw.decode(&Law::Alaw.encode(pcm));
        let mut d = DtmfDetector::default();
        coded
            .chunks(160)
            .filter_map(|f| d.process(f, false))
            .map(|d| d.as_char())
            .collect()
    }

    fn noise(rng: &mut rand::rngs::StdRng, n: usize, level_dbm0: f32) -> Vec<i16> {
        // Uniform noise of the given RMS level.
        let rms = DBM0_AMPLITUDE / 2f32.sqrt() * 10f32.powf(level_dbm0 / 20.0);
        let a = rms * 3f32.sqrt();
        (0..n).map(|_| rng.random_range(-a..a) as i16).collect()
    }

    fn add(a: &mut [i16], b: &[i16]) {
        for (x, y) in a.iter_mut().zip(b) {
            *x = x.saturating_add(*y);
        }
    }

    fn keys(digits: &str, ms: u32, pause_ms: u32, level: f32, offset: f32) -> Vec<i16> {
        let mut v = vec![0i16; 800];
        for c in digits.chars() {
            v.extend(tone_with_offset(
                Digit::from_char(c).unwrap(),
                ms,
                level,
                offset,
            ));
            v.extend(std::iter::repeat_n(0, (pause_ms * 8) as usize));
        }
        v
    }

    const ALL: &str = "123A456B789C*0#D";

    #[test]
    fn all_16_digits_at_several_levels_with_noise() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for level in [-25.0, -15.0, -5.0] {
            let mut pcm = keys(ALL, 60, 60, level, 0.0);
            // Noise 20 dB below the tones.
            let n = noise(&mut rng, pcm.len(), level - 20.0);
            add(&mut pcm, &n);
            assert_eq!(detect(&pcm), ALL, "level {level} dBm0");
        }
    }

    #[test]
    fn q24_frequency_tolerance() {
        for off in [-0.015, 0.015] {
            assert_eq!(detect(&keys(ALL, 60, 60, -10.0, off)), ALL, "offset {off}");
        }
        for off in [-0.035, 0.035] {
            assert_eq!(
                detect(&keys(ALL, 60, 60, -10.0, off)),
                "",
                "offset {off} must be rejected"
            );
        }
    }

    #[test]
    fn q24_timing_40ms_accepted_20ms_rejected_and_pause_separates_repeats() {
        assert_eq!(detect(&keys("555", 40, 40, -10.0, 0.0)), "555");
        assert_eq!(detect(&keys("555", 20, 60, -10.0, 0.0)), "");
        // A long press is one digit.
        assert_eq!(detect(&keys("9", 2000, 40, -10.0, 0.0)), "9");
    }

    #[test]
    fn twist_limits() {
        let d = Digit::from_char('5').unwrap();
        let both = |lo_db: f32, hi_db: f32| {
            let lo = tone_single(770.0, 100, lo_db);
            let hi = tone_single(1336.0, 100, hi_db);
            let mut v: Vec<i16> = lo
                .iter()
                .zip(&hi)
                .map(|(a, b)| a.saturating_add(*b))
                .collect();
            v.extend(vec![0; 800]);
            detect(&v)
        };
        assert_eq!(
            both(-10.0, -16.0),
            d.to_string(),
            "6 dB normal twist is fine"
        );
        assert_eq!(
            both(-10.0, -7.0),
            d.to_string(),
            "3 dB reverse twist is fine"
        );
        assert_eq!(both(-10.0, -20.0), "", "10 dB normal twist is too much");
        assert_eq!(both(-10.0, -4.0), "", "6 dB reverse twist is too much");
    }

    fn tone_single(f: f32, ms: u32, level: f32) -> Vec<i16> {
        let a = DBM0_AMPLITUDE * 10f32.powf(level / 20.0);
        (0..ms * 8)
            .map(|i| (a * (2.0 * std::f32::consts::PI * f * i as f32 / 8000.0).sin()) as i16)
            .collect()
    }

    #[test]
    fn too_quiet_is_ignored() {
        assert_eq!(detect(&keys("1", 100, 40, -40.0, 0.0)), "");
    }

    #[test]
    fn concealed_frames_do_not_split_a_digit() {
        let pcm = keys("7", 200, 100, -10.0, 0.0);
        let mut d = DtmfDetector::default();
        let mut got = String::new();
        for (i, f) in pcm.chunks(160).enumerate() {
            // Every third frame lost and replaced by an attenuated copy.
            let lost = i % 3 == 2;
            if let Some(x) = d.process(f, lost) {
                got.push(x.as_char());
            }
        }
        assert_eq!(got, "7");
    }

    #[test]
    fn talk_off_real_mandarin_speech_gives_no_digits() {
        let dir = crate::media::testdata::speech_dir();
        let Some(dir) = dir else {
            eprintln!("SKIP: shared Mandarin clips not found");
            return;
        };
        let mut total = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "wav") {
                let pcm = crate::media::wav::read_mono(&p, 8000).unwrap();
                for gain in [1.0f32, 4.0] {
                    let loud: Vec<i16> = pcm
                        .iter()
                        .map(|&s| (s as f32 * gain).clamp(-32768.0, 32767.0) as i16)
                        .collect();
                    assert_eq!(
                        detect(&loud),
                        "",
                        "talk-off in {} (gain {gain})",
                        p.display()
                    );
                }
                total += pcm.len();
            }
        }
        assert!(
            total > 8000 * 30,
            "expected ≥30 s of speech, got {} samples",
            total
        );
    }
}
