//! One stream of key presses from three sources — RFC 4733 events, in-band tones (Goertzel)
//! and SIP INFO (`application/dtmf-relay`, from the SIP layer) — with de-duplication: a
//! gateway that sends a key both as an RFC 4733 event and as a tone (or also as SIP INFO)
//! produces one press. A press from one source absorbs the same digit from *another* source
//! within [`DEDUP_WINDOW`]; presses from the same source are never merged (each source
//! already reports one digit per press).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::rtp::event::Digit;

/// How far apart the same press may be seen by two sources (in-band detection runs after
/// the jitter buffer and needs ~30 ms of tone, so it lags the RFC 4733 event).
pub const DEDUP_WINDOW: Duration = Duration::from_millis(400);

/// Where a digit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigitSource {
    Rfc4733,
    InBand,
    SipInfo,
    /// Given by hand for an offline replay (`voicenav replay … --dtmf 3.2:1`).
    Scripted,
}

/// A key press, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPress {
    pub digit: Digit,
    pub source: DigitSource,
    pub at: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Recent {
    press: DtmfPress,
    /// Sources that already reported this press.
    seen: [bool; 3],
}

fn idx(s: DigitSource) -> usize {
    match s {
        DigitSource::Rfc4733 => 0,
        DigitSource::InBand => 1,
        DigitSource::SipInfo | DigitSource::Scripted => 2,
    }
}

/// The merger.
#[derive(Debug, Default)]
pub struct DigitMerger {
    recent: VecDeque<Recent>,
}

impl DigitMerger {
    /// A digit from `source` at `now`: `Some` if it is a new press.
    pub fn handle(&mut self, now: Instant, digit: Digit, source: DigitSource) -> Option<DtmfPress> {
        while self
            .recent
            .front()
            .is_some_and(|r| now.saturating_duration_since(r.press.at) > DEDUP_WINDOW)
        {
            self.recent.pop_front();
        }
        let i = idx(source);
        if let Some(r) = self
            .recent
            .iter_mut()
            .find(|r| r.press.digit == digit && !r.seen[i])
        {
            r.seen[i] = true;
            return None;
        }
        let press = DtmfPress {
            digit,
            source,
            at: now,
        };
        let mut seen = [false; 3];
        seen[i] = true;
        self.recent.push_back(Recent { press, seen });
        Some(press)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digit {
        Digit::from_char(c).unwrap()
    }

    #[test]
    fn same_press_from_two_sources_is_one() {
        let t = Instant::now();
        let mut m = DigitMerger::default();
        assert!(m.handle(t, d('5'), DigitSource::Rfc4733).is_some());
        assert!(m
            .handle(t + Duration::from_millis(90), d('5'), DigitSource::InBand)
            .is_none());
        assert!(m
            .handle(t + Duration::from_millis(120), d('5'), DigitSource::SipInfo)
            .is_none());
        // The next real press of 5, both sources again.
        assert!(m
            .handle(t + Duration::from_millis(250), d('5'), DigitSource::Rfc4733)
            .is_some());
        assert!(m
            .handle(t + Duration::from_millis(330), d('5'), DigitSource::InBand)
            .is_none());
    }

    #[test]
    fn same_source_is_never_merged_and_window_expires() {
        let t = Instant::now();
        let mut m = DigitMerger::default();
        assert!(m.handle(t, d('1'), DigitSource::InBand).is_some());
        assert!(m
            .handle(t + Duration::from_millis(100), d('1'), DigitSource::InBand)
            .is_some());
        assert!(m.handle(t, d('2'), DigitSource::Rfc4733).is_some());
        assert!(m
            .handle(t + Duration::from_millis(900), d('2'), DigitSource::InBand)
            .is_some());
    }
}
