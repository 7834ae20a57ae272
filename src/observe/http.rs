//! The observability HTTP endpoint (axum): `/healthz` (the process is up), `/readyz` (flows,
//! recogniser and sockets are up, and the server is not draining) and `/metrics`
//! (Prometheus text format rendered by `metrics-exporter-prometheus`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

/// What `/readyz` reports; each part is set by the piece that owns it.
#[derive(Debug, Default)]
pub struct Readiness {
    pub flows: AtomicBool,
    pub recognizer: AtomicBool,
    pub sockets: AtomicBool,
    pub draining: AtomicBool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.flows.load(Ordering::Relaxed)
            && self.recognizer.load(Ordering::Relaxed)
            && self.sockets.load(Ordering::Relaxed)
            && !self.draining.load(Ordering::Relaxed)
    }

    fn report(&self) -> String {
        let flag = |b: &AtomicBool| {
            if b.load(Ordering::Relaxed) {
                "up"
            } else {
                "down"
            }
        };
        format!(
            "flows {}\nrecognizer {}\nsockets {}\ndraining {}\n",
            flag(&self.flows),
            flag(&self.recognizer),
            flag(&self.sockets),
            self.draining.load(Ordering::Relaxed)
        )
    }
}

pub fn router(readiness: Arc<Readiness>) -> Router {
    super::metrics_handle();
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|| async { super::metrics_handle().render() }),
        )
        .with_state(readiness)
}

async fn readyz(State(r): State<Arc<Readiness>>) -> (StatusCode, String) {
    let code = if r.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, r.report())
}

/// Binds `addr` and serves until `shutdown` resolves. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    readiness: Arc<Readiness>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(readiness);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "http endpoint stopped");
        }
    });
    Ok((local, task))
}
