//! Extending 16-bit RTP sequence numbers and 32-bit RTP timestamps past their wraparound
//! (RFC 3550 §3, Appendix A.1): each value is mapped to the 64-bit value closest to the
//! highest one seen so far, so reordering across a wrap keeps the right order.
//!
//! Extended values are their own types ([`ExtSeq`], [`MediaTs`]): media time is never
//! confused with the monotonic clock of the host.

/// An extended (64-bit) RTP sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExtSeq(pub u64);

/// An extended (64-bit) RTP media timestamp, in samples of the payload clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MediaTs(pub u64);

/// Unwraps a stream of N-bit counters (N = 16 or 32).
#[derive(Debug, Clone, Copy)]
struct Unwrapper<const BITS: u32> {
    highest: Option<u64>,
}

impl<const BITS: u32> Unwrapper<BITS> {
    const fn new() -> Self {
        Unwrapper { highest: None }
    }

    fn extend(&mut self, v: u32) -> u64 {
        let modulus: u64 = 1 << BITS;
        let v = v as u64 & (modulus - 1);
        let Some(high) = self.highest else {
            // Start one cycle up so that early reordered packets from before the first
            // one still extend to non-negative values.
            let e = modulus + v;
            self.highest = Some(e);
            return e;
        };
        let base = high & !(modulus - 1);
        let candidates = [
            base.wrapping_sub(modulus) | v,
            base | v,
            (base + modulus) | v,
        ];
        let mut best = base | v;
        let mut best_d = u64::MAX;
        for c in candidates {
            if base < modulus && c >= base + 2 * modulus {
                continue; // base − modulus wrapped around zero
            }
            let d = c.abs_diff(high);
            if d < best_d {
                best_d = d;
                best = c;
            }
        }
        if best > high {
            self.highest = Some(best);
        }
        best
    }
}

/// Extends RTP sequence numbers.
#[derive(Debug, Clone, Copy)]
pub struct SeqExtender(Unwrapper<16>);

impl Default for SeqExtender {
    fn default() -> Self {
        SeqExtender(Unwrapper::new())
    }
}

impl SeqExtender {
    pub fn extend(&mut self, seq: u16) -> ExtSeq {
        ExtSeq(self.0.extend(seq as u32))
    }
}

/// Extends RTP timestamps.
#[derive(Debug, Clone, Copy)]
pub struct TsExtender(Unwrapper<32>);

impl Default for TsExtender {
    fn default() -> Self {
        TsExtender(Unwrapper::new())
    }
}

impl TsExtender {
    pub fn extend(&mut self, ts: u32) -> MediaTs {
        MediaTs(self.0.extend(ts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sequence_wraps_forward_and_reorders_back() {
        let mut x = SeqExtender::default();
        let a = x.extend(65534).0;
        assert_eq!(x.extend(65535).0, a + 1);
        assert_eq!(x.extend(0).0, a + 2);
        assert_eq!(x.extend(65535).0, a + 1, "late packet from before the wrap");
        assert_eq!(x.extend(2).0, a + 4);
        assert_eq!(x.extend(1).0, a + 3);
    }

    #[test]
    fn early_reordered_packets_do_not_underflow() {
        let mut x = SeqExtender::default();
        let a = x.extend(0).0;
        assert_eq!(x.extend(65535).0, a - 1);
        let mut t = TsExtender::default();
        let b = t.extend(100).0;
        assert_eq!(t.extend(u32::MAX - 59).0, b - 160);
        assert_eq!(t.extend(260).0, b + 160);
    }

    proptest! {
        /// A monotone 64-bit counter, truncated and delivered with small reordering,
        /// extends back to itself (up to the constant offset of the first value).
        #[test]
        fn extension_recovers_the_counter(start in any::<u16>(), steps in proptest::collection::vec(0u64..300, 1..400), swaps in proptest::collection::vec(any::<usize>(), 0..50)) {
            let mut truth = vec![start as u64];
            for s in steps { let last = *truth.last().unwrap(); truth.push(last + s); }
            let mut order: Vec<usize> = (0..truth.len()).collect();
            for s in swaps { let i = s % order.len(); if i + 1 < order.len() { order.swap(i, i + 1); } }
            let mut x = SeqExtender::default();
            let first = order[0];
            let base = x.extend(truth[first] as u16).0 as i64 - truth[first] as i64;
            for &i in &order[1..] {
                let e = x.extend(truth[i] as u16).0 as i64;
                prop_assert_eq!(e - base, truth[i] as i64);
            }
        }
    }
}
