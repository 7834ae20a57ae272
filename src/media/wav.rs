//! WAV input and output (RIFF/WAVE via `hound`): read any WAV — PCM 8/16/24/32-bit or
//! 32-bit float, any rate, any channel count — as mono i16 at the rate the pipeline wants
//! (channels averaged, then [`resample`](super::resample)d); write mono 16-bit WAVs.
//!
//! ```no_run
//! use voicenav::media::wav;
//! let pcm8k: Vec<i16> = wav::read_mono("call.wav", 8000).unwrap();
//! ```
//!
//! Bad input (not a WAV, truncated data, an unsupported format) is a [`WavError`] naming
//! the file; nothing panics.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::resample::{self, ResampleError};

/// WAV errors.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: hound::Error },
    #[error("{path}: unsupported WAV format: {what}")]
    Unsupported { path: PathBuf, what: String },
    #[error("{path}: {source}")]
    Resample {
        path: PathBuf,
        source: ResampleError,
    },
    #[error("{path}: {source}")]
    Write { path: PathBuf, source: hound::Error },
}

/// A decoded WAV, channels averaged to mono, samples scaled to −1.0 … 1.0.
#[derive(Debug, Clone)]
pub struct MonoAudio {
    pub rate: u32,
    pub samples: Vec<f32>,
}

/// Reads `path` as mono i16 at `rate` Hz (8000 or 16000 in practice; any rate works).
pub fn read_mono(path: impl AsRef<Path>, rate: u32) -> Result<Vec<i16>, WavError> {
    let path = path.as_ref();
    let f = std::fs::File::open(path).map_err(|e| WavError::Read {
        path: path.into(),
        source: hound::Error::IoError(e),
    })?;
    read_mono_from(std::io::BufReader::new(f), path, rate)
}

/// Like [`read_mono`] from any reader; `name` is used in errors.
pub fn read_mono_from<R: Read>(reader: R, name: &Path, rate: u32) -> Result<Vec<i16>, WavError> {
    let audio = decode(reader, name)?;
    let resampled = resample::to_rate_f32(&audio.samples, audio.rate, rate).map_err(|source| {
        WavError::Resample {
            path: name.into(),
            source,
        }
    })?;
    Ok(resampled
        .iter()
        .map(|&y| (y * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect())
}

/// Decodes a WAV to mono f32 at its own rate.
pub fn decode<R: Read>(reader: R, name: &Path) -> Result<MonoAudio, WavError> {
    let err = |source| WavError::Read {
        path: name.into(),
        source,
    };
    let mut r = hound::WavReader::new(reader).map_err(err)?;
    let spec = r.spec();
    let channels = spec.channels as usize;
    if channels == 0 || spec.sample_rate == 0 {
        return Err(WavError::Unsupported {
            path: name.into(),
            what: format!("{channels} channels at {} Hz", spec.sample_rate),
        });
    }
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => {
            r.samples::<f32>().collect::<Result<_, _>>().map_err(err)?
        }
        (hound::SampleFormat::Int, bits @ 1..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(err)?
        }
        (fmt, bits) => {
            return Err(WavError::Unsupported {
                path: name.into(),
                what: format!("{fmt:?} {bits}-bit samples"),
            });
        }
    };
    let samples = if channels == 1 {
        interleaved
    } else {
        interleaved
            .chunks_exact(channels)
            .map(|f| f.iter().sum::<f32>() / channels as f32)
            .collect()
    };
    Ok(MonoAudio {
        rate: spec.sample_rate,
        samples,
    })
}

/// Writes mono 16-bit PCM.
pub fn write_mono(path: impl AsRef<Path>, rate: u32, samples: &[i16]) -> Result<(), WavError> {
    let path = path.as_ref();
    let err = |source| WavError::Write {
        path: path.into(),
        source,
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    for &s in samples {
        w.write_sample(s).map_err(err)?;
    }
    w.finalize().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, spec: hound::WavSpec, frames: usize, f: impl Fn(usize, usize) -> f64) {
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..frames {
            for ch in 0..spec.channels as usize {
                let v = f(i, ch);
                match (spec.sample_format, spec.bits_per_sample) {
                    (hound::SampleFormat::Float, _) => w.write_sample(v as f32).unwrap(),
                    (_, 8) => w.write_sample((v * 127.0) as i8).unwrap(),
                    (_, 16) => w.write_sample((v * 32767.0) as i16).unwrap(),
                    (_, 24) => w.write_sample((v * 8_388_607.0) as i32).unwrap(),
                    _ => w.write_sample((v * 2_147_483_647.0) as i32).unwrap(),
                }
            }
        }
        w.finalize().unwrap();
    }

    #[test]
    fn reads_every_format_rate_and_channel_count_as_8k_mono() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (8000, 1, 16, hound::SampleFormat::Int),
            (16000, 1, 16, hound::SampleFormat::Int),
            (44100, 2, 16, hound::SampleFormat::Int),
            (48000, 2, 24, hound::SampleFormat::Int),
            (22050, 1, 8, hound::SampleFormat::Int),
            (32000, 2, 32, hound::SampleFormat::Float),
            (11025, 3, 32, hound::SampleFormat::Int),
        ];
        for (rate, channels, bits, fmt) in cases {
            let path = dir.path().join(format!("t{rate}_{channels}_{bits}.wav"));
            let spec = hound::WavSpec {
                channels,
                sample_rate: rate,
                bits_per_sample: bits,
                sample_format: fmt,
            };
            // One second of 400 Hz at half scale, on every channel (the right one inverted
            // and doubled would cancel badly, so use the same signal).
            let frames = rate as usize;
            write(&path, spec, frames, |i, _| {
                0.5 * (2.0 * std::f64::consts::PI * 400.0 * i as f64 / rate as f64).sin()
            });
            let pcm = read_mono(&path, 8000).unwrap();
            assert_eq!(pcm.len(), 8000, "{path:?}");
            let rms = (pcm[400..7600]
                .iter()
                .map(|&s| (s as f64).powi(2))
                .sum::<f64>()
                / 7200.0)
                .sqrt();
            assert!(
                (rms - 0.5 * 32768.0 / 2f64.sqrt()).abs() < 300.0,
                "{path:?}: rms {rms}"
            );
        }
    }

    #[test]
    fn stereo_channels_are_averaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lr.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        write(&path, spec, 100, |_, ch| if ch == 0 { 0.5 } else { 0.0 });
        let pcm = read_mono(&path, 8000).unwrap();
        assert!(
            pcm.iter().all(|&s| (s - 8191).abs() <= 1),
            "{:?}",
            &pcm[..4]
        );
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.wav");
        std::fs::write(&path, b"this is not a wav file at all").unwrap();
        let e = read_mono(&path, 8000).unwrap_err().to_string();
        assert!(e.contains("junk.wav"), "{e}");
        let e = read_mono(dir.path().join("missing.wav"), 8000)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.wav"), "{e}");
    }

    #[test]
    fn write_then_read_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.wav");
        let pcm: Vec<i16> = (0..800).map(|i| (i * 37 % 2000) as i16 - 1000).collect();
        write_mono(&path, 8000, &pcm).unwrap();
        assert_eq!(read_mono(&path, 8000).unwrap(), pcm);
    }

    #[test]
    fn real_clip_reads_at_8k() {
        let Some(dir) = crate::media::testdata::speech_dir() else {
            eprintln!("SKIP: shared Mandarin clips not found");
            return;
        };
        let pcm = read_mono(dir.join("wenet_nst_ID001.wav"), 8000).unwrap();
        assert_eq!(pcm.len(), 49280 / 2);
        assert!(pcm.iter().any(|&s| s.abs() > 1000));
    }
}
