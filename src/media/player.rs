//! Prompt player (sans-IO): the outgoing 20 ms frame clock of a call. Frame *k* is due at
//! `origin + k × 20 ms`, computed from the origin (a monotonic `Instant` given by the
//! driver), so a 60 s prompt ends exactly 60 s after it began, however late the driver
//! wakes (late frames are released at once, in order). Each tick carries the next frame of
//! the current prompt, or silence when nothing plays.
//!
//! [`Player::stop`] ends the prompt at once: the very next tick is silence, so a barge-in
//! detected between two ticks cuts the prompt within one frame. Every prompt ends with a
//! [`PlayReport`] saying how much was heard.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use voicenav::media::player::{Player, Prompt};
//! use voicenav::media::g711::Law;
//! let t0 = Instant::now();
//! let mut p = Player::new(t0, Law::Ulaw);
//! p.play(Prompt::new("greeting", vec![0x55; 160 * 50], true)); // 1 s
//! while let Some(tick) = p.poll_frame(t0 + Duration::from_millis(500)) { /* send tick.payload */ }
//! let report = p.stop(t0 + Duration::from_millis(500)).unwrap();
//! assert_eq!(report.heard, Duration::from_millis(520)); // frames 0..=25 were sent
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::g711::Law;
use super::FRAME_SAMPLES;

const FRAME: Duration = Duration::from_millis(20);

/// A prompt: G.711 bytes (of the call's law), 160 per frame.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub id: String,
    pub audio: Arc<[u8]>,
    /// Whether caller speech or a key stops it.
    pub barge_in: bool,
}

impl Prompt {
    pub fn new(id: impl Into<String>, audio: impl Into<Arc<[u8]>>, barge_in: bool) -> Prompt {
        Prompt {
            id: id.into(),
            audio: audio.into(),
            barge_in,
        }
    }

    pub fn frames(&self) -> usize {
        self.audio.len().div_ceil(FRAME_SAMPLES)
    }

    pub fn duration(&self) -> Duration {
        FRAME * self.frames() as u32
    }
}

/// How a prompt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayReport {
    pub id: String,
    pub frames_played: usize,
    pub frames_total: usize,
    /// Audio actually sent (frames × 20 ms).
    pub heard: Duration,
    pub completed: bool,
    /// When it ended (the tick after its last frame, or the stop time).
    pub ended_at: Instant,
}

/// One outgoing frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    /// Frame number since the origin.
    pub index: u64,
    pub due: Instant,
    /// 160 G.711 bytes.
    pub payload: [u8; FRAME_SAMPLES],
    /// True when this frame is prompt audio (false: silence).
    pub prompt: bool,
}

#[derive(Debug)]
struct Playing {
    prompt: Prompt,
    next: usize,
}

/// The player of one call.
#[derive(Debug)]
pub struct Player {
    origin: Instant,
    law: Law,
    tick: u64,
    current: Option<Playing>,
    queue: VecDeque<Prompt>,
    reports: VecDeque<PlayReport>,
}

impl Player {
    pub fn new(origin: Instant, law: Law) -> Player {
        Player {
            origin,
            law,
            tick: 0,
            current: None,
            queue: VecDeque::new(),
            reports: VecDeque::new(),
        }
    }

    /// Queues a prompt (plays after the current one).
    pub fn play(&mut self, prompt: Prompt) {
        self.queue.push_back(prompt);
    }

    /// True while a prompt plays or waits.
    pub fn is_playing(&self) -> bool {
        self.current.is_some() || !self.queue.is_empty()
    }

    /// True when the current prompt may be interrupted.
    pub fn barge_in_allowed(&self) -> bool {
        self.current
            .as_ref()
            .map(|c| c.prompt.barge_in)
            .or_else(|| self.queue.front().map(|p| p.barge_in))
            .unwrap_or(false)
    }

    /// When the next frame is due.
    pub fn poll_timeout(&self) -> Instant {
        self.origin + FRAME * self.tick as u32
    }

    /// The next frame if it is due at `now`.
    pub fn poll_frame(&mut self, now: Instant) -> Option<Tick> {
        let due = self.poll_timeout();
        if now < due {
            return None;
        }
        let index = self.tick;
        self.tick += 1;
        if self.current.is_none() {
            self.current = self
                .queue
                .pop_front()
                .map(|prompt| Playing { prompt, next: 0 });
        }
        let mut payload = [self.law.silence(); FRAME_SAMPLES];
        let mut prompt = false;
        if let Some(c) = self.current.as_mut() {
            let from = c.next * FRAME_SAMPLES;
            let to = (from + FRAME_SAMPLES).min(c.prompt.audio.len());
            if from < to {
                payload[..to - from].copy_from_slice(&c.prompt.audio[from..to]);
                prompt = true;
            }
            c.next += 1;
            if c.next >= c.prompt.frames() {
                let done = self.current.take();
                if let Some(done) = done {
                    self.finish(done, due + FRAME, true);
                }
            }
        }
        Some(Tick {
            index,
            due,
            payload,
            prompt,
        })
    }

    /// Stops the current prompt and drops queued ones; the report of the current one.
    pub fn stop(&mut self, now: Instant) -> Option<PlayReport> {
        self.queue.clear();
        let c = self.current.take()?;
        let frames_total = c.prompt.frames();
        let r = PlayReport {
            id: c.prompt.id,
            frames_played: c.next,
            frames_total,
            heard: FRAME * c.next as u32,
            completed: false,
            ended_at: now,
        };
        Some(r)
    }

    fn finish(&mut self, c: Playing, at: Instant, completed: bool) {
        let frames_total = c.prompt.frames();
        self.reports.push_back(PlayReport {
            id: c.prompt.id,
            frames_played: c.next,
            frames_total,
            heard: FRAME * c.next as u32,
            completed,
            ended_at: at,
        });
    }

    /// Reports of prompts that played to their end.
    pub fn poll_report(&mut self) -> Option<PlayReport> {
        self.reports.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_second_prompt_has_no_drift() {
        let t0 = Instant::now();
        let mut p = Player::new(t0, Law::Alaw);
        p.play(Prompt::new("long", vec![0x11u8; 8000 * 60], true));
        let mut frames = 0;
        let mut wake = 0u64;
        while p.is_playing() {
            // The driver wakes 0–7 ms late, sometimes 45 ms late (a busy core).
            wake += 1;
            let slack = if wake % 97 == 0 {
                45_000
            } else {
                (wake * 7919) % 7000
            };
            let now = p.poll_timeout() + Duration::from_micros(slack);
            while let Some(t) = p.poll_frame(now) {
                assert_eq!(t.due, t0 + FRAME * t.index as u32);
                frames += t.prompt as usize;
            }
        }
        assert_eq!(frames, 3000);
        let r = p.poll_report().unwrap();
        assert!(r.completed);
        assert_eq!(
            r.ended_at,
            t0 + Duration::from_secs(60),
            "ends exactly 60 s after it began"
        );
        assert_eq!(r.heard, Duration::from_secs(60));
    }

    #[test]
    fn stop_takes_effect_on_the_next_frame_and_reports_heard() {
        let t0 = Instant::now();
        let mut p = Player::new(t0, Law::Ulaw);
        p.play(Prompt::new("menu", vec![0x42u8; 160 * 100], true));
        p.play(Prompt::new("next", vec![0x43u8; 160 * 10], true));
        let mut n = 0;
        while let Some(t) = p.poll_frame(t0 + Duration::from_millis(110)) {
            assert!(t.prompt);
            n += 1;
        }
        assert_eq!(n, 6); // ticks at 0,20,…,100 ms
        let r = p.stop(t0 + Duration::from_millis(115)).unwrap();
        assert_eq!(r.frames_played, 6);
        assert_eq!(r.heard, Duration::from_millis(120));
        assert!(!r.completed);
        let t = p.poll_frame(t0 + Duration::from_millis(120)).unwrap();
        assert!(!t.prompt, "the frame after the stop is silence");
        assert_eq!(t.payload, [0xFF; 160]);
        assert!(!p.is_playing(), "queued prompts are dropped too");
    }

    #[test]
    fn partial_last_frame_is_padded_with_silence() {
        let t0 = Instant::now();
        let mut p = Player::new(t0, Law::Alaw);
        p.play(Prompt::new("short", vec![0x01u8; 200], false));
        let a = p.poll_frame(t0).unwrap();
        let b = p.poll_frame(t0 + FRAME).unwrap();
        assert!(a.prompt && b.prompt);
        assert_eq!(&b.payload[..40], &[0x01; 40]);
        assert_eq!(&b.payload[40..], &[0xD5; 120]);
        assert_eq!(p.poll_report().unwrap().frames_played, 2);
        assert!(!p.barge_in_allowed());
    }
}
