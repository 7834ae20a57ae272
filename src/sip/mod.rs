//! SIP for voicenav: the trunk-facing signalling of RFC 3261, sans-IO, with a thin tokio
//! driver.
//!
//! | module | what | spec |
//! |---|---|---|
//! | [`message`] | tolerant parser + serialiser, typed views (Via, name-addr, URI, CSeq) | RFC 3261 §7, §20, §25; RFC 4475 |
//! | [`timer`] | timers A–K as a named enum, T1/T2/T4 | RFC 3261 §17, App. A |
//! | [`transaction`] | the four transaction machines, one file each | RFC 3261 §17, RFC 6026 |
//! | [`dialog`] | tags, CSeq, route set, remote target | RFC 3261 §12 |
//! | [`digest`] | digest client and server, MD5 / SHA-256, qop=auth | RFC 7616, RFC 3261 §22 |
//! | [`registration`] | trunk REGISTER, refresh, backoff | RFC 3261 §10 |
//! | [`admission`] | inbound ACL (CIDR or digest, else 403), new-calls/s bucket | — |
//! | [`transfer`] | transfer context headers, sipfrag | RFC 3515, RFC 3420, RFC 7433 |
//! | [`endpoint`] | the sans-IO UAS tying them together | RFC 3261 §8.2, §13–§15; RFC 3581 |
//! | [`driver`] | UDP + TCP sockets, clock, channels (tokio) | RFC 3261 §18 |
//!
//! # The drain loop (the only way to drive the endpoint)
//! ```text
//! loop {
//!     match wait_for(socket, command channel, sleep_until(endpoint.poll_timeout())) {
//!         Datagram(peer, bytes) => endpoint.handle_input(Instant::now(), peer, &bytes),
//!         Command(cmd)          => endpoint.handle_command(Instant::now(), cmd),
//!         Timeout               => endpoint.handle_timeout(Instant::now()),
//!     }
//!     while let Some(t) = endpoint.poll_transmit() { send(t.peer, t.payload) }
//!     while let Some(e) = endpoint.poll_event()    { events.send(e) }
//! }
//! ```
//! After every input the driver drains every `poll_*` before waiting again; the endpoint
//! never does IO, never reads a clock, and ignores a `now` earlier than one it has seen.
//!
//! # The call-layer API (for `src/call.rs`, issue 10)
//! [`driver::spawn`] binds the sockets and returns a [`driver::SipHandle`] (commands in)
//! and a receiver of [`endpoint::CallEvent`] (events out), both keyed by
//! [`endpoint::CallId`] (the SIP Call-ID):
//!
//! - events: `Incoming { call, from, ani, to, remote_sdp, remote_rtp, peer }` (ACL,
//!   overload and codec checks already passed; a 100 Trying is already sent),
//!   `MediaAnswered { answer: sdp::Answer }` (codec, DTMF payload type, peer RTP address,
//!   after each answer), `Established` (ACK), `CallerHangup { reason: Bye | Cancel | NoAck }`,
//!   `Dtmf { digit, duration_ms }` (INFO application/dtmf-relay), `Hold { held }`
//!   (re-INVITE, already answered), `TransferProgress { code }` (REFER response / NOTIFY
//!   sipfrag), `TransferResult { outcome: Success | Failed(code) | Timeout }` (on Success
//!   the endpoint has already sent BYE on the bot leg; on the others the call stays up so
//!   the flow can fall back), `Closed` (the call is gone for any reason: free its media),
//!   `Registration { trunk, status }`.
//! - commands: `Ring`, `Answer { media: LocalMedia }` (the endpoint writes the SDP answer
//!   from the offer and our address/port, and reuses it for re-INVITEs),
//!   `Reject { code }`, `Hangup`, `Refer { target, headers }` — build `headers` with
//!   [`transfer::transfer_headers`] from a [`crate::routing::TransferContext`], and the
//!   target with `Config::queue_uri`.
//!
//! `voicenav serve` runs [`driver::DefaultHandler`] inline in the driver (an
//! [`driver::InlineHandler`]: no channel hop) until the call layer exists: it
//! answers every admitted INVITE with an RTP port reserved from the configured range.

pub mod admission;
pub mod dialog;
pub mod digest;
pub mod driver;
pub mod endpoint;
pub mod message;
pub mod registration;
pub mod timer;
pub mod transaction;
pub mod transfer;

pub use endpoint::{CallCommand, CallEvent, CallId, Endpoint, EndpointConfig, Peer, Transport};
