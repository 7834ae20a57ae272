//! The simulated caller's media side, sans-IO: plays a scripted call's turns into the RTP
//! session in real time and listens to the bot's prompts to know when to speak.
//!
//! Every 20 ms the driver calls [`Caller::tick`]; it returns the RTP packet of that
//! interval — a frame of the turn being spoken, an RFC 4733 event packet while keys are
//! pressed (the [`RtpSession`] packetiser does the §2.5.1 timing), or a silent frame (the
//! caller keeps sending silence between turns, as a real phone does). Every packet from
//! the bot goes through [`Caller::handle_bot_audio`], which marks 20 ms frames above
//! [`CallerConfig::speech_dbfs`] as bot speech.
//!
//! When a turn starts: after the bot's prompt has ended — the bot spoke after our last
//! input and has then been silent for [`CallerConfig::end_gap`] — or, when the bot says
//! nothing, [`CallerConfig::reply_wait`] after our last input (bounded wait); a prompt
//! longer than [`CallerConfig::max_prompt`] is talked over. A `barge_in` turn starts
//! [`CallerConfig::barge_delay`] into the prompt. A `silence` turn is silent frames for
//! its length; a prompt the bot starts during it counts as the reply.
//!
//! Turn latency (issue 10 §8) is measured here: from the send time of the last packet of
//! a `say` (or the last event packet of a `dtmf`) to the arrival of the bot's first speech
//! packet after it.

use std::time::{Duration, Instant};

use crate::media::g711::Law;
use crate::media::vad::frame_dbfs;
use crate::rtp::event::Digit;
use crate::rtp::session::RtpSession;

/// Bytes of one 20 ms G.711 frame.
pub const FRAME: usize = 160;

/// Timing of the caller's turn-taking.
#[derive(Debug, Clone, Copy)]
pub struct CallerConfig {
    /// Bot silence that ends a prompt.
    pub end_gap: Duration,
    /// How long to wait for a bot prompt that never comes before going on.
    pub reply_wait: Duration,
    /// A prompt longer than this is talked over.
    pub max_prompt: Duration,
    /// Frames louder than this are bot speech.
    pub speech_dbfs: f32,
    /// A barge-in turn starts this far into the prompt.
    pub barge_delay: Duration,
    /// How long each key is held.
    pub key_ms: u32,
    /// After the last turn and the bot's reply to it, how long to stay on the line for a
    /// transfer before hanging up.
    pub linger: Duration,
}

impl Default for CallerConfig {
    fn default() -> Self {
        CallerConfig {
            end_gap: Duration::from_millis(700),
            reply_wait: Duration::from_secs(6),
            max_prompt: Duration::from_secs(45),
            speech_dbfs: -45.0,
            barge_delay: Duration::from_millis(500),
            key_ms: 120,
            linger: Duration::from_secs(3),
        }
    }
}

/// A turn with its audio ready.
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared {
    /// G.711 frames of the sentence (whole 160-byte frames, silence trimmed at both ends).
    Speech {
        frames: Vec<u8>,
        barge_in: bool,
    },
    Dtmf(String),
    Silence(Duration),
}

/// Trims leading and trailing silent frames (so "end of speech" is the last voiced
/// frame sent) and pads to whole frames.
pub fn trim_frames(law: Law, bytes: &[u8], speech_dbfs: f32) -> Vec<u8> {
    let mut frames: Vec<&[u8]> = bytes.chunks(FRAME).collect();
    let loud = |f: &&[u8]| frame_dbfs(&law.decode(f)) > speech_dbfs - 10.0;
    let first = frames.iter().position(loud).unwrap_or(frames.len());
    let last = frames.iter().rposition(loud).map_or(first, |i| i + 1);
    frames = frames[first..last.max(first)].to_vec();
    let mut out: Vec<u8> = frames.concat();
    let rem = out.len() % FRAME;
    if rem != 0 {
        out.resize(out.len() + FRAME - rem, law.silence());
    }
    out
}

#[derive(Debug, Clone)]
enum Sending {
    /// Waiting for the moment to take turn `next`.
    Waiting,
    Speech {
        frames: Vec<u8>,
        pos: usize,
    },
    Keys,
    Silence {
        until: Instant,
    },
    /// Script over; waiting for the reply to the last turn, then `linger`.
    Draining {
        since: Option<Instant>,
    },
    Done,
}

/// One caller's script player.
#[derive(Debug)]
pub struct Caller {
    cfg: CallerConfig,
    turns: Vec<Prepared>,
    next: usize,
    sending: Sending,
    /// The bot must speak after this to count as a reply to our last input.
    reply_after: Instant,
    /// The bounded wait for a reply runs from here.
    wait_from: Instant,
    bot_speech_start: Option<Instant>,
    bot_last_speech: Option<Instant>,
    /// (turn index, send time of the turn's last packet) while its reply is awaited.
    awaiting: Option<(usize, Instant)>,
    latencies: Vec<(usize, Duration)>,
    turns_started: u32,
    silence: [u8; FRAME],
    bot_speech_frames: u64,
}

impl Caller {
    /// A caller whose call was answered at `now`, sending G.711 `law`.
    pub fn new(now: Instant, cfg: CallerConfig, law: Law, turns: Vec<Prepared>) -> Caller {
        Caller {
            cfg,
            turns,
            next: 0,
            sending: Sending::Waiting,
            reply_after: now,
            wait_from: now,
            bot_speech_start: None,
            bot_last_speech: None,
            awaiting: None,
            latencies: Vec::new(),
            turns_started: 0,
            silence: [law.silence(); FRAME],
            bot_speech_frames: 0,
        }
    }

    /// Caller inputs started so far.
    pub fn turns_started(&self) -> u32 {
        self.turns_started
    }

    /// Per answered turn: (turn index, time from our last packet to the bot's reply).
    pub fn latencies(&self) -> &[(usize, Duration)] {
        &self.latencies
    }

    /// 20 ms frames of bot speech heard.
    pub fn bot_speech_frames(&self) -> u64 {
        self.bot_speech_frames
    }

    /// True when the script is over and the reply to it has been waited for.
    pub fn is_done(&self) -> bool {
        matches!(self.sending, Sending::Done)
    }

    /// A G.711 payload from the bot (any length; judged per 20 ms frame).
    pub fn handle_bot_audio(&mut self, now: Instant, law: Law, payload: &[u8]) {
        let speech = payload
            .chunks(FRAME)
            .any(|f| frame_dbfs(&law.decode(f)) > self.cfg.speech_dbfs);
        if !speech {
            return;
        }
        self.bot_speech_frames += 1;
        let new_spurt = self
            .bot_last_speech
            .is_none_or(|t| now.saturating_duration_since(t) >= self.cfg.end_gap);
        if new_spurt {
            self.bot_speech_start = Some(now);
        }
        self.bot_last_speech = Some(now);
        if let Some((turn, sent)) = self.awaiting {
            if now > sent {
                self.latencies.push((turn, now - sent));
                self.awaiting = None;
            }
        }
    }

    fn bot_speaking(&self, now: Instant) -> bool {
        self.bot_last_speech
            .is_some_and(|t| now.saturating_duration_since(t) < self.cfg.end_gap)
    }

    fn bot_replied(&self) -> bool {
        self.bot_last_speech.is_some_and(|t| t > self.reply_after)
    }

    /// Whether the floor is ours: the reply came and ended, or never came in time, or
    /// runs too long.
    fn floor_free(&self, now: Instant, barge_in: bool) -> bool {
        let waited = now.saturating_duration_since(self.wait_from);
        if barge_in {
            if let Some(s) = self
                .bot_speech_start
                .filter(|s| *s > self.reply_after && self.bot_speaking(now))
            {
                return now.saturating_duration_since(s) >= self.cfg.barge_delay;
            }
        }
        if self.bot_speaking(now) {
            return waited >= self.cfg.max_prompt;
        }
        self.bot_replied() || waited >= self.cfg.reply_wait
    }

    /// The packet for the 20 ms interval at `now` (None: nothing to send, e.g. when done).
    pub fn tick(&mut self, now: Instant, rtp: &mut RtpSession) -> Option<Vec<u8>> {
        if let Sending::Waiting = self.sending {
            self.maybe_start(now, rtp);
        }
        let silence = self.silence;
        let free = self.floor_free(now, false);
        let linger = self.cfg.linger;
        // (packet, the input ended (measured?), the next state)
        let (packet, ended, next) = match &mut self.sending {
            Sending::Speech { frames, pos } => {
                let end = (*pos + FRAME).min(frames.len());
                let packet = rtp.next_packet(Some(&frames[*pos..end]));
                *pos = end;
                (packet, (*pos >= frames.len()).then_some(true), None)
            }
            Sending::Keys => {
                let packet = rtp.next_packet(Some(&silence));
                (packet, (!rtp.sending_digits()).then_some(true), None)
            }
            Sending::Silence { until } => {
                let ended = (now >= *until).then_some(false);
                (rtp.next_packet(Some(&silence)), ended, None)
            }
            Sending::Draining { since } => {
                let next = match since {
                    None if free => {
                        *since = Some(now);
                        None
                    }
                    Some(t) if now.saturating_duration_since(*t) >= linger => Some(Sending::Done),
                    _ => None,
                };
                (rtp.next_packet(Some(&silence)), None, next)
            }
            Sending::Waiting | Sending::Done => (rtp.next_packet(Some(&silence)), None, None),
        };
        if let Some(measured) = ended {
            self.input_ended(now, measured);
        }
        if let Some(n) = next {
            self.sending = n;
        }
        packet
    }

    fn maybe_start(&mut self, now: Instant, rtp: &mut RtpSession) {
        let Some(turn) = self.turns.get(self.next) else {
            self.sending = Sending::Draining { since: None };
            return;
        };
        let barge_in = matches!(turn, Prepared::Speech { barge_in: true, .. });
        if !self.floor_free(now, barge_in) {
            return;
        }
        self.awaiting = None;
        self.turns_started += 1;
        self.next += 1;
        self.sending = match turn.clone() {
            Prepared::Speech { frames, .. } if frames.is_empty() => {
                self.input_ended(now, false);
                return;
            }
            Prepared::Speech { frames, .. } => Sending::Speech { frames, pos: 0 },
            Prepared::Dtmf(keys) => {
                for k in keys.chars().filter_map(Digit::from_char) {
                    rtp.send_digit(k, self.cfg.key_ms);
                }
                Sending::Keys
            }
            Prepared::Silence(d) => {
                // A prompt during the silence (no-input reprompt) is the reply.
                self.reply_after = now;
                Sending::Silence { until: now + d }
            }
        };
    }

    /// The turn's last packet went out at `now`.
    fn input_ended(&mut self, now: Instant, measured: bool) {
        if measured {
            self.awaiting = Some((self.next - 1, now));
            self.reply_after = now;
        }
        self.wait_from = now;
        self.sending = Sending::Waiting;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::packet::RtpPacket;
    use crate::rtp::session::SessionConfig;

    fn tone(law: Law, frames: usize) -> Vec<u8> {
        let pcm: Vec<i16> = (0..frames * FRAME)
            .map(|n| ((n as f32 * 0.3).sin() * 10000.0) as i16)
            .collect();
        law.encode(&pcm)
    }

    struct Sim {
        now: Instant,
        caller: Caller,
        rtp: RtpSession,
        sent: Vec<(Instant, u8, bool)>,
    }

    impl Sim {
        fn new(turns: Vec<Prepared>) -> Sim {
            let now = Instant::now();
            let law = Law::Ulaw;
            Sim {
                now,
                caller: Caller::new(now, CallerConfig::default(), law, turns),
                rtp: RtpSession::new(SessionConfig::new(law), None),
                sent: Vec::new(),
            }
        }
        /// Runs 20 ms steps; `bot(t)` says whether the bot speaks at t (ms since start).
        fn run(&mut self, ms: u64, bot: impl Fn(u64) -> bool, start: Instant) {
            let speech = tone(Law::Ulaw, 1);
            let quiet = vec![Law::Ulaw.silence(); FRAME];
            for _ in 0..ms / 20 {
                let t = (self.now - start).as_millis() as u64;
                let p = if bot(t) { &speech } else { &quiet };
                self.caller.handle_bot_audio(self.now, Law::Ulaw, p);
                if let Some(pkt) = self.caller.tick(self.now, &mut self.rtp) {
                    let p = RtpPacket::parse(&pkt).unwrap();
                    let loud = p.header.payload_type == 0
                        && frame_dbfs(&Law::Ulaw.decode(p.payload)) > -45.0;
                    self.sent.push((self.now, p.header.payload_type, loud));
                }
                self.now += Duration::from_millis(20);
            }
        }
    }

    #[test]
    fn speaks_after_the_greeting_ends_and_measures_the_reply() {
        let mut sim = Sim::new(vec![Prepared::Speech {
            frames: tone(Law::Ulaw, 50),
            barge_in: false,
        }]);
        let start = sim.now;
        // Greeting 0–2 s; reply prompt from 4.4 s (1 s after our 1 s sentence ends at ~3.4 s).
        sim.run(8000, |t| t < 2000 || (4400..5400).contains(&t), start);
        let first_loud = sim.sent.iter().find(|s| s.2).unwrap().0 - start;
        assert!(
            first_loud >= Duration::from_millis(1980 + 700),
            "spoke over the greeting: {first_loud:?}"
        );
        assert!(
            first_loud < Duration::from_millis(1980 + 800),
            "waited too long: {first_loud:?}"
        );
        assert_eq!(sim.sent.iter().filter(|s| s.2).count(), 50);
        let lat = sim.caller.latencies();
        assert_eq!(lat.len(), 1);
        let last_loud = sim.sent.iter().rev().find(|s| s.2).unwrap().0;
        let reply = start + Duration::from_millis(4400);
        assert_eq!(lat[0].1, reply - last_loud);
        assert!(
            sim.sent.len() >= 399,
            "silence is sent between turns (comfort)"
        );
    }

    #[test]
    fn a_silent_bot_is_waited_for_a_bounded_time_only() {
        let mut sim = Sim::new(vec![Prepared::Speech {
            frames: tone(Law::Ulaw, 5),
            barge_in: false,
        }]);
        let start = sim.now;
        sim.run(7000, |_| false, start);
        let first_loud = sim.sent.iter().find(|s| s.2).unwrap().0 - start;
        assert!(
            (Duration::from_secs(6)..Duration::from_millis(6100)).contains(&first_loud),
            "{first_loud:?}"
        );
        assert!(sim.caller.latencies().is_empty());
    }

    #[test]
    fn dtmf_turn_sends_rfc4733_events_and_silence_sends_silence() {
        let mut sim = Sim::new(vec![
            Prepared::Silence(Duration::from_secs(1)),
            Prepared::Dtmf("9".into()),
        ]);
        let start = sim.now;
        // Greeting 0–1 s; the silence turn runs 1.68–2.68 s; the bot reprompts during it
        // (2.4–3 s): the key follows the reprompt's end (last frame 2.98 s + 0.7 s).
        sim.run(5000, |t| t < 1000 || (2400..3000).contains(&t), start);
        let events: Vec<_> = sim.sent.iter().filter(|s| s.1 == 101).collect();
        assert!(events.len() >= 4, "{}", events.len());
        let first_event = events[0].0 - start;
        assert!(
            first_event >= Duration::from_millis(1500 + 700),
            "{first_event:?}"
        );
        assert!(!sim.sent.iter().any(|s| s.2), "no speech is sent");
        assert_eq!(sim.caller.turns_started(), 2);
    }

    #[test]
    fn barge_in_talks_over_the_prompt() {
        let mut sim = Sim::new(vec![Prepared::Speech {
            frames: tone(Law::Ulaw, 10),
            barge_in: true,
        }]);
        let start = sim.now;
        sim.run(3000, |t| (200..2800).contains(&t), start);
        let first_loud = sim.sent.iter().find(|s| s.2).unwrap().0 - start;
        assert!(
            (Duration::from_millis(700)..Duration::from_millis(800)).contains(&first_loud),
            "{first_loud:?}"
        );
    }

    #[test]
    fn done_after_the_reply_to_the_last_turn_and_linger() {
        let mut sim = Sim::new(vec![Prepared::Dtmf("1".into())]);
        let start = sim.now;
        sim.run(12000, |t| t < 1000 || (2500..3000).contains(&t), start);
        assert!(sim.caller.is_done());
        assert_eq!(sim.caller.latencies().len(), 1);
    }

    #[test]
    fn trimming_keeps_the_voiced_part_in_whole_frames() {
        let law = Law::Alaw;
        let mut b = vec![law.silence(); FRAME * 3];
        b.extend(tone(law, 4));
        b.extend(vec![law.silence(); FRAME * 2 + 7]);
        let t = trim_frames(law, &b, -45.0);
        assert_eq!(t.len(), FRAME * 4);
        assert!(trim_frames(law, &vec![law.silence(); 500], -45.0).is_empty());
    }
}
