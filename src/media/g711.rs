//! G.711 µ-law (PCMU, RTP payload type 0) and A-law (PCMA, payload type 8) companding,
//! following ITU-T G.711 (11/88) Tables 1a/2a and the bit-exact reference implementation of
//! the ITU-T G.191 Software Tool Library (`g711.c`).
//!
//! Linear samples are 16-bit two's complement, left-justified as in G.191: A-law uses the top
//! 13 bits, µ-law the top 14 bits. Encoding follows G.191 exactly (negative samples are
//! quantised on their one's complement), so a decoded code re-encodes to itself.
//!
//! ```
//! use voicenav::media::g711;
//! let pcm = [0i16, 1000, -1000, 32767];
//! let bytes = g711::ulaw_encode(&pcm);
//! let back = g711::ulaw_decode(&bytes);
//! assert_eq!(back.len(), 4);
//! assert!((back[1] - 1000).abs() < 40);
//! ```
//!
//! Decoding uses 256-entry tables built at compile time; encoding is branch-light
//! (a leading-zeros count picks the segment).

/// Which G.711 law a stream uses (from the SDP payload type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law, PCMU, static RTP payload type 0 (North America, Japan).
    Ulaw,
    /// A-law, PCMA, static RTP payload type 8 (Europe, China).
    Alaw,
}

impl Law {
    /// The static RTP payload type (RFC 3551 §6).
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    /// The law of a static payload type, if it is G.711.
    pub fn from_payload_type(pt: u8) -> Option<Law> {
        match pt {
            0 => Some(Law::Ulaw),
            8 => Some(Law::Alaw),
            _ => None,
        }
    }

    /// The code of digital silence (+0).
    pub fn silence(self) -> u8 {
        match self {
            Law::Ulaw => 0xFF,
            Law::Alaw => 0xD5,
        }
    }

    /// Encodes one sample.
    #[inline]
    pub fn encode_sample(self, x: i16) -> u8 {
        match self {
            Law::Ulaw => ulaw_encode_sample(x),
            Law::Alaw => alaw_encode_sample(x),
        }
    }

    /// Decodes one code.
    #[inline]
    pub fn decode_sample(self, c: u8) -> i16 {
        match self {
            Law::Ulaw => ulaw_decode_sample(c),
            Law::Alaw => alaw_decode_sample(c),
        }
    }

    /// Encodes `pcm` into `out` (cleared first).
    pub fn encode_into(self, pcm: &[i16], out: &mut Vec<u8>) {
        out.clear();
        match self {
            Law::Ulaw => out.extend(pcm.iter().map(|&x| ulaw_encode_sample(x))),
            Law::Alaw => out.extend(pcm.iter().map(|&x| alaw_encode_sample(x))),
        }
    }

    /// Decodes `codes` into `out` (cleared first).
    pub fn decode_into(self, codes: &[u8], out: &mut Vec<i16>) {
        out.clear();
        let table = match self {
            Law::Ulaw => &ULAW_TABLE,
            Law::Alaw => &ALAW_TABLE,
        };
        out.extend(codes.iter().map(|&c| table[c as usize]));
    }

    /// Encodes a slice.
    pub fn encode(self, pcm: &[i16]) -> Vec<u8> {
        let mut out = Vec::with_capacity(pcm.len());
        self.encode_into(pcm, &mut out);
        out
    }

    /// Decodes a slice.
    pub fn decode(self, codes: &[u8]) -> Vec<i16> {
        let mut out = Vec::with_capacity(codes.len());
        self.decode_into(codes, &mut out);
        out
    }
}

impl From<crate::sdp::Codec> for Law {
    fn from(c: crate::sdp::Codec) -> Law {
        match c {
            crate::sdp::Codec::Pcmu => Law::Ulaw,
            crate::sdp::Codec::Pcma => Law::Alaw,
        }
    }
}

/// µ-law encoding of one 16-bit sample (G.191 `ulaw_compress`).
#[inline]
pub fn ulaw_encode_sample(x: i16) -> u8 {
    // Magnitude on 14 bits (one's complement for negatives), plus the bias of 33.
    let mag = (if x < 0 { (!x) >> 2 } else { x >> 2 }) as u16;
    let absno = (mag + 33).min(0x1FFF);
    // segno = 1 + number of significant bits of (absno >> 6).
    let segno = 1 + (16 - ((absno >> 6).leading_zeros() as u16));
    let high = 8 - segno;
    let low = 0x0F - ((absno >> segno) & 0x0F);
    let code = ((high << 4) | low) as u8;
    if x >= 0 {
        code | 0x80
    } else {
        code
    }
}

/// µ-law decoding of one code (G.191 `ulaw_expand`).
#[inline]
pub fn ulaw_decode_sample(c: u8) -> i16 {
    ULAW_TABLE[c as usize]
}

/// A-law encoding of one 16-bit sample (G.191 `alaw_compress`, even bits inverted).
#[inline]
pub fn alaw_encode_sample(x: i16) -> u8 {
    let mut ix = (if x < 0 { (!x) >> 4 } else { x >> 4 }) as u16;
    if ix > 15 {
        // Segment = number of significant bits above the 4-bit mantissa + 1.
        let bits = 16 - ix.leading_zeros() as u16; // 5..=11
        let iexp = bits - 4;
        ix = ((ix >> (iexp - 1)) - 16) + (iexp << 4);
    }
    if x >= 0 {
        ix |= 0x80;
    }
    (ix as u8) ^ 0x55
}

/// A-law decoding of one code (G.191 `alaw_expand`).
#[inline]
pub fn alaw_decode_sample(c: u8) -> i16 {
    ALAW_TABLE[c as usize]
}

/// µ-law encodes a slice.
pub fn ulaw_encode(pcm: &[i16]) -> Vec<u8> {
    Law::Ulaw.encode(pcm)
}

/// µ-law decodes a slice.
pub fn ulaw_decode(codes: &[u8]) -> Vec<i16> {
    Law::Ulaw.decode(codes)
}

/// A-law encodes a slice.
pub fn alaw_encode(pcm: &[i16]) -> Vec<u8> {
    Law::Alaw.encode(pcm)
}

/// A-law decodes a slice.
pub fn alaw_decode(codes: &[u8]) -> Vec<i16> {
    Law::Alaw.decode(codes)
}

const fn ulaw_expand(c: u8) -> i16 {
    let sign: i32 = if c < 0x80 { -1 } else { 1 };
    let m = !c;
    let exponent = ((m >> 4) & 0x07) as i32;
    let segment = exponent + 1;
    let mantissa = (m & 0x0F) as i32;
    let step = 4i32 << segment;
    (sign * ((0x80 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
}

const fn alaw_expand(c: u8) -> i16 {
    let ix = (c ^ 0x55) & 0x7F;
    let iexp = (ix >> 4) as i32;
    let mut mant = (ix & 0x0F) as i32;
    if iexp > 0 {
        mant += 16;
    }
    mant = (mant << 4) + 8;
    if iexp > 1 {
        mant <<= iexp - 1;
    }
    (if c > 127 { mant } else { -mant }) as i16
}

const fn build_table(ulaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if ulaw {
            ulaw_expand(i as u8)
        } else {
            alaw_expand(i as u8)
        };
        i += 1;
    }
    t
}

static ULAW_TABLE: [i16; 256] = build_table(true);
static ALAW_TABLE: [i16; 256] = build_table(false);

#[cfg(test)]
mod tests {
    use super::*;

    /// G.191 `ulaw_compress`, transcribed loop-for-loop, as an independent oracle.
    fn ref_ulaw_compress(x: i16) -> u8 {
        let x = x as i32;
        let mut absno = if x < 0 {
            ((!x) >> 2) + 33
        } else {
            (x >> 2) + 33
        };
        if absno > 0x1FFF {
            absno = 0x1FFF;
        }
        let mut i = absno >> 6;
        let mut segno = 1;
        while i != 0 {
            segno += 1;
            i >>= 1;
        }
        let high = 0x08 - segno;
        let low = 0x0F - ((absno >> segno) & 0x0F);
        let mut out = (high << 4) | low;
        if x >= 0 {
            out |= 0x80;
        }
        out as u8
    }

    /// G.191 `alaw_compress`, transcribed loop-for-loop.
    fn ref_alaw_compress(x: i16) -> u8 {
        let x = x as i32;
        let mut ix = if x < 0 { (!x) >> 4 } else { x >> 4 };
        if ix > 15 {
            let mut iexp = 1;
            while ix > 16 + 15 {
                ix >>= 1;
                iexp += 1;
            }
            ix -= 16;
            ix += iexp << 4;
        }
        if x >= 0 {
            ix |= 0x80;
        }
        (ix ^ 0x55) as u8
    }

    #[test]
    fn encoders_match_g191_reference_for_every_input() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_encode_sample(x), ref_ulaw_compress(x), "µ-law {x}");
            assert_eq!(alaw_encode_sample(x), ref_alaw_compress(x), "A-law {x}");
        }
    }

    /// G.711 Table 2a: µ-law decoder output values (14-bit scale, ×4 in 16 bits) per
    /// segment: first value and step; 16 values each; max 8031.
    #[test]
    fn ulaw_decoder_outputs_are_g711_table_2a() {
        let segments = [
            (0, 2),
            (33, 4),
            (99, 8),
            (231, 16),
            (495, 32),
            (1023, 64),
            (2079, 128),
            (4191, 256),
        ];
        for (seg, &(first, step)) in segments.iter().enumerate() {
            for m in 0..16 {
                let v = first + step * m;
                // Positive code: 1 sss mmmm with all bits inverted.
                let code = 0x80 | !(((seg as u8) << 4) | m as u8) & 0x7F;
                assert_eq!(ulaw_decode_sample(code) as i32, v * 4, "code {code:#x}");
                assert_eq!(
                    ulaw_decode_sample(code & 0x7F) as i32,
                    -v * 4,
                    "code {:#x}",
                    code & 0x7F
                );
            }
        }
        assert_eq!(ulaw_decode_sample(0x80), 32124);
        assert_eq!(ulaw_decode_sample(0x00), -32124);
        assert_eq!(ulaw_decode_sample(0xFF), 0);
        assert_eq!(ulaw_decode_sample(0x7F), 0);
        assert_eq!(ulaw_encode_sample(0), 0xFF);
    }

    /// G.711 Table 1a: A-law decoder output values (on the 4096 scale, ×8 in 16 bits);
    /// segment 1 = 1,3,…,31; then 33+2m, 66+4m, … up to 4032; even bits inverted (0x55).
    #[test]
    fn alaw_decoder_outputs_are_g711_table_1a() {
        let segments = [
            (1, 2),
            (33, 2),
            (66, 4),
            (132, 8),
            (264, 16),
            (528, 32),
            (1056, 64),
            (2112, 128),
        ];
        for (seg, &(first, step)) in segments.iter().enumerate() {
            for m in 0..16 {
                let v = first + step * m;
                let code = (0x80 | ((seg as u8) << 4) | m as u8) ^ 0x55;
                assert_eq!(alaw_decode_sample(code) as i32, v * 8, "code {code:#x}");
                assert_eq!(alaw_decode_sample(code ^ 0x80) as i32, -v * 8);
            }
        }
        assert_eq!(alaw_decode_sample(0xD5), 8);
        assert_eq!(alaw_decode_sample(0x55), -8);
        assert_eq!(alaw_decode_sample(0xAA), 32256);
        assert_eq!(alaw_decode_sample(0x2A), -32256);
        assert_eq!(alaw_encode_sample(0), 0xD5);
    }

    /// G.711 decision values: the µ-law encoder switches code exactly half-way between
    /// reconstruction levels (Table 2a: e.g. 14-bit inputs 1|3|5 … 31|35 … 8159).
    #[test]
    fn ulaw_decision_values() {
        // 14-bit value v (left-justified ×4): 0 → code for 0; 1 → code for 2; 31 → 30/33 boundary.
        let dec = |v14: i32| ulaw_decode_sample(ulaw_encode_sample((v14 * 4) as i16)) as i32 / 4;
        assert_eq!(dec(0), 0);
        assert_eq!(dec(1), 2);
        assert_eq!(dec(2), 2);
        assert_eq!(dec(3), 4);
        assert_eq!(dec(30), 30);
        assert_eq!(dec(31), 33);
        assert_eq!(dec(34), 33);
        assert_eq!(dec(35), 37);
        assert_eq!(dec(8158), 8031);
        assert_eq!(dec(8191), 8031);
    }

    #[test]
    fn decode_then_encode_is_identity_except_negative_zero() {
        for c in 0..=255u8 {
            let u = ulaw_decode_sample(c);
            let expect = if c == 0x7F { 0xFF } else { c }; // −0 decodes to 0, re-encodes as +0
            assert_eq!(ulaw_encode_sample(u), expect, "µ {c:#x}");
            assert_eq!(alaw_encode_sample(alaw_decode_sample(c)), c, "A {c:#x}");
        }
    }

    #[test]
    fn quantisation_error_is_bounded_and_monotonic() {
        let mut last_u = i16::MIN;
        let mut last_a = i16::MIN;
        for x in i16::MIN..=i16::MAX {
            let u = ulaw_decode_sample(ulaw_encode_sample(x));
            let a = alaw_decode_sample(alaw_encode_sample(x));
            assert!(u >= last_u && a >= last_a, "monotonic at {x}");
            last_u = u;
            last_a = a;
            // A logarithmic quantiser: the error is within half a step, which is at most
            // 1/16 of the value (plus the fine steps near zero and clipping at full scale).
            let tol = (x as i32).abs() / 16 + 9;
            assert!((u as i32 - x as i32).abs() <= tol, "µ {x} → {u}");
            assert!((a as i32 - x as i32).abs() <= tol, "A {x} → {a}");
        }
    }

    #[test]
    fn slice_helpers_round_trip() {
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i as f32 * 0.3).sin() * 8000.0) as i16)
            .collect();
        for law in [Law::Ulaw, Law::Alaw] {
            let enc = law.encode(&pcm);
            assert_eq!(enc.len(), 160);
            let dec = law.decode(&enc);
            let err: f64 = pcm
                .iter()
                .zip(&dec)
                .map(|(&a, &b)| ((a - b) as f64).powi(2))
                .sum::<f64>();
            let sig: f64 = pcm.iter().map(|&a| (a as f64).powi(2)).sum();
            // G.711 SNR on a mid-level sine is ~ 35–38 dB.
            assert!(10.0 * (sig / err).log10() > 30.0);
        }
        assert_eq!(
            ulaw_decode(&ulaw_encode(&[1234])),
            Law::Ulaw.decode(&[ulaw_encode_sample(1234)])
        );
        assert_eq!(
            alaw_decode(&alaw_encode(&[-1234])),
            vec![alaw_decode_sample(alaw_encode_sample(-1234))]
        );
        assert_eq!(Law::from_payload_type(8), Some(Law::Alaw));
        assert_eq!(Law::Ulaw.payload_type(), 0);
    }
}
