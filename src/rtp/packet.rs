//! RTP packets (RFC 3550 §5.1): a parsed, owned header plus a borrowed payload, and emission.
//! Parsing and building use the `rtp-rs` crate (zero-copy reader; handles CSRC lists,
//! header extensions and padding); this module adds the typed header the rest of voicenav
//! uses and RTP/RTCP demultiplexing (RFC 5761 §4).

use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

/// A synchronisation source identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ssrc(pub u32);

/// The fields of an RTP header voicenav uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub payload_type: u8,
    pub marker: bool,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: Ssrc,
}

/// A parsed RTP packet: header and payload (padding removed).
#[derive(Debug, Clone, Copy)]
pub struct RtpPacket<'a> {
    pub header: RtpHeader,
    pub payload: &'a [u8],
}

/// Why bytes are not an RTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("not RTP: {0}")]
    Malformed(String),
    #[error("an RTCP packet (payload type {0}), not RTP")]
    Rtcp(u8),
    #[error("could not build RTP packet: {0}")]
    Build(String),
}

/// True when a datagram on a shared port is RTCP rather than RTP (RFC 5761 §4: second
/// octet 192–223 is an RTCP packet type, i.e. RTP payload types 64–95 with the marker set).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && buf[0] >> 6 == 2 && (192..=223).contains(&buf[1])
}

impl<'a> RtpPacket<'a> {
    /// Parses a datagram. Never panics on arbitrary bytes.
    pub fn parse(buf: &'a [u8]) -> Result<RtpPacket<'a>, PacketError> {
        if is_rtcp(buf) {
            return Err(PacketError::Rtcp(buf[1]));
        }
        let r = RtpReader::new(buf).map_err(|e| PacketError::Malformed(format!("{e:?}")))?;
        let header = RtpHeader {
            payload_type: r.payload_type(),
            marker: r.mark(),
            seq: u16::from(r.sequence_number()),
            timestamp: r.timestamp(),
            ssrc: Ssrc(r.ssrc()),
        };
        Ok(RtpPacket {
            header,
            payload: r.payload(),
        })
    }
}

impl RtpHeader {
    /// Emits a packet with this header and `payload` (no CSRCs, extensions or padding).
    pub fn emit(&self, payload: &[u8]) -> Result<Vec<u8>, PacketError> {
        RtpPacketBuilder::new()
            .payload_type(self.payload_type & 0x7F)
            .marked(self.marker)
            .sequence(Seq::from(self.seq))
            .timestamp(self.timestamp)
            .ssrc(self.ssrc.0)
            .payload(payload)
            .build()
            .map_err(|e| PacketError::Build(format!("{e:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn emit_then_parse_round_trips() {
        let h = RtpHeader {
            payload_type: 8,
            marker: true,
            seq: 65535,
            timestamp: 0xDEAD_BEEF,
            ssrc: Ssrc(42),
        };
        let bytes = h.emit(&[0xD5; 160]).unwrap();
        assert_eq!(bytes.len(), 12 + 160);
        assert_eq!(bytes[0], 0x80);
        assert_eq!(bytes[1], 0x80 | 8);
        let p = RtpPacket::parse(&bytes).unwrap();
        assert_eq!(p.header, h);
        assert_eq!(p.payload, &[0xD5; 160][..]);
    }

    #[test]
    fn csrc_extension_and_padding_are_skipped() {
        // V=2 P=1 X=1 CC=1, PT 0, seq 7, ts 160, ssrc 1, csrc 9, ext (id 0xBEDE, 1 word), payload 2 bytes, 2 padding.
        let mut b = vec![
            0xB1, 0x00, 0, 7, 0, 0, 0, 160, 0, 0, 0, 1, 0, 0, 0, 9, 0xBE, 0xDE, 0, 1, 1, 2, 3, 4,
        ];
        b.extend_from_slice(&[0xAA, 0xBB, 0x00, 0x02]);
        let p = RtpPacket::parse(&b).unwrap();
        assert_eq!(p.header.seq, 7);
        assert_eq!(p.payload, &[0xAA, 0xBB]);
    }

    #[test]
    fn junk_is_an_error() {
        assert!(RtpPacket::parse(&[]).is_err());
        assert!(RtpPacket::parse(&[0x80, 0, 0]).is_err());
        assert!(RtpPacket::parse(&[0x40; 20]).is_err()); // version 1
                                                         // RTCP receiver report on a muxed port.
        assert_eq!(
            RtpPacket::parse(&[0x80, 201, 0, 1, 0, 0, 0, 1]).unwrap_err(),
            PacketError::Rtcp(201)
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = RtpPacket::parse(&bytes);
        }
    }
}
