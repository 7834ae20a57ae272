//! Whisper's log-mel front end, computed exactly as OpenAI's reference
//! (`whisper/audio.py::log_mel_spectrogram`, also what faster-whisper feeds CTranslate2):
//! 16 kHz mono, periodic Hann window of 400 samples, hop 160, centred STFT with reflect
//! padding, power spectrum, the 80-band Slaney mel filter bank (librosa's
//! `filters.mel(sr=16000, n_fft=400, n_mels=80)`), `log10(max(x, 1e-10))`, clamped to
//! *global* max − 8, then `(x + 4) / 4`. Audio shorter than the window is zero-padded
//! before the STFT (the reference pads 30 s of zeros), so padding frames carry the same
//! values as in training.
//!
//! `ct2rs::Whisper` instead normalises each frame on its own and leaves padding frames at
//! 0.0, which the model never saw; that is why voicenav computes features itself and
//! drives `ct2rs::sys::Whisper` directly.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

/// Sample rate Whisper expects.
pub const SAMPLE_RATE: u32 = 16_000;
/// STFT size.
pub const N_FFT: usize = 400;
/// STFT hop (10 ms).
pub const HOP: usize = 160;
/// Mel bands of Whisper base.
pub const N_MELS: usize = 80;
/// Frames of a full 30 s encoder window.
pub const FULL_WINDOW: usize = 3000;

/// Computes log-mel features; holds the filter bank, window and FFT plan (build once).
pub struct LogMel {
    /// Per band: first FFT bin and the non-zero weights from there (the bank is sparse).
    bands: Vec<(usize, Vec<f32>)>,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl std::fmt::Debug for LogMel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogMel").field("n_mels", &N_MELS).finish()
    }
}

impl Default for LogMel {
    fn default() -> Self {
        Self::new()
    }
}

impl LogMel {
    pub fn new() -> LogMel {
        let window = (0..N_FFT)
            .map(|n| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()) as f32
            })
            .collect();
        let bands = slaney_filters()
            .iter()
            .map(|row| {
                let first = row.iter().position(|w| *w > 0.0).unwrap_or(0);
                let last = row.iter().rposition(|w| *w > 0.0).unwrap_or(first);
                (first, row[first..=last].to_vec())
            })
            .collect();
        LogMel {
            bands,
            window,
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT),
        }
    }

    /// Log-mel features of `audio` (16 kHz, −1..1) as a row-major `[N_MELS][frames]` array,
    /// `frames` columns long: audio beyond is ignored, audio shorter is zero-padded.
    pub fn compute(&self, audio: &[f32], frames: usize) -> Vec<f32> {
        // Centred STFT: frame t covers padded[t*HOP .. t*HOP + N_FFT] where padded is
        // reflect(200) ++ audio ++ zeros (the reference's 30 s zero padding is far longer
        // than any right-hand reflection, so the right edge is zeros).
        let half = N_FFT / 2;
        let used = audio.len().min(frames * HOP);
        let mut padded = vec![0.0f32; half + frames * HOP + N_FFT];
        for i in 0..half {
            // reflect: padded[half - 1 - i] = audio[i + 1]
            let v = audio.get(i + 1).copied().unwrap_or(0.0);
            padded[half - 1 - i] = v;
        }
        padded[half..half + used].copy_from_slice(&audio[..used]);

        // Frames wholly in the zero padding have zero power: log10(1e-10) = -10.
        let live = (used + half).div_ceil(HOP).min(frames);
        let mut mel = vec![-10.0f32; N_MELS * frames];
        let mut input = vec![0.0f32; N_FFT];
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = [0.0f32; N_FFT / 2 + 1];
        let mut max = f32::NEG_INFINITY;
        for t in 0..live {
            let start = t * HOP;
            for (k, x) in input.iter_mut().enumerate() {
                *x = padded[start + k] * self.window[k];
            }
            if self
                .fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .is_err()
            {
                // Lengths come from the plan itself; cannot fail. Leave the frame silent.
                continue;
            }
            for (p, c) in power.iter_mut().zip(spectrum.iter()) {
                *p = c.norm_sqr();
            }
            for (m, (first, weights)) in self.bands.iter().enumerate() {
                let e: f32 = weights
                    .iter()
                    .zip(power[*first..].iter())
                    .map(|(w, p)| w * p)
                    .sum();
                let v = e.max(1e-10).log10();
                max = max.max(v);
                mel[m * frames + t] = v;
            }
        }
        if live < frames {
            max = max.max(-10.0);
        }
        let floor = max - 8.0;
        for v in &mut mel {
            *v = (v.max(floor) + 4.0) / 4.0;
        }
        mel
    }
}

fn hz_to_mel(f: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if f >= min_log_hz {
        min_log_mel + (f / min_log_hz).ln() / logstep
    } else {
        f / f_sp
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if m >= min_log_mel {
        min_log_hz * (logstep * (m - min_log_mel)).exp()
    } else {
        f_sp * m
    }
}

/// librosa `filters.mel(sr=16000, n_fft=400, n_mels=80, htk=False, norm="slaney")`.
fn slaney_filters() -> Vec<[f32; N_FFT / 2 + 1]> {
    let sr = SAMPLE_RATE as f64;
    let n_bins = N_FFT / 2 + 1;
    let fft_freqs: Vec<f64> = (0..n_bins).map(|k| k as f64 * sr / N_FFT as f64).collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sr / 2.0));
    let mel_f: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (N_MELS + 1) as f64))
        .collect();
    (0..N_MELS)
        .map(|i| {
            let mut row = [0.0f32; N_FFT / 2 + 1];
            let enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
            for (k, f) in fft_freqs.iter().enumerate() {
                let lower = (f - mel_f[i]) / (mel_f[i + 1] - mel_f[i]);
                let upper = (mel_f[i + 2] - f) / (mel_f[i + 2] - mel_f[i + 1]);
                row[k] = (lower.min(upper).max(0.0) * enorm) as f32;
            }
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_bank_matches_librosa_reference_values() {
        let f = slaney_filters();
        // librosa.filters.mel(sr=16000, n_fft=400, n_mels=80): band 0 rises from 0 Hz to
        // 37.2 Hz and falls to 74.5 Hz with Slaney area normalisation 2/74.5, so bin 1
        // (40 Hz) weighs (74.5-40)/37.2 * 2/74.5 = 0.02486; the top band spans
        // ~7.4-8 kHz, so its peak is close to 2/600.
        assert!((f[0][1] - 0.024_862_4).abs() < 1e-4, "{}", f[0][1]);
        assert_eq!(f[0][0], 0.0);
        let last_peak = f[79].iter().cloned().fold(0.0f32, f32::max);
        assert!(last_peak > 0.0028 && last_peak < 0.0036, "{last_peak}");
    }

    #[test]
    fn silence_is_flat_at_the_clamped_floor() {
        let mel = LogMel::new().compute(&[0.0; 1600], 20);
        assert_eq!(mel.len(), N_MELS * 20);
        // all log10(1e-10) = -10 → max is -10 → (−10 + 4) / 4 = −1.5
        assert!(mel.iter().all(|v| (v + 1.5).abs() < 1e-6));
    }

    #[test]
    fn a_tone_peaks_in_its_band_and_padding_sits_at_max_minus_8() {
        let audio: Vec<f32> = (0..16_000)
            .map(|n| (2.0 * std::f32::consts::PI * 1000.0 * n as f32 / 16_000.0).sin() * 0.5)
            .collect();
        let frames = 200; // 2 s window, the second second is padding
        let mel = LogMel::new().compute(&audio, frames);
        let col = |t: usize| (0..N_MELS).map(|m| mel[m * frames + t]).collect::<Vec<_>>();
        let mid = col(50);
        let (peak, _) =
            mid.iter().enumerate().fold(
                (0, f32::MIN),
                |a, (i, v)| if *v > a.1 { (i, *v) } else { a },
            );
        // 1 kHz is mel 15 on the Slaney scale; 80 bands span 0..~45 mel → band ~26
        assert!((24..=29).contains(&peak), "peak band {peak}");
        let max = mel.iter().cloned().fold(f32::MIN, f32::max);
        let pad = col(180);
        assert!(
            pad.iter().all(|v| (v - (max - 2.0)).abs() < 1e-5),
            "padding not at global max - 8"
        );
    }
}
