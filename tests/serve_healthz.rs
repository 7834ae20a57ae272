//! `voicenav serve` on a test configuration answers /healthz, /readyz and /metrics, and
//! exits 0 on SIGTERM.
mod common;

#[test]
fn serve_answers_health_and_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (config, ports) = common::write_config(dir.path(), |t| t);
    let mut server = common::Server::start(&config, ports, &[]);
    let (code, body) = common::http_get(ports.http, "/healthz").expect("healthz");
    assert_eq!(code, 200);
    assert_eq!(body.trim(), "ok");
    let (code, body) = common::http_get(ports.http, "/metrics").expect("metrics");
    assert_eq!(code, 200, "{body}");
    let (code, body) = common::http_get(ports.http, "/readyz").expect("readyz");
    assert!(code == 200 || code == 503, "{code} {body}");
    assert!(body.contains("flows"), "{body}");
    let status = server.terminate();
    assert!(status.success(), "exit {status:?}\n{}", server.log());
}
