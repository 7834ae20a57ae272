//! Real services on loopback ports for a test: each guard kills (only) the process it
//! started when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` on 127.0.0.1:`port`, no persistence, in a temporary folder.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start(binary: &Path) -> Redis {
        Self::start_on(binary, super::free_port())
    }

    pub fn start_on(binary: &Path, port: u16) -> Redis {
        let dir = tempfile::tempdir().expect("temp dir");
        let child = Command::new(binary)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        let redis = Redis {
            child: Some(child),
            port,
            _dir: dir,
        };
        redis.wait_ready(Duration::from_secs(10));
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn wait_ready(&self, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read(&mut buf)
                        .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "redis-server on port {} did not answer PING within {limit:?}",
            self.port
        );
    }

    /// Kills the server (as if the machine running it died).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The repository's `docker/kamailio/kamailio.cfg`.
pub fn kamailio_cfg() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docker/kamailio/kamailio.cfg"
    ))
}

/// Kamailio running the repository's `kamailio.cfg` on 127.0.0.1:`port`, dispatching to the
/// given node addresses, with fast probing; runtime files in a temporary folder.
pub struct Kamailio {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Kamailio {
    pub fn start(binary: &Path, nodes: &[u16]) -> Kamailio {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = super::free_port();
        let list = dir.path().join("dispatcher.list");
        let text: String = nodes
            .iter()
            .enumerate()
            .map(|(i, p)| format!("1 sip:127.0.0.1:{p} 0 0 duid=node-{i}\n"))
            .collect();
        std::fs::write(&list, text).expect("writing dispatcher.list");
        let log = std::fs::File::create(dir.path().join("kamailio.log")).expect("log file");
        let child = Command::new(binary)
            .args(["-DD", "-E", "-n", "2", "-f"])
            .arg(kamailio_cfg())
            .arg("-A")
            .arg(format!("SIP_LISTEN=udp:127.0.0.1:{port}"))
            .arg("-A")
            .arg(format!("DISPATCHER_LIST=\"{}\"", list.display()))
            .arg("-A")
            .arg(format!(
                "CTL_SOCKET=\"unix:{}\"",
                dir.path().join("ctl.sock").display()
            ))
            .args(["-A", "PROBE_INTERVAL=1", "-A", "INVITE_TIMEOUT=1000"])
            .arg("-Y")
            .arg(dir.path())
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .arg("-w")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting kamailio");
        let k = Kamailio {
            child: Some(child),
            port,
            dir,
        };
        if !options_ping(port, Duration::from_secs(10)) {
            panic!(
                "kamailio did not answer OPTIONS on port {port}:\n{}",
                k.log()
            );
        }
        k
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM lets kamailio stop its own children.
            // SAFETY: signalling a process id we spawned and have not reaped.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Sends SIP OPTIONS to 127.0.0.1:`port` until a 200 comes back or `limit` passes.
pub fn options_ping(port: u16, limit: Duration) -> bool {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    let local = sock.local_addr().expect("local addr");
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < limit {
        n += 1;
        let msg = format!(
            "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-ping-{n}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:test@127.0.0.1>;tag=t{n}\r\nTo: <sip:127.0.0.1:{port}>\r\n\
             Call-ID: ping-{n}@127.0.0.1\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        let _ = sock.send_to(msg.as_bytes(), ("127.0.0.1", port));
        let mut buf = [0u8; 2048];
        if let Ok((len, _)) = sock.recv_from(&mut buf) {
            if buf[..len].starts_with(b"SIP/2.0 200") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A SIPp scenario of `tests/sipp/`.
pub fn sipp_scenario(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sipp")).join(name)
}

/// A SIPp UAS (`tests/sipp/uas_node.xml`, echoing Record-Route) standing in for a voicenav
/// node: answers every INVITE and OPTIONS, logs the messages it saw.
pub struct SippUas {
    child: Option<Child>,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl SippUas {
    pub fn start(binary: &Path) -> SippUas {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = super::free_port();
        let media = super::free_port();
        let log = dir.path().join("messages.log");
        let child = Command::new(binary)
            .arg("-sf")
            .arg(sipp_scenario("uas_node.xml"))
            .args(["-i", "127.0.0.1", "-aa", "-nostdin", "-trace_msg"])
            .args(["-p", &port.to_string(), "-mp", &media.to_string()])
            .arg("-message_file")
            .arg(&log)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting sipp uas");
        let uas = SippUas {
            child: Some(child),
            port,
            log,
            _dir: dir,
        };
        if !options_ping(port, Duration::from_secs(10)) {
            panic!("sipp uas on port {port} did not answer OPTIONS");
        }
        uas
    }

    /// INVITEs this node has received.
    pub fn invites(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("INVITE sip:"))
            .count()
    }

    /// Kills the node (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for SippUas {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Places `calls` calls with SIPp (`tests/sipp/uac_record_route.xml`: ACK and BYE follow the
/// Record-Route) through 127.0.0.1:`port`; whether all succeeded, and SIPp's output.
pub fn sipp_calls(binary: &Path, port: u16, calls: usize) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(binary)
        .arg("-sf")
        .arg(sipp_scenario("uac_record_route.xml"))
        .args([&format!("127.0.0.1:{port}"), "-i", "127.0.0.1", "-nostdin"])
        .args([
            "-p",
            &super::free_port().to_string(),
            "-mp",
            &super::free_port().to_string(),
        ])
        .args(["-m", &calls.to_string(), "-r", "20", "-l", "4", "-d", "100"])
        .args(["-timeout", "30s", "-timeout_error", "-recv_timeout", "8000"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("running sipp uac");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A SIP endpoint that refuses everything with `503 Service Unavailable`, as a draining
/// voicenav node does after SIGTERM (OPTIONS probes included). Counts what it refused.
pub struct DrainingNode {
    pub port: u16,
    invites: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    options: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DrainingNode {
    pub fn start() -> DrainingNode {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp socket");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let port = sock.local_addr().expect("addr").port();
        let (invites, options, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (i2, o2, s2) = (invites.clone(), options.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while !s2.load(Ordering::Relaxed) {
                let Ok((len, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let text = String::from_utf8_lossy(&buf[..len]).into_owned();
                let method = text.split_whitespace().next().unwrap_or("");
                match method {
                    "INVITE" => i2.fetch_add(1, Ordering::Relaxed),
                    "OPTIONS" => o2.fetch_add(1, Ordering::Relaxed),
                    "ACK" | "SIP/2.0" | "" => continue,
                    _ => 0,
                };
                let mut reply = String::from("SIP/2.0 503 Service Unavailable\r\n");
                for line in text.split("\r\n") {
                    let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
                    match name.as_str() {
                        "via" | "v" | "from" | "f" | "call-id" | "i" | "cseq" => {
                            reply.push_str(line);
                            reply.push_str("\r\n");
                        }
                        "to" | "t" => {
                            reply.push_str(line);
                            if !line.contains("tag=") {
                                reply.push_str(";tag=draining");
                            }
                            reply.push_str("\r\n");
                        }
                        _ => {}
                    }
                }
                reply.push_str("Retry-After: 30\r\nContent-Length: 0\r\n\r\n");
                let _ = sock.send_to(reply.as_bytes(), from);
            }
        });
        DrainingNode {
            port,
            invites,
            options,
            stop,
            thread: Some(thread),
        }
    }

    pub fn invites(&self) -> usize {
        self.invites.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn options(&self) -> usize {
        self.options.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for DrainingNode {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
