//! Jitter buffer (sans-IO): turns RTP packets arriving with jitter, loss, duplication and
//! reordering into a steady stream of one playout item per packet interval (20 ms for
//! G.711), in sequence order.
//!
//! - Playout starts `depth` after the first packet arrives; item *k* is due at
//!   `start + k × ptime` (computed from the start, so there is no drift).
//! - At each due time the next sequence number is played: its packet if it is here, else
//!   [`Playout::Lost`] (the decoder conceals it: repeat/attenuate, then silence).
//! - When nothing at all is buffered at a due time (a delay spike, silence suppression, or
//!   the end of the stream) the item is [`Playout::Underrun`] and the sequence number is not
//!   given up; the next packet restarts playout `depth` after its arrival (rebuffering).
//! - Duplicates and packets arriving after their slot was played (late) are dropped and
//!   counted. Sequence numbers used by other payloads of the same stream (RFC 4733 events)
//!   are marked with [`JitterBuffer::skip`] and play as [`Playout::Skipped`], not as loss.
//! - Adaptive depth: each late packet deepens the buffer by one packet interval (up to
//!   `max_depth`) by inserting one [`Playout::Stretch`] item; a jump far ahead (sender
//!   restart) resynchronises.
//!
//! Drain contract: after [`JitterBuffer::insert`], call [`JitterBuffer::poll_playout`]
//! until `None`, then wake at [`JitterBuffer::poll_timeout`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use voicenav::rtp::jitter::{JitterBuffer, JitterConfig, Playout};
//! use voicenav::rtp::seq::ExtSeq;
//! let t0 = Instant::now();
//! let mut jb = JitterBuffer::new(JitterConfig::default());
//! jb.insert(t0, ExtSeq(10), vec![0xFF; 160]);
//! assert!(jb.poll_playout(t0).is_none()); // not due yet
//! let due = jb.poll_timeout().unwrap();
//! assert!(matches!(jb.poll_playout(due), Some(Playout::Packet { seq: ExtSeq(10), .. })));
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::seq::ExtSeq;

/// Jitter-buffer settings.
#[derive(Debug, Clone, Copy)]
pub struct JitterConfig {
    /// Initial playout delay after the first packet.
    pub depth: Duration,
    /// Ceiling of the adaptive delay.
    pub max_depth: Duration,
    /// Packet interval (20 ms for voicenav's G.711).
    pub ptime: Duration,
    /// A packet this many intervals ahead of the playout point resynchronises the buffer.
    pub resync_packets: u64,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            depth: Duration::from_millis(60),
            max_depth: Duration::from_millis(200),
            ptime: Duration::from_millis(20),
            resync_packets: 50,
        }
    }
}

impl JitterConfig {
    /// From `config.rtp.jitter_ms`.
    pub fn with_depth_ms(ms: u32) -> Self {
        let depth = Duration::from_millis(ms as u64);
        JitterConfig {
            depth,
            max_depth: depth.max(Duration::from_millis(200)),
            ..Default::default()
        }
    }
}

/// What [`JitterBuffer::insert`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Accepted,
    Duplicate,
    Late,
    /// Far ahead of the playout point: the buffer restarted at this packet.
    Resynced,
}

/// One playout item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    Packet {
        seq: ExtSeq,
        payload: Vec<u8>,
    },
    /// The packet of `seq` did not arrive in time; `run` counts consecutive losses (1, 2, …).
    Lost {
        seq: ExtSeq,
        run: u32,
    },
    /// `seq` carried another payload type (e.g. an RFC 4733 event): play silence.
    Skipped {
        seq: ExtSeq,
    },
    /// An extra interval inserted to deepen the buffer after late packets.
    Stretch,
    /// Nothing buffered: conceal, and rebuffer when packets come again.
    Underrun {
        run: u32,
    },
}

/// Counters for statistics and RTCP receiver reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    pub played: u64,
    pub lost: u64,
    pub late: u64,
    pub duplicates: u64,
    pub resyncs: u64,
    pub underruns: u64,
}

#[derive(Debug, Clone)]
enum Slot {
    Audio(Vec<u8>),
    Skip,
}

/// The jitter buffer of one RTP stream.
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    slots: BTreeMap<u64, Slot>,
    /// Next sequence number to play, and when (None until the first packet).
    next: Option<(u64, Instant)>,
    depth: Duration,
    stretch: u32,
    loss_run: u32,
    underrun: bool,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> Self {
        JitterBuffer {
            config,
            slots: BTreeMap::new(),
            next: None,
            depth: config.depth,
            stretch: 0,
            loss_run: 0,
            underrun: false,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// The current playout delay.
    pub fn depth(&self) -> Duration {
        self.depth
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Takes in an audio packet that arrived at `now`.
    pub fn insert(&mut self, now: Instant, seq: ExtSeq, payload: Vec<u8>) -> Inserted {
        self.put(now, seq, Slot::Audio(payload))
    }

    /// Marks a sequence number used by another payload type of the stream.
    pub fn skip(&mut self, now: Instant, seq: ExtSeq) -> Inserted {
        self.put(now, seq, Slot::Skip)
    }

    fn put(&mut self, now: Instant, seq: ExtSeq, slot: Slot) -> Inserted {
        let audio = matches!(slot, Slot::Audio(_));
        if audio {
            self.stats.received += 1;
        }
        let Some((next_seq, _)) = self.next else {
            self.next = Some((seq.0, now + self.depth));
            self.slots.insert(seq.0, slot);
            return Inserted::Accepted;
        };
        if seq.0 < next_seq {
            if audio {
                self.stats.late += 1;
                if self.depth + self.config.ptime <= self.config.max_depth {
                    self.depth += self.config.ptime;
                    self.stretch += 1;
                }
            }
            return Inserted::Late;
        }
        if seq.0 - next_seq >= self.config.resync_packets {
            self.stats.resyncs += 1;
            self.slots.clear();
            self.loss_run = 0;
            self.underrun = false;
            self.next = Some((seq.0, now + self.depth));
            self.slots.insert(seq.0, slot);
            return Inserted::Resynced;
        }
        if self.slots.contains_key(&seq.0) {
            if audio {
                self.stats.duplicates += 1;
            }
            return Inserted::Duplicate;
        }
        self.slots.insert(seq.0, slot);
        if self.underrun {
            // Rebuffer: play again `depth` after packets resume.
            self.underrun = false;
            self.next = Some((next_seq, now + self.depth));
        }
        Inserted::Accepted
    }

    /// When the next playout item is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next.map(|(_, at)| at)
    }

    /// The next playout item if it is due at `now`.
    pub fn poll_playout(&mut self, now: Instant) -> Option<Playout> {
        let (seq, at) = self.next?;
        if now < at {
            return None;
        }
        let next_at = at + self.config.ptime;
        if self.stretch > 0 {
            self.stretch -= 1;
            self.next = Some((seq, next_at));
            return Some(Playout::Stretch);
        }
        self.next = Some((seq + 1, next_at));
        match self.slots.remove(&seq) {
            Some(Slot::Audio(payload)) => {
                self.loss_run = 0;
                self.stats.played += 1;
                Some(Playout::Packet {
                    seq: ExtSeq(seq),
                    payload,
                })
            }
            Some(Slot::Skip) => {
                self.loss_run = 0;
                Some(Playout::Skipped { seq: ExtSeq(seq) })
            }
            None if self.slots.is_empty() => {
                self.next = Some((seq, next_at));
                self.underrun = true;
                self.loss_run += 1;
                self.stats.underruns += 1;
                Some(Playout::Underrun { run: self.loss_run })
            }
            None => {
                self.loss_run += 1;
                self.stats.lost += 1;
                Some(Playout::Lost {
                    seq: ExtSeq(seq),
                    run: self.loss_run,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: Duration = Duration::from_millis(20);

    fn drain(jb: &mut JitterBuffer, now: Instant, out: &mut Vec<Playout>) {
        while let Some(p) = jb.poll_playout(now) {
            out.push(p);
        }
    }

    #[test]
    fn reorders_conceals_and_drops_duplicates() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // 0, 2, 1, 1 (dup), 4 ; 3 never arrives.
        assert_eq!(jb.insert(t0, ExtSeq(100), vec![0]), Inserted::Accepted);
        assert_eq!(jb.insert(t0 + P, ExtSeq(102), vec![2]), Inserted::Accepted);
        assert_eq!(jb.insert(t0 + P, ExtSeq(101), vec![1]), Inserted::Accepted);
        assert_eq!(jb.insert(t0 + P, ExtSeq(101), vec![1]), Inserted::Duplicate);
        assert_eq!(
            jb.insert(t0 + 2 * P, ExtSeq(104), vec![4]),
            Inserted::Accepted
        );
        let mut out = vec![];
        drain(&mut jb, t0 + Duration::from_millis(59), &mut out);
        assert!(out.is_empty(), "playout waits for the depth");
        drain(&mut jb, t0 + Duration::from_millis(60) + 4 * P, &mut out);
        let seqs: Vec<String> = out
            .iter()
            .map(|p| match p {
                Playout::Packet { seq, .. } => format!("p{}", seq.0),
                Playout::Lost { seq, run } => format!("l{}/{run}", seq.0),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(seqs, ["p100", "p101", "p102", "l103/1", "p104"]);
        assert_eq!(jb.stats().duplicates, 1);
        assert_eq!(jb.stats().lost, 1);
    }

    #[test]
    fn late_packet_is_dropped_and_deepens_the_buffer() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.insert(t0, ExtSeq(1), vec![1]);
        jb.insert(t0, ExtSeq(3), vec![3]);
        let mut out = vec![];
        drain(&mut jb, t0 + Duration::from_millis(80), &mut out); // plays 1, loses 2
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[1],
            Playout::Lost {
                seq: ExtSeq(2),
                run: 1
            }
        );
        assert_eq!(
            jb.insert(t0 + Duration::from_millis(85), ExtSeq(2), vec![2]),
            Inserted::Late
        );
        assert_eq!(jb.depth(), Duration::from_millis(80));
        out.clear();
        drain(&mut jb, t0 + Duration::from_millis(120), &mut out);
        assert_eq!(
            out,
            vec![
                Playout::Stretch,
                Playout::Packet {
                    seq: ExtSeq(3),
                    payload: vec![3]
                }
            ]
        );
    }

    #[test]
    fn pacing_does_not_drift_over_a_minute() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.insert(t0, ExtSeq(0), vec![]);
        let mut n = 0u32;
        let mut now = t0;
        // Wake a little late every time (driver timer slack): the schedule still holds.
        while n < 3000 {
            let due = jb.poll_timeout().unwrap();
            now = now.max(due) + Duration::from_micros(700);
            while jb.poll_playout(now).is_some() {
                n += 1;
            }
        }
        assert_eq!(
            jb.poll_timeout().unwrap(),
            t0 + Duration::from_millis(60) + P * 3000
        );
    }

    #[test]
    fn skipped_sequence_numbers_are_not_losses() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.insert(t0, ExtSeq(5), vec![5]);
        jb.skip(t0, ExtSeq(6));
        jb.insert(t0, ExtSeq(7), vec![7]);
        let mut out = vec![];
        drain(&mut jb, t0 + Duration::from_secs(1), &mut out);
        assert_eq!(out[1], Playout::Skipped { seq: ExtSeq(6) });
        assert_eq!(jb.stats().lost, 0);
        assert_eq!(jb.stats().underruns as usize, out.len() - 3);
    }

    #[test]
    fn silence_suppression_gap_rebuffers_instead_of_dropping_everything() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut out = vec![];
        for k in 0..5u64 {
            jb.insert(t0 + P * k as u32, ExtSeq(k), vec![k as u8]);
            drain(&mut jb, t0 + P * k as u32, &mut out);
        }
        // 1 s without packets (DTX), then the stream resumes with the next sequence numbers.
        drain(&mut jb, t0 + Duration::from_millis(1080), &mut out);
        let resume = t0 + Duration::from_millis(1100);
        for k in 5..10u64 {
            let at = resume + P * (k - 5) as u32;
            jb.insert(at, ExtSeq(k), vec![k as u8]);
            drain(&mut jb, at, &mut out);
        }
        drain(&mut jb, resume + Duration::from_millis(200), &mut out);
        let played: Vec<u64> = out
            .iter()
            .filter_map(|p| {
                if let Playout::Packet { seq, .. } = p {
                    Some(seq.0)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(played, (0..10).collect::<Vec<_>>());
        assert_eq!(jb.stats().late, 0);
        assert!(out.iter().any(|p| matches!(p, Playout::Underrun { .. })));
    }

    #[test]
    fn far_jump_resynchronises() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.insert(t0, ExtSeq(5), vec![5]);
        assert_eq!(jb.insert(t0 + P, ExtSeq(5000), vec![9]), Inserted::Resynced);
        let mut out = vec![];
        drain(&mut jb, t0 + P + Duration::from_millis(60), &mut out);
        assert_eq!(
            out,
            vec![Playout::Packet {
                seq: ExtSeq(5000),
                payload: vec![9]
            }]
        );
    }

    proptest! {
        /// Arbitrary arrival orders, duplicates and times: never panics, plays strictly
        /// increasing sequence numbers, each at most once, one item per interval.
        #[test]
        fn arbitrary_orders_play_in_order(
            arrivals in proptest::collection::vec((0u64..120, 0u64..400, any::<bool>()), 1..200),
            poll_gaps in proptest::collection::vec(1u64..45, 1..200),
        ) {
            let t0 = Instant::now();
            let mut jb = JitterBuffer::new(JitterConfig::default());
            let mut events: Vec<(u64, u64, bool)> = arrivals; // (seq offset, arrival ms, skip?)
            events.sort_by_key(|e| e.1);
            let mut polls = poll_gaps.into_iter().cycle();
            let mut now_ms = 0u64;
            let mut played: Vec<u64> = vec![];
            let mut items = 0u64;
            let mut first_due: Option<Instant> = None;
            let mut i = 0;
            while i < events.len() || now_ms < 3000 {
                while i < events.len() && events[i].1 <= now_ms {
                    let (s, at, skip) = events[i];
                    let t = t0 + Duration::from_millis(at);
                    if skip { jb.skip(t, ExtSeq(1000 + s)); } else { jb.insert(t, ExtSeq(1000 + s), vec![s as u8]); }
                    if first_due.is_none() { first_due = jb.poll_timeout(); }
                    i += 1;
                }
                let now = t0 + Duration::from_millis(now_ms);
                while let Some(p) = jb.poll_playout(now) {
                    items += 1;
                    match p {
                        Playout::Packet { seq, payload } => { prop_assert_eq!(payload, vec![(seq.0 - 1000) as u8]); played.push(seq.0) }
                        Playout::Lost { seq, .. } | Playout::Skipped { seq } => played.push(seq.0),
                        Playout::Stretch | Playout::Underrun { .. } => {}
                    }
                }
                now_ms += polls.next().unwrap_or(20);
            }
            prop_assert!(played.windows(2).all(|w| w[0] < w[1]), "out of order: {:?}", played);
            if let Some(first) = first_due {
                // One item per 20 ms since playout started, never more.
                let elapsed = (t0 + Duration::from_millis(now_ms)).saturating_duration_since(first);
                prop_assert!(items <= elapsed.as_millis() as u64 / 20 + 1);
            }
        }
    }
}
