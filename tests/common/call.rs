//! Whole-call helpers: `voicenav serve` with or without the recogniser, a caller's media
//! built as a pcap (natural-voice sentence from `shared/speech/callers` when present, else
//! espeak-ng → 8 kHz G.711 µ-law RTP, RFC 4733 keys, silence, garbage), SIPp caller
//! scenarios generated around it (the caller also plays the trunk: it takes the REFER,
//! answers 202 and NOTIFY 200), and the call records the server wrote.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use voicenav::media::g711::Law;
use voicenav::rtp::event::Digit;
use voicenav::rtp::packet::Ssrc;
use voicenav::rtp::session::{RtpSession, SessionConfig};

use super::{http_get, write_config, Server};

/// Whether the Whisper model is installed; prints the SKIP line when not.
pub fn have_model(test: &str) -> bool {
    let dir = voicenav::config::AsrConfig::default().whisper_model;
    let ok = voicenav::asr::whisper::model_present(&dir);
    if !ok {
        println!(
            "SKIP {test}: the Whisper model is missing at {} (run scripts/setup.sh)",
            dir.display()
        );
    }
    ok
}

/// A running `voicenav serve` for whole calls.
pub struct CallServer {
    pub server: Server,
    pub sip: SocketAddr,
    pub records: PathBuf,
    pub dir: tempfile::TempDir,
}

impl CallServer {
    /// Starts a server (recogniser on when `asr`), prompts spoken fast (tests wait less),
    /// the call timers of `call_yaml` (lines under `call:`), after `edit`; ready once it
    /// answers OPTIONS.
    pub fn start(asr: bool, call_yaml: &str, edit: impl FnOnce(String) -> String) -> CallServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cfg, ports) = write_config(dir.path(), |t| {
            let mut t = t.replace("  rate: 160", "  rate: 320");
            if !asr {
                t = t.replace("backend: whisper", "backend: none");
            }
            t = t.replace("  workers: 0", "  workers: 1");
            t.push_str(&format!("\ncall:\n{call_yaml}\n"));
            edit(t)
        });
        let server = Server::start(&cfg, ports, &[]);
        let sip: SocketAddr = ([127, 0, 0, 1], ports.sip).into();
        let records = dir.path().join("var/records");
        let s = CallServer {
            server,
            sip,
            records,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while !s.answers_options() {
            assert!(
                Instant::now() < deadline,
                "voicenav serve did not answer OPTIONS:\n{}",
                s.server.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        s
    }

    fn answers_options(&self) -> bool {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let local = sock.local_addr().expect("addr");
        let _ = sock.send_to(super::sip::options(&local).as_bytes(), self.sip);
        let mut buf = [0u8; 4096];
        matches!(sock.recv_from(&mut buf), Ok((len, _)) if buf[..len].starts_with(b"SIP/2.0 200"))
    }

    /// Every call record written so far.
    pub fn records(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&self.records) {
            for e in rd.flatten() {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                out.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
            }
        }
        out
    }

    /// Waits until at least `n` records are there (bounded).
    pub fn wait_records(&self, n: usize, within: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + within;
        loop {
            let r = self.records();
            if r.len() >= n || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn metrics(&self) -> String {
        http_get(self.server.ports.http, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    pub fn log(&self) -> String {
        self.server.log()
    }
}

/// What the caller does, in order, from the ACK on.
#[derive(Debug, Clone)]
pub enum Turn {
    /// Silence (silent RTP keeps flowing).
    Silence(f64),
    /// A sentence: the `shared/speech/callers/<name>.wav` recording when present, else
    /// `text` synthesised by espeak-ng. Followed by 1.2 s of silence (end of utterance).
    Say {
        name: &'static str,
        text: &'static str,
    },
    /// A key as RFC 4733 events (100 ms), then 200 ms of silence.
    Key(char),
    /// Datagrams that are not RTP at all.
    Garbage(usize),
    /// RTP from another SSRC (a stray stream) for this many frames.
    ForeignSsrc(usize),
}

fn callers_dir() -> Option<PathBuf> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    [
        here.join("../shared/speech/callers"),
        here.join("../../shared/speech/callers"),
        "/work/shared/speech/callers".into(),
    ]
    .into_iter()
    .find(|p| p.join("callers.tsv").is_file())
}

/// 8 kHz audio of a sentence.
pub fn sentence(name: &str, text: &str) -> Vec<i16> {
    if let Some(dir) = callers_dir() {
        let f = dir.join(format!("{name}.wav"));
        if let Ok(pcm) = voicenav::media::wav::read_mono(&f, 8000) {
            return pcm;
        }
    }
    use voicenav::tts::Synthesizer;
    let synth = voicenav::tts::espeak::EspeakNg::default();
    let audio = synth
        .synthesize(text, &voicenav::tts::Voice::mandarin())
        .expect("espeak-ng synthesises the sentence");
    voicenav::media::resample::to_rate(&audio.samples, audio.rate, 8000).expect("resample")
}

/// The caller's media as a pcap (Ethernet/IPv4/UDP/RTP, 20 ms apart); returns its length.
pub fn build_pcap(turns: &[Turn], file: &Path) -> Duration {
    let law = Law::Ulaw;
    let mut session = RtpSession::new(
        SessionConfig {
            ssrc: Ssrc(0x5eed),
            initial_seq: 100,
            ..SessionConfig::new(law)
        },
        Some(([127, 0, 0, 1], 9).into()),
    );
    let silence = vec![law.silence(); 160];
    let mut packets: Vec<Vec<u8>> = Vec::new();
    let push_frames = |session: &mut RtpSession, pcm: &[i16], packets: &mut Vec<Vec<u8>>| {
        for c in pcm.chunks(160) {
            let mut f = c.to_vec();
            f.resize(160, 0);
            let payload = law.encode(&f);
            if let Some(p) = session.next_packet(Some(&payload)) {
                packets.push(p);
            }
        }
    };
    for t in turns {
        match t {
            Turn::Silence(s) => {
                let n = (s * 50.0).round() as usize;
                for _ in 0..n {
                    if let Some(p) = session.next_packet(Some(&silence)) {
                        packets.push(p);
                    }
                }
            }
            Turn::Say { name, text } => {
                let pcm = sentence(name, text);
                push_frames(&mut session, &pcm, &mut packets);
                push_frames(&mut session, &vec![0i16; 8000 * 12 / 10], &mut packets);
            }
            Turn::Key(c) => {
                let d = Digit::from_char(*c).expect("a key");
                session.send_digit(d, 100);
                for _ in 0..15 {
                    if let Some(p) = session.next_packet(Some(&silence)) {
                        packets.push(p);
                    }
                }
            }
            Turn::Garbage(n) => {
                for i in 0..*n {
                    packets.push(vec![0xff, 0x00, i as u8, 0x42, 0x13]);
                    if let Some(p) = session.next_packet(Some(&silence)) {
                        packets.push(p);
                    }
                }
            }
            Turn::ForeignSsrc(n) => {
                let mut other = RtpSession::new(
                    SessionConfig {
                        ssrc: Ssrc(0xbad),
                        initial_seq: 7,
                        ..SessionConfig::new(law)
                    },
                    Some(([127, 0, 0, 1], 9).into()),
                );
                for _ in 0..*n {
                    if let Some(p) = other.next_packet(Some(&[0x00; 160])) {
                        packets.push(p);
                    }
                    if let Some(p) = session.next_packet(Some(&silence)) {
                        packets.push(p);
                    }
                }
            }
        }
    }
    write_pcap(file, &packets);
    Duration::from_millis(20 * packets.len() as u64)
}

fn write_pcap(file: &Path, packets: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
                                                // Garbage datagrams ride in the same 20 ms slot as the packet after them.
    let mut slot = 0u64;
    for p in packets {
        let is_rtp = p.len() >= 12 && p[0] >> 6 == 2;
        let t_us = slot * 20_000 + if is_rtp { 0 } else { 5_000 };
        if is_rtp {
            slot += 1;
        }
        let udp_len = 8 + p.len();
        let ip_len = 20 + udp_len;
        let frame_len = 14 + ip_len;
        out.extend_from_slice(&((t_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((t_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame_len as u32).to_le_bytes());
        out.extend_from_slice(&(frame_len as u32).to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let mut ip = vec![
            0x45,
            0,
            (ip_len >> 8) as u8,
            ip_len as u8,
            0,
            0,
            0x40,
            0,
            64,
            17,
            0,
            0,
            127,
            0,
            0,
            1,
            127,
            0,
            0,
            1,
        ];
        let sum = checksum(&ip);
        ip[10] = (sum >> 8) as u8;
        ip[11] = sum as u8;
        out.extend_from_slice(&ip);
        out.extend_from_slice(&[
            0x9c,
            0x40,
            0x9c,
            0x42,
            (udp_len >> 8) as u8,
            udp_len as u8,
            0,
            0,
        ]);
        out.extend_from_slice(p);
    }
    std::fs::write(file, out).expect("write pcap");
}

fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// What the SIPp trunk checks in the REFER.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub queue: &'static str,
    pub lane: &'static str,
    /// Regex the X-Voicenav-Scenario header must match.
    pub scenario: Option<&'static str>,
    /// Regex the X-Voicenav-Transcript header must match.
    pub transcript: Option<&'static str>,
    /// Answer the REFER with this failure code instead of accepting it.
    pub reject_with: Option<u16>,
}

/// How the caller's call ends.
#[derive(Debug, Clone)]
pub enum Ending {
    /// Waits for the REFER (checked), accepts it, NOTIFY 200, then takes our BYE.
    Refer(Expect),
    /// Hangs up (BYE) this long after the ACK.
    HangUpAfter(Duration),
    /// Waits for our BYE (within the given time) and answers 200.
    ExpectBye(Duration),
}

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="voicenav whole call">
  <send retrans="500">
    <![CDATA[
      INVITE sip:hotline@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: "Caller" <sip:ANI@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:hotline@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:hotline@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: "Caller" <sip:ANI@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:hotline@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"#;

const REPLY_200: &str = r#"  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
"#;

/// Writes the SIPp scenario of one caller: `pcap` played right after the ACK, then `end`.
pub fn scenario(dir: &Path, ani: &str, pcap: Option<&Path>, end: &Ending) -> PathBuf {
    let mut x = HEAD.replace("ANI", ani);
    if let Some(p) = pcap {
        x.push_str(&format!(
            "  <nop>\n    <action>\n      <exec play_pcap_audio=\"{}\"/>\n    </action>\n  </nop>\n",
            p.display()
        ));
    }
    match end {
        Ending::Refer(e) => {
            let mut checks = vec![
                format!(r#"<ereg regexp="sip:{}@" search_in="hdr" header="Refer-To:" check_it="true" assign_to="referto"/>"#, e.queue),
                format!(r#"<ereg regexp="^ *{}" search_in="hdr" header="X-Voicenav-Queue:" check_it="true" assign_to="xq"/>"#, e.queue),
                format!(r#"<ereg regexp="{}" search_in="hdr" header="X-Voicenav-Lane:" check_it="true" assign_to="xl"/>"#, e.lane),
                r#"<ereg regexp="." search_in="hdr" header="X-Voicenav-Call-Id:" check_it="true" assign_to="xc"/>"#.to_string(),
                r#"<ereg regexp="[0-9a-f]+;encoding=hex" search_in="hdr" header="User-to-User:" check_it="true" assign_to="uui"/>"#.to_string(),
            ];
            if let Some(s) = e.scenario {
                checks.push(format!(r#"<ereg regexp="{s}" search_in="hdr" header="X-Voicenav-Scenario:" check_it="true" assign_to="xs"/>"#));
            }
            if let Some(t) = e.transcript {
                checks.push(format!(r#"<ereg regexp="{t}" search_in="hdr" header="X-Voicenav-Transcript:" check_it="true" assign_to="xt"/>"#));
            }
            let vars = if e.scenario.is_some() && e.transcript.is_some() {
                "referto,xq,xl,xc,uui,xs,xt"
            } else if e.scenario.is_some() {
                "referto,xq,xl,xc,uui,xs"
            } else if e.transcript.is_some() {
                "referto,xq,xl,xc,uui,xt"
            } else {
                "referto,xq,xl,xc,uui"
            };
            x.push_str(&format!(
                "  <recv request=\"REFER\" timeout=\"90000\">\n    <action>\n      {}\n    </action>\n  </recv>\n",
                checks.join("\n      ")
            ));
            match e.reject_with {
                Some(code) => {
                    x.push_str(&REPLY_200.replace("200 OK", &format!("{code} Decline")));
                    x.push_str("  <recv request=\"BYE\" timeout=\"90000\"/>\n");
                    x.push_str(REPLY_200);
                }
                None => {
                    x.push_str(&REPLY_200.replace("200 OK", "202 Accepted"));
                    x.push_str(&format!(
                        r#"  <send retrans="500">
    <![CDATA[
      NOTIFY sip:voicenav@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: "Caller" <sip:{ani}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:hotline@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 NOTIFY
      Contact: <sip:caller@[local_ip]:[local_port]>
      Event: refer
      Subscription-State: terminated;reason=noresource
      Max-Forwards: 70
      Content-Type: message/sipfrag;version=2.0
      Content-Length: [len]

      SIP/2.0 200 OK
    ]]>
  </send>
  <recv response="200"/>
  <recv request="BYE" timeout="10000"/>
"#
                    ));
                    x.push_str(REPLY_200);
                }
            }
            x.push_str(&format!("  <Reference variables=\"{vars}\"/>\n"));
        }
        Ending::HangUpAfter(d) => {
            x.push_str(&format!("  <pause milliseconds=\"{}\"/>\n", d.as_millis()));
            x.push_str(&format!(
                r#"  <send retrans="500">
    <![CDATA[
      BYE sip:hotline@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: "Caller" <sip:{ani}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:hotline@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200"/>
"#
            ));
        }
        Ending::ExpectBye(d) => {
            x.push_str(&format!(
                "  <recv request=\"BYE\" timeout=\"{}\"/>\n",
                d.as_millis()
            ));
            x.push_str(REPLY_200);
        }
    }
    x.push_str("</scenario>\n");
    let file = dir.join(format!("caller-{}.xml", super::free_port()));
    std::fs::write(&file, x).expect("write scenario");
    file
}

/// Runs SIPp with a generated scenario: `calls` calls, all at once (bounded by 150 s).
pub fn run_sipp(target: SocketAddr, scenario: &Path, calls: usize) -> Output {
    let n = calls.to_string();
    super::sip::sipp_args(
        &[&target.to_string(), "-sf", super::sip::path_str(scenario)],
        &[
            "-m",
            &n,
            "-l",
            &n,
            "-r",
            &n,
            "-timeout",
            "150s",
            "-max_recv_loops",
            "100000",
        ],
    )
}
