//! `voicenav serve`: loads and validates the configuration and flows, starts the
//! observability endpoint, and runs until SIGTERM/SIGINT.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::observe::http::{self, Readiness};
use crate::sip;

pub fn run(config_file: &Path, flows_override: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(config_file)?;
    if let Some(flows) = flows_override {
        config.raw.paths.flows = flows.to_path_buf();
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let readiness = Arc::new(Readiness::default());
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let mut http_shutdown = shutdown_rx.clone();
    let (http_addr, http_task) =
        http::serve(config.raw.http.listen, readiness.clone(), async move {
            let _ = http_shutdown.wait_for(|stop| *stop).await;
        })
        .await
        .with_context(|| format!("binding the http endpoint {}", config.raw.http.listen))?;
    tracing::info!(%http_addr, config = %config.file.display(), "observability endpoint listening (/healthz /readyz /metrics)");
    readiness.flows.store(true, Ordering::Relaxed);

    let sip_cfg = sip::driver::endpoint_config(&config);
    let media_ip: IpAddr = sip_cfg
        .host
        .parse()
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    // Until the call layer (issue 10) exists: answer every admitted call, reserve RTP ports.
    let ports = sip::driver::PortPool::new(config.raw.rtp.port_min, config.raw.rtp.port_max);
    let answer_delay = std::time::Duration::from_millis(config.raw.sip.answer_delay_ms);
    let handler = Box::new(sip::driver::DefaultHandler::new(
        media_ip,
        ports,
        answer_delay,
    ));
    let (sip_handle, _events, sip_task) = sip::driver::spawn_with(
        &config.raw.sip.udp,
        &config.raw.sip.tcp,
        sip_cfg,
        Some(handler),
    )
    .await
    .with_context(|| {
        format!(
            "binding SIP sockets udp {:?} tcp {:?}",
            config.raw.sip.udp, config.raw.sip.tcp
        )
    })?;
    tracing::info!(udp = ?sip_handle.udp, tcp = ?sip_handle.tcp, "SIP listening");
    readiness.sockets.store(true, Ordering::Relaxed);

    wait_for_signal().await;
    tracing::info!("shutting down");
    readiness.draining.store(true, Ordering::Relaxed);
    sip_handle.stop().await;
    let _ = sip_task.await;
    let _ = shutdown_tx.send(true);
    let _ = http_task.await;
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
