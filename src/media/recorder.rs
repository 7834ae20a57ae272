//! Call recorder: both directions of a call in one stereo WAV (8 kHz, 16-bit; caller on the
//! left, bot on the right). This is the one IO piece of `media`; the call task owns it and
//! feeds it the frame pairs [`Pipeline::poll_recorded`](super::pipeline::Pipeline::poll_recorded)
//! hands out.
//!
//! No truncated files: the WAV header is rewritten (hound `flush`) every second, so even a
//! killed process leaves a valid file up to the last second; [`Recorder::finish`] on hangup
//! closes it, and dropping an unfinished recorder (the call task panicked and unwound)
//! finalises it too.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Recorder errors.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("recording {path}: {source}")]
    Io { path: PathBuf, source: hound::Error },
}

/// A stereo WAV being written.
pub struct Recorder {
    path: PathBuf,
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    frames_since_flush: u32,
    samples: u64,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("path", &self.path)
            .field("samples", &self.samples)
            .finish()
    }
}

/// Flush the header every this many 20 ms frames.
const FLUSH_FRAMES: u32 = 50;

impl Recorder {
    /// Creates `path` (and its folder).
    pub fn create(path: impl AsRef<Path>) -> Result<Recorder, RecorderError> {
        let path = path.as_ref().to_path_buf();
        let err = |source| RecorderError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(hound::Error::IoError(e)))?;
        }
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(&path, spec).map_err(err)?;
        Ok(Recorder {
            path,
            writer: Some(writer),
            frames_since_flush: 0,
            samples: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seconds recorded so far.
    pub fn seconds(&self) -> f64 {
        self.samples as f64 / 8000.0
    }

    /// Writes one frame pair; the shorter side is padded with silence.
    pub fn write(&mut self, caller: &[i16], bot: &[i16]) -> Result<(), RecorderError> {
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        let err = |source| RecorderError::Io {
            path: self.path.clone(),
            source,
        };
        let n = caller.len().max(bot.len());
        for i in 0..n {
            w.write_sample(caller.get(i).copied().unwrap_or(0))
                .map_err(err)?;
            w.write_sample(bot.get(i).copied().unwrap_or(0))
                .map_err(err)?;
        }
        self.samples += n as u64;
        self.frames_since_flush += 1;
        if self.frames_since_flush >= FLUSH_FRAMES {
            self.frames_since_flush = 0;
            w.flush().map_err(err)?;
        }
        Ok(())
    }

    /// Closes the file with a complete header.
    pub fn finish(mut self) -> Result<PathBuf, RecorderError> {
        if let Some(w) = self.writer.take() {
            w.finalize().map_err(|source| RecorderError::Io {
                path: self.path.clone(),
                source,
            })?;
        }
        Ok(self.path.clone())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(w) = self.writer.take() {
            if let Err(e) = w.finalize() {
                tracing::warn!(path = %self.path.display(), error = %e, "could not finalise recording");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let mut r = hound::WavReader::open(path).unwrap();
        let s: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
        (r.spec(), s)
    }

    #[test]
    fn stereo_caller_left_bot_right_complete_after_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls/abc.wav");
        let mut r = Recorder::create(&path).unwrap();
        for _ in 0..10 {
            r.write(&[100; 160], &[-200; 160]).unwrap();
        }
        r.write(&[1; 80], &[]).unwrap();
        assert_eq!(r.finish().unwrap(), path);
        let (spec, s) = read(&path);
        assert_eq!((spec.channels, spec.sample_rate), (2, 8000));
        assert_eq!(s.len(), 2 * (1600 + 80));
        assert_eq!(&s[..4], &[100, -200, 100, -200]);
        assert_eq!(&s[s.len() - 2..], &[1, 0]);
    }

    #[test]
    fn a_panicking_call_task_still_leaves_a_complete_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.wav");
        let p2 = path.clone();
        let res = std::thread::spawn(move || {
            let mut r = Recorder::create(&p2).unwrap();
            for _ in 0..7 {
                r.write(&[5; 160], &[6; 160]).unwrap();
            }
            panic!("call task crashed");
        })
        .join();
        assert!(res.is_err());
        let (_, s) = read(&path);
        assert_eq!(s.len(), 2 * 7 * 160);
    }

    #[test]
    fn header_is_valid_while_recording() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.wav");
        let mut r = Recorder::create(&path).unwrap();
        for _ in 0..60 {
            r.write(&[7; 160], &[8; 160]).unwrap();
        }
        // Not finished: a reader (or a crash right now) sees at least the first second.
        let (_, s) = read(&path);
        assert_eq!(s.len(), 2 * 50 * 160);
        drop(r);
        assert_eq!(read(&path).1.len(), 2 * 60 * 160);
    }
}
