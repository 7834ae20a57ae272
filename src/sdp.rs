//! SDP offer/answer for voice calls (RFC 4566 syntax, RFC 3264 offer/answer): we speak
//! G.711 µ-law (PCMU, payload type 0), A-law (PCMA, 8) and RFC 4733 telephone-event.
//!
//! [`SessionDescription::parse`] reads what a caller offers (only the parts a voice endpoint
//! needs: connection address, first audio stream, its payload types, rtpmaps and direction);
//! [`answer`] picks our codec in the offerer's order of preference and writes the answer,
//! mirroring hold (`sendonly` → `recvonly`, `inactive` → `inactive`). No common codec is
//! [`SdpError::NoCommonCodec`], which the SIP layer turns into 488.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP is not UTF-8")]
    NotText,
    #[error("SDP has no audio stream")]
    NoAudio,
    #[error("SDP has no usable connection address")]
    NoConnection,
    #[error("bad SDP line {line}: {text}")]
    BadLine { line: usize, text: String },
    #[error("no common codec (we offer PCMU, PCMA)")]
    NoCommonCodec,
}

/// A voice codec we can encode and decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
}

/// Media direction attribute (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
    /// What the answerer says to an offer with this direction.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }
}

/// One payload type of an audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadType {
    pub pt: u8,
    /// Encoding name from `a=rtpmap` (or the static assignment), upper case.
    pub encoding: String,
    pub clock_rate: u32,
}

/// The parts of a session description a voice endpoint acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub connection: Option<IpAddr>,
    pub audio_port: u16,
    pub payloads: Vec<PayloadType>,
    pub direction: Direction,
}

impl SessionDescription {
    pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
        let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
        let mut session_conn = None;
        let mut session_dir = Direction::SendRecv;
        // (port, payload types, connection, direction) of the first audio stream.
        type Audio = (u16, Vec<u8>, Option<IpAddr>, Option<Direction>);
        let mut audio: Option<Audio> = None;
        let mut rtpmaps: Vec<(u8, String, u32)> = Vec::new();
        let mut in_audio = false;
        let mut seen_audio = false;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim_end();
            if line.is_empty() {
                continue;
            }
            let bad = || SdpError::BadLine {
                line: n + 1,
                text: line.chars().take(60).collect(),
            };
            let (kind, value) = line.split_once('=').ok_or_else(bad)?;
            match kind {
                "m" => {
                    let mut f = value.split_whitespace();
                    let media = f.next().ok_or_else(bad)?;
                    let port = f.next().ok_or_else(bad)?.split('/').next().unwrap_or("");
                    let _proto = f.next().ok_or_else(bad)?;
                    in_audio = media == "audio" && !seen_audio;
                    if in_audio {
                        seen_audio = true;
                        let port: u16 = port.parse().map_err(|_| bad())?;
                        let pts = f.filter_map(|p| p.parse::<u8>().ok()).collect();
                        audio = Some((port, pts, None, None));
                    }
                }
                "c" => {
                    let ip = value.split_whitespace().nth(2).ok_or_else(bad)?;
                    let ip: Option<IpAddr> = ip.split('/').next().and_then(|s| s.parse().ok());
                    match (&mut audio, seen_audio) {
                        (Some(a), true) if in_audio => a.2 = ip,
                        (_, false) => session_conn = ip,
                        _ => {}
                    }
                }
                "a" => {
                    let dir = match value {
                        "sendrecv" => Some(Direction::SendRecv),
                        "sendonly" => Some(Direction::SendOnly),
                        "recvonly" => Some(Direction::RecvOnly),
                        "inactive" => Some(Direction::Inactive),
                        _ => None,
                    };
                    if let Some(d) = dir {
                        if in_audio {
                            if let Some(a) = &mut audio {
                                a.3 = Some(d);
                            }
                        } else if !seen_audio {
                            session_dir = d;
                        }
                    } else if let (Some(map), true) = (value.strip_prefix("rtpmap:"), in_audio) {
                        let (pt, enc) = map.split_once(' ').ok_or_else(bad)?;
                        let pt: u8 = pt.trim().parse().map_err(|_| bad())?;
                        let mut e = enc.trim().split('/');
                        let name = e.next().unwrap_or("").to_ascii_uppercase();
                        let rate = e.next().and_then(|r| r.parse().ok()).unwrap_or(8000);
                        rtpmaps.push((pt, name, rate));
                    }
                }
                _ => {}
            }
        }
        let (audio_port, pts, conn, dir) = audio.ok_or(SdpError::NoAudio)?;
        let connection = conn.or(session_conn);
        if connection.is_none() && audio_port != 0 {
            return Err(SdpError::NoConnection);
        }
        let payloads = pts
            .into_iter()
            .map(|pt| match rtpmaps.iter().find(|(p, _, _)| *p == pt) {
                Some((_, name, rate)) => PayloadType {
                    pt,
                    encoding: name.clone(),
                    clock_rate: *rate,
                },
                None => PayloadType {
                    pt,
                    encoding: static_name(pt).to_string(),
                    clock_rate: 8000,
                },
            })
            .collect();
        Ok(SessionDescription {
            connection,
            audio_port,
            payloads,
            direction: dir.unwrap_or(session_dir),
        })
    }

    /// Where the peer wants RTP (None for port 0 or a hold address 0.0.0.0).
    pub fn rtp_addr(&self) -> Option<SocketAddr> {
        let ip = self.connection?;
        (self.audio_port != 0 && !ip.is_unspecified()).then(|| SocketAddr::new(ip, self.audio_port))
    }

    /// The peer holds the call (RFC 3264 §8.4, or the old `c=0.0.0.0` of RFC 2543).
    pub fn is_hold(&self) -> bool {
        matches!(self.direction, Direction::SendOnly | Direction::Inactive)
            || self.connection.is_some_and(|c| c.is_unspecified())
    }
}

fn static_name(pt: u8) -> &'static str {
    match pt {
        0 => "PCMU",
        8 => "PCMA",
        _ => "",
    }
}

/// What we answered: the SDP text and what it decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub sdp: String,
    pub codec: Codec,
    /// Payload type of telephone-event, when both sides have it.
    pub dtmf_pt: Option<u8>,
    pub remote_rtp: Option<SocketAddr>,
    pub direction: Direction,
}

/// Our side of the session: address and port for RTP, and the `o=` line's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    pub address: IpAddr,
    pub rtp_port: u16,
    pub session_id: u64,
    /// Incremented on every new answer in the same dialog (RFC 3264 §8).
    pub version: u64,
}

/// Answers `offer` with our codecs, in the offerer's preference order.
pub fn answer(offer: &SessionDescription, local: &LocalMedia) -> Result<Answer, SdpError> {
    let codec = offer
        .payloads
        .iter()
        .find_map(|p| match (p.encoding.as_str(), p.clock_rate) {
            ("PCMU", 8000) => Some(Codec::Pcmu),
            ("PCMA", 8000) => Some(Codec::Pcma),
            _ => None,
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let dtmf_pt = offer
        .payloads
        .iter()
        .find(|p| p.encoding == "TELEPHONE-EVENT" && p.clock_rate == 8000)
        .map(|p| p.pt);
    let direction = offer.direction.answer();
    let sdp = write_sdp(local, codec, dtmf_pt, direction);
    Ok(Answer {
        sdp,
        codec,
        dtmf_pt,
        remote_rtp: offer.rtp_addr(),
        direction,
    })
}

/// Our offer (used for re-INVITEs we send and by the caller simulator).
pub fn offer(local: &LocalMedia) -> String {
    let mut s = sdp_head(local);
    let _ = write!(
        s,
        "m=audio {} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        local.rtp_port
    );
    s
}

fn sdp_head(local: &LocalMedia) -> String {
    let ipv = if local.address.is_ipv6() {
        "IP6"
    } else {
        "IP4"
    };
    format!(
        "v=0\r\no=voicenav {} {} IN {ipv} {}\r\ns=voicenav\r\nc=IN {ipv} {}\r\nt=0 0\r\n",
        local.session_id, local.version, local.address, local.address
    )
}

fn write_sdp(
    local: &LocalMedia,
    codec: Codec,
    dtmf_pt: Option<u8>,
    direction: Direction,
) -> String {
    let mut s = sdp_head(local);
    let pt = codec.payload_type();
    let _ = write!(s, "m=audio {} RTP/AVP {pt}", local.rtp_port);
    if let Some(d) = dtmf_pt {
        let _ = write!(s, " {d}");
    }
    let _ = write!(s, "\r\na=rtpmap:{pt} {}/8000\r\n", codec.name());
    if let Some(d) = dtmf_pt {
        let _ = write!(
            s,
            "a=rtpmap:{d} telephone-event/8000\r\na=fmtp:{d} 0-16\r\n"
        );
    }
    let _ = write!(s, "a=ptime:20\r\na={}\r\n", direction.attr());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

    fn local() -> LocalMedia {
        LocalMedia {
            address: "127.0.0.1".parse().unwrap(),
            rtp_port: 20000,
            session_id: 7,
            version: 1,
        }
    }

    #[test]
    fn answers_in_offer_order_with_dtmf() {
        let offer = SessionDescription::parse(OFFER.as_bytes()).unwrap();
        let a = answer(&offer, &local()).unwrap();
        assert_eq!(a.codec, Codec::Pcma);
        assert_eq!(a.dtmf_pt, Some(101));
        assert_eq!(a.remote_rtp, Some("127.0.0.1:6000".parse().unwrap()));
        assert!(
            a.sdp.contains("m=audio 20000 RTP/AVP 8 101\r\n"),
            "{}",
            a.sdp
        );
        let back = SessionDescription::parse(a.sdp.as_bytes()).unwrap();
        assert_eq!(back.payloads[0].encoding, "PCMA");
    }

    #[test]
    fn no_common_codec() {
        let g729 = OFFER
            .replace("RTP/AVP 8 0 101", "RTP/AVP 18")
            .replace("a=rtpmap:8 PCMA/8000\r\n", "");
        let offer = SessionDescription::parse(g729.as_bytes()).unwrap();
        assert_eq!(
            answer(&offer, &local()).unwrap_err(),
            SdpError::NoCommonCodec
        );
    }

    #[test]
    fn hold_is_mirrored() {
        let hold = format!("{OFFER}a=sendonly\r\n");
        let offer = SessionDescription::parse(hold.as_bytes()).unwrap();
        assert!(offer.is_hold());
        let a = answer(&offer, &local()).unwrap();
        assert_eq!(a.direction, Direction::RecvOnly);
        assert!(a.sdp.contains("a=recvonly"));
    }

    #[test]
    fn bad_sdp_is_an_error_not_a_panic() {
        assert!(SessionDescription::parse(b"garbage").is_err());
        assert!(SessionDescription::parse(&[0xff, 0xfe]).is_err());
        assert_eq!(
            SessionDescription::parse(b"v=0\r\n").unwrap_err(),
            SdpError::NoAudio
        );
        assert!(SessionDescription::parse(b"v=0\r\nm=audio x RTP/AVP 0\r\n").is_err());
    }
}
