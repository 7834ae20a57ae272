//! RFC 4733 telephone-events (DTMF over RTP): the 4-byte payload (§2.3), a receiver that
//! turns the redundant packet stream into one digit per event (§2.5.2), and a sender that
//! produces the packets of a key press (§2.5.1).
//!
//! Receiver rules: an event is identified by its RTP timestamp (all packets of one event
//! share the timestamp of its start); the digit is reported at the first packet seen (start,
//! update or — if those were lost — end), exactly once; the three redundant end packets and
//! stragglers are ignored; a long press that overflows the 16-bit duration continues with a
//! new timestamp without an end packet (§2.5.1.3) and is not a new digit.

use std::collections::VecDeque;

/// A DTMF key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digit(char);

impl Digit {
    /// From '0'–'9', '*', '#', 'A'–'D' (lowercase accepted).
    pub fn from_char(c: char) -> Option<Digit> {
        let c = c.to_ascii_uppercase();
        matches!(c, '0'..='9' | '*' | '#' | 'A'..='D').then_some(Digit(c))
    }

    /// From an RFC 4733 event code (0–15).
    pub fn from_event(code: u8) -> Option<Digit> {
        let c = match code {
            0..=9 => (b'0' + code) as char,
            10 => '*',
            11 => '#',
            12..=15 => (b'A' + code - 12) as char,
            _ => return None,
        };
        Some(Digit(c))
    }

    pub fn event_code(self) -> u8 {
        match self.0 {
            '*' => 10,
            '#' => 11,
            c @ '0'..='9' => c as u8 - b'0',
            c => c as u8 - b'A' + 12,
        }
    }

    pub fn as_char(self) -> char {
        self.0
    }

    /// All 16 keys in keypad order.
    pub fn all() -> impl Iterator<Item = Digit> {
        "123A456B789C*0#D".chars().filter_map(Digit::from_char)
    }
}

impl std::fmt::Display for Digit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The payload of a telephone-event packet (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    pub event: u8,
    pub end: bool,
    /// Power level, 0 to −63 dBm0, as a positive number.
    pub volume: u8,
    /// In timestamp units (samples at 8 kHz).
    pub duration: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("telephone-event payload of {0} bytes (want ≥ 4)")]
pub struct EventError(pub usize);

impl EventPayload {
    pub fn parse(b: &[u8]) -> Result<EventPayload, EventError> {
        if b.len() < 4 {
            return Err(EventError(b.len()));
        }
        Ok(EventPayload {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    pub fn emit(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// A digit reported by the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedDigit {
    pub digit: Digit,
    /// RTP timestamp of the event start (extended).
    pub timestamp: u64,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    timestamp: u64,
    event: u8,
    /// Timestamp just after the longest duration seen.
    end_ts: u64,
    ended: bool,
}

/// The RFC 4733 receiver of one stream.
#[derive(Debug, Default)]
pub struct EventReceiver {
    recent: VecDeque<Seen>,
}

impl EventReceiver {
    /// Handles one telephone-event packet with its extended RTP timestamp; returns the digit
    /// when this packet starts a new event.
    pub fn handle(&mut self, timestamp: u64, p: &EventPayload) -> Option<ReceivedDigit> {
        if let Some(s) = self.recent.iter_mut().find(|s| s.timestamp == timestamp) {
            s.end_ts = s.end_ts.max(timestamp + p.duration as u64);
            s.ended |= p.end;
            return None;
        }
        // Continuation of a long press: same event, starts where the previous segment
        // reached, previous one not ended.
        let continuation = self.recent.back().is_some_and(|s| {
            s.event == p.event && !s.ended && timestamp > s.timestamp && timestamp <= s.end_ts + 800
        });
        // A straggler from an older event (timestamp before the newest known start).
        let stale = self.recent.back().is_some_and(|s| timestamp < s.timestamp);
        self.recent.push_back(Seen {
            timestamp,
            event: p.event,
            end_ts: timestamp + p.duration as u64,
            ended: p.end,
        });
        if self.recent.len() > 16 {
            self.recent.pop_front();
        }
        if continuation || stale {
            return None;
        }
        Digit::from_event(p.event).map(|digit| ReceivedDigit { digit, timestamp })
    }
}

/// One packet of an outgoing event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    pub payload: EventPayload,
    /// Marker bit: set on the first packet of the event.
    pub marker: bool,
}

/// The packets of one key press, one per 20 ms interval: start (marker), updates with
/// growing duration, then the end packet three times (§2.5.1.4).
pub fn press_packets(digit: Digit, duration_ms: u32, volume: u8) -> Vec<EventPacket> {
    let total = (duration_ms.max(40) * 8).min(u16::MAX as u32) as u16;
    let mut v = Vec::new();
    let mut d = 160u16;
    while d < total {
        v.push(EventPacket {
            payload: EventPayload {
                event: digit.event_code(),
                end: false,
                volume,
                duration: d,
            },
            marker: v.is_empty(),
        });
        d = d.saturating_add(160);
    }
    for _ in 0..3 {
        v.push(EventPacket {
            payload: EventPayload {
                event: digit.event_code(),
                end: true,
                volume,
                duration: total,
            },
            marker: v.is_empty(),
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_codes() {
        for (i, d) in "0123456789*#ABCD".chars().enumerate() {
            let digit = Digit::from_char(d).unwrap();
            assert_eq!(digit.event_code() as usize, i);
            assert_eq!(Digit::from_event(i as u8), Some(digit));
        }
        assert_eq!(Digit::from_event(16), None);
        assert_eq!(Digit::from_char('x'), None);
        assert_eq!(Digit::all().count(), 16);
    }

    #[test]
    fn payload_round_trip_and_short_input() {
        let p = EventPayload {
            event: 11,
            end: true,
            volume: 10,
            duration: 1600,
        };
        assert_eq!(EventPayload::parse(&p.emit()).unwrap(), p);
        assert!(EventPayload::parse(&[1, 2, 3]).is_err());
    }

    #[test]
    fn one_digit_per_event_with_redundant_ends_and_loss() {
        let mut rx = EventReceiver::default();
        let mut got = vec![];
        for (ts, digit) in [(1000u64, '5'), (5000, '5'), (9000, '#')] {
            let pkts = press_packets(Digit::from_char(digit).unwrap(), 100, 10);
            // Lose the first packet of the second event: the digit still comes once.
            for (i, p) in pkts.iter().enumerate() {
                if ts == 5000 && i == 0 {
                    continue;
                }
                got.extend(rx.handle(ts, &p.payload));
                got.extend(rx.handle(ts, &p.payload)); // network duplicate
            }
        }
        let s: String = got.iter().map(|d| d.digit.as_char()).collect();
        assert_eq!(s, "55#");
    }

    #[test]
    fn only_end_packets_still_report_the_digit() {
        let mut rx = EventReceiver::default();
        let end = EventPayload {
            event: 3,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(rx.handle(160, &end).map(|d| d.digit.as_char()), Some('3'));
        assert_eq!(rx.handle(160, &end), None);
    }

    #[test]
    fn long_press_segments_are_one_digit() {
        let mut rx = EventReceiver::default();
        let mut n = 0;
        // First segment: duration climbs to 0xFFFF without an end; then a new segment.
        for d in (160..=65440u32).step_by(160) {
            n += rx
                .handle(
                    0,
                    &EventPayload {
                        event: 0,
                        end: false,
                        volume: 10,
                        duration: d as u16,
                    },
                )
                .into_iter()
                .count();
        }
        for d in (160..=1600u32).step_by(160) {
            n += rx
                .handle(
                    65440,
                    &EventPayload {
                        event: 0,
                        end: d == 1600,
                        volume: 10,
                        duration: d as u16,
                    },
                )
                .into_iter()
                .count();
        }
        assert_eq!(n, 1);
    }

    #[test]
    fn stale_packet_of_an_old_event_is_ignored() {
        let mut rx = EventReceiver::default();
        assert!(rx
            .handle(
                100,
                &EventPayload {
                    event: 1,
                    end: true,
                    volume: 10,
                    duration: 800
                }
            )
            .is_some());
        assert!(rx
            .handle(
                2000,
                &EventPayload {
                    event: 2,
                    end: false,
                    volume: 10,
                    duration: 160
                }
            )
            .is_some());
        // A very late straggler of an event whose earlier packets we never saw.
        assert!(rx
            .handle(
                50,
                &EventPayload {
                    event: 7,
                    end: true,
                    volume: 10,
                    duration: 800
                }
            )
            .is_none());
    }

    #[test]
    fn press_packets_shape() {
        let p = press_packets(Digit::from_char('9').unwrap(), 100, 10);
        assert!(p[0].marker && p.iter().skip(1).all(|x| !x.marker));
        assert_eq!(p.len(), 4 + 3);
        assert_eq!(p.iter().filter(|x| x.payload.end).count(), 3);
        assert!(p.iter().all(|x| x.payload.event == 9));
        assert_eq!(p.last().unwrap().payload.duration, 800);
    }
}
