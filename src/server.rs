//! `voicenav serve`: loads and validates the configuration and flows, starts the
//! observability endpoint, and runs until SIGTERM/SIGINT.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::observe::http::{self, Readiness};

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

    wait_for_signal().await;
    tracing::info!("shutting down");
    readiness.draining.store(true, Ordering::Relaxed);
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
