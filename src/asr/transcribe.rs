//! `voicenav transcribe FILE.wav [--grammar F] [--json] [--backend whisper|vosk]`: a WAV of
//! any rate and channel count through the configured recogniser. Prints the text (with
//! `--json` one object: n-best with confidences, the no-result reason, guards, timings).
//!
//! Bad input never hangs or crashes: a missing, empty, truncated or non-WAV file, or one
//! longer than [`MAX_FILE_SECS`], is a clear error (exit 2); silence, noise, tones or
//! music give an empty text with a reason (exit 0).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::json;

use super::{Bias, Transcript};
use crate::cli::TranscribeArgs;
use crate::config::{AsrBackend, AsrConfig, Config};
use crate::media::{resample, wav};

/// Longest file `transcribe` accepts.
pub const MAX_FILE_SECS: f32 = 600.0;

/// The recogniser settings: the config file's when it exists, else the defaults.
pub fn asr_config(file: &Path) -> anyhow::Result<AsrConfig> {
    if file.exists() {
        Ok(Config::load(file)?.raw.asr)
    } else {
        Ok(AsrConfig::default())
    }
}

/// Reads any WAV as mono 16 kHz floats with clear errors.
pub fn read_audio(path: &Path, rate: u32) -> anyhow::Result<(Vec<f32>, u32)> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if meta.len() == 0 {
        bail!("{}: the file is empty", path.display());
    }
    let f =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let audio = wav::decode(std::io::BufReader::new(f), path)
        .map_err(|e| anyhow::anyhow!("{e} (not a readable WAV)"))?;
    let secs = audio.samples.len() as f32 / audio.rate as f32;
    if secs > MAX_FILE_SECS {
        bail!(
            "{}: {secs:.0} s of audio is longer than the {MAX_FILE_SECS:.0} s transcribe accepts",
            path.display()
        );
    }
    let clean: Vec<f32> = audio
        .samples
        .iter()
        .map(|x| {
            if x.is_finite() {
                x.clamp(-1.0, 1.0)
            } else {
                0.0
            }
        })
        .collect();
    let out = resample::to_rate_f32(&clean, audio.rate, rate)
        .with_context(|| format!("{}", path.display()))?;
    Ok((out, audio.rate))
}

/// Runs the command.
pub fn run(args: &TranscribeArgs) -> anyhow::Result<ExitCode> {
    let cfg = asr_config(&args.config)?;
    let bias = match &args.grammar {
        Some(g) => {
            Bias::load(g).with_context(|| format!("{}: cannot read the grammar", g.display()))?
        }
        None => Bias::open(),
    };
    let backend = match args.backend.as_deref() {
        None => cfg.backend,
        Some("whisper") => AsrBackend::Whisper,
        Some("vosk") => AsrBackend::Vosk,
        Some(other) => bail!("unknown backend `{other}` (whisper or vosk)"),
    };
    let started = Instant::now();
    let (name, t, file_rate) = match backend {
        AsrBackend::Whisper => {
            let (audio, file_rate) = read_audio(&args.file, 16_000)?;
            (
                "whisper",
                whisper_transcribe(&cfg, &audio, &bias)?,
                file_rate,
            )
        }
        AsrBackend::Vosk => {
            let (audio, file_rate) = read_audio(&args.file, 16_000)?;
            ("vosk", vosk_transcribe(&cfg, &audio, &bias)?, file_rate)
        }
        AsrBackend::None => {
            bail!("asr.backend is `none` (keypad only): nothing to transcribe with")
        }
    };
    let total_ms = started.elapsed().as_millis() as u64;
    if args.json {
        let out = json!({
            "file": args.file.display().to_string(),
            "backend": name,
            "sample_rate": file_rate,
            "text": t.text(),
            "confidence": t.confidence(),
            "alternatives": t.alternatives,
            "reason": t.reason,
            "guards": t.guards,
            "timings": t.timings,
            "total_ms": total_ms,
        });
        println!("{out}");
    } else {
        println!("{}", t.text());
        if let Some(r) = t.reason {
            eprintln!(
                "voicenav: no speech recognised ({})",
                serde_json::to_string(&r)
                    .unwrap_or_default()
                    .trim_matches('"')
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "whisper")]
fn whisper_transcribe(cfg: &AsrConfig, audio: &[f32], bias: &Bias) -> anyhow::Result<Transcript> {
    use super::whisper::{DecodeOptions, WhisperConfig, WhisperModel};
    let model = WhisperModel::load(&WhisperConfig::new(&cfg.whisper_model))?;
    Ok(model.transcribe_long(audio, bias, &DecodeOptions::default())?)
}

#[cfg(not(feature = "whisper"))]
fn whisper_transcribe(_: &AsrConfig, _: &[f32], _: &Bias) -> anyhow::Result<Transcript> {
    Err(super::AsrError::NotBuilt("whisper").into())
}

#[cfg(feature = "vosk")]
fn vosk_transcribe(cfg: &AsrConfig, audio: &[f32], bias: &Bias) -> anyhow::Result<Transcript> {
    use super::Recognizer as _;
    let engine = super::vosk::VoskEngine::load(&cfg.vosk_model)?;
    let mut s = engine.stream(16_000, bias)?;
    let pcm: Vec<i16> = audio.iter().map(|x| (x * 32767.0) as i16).collect();
    for chunk in pcm.chunks(1600) {
        s.accept(chunk)?;
    }
    Ok(s.finish().wait()?)
}

#[cfg(not(feature = "vosk"))]
fn vosk_transcribe(_: &AsrConfig, _: &[f32], _: &Bias) -> anyhow::Result<Transcript> {
    Err(super::AsrError::NotBuilt("vosk").into())
}
