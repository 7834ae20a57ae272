//! The speech benchmark behind `scripts/bench-asr` (figures go to docs/BENCHMARKS.md
//! `## speech`). Not a test: it takes minutes and prints a Markdown table per section.
//!
//! usage: cargo run --example bench_asr -- [cer|latency|callers|tts|all] [--clips DIR]
//!        [--callers DIR] [--every N]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use voicenav::asr::text::{cer_counts, normalise_for_cer};
use voicenav::asr::whisper::{
    DecodeOptions, Guards, WhisperConfig, WhisperEngine, WhisperModel, WhisperStream, Window,
};
use voicenav::asr::{AsrPool, Bias, Recognizer, Transcript};
use voicenav::media::{g711, resample, wav};

struct Clip {
    name: String,
    reference: String,
    /// 16 kHz original
    wide: Vec<f32>,
    /// 16 kHz after 8 kHz G.711 µ-law and back
    line: Vec<f32>,
    /// 8 kHz G.711-decoded PCM (what the call path feeds)
    line8k: Vec<i16>,
}

fn to_f32(x: &[i16]) -> Vec<f32> {
    x.iter().map(|s| *s as f32 / 32768.0).collect()
}

fn load_clip(path: &Path, name: String, reference: String) -> Clip {
    let wide = wav::read_mono(path, 16_000).expect("clip");
    let narrow = resample::to_rate(&wide, 16_000, 8_000).expect("down");
    let line8k = g711::ulaw_decode(&g711::ulaw_encode(&narrow));
    let line = resample::to_rate(&line8k, 8_000, 16_000).expect("up");
    Clip {
        name,
        reference,
        wide: to_f32(&wide),
        line: to_f32(&line),
        line8k,
    }
}

fn shared_dir() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    for c in [
        here.join("../shared/speech"),
        here.join("../../shared/speech"),
        PathBuf::from("/work/shared/speech"),
    ] {
        if c.is_dir() {
            return c;
        }
    }
    panic!("no shared/speech folder found")
}

fn zh_clips(dir: &Path) -> Vec<Clip> {
    let tsv = std::fs::read_to_string(dir.join("transcripts.tsv")).expect("transcripts.tsv");
    tsv.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (name, text) = (f.next()?, f.next()?);
            Some(load_clip(
                &dir.join(name),
                name.to_string(),
                text.to_string(),
            ))
        })
        .collect()
}

fn caller_clips(dir: &Path, every: usize) -> Vec<(Clip, String, String)> {
    let tsv = std::fs::read_to_string(dir.join("callers.tsv")).expect("callers.tsv");
    tsv.lines()
        .skip(1)
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .filter_map(|(_, l)| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() < 6 {
                return None;
            }
            let clip = load_clip(&dir.join(format!("{}.wav", f[0])), f[0].into(), f[5].into());
            Some((clip, f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

struct Score {
    edits: usize,
    chars: usize,
    ms: Vec<u64>,
}

impl Score {
    fn new() -> Score {
        Score {
            edits: 0,
            chars: 0,
            ms: Vec::new(),
        }
    }
    fn add(&mut self, reference: &str, hyp: &str, ms: u64) {
        let (e, n) = cer_counts(reference, hyp);
        self.edits += e;
        self.chars += n;
        self.ms.push(ms);
    }
    fn cer(&self) -> f32 {
        100.0 * self.edits as f32 / self.chars.max(1) as f32
    }
    fn mean_ms(&self) -> u64 {
        self.ms.iter().sum::<u64>() / self.ms.len().max(1) as u64
    }
}

/// CPU time of this process so far (all threads), ms: on a machine shared with other
/// work, wall time overstates what the code costs; CPU time does not.
fn cpu_ms() -> u64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let ms = |t: libc::timeval| t.tv_sec as u64 * 1000 + t.tv_usec as u64 / 1000;
    ms(ru.ru_utime) + ms(ru.ru_stime)
}

fn pct(v: &mut [u64], p: f32) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f32 * p).round() as usize]
}

fn model_dir() -> PathBuf {
    voicenav::config::AsrConfig::default().whisper_model
}

fn opts(window: Window, beam: usize, guards: Guards) -> DecodeOptions {
    DecodeOptions {
        beam_size: beam,
        nbest: 3.min(beam),
        window,
        guards,
        speculative: true,
    }
}

fn cer_section(model: &WhisperModel, clips: &[Clip], skip_rows: usize) {
    println!(
        "\n### CER on the shared clips ({} clips, {} characters)\n",
        clips.len(),
        clips
            .iter()
            .map(|c| normalise_for_cer(&c.reference).chars().count())
            .sum::<usize>()
    );
    println!("| configuration | CER 16 kHz | CER G.711 8 kHz | mean decode ms (G.711) |");
    println!("|---|---|---|---|");
    // Before: ct2rs's own Whisper::generate (its per-frame normalised mel, 30 s window).
    if skip_rows == 0 {
        let cfg = ct2rs::Config {
            compute_type: ct2rs::ComputeType::INT8,
            num_threads_per_replica: 2,
            ..Default::default()
        };
        let w = ct2rs::Whisper::new(model_dir(), cfg).expect("ct2rs whisper");
        let o = ct2rs::WhisperOptions {
            beam_size: 5,
            ..Default::default()
        };
        let (mut a, mut b) = (Score::new(), Score::new());
        for c in clips {
            for (s, audio) in [(&mut a, &c.wide), (&mut b, &c.line)] {
                let t = Instant::now();
                let out = w
                    .generate(audio, Some("zh"), false, &o)
                    .map(|v| v.concat())
                    .unwrap_or_default();
                s.add(&c.reference, &out, t.elapsed().as_millis() as u64);
            }
        }
        println!("| before: ct2rs `Whisper::generate` (crate mel, 30 s, beam 5, no prompt) | {:.1}% | {:.1}% | {} |", a.cer(), b.cer(), b.mean_ms());
    }
    let open = Bias::open();
    let no_prompt = Bias::open();
    let prompted = Bias {
        use_prompt: true,
        ..Bias::open()
    };
    let runs: Vec<(&str, DecodeOptions, &Bias)> = vec![
        (
            "reference mel, 30 s window, beam 5, no prompt, no guards",
            opts(Window::Full, 5, Guards::none()),
            &no_prompt,
        ),
        (
            "+ guards",
            opts(Window::Full, 5, Guards::default()),
            &no_prompt,
        ),
        (
            "+ guards + base prompt 以下是普通话的句子。",
            opts(Window::Full, 5, Guards::default()),
            &prompted,
        ),
        (
            "shipped (guards, no prompt), beam 1 (greedy)",
            opts(Window::Full, 1, Guards::default()),
            &open,
        ),
        (
            "shipped, fit window (+1 s pad, min 10 s)",
            opts(
                Window::Fit {
                    margin: 100,
                    min: 1000,
                },
                5,
                Guards::default(),
            ),
            &open,
        ),
        (
            "shipped, fit window (+0.5 s, no min)",
            opts(Window::Fit { margin: 50, min: 0 }, 5, Guards::default()),
            &open,
        ),
    ];
    for (name, o, bias) in runs.into_iter().skip(skip_rows) {
        let (mut a, mut b) = (Score::new(), Score::new());
        let mut guards = 0;
        for c in clips {
            for (s, audio) in [(&mut a, &c.wide), (&mut b, &c.line)] {
                let t = Instant::now();
                let r = model.recognize(audio, bias, &o).unwrap_or_default();
                guards += r.guards.len();
                s.add(&c.reference, r.text(), t.elapsed().as_millis() as u64);
            }
        }
        println!(
            "| {name} | {:.1}% | {:.1}% | {} |",
            a.cer(),
            b.cer(),
            b.mean_ms()
        );
        let _ = guards;
    }
    // per-clip detail of the shipped configuration through G.711
    println!("\nPer clip, shipped configuration, through G.711:\n");
    println!("| clip | reference | recognised | CER |");
    println!("|---|---|---|---|");
    for c in clips {
        let r = model
            .recognize(&c.line, &open, &DecodeOptions::default())
            .unwrap_or_default();
        let (e, n) = cer_counts(&c.reference, r.text());
        println!(
            "| {} | {} | {} | {:.0}% |",
            c.name,
            c.reference,
            r.text(),
            100.0 * e as f32 / n.max(1) as f32
        );
    }
}

/// End of speech → final text, for the call path: 8 kHz G.711 frames fed in real time,
/// the endpointer's pause at 200 ms of silence, the endpoint at 700 ms.
fn latency_section(model: Arc<WhisperModel>, clips: &[Clip]) {
    // BENCH_ROWS=0,3 runs only those rows (the machine is shared; full runs take long).
    let rows: Option<Vec<usize>> = std::env::var("BENCH_ROWS")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect());
    println!("\n### End of speech → final text (8 kHz G.711 stream, endpoint 900 ms after speech as media::vad's default, pause hint at 200 ms)\n");
    println!("| configuration | p50 ms (measured) | p95 ms (measured) | p50 ms (CPU-time estimate, unloaded) | p95 ms (estimate) | mean decode ms | RTF |");
    println!("|---|---|---|---|---|---|---|");
    let pool = AsrPool::new(1, Duration::from_secs(5));
    let short: Vec<&Clip> = clips
        .iter()
        .filter(|c| (8_000..=5 * 8_000 + 800).contains(&c.line8k.len()))
        .collect();
    for (name, window, speculative) in [
        ("30 s window, no speculation", Window::Full, false),
        ("30 s window, speculative on pause", Window::Full, true),
        (
            "fit window, no speculation",
            Window::Fit {
                margin: 100,
                min: 1000,
            },
            false,
        ),
        (
            "fit window, speculative on pause",
            Window::Fit {
                margin: 100,
                min: 1000,
            },
            true,
        ),
        (
            "fit window, beam 1 (greedy), speculative on pause",
            Window::FIT,
            true,
        ),
    ]
    .into_iter()
    .enumerate()
    .filter(|(i, _)| rows.as_ref().is_none_or(|r| r.contains(i)))
    .map(|(_, r)| r)
    {
        let beam = if name.contains("beam 1") { 1 } else { 5 };
        let engine = WhisperEngine {
            model: Arc::clone(&model),
            pool: pool.clone(),
            options: DecodeOptions {
                window,
                speculative,
                beam_size: beam,
                nbest: beam.min(3),
                ..DecodeOptions::default()
            },
        };
        let mut lat = Vec::new();
        let mut dec = Vec::new();
        let mut est = Vec::new();
        let mut audio_ms = 0u64;
        for _round in 0..2 {
            for c in &short {
                let mut s = WhisperStream::new(engine.clone(), 8000, Bias::open()).expect("stream");
                for f in c.line8k.chunks(160) {
                    s.accept(f).expect("accept");
                }
                // 200 ms of silence, then the pause hint; 700 ms more until the endpoint
                // (media::vad's default end_silence_ms = 900).
                let silence = [0i16; 160];
                for _ in 0..10 {
                    s.accept(&silence).expect("accept");
                }
                let c_pause = cpu_ms();
                s.pause();
                for _ in 0..35 {
                    std::thread::sleep(Duration::from_millis(20));
                    s.accept(&silence).expect("accept");
                }
                let end = Instant::now();
                let r: Transcript = s.finish().wait().unwrap_or_default();
                lat.push(end.elapsed().as_millis() as u64);
                // Unloaded estimate: the decode's CPU time over its 2 threads, less the
                // 700 ms head start a speculative decode has before the endpoint.
                let decode_cpu = (cpu_ms() - c_pause) / 2;
                let head = if speculative { 700 } else { 0 };
                est.push(decode_cpu.saturating_sub(head));
                dec.push(r.timings.after_end_ms);
                audio_ms += r.timings.audio_ms;
            }
        }
        let decode_total: u64 = dec.iter().sum();
        let rtf = decode_total as f32 / audio_ms.max(1) as f32;
        let mean = decode_total / dec.len().max(1) as u64;
        println!(
            "| {name} | {} | {} | {} | {} | {mean} | {rtf:.2} |",
            pct(&mut lat.clone(), 0.5),
            pct(&mut lat, 0.95),
            pct(&mut est.clone(), 0.5),
            pct(&mut est, 0.95)
        );
    }
    pool.shutdown();
    println!(
        "\n({} utterances of 1–5 s, each twice; 2 threads per decode.)",
        short.len()
    );
}

fn throughput_section(clips: &[Clip]) {
    println!("\n### Concurrent recognitions (2 replicas × 1 thread, pool of 2)\n");
    let cfg = WhisperConfig {
        replicas: 2,
        threads: 1,
        ..WhisperConfig::new(model_dir())
    };
    let model = Arc::new(WhisperModel::load(&cfg).expect("model"));
    let pool = AsrPool::new(2, Duration::from_secs(60));
    for (name, window) in [
        ("30 s window", Window::Full),
        (
            "fit window",
            Window::Fit {
                margin: 100,
                min: 1000,
            },
        ),
    ] {
        let o = DecodeOptions {
            window,
            ..DecodeOptions::default()
        };
        let t = Instant::now();
        let c0 = cpu_ms();
        let mut audio_ms = 0u64;
        let mut pend = Vec::new();
        for _ in 0..2 {
            for c in clips {
                let (m, a, o) = (Arc::clone(&model), c.line.clone(), o.clone());
                audio_ms += (c.line.len() / 16) as u64;
                pend.push(pool.submit(move || m.recognize(&a, &Bias::open(), &o)));
            }
        }
        for p in pend {
            let _ = p.wait();
        }
        let wall = t.elapsed().as_millis() as u64;
        let cpu = cpu_ms() - c0;
        let rtf_core = 2.0 * wall as f32 / audio_ms as f32;
        let cpu_rtf = cpu as f32 / audio_ms as f32;
        println!(
            "- {name}: CPU {:.1} s for {:.1} s of speech → RTF {cpu_rtf:.2} per core (CPU time), {:.1} talkers recognised at once per core",
            cpu as f32 / 1000.0,
            audio_ms as f32 / 1000.0,
            1.0 / cpu_rtf
        );
        println!(
            "- {name}: {:.1} s of speech in {:.1} s wall on 2 cores → RTF per core {rtf_core:.2}, {:.1} simultaneous talkers per core",
            audio_ms as f32 / 1000.0,
            wall as f32 / 1000.0,
            1.0 / rtf_core
        );
    }
    pool.shutdown();
}

fn callers_section(model: &WhisperModel, dir: &Path, every: usize) {
    let clips = caller_clips(dir, every);
    println!(
        "\n### Caller sentences ({} of 254, every {every}th), through G.711\n",
        clips.len()
    );
    let grammars = Path::new(env!("CARGO_MANIFEST_DIR")).join("grammars");
    let open_kw = Bias::for_node(&grammars, Some("open")).expect("grammars/open.txt");
    let mut plain = open_kw.clone();
    plain.use_prompt = false;
    plain.rerank = false;
    let mut prompted = open_kw.clone();
    prompted.use_prompt = true;
    prompted.rerank = false;
    let variants = [
        "no biasing",
        "n-best re-ranked on keywords",
        "keyword prompt",
        "keyword prompt + re-rank",
    ];
    let mut texts: Vec<Vec<String>> = vec![Vec::new(); variants.len()];
    let mut scores: Vec<Score> = (0..variants.len()).map(|_| Score::new()).collect();
    for (c, _, _) in &clips {
        let t = Instant::now();
        let a = model
            .recognize(&c.line, &plain, &DecodeOptions::default())
            .unwrap_or_default();
        let ms = t.elapsed().as_millis() as u64;
        let b = model
            .recognize(&c.line, &prompted, &DecodeOptions::default())
            .unwrap_or_default();
        let outs = [
            a.text().to_string(),
            open_kw
                .rerank(a.alternatives.clone())
                .first()
                .map(|h| h.text.clone())
                .unwrap_or_default(),
            b.text().to_string(),
            open_kw
                .rerank(b.alternatives.clone())
                .first()
                .map(|h| h.text.clone())
                .unwrap_or_default(),
        ];
        for (i, o) in outs.into_iter().enumerate() {
            scores[i].add(&c.reference, &o, ms);
            texts[i].push(o);
        }
    }
    let refs: Vec<String> = clips.iter().map(|(c, _, _)| c.reference.clone()).collect();
    let saved = serde_json::json!({
        "names": clips.iter().map(|(c, _, _)| c.name.clone()).collect::<Vec<_>>(),
        "refs": refs,
        "labels": clips.iter().map(|(_, q, s)| [q.clone(), s.clone()]).collect::<Vec<_>>(),
        "variants": variants,
        "texts": texts,
        "cer": scores.iter().map(|s| s.cer()).collect::<Vec<_>>(),
    });
    let _ = std::fs::write(
        std::env::temp_dir().join("voicenav-bench-callers.json"),
        saved.to_string(),
    );
    let routed = |lines: &[String]| -> Option<(usize, usize, usize)> {
        let labels: Vec<(&str, &str)> = clips
            .iter()
            .map(|(_, q, s)| (q.as_str(), s.as_str()))
            .collect();
        route_accuracy(lines, &labels)
    };
    println!("| biasing | CER | queue right (route rows) | scenario right (route rows) |");
    println!("|---|---|---|---|");
    let show = |r: Option<(usize, usize, usize)>| match r {
        Some((q, s, n)) => (
            format!("{:.0}% ({q}/{n})", 100.0 * q as f32 / n.max(1) as f32),
            format!("{:.0}% ({s}/{n})", 100.0 * s as f32 / n.max(1) as f32),
        ),
        None => ("n/a (no classifier)".into(), "n/a".into()),
    };
    let (q, sc) = show(routed(&refs));
    println!("| the labelled text itself (no recognition) | 0% | {q} | {sc} |");
    for (i, name) in variants.iter().enumerate() {
        let (q, sc) = show(routed(&texts[i]));
        println!("| {name} | {:.1}% | {q} | {sc} |", scores[i].cer());
    }
}

/// Routes recognised lines with `voicenav classify` (the binary beside this example);
/// returns (queue right, scenario right, route rows).
fn route_accuracy(lines: &[String], labels: &[(&str, &str)]) -> Option<(usize, usize, usize)> {
    use std::io::Write;
    let exe = std::env::current_exe()
        .ok()?
        .parent()?
        .parent()?
        .join("voicenav");
    let flows = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows");
    let mut child = std::process::Command::new(exe)
        .args(["classify", "--flows"])
        .arg(&flows)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    for l in lines {
        let one = l.replace(['\n', '\r'], " ");
        writeln!(
            stdin,
            "{}",
            if one.trim().is_empty() {
                "嗯"
            } else {
                one.trim()
            }
        )
        .ok()?;
    }
    drop(stdin);
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if rows.len() != lines.len() {
        return None;
    }
    let (mut q, mut s, mut n) = (0, 0, 0);
    for (row, (queue, scenario)) in rows.iter().zip(labels) {
        if *scenario == "-" {
            continue;
        }
        n += 1;
        if row["queue"].as_str() == Some(queue) {
            q += 1;
        }
        if let Some(got) = row["scenario"].as_str() {
            if got == *scenario || got.starts_with(&format!("{scenario}.")) {
                s += 1;
            }
        }
    }
    Some((q, s, n))
}

/// Non-speech a line carries, with the guards off and on: what Whisper makes of it.
fn guards_section(model: &WhisperModel) {
    println!("\n### Non-speech input, guards off → on (8 kHz G.711, 3 s each)\n");
    println!("| input | guards off | guards on |");
    println!("|---|---|---|");
    let sr = 8000.0f32;
    let n = 24_000usize;
    let mut seed = 12345u32;
    let mut noise = || {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (seed >> 16) as f32 / 32768.0 - 1.0
    };
    let tone = |f: &[f32], amp: f32| -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f32 / sr;
                (f.iter()
                    .map(|hz| (2.0 * std::f32::consts::PI * hz * t).sin())
                    .sum::<f32>()
                    * amp
                    * 32767.0) as i16
            })
            .collect()
    };
    let hiss: Vec<i16> = (0..n).map(|_| (noise() * 0.003 * 32767.0) as i16).collect();
    let white: Vec<i16> = (0..n).map(|_| (noise() * 0.1 * 32767.0) as i16).collect();
    let dtmf = tone(&[697.0, 1209.0], 0.2);
    let dial = tone(&[350.0, 440.0], 0.2);
    // "music on hold": a I–IV–V–I arpeggio of sine notes, 250 ms each
    let notes = [
        261.6, 329.6, 392.0, 349.2, 440.0, 523.3, 392.0, 493.9, 587.3, 261.6, 329.6, 392.0,
    ];
    let music: Vec<i16> = (0..n)
        .map(|i| {
            let hz = notes[(i / 2000) % notes.len()];
            let t = i as f32 / sr;
            ((2.0 * std::f32::consts::PI * hz * t).sin() * 0.2 * 32767.0) as i16
        })
        .collect();
    let inputs: Vec<(&str, Vec<i16>)> = vec![
        ("digital silence", vec![0; n]),
        ("line hiss (−50 dBFS)", hiss),
        ("white noise (−20 dBFS)", white),
        ("DTMF 1 (697+1209 Hz)", dtmf),
        ("dial tone (350+440 Hz)", dial),
        ("music on hold (sine arpeggio)", music),
    ];
    for (name, pcm) in inputs {
        let line = g711::ulaw_decode(&g711::ulaw_encode(&pcm));
        let wide = to_f32(&resample::to_rate(&line, 8000, 16_000).expect("up"));
        let show = |t: Transcript| {
            if t.text().is_empty() {
                format!(
                    "— ({})",
                    t.reason.map(|r| format!("{r:?}")).unwrap_or_default()
                )
            } else {
                format!("“{}”", t.text())
            }
        };
        let off = model
            .recognize(
                &wide,
                &Bias {
                    use_prompt: true,
                    ..Bias::open()
                },
                &opts(Window::Full, 5, Guards::none()),
            )
            .unwrap_or_default();
        let on = model
            .recognize(&wide, &Bias::open(), &DecodeOptions::default())
            .unwrap_or_default();
        println!("| {name} | {} | {} |", show(off), show(on));
    }
}

fn tts_section() {
    use voicenav::tts::{EspeakNg, PromptCache, PromptSource, Voice};
    println!("\n### Prompt rendering (espeak-ng → 8 kHz → G.711 frames)\n");
    let dir = std::env::temp_dir().join(format!("voicenav-bench-tts-{}", std::process::id()));
    let cache =
        PromptCache::new(&dir, g711::Law::Alaw, Arc::new(EspeakNg::default())).expect("cache");
    let mut ms = Vec::new();
    let c0 = cpu_ms();
    for i in 0..20 {
        let p = PromptSource::Text {
            text: format!(
                "您的信用卡本期账单金额为{}元，最后还款日是{}号。",
                1000 + i * 37,
                5 + i % 20
            ),
            voice: Voice::mandarin(),
        };
        let t = Instant::now();
        cache.frames(&p).expect("render");
        ms.push(t.elapsed().as_millis() as u64);
    }
    {
        use voicenav::tts::Synthesizer;
        let e = EspeakNg::default();
        let t = Instant::now();
        let a = e
            .synthesize(
                "您的信用卡本期账单金额为1234元，最后还款日是8号。",
                &Voice::mandarin(),
            )
            .expect("espeak");
        let synth_ms = t.elapsed().as_millis();
        let t = Instant::now();
        let c0 = cpu_ms();
        let pcm = resample::to_rate(&a.samples, a.rate, 8000).expect("resample");
        let rs_ms = t.elapsed().as_millis();
        let rs_cpu = cpu_ms() - c0;
        let t = Instant::now();
        let _ = voicenav::tts::cache::encode_frames(&pcm, g711::Law::Alaw);
        println!("- parts of one render (wall): espeak-ng {synth_ms} ms, resample {} → 8000 Hz {rs_ms} ms (CPU {rs_cpu} ms), G.711 + framing {} µs", a.rate, t.elapsed().as_micros());
    }
    let own_cpu = (cpu_ms() - c0) / 20;
    println!("- CPU time of voicenav's own part per render (resampling, G.711, cache write; espeak-ng is a child process): {own_cpu} ms");
    let p = PromptSource::Text {
        text: "您的信用卡本期账单金额为1000元，最后还款日是5号。".into(),
        voice: Voice::mandarin(),
    };
    let t = Instant::now();
    cache.frames(&p).expect("cached");
    let hit = t.elapsed().as_micros();
    println!("- variable prompt rendered on demand (20 sentences of ~20 characters): p50 {} ms, p95 {} ms; cache hit {hit} µs", pct(&mut ms.clone(), 0.5), pct(&mut ms, 0.95));
    let _ = std::fs::remove_dir_all(dir);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let what = args.first().cloned().unwrap_or_else(|| "all".into());
    let every = args
        .iter()
        .position(|a| a == "--every")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let shared = shared_dir();
    let clips_dir = args
        .iter()
        .position(|a| a == "--clips")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or(shared.join("zh"));
    let callers_dir = args
        .iter()
        .position(|a| a == "--callers")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or(shared.join("callers"));
    let all = what == "all";
    if what == "callers-route" {
        let path = std::env::temp_dir().join("voicenav-bench-callers.json");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("run `callers` first"))
                .expect("json");
        let strs = |x: &serde_json::Value| -> Vec<String> {
            x.as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| s.as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        let labels_owned: Vec<(String, String)> = v["labels"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|l| {
                        (
                            l[0].as_str().unwrap_or("").into(),
                            l[1].as_str().unwrap_or("").into(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let labels: Vec<(&str, &str)> = labels_owned
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        println!("| biasing | CER | queue right (route rows) | scenario right (route rows) |");
        println!("|---|---|---|---|");
        let fmt = |r: Option<(usize, usize, usize)>| match r {
            Some((q, s, n)) => format!(
                "{:.0}% ({q}/{n}) | {:.0}% ({s}/{n})",
                100.0 * q as f32 / n.max(1) as f32,
                100.0 * s as f32 / n.max(1) as f32
            ),
            None => "n/a | n/a".into(),
        };
        println!(
            "| the labelled text itself | 0% | {} |",
            fmt(route_accuracy(&strs(&v["refs"]), &labels))
        );
        for (i, name) in strs(&v["variants"]).iter().enumerate() {
            let texts = strs(&v["texts"][i]);
            println!(
                "| {name} | {:.1}% | {} |",
                v["cer"][i].as_f64().unwrap_or(0.0),
                fmt(route_accuracy(&texts, &labels))
            );
        }
        return;
    }
    if all || what == "tts" {
        tts_section();
    }
    let model = Arc::new(
        WhisperModel::load(&WhisperConfig::new(model_dir()))
            .expect("whisper model (run scripts/setup.sh)"),
    );
    let clips = zh_clips(&clips_dir);
    if all || what == "cer" {
        let skip = args
            .iter()
            .position(|a| a == "--skip-rows")
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        cer_section(&model, &clips, skip);
    }
    if all || what == "guards" {
        guards_section(&model);
    }
    if all || what == "latency" {
        latency_section(Arc::clone(&model), &clips);
    }
    if all || what == "throughput" {
        throughput_section(&clips);
    }
    if all || what == "callers" {
        callers_section(&model, &callers_dir, every);
    }
}
