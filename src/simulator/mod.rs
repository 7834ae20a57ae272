//! The caller simulator, `voicenav call sip:HOST:PORT --script CALLS.yaml [--rate N
//! --concurrency N --repeat N --timeout S]` (issue 10 §6, ARCHITECTURE.md "CLI"): places
//! the scripted calls of a `tests/calls/*.yaml` file over real SIP/RTP against any IVR —
//! voicenav itself in the tests — and prints one JSON line per call with the outcome, the
//! transfer target and context headers, and the timings. The tester's tool that
//! SIPp-with-hand-made-pcaps approximates.
//!
//! | module | what | spec |
//! |---|---|---|
//! | [`script`] | the scripted-call file (+ optional `wav:` and `barge_in:` turn fields) | ARCHITECTURE.md |
//! | [`uac`] | one call's signalling, sans-IO: INVITE/ACK, REFER → 202 + NOTIFY, BYE | RFC 3261, RFC 3515, RFC 3420 |
//! | [`caller`] | one call's media, sans-IO: turn-taking on the bot's prompts, 20 ms G.711, RFC 4733 keys | RFC 3550, RFC 4733 |
//! | [`driver`] | the tokio loop of one call (two UDP sockets, the clock) | — |
//! | [`report`] | the JSON line and the `expect` check | — |
//!
//! Speech: a turn's `wav:` recording when given (natural voices, e.g.
//! `../shared/speech/callers/*.wav`), else its `say` text synthesised by espeak-ng
//! (`cmn-latn-pinyin`) through [`crate::tts::PromptCache`]; either way resampled to 8 kHz,
//! G.711-encoded, trimmed of leading/trailing silence, and sent paced in real time.
//!
//! Load is bounded: at most `--repeat` × calls, `--concurrency` at once, `--rate` new
//! calls per second, each ended after `--timeout` seconds; targets other than loopback
//! need `--allow-remote` (only an IVR you own). Exit status 1 when any call failed its
//! `expect` or could not be completed.

pub mod caller;
pub mod driver;
pub mod report;
pub mod script;
pub mod uac;

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use caller::{trim_frames, CallerConfig, Prepared};
use driver::{CallPlan, PreparedCall};
use report::CallReport;
use script::Turn;

use crate::media::g711::Law;
use crate::sip::message::SipUri;
use crate::tts::{EspeakNg, PromptCache, PromptSource, Voice};

/// Why the simulator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("target `{0}`: expected sip:HOST:PORT (e.g. sip:127.0.0.1:5060)")]
    BadTarget(String),
    #[error("target `{0}` is not a loopback address; pass --allow-remote to call an IVR you own")]
    NotLoopback(SocketAddr),
    #[error("{0}")]
    Script(#[from] crate::yaml::Diagnostic),
    #[error("{0}")]
    Bounds(String),
    #[error("call `{call}`: {source}")]
    Audio {
        call: String,
        source: crate::tts::TtsError,
    },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Load limits (issue 10 §6: bounded in count and time).
pub const MAX_CALLS: usize = 100_000;
pub const MAX_CONCURRENCY: usize = 2_000;
pub const MAX_RATE: f64 = 1_000.0;
pub const MAX_TIMEOUT_S: u64 = 3_600;

/// Options of one run (the CLI arguments, resolved).
#[derive(Debug, Clone)]
pub struct Options {
    pub target: String,
    pub script: PathBuf,
    pub rate: f64,
    pub concurrency: usize,
    pub repeat: usize,
    pub timeout: Duration,
    pub allow_remote: bool,
    pub caller: CallerConfig,
}

/// Resolves `sip:HOST:PORT` (port 5060 when left out) to a socket address and the
/// Request-URI to call.
pub fn resolve_target(target: &str, allow_remote: bool) -> Result<(SocketAddr, String), SimError> {
    let bad = || SimError::BadTarget(target.to_string());
    let uri = SipUri::parse(target.trim()).ok_or_else(bad)?;
    if !uri.scheme.eq_ignore_ascii_case("sip") {
        return Err(bad());
    }
    let port = uri.port.unwrap_or(5060);
    let host = uri
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|_| bad())?
        .next()
        .ok_or_else(bad)?;
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(SimError::NotLoopback(addr));
    }
    let user = uri.user.unwrap_or_else(|| "voicenav".into());
    let hostport = if addr.is_ipv6() {
        format!("[{}]:{port}", addr.ip())
    } else {
        format!("{}:{port}", addr.ip())
    };
    Ok((addr, format!("sip:{user}@{hostport}")))
}

/// Renders every turn of a call in both laws (through the prompt caches).
pub fn prepare(
    call: &script::Call,
    caches: &[(Law, PromptCache)],
    speech_dbfs: f32,
) -> Result<PreparedCall, SimError> {
    let mut out = PreparedCall {
        ulaw: Vec::new(),
        alaw: Vec::new(),
    };
    for (law, cache) in caches {
        let mut turns = Vec::new();
        for t in &call.turns {
            turns.push(match t {
                Turn::Say {
                    text,
                    wav,
                    barge_in,
                } => {
                    let source = match wav {
                        Some(p) => PromptSource::Recording(p.clone()),
                        None => PromptSource::Text {
                            text: text.clone(),
                            voice: Voice::mandarin(),
                        },
                    };
                    let frames = cache.frames(&source).map_err(|source| SimError::Audio {
                        call: call.id.clone(),
                        source,
                    })?;
                    Prepared::Speech {
                        frames: trim_frames(*law, frames.bytes(), speech_dbfs),
                        barge_in: *barge_in,
                    }
                }
                Turn::Dtmf(k) => Prepared::Dtmf(k.clone()),
                Turn::Silence(d) => Prepared::Silence(*d),
            });
        }
        match law {
            Law::Ulaw => out.ulaw = turns,
            Law::Alaw => out.alaw = turns,
        }
    }
    Ok(out)
}

fn cache_dir() -> PathBuf {
    std::env::var_os("VOICENAV_CALLER_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("voicenav-caller-cache"))
}

/// Checks the options against the load limits.
pub fn check_bounds(o: &Options, calls: usize) -> Result<(), SimError> {
    let err = |m: String| Err(SimError::Bounds(m));
    if calls == 0 {
        return err(format!("{}: no calls in the script", o.script.display()));
    }
    if o.repeat == 0 || calls.saturating_mul(o.repeat) > MAX_CALLS {
        return err(format!(
            "--repeat {}: between 1 and {} calls in all",
            o.repeat, MAX_CALLS
        ));
    }
    if o.concurrency == 0 || o.concurrency > MAX_CONCURRENCY {
        return err(format!(
            "--concurrency {}: between 1 and {MAX_CONCURRENCY}",
            o.concurrency
        ));
    }
    if !(o.rate.is_finite() && o.rate > 0.0 && o.rate <= MAX_RATE) {
        return err(format!(
            "--rate {}: more than 0 and at most {MAX_RATE} calls/s",
            o.rate
        ));
    }
    if o.timeout.is_zero() || o.timeout > Duration::from_secs(MAX_TIMEOUT_S) {
        return err(format!(
            "--timeout {}: between 1 and {MAX_TIMEOUT_S} s",
            o.timeout.as_secs()
        ));
    }
    Ok(())
}

/// Runs the simulator; prints JSON lines to `out` as calls finish and a summary on stderr.
pub fn run(o: &Options, out: &mut dyn Write) -> Result<ExitCode, SimError> {
    let (target, request_uri) = resolve_target(&o.target, o.allow_remote)?;
    let calls = script::load(&o.script)?;
    check_bounds(o, calls.len())?;
    let synth = Arc::new(EspeakNg::default());
    let dir = cache_dir();
    let mk = |law| {
        PromptCache::new(
            dir.join(if law == Law::Ulaw { "ulaw" } else { "alaw" }),
            law,
            synth.clone(),
        )
        .map_err(|source| SimError::Audio {
            call: "-".into(),
            source,
        })
    };
    let caches = [(Law::Ulaw, mk(Law::Ulaw)?), (Law::Alaw, mk(Law::Alaw)?)];
    let mut prepared: HashMap<usize, Arc<PreparedCall>> = HashMap::new();
    for (i, c) in calls.iter().enumerate() {
        prepared.insert(i, Arc::new(prepare(c, &caches, o.caller.speech_dbfs)?));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(SimError::Runtime)?;
    let total = calls.len() * o.repeat;
    let started = Instant::now();
    let reports = rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(o.concurrency));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<CallReport>();
        let interval = Duration::from_secs_f64(1.0 / o.rate);
        let plans: Vec<CallPlan> = (0..total)
            .map(|n| {
                let i = n % calls.len();
                let c = &calls[i];
                CallPlan {
                    id: if o.repeat > 1 {
                        format!("{}#{}", c.id, n / calls.len() + 1)
                    } else {
                        c.id.clone()
                    },
                    ani: c.ani.clone(),
                    age: c.age,
                    turns: prepared[&i].clone(),
                    target,
                    request_uri: request_uri.clone(),
                    timeout: o.timeout,
                    caller: o.caller,
                }
            })
            .collect();
        let launcher = {
            let sem = sem.clone();
            tokio::spawn(async move {
                let mut next = tokio::time::Instant::now();
                for plan in plans {
                    tokio::time::sleep_until(next).await;
                    next += interval;
                    let Ok(permit) = sem.clone().acquire_owned().await else {
                        break;
                    };
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let r = driver::place(plan).await;
                        drop(permit);
                        let _ = tx.send(r);
                    });
                }
            })
        };
        let mut reports = Vec::with_capacity(total);
        while let Some(mut r) = rx.recv().await {
            let idx = calls
                .iter()
                .position(|c| r.id == c.id || r.id.starts_with(&format!("{}#", c.id)));
            if let Some(e) = idx.and_then(|i| calls[i].expect.as_ref()) {
                r.check(e);
            }
            if let Ok(line) = serde_json::to_string(&r) {
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            reports.push(r);
            if reports.len() == total {
                break;
            }
        }
        let _ = launcher.await;
        reports
    });
    let summary = Summary::of(&reports, started.elapsed());
    eprintln!("{}", summary.line());
    let failed = reports
        .iter()
        .any(|r| r.passed == Some(false) || r.error.is_some());
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Totals and percentiles of a run (stderr; the benchmark reads it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub calls: usize,
    pub transferred: usize,
    pub hangup: usize,
    pub failed: usize,
    pub expect_failed: usize,
    pub seconds: f64,
    pub setup_ms_p50: Option<f64>,
    pub setup_ms_p95: Option<f64>,
    pub turn_latency_ms_p50: Option<f64>,
    pub turn_latency_ms_p95: Option<f64>,
    pub refer_ms_p50: Option<f64>,
}

fn pct(v: &mut [f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied()
}

impl Summary {
    pub fn of(r: &[CallReport], elapsed: Duration) -> Summary {
        let mut setup: Vec<f64> = r.iter().filter_map(|c| c.setup_ms).collect();
        let mut lat: Vec<f64> = r
            .iter()
            .flat_map(|c| c.turn_latency_ms.iter().copied())
            .collect();
        let mut refer: Vec<f64> = r.iter().filter_map(|c| c.refer_ms).collect();
        Summary {
            calls: r.len(),
            transferred: r.iter().filter(|c| c.outcome == "transferred").count(),
            hangup: r.iter().filter(|c| c.outcome == "hangup").count(),
            failed: r.iter().filter(|c| c.error.is_some()).count(),
            expect_failed: r.iter().filter(|c| c.passed == Some(false)).count(),
            seconds: elapsed.as_secs_f64(),
            setup_ms_p50: pct(&mut setup, 0.5),
            setup_ms_p95: pct(&mut setup, 0.95),
            turn_latency_ms_p50: pct(&mut lat, 0.5),
            turn_latency_ms_p95: pct(&mut lat, 0.95),
            refer_ms_p50: pct(&mut refer, 0.5),
        }
    }

    pub fn line(&self) -> String {
        format!(
            "summary {}",
            serde_json::to_string(self).unwrap_or_default()
        )
    }
}

/// `voicenav call` from the CLI.
pub fn run_cli(args: &crate::cli::CallArgs) -> Result<ExitCode, SimError> {
    let o = Options {
        target: args.target.clone(),
        script: args.script.clone(),
        rate: args.rate,
        concurrency: args.concurrency,
        repeat: args.repeat,
        timeout: Duration::from_secs(args.timeout),
        allow_remote: args.allow_remote,
        caller: CallerConfig::default(),
    };
    run(&o, &mut std::io::stdout().lock())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let (a, uri) = resolve_target("sip:127.0.0.1:5071", false).unwrap();
        assert_eq!(a, "127.0.0.1:5071".parse().unwrap());
        assert_eq!(uri, "sip:voicenav@127.0.0.1:5071");
        assert_eq!(
            resolve_target("sip:bot@[::1]", false).unwrap().1,
            "sip:bot@[::1]:5060"
        );
        assert!(matches!(
            resolve_target("sip:192.0.2.1:5060", false),
            Err(SimError::NotLoopback(_))
        ));
        assert!(resolve_target("sip:192.0.2.1:5060", true).is_ok());
        for bad in ["127.0.0.1:5060", "http://x", "sip:", "tel:123"] {
            assert!(resolve_target(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn bounds() {
        let o = Options {
            target: String::new(),
            script: "x".into(),
            rate: 1.0,
            concurrency: 1,
            repeat: 1,
            timeout: Duration::from_secs(60),
            allow_remote: false,
            caller: CallerConfig::default(),
        };
        assert!(check_bounds(&o, 1).is_ok());
        assert!(check_bounds(&o, 0).is_err());
        assert!(check_bounds(
            &Options {
                repeat: MAX_CALLS,
                ..o.clone()
            },
            2
        )
        .is_err());
        assert!(check_bounds(
            &Options {
                concurrency: 0,
                ..o.clone()
            },
            1
        )
        .is_err());
        assert!(check_bounds(
            &Options {
                rate: f64::NAN,
                ..o.clone()
            },
            1
        )
        .is_err());
        assert!(check_bounds(
            &Options {
                timeout: Duration::ZERO,
                ..o.clone()
            },
            1
        )
        .is_err());
    }

    #[test]
    fn percentiles() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(pct(&mut v, 0.5), Some(3.0));
        assert_eq!(pct(&mut v, 0.95), Some(5.0));
        assert_eq!(pct(&mut [], 0.5), None);
    }
}
