//! voicenav — a voice-navigation bot for a bank-and-insurance hotline.
//!
//! A SIP/RTP endpoint answers the call, streams the caller's audio through speech
//! recognition into an intent classifier, walks a YAML dialog flow over ≥2,480 service
//! scenarios, and transfers the caller to the right business-line queue with the context.
//!
//! # Architecture
//! Protocol and decision logic are **sans-IO**: plain structs that take input and the
//! current `Instant` and hand back output (`handle_*(now, input)`, `poll_*()`,
//! `poll_timeout()`), with no sockets, no tokio and no wall clock inside. Tokio lives only
//! in the drivers (socket loops, the per-call task, the server). After every input a
//! driver drains every `poll_*` until it yields `None`, then sleeps until `poll_timeout()`.
//!
//! # Module map
//! - [`sip`] — SIP messages, RFC 3261 §17 transactions, dialogs, registration, REFER
//! - [`sdp`] — SDP offer/answer: PCMU, PCMA, telephone-event
//! - [`rtp`] — RTP packets, jitter buffer, RFC 4733 events
//! - [`media`] — G.711, resampling, VAD/endpointing, Goertzel DTMF, prompt player, recorder
//! - [`asr`] / [`tts`] — recogniser and synthesiser backends
//! - [`nlu`] — normalisation, scenario catalogue, classifier
//! - [`dialog`] — flow schema, validation, graph, runtime, hot reload
//! - [`routing`] — queues and transfer context
//! - [`replay`] — scripted and recorded calls through the same pipeline
//! - [`simulator`] — `voicenav call`: scripted callers over real SIP/RTP against any IVR
//! - [`observe`] — tracing, metrics, health, call records, PII masking
//! - [`continuity`] — breakpoint resume: context store (embedded redb or Redis)
//! - [`config`], [`yaml`], [`doctor`], [`server`], [`cli`] — the shell around them
//!
//! # Panic policy
//! Network input never panics a core; one call's failure ends that call, never the server.

pub mod asr;
pub mod call;
pub mod cli;
pub mod config;
pub mod continuity;
pub mod dialog;
pub mod doctor;
pub mod media;
pub mod nlu;
pub mod observe;
pub mod replay;
pub mod routing;
pub mod rtp;
pub mod sdp;
pub mod server;
pub mod simulator;
pub mod sip;
pub mod tts;
pub mod yaml;
