//! The media pipeline of one call, sans-IO: RTP session → jitter buffer → G.711 decode →
//! loss concealment → in-band DTMF + VAD/endpointer, RFC 4733 and SIP INFO digits merged
//! into one press stream; and the outgoing side: prompt player → G.711 frames → RTP, with
//! barge-in; plus the stereo frame pairs for the recorder.
//!
//! # Drain contract
//! ```text
//! loop {
//!     // an input arrived (datagram, SIP INFO digit, play/stop from the dialog) at `now`:
//!     pipeline.handle_datagram(now, from, &buf);      // or handle_sip_info_digit / play / …
//!     pipeline.handle_timeout(now);                   // runs everything due up to `now`
//!     while let Some(t) = pipeline.poll_transmit() { socket.send_to(&t.payload, t.to) }
//!     while let Some(e) = pipeline.poll_event() { /* to the call task / dialog */ }
//!     while let Some((l, r)) = pipeline.poll_recorded() { recorder.write(&l, &r) }
//!     sleep_until(pipeline.poll_timeout());            // then handle_timeout(now) again
//! }
//! ```
//! Inbound playout (every 20 ms after the jitter buffer's delay) and outbound ticks (every
//! 20 ms from the call's origin) are processed in time order inside `handle_timeout`, so
//! a barge-in detected on an inbound frame silences every outbound frame due after it:
//! the prompt stops within one frame (20 ms) of detected speech or a key.
//!
//! Offline sources use the same pipeline: pcap replay feeds datagrams with their capture
//! times; WAV replay feeds decoded 20 ms frames with [`Pipeline::handle_audio`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::digits::{DigitMerger, DigitSource, DtmfPress};
use super::dtmf::{DtmfConfig, DtmfDetector};
use super::g711::Law;
use super::player::{PlayReport, Player, Prompt};
use super::vad::{Endpointer, VadConfig, VadEvent};
use super::FRAME_SAMPLES;
use crate::rtp::event::Digit;
use crate::rtp::jitter::Playout;
use crate::rtp::packet::PacketError;
use crate::rtp::session::{Received, RtpSession, SessionConfig};

/// Pipeline settings.
#[derive(Debug, Clone, Copy)]
pub struct PipelineConfig {
    pub session: SessionConfig,
    pub vad: VadConfig,
    pub dtmf: DtmfConfig,
    /// Run the Goertzel detector on the caller's audio (trunks without telephone-event).
    pub inband_dtmf: bool,
    /// Produce frame pairs for the recorder.
    pub record: bool,
    /// Run the outgoing 20 ms clock (player → RTP). Off for receive-only use (replay of a
    /// recorded call, benchmarks of the receive path).
    pub send: bool,
    /// Report [`MediaEvent::RtpInactive`] when no RTP arrived for this long (the caller's
    /// side is gone without a BYE). `None`: never.
    pub rtp_timeout: Option<Duration>,
}

impl PipelineConfig {
    pub fn new(law: Law) -> PipelineConfig {
        PipelineConfig {
            session: SessionConfig::new(law),
            vad: VadConfig::default(),
            dtmf: DtmfConfig::default(),
            inband_dtmf: true,
            record: false,
            send: true,
            rtp_timeout: Some(Duration::from_secs(30)),
        }
    }

    /// For a call whose SDP answer chose `answer.codec` (and telephone-event payload type
    /// `answer.dtmf_pt`), with the jitter-buffer depth of `config.rtp`.
    pub fn for_answer(
        answer: &crate::sdp::Answer,
        rtp: &crate::config::RtpConfig,
    ) -> PipelineConfig {
        let mut c = PipelineConfig::new(Law::from(answer.codec));
        c.session.event_pt = answer.dtmf_pt;
        c.session.jitter = crate::rtp::jitter::JitterConfig::with_depth_ms(rtp.jitter_ms);
        c
    }
}

/// Why a prompt was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BargeInCause {
    Speech,
    Dtmf(Digit),
}

/// What the pipeline tells the call task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// The caller started speaking (at the playout time of the triggering frame).
    SpeechStart { at: Instant },
    /// The caller's utterance, 8 kHz mono.
    SpeechEnd {
        at: Instant,
        pcm: Vec<i16>,
        truncated: bool,
    },
    /// A key press (RFC 4733, in-band or SIP INFO), once.
    Dtmf(DtmfPress),
    /// A prompt ended: played out, or cut by barge-in / [`Pipeline::stop_prompt`].
    PromptEnded {
        report: PlayReport,
        barge_in: Option<BargeInCause>,
    },
    /// No RTP for [`PipelineConfig::rtp_timeout`] (reported once per silence).
    RtpInactive { since: Instant },
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub payload: Vec<u8>,
}

/// The media of one call.
#[derive(Debug)]
pub struct Pipeline {
    config: PipelineConfig,
    session: RtpSession,
    law: Law,
    last_frame: Vec<i16>,
    frame: Vec<i16>,
    dtmf: DtmfDetector,
    vad: Endpointer,
    digits: DigitMerger,
    player: Player,
    events: VecDeque<MediaEvent>,
    transmits: VecDeque<Transmit>,
    left: VecDeque<Vec<i16>>,
    recorded: VecDeque<(Vec<i16>, Vec<i16>)>,
    last_now: Instant,
    origin: Instant,
    inactive_reported: bool,
    frames_in: u64,
    frames_out: u64,
}

impl Pipeline {
    /// A pipeline whose outgoing frame clock starts at `origin`, sending to `remote` (the
    /// SDP address; replaced by the source of the caller's packets — symmetric RTP).
    pub fn new(config: PipelineConfig, remote: Option<SocketAddr>, origin: Instant) -> Pipeline {
        let law = config.session.law;
        Pipeline {
            config,
            session: RtpSession::new(config.session, remote),
            law,
            last_frame: vec![0; FRAME_SAMPLES],
            frame: Vec::with_capacity(FRAME_SAMPLES),
            dtmf: DtmfDetector::new(config.dtmf),
            vad: Endpointer::new(config.vad),
            digits: DigitMerger::default(),
            player: Player::new(origin, law),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            left: VecDeque::new(),
            recorded: VecDeque::new(),
            last_now: origin,
            origin,
            inactive_reported: false,
            frames_in: 0,
            frames_out: 0,
        }
    }

    pub fn session(&self) -> &RtpSession {
        &self.session
    }

    /// Frames processed: (caller frames decoded, frames sent).
    pub fn frame_counts(&self) -> (u64, u64) {
        (self.frames_in, self.frames_out)
    }

    fn clock(&mut self, now: Instant) -> Instant {
        // A `now` that goes backwards is ignored.
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    /// A datagram from the caller's side.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        buf: &[u8],
    ) -> Result<(), PacketError> {
        let now = self.clock(now);
        let r = self.session.handle_datagram(now, from, buf)?;
        if matches!(r, Received::Audio | Received::Event) {
            self.inactive_reported = false;
        }
        if r == Received::Event {
            while let Some(d) = self.session.poll_digit() {
                self.digit(now, d.digit, DigitSource::Rfc4733);
            }
        }
        Ok(())
    }

    /// A digit the SIP layer received in an INFO request.
    pub fn handle_sip_info_digit(&mut self, now: Instant, digit: Digit) {
        let now = self.clock(now);
        self.digit(now, digit, DigitSource::SipInfo);
    }

    /// Changes the endpointer settings for the next listen (end-of-speech silence, maximum
    /// utterance length, …); the noise floor is kept.
    pub fn set_vad_config(&mut self, config: VadConfig) {
        self.config.vad = config;
        self.vad.set_config(config);
    }

    /// A digit given by hand for an offline replay.
    pub fn handle_scripted_digit(&mut self, now: Instant, digit: Digit) {
        let now = self.clock(now);
        self.digit(now, digit, DigitSource::Scripted);
    }

    /// Queues a prompt.
    pub fn play(&mut self, prompt: Prompt) {
        self.player.play(prompt);
    }

    /// True while a prompt plays or waits.
    pub fn is_playing(&self) -> bool {
        self.player.is_playing()
    }

    /// Stops the prompt (e.g. the dialog moved on); a `PromptEnded` event follows.
    pub fn stop_prompt(&mut self, now: Instant) {
        let now = self.clock(now);
        if let Some(report) = self.player.stop(now) {
            self.events.push_back(MediaEvent::PromptEnded {
                report,
                barge_in: None,
            });
        }
    }

    /// Sends a key press as RFC 4733 events (false if none was negotiated).
    pub fn send_digit(&mut self, digit: Digit, duration_ms: u32) -> bool {
        self.session.send_digit(digit, duration_ms)
    }

    /// Decoded audio from an offline source (one frame, any length up to 20 ms) at `now`.
    pub fn handle_audio(&mut self, now: Instant, pcm: &[i16]) {
        let now = self.clock(now);
        self.frame.clear();
        self.frame.extend_from_slice(pcm);
        self.analyse(now, false);
    }

    /// Runs inbound playout and outbound ticks due up to `now`, in time order.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock(now);
        loop {
            let inbound = self.session.poll_timeout().filter(|&t| t <= now);
            let outbound =
                Some(self.player.poll_timeout()).filter(|&t| self.config.send && t <= now);
            match (inbound, outbound) {
                (Some(i), Some(o)) if i <= o => self.inbound(now),
                (Some(_), None) => self.inbound(now),
                (_, Some(_)) => self.outbound(now),
                (None, None) => break,
            }
        }
        if let Some(deadline) = self.inactivity_deadline() {
            if now >= deadline {
                self.inactive_reported = true;
                let since = self.session.last_received().unwrap_or(self.origin);
                self.events.push_back(MediaEvent::RtpInactive { since });
            }
        }
    }

    fn inactivity_deadline(&self) -> Option<Instant> {
        let timeout = self.config.rtp_timeout?;
        if self.inactive_reported {
            return None;
        }
        Some(self.session.last_received().unwrap_or(self.origin) + timeout)
    }

    /// The earliest time something is due.
    pub fn poll_timeout(&self) -> Instant {
        let out = if self.config.send {
            self.player.poll_timeout()
        } else {
            self.last_now + Duration::from_secs(3600)
        };
        let t = self.session.poll_timeout().map_or(out, |i| i.min(out));
        self.inactivity_deadline().map_or(t, |d| d.min(t))
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// (caller, bot) frame pairs for the recorder, in time order.
    pub fn poll_recorded(&mut self) -> Option<(Vec<i16>, Vec<i16>)> {
        self.recorded.pop_front()
    }

    /// Hangup: ends an utterance in progress, stops the prompt, hands out the rest of the
    /// recording.
    pub fn finish(&mut self, now: Instant) {
        let now = self.clock(now);
        if let Some(VadEvent::SpeechEnd { pcm, truncated }) = self.vad.flush() {
            self.events.push_back(MediaEvent::SpeechEnd {
                at: now,
                pcm,
                truncated,
            });
        }
        self.stop_prompt(now);
        if self.config.record {
            while let Some(l) = self.left.pop_front() {
                self.recorded.push_back((l, vec![0; FRAME_SAMPLES]));
            }
        }
    }

    fn inbound(&mut self, now: Instant) {
        let Some(item) = self.session.poll_playout(now) else {
            return;
        };
        let concealed = match item {
            Playout::Packet { payload, .. } => {
                self.law.decode_into(&payload, &mut self.frame);
                self.last_frame.clear();
                self.last_frame.extend_from_slice(&self.frame);
                false
            }
            Playout::Lost { run, .. } | Playout::Underrun { run } => {
                // Repeat the last frame at −3 dB, then −9 dB, then silence.
                let gain = match run {
                    1 => 0.7,
                    2 => 0.35,
                    _ => 0.0,
                };
                self.frame.clear();
                self.frame
                    .extend(self.last_frame.iter().map(|&s| (s as f32 * gain) as i16));
                true
            }
            Playout::Skipped { .. } | Playout::Stretch => {
                self.frame.clear();
                self.frame.resize(FRAME_SAMPLES, 0);
                true
            }
        };
        self.analyse(now, concealed);
    }

    fn analyse(&mut self, now: Instant, concealed: bool) {
        self.frames_in += 1;
        if self.config.inband_dtmf {
            if let Some(d) = self.dtmf.process(&self.frame, concealed) {
                self.digit(now, d, DigitSource::InBand);
            }
        }
        // Key tones are not speech: the endpointer does not see frames holding one.
        if self.dtmf.active().is_none() {
            match self.vad.process(&self.frame) {
                Some(VadEvent::SpeechStart) => {
                    self.events.push_back(MediaEvent::SpeechStart { at: now });
                    self.barge_in(now, BargeInCause::Speech);
                }
                Some(VadEvent::SpeechEnd { pcm, truncated }) => {
                    self.events.push_back(MediaEvent::SpeechEnd {
                        at: now,
                        pcm,
                        truncated,
                    });
                }
                None => {}
            }
        }
        if self.config.record {
            if self.left.len() >= 10 {
                self.left.pop_front();
            }
            self.left.push_back(self.frame.clone());
        }
    }

    fn digit(&mut self, now: Instant, digit: Digit, source: DigitSource) {
        if let Some(press) = self.digits.handle(now, digit, source) {
            self.events.push_back(MediaEvent::Dtmf(press));
            self.barge_in(now, BargeInCause::Dtmf(digit));
        }
    }

    fn barge_in(&mut self, now: Instant, cause: BargeInCause) {
        if self.player.is_playing() && self.player.barge_in_allowed() {
            if let Some(report) = self.player.stop(now) {
                self.events.push_back(MediaEvent::PromptEnded {
                    report,
                    barge_in: Some(cause),
                });
            }
        }
    }

    fn outbound(&mut self, now: Instant) {
        let Some(tick) = self.player.poll_frame(now) else {
            return;
        };
        self.frames_out += 1;
        while let Some(report) = self.player.poll_report() {
            self.events.push_back(MediaEvent::PromptEnded {
                report,
                barge_in: None,
            });
        }
        if let Some(payload) = self.session.next_packet(Some(&tick.payload)) {
            if let Some(to) = self.session.remote() {
                self.transmits.push_back(Transmit { to, payload });
            }
        }
        if self.config.record {
            let left = self
                .left
                .pop_front()
                .unwrap_or_else(|| vec![0; FRAME_SAMPLES]);
            self.recorded
                .push_back((left, self.law.decode(&tick.payload)));
        }
    }
}

/// Twenty milliseconds.
pub const FRAME: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::packet::{RtpHeader, RtpPacket, Ssrc};
    use rand::{Rng, SeedableRng};

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 40000))
    }

    /// A fake caller: 20 ms RTP packets of `pcm` from t0.
    fn packets(pcm: &[i16], law: Law) -> Vec<Vec<u8>> {
        pcm.chunks(FRAME_SAMPLES)
            .enumerate()
            .map(|(i, f)| {
                RtpHeader {
                    payload_type: law.payload_type(),
                    marker: i == 0,
                    seq: 1000 + i as u16,
                    timestamp: 160 * i as u32,
                    ssrc: Ssrc(1),
                }
                .emit(&law.encode(f))
                .unwrap()
            })
            .collect()
    }

    fn speech_like(rng: &mut rand::rngs::StdRng, n: usize) -> Vec<i16> {
        // Noise bursts shaped by a 4 Hz syllable envelope: loud, broadband, not a tone.
        (0..n)
            .map(|i| {
                let env = (0.6
                    + 0.4 * (2.0 * std::f32::consts::PI * 4.0 * i as f32 / 8000.0).sin())
                .max(0.0);
                (rng.random_range(-6000.0..6000.0f32) * env) as i16
            })
            .collect()
    }

    /// Acceptance: barge-in stops a prompt within 20 ms of detected speech (fake clock).
    #[test]
    fn barge_in_stops_the_prompt_within_one_frame_of_detected_speech() {
        let t0 = Instant::now();
        let mut cfg = PipelineConfig::new(Law::Ulaw);
        cfg.record = true;
        let mut p = Pipeline::new(cfg, Some(addr()), t0);
        p.play(Prompt::new("menu", vec![0x23u8; 8000 * 10], true));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut caller = vec![0i16; 8000]; // 1 s of silence, then speech
        caller.extend(speech_like(&mut rng, 8000 * 2));
        let pkts = packets(&caller, Law::Ulaw);
        let mut speech_at = None;
        let mut last_prompt_frame_due = None;
        let mut ended = None;
        let mut now = t0;
        let mut k = 0;
        while now < t0 + Duration::from_secs(3) {
            // One packet every 20 ms, arriving 3 ms into each interval.
            if k < pkts.len() && now >= t0 + FRAME * k as u32 + Duration::from_millis(3) {
                p.handle_datagram(now, addr(), &pkts[k]).unwrap();
                k += 1;
            }
            p.handle_timeout(now);
            while let Some(t) = p.poll_transmit() {
                let h = RtpPacket::parse(&t.payload).unwrap();
                if h.payload[0] == 0x23 {
                    last_prompt_frame_due = Some(now);
                }
            }
            while let Some(e) = p.poll_event() {
                match e {
                    MediaEvent::SpeechStart { at } => speech_at = Some(at),
                    MediaEvent::PromptEnded { report, barge_in } => {
                        ended = Some((report, barge_in))
                    }
                    _ => {}
                }
            }
            now += Duration::from_millis(1);
        }
        let speech_at = speech_at.expect("speech detected");
        let last = last_prompt_frame_due.unwrap();
        assert!(
            last <= speech_at + FRAME,
            "prompt frame sent at {:?} after speech at {:?}",
            last - t0,
            speech_at - t0
        );
        let (report, cause) = ended.unwrap();
        assert_eq!(cause, Some(BargeInCause::Speech));
        assert!(!report.completed);
        // Heard ≈ from t0 to the barge-in (±1 frame).
        let heard_until = t0 + report.heard;
        assert!(
            heard_until + FRAME >= speech_at && heard_until <= speech_at + FRAME,
            "{:?} vs {:?}",
            report.heard,
            speech_at - t0
        );
        // Speech began at 1 s of caller audio; detection after jitter delay + ~100 ms.
        let detected = speech_at - t0;
        assert!(
            detected >= Duration::from_millis(1060) && detected <= Duration::from_millis(1400),
            "{detected:?}"
        );
    }

    #[test]
    fn rtp_inactivity_is_reported_once_per_silence() {
        let t0 = Instant::now();
        let mut cfg = PipelineConfig::new(Law::Ulaw);
        cfg.rtp_timeout = Some(Duration::from_secs(2));
        let mut p = Pipeline::new(cfg, Some(addr()), t0);
        let pkts = packets(&[0i16; 1600], Law::Ulaw);
        for (k, pkt) in pkts.iter().enumerate() {
            let now = t0 + FRAME * k as u32;
            p.handle_datagram(now, addr(), pkt).unwrap();
            p.handle_timeout(now);
        }
        let last = t0 + FRAME * 9;
        let count = |p: &mut Pipeline| {
            std::iter::from_fn(|| p.poll_event())
                .filter(|e| matches!(e, MediaEvent::RtpInactive { .. }))
                .count()
        };
        p.handle_timeout(last + Duration::from_millis(1990));
        assert_eq!(count(&mut p), 0);
        assert!(p.poll_timeout() <= last + Duration::from_secs(2));
        p.handle_timeout(last + Duration::from_secs(2));
        p.handle_timeout(last + Duration::from_secs(5));
        assert_eq!(count(&mut p), 1);
    }

    #[test]
    fn a_prompt_without_barge_in_plays_through_speech() {
        let t0 = Instant::now();
        let mut p = Pipeline::new(PipelineConfig::new(Law::Alaw), Some(addr()), t0);
        p.play(Prompt::new("legal", vec![0x23u8; 8000], false));
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let pkts = packets(&speech_like(&mut rng, 8000), Law::Alaw);
        for (k, pkt) in pkts.iter().enumerate() {
            let now = t0 + FRAME * k as u32;
            p.handle_datagram(now, addr(), pkt).unwrap();
            p.handle_timeout(now);
        }
        p.handle_timeout(t0 + Duration::from_secs(2));
        let evs: Vec<MediaEvent> = std::iter::from_fn(|| p.poll_event()).collect();
        assert!(evs
            .iter()
            .any(|e| matches!(e, MediaEvent::SpeechStart { .. })));
        let ended: Vec<_> = evs
            .iter()
            .filter_map(|e| {
                if let MediaEvent::PromptEnded { report, barge_in } = e {
                    Some((report, barge_in))
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(ended.len(), 1);
        assert!(ended[0].0.completed && ended[0].1.is_none());
    }

    #[test]
    fn rfc4733_and_inband_of_the_same_press_are_one_digit_and_sip_info_joins() {
        let t0 = Instant::now();
        let mut p = Pipeline::new(PipelineConfig::new(Law::Ulaw), Some(addr()), t0);
        p.play(Prompt::new("menu", vec![0x23u8; 8000 * 5], true));
        // Audio with the tone of '4' from 200 ms to 300 ms, and RFC 4733 packets for it.
        let mut pcm = vec![0i16; 8000];
        let tone = super::super::dtmf::tone(Digit::from_char('4').unwrap(), 100, -10.0);
        pcm[1600..1600 + tone.len()].copy_from_slice(&tone);
        let mut pkts = packets(&pcm, Law::Ulaw);
        let ev = crate::rtp::event::press_packets(Digit::from_char('4').unwrap(), 100, 10);
        for (j, e) in ev.iter().enumerate() {
            let h = RtpHeader {
                payload_type: 101,
                marker: e.marker,
                seq: 2000 + j as u16,
                timestamp: 1600,
                ssrc: Ssrc(1),
            };
            pkts.insert(10 + j, h.emit(&e.payload.emit()).unwrap());
        }
        // Renumber sequence numbers in sending order (events share the stream's numbering).
        let pkts: Vec<Vec<u8>> = pkts
            .into_iter()
            .enumerate()
            .map(|(i, mut b)| {
                b[2..4].copy_from_slice(&(1000 + i as u16).to_be_bytes());
                b
            })
            .collect();
        for (k, pkt) in pkts.iter().enumerate() {
            let now = t0 + FRAME * k as u32;
            p.handle_timeout(now);
            p.handle_datagram(now, addr(), pkt).unwrap();
            if k == 13 {
                // The gateway also relayed the key as SIP INFO.
                p.handle_sip_info_digit(now, Digit::from_char('4').unwrap());
            }
        }
        p.handle_timeout(t0 + Duration::from_secs(2));
        p.handle_sip_info_digit(t0 + Duration::from_secs(2), Digit::from_char('#').unwrap());
        let evs: Vec<MediaEvent> = std::iter::from_fn(|| p.poll_event()).collect();
        let digits: String = evs
            .iter()
            .filter_map(|e| {
                if let MediaEvent::Dtmf(d) = e {
                    Some(d.digit.as_char())
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(digits, "4#");
        let first = evs.iter().find_map(|e| {
            if let MediaEvent::Dtmf(d) = e {
                Some(d.source)
            } else {
                None
            }
        });
        assert_eq!(first, Some(DigitSource::Rfc4733));
        assert!(evs.iter().any(|e| matches!(
            e,
            MediaEvent::PromptEnded {
                barge_in: Some(BargeInCause::Dtmf(_)),
                ..
            }
        )));
        assert!(
            !evs.iter()
                .any(|e| matches!(e, MediaEvent::SpeechStart { .. })),
            "a key tone is not speech"
        );
    }

    #[test]
    fn recording_pairs_caller_and_bot_frames_and_finishes() {
        let t0 = Instant::now();
        let mut cfg = PipelineConfig::new(Law::Ulaw);
        cfg.record = true;
        let mut p = Pipeline::new(cfg, Some(addr()), t0);
        p.play(Prompt::new(
            "hi",
            Law::Ulaw.encode(&vec![1000i16; 1600]),
            false,
        ));
        let pkts = packets(&vec![-500i16; 1600], Law::Ulaw);
        for (k, pkt) in pkts.iter().enumerate() {
            let now = t0 + FRAME * k as u32;
            p.handle_datagram(now, addr(), pkt).unwrap();
            p.handle_timeout(now);
        }
        p.handle_timeout(t0 + Duration::from_millis(400));
        p.finish(t0 + Duration::from_millis(400));
        let pairs: Vec<_> = std::iter::from_fn(|| p.poll_recorded()).collect();
        // 21 outbound ticks (0..=400 ms) plus caller frames still queued at hangup.
        assert!(pairs.len() >= 21);
        let left: Vec<i16> = pairs.iter().flat_map(|(l, _)| l.clone()).collect();
        let right: Vec<i16> = pairs.iter().flat_map(|(_, r)| r.clone()).collect();
        assert_eq!(
            left.iter().filter(|&&s| (s + 500).abs() < 40).count(),
            1600,
            "all caller audio recorded once"
        );
        assert_eq!(
            right.iter().filter(|&&s| (s - 1000).abs() < 40).count(),
            1600,
            "all bot audio recorded once"
        );
    }
}
