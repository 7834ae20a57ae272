//! `voicenav serve`: loads and validates the configuration, the flows (hot reloaded) and
//! the NLU, the recogniser (keypad-only with a warning when the model is missing), the
//! prompt cache and the caller directory; starts the observability endpoint, the SIP
//! driver and the call dispatcher ([`crate::call::dispatch`]); runs until SIGTERM/SIGINT.
//!
//! `/readyz` is ready only when the flows, the recogniser model and the sockets are up.
//!
//! Graceful shutdown: on SIGTERM the server stops taking calls (503 to new INVITEs,
//! `/readyz` draining), lets calls in progress finish for `limits.shutdown_grace_secs`,
//! then ends the rest with BYE; every call's record is written before the process exits 0.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::asr::Engine;
use crate::call::{self, CallDeps, CallSettings, ServerPhase};
use crate::config::{AsrBackend, Config};
use crate::dialog::{CallerDirectory, FlowSet, FlowStore, ReloadEvent, Reloader};
use crate::media::g711::Law;
use crate::nlu::{IntentClassifier, Nlu};
use crate::observe::http::{self, Readiness};
use crate::observe::records::RecordWriter;
use crate::rtp::ports::PortPool;
use crate::sip;
use crate::tts::cache::PromptCache;
use crate::tts::espeak::EspeakNg;
use crate::tts::{PromptSource, Synthesizer, Voice};

pub fn run(config_file: &Path, flows_override: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(config_file)?;
    if let Some(flows) = flows_override {
        config.raw.paths.flows = flows.to_path_buf();
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let code = runtime.block_on(serve(config));
    // Recognition threads and blocking tasks must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(2));
    code
}

fn nlu_loader(
    grammars: PathBuf,
) -> impl Fn(&Path) -> Result<Arc<dyn IntentClassifier>, Vec<crate::yaml::Diagnostic>> {
    move |dir: &Path| {
        Nlu::load_with(dir, &grammars).map(|n| Arc::new(n) as Arc<dyn IntentClassifier>)
    }
}

/// Loads the NLU and the flows; every error as `file:line:col: message`.
fn load_flows(config: &Config) -> anyhow::Result<(Arc<FlowStore>, Arc<Reloader>)> {
    let dir = config.raw.paths.flows.clone();
    let loader = nlu_loader(config.raw.paths.grammars.clone());
    let report = |diags: Vec<crate::yaml::Diagnostic>| {
        let text: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        anyhow::anyhow!("the flows do not load:\n{}", text.join("\n"))
    };
    let classifier = loader(&dir).map_err(report)?;
    let set = FlowSet::load(&dir, classifier).map_err(report)?;
    let store = FlowStore::new(set);
    let reloader = Reloader::new(store.clone(), dir, Box::new(loader));
    Ok((store, reloader))
}

/// The recogniser of the configuration, or `None` (keypad only); an error says why the
/// configured model cannot be used.
fn load_recognizer(config: &Config) -> Result<Option<Arc<dyn Engine>>, String> {
    let asr = &config.raw.asr;
    #[cfg(feature = "whisper")]
    if asr.backend == AsrBackend::Whisper && !crate::asr::whisper::model_present(&asr.whisper_model)
    {
        return Err(format!(
            "no Whisper model at {}",
            asr.whisper_model.display()
        ));
    }
    crate::asr::load_engine(asr).map_err(|e| e.to_string())
}

/// Renders every static prompt of the flows into the cache (variables are rendered on
/// demand), so the first caller does not wait for espeak-ng.
fn prewarm(cache: &PromptCache, flows: &FlowSet, voices: &[Voice]) -> usize {
    let mut sources = Vec::new();
    for node in &flows.nodes {
        let says = node
            .on
            .iter()
            .chain(&node.then)
            .filter_map(|t| t.say.as_ref());
        for p in node.prompts.iter().chain(says) {
            if p.text.contains('$') || p.text.contains('{') {
                continue;
            }
            if let Some(w) = &p.wav {
                sources.push(PromptSource::Recording(w.clone()));
                continue;
            }
            for v in voices {
                let rate = ((v.rate as f32) * p.rate.clamp(0.5, 2.0)).round() as u32;
                sources.push(PromptSource::Text {
                    text: p.text.clone(),
                    voice: Voice::new(v.name.clone(), rate),
                });
            }
        }
    }
    let (_, errors) = cache.prewarm(sources.iter());
    for e in errors.iter().take(3) {
        tracing::warn!(error = %e, "prompt could not be rendered");
    }
    sources.len()
}

/// Counts SIGTERM/SIGINT from the very start of `serve` (a signal during start-up stops
/// the server cleanly instead of killing it).
fn signals() -> anyhow::Result<tokio::sync::watch::Receiver<u32>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    let (tx, rx) = tokio::sync::watch::channel(0u32);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tx.send_modify(|n| *n += 1);
        }
    });
    Ok(rx)
}

/// Runs `fut` unless a signal comes first (`None`: stop).
async fn unless_signalled<T>(
    sig: &mut tokio::sync::watch::Receiver<u32>,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    if *sig.borrow_and_update() > 0 {
        return None;
    }
    tokio::select! {
        v = fut => Some(v),
        _ = sig.changed() => None,
    }
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let mut sig = signals()?;
    let readiness = Arc::new(Readiness::default());
    let (http_stop_tx, http_stop_rx) = tokio::sync::watch::channel(false);
    let mut http_shutdown = http_stop_rx.clone();
    let (http_addr, http_task) =
        http::serve(config.raw.http.listen, readiness.clone(), async move {
            let _ = http_shutdown.wait_for(|stop| *stop).await;
        })
        .await
        .with_context(|| format!("binding the http endpoint {}", config.raw.http.listen))?;
    tracing::info!(%http_addr, config = %config.file.display(), "observability endpoint listening (/healthz /readyz /metrics)");

    // Flows + NLU (training takes a moment: off the runtime's threads).
    let cfg = config.clone();
    let Some(loaded) = unless_signalled(
        &mut sig,
        tokio::task::spawn_blocking(move || load_flows(&cfg)),
    )
    .await
    else {
        tracing::info!("stopped during start-up");
        return Ok(ExitCode::SUCCESS);
    };
    let (flows, reloader) = loaded.context("loading the flows")??;
    let _watcher = match reloader.watch(|ev| match ev {
        ReloadEvent::Swapped { version, took } => {
            tracing::info!(
                version,
                took_ms = took.as_millis() as u64,
                "flows reloaded; new calls use them"
            )
        }
        ReloadEvent::Rejected(d) => tracing::warn!(errors = d.len(), "flow change rejected"),
    }) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the flows folder; no hot reload");
            None
        }
    };
    readiness.flows.store(true, Ordering::Relaxed);
    let raw = &config.raw;
    let directory = CallerDirectory::load(&raw.paths.seniors, &raw.paths.dialect_areas)
        .map_err(|d| anyhow::anyhow!("{d}"))?;

    // Recogniser: keypad only (with a warning) when the model is missing.
    let cfg = config.clone();
    let Some(loaded) = unless_signalled(
        &mut sig,
        tokio::task::spawn_blocking(move || load_recognizer(&cfg)),
    )
    .await
    else {
        tracing::info!("stopped during start-up");
        return Ok(ExitCode::SUCCESS);
    };
    let asr = match loaded.context("loading the recogniser")? {
        Ok(Some(e)) => {
            tracing::info!(backend = e.name(), "recogniser loaded");
            readiness.recognizer.store(true, Ordering::Relaxed);
            Some(e)
        }
        Ok(None) => {
            tracing::info!("asr.backend is none: keypad only");
            readiness.recognizer.store(true, Ordering::Relaxed);
            None
        }
        Err(why) => {
            tracing::warn!(reason = %why, "recogniser unavailable: serving keypad only (run scripts/setup.sh; `voicenav doctor` says more); /readyz stays down");
            None
        }
    };

    // Prompts.
    let synth: Arc<dyn Synthesizer> = Arc::new(EspeakNg::default());
    let prompts = Arc::new(
        PromptCache::new(&raw.tts.cache_dir, Law::Ulaw, synth)
            .context("opening the prompt cache")?,
    );
    let voice = Voice::new(raw.tts.voice.clone(), raw.tts.rate);
    let cantonese = Voice::new(raw.tts.cantonese_voice.clone(), raw.tts.rate);
    {
        // In the background: a prompt not yet rendered is rendered on demand by its call.
        let cache = prompts.clone();
        let set = flows.current();
        let voices = vec![voice.clone()];
        tokio::task::spawn_blocking(move || {
            let n = prewarm(&cache, &set, &voices);
            tracing::info!(prompts = n, "prompt cache warm");
        });
    }

    let records = RecordWriter::start(&raw.paths.records).with_context(|| {
        format!(
            "opening the call records folder {}",
            raw.paths.records.display()
        )
    })?;

    // SIP.
    let sip_cfg = sip::driver::endpoint_config(&config);
    let media_ip: IpAddr = sip_cfg
        .host
        .parse()
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let (sip_handle, sip_events, sip_task) =
        sip::driver::spawn(&raw.sip.udp, &raw.sip.tcp, sip_cfg)
            .await
            .with_context(|| {
                format!(
                    "binding SIP sockets udp {:?} tcp {:?}",
                    raw.sip.udp, raw.sip.tcp
                )
            })?;
    tracing::info!(udp = ?sip_handle.udp, tcp = ?sip_handle.tcp, "SIP listening");
    readiness.sockets.store(true, Ordering::Relaxed);

    if raw.queues.is_empty() {
        bail!(
            "{}: no queues configured; transfers would have nowhere to go",
            config.file.display()
        );
    }
    let mut deps = CallDeps::new(
        flows,
        Arc::new(directory),
        asr,
        prompts,
        voice,
        cantonese,
        records,
        media_ip,
        PortPool::from_config(&raw.rtp),
        raw.queues.clone(),
        raw.paths.grammars.clone(),
    );
    let secs = |s: f64| Duration::from_secs_f64(s.clamp(0.05, 86_400.0));
    deps.settings = CallSettings {
        rtp_timeout: secs(raw.call.rtp_timeout_secs),
        recognition_timeout: secs(raw.call.recognition_timeout_secs),
        max_duration: secs(raw.call.max_call_secs),
        answer_delay: Duration::from_millis(raw.sip.answer_delay_ms),
        ..CallSettings::default()
    };
    deps.node = raw.call.node.clone();
    if raw.limits.record_calls {
        deps.recordings = Some(raw.paths.recordings.clone());
    }
    let (phase_tx, phase_rx) = tokio::sync::watch::channel(ServerPhase::Running);
    let mut dispatcher = tokio::spawn(call::dispatch(
        Arc::new(deps),
        sip_handle.clone(),
        sip_events,
        phase_rx,
    ));

    let _ = unless_signalled(&mut sig, std::future::pending::<()>()).await;
    let grace = Duration::from_secs(raw.limits.shutdown_grace_secs);
    tracing::info!(
        grace_secs = grace.as_secs(),
        "draining: new calls get 503, calls in progress may finish"
    );
    readiness.draining.store(true, Ordering::Relaxed);
    let _ = phase_tx.send(ServerPhase::Draining);
    let finished = tokio::select! {
        _ = &mut dispatcher => true,
        _ = tokio::time::sleep(grace) => false,
        _ = sig.changed() => false,
    };
    if !finished {
        tracing::info!("grace period over: ending the remaining calls");
        let _ = phase_tx.send(ServerPhase::Deadline);
        if tokio::time::timeout(Duration::from_secs(10), &mut dispatcher)
            .await
            .is_err()
        {
            tracing::warn!("calls did not end in time after BYE");
        }
    }
    // Let the last BYEs / responses leave before the SIP driver stops.
    tokio::time::sleep(Duration::from_millis(200)).await;
    sip_handle.stop().await;
    let _ = sip_task.await;
    let _ = http_stop_tx.send(true);
    let _ = http_task.await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM or SIGINT.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
