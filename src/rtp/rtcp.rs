//! Minimal RTCP (RFC 3550 §6.4): sender and receiver reports with report blocks, emitted and
//! parsed; other packet types (SDES, BYE, APP, feedback) in a compound packet are skipped.
//! voicenav sends one report every 5 s per call on the same port as RTP (RFC 5761 mux) or on
//! port + 1, and reads the caller's SR to fill LSR/DLSR; it does not do RTCP-based
//! congestion control (G.711 at 64 kbit/s is fixed-rate).

/// One report block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceptionReport {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// 24-bit.
    pub cumulative_lost: u32,
    pub highest_seq: u32,
    pub jitter: u32,
    pub lsr: u32,
    pub dlsr: u32,
}

/// The RTCP packets voicenav understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    SenderReport {
        ssrc: u32,
        ntp: u64,
        rtp_ts: u32,
        packets: u32,
        octets: u32,
        reports: Vec<ReceptionReport>,
    },
    ReceiverReport {
        ssrc: u32,
        reports: Vec<ReceptionReport>,
    },
    /// Any other type, by packet type number.
    Other(u8),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("RTCP packet truncated")]
    Truncated,
    #[error("RTCP version is not 2")]
    Version,
}

fn u32_at(b: &[u8], i: usize) -> Result<u32, RtcpError> {
    b.get(i..i + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(RtcpError::Truncated)
}

impl RtcpPacket {
    /// Parses a compound packet. Never panics on arbitrary bytes.
    pub fn parse_compound(mut b: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
        let mut out = Vec::new();
        while b.len() >= 4 {
            if b[0] >> 6 != 2 {
                return Err(RtcpError::Version);
            }
            let count = (b[0] & 0x1F) as usize;
            let pt = b[1];
            let len = (u16::from_be_bytes([b[2], b[3]]) as usize + 1) * 4;
            let p = b.get(..len).ok_or(RtcpError::Truncated)?;
            let blocks = |from: usize| -> Result<Vec<ReceptionReport>, RtcpError> {
                (0..count)
                    .map(|k| {
                        let o = from + 24 * k;
                        let w1 = u32_at(p, o + 4)?;
                        Ok(ReceptionReport {
                            ssrc: u32_at(p, o)?,
                            fraction_lost: (w1 >> 24) as u8,
                            cumulative_lost: w1 & 0xFF_FFFF,
                            highest_seq: u32_at(p, o + 8)?,
                            jitter: u32_at(p, o + 12)?,
                            lsr: u32_at(p, o + 16)?,
                            dlsr: u32_at(p, o + 20)?,
                        })
                    })
                    .collect()
            };
            out.push(match pt {
                200 => RtcpPacket::SenderReport {
                    ssrc: u32_at(p, 4)?,
                    ntp: (u32_at(p, 8)? as u64) << 32 | u32_at(p, 12)? as u64,
                    rtp_ts: u32_at(p, 16)?,
                    packets: u32_at(p, 20)?,
                    octets: u32_at(p, 24)?,
                    reports: blocks(28)?,
                },
                201 => RtcpPacket::ReceiverReport {
                    ssrc: u32_at(p, 4)?,
                    reports: blocks(8)?,
                },
                other => RtcpPacket::Other(other),
            });
            b = &b[len..];
        }
        Ok(out)
    }

    /// Emits an SR or RR (other kinds emit nothing).
    pub fn emit(&self) -> Vec<u8> {
        let (pt, ssrc, reports, sender) = match self {
            RtcpPacket::SenderReport {
                ssrc,
                ntp,
                rtp_ts,
                packets,
                octets,
                reports,
            } => (
                200u8,
                *ssrc,
                reports,
                Some((*ntp, *rtp_ts, *packets, *octets)),
            ),
            RtcpPacket::ReceiverReport { ssrc, reports } => (201, *ssrc, reports, None),
            RtcpPacket::Other(_) => return Vec::new(),
        };
        let reports = &reports[..reports.len().min(31)];
        let mut v = vec![0x80 | reports.len() as u8, pt, 0, 0];
        v.extend_from_slice(&ssrc.to_be_bytes());
        if let Some((ntp, ts, packets, octets)) = sender {
            v.extend_from_slice(&ntp.to_be_bytes());
            v.extend_from_slice(&ts.to_be_bytes());
            v.extend_from_slice(&packets.to_be_bytes());
            v.extend_from_slice(&octets.to_be_bytes());
        }
        for r in reports {
            v.extend_from_slice(&r.ssrc.to_be_bytes());
            v.extend_from_slice(
                &((r.fraction_lost as u32) << 24 | (r.cumulative_lost & 0xFF_FFFF)).to_be_bytes(),
            );
            v.extend_from_slice(&r.highest_seq.to_be_bytes());
            v.extend_from_slice(&r.jitter.to_be_bytes());
            v.extend_from_slice(&r.lsr.to_be_bytes());
            v.extend_from_slice(&r.dlsr.to_be_bytes());
        }
        let words = (v.len() / 4 - 1) as u16;
        v[2..4].copy_from_slice(&words.to_be_bytes());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sr_with_block_round_trips_and_unknown_types_are_skipped() {
        let r = ReceptionReport {
            ssrc: 5,
            fraction_lost: 12,
            cumulative_lost: 300,
            highest_seq: 70000,
            jitter: 33,
            lsr: 9,
            dlsr: 65536,
        };
        let sr = RtcpPacket::SenderReport {
            ssrc: 1,
            ntp: 42 << 32 | 7,
            rtp_ts: 160,
            packets: 10,
            octets: 1600,
            reports: vec![r],
        };
        let mut bytes = sr.emit();
        assert_eq!(bytes.len(), 28 + 24);
        // Append an SDES packet (type 202) of one word of padding.
        bytes.extend_from_slice(&[0x81, 202, 0, 1, 0, 0, 0, 1]);
        assert_eq!(
            RtcpPacket::parse_compound(&bytes).unwrap(),
            vec![sr, RtcpPacket::Other(202)]
        );
    }

    #[test]
    fn truncated_is_an_error() {
        let bytes = RtcpPacket::ReceiverReport {
            ssrc: 1,
            reports: vec![],
        }
        .emit();
        assert!(RtcpPacket::parse_compound(&bytes[..6]).is_err());
        assert!(
            RtcpPacket::parse_compound(&[0x81, 201, 0, 1, 0, 0, 0, 1]).is_err(),
            "count 1 but no block"
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = RtcpPacket::parse_compound(&bytes);
        }
    }
}
