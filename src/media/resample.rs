//! Sample-rate conversion: 8 kHz ↔ 16 kHz for the recogniser, and any rate → 8/16 kHz for
//! WAV input. Built on rubato's synchronous FFT resampler (`FftFixedIn`: overlap-add with a
//! Blackman-Harris windowed sinc low-pass, stop band below −90 dB), which rejects the aliases
//! of a down-conversion and the images of an up-conversion (see the tests).
//!
//! Two forms:
//! - [`to_rate`] / [`to_rate_f32`]: a whole buffer, delay-compensated, output length
//!   `round(len × to / from)`; for files and prompts.
//! - [`Resampler`]: streaming, any input lengths (e.g. 20 ms frames), delay-compensated so
//!   output sample *n* lines up with input time *n / to*; [`Resampler::flush`] drains the
//!   tail. For the live 8 kHz → 16 kHz feed of the recogniser.
//!
//! ```
//! use voicenav::media::resample::{self, Resampler};
//! let pcm8k = vec![0i16; 8000];
//! let pcm16k = resample::to_rate(&pcm8k, 8000, 16000).unwrap();
//! assert_eq!(pcm16k.len(), 16000);
//!
//! let mut r = Resampler::new(8000, 16000).unwrap();
//! let mut out = Vec::new();
//! for frame in pcm8k.chunks(160) {
//!     r.process(frame, &mut out); // appends
//! }
//! r.flush(&mut out);
//! assert_eq!(out.len(), 16000);
//! ```

use rubato::{FftFixedIn, Resampler as _};

/// Resampling errors.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    #[error("unsupported sample rate conversion {from} Hz → {to} Hz")]
    Rates { from: u32, to: u32 },
    #[error("resampler: {0}")]
    Rubato(String),
}

/// Whole-buffer conversion of i16 PCM from `from` Hz to `to` Hz.
pub fn to_rate(input: &[i16], from: u32, to: u32) -> Result<Vec<i16>, ResampleError> {
    if from == to {
        return Ok(input.to_vec());
    }
    let mut r = Resampler::new(from, to)?;
    let mut out = Vec::with_capacity(expected_len(input.len() as u64, from, to) as usize);
    r.process(input, &mut out);
    r.flush(&mut out);
    Ok(out)
}

/// Whole-buffer conversion of f32 samples (any scale) from `from` Hz to `to` Hz.
pub fn to_rate_f32(input: &[f32], from: u32, to: u32) -> Result<Vec<f32>, ResampleError> {
    if from == to {
        return Ok(input.to_vec());
    }
    let mut r = Resampler::new(from, to)?;
    let mut out = Vec::with_capacity(expected_len(input.len() as u64, from, to) as usize);
    r.process_f32(input, &mut out);
    r.flush_f32(&mut out);
    Ok(out)
}

fn expected_len(n: u64, from: u32, to: u32) -> u64 {
    (n * to as u64 + from as u64 / 2) / from as u64
}

/// A streaming resampler for one mono stream.
pub struct Resampler {
    from: u32,
    to: u32,
    inner: Option<Inner>,
    /// Samples taken in and handed out (delay-compensated), for exact lengths.
    total_in: u64,
    total_out: u64,
}

struct Inner {
    rubato: FftFixedIn<f32>,
    chunk: usize,
    pending: Vec<f32>,
    out: Vec<Vec<f32>>,
    /// Output samples still to discard (the filter's delay).
    skip: usize,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz (both 1 kHz … 384 kHz).
    pub fn new(from: u32, to: u32) -> Result<Resampler, ResampleError> {
        if !(1000..=384_000).contains(&from) || !(1000..=384_000).contains(&to) {
            return Err(ResampleError::Rates { from, to });
        }
        let inner = if from == to {
            None
        } else {
            // 20 ms chunks: one RTP frame at a time, small latency.
            let chunk = (from as usize / 50).max(1);
            let rubato = FftFixedIn::<f32>::new(from as usize, to as usize, chunk, 1, 1)
                .map_err(|e| ResampleError::Rubato(e.to_string()))?;
            let chunk = rubato.input_frames_next();
            let skip = rubato.output_delay();
            let out = vec![vec![0.0; rubato.output_frames_max()]];
            Some(Inner {
                rubato,
                chunk,
                pending: Vec::with_capacity(chunk),
                out,
                skip,
            })
        };
        Ok(Resampler {
            from,
            to,
            inner,
            total_in: 0,
            total_out: 0,
        })
    }

    pub fn from_rate(&self) -> u32 {
        self.from
    }

    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// Resamples `input`, appending what is ready to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        self.run(
            input.iter().map(|&x| x as f32 / 32768.0),
            input.len(),
            &mut |y| out.push(to_i16(y)),
        );
    }

    /// Like [`Resampler::process`] for f32 samples.
    pub fn process_f32(&mut self, input: &[f32], out: &mut Vec<f32>) {
        self.run(input.iter().copied(), input.len(), &mut |y| out.push(y));
    }

    /// Drains the tail: after it, `out` holds `round(total_in × to / from)` samples overall.
    pub fn flush(&mut self, out: &mut Vec<i16>) {
        self.drain(&mut |y| out.push(to_i16(y)));
    }

    /// Like [`Resampler::flush`] for f32 samples.
    pub fn flush_f32(&mut self, out: &mut Vec<f32>) {
        self.drain(&mut |y| out.push(y));
    }

    fn run(&mut self, input: impl Iterator<Item = f32>, n: usize, emit: &mut dyn FnMut(f32)) {
        self.total_in += n as u64;
        let Some(inner) = self.inner.as_mut() else {
            for x in input {
                emit(x);
            }
            self.total_out += n as u64;
            return;
        };
        for x in input {
            inner.pending.push(x);
            if inner.pending.len() == inner.chunk {
                self.total_out += inner.step(emit, u64::MAX);
            }
        }
    }

    fn drain(&mut self, emit: &mut dyn FnMut(f32)) {
        let want = expected_len(self.total_in, self.from, self.to);
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        let mut guard = 0;
        while self.total_out < want && guard < 64 {
            inner.pending.resize(inner.chunk, 0.0);
            self.total_out += inner.step(emit, want - self.total_out);
            guard += 1;
        }
        inner.pending.clear();
        // A fresh stream may follow: reset to the state of a new resampler.
        inner.rubato.reset();
        inner.skip = inner.rubato.output_delay();
        self.total_in = 0;
        self.total_out = 0;
    }
}

impl Inner {
    /// Runs one full chunk; emits at most `limit` samples; returns how many were emitted.
    fn step(&mut self, emit: &mut dyn FnMut(f32), limit: u64) -> u64 {
        let input = [&self.pending[..]];
        let produced = match self.rubato.process_into_buffer(&input, &mut self.out, None) {
            Ok((_, n)) => n,
            // Buffers are sized from the resampler itself; a failure means a bug, and the
            // chunk is dropped rather than panicking in a call.
            Err(_) => 0,
        };
        self.pending.clear();
        let mut emitted = 0u64;
        for &y in &self.out[0][..produced] {
            if self.skip > 0 {
                self.skip -= 1;
                continue;
            }
            if emitted >= limit {
                break;
            }
            emit(y);
            emitted += 1;
        }
        emitted
    }
}

#[inline]
fn to_i16(y: f32) -> i16 {
    (y * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f32, rate: u32, n: usize, amp: f32) -> Vec<f32> {
        (0..n)
            .map(|i| amp * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    /// Power of `x` at `freq` (Goertzel), normalised per sample.
    fn power_at(x: &[f32], freq: f32, rate: u32) -> f32 {
        let w = 2.0 * std::f32::consts::PI * freq / rate as f32;
        let c = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for &v in x {
            let s = v + c * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let p = s1 * s1 + s2 * s2 - c * s1 * s2;
        (p / (x.len() as f32 * x.len() as f32 / 4.0)).sqrt()
    }

    fn db(x: f32) -> f32 {
        20.0 * x.max(1e-12).log10()
    }

    #[test]
    fn lengths_are_exact_for_whole_buffers() {
        for (from, to, n) in [
            (8000, 16000, 1234),
            (16000, 8000, 999),
            (44100, 8000, 44100),
            (48000, 16000, 480),
            (22050, 8000, 7),
        ] {
            let out = to_rate(&vec![100i16; n], from, to).unwrap();
            assert_eq!(
                out.len() as u64,
                expected_len(n as u64, from, to),
                "{from}->{to} n={n}"
            );
        }
        assert!(to_rate(&[1, 2, 3], 8000, 0).is_err());
    }

    #[test]
    fn an_in_band_tone_passes_with_its_phase() {
        // 1 kHz at 8 kHz → 16 kHz: same amplitude, and aligned in time (delay compensated).
        let x = tone(1000.0, 8000, 8000, 0.5);
        let y = to_rate_f32(&x, 8000, 16000).unwrap();
        let reference = tone(1000.0, 16000, 16000, 0.5);
        let mid = &y[2000..14000];
        assert!(
            (rms(mid) - 0.5 / 2f32.sqrt()).abs() < 0.01,
            "rms {}",
            rms(mid)
        );
        let err: Vec<f32> = mid
            .iter()
            .zip(&reference[2000..14000])
            .map(|(a, b)| a - b)
            .collect();
        assert!(
            db(rms(&err) / rms(mid)) < -40.0,
            "misaligned: {} dB",
            db(rms(&err) / rms(mid))
        );
    }

    #[test]
    fn downsampling_rejects_aliases() {
        // A 6 kHz tone at 16 kHz would alias to 2 kHz at 8 kHz; it must be filtered out.
        let pass = to_rate_f32(&tone(1000.0, 16000, 32000, 0.5), 16000, 8000).unwrap();
        let stop = to_rate_f32(&tone(6000.0, 16000, 32000, 0.5), 16000, 8000).unwrap();
        let pass_db = db(power_at(&pass[1000..15000], 1000.0, 8000));
        let alias_db = db(power_at(&stop[1000..15000], 2000.0, 8000));
        let rejection = pass_db - alias_db;
        assert!(rejection > 60.0, "alias rejection only {rejection:.1} dB");
        // Also overall: whatever leaks is far below the signal.
        assert!(db(rms(&stop[1000..15000]) / rms(&pass[1000..15000])) < -60.0);
    }

    #[test]
    fn upsampling_rejects_images() {
        // 1 kHz at 8 kHz → 16 kHz; zero-stuffing would leave an image at 7 kHz.
        let y = to_rate_f32(&tone(1000.0, 8000, 16000, 0.5), 8000, 16000).unwrap();
        let sig = db(power_at(&y[2000..30000], 1000.0, 16000));
        let image = db(power_at(&y[2000..30000], 7000.0, 16000));
        assert!(
            sig - image > 60.0,
            "image rejection only {:.1} dB",
            sig - image
        );
    }

    #[test]
    fn streaming_matches_whole_buffer_and_any_chunking() {
        let x: Vec<i16> = tone(440.0, 8000, 4000, 0.3)
            .iter()
            .map(|v| (v * 32767.0) as i16)
            .collect();
        let whole = to_rate(&x, 8000, 16000).unwrap();
        let mut r = Resampler::new(8000, 16000).unwrap();
        let mut out = Vec::new();
        for chunk in x.chunks(37) {
            r.process(chunk, &mut out);
        }
        r.flush(&mut out);
        assert_eq!(out, whole);
        // Reusable after flush.
        let mut again = Vec::new();
        r.process(&x, &mut again);
        r.flush(&mut again);
        assert_eq!(again, whole);
    }

    #[test]
    fn arbitrary_rates_reach_8k() {
        let y = to_rate_f32(&tone(500.0, 44100, 44100, 0.5), 44100, 8000).unwrap();
        assert_eq!(y.len(), 8000);
        assert!((rms(&y[500..7500]) - 0.3536).abs() < 0.01);
        assert!(db(power_at(&y[500..7500], 500.0, 8000)) > -7.0);
    }
}
