//! One call's RTP session (RFC 3550, profile RFC 3551), sans-IO.
//!
//! Receive side: datagrams in ([`RtpSession::handle_datagram`]); the remote SSRC is locked
//! to the first stream (a new SSRC restarts the receive state); sequence numbers and
//! timestamps are extended past wraparound; G.711 packets go into the jitter buffer, RFC 4733
//! telephone-events go straight to the event receiver (they have their own redundancy) and
//! their sequence numbers are marked as skipped in the jitter buffer. The interarrival jitter
//! of RFC 3550 §A.8 is computed for receiver reports.
//!
//! Symmetric RTP (RFC 4961): the address packets come from becomes the address we send
//! to — through NAT the SDP address is often unreachable. The first source is latched:
//! packets from other addresses are ignored while it is alive, and only after it has been
//! silent for [`RELATCH`] may another address take over (no RTP injection by a third party).
//!
//! Send side: 20 ms packetisation — [`RtpSession::next_packet`] is called once per
//! interval with the frame's G.711 payload; the marker bit is set on the first packet of a
//! talkspurt; while a key press queued by [`RtpSession::send_digit`] is in progress the
//! interval carries a telephone-event packet instead (RFC 4733 §2.5.1), all with the
//! timestamp of the press start, then the timestamp jumps past the press.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::event::{press_packets, Digit, EventPacket, EventPayload, EventReceiver, ReceivedDigit};
use super::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use super::packet::{PacketError, RtpHeader, RtpPacket, Ssrc};
use super::rtcp::{ReceptionReport, RtcpPacket};
use super::seq::{ExtSeq, SeqExtender, TsExtender};
use crate::media::g711::Law;

/// How long the latched source must be silent before another address may take over.
pub const RELATCH: Duration = Duration::from_secs(2);

/// Session settings from the SDP answer.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    pub law: Law,
    /// Negotiated payload type of telephone-event/8000 (usually 101), if any.
    pub event_pt: Option<u8>,
    pub jitter: JitterConfig,
    /// Our SSRC and initial sequence number / timestamp (random per RFC 3550 §5.1).
    pub ssrc: Ssrc,
    pub initial_seq: u16,
    pub initial_ts: u32,
    /// Samples per packet (160 = 20 ms at 8 kHz).
    pub samples_per_packet: u32,
}

impl SessionConfig {
    /// PCMU/PCMA with telephone-event 101, random SSRC, sequence number and timestamp.
    pub fn new(law: Law) -> SessionConfig {
        SessionConfig {
            law,
            event_pt: Some(101),
            jitter: JitterConfig::default(),
            ssrc: Ssrc(rand::random()),
            initial_seq: rand::random(),
            initial_ts: rand::random(),
            samples_per_packet: 160,
        }
    }
}

/// Receive-side counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct RxStats {
    pub packets: u64,
    pub ignored: u64,
    pub events: u64,
    /// RFC 3550 §A.8 interarrival jitter, in timestamp units.
    pub jitter: f64,
}

#[derive(Debug)]
struct Rx {
    ssrc: Ssrc,
    seq: SeqExtender,
    ts: TsExtender,
    jitter: JitterBuffer,
    events: EventReceiver,
    first_seq: ExtSeq,
    max_seq: ExtSeq,
    /// For §A.8: previous transit time (arrival in ts units − RTP ts).
    transit: Option<f64>,
    epoch: Instant,
}

/// What a datagram was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Audio,
    Event,
    Rtcp,
    /// Another payload type (e.g. comfort noise) or another SSRC while locked: ignored.
    Ignored,
}

/// The RTP session of one call.
#[derive(Debug)]
pub struct RtpSession {
    config: SessionConfig,
    remote: Option<SocketAddr>,
    /// The source the caller's packets come from (symmetric RTP latch).
    latched: Option<SocketAddr>,
    rx: Option<Rx>,
    rx_stats: RxStats,
    digits: VecDeque<ReceivedDigit>,
    // send side
    seq: u16,
    ts: u32,
    talkspurt_start: bool,
    press: VecDeque<EventPacket>,
    press_ts: u32,
    press_end_ts: u32,
    pending_presses: VecDeque<(Digit, u32)>,
    sent_packets: u32,
    sent_octets: u32,
    last_sr: Option<(u32, Instant)>,
    last_rx: Option<Instant>,
}

impl RtpSession {
    /// A session sending to `remote` (the SDP address) until packets arrive from elsewhere.
    pub fn new(config: SessionConfig, remote: Option<SocketAddr>) -> RtpSession {
        RtpSession {
            config,
            remote,
            rx: None,
            rx_stats: RxStats::default(),
            digits: VecDeque::new(),
            seq: config.initial_seq,
            ts: config.initial_ts,
            talkspurt_start: true,
            press: VecDeque::new(),
            press_ts: 0,
            press_end_ts: 0,
            pending_presses: VecDeque::new(),
            sent_packets: 0,
            sent_octets: 0,
            last_sr: None,
            last_rx: None,
            latched: None,
        }
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Where packets go (learned from the last valid packet's source).
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    pub fn ssrc(&self) -> Ssrc {
        self.config.ssrc
    }

    /// The caller's SSRC once a packet has arrived.
    pub fn remote_ssrc(&self) -> Option<Ssrc> {
        self.rx.as_ref().map(|r| r.ssrc)
    }

    /// When the last valid RTP packet arrived (for RTP inactivity timers).
    pub fn last_received(&self) -> Option<Instant> {
        self.last_rx
    }

    pub fn rx_stats(&self) -> RxStats {
        self.rx_stats
    }

    pub fn jitter_stats(&self) -> JitterStats {
        self.rx
            .as_ref()
            .map(|r| r.jitter.stats())
            .unwrap_or_default()
    }

    /// Takes in one datagram received at `now` from `from`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        buf: &[u8],
    ) -> Result<Received, PacketError> {
        if super::packet::is_rtcp(buf) {
            if let Ok(packets) = RtcpPacket::parse_compound(buf) {
                for p in packets {
                    if let RtcpPacket::SenderReport { ntp, .. } = p {
                        self.last_sr = Some((((ntp >> 16) & 0xFFFF_FFFF) as u32, now));
                    }
                }
            }
            return Ok(Received::Rtcp);
        }
        let packet = RtpPacket::parse(buf)?;
        let h = packet.header;
        let is_audio = h.payload_type == self.config.law.payload_type();
        let is_event = Some(h.payload_type) == self.config.event_pt;
        if !is_audio && !is_event {
            self.rx_stats.ignored += 1;
            return Ok(Received::Ignored);
        }
        // Latching: while the current source is alive, packets from any other address are
        // not the caller's (RTP injection / "RTP bleed"); a source silent for RELATCH may be
        // replaced (NAT rebinding, a media relay taking over).
        if let (Some(latched), Some(last)) = (self.latched, self.last_rx) {
            if from != latched && now.saturating_duration_since(last) < RELATCH {
                self.rx_stats.ignored += 1;
                return Ok(Received::Ignored);
            }
        }
        if self.rx.as_ref().is_none_or(|r| r.ssrc != h.ssrc) {
            // A new stream (first packet, or the far end restarted with a new SSRC).
            let mut seq = SeqExtender::default();
            let first = seq.extend(h.seq);
            self.rx = Some(Rx {
                ssrc: h.ssrc,
                seq,
                ts: TsExtender::default(),
                jitter: JitterBuffer::new(self.config.jitter),
                events: EventReceiver::default(),
                first_seq: first,
                max_seq: first,
                transit: None,
                epoch: now,
            });
        }
        let Some(rx) = self.rx.as_mut() else {
            return Ok(Received::Ignored);
        };
        self.remote = Some(from);
        self.latched = Some(from);
        self.last_rx = Some(now);
        self.rx_stats.packets += 1;
        let seq = rx.seq.extend(h.seq);
        let ts = rx.ts.extend(h.timestamp);
        rx.max_seq = rx.max_seq.max(seq);
        // RFC 3550 §A.8 interarrival jitter.
        let arrival = now.saturating_duration_since(rx.epoch).as_secs_f64() * 8000.0;
        let transit = arrival - ts.0 as f64;
        if let Some(prev) = rx.transit {
            let d = (transit - prev).abs();
            self.rx_stats.jitter += (d - self.rx_stats.jitter) / 16.0;
        }
        rx.transit = Some(transit);
        if is_audio {
            rx.jitter.insert(now, seq, packet.payload.to_vec());
            Ok(Received::Audio)
        } else {
            rx.jitter.skip(now, seq);
            self.rx_stats.events += 1;
            if let Ok(ev) = EventPayload::parse(packet.payload) {
                if let Some(d) = rx.events.handle(ts.0, &ev) {
                    self.digits.push_back(d);
                }
            }
            Ok(Received::Event)
        }
    }

    /// The next jitter-buffer playout item due at `now`.
    pub fn poll_playout(&mut self, now: Instant) -> Option<Playout> {
        self.rx.as_mut()?.jitter.poll_playout(now)
    }

    /// The next RFC 4733 digit received.
    pub fn poll_digit(&mut self) -> Option<ReceivedDigit> {
        self.digits.pop_front()
    }

    /// When the jitter buffer next has something to play.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.rx.as_ref()?.jitter.poll_timeout()
    }

    /// Queues a key press to send as RFC 4733 events (needs a negotiated event payload type).
    pub fn send_digit(&mut self, digit: Digit, duration_ms: u32) -> bool {
        if self.config.event_pt.is_none() {
            return false;
        }
        self.pending_presses.push_back((digit, duration_ms));
        true
    }

    /// True while a key press is being sent or waiting.
    pub fn sending_digits(&self) -> bool {
        !self.press.is_empty() || !self.pending_presses.is_empty()
    }

    /// The packet for this 20 ms interval: the audio `payload` (G.711 of the frame), or
    /// an event packet while a key press is in progress. `None` for silence suppression
    /// (`payload` is `None`): nothing is sent, and the next audio packet gets the marker.
    pub fn next_packet(&mut self, payload: Option<&[u8]>) -> Option<Vec<u8>> {
        let spp = self.config.samples_per_packet;
        if self.press.is_empty() {
            if let Some((digit, ms)) = self.pending_presses.pop_front() {
                self.press = press_packets(digit, ms, 10).into();
                self.press_ts = self.ts;
                self.press_end_ts = self
                    .ts
                    .wrapping_add(self.press.back().map_or(0, |p| p.payload.duration as u32));
            }
        }
        if let (Some(pt), Some(ev)) = (self.config.event_pt, self.press.pop_front()) {
            let header = RtpHeader {
                payload_type: pt,
                marker: ev.marker,
                seq: self.seq,
                timestamp: self.press_ts,
                ssrc: self.config.ssrc,
            };
            self.seq = self.seq.wrapping_add(1);
            if self.press.is_empty() {
                // Audio resumes after the press, as a new talkspurt.
                self.ts = self.press_end_ts.wrapping_add(spp);
                self.talkspurt_start = true;
            }
            return self.count(header.emit(&ev.payload.emit()).ok());
        }
        let Some(payload) = payload else {
            self.ts = self.ts.wrapping_add(spp);
            self.talkspurt_start = true;
            return None;
        };
        let header = RtpHeader {
            payload_type: self.config.law.payload_type(),
            marker: std::mem::take(&mut self.talkspurt_start),
            seq: self.seq,
            timestamp: self.ts,
            ssrc: self.config.ssrc,
        };
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(payload.len() as u32);
        self.count(header.emit(payload).ok())
    }

    fn count(&mut self, p: Option<Vec<u8>>) -> Option<Vec<u8>> {
        if let Some(p) = &p {
            self.sent_packets = self.sent_packets.wrapping_add(1);
            self.sent_octets = self.sent_octets.wrapping_add(p.len() as u32 - 12);
        }
        p
    }

    /// A compound RTCP packet (SR if we have sent, else RR, with one report block on the
    /// caller's stream) — RFC 3550 §6.4. `ntp` is the wall clock as a 64-bit NTP
    /// timestamp (an input: cores read no clocks).
    pub fn rtcp_report(&self, now: Instant, ntp: u64) -> Vec<u8> {
        let block = self.rx.as_ref().map(|rx| {
            let stats = rx.jitter.stats();
            let expected = rx.max_seq.0 - rx.first_seq.0 + 1;
            let received = stats.received.min(expected);
            let lost = expected - received;
            ReceptionReport {
                ssrc: rx.ssrc.0,
                fraction_lost: (lost * 256).checked_div(expected).unwrap_or(0).min(255) as u8,
                cumulative_lost: lost.min(0x7F_FFFF) as u32,
                highest_seq: (rx.max_seq.0 & 0xFFFF_FFFF) as u32,
                jitter: self.rx_stats.jitter as u32,
                lsr: self.last_sr.map_or(0, |(lsr, _)| lsr),
                dlsr: self.last_sr.map_or(0, |(_, at)| {
                    (now.saturating_duration_since(at).as_secs_f64() * 65536.0) as u32
                }),
            }
        });
        let reports: Vec<ReceptionReport> = block.into_iter().collect();
        let p = if self.sent_packets > 0 {
            RtcpPacket::SenderReport {
                ssrc: self.config.ssrc.0,
                ntp,
                rtp_ts: self.ts,
                packets: self.sent_packets,
                octets: self.sent_octets,
                reports,
            }
        } else {
            RtcpPacket::ReceiverReport {
                ssrc: self.config.ssrc.0,
                reports,
            }
        };
        p.emit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SessionConfig {
        SessionConfig {
            ssrc: Ssrc(7),
            initial_seq: 65534,
            initial_ts: u32::MAX - 100,
            ..SessionConfig::new(Law::Ulaw)
        }
    }

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn send_side_packetises_with_marker_and_wraps() {
        let mut s = RtpSession::new(cfg(), Some(addr(4000)));
        let frame = [0xFFu8; 160];
        let pkts: Vec<Vec<u8>> = (0..3).filter_map(|_| s.next_packet(Some(&frame))).collect();
        let hs: Vec<RtpHeader> = pkts
            .iter()
            .map(|p| RtpPacket::parse(p).unwrap().header)
            .collect();
        assert!(hs[0].marker && !hs[1].marker);
        assert_eq!([hs[0].seq, hs[1].seq, hs[2].seq], [65534, 65535, 0]);
        assert_eq!(hs[1].timestamp, (u32::MAX - 100).wrapping_add(160));
        assert_eq!(hs[2].timestamp, 219);
        // Silence suppression: nothing sent, marker on the next talkspurt, timestamp moved on.
        assert!(s.next_packet(None).is_none());
        let h = RtpPacket::parse(&s.next_packet(Some(&frame)).unwrap())
            .unwrap()
            .header;
        assert!(h.marker);
        assert_eq!(h.timestamp, 219 + 320);
    }

    #[test]
    fn digit_press_replaces_audio_then_timestamp_jumps() {
        let mut s = RtpSession::new(cfg(), None);
        let frame = [0xFFu8; 160];
        s.next_packet(Some(&frame));
        assert!(s.send_digit(Digit::from_char('#').unwrap(), 100));
        let mut evs = vec![];
        while s.sending_digits() {
            evs.push(
                RtpPacket::parse(&s.next_packet(Some(&frame)).unwrap())
                    .unwrap()
                    .header,
            );
        }
        assert_eq!(evs.len(), 7);
        assert!(evs
            .iter()
            .all(|h| h.payload_type == 101 && h.timestamp == evs[0].timestamp));
        assert!(evs[0].marker);
        let after = RtpPacket::parse(&s.next_packet(Some(&frame)).unwrap())
            .unwrap()
            .header;
        assert_eq!(after.payload_type, 0);
        assert_eq!(after.timestamp, evs[0].timestamp.wrapping_add(800 + 160));
        assert_eq!(after.seq, evs[6].seq.wrapping_add(1));
    }

    #[test]
    fn receive_side_is_symmetric_and_demuxes_events() {
        let t0 = Instant::now();
        let mut tx = RtpSession::new(cfg(), None);
        let mut rx = RtpSession::new(
            SessionConfig {
                ssrc: Ssrc(9),
                ..cfg()
            },
            Some(addr(5000)),
        );
        let frame = [0x80u8; 160];
        let mut t = t0;
        tx.send_digit(Digit::from_char('7').unwrap(), 60);
        for _ in 0..12 {
            if let Some(p) = tx.next_packet(Some(&frame)) {
                assert_ne!(
                    rx.handle_datagram(t, addr(6000), &p).unwrap(),
                    Received::Ignored
                );
            }
            t += Duration::from_millis(20);
        }
        assert_eq!(
            rx.remote(),
            Some(addr(6000)),
            "sends back to where packets come from"
        );
        assert_eq!(rx.poll_digit().map(|d| d.digit.as_char()), Some('7'));
        assert_eq!(rx.poll_digit(), None);
        let mut kinds = vec![];
        while let Some(p) = rx.poll_playout(t + Duration::from_millis(100)) {
            kinds.push(match p {
                Playout::Packet { .. } => 'a',
                Playout::Skipped { .. } => 's',
                _ => 'x',
            });
        }
        assert_eq!(kinds.iter().take(12).collect::<String>(), "sssssaaaaaaa");
        // A new SSRC from the latched address restarts the receive state.
        let other = RtpHeader {
            payload_type: 0,
            marker: true,
            seq: 1,
            timestamp: 1,
            ssrc: Ssrc(99),
        }
        .emit(&frame)
        .unwrap();
        rx.handle_datagram(t, addr(6000), &other).unwrap();
        assert_eq!(
            rx.remote_ssrc(),
            Some(Ssrc(99)),
            "the same source restarted with a new SSRC"
        );
        // Junk is an error, not a panic; comfort noise is ignored.
        assert!(rx.handle_datagram(t, addr(6001), &[1, 2, 3]).is_err());
        let cn = RtpHeader {
            payload_type: 13,
            marker: false,
            seq: 2,
            timestamp: 1,
            ssrc: Ssrc(99),
        }
        .emit(&[0])
        .unwrap();
        assert_eq!(
            rx.handle_datagram(t, addr(6001), &cn).unwrap(),
            Received::Ignored
        );
    }

    #[test]
    fn latched_source_cannot_be_hijacked_while_alive() {
        let t0 = Instant::now();
        let mut rx = RtpSession::new(
            SessionConfig {
                ssrc: Ssrc(9),
                ..cfg()
            },
            Some(addr(5000)),
        );
        let pkt = |seq: u16, ssrc: u32| {
            RtpHeader {
                payload_type: 0,
                marker: false,
                seq,
                timestamp: 160 * seq as u32,
                ssrc: Ssrc(ssrc),
            }
            .emit(&[0xFF; 160])
            .unwrap()
        };
        assert_eq!(
            rx.handle_datagram(t0, addr(6000), &pkt(1, 1)).unwrap(),
            Received::Audio
        );
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(
            rx.handle_datagram(t1, addr(6666), &pkt(2, 666)).unwrap(),
            Received::Ignored
        );
        assert_eq!(rx.remote(), Some(addr(6000)));
        assert_eq!(rx.remote_ssrc(), Some(Ssrc(1)));
        // After the caller's side has been silent for RELATCH, a new source is taken.
        let t2 = t0 + RELATCH + Duration::from_millis(1);
        assert_eq!(
            rx.handle_datagram(t2, addr(7000), &pkt(3, 2)).unwrap(),
            Received::Audio
        );
        assert_eq!(rx.remote(), Some(addr(7000)));
    }

    #[test]
    fn rtcp_reports_loss_and_parses_back() {
        let t0 = Instant::now();
        let mut tx = RtpSession::new(cfg(), None);
        let mut rx = RtpSession::new(
            SessionConfig {
                ssrc: Ssrc(9),
                ..cfg()
            },
            None,
        );
        for i in 0..100 {
            let p = tx.next_packet(Some(&[0xFF; 160])).unwrap();
            if i % 10 != 3 {
                rx.handle_datagram(t0 + Duration::from_millis(20 * i), addr(1), &p)
                    .unwrap();
            }
        }
        let rr = rx.rtcp_report(t0, 0);
        let parsed = RtcpPacket::parse_compound(&rr).unwrap();
        match &parsed[0] {
            RtcpPacket::ReceiverReport { ssrc, reports } => {
                assert_eq!(*ssrc, 9);
                assert_eq!(reports[0].ssrc, 7);
                assert_eq!(reports[0].cumulative_lost, 10);
                assert_eq!(reports[0].fraction_lost, (10 * 256 / 100) as u8);
            }
            other => panic!("{other:?}"),
        }
        let sr = tx.rtcp_report(t0, 0x1234_5678_9ABC_DEF0);
        assert!(matches!(
            RtcpPacket::parse_compound(&sr).unwrap()[0],
            RtcpPacket::SenderReport { packets: 100, .. }
        ));
        assert_eq!(
            rx.handle_datagram(t0, addr(1), &sr).unwrap(),
            Received::Rtcp
        );
    }
}
