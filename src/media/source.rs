//! Offline media sources for replay: a recorded call turned into the timed input the network
//! would have given the same [`Pipeline`](super::pipeline::Pipeline).
//!
//! - [`wav_frames`]: any WAV (rate, channels, sample format) → 8 kHz mono → 20 ms frames
//!   with their offsets, fed through `Pipeline::handle_audio`.
//! - [`pcap_rtp`]: the caller's RTP stream from a capture (pcap or pcapng; Ethernet, Linux
//!   cooked, raw IP or loopback link types; IPv4/IPv6 + UDP parsed with `etherparse`) →
//!   datagrams with their capture-time offsets, fed through `Pipeline::handle_datagram`, so
//!   the jitter buffer, G.711 decoding, RFC 4733 and concealment run as live: gaps in the
//!   capture stay gaps. The stream chosen is the one with the given SSRC, or else the first
//!   one carrying G.711 (PT 0/8); its RFC 4733 packets (same SSRC) come along.
//! - [`run_offline`]: drives a receive-only pipeline with either input on a fake clock,
//!   faster than real time, and returns the media events with their offsets — what
//!   `voicenav replay CALL.wav|CALL.pcap [--dtmf 3.2:1,…]` needs.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::pcapng::Block;
use pcap_file::DataLink;

use super::pipeline::{MediaEvent, Pipeline, PipelineConfig};
use super::wav::{self, WavError};
use super::FRAME_SAMPLES;
use crate::rtp::event::Digit;
use crate::rtp::packet::{RtpPacket, Ssrc};

/// A 20 ms frame of a WAV source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedFrame {
    pub offset: Duration,
    pub pcm: Vec<i16>,
}

/// Reads a WAV as timed 8 kHz frames (the last one padded with silence).
pub fn wav_frames(path: impl AsRef<Path>) -> Result<Vec<TimedFrame>, WavError> {
    let pcm = wav::read_mono(path, super::SAMPLE_RATE)?;
    Ok(frames(&pcm))
}

/// Cuts 8 kHz PCM into timed 20 ms frames.
pub fn frames(pcm: &[i16]) -> Vec<TimedFrame> {
    pcm.chunks(FRAME_SAMPLES)
        .enumerate()
        .map(|(i, c)| {
            let mut f = c.to_vec();
            f.resize(FRAME_SAMPLES, 0);
            TimedFrame {
                offset: Duration::from_millis(20 * i as u64),
                pcm: f,
            }
        })
        .collect()
}

/// One RTP datagram of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedDatagram {
    /// Since the first datagram of the stream.
    pub offset: Duration,
    pub from: SocketAddr,
    pub data: Vec<u8>,
}

/// pcap source errors.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}: no G.711 RTP stream found in the capture")]
    NoStream { path: PathBuf },
}

/// The caller's RTP stream in a capture file.
pub fn pcap_rtp(
    path: impl AsRef<Path>,
    ssrc: Option<Ssrc>,
) -> Result<Vec<TimedDatagram>, PcapError> {
    let path = path.as_ref();
    let err = |m: String| PcapError::Read {
        path: path.into(),
        message: m,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let udp = udp_datagrams(&bytes[..]).map_err(err)?;
    select_stream(udp, ssrc).ok_or_else(|| PcapError::NoStream { path: path.into() })
}

/// Every UDP datagram of a pcap/pcapng capture: (capture time, source, payload).
pub fn udp_datagrams(bytes: &[u8]) -> Result<Vec<(Duration, SocketAddr, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let magic = bytes.get(..4).ok_or("file too short for a capture")?;
    if magic == [0x0A, 0x0D, 0x0D, 0x0A] {
        let mut r = pcap_file::pcapng::PcapNgReader::new(bytes).map_err(|e| e.to_string())?;
        let mut links: Vec<DataLink> = Vec::new();
        while let Some(block) = r.next_block() {
            match block.map_err(|e| e.to_string())? {
                Block::InterfaceDescription(idb) => links.push(idb.linktype),
                Block::EnhancedPacket(p) => {
                    let link = links
                        .get(p.interface_id as usize)
                        .copied()
                        .unwrap_or(DataLink::ETHERNET);
                    if let Some((from, payload)) = udp_of(link, &p.data) {
                        out.push((p.timestamp, from, payload));
                    }
                }
                _ => {}
            }
        }
    } else {
        let mut r = pcap_file::pcap::PcapReader::new(bytes).map_err(|e| e.to_string())?;
        let link = r.header().datalink;
        while let Some(p) = r.next_packet() {
            let p = p.map_err(|e| e.to_string())?;
            if let Some((from, payload)) = udp_of(link, &p.data) {
                out.push((p.timestamp, from, payload));
            }
        }
    }
    Ok(out)
}

fn udp_of(link: DataLink, data: &[u8]) -> Option<(SocketAddr, Vec<u8>)> {
    let sliced = match link {
        DataLink::ETHERNET => SlicedPacket::from_ethernet(data).ok()?,
        DataLink::LINUX_SLL => SlicedPacket::from_linux_sll(data).ok()?,
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => SlicedPacket::from_ip(data).ok()?,
        // BSD loopback: a 4-byte address family, then IP.
        DataLink::NULL | DataLink::LOOP => SlicedPacket::from_ip(data.get(4..)?).ok()?,
        _ => return None,
    };
    let ip: IpAddr = match sliced.net? {
        NetSlice::Ipv4(v4) => v4.header().source_addr().into(),
        NetSlice::Ipv6(v6) => v6.header().source_addr().into(),
        _ => return None,
    };
    match sliced.transport? {
        TransportSlice::Udp(u) => {
            Some((SocketAddr::new(ip, u.source_port()), u.payload().to_vec()))
        }
        _ => None,
    }
}

fn select_stream(
    udp: Vec<(Duration, SocketAddr, Vec<u8>)>,
    ssrc: Option<Ssrc>,
) -> Option<Vec<TimedDatagram>> {
    let want = ssrc.or_else(|| {
        udp.iter().find_map(|(_, _, d)| {
            let p = RtpPacket::parse(d).ok()?;
            matches!(p.header.payload_type, 0 | 8).then_some(p.header.ssrc)
        })
    })?;
    let mut first = None;
    let out: Vec<TimedDatagram> = udp
        .into_iter()
        .filter(|(_, _, d)| RtpPacket::parse(d).is_ok_and(|p| p.header.ssrc == want))
        .map(|(t, from, data)| {
            let t0 = *first.get_or_insert(t);
            TimedDatagram {
                offset: t.saturating_sub(t0),
                from,
                data,
            }
        })
        .collect();
    (!out.is_empty()).then_some(out)
}

/// Recorded input for [`run_offline`].
#[derive(Debug, Clone)]
pub enum OfflineInput {
    /// Decoded 8 kHz frames (a WAV).
    Frames(Vec<TimedFrame>),
    /// The caller's RTP datagrams (a capture).
    Datagrams(Vec<TimedDatagram>),
}

/// A media event of an offline run, with its time since the start of the recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedEvent {
    pub offset: Duration,
    pub event: MediaEvent,
}

/// Runs a recorded call through a receive-only [`Pipeline`] (jitter buffer, decoding,
/// DTMF, VAD — the network path) on a fake clock; `digits` are keys given by hand at their
/// offsets. The utterance still open at the end is closed. Never sleeps.
pub fn run_offline(
    mut config: PipelineConfig,
    input: &OfflineInput,
    digits: &[(Duration, Digit)],
) -> Vec<TimedEvent> {
    config.send = false;
    config.record = false;
    config.rtp_timeout = None;
    let t0 = std::time::Instant::now();
    let mut p = Pipeline::new(config, None, t0);
    let mut out = Vec::new();
    let mut digits: Vec<(Duration, Digit)> = digits.to_vec();
    digits.sort_by_key(|d| d.0);
    let last_digit = digits.last().map_or(Duration::ZERO, |d| d.0);
    let mut digits = digits.into_iter().peekable();
    let drain = |p: &mut Pipeline, out: &mut Vec<TimedEvent>| {
        while let Some(event) = p.poll_event() {
            let at = match &event {
                MediaEvent::SpeechStart { at } | MediaEvent::SpeechEnd { at, .. } => *at,
                MediaEvent::Dtmf(d) => d.at,
                MediaEvent::PromptEnded { report, .. } => report.ended_at,
                MediaEvent::RtpInactive { since } => *since,
            };
            out.push(TimedEvent {
                offset: at.saturating_duration_since(t0),
                event,
            });
        }
    };
    let mut step = |p: &mut Pipeline, out: &mut Vec<TimedEvent>, offset: Duration| {
        while let Some((at, d)) = digits.next_if(|(at, _)| *at <= offset) {
            p.handle_timeout(t0 + at);
            p.handle_scripted_digit(t0 + at, d);
        }
        p.handle_timeout(t0 + offset);
        drain(p, out);
    };
    let end = match input {
        OfflineInput::Frames(frames) => {
            for f in frames {
                step(&mut p, &mut out, f.offset);
                p.handle_audio(t0 + f.offset, &f.pcm);
            }
            frames
                .last()
                .map_or(Duration::ZERO, |f| f.offset + Duration::from_millis(20))
        }
        OfflineInput::Datagrams(dgrams) => {
            for d in dgrams {
                step(&mut p, &mut out, d.offset);
                let _ = p.handle_datagram(t0 + d.offset, d.from, &d.data);
            }
            // Let the jitter buffer play out what it holds.
            dgrams
                .last()
                .map_or(Duration::ZERO, |d| d.offset + Duration::from_millis(500))
        }
    };
    step(&mut p, &mut out, end.max(last_digit));
    p.finish(t0 + end);
    drain(&mut p, &mut out);
    out
}

/// Reads a whole capture from any reader (for tests and stdin).
pub fn read_all<R: Read>(mut r: R) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::Law;
    use crate::rtp::packet::RtpHeader;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

    /// Ethernet + IPv4 + UDP around `payload`, built with etherparse.
    fn frame(src_port: u16, payload: &[u8]) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(src_port, 20000);
        let mut v = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn pcap_yields_the_callers_stream_with_times_and_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("call.pcap");
        let f = std::fs::File::create(&path).unwrap();
        let mut w = PcapWriter::with_header(
            f,
            PcapHeader {
                datalink: DataLink::ETHERNET,
                ..Default::default()
            },
        )
        .unwrap();
        let base = Duration::from_secs(1_700_000_000);
        let mut n = 0;
        for i in 0..20u16 {
            if i == 7 {
                continue; // lost on the wire: a gap
            }
            let h = RtpHeader {
                payload_type: 8,
                marker: i == 0,
                seq: i,
                timestamp: 160 * i as u32,
                ssrc: Ssrc(77),
            };
            let pkt = frame(30000, &h.emit(&Law::Alaw.encode(&[1000; 160])).unwrap());
            w.write_packet(&PcapPacket::new(
                base + Duration::from_millis(20 * i as u64),
                pkt.len() as u32,
                &pkt,
            ))
            .unwrap();
            // Interleave the bot's stream and some SIP.
            let other = RtpHeader {
                payload_type: 8,
                marker: false,
                seq: i,
                timestamp: 0,
                ssrc: Ssrc(5),
            };
            let pkt = frame(20000, &other.emit(&[0xD5; 160]).unwrap());
            w.write_packet(&PcapPacket::new(
                base + Duration::from_millis(20 * i as u64 + 5),
                pkt.len() as u32,
                &pkt,
            ))
            .unwrap();
            let sip = frame(5060, b"OPTIONS sip:x SIP/2.0\r\n\r\n");
            w.write_packet(&PcapPacket::new(base, sip.len() as u32, &sip))
                .unwrap();
            n += 1;
        }
        drop(w);
        let d = pcap_rtp(&path, None).unwrap();
        assert_eq!(d.len(), n);
        assert_eq!(d[0].offset, Duration::ZERO);
        assert_eq!(d[7].offset, Duration::from_millis(160), "the gap is kept");
        assert_eq!(d[0].from, "10.0.0.1:30000".parse().unwrap());
        assert!(d
            .iter()
            .all(|x| RtpPacket::parse(&x.data).unwrap().header.ssrc == Ssrc(77)));
        let bot = pcap_rtp(&path, Some(Ssrc(5))).unwrap();
        assert_eq!(bot.len(), n);
    }

    #[test]
    fn bad_captures_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.pcap");
        std::fs::write(&path, b"nonsense data here").unwrap();
        let e = pcap_rtp(&path, None).unwrap_err().to_string();
        assert!(e.contains("junk.pcap"), "{e}");
        let empty = dir.path().join("empty.pcap");
        let f = std::fs::File::create(&empty).unwrap();
        drop(PcapWriter::new(f).unwrap());
        assert!(matches!(
            pcap_rtp(&empty, None),
            Err(PcapError::NoStream { .. })
        ));
    }

    #[test]
    fn offline_wav_and_pcap_runs_give_speech_and_digits() {
        let Some(dir) = crate::media::testdata::speech_dir() else {
            eprintln!("SKIP: shared Mandarin clips not found");
            return;
        };
        // WAV: a real clip with a second of silence either side, plus a scripted key.
        let clip = wav::read_mono(dir.join("wenet_nst_ID002.wav"), 8000).unwrap();
        let mut pcm = vec![0i16; 8000];
        pcm.extend_from_slice(&clip);
        pcm.extend(vec![0i16; 8000]);
        let cfg = PipelineConfig::new(Law::Alaw);
        let key = (Duration::from_millis(500), Digit::from_char('9').unwrap());
        let ev = run_offline(cfg, &OfflineInput::Frames(frames(&pcm)), &[key]);
        let kinds: Vec<&str> = ev
            .iter()
            .map(|e| match e.event {
                MediaEvent::SpeechStart { .. } => "start",
                MediaEvent::SpeechEnd { .. } => "end",
                MediaEvent::Dtmf(_) => "key",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["key", "start", "end"]);
        assert_eq!(ev[0].offset, Duration::from_millis(500));
        assert!(
            ev[1].offset >= Duration::from_millis(1000)
                && ev[1].offset < Duration::from_millis(1600),
            "{:?}",
            ev[1].offset
        );

        // pcap-like datagrams: the same audio as RTP with one lost packet and an RFC 4733 key.
        let mut dgrams = Vec::new();
        let from: SocketAddr = "10.0.0.1:30000".parse().unwrap();
        let mut seq = 0u16;
        for (i, f) in pcm.chunks(160).enumerate() {
            if i == 30 {
                for e in crate::rtp::event::press_packets(Digit::from_char('3').unwrap(), 100, 10) {
                    let h = RtpHeader {
                        payload_type: 101,
                        marker: e.marker,
                        seq,
                        timestamp: 160 * 30,
                        ssrc: Ssrc(3),
                    };
                    dgrams.push(TimedDatagram {
                        offset: Duration::from_millis(20 * i as u64),
                        from,
                        data: h.emit(&e.payload.emit()).unwrap(),
                    });
                    seq = seq.wrapping_add(1);
                }
            }
            let h = RtpHeader {
                payload_type: 8,
                marker: i == 0,
                seq,
                timestamp: 160 * i as u32,
                ssrc: Ssrc(3),
            };
            seq = seq.wrapping_add(1);
            if i != 60 {
                let data = h.emit(&Law::Alaw.encode(f)).unwrap();
                dgrams.push(TimedDatagram {
                    offset: Duration::from_millis(20 * i as u64),
                    from,
                    data,
                });
            }
        }
        let ev = run_offline(
            PipelineConfig::new(Law::Alaw),
            &OfflineInput::Datagrams(dgrams),
            &[],
        );
        let keys: Vec<char> = ev
            .iter()
            .filter_map(|e| {
                if let MediaEvent::Dtmf(d) = &e.event {
                    Some(d.digit.as_char())
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(keys, ['3']);
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e.event, MediaEvent::SpeechStart { .. }))
                .count(),
            1
        );
        let utt = ev
            .iter()
            .find_map(|e| {
                if let MediaEvent::SpeechEnd { pcm, .. } = &e.event {
                    Some(pcm.len())
                } else {
                    None
                }
            })
            .unwrap();
        assert!(
            utt >= clip.len() / 2,
            "utterance of {utt} samples from a clip of {}",
            clip.len()
        );
    }

    #[test]
    fn wav_frames_are_20ms_and_padded() {
        let f = frames(&vec![3i16; 400]);
        assert_eq!(f.len(), 3);
        assert_eq!(f[2].offset, Duration::from_millis(40));
        assert_eq!(f[2].pcm.len(), 160);
        assert_eq!(f[2].pcm[79], 3);
        assert_eq!(f[2].pcm[80], 0);
    }
}
