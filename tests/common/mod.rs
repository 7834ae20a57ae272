//! Shared helpers for the end-to-end tests: the binary, the repository, free loopback
//! ports, a test configuration on those ports, and a server process that is killed on drop.
#![allow(dead_code)]

/// Whole calls: servers with the recogniser, caller media as pcaps, SIPp callers, records.
pub mod call;
/// A test caller sending real RTP with loss and jitter.
pub mod rtp_sender;
/// Real services (redis-server, kamailio, SIPp nodes) on loopback for one test.
pub mod services;
/// SIP helpers: a server answering OPTIONS, SIPp runs.
pub mod sip;

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `voicenav` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_voicenav"))
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A UDP port on 127.0.0.1 that is free for both UDP and TCP right now.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Whether a tool is on PATH; prints the SKIP reason when it is not.
pub fn have_tool(tool: &str, test: &str) -> bool {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        println!("SKIP {test}: `{tool}` is not installed (run scripts/setup.sh)");
    }
    ok
}

/// Ports of a test server.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub sip: u16,
    pub http: u16,
    pub rtp_min: u16,
}

/// Writes a configuration in `dir` based on the shipped one, on free loopback ports,
/// with absolute paths into the repository and `var/` under `dir`. `edit` may change the
/// YAML text further. Returns the config path and the ports.
pub fn write_config(dir: &Path, edit: impl FnOnce(String) -> String) -> (PathBuf, Ports) {
    let repo = repo();
    let shipped =
        std::fs::read_to_string(repo.join("sip-config/voicenav.yaml")).expect("shipped config");
    let ports = Ports {
        sip: free_port(),
        http: free_port(),
        rtp_min: 30000 + (free_port() % 300) * 100,
    };
    let abs = |p: &str| repo.join(p).display().to_string();
    let text = shipped
        .replace("127.0.0.1:5060", &format!("127.0.0.1:{}", ports.sip))
        .replace("127.0.0.1:9090", &format!("127.0.0.1:{}", ports.http))
        .replace("port_min: 20000", &format!("port_min: {}", ports.rtp_min))
        .replace(
            "port_max: 29998",
            &format!("port_max: {}", ports.rtp_min + 98),
        )
        .replace("  flows: flows", &format!("  flows: {}", abs("flows")))
        .replace(
            "  grammars: grammars",
            &format!("  grammars: {}", abs("grammars")),
        )
        .replace(
            "  records: var/records",
            &format!("  records: {}", dir.join("var/records").display()),
        )
        .replace(
            "  recordings: var/recordings",
            &format!("  recordings: {}", dir.join("var/recordings").display()),
        )
        .replace(
            "  seniors: sip-config/seniors.txt",
            &format!("  seniors: {}", abs("sip-config/seniors.txt")),
        )
        .replace(
            "  dialect_areas: sip-config/dialect_areas.yaml",
            &format!("  dialect_areas: {}", abs("sip-config/dialect_areas.yaml")),
        );
    let path = dir.join("voicenav.yaml");
    std::fs::write(&path, edit(text)).expect("write config");
    (path, ports)
}

/// A `voicenav serve` process, killed on drop.
pub struct Server {
    pub child: Child,
    pub ports: Ports,
    pub dir: PathBuf,
}

impl Server {
    /// Starts `voicenav serve --config <config>` and waits until /healthz answers.
    pub fn start(config: &Path, ports: Ports, extra_args: &[&str]) -> Server {
        let dir = config.parent().expect("config dir").to_path_buf();
        let log = std::fs::File::create(dir.join("server.log")).expect("log file");
        let child = Command::new(bin())
            .arg("serve")
            .arg("--config")
            .arg(config)
            .args(extra_args)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn voicenav serve");
        let mut server = Server { child, ports, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http_get(ports.http, "/healthz").is_some_and(|(code, _)| code == 200) {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("voicenav serve exited early ({status}):\n{}", server.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("voicenav serve did not become healthy:\n{}", server.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().expect("wait")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.0 GET on 127.0.0.1:`port`: (status code, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// Runs the binary with `args` (and optional stdin), returning (exit code, stdout, stderr).
pub fn run(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn voicenav");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The path of an executable on `PATH` (or in /usr/sbin, where Debian puts kamailio).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The path of `$tool`, or prints `SKIP: <reason>` and returns from the test.
#[macro_export]
macro_rules! require_tool {
    ($tool:expr) => {
        match $crate::common::which($tool) {
            Some(p) => p,
            None => {
                println!(
                    "SKIP: `{}` is not installed (scripts/setup.sh installs it)",
                    $tool
                );
                return;
            }
        }
    };
}

/// A scratch flows folder: copies of the shipped flow files, the shipped catalogue
/// (and any other folder) linked in.
pub fn flows_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(repo().join("flows")).expect("flows folder") {
        let p = e.expect("entry").path();
        let name = p.file_name().expect("name");
        if p.is_dir() {
            std::os::unix::fs::symlink(&p, tmp.path().join(name)).expect("symlink");
        } else if p.extension().is_some_and(|x| x == "yaml") {
            std::fs::copy(&p, tmp.path().join(name)).expect("copy");
        }
    }
    tmp
}

/// A flows folder holding only `files` (name, text), the shipped catalogue linked in.
pub fn flows_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let catalog = repo().join("flows/catalog");
    if catalog.is_dir() {
        std::os::unix::fs::symlink(&catalog, tmp.path().join("catalog")).expect("symlink");
    }
    for (name, text) in files {
        std::fs::write(tmp.path().join(name), text).expect("write");
    }
    tmp
}

/// 1-based line and column (in chars) of the first occurrence of `needle` in `text`.
pub fn line_col(text: &str, needle: &str) -> (usize, usize) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in text"));
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
