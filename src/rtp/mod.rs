//! RTP for one call's media, sans-IO (RFC 3550/3551, RFC 4733, RFC 4961, RFC 5761).
//!
//! - [`packet`] — RTP header parse/emit (via `rtp-rs`), RTP/RTCP demultiplexing
//! - [`seq`] — sequence numbers and timestamps extended past wraparound
//! - [`jitter`] — jitter buffer: reorder, drop duplicates/late, mark losses, adaptive depth
//! - [`event`] — RFC 4733 telephone-events: payload, receiver (one digit per event), sender
//! - [`rtcp`] — minimal SR/RR
//! - [`session`] — one call's session: SSRC, symmetric RTP, demux audio/events, 20 ms
//!   packetisation with marker bit, digit sending, RTCP reports
//! - [`ports`] — the RTP port pool of `config.rtp`
//!
//! The socket loop that drives a session lives in [`crate::media::driver`].

pub mod event;
pub mod jitter;
pub mod packet;
pub mod ports;
pub mod rtcp;
pub mod seq;
pub mod session;

pub use packet::{RtpHeader, RtpPacket, Ssrc};
