//! espeak-ng through its command-line tool: `espeak-ng -v VOICE -s RATE --stdout --stdin`,
//! text on stdin (so text starting with `-` is never read as an option), WAV on stdout.
//! espeak-ng streams its WAV with placeholder chunk sizes (0x7ffff…), so the header is
//! read here by hand: the `fmt ` chunk for the rate and format, everything after the
//! `data` chunk header as 16-bit little-endian samples.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Audio, Synthesizer, TtsError, Voice};

/// The espeak-ng backend.
#[derive(Debug, Clone)]
pub struct EspeakNg {
    /// Executable (default `espeak-ng` on PATH).
    pub program: String,
    /// A synthesis taking longer than this is killed.
    pub timeout: Duration,
}

impl Default for EspeakNg {
    fn default() -> Self {
        EspeakNg {
            program: "espeak-ng".into(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl EspeakNg {
    /// Whether espeak-ng runs and knows `voice`.
    pub fn has_voice(&self, voice: &str) -> bool {
        Command::new(&self.program)
            .arg(format!(
                "--voices={}",
                voice.split('-').next().unwrap_or(voice)
            ))
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .any(|w| w == voice)
            })
            .unwrap_or(false)
    }
}

impl Synthesizer for EspeakNg {
    fn synthesize(&self, text: &str, voice: &Voice) -> Result<Audio, TtsError> {
        let mut child = Command::new(&self.program)
            .args([
                "-v",
                &voice.name,
                "-s",
                &voice.rate.clamp(80, 450).to_string(),
                "--stdout",
                "--stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(TtsError::Spawn)?;
        if let Some(mut stdin) = child.stdin.take() {
            // One line: espeak-ng speaks stdin up to EOF.
            let line = text.replace(['\n', '\r'], " ");
            stdin.write_all(line.as_bytes()).map_err(TtsError::Spawn)?;
        }
        let mut stdout = child
            .stdout
            .take()
            .ok_or(TtsError::BadOutput("no stdout"))?;
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            stdout.read_to_end(&mut buf).map(|_| buf)
        });
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait().map_err(TtsError::Spawn)? {
                Some(s) => break s,
                None if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(TtsError::Timeout(self.timeout.as_secs()));
                }
                None => std::thread::sleep(Duration::from_millis(2)),
            }
        };
        let bytes = reader
            .join()
            .map_err(|_| TtsError::BadOutput("reader thread failed"))?
            .map_err(TtsError::Spawn)?;
        if !status.success() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return Err(TtsError::Failed(format!("{status}: {}", err.trim())));
        }
        parse_stream_wav(&bytes)
    }

    fn id(&self) -> String {
        let v = Command::new(&self.program)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        format!("espeak-ng {v}")
    }
}

/// Parses espeak-ng's streamed WAV (16-bit PCM mono, chunk sizes not trusted).
pub fn parse_stream_wav(bytes: &[u8]) -> Result<Audio, TtsError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(TtsError::BadOutput("no RIFF/WAVE header"));
    }
    let mut pos = 12;
    let mut rate = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            if body + 16 > bytes.len() {
                return Err(TtsError::BadOutput("truncated fmt chunk"));
            }
            let format = u16::from_le_bytes([bytes[body], bytes[body + 1]]);
            let channels = u16::from_le_bytes([bytes[body + 2], bytes[body + 3]]);
            let bits = u16::from_le_bytes([bytes[body + 14], bytes[body + 15]]);
            if format != 1 || channels != 1 || bits != 16 {
                return Err(TtsError::BadOutput("not 16-bit mono PCM"));
            }
            rate = Some(u32::from_le_bytes([
                bytes[body + 4],
                bytes[body + 5],
                bytes[body + 6],
                bytes[body + 7],
            ]));
            pos = body + size;
        } else if id == b"data" {
            let rate = rate.ok_or(TtsError::BadOutput("data before fmt"))?;
            let samples = bytes[body..]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            return Ok(Audio { rate, samples });
        } else {
            pos = body + size + (size & 1);
        }
    }
    Err(TtsError::BadOutput("no data chunk"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_header_with_placeholder_sizes_is_read() {
        let mut w = Vec::new();
        w.extend_from_slice(b"RIFF\x24\xf0\xff\x7fWAVEfmt \x10\0\0\0\x01\0\x01\0\x22\x56\0\0\x44\xac\0\0\x02\0\x10\0");
        w.extend_from_slice(b"data\0\xf0\xff\x7f");
        w.extend_from_slice(&[1, 0, 0xff, 0xff, 7]);
        let a = parse_stream_wav(&w).expect("parse");
        assert_eq!(a.rate, 22050);
        assert_eq!(a.samples, vec![1, -1]);
        assert!(parse_stream_wav(b"not a wav at all").is_err());
    }

    #[test]
    fn espeak_speaks_mandarin_hanzi() {
        let e = EspeakNg::default();
        if !e.has_voice("cmn-latn-pinyin") {
            println!(
                "SKIP: espeak-ng with voice cmn-latn-pinyin not installed (run scripts/setup.sh)"
            );
            return;
        }
        let a = e
            .synthesize("您好，欢迎致电", &Voice::mandarin())
            .expect("synthesis");
        assert_eq!(a.rate, 22050);
        let secs = a.samples.len() as f32 / a.rate as f32;
        assert!(secs > 0.8 && secs < 4.0, "{secs} s");
        let slow = e
            .synthesize("您好，欢迎致电", &Voice::new("cmn-latn-pinyin", 100))
            .expect("synthesis");
        assert!(
            slow.samples.len() > a.samples.len() * 5 / 4,
            "a slower rate gives longer audio"
        );
        // text that looks like an option is spoken, not parsed
        let dash = e
            .synthesize("-x 一", &Voice::mandarin())
            .expect("synthesis");
        assert!(!dash.samples.is_empty());
    }
}
