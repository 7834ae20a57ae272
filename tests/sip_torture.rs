//! RFC 4475 torture messages (tests/torture/) sent to `voicenav serve` over UDP and TCP.
//! Over TCP (first) each goes on its own connection, so the answer can be read: it must be the
//! response the RFC expects for the message, or nothing (dropped) where marked. Afterwards
//! the server must still be up and complete a normal SIPp call.
mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::time::Duration;

/// The first response the RFC leads us to expect once the message is framed; None = no
/// answer (a response, which a UAS drops as stray).
fn expected(name: &str) -> Option<u16> {
    match name {
        "wsinv" => Some(481), // a To tag: a re-INVITE for a dialog we do not have
        "esc01" | "escruri" | "inv2543" => Some(100),
        "lwsdisp" | "semiuri" | "transports" | "zeromf" | "badbranch" => Some(200),
        "intmeth" | "esc02" => Some(501),
        "escnull" | "unksm2" | "dblreq" => Some(405),
        "unreason" | "noreason" | "scalarlg" => None,
        "badvers" => Some(505),
        "novelsc" => Some(416),
        "bext01" => Some(420),
        _ => Some(400),
    }
}

/// Whether the message's Content-Length promises more body than it has: over TCP such a
/// message can never be framed and the connection just ends (RFC 3261 §18.3).
fn overlong(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return true;
    };
    let head = String::from_utf8_lossy(&bytes[..end]);
    let declared = head.split("\r\n").find_map(|l| {
        let (k, v) = l.split_once(':')?;
        let k = k.trim();
        (k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("l"))
            .then(|| v.trim().parse::<usize>().ok())?
    });
    declared.is_some_and(|n| n > bytes.len() - end - 4)
}

fn load(path: &std::path::Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).expect("torture file");
    let text = text
        .replace('\n', "\r\n")
        .replace("<NUL>", "\0")
        .replace("<BEL>", "\u{7}")
        .replace("<DEL>", "\u{7f}");
    text.into_bytes()
}

fn first_code(resp: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(resp);
    let line = text.lines().next()?;
    line.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

#[test]
fn torture_messages_are_answered_or_dropped_and_calls_still_work() {
    if !common::sip::have_sipp("torture_messages_are_answered_or_dropped_and_calls_still_work") {
        return;
    }
    let mut server = common::sip::SipServer::start(|t| t);
    let mut files: Vec<_> = std::fs::read_dir(common::repo().join("tests/torture"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "torture set present");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut failures = Vec::new();
    for f in &files {
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        let bytes = load(f);
        let mut tcp = TcpStream::connect(server.sip).unwrap();
        tcp.write_all(&bytes).unwrap();
        let _ = tcp.shutdown(Shutdown::Write);
        tcp.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = tcp.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if got.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        // The same bytes over UDP afterwards (same branch: the server may take it for a
        // retransmission of the TCP request, which is what RFC 3261 matching says).
        udp.send_to(&bytes, server.sip).unwrap();
        let code = first_code(&got);
        println!("{name}: tcp answer {code:?}");
        let want = if overlong(&bytes) {
            None
        } else {
            expected(&name)
        };
        if code != want {
            failures.push(format!("{name}: expected {want:?}, got {code:?}"));
        }
        assert!(server.alive(), "server died after {name}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let out = common::sip::sipp(server.sip, "uac_basic.xml", &["-m", "3", "-r", "3"]);
    assert!(
        out.status.success(),
        "a normal call after the torture failed: {}",
        out.status
    );
    let metrics = server.metrics();
    assert!(
        metrics.contains("voicenav_sip_dropped_total"),
        "drops are counted\n{metrics}"
    );
}
