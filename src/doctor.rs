//! `voicenav doctor`: checks each real piece the server and the tests need (config, models,
//! libvosk, espeak-ng's Mandarin voice, sipp, graphviz, free ports) and prints ✓/✗ with the
//! exact fix. Exit 1 when a piece the server needs is missing; tools only the tests use are
//! reported but do not fail the check.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Command, ExitCode};

use crate::config::{AsrBackend, Config};

/// Whether the server cannot run without the piece, or only the tests want it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Server,
    Tests,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub need: Need,
    pub detail: String,
    pub fix: String,
}

impl Check {
    fn pass(name: impl Into<String>, need: Need, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: true,
            need,
            detail: detail.into(),
            fix: String::new(),
        }
    }
    fn fail(
        name: impl Into<String>,
        need: Need,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name: name.into(),
            ok: false,
            need,
            detail: detail.into(),
            fix: fix.into(),
        }
    }
}

pub const WHISPER_SHA256: &str = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9";
const SETUP: &str = "run `bash scripts/setup.sh` (or `make setup`)";

/// Runs every check against `config_file`.
pub fn checks(config_file: &Path) -> Vec<Check> {
    let mut out = Vec::new();
    let config = match Config::load(config_file) {
        Ok(c) => {
            out.push(Check::pass(
                "config",
                Need::Server,
                format!("{} is valid", config_file.display()),
            ));
            Some(c)
        }
        Err(e) => {
            out.push(Check::fail(
                "config",
                Need::Server,
                e.to_string(),
                "fix the file at the position shown",
            ));
            None
        }
    };
    if let Some(cfg) = &config {
        let asr = &cfg.raw.asr;
        let need_whisper = if asr.backend == AsrBackend::Whisper {
            Need::Server
        } else {
            Need::Tests
        };
        out.push(check_whisper_model(&asr.whisper_model, need_whisper));
        let need_vosk = if asr.backend == AsrBackend::Vosk {
            Need::Server
        } else {
            Need::Tests
        };
        out.push(check_vosk_model(&asr.vosk_model, need_vosk));
        out.extend(check_ports(cfg));
    }
    out.push(check_libvosk());
    out.push(check_espeak());
    out.push(check_tool(
        "sipp",
        &["-v"],
        Need::Tests,
        "apt-get install sip-tester",
    ));
    out.push(check_tool(
        "dot",
        &["-V"],
        Need::Tests,
        "apt-get install graphviz (for `flows graph --format svg`)",
    ));
    out
}

/// Prints the report; exit 1 when the server lacks something it needs.
pub fn run(config_file: &Path) -> ExitCode {
    let all = checks(config_file);
    let mut fatal = false;
    for c in &all {
        let mark = if c.ok { "✓" } else { "✗" };
        let scope = if c.need == Need::Tests {
            " (tests)"
        } else {
            ""
        };
        println!("{mark} {}{scope}: {}", c.name, c.detail);
        if !c.ok {
            println!("    fix: {}", c.fix);
            fatal |= c.need == Need::Server;
        }
    }
    if fatal {
        println!("voicenav cannot serve until the ✗ pieces above are fixed");
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn check_whisper_model(dir: &Path, need: Need) -> Check {
    let name = "whisper model";
    let missing: Vec<&str> = [
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
        "preprocessor_config.json",
    ]
    .into_iter()
    .filter(|f| !dir.join(f).is_file())
    .collect();
    if !missing.is_empty() {
        return Check::fail(
            name,
            need,
            format!("{} lacks {}", dir.display(), missing.join(", ")),
            format!("{SETUP}; or set asr.whisper_model to a CTranslate2 Whisper folder"),
        );
    }
    match sha256_file(&dir.join("model.bin")) {
        Ok(sum) if sum == WHISPER_SHA256 => match load_whisper(dir) {
            Ok(detail) => Check::pass(
                name,
                need,
                format!("{} (sha256 ok, {detail})", dir.display()),
            ),
            Err(e) => Check::fail(
                name,
                need,
                format!(
                    "{} passes its checksum but does not load: {e}",
                    dir.display()
                ),
                format!("delete {} and {SETUP}", dir.display()),
            ),
        },
        Ok(sum) => Check::fail(
            name,
            need,
            format!(
                "{}/model.bin has sha256 {sum}, expected {WHISPER_SHA256}",
                dir.display()
            ),
            format!("delete {} and {SETUP}", dir.display()),
        ),
        Err(e) => Check::fail(name, need, format!("cannot read model.bin: {e}"), SETUP),
    }
}

/// Loads the model for real (about a second; a broken or mismatched model shows here).
#[cfg(feature = "whisper")]
fn load_whisper(dir: &Path) -> Result<String, String> {
    use crate::asr::whisper::{WhisperConfig, WhisperModel};
    let started = std::time::Instant::now();
    let cfg = WhisperConfig {
        threads: 1,
        ..WhisperConfig::new(dir)
    };
    WhisperModel::load(&cfg).map_err(|e| e.to_string())?;
    Ok(format!("loads in {} ms", started.elapsed().as_millis()))
}

#[cfg(not(feature = "whisper"))]
fn load_whisper(_dir: &Path) -> Result<String, String> {
    Ok("not loaded: built without the `whisper` feature".into())
}

fn check_vosk_model(dir: &Path, need: Need) -> Check {
    let name = "vosk model";
    if dir.join("am/final.mdl").is_file() && dir.join("conf/model.conf").is_file() {
        Check::pass(name, need, dir.display().to_string())
    } else {
        Check::fail(
            name,
            need,
            format!("no Vosk model at {}", dir.display()),
            "download vosk-model-small-cn-0.22 and set asr.vosk_model to it (no Mandarin Vosk model is on the package registries)",
        )
    }
}

fn check_libvosk() -> Check {
    let name = "libvosk";
    if !cfg!(feature = "vosk") {
        return Check::fail(
            name,
            Need::Tests,
            "built without the `vosk` feature",
            "build with default features",
        );
    }
    // SAFETY: dlopen/dlclose with a NUL-terminated name; the handle is only closed.
    let handle = unsafe { libc::dlopen(c"libvosk.so".as_ptr(), libc::RTLD_LAZY) };
    if handle.is_null() {
        Check::fail(name, Need::Tests, "libvosk.so cannot be loaded", SETUP)
    } else {
        unsafe { libc::dlclose(handle) };
        Check::pass(name, Need::Tests, "libvosk.so loads")
    }
}

fn check_espeak() -> Check {
    let name = "espeak-ng";
    match Command::new("espeak-ng").arg("--voices=cmn").output() {
        Ok(o) if String::from_utf8_lossy(&o.stdout).contains("cmn-latn-pinyin") => {
            Check::pass(name, Need::Server, "voice cmn-latn-pinyin available")
        }
        Ok(_) => Check::fail(
            name,
            Need::Server,
            "the Mandarin voice cmn-latn-pinyin is missing",
            "apt-get install espeak-ng-data",
        ),
        Err(_) => Check::fail(
            name,
            Need::Server,
            "espeak-ng is not installed",
            "apt-get install espeak-ng",
        ),
    }
}

fn check_tool(tool: &str, args: &[&str], need: Need, fix: &str) -> Check {
    match Command::new(tool).args(args).output() {
        Ok(_) => Check::pass(tool, need, "installed"),
        Err(_) => Check::fail(tool, need, "not installed", fix),
    }
}

fn check_ports(cfg: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    let sip = &cfg.raw.sip;
    for addr in &sip.udp {
        out.push(port_check(
            format!("sip udp {addr}"),
            UdpSocket::bind(addr).map(drop),
        ));
    }
    for addr in &sip.tcp {
        out.push(port_check(
            format!("sip tcp {addr}"),
            TcpListener::bind(addr).map(drop),
        ));
    }
    let http = cfg.raw.http.listen;
    out.push(port_check(
        format!("http {http}"),
        TcpListener::bind(http).map(drop),
    ));
    let rtp = &cfg.raw.rtp;
    let ip = sip
        .udp
        .first()
        .map(SocketAddr::ip)
        .unwrap_or([127, 0, 0, 1].into());
    let free = (rtp.port_min..=rtp.port_max)
        .step_by(2)
        .take(64)
        .filter(|p| UdpSocket::bind((ip, *p)).is_ok())
        .count();
    let rtp_name = format!("rtp ports {}-{}", rtp.port_min, rtp.port_max);
    out.push(if free > 0 {
        Check::pass(
            rtp_name,
            Need::Server,
            format!("{free} of the first 64 pairs free"),
        )
    } else {
        Check::fail(
            rtp_name,
            Need::Server,
            "no free port in the range",
            "choose another rtp range",
        )
    });
    out
}

fn port_check(name: String, bind: std::io::Result<()>) -> Check {
    match bind {
        Ok(()) => Check::pass(name, Need::Server, "free"),
        Err(e) => Check::fail(
            name,
            Need::Server,
            format!("cannot bind: {e}"),
            "stop what uses it or change the address in the config",
        ),
    }
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}
