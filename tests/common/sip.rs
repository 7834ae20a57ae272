//! SIP test helpers: `voicenav serve` on loopback that is ready when it answers OPTIONS
//! (not just /healthz), SIPp runs bounded by `-timeout`, metrics.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, http_get, repo, write_config, Server};

/// Whether SIPp is installed; prints the SKIP line when not.
pub fn have_sipp(test: &str) -> bool {
    super::have_tool("sipp", test)
}

/// `voicenav serve` with the shipped configuration on free ports (recogniser off), after
/// `edit`; ready once it answers OPTIONS.
pub struct SipServer {
    pub server: Server,
    pub sip: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl SipServer {
    pub fn start(edit: impl FnOnce(String) -> String) -> SipServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cfg, ports) = write_config(dir.path(), |t| {
            edit(t.replace("backend: whisper", "backend: none"))
        });
        let server = Server::start(&cfg, ports, &[]);
        let sip: SocketAddr = ([127, 0, 0, 1], ports.sip).into();
        let deadline = Instant::now() + Duration::from_secs(30);
        let s = SipServer { server, sip, dir };
        while !s.answers_options() {
            assert!(
                Instant::now() < deadline,
                "voicenav serve did not answer OPTIONS on {sip}:\n{}",
                s.server.log()
            );
        }
        s
    }

    fn answers_options(&self) -> bool {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("udp");
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        let local = sock.local_addr().expect("addr");
        let _ = sock.send_to(options(&local).as_bytes(), self.sip);
        let mut buf = [0u8; 4096];
        matches!(sock.recv_from(&mut buf), Ok((len, _)) if buf[..len].starts_with(b"SIP/2.0 200"))
    }

    /// The process still runs and answers OPTIONS.
    pub fn alive(&mut self) -> bool {
        matches!(self.server.child.try_wait(), Ok(None)) && (0..3).any(|_| self.answers_options())
    }

    /// The Prometheus text of /metrics.
    pub fn metrics(&self) -> String {
        http_get(self.server.ports.http, "/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }
}

pub fn options(local: &SocketAddr) -> String {
    let n: u32 = rand_u32();
    format!(
        "OPTIONS sip:bot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-probe-{n};rport\r\n\
From: <sip:probe@127.0.0.1>;tag=p{n}\r\nTo: <sip:bot@127.0.0.1>\r\nCall-ID: probe-{n}@test\r\nCSeq: 1 OPTIONS\r\n\
Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

fn rand_u32() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    std::process::id()
        .wrapping_mul(7919)
        .wrapping_add(N.fetch_add(1, Ordering::Relaxed))
}

/// Runs SIPp against `target` with a scenario from tests/sipp/ (bounded by `-timeout`).
pub fn sipp(target: SocketAddr, scenario: &str, extra: &[&str]) -> Output {
    let sf = repo().join("tests/sipp").join(scenario);
    sipp_args(&[&target.to_string(), "-sf", path_str(&sf)], extra)
}

/// Runs SIPp with `args` on free local ports, bounded by a 60 s global timeout.
pub fn sipp_args(args: &[&str], extra: &[&str]) -> Output {
    let port = free_port().to_string();
    let media = free_port().to_string();
    let out = Command::new("sipp")
        .args(args)
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-mp",
            &media,
            "-timeout",
            "60s",
            "-timeout_error",
            "-nostdin",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("running sipp");
    if !out.status.success() {
        eprintln!(
            "sipp {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    }
    out
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
