//! Media: everything between RTP payloads and the recogniser/dialog. The parts are sans-IO
//! (input + `now` in, output out) except [`recorder`] (a file) and [`driver`] (tokio).
//!
//! - [`g711`] — µ-law/A-law (ITU-T G.711, bit-exact with the G.191 reference):
//!   `g711::ulaw_encode(&[i16]) -> Vec<u8>`, `ulaw_decode(&[u8]) -> Vec<i16>`, the same for
//!   A-law, per-sample functions, and [`g711::Law`] for code that handles both
//! - [`resample`] — 8 kHz ↔ 16 kHz and any rate → 8/16 kHz (rubato FFT resampler):
//!   `resample::to_rate(&[i16], from, to)`, `to_rate_f32`, streaming [`resample::Resampler`]
//! - [`wav`] — read any WAV as mono PCM at a wanted rate (`wav::read_mono(path, 8000)`);
//!   write mono WAVs
//! - [`dtmf`] — in-band DTMF (Goertzel, ITU-T Q.24 tolerances)
//! - [`digits`] — RFC 4733 + in-band + SIP INFO digits merged into one press stream
//! - [`vad`] — voice activity detection and endpointing (speech start/end, max length)
//! - [`player`] — prompt player: exact 20 ms pacing, stop within one frame, heard duration
//! - [`recorder`] — stereo WAV recorder (caller left, bot right), complete after hangup/crash
//! - [`source`] — offline sources: WAV → timed frames, pcap → the caller's RTP datagrams
//! - [`pipeline`] — **one call's media, sans-IO**: [`pipeline::Pipeline`] wires RTP session,
//!   jitter buffer, decoder, concealment, DTMF, VAD, player and recorder feed together;
//!   `handle_datagram(now, from, bytes)`, `handle_timeout(now)`, `poll_event()` →
//!   [`pipeline::MediaEvent`] (`SpeechStart`, `SpeechEnd { pcm }`, `Dtmf`, `PromptEnded`),
//!   `poll_transmit()`, `poll_recorded()`, `poll_timeout()`; `play(prompt)`, `stop_prompt`,
//!   `send_digit`, `handle_sip_info_digit`, `finish(now)` at hangup
//! - [`driver`] — the tokio task that runs a pipeline on real sockets
//!
//! Audio inside the pipeline is 8 kHz mono i16 in 20 ms frames of [`FRAME_SAMPLES`] samples.

pub mod digits;
pub mod driver;
pub mod dtmf;
pub mod g711;
pub mod pipeline;
pub mod player;
pub mod recorder;
pub mod resample;
pub mod source;
pub mod vad;
pub mod wav;

#[cfg(test)]
pub(crate) mod testdata;

/// Telephone sample rate.
pub const SAMPLE_RATE: u32 = 8000;
/// One packetisation interval.
pub const FRAME_MS: u32 = 20;
/// Samples per 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
