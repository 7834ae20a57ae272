//! One call, end to end (issue 10 §1): the **only** place where the SIP dialog, the RTP
//! media pipeline, the recogniser, the NLU and the dialog runtime meet. Each of them stays
//! sans-IO; the per-call task owns the RTP socket and the clock and drives them all:
//!
//! ```text
//!            CallEvent (SIP endpoint, via the dispatcher)          CallCommand (Ring, Answer, Refer, Hangup)
//!                 │                                                      ▲
//!   UDP (RTP) ──▶ media::Pipeline ── MediaEvent ──▶ call task ── Action ──┘ dialog::Session
//!        ▲          (jitter, G.711, VAD, DTMF,        │  ▲                  (handle_event / poll_action)
//!        └────────── player, barge-in) ◀── Play ──────┘  │
//!                                     SpeechEnd ─▶ asr::Recognizer ─▶ Transcript ─▶ nlu (classify_nbest)
//! ```
//!
//! # The drive loop
//! After every input (a datagram, a SIP event, a recognition result, a timer) the task
//! runs the pipeline's due work (`handle_timeout(now)`), sends its datagrams, turns its
//! events into dialog events, fires the session's due timers, drains the session's
//! actions into the player / recogniser / SIP, checks the call-level [`CallTimer`]s, and
//! then sleeps until the earliest deadline of all of them.
//!
//! # Barge-in
//! The pipeline stops an interruptible prompt on the frame where speech starts or a key
//! arrives (within one 20 ms frame). A prompt the flow marks as a disclosure is played
//! with barge-in off, and speech heard while it plays is not taken as an answer.
//!
//! # Faults
//! Every fault ends or recovers the call by a timer, writes the record and counts
//! `voicenav_call_faults_total{kind}`: no RTP ([`CallTimer::RtpInactivity`]), garbage or
//! foreign RTP (counted, ignored by the RTP session), a recogniser that does not answer
//! ([`CallTimer::Recognition`]: treated as no-match), a transfer target that never answers
//! (the SIP endpoint's transfer timer: the flow's fallback runs), a call never ACKed (the
//! SIP endpoint's Timer H). A panic inside a call task is caught by its supervisor in
//! [`dispatch`]: the call gets a BYE and a record with outcome `error`; the server goes on.
//!
//! # Shutdown
//! The dispatcher watches a [`ServerPhase`]: while `Draining`, new INVITEs get 503 and
//! calls in progress go on; at `Deadline` every call ends with BYE (outcome `shutdown`).
//! Records are written before a call's sockets are freed.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::asr::{AsrError, Bias, Engine, Pending, Transcript};
use crate::dialog::{
    Action, CallerDirectory, CallerInfo, Event, FlowStore, ListenSpec, Outcome, Session, Snapshot,
    Timer,
};
use crate::media::driver::bind_from_pool;
use crate::media::g711::Law;
use crate::media::pipeline::{MediaEvent, Pipeline, PipelineConfig};
use crate::media::player;
use crate::media::recorder::Recorder;
use crate::nlu::{Classification, Decision};
use crate::observe::mask::{mask_ani, mask_pii};
use crate::observe::records::{
    self, CallRecord, DecisionRecord, Hypothesis, KeyRecord, PromptRecord, RecognitionRecord,
    RecordWriter, TransferRecord, TransferResult,
};
use crate::routing::{Lane, Queue};
use crate::rtp::event::Digit;
use crate::rtp::ports::PortPool;
use crate::rtp::session::SessionConfig;
use crate::sdp::{self, Codec, LocalMedia, SessionDescription};
use crate::sip::driver::SipHandle;
use crate::sip::endpoint::{HangupReason, TransferOutcome};
use crate::sip::{transfer, CallCommand, CallEvent, CallId};
use crate::tts::cache::PromptCache;
use crate::tts::{PromptSource, Voice};

/// Call-level timers (the SIP endpoint, the pipeline and the session keep their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallTimer {
    /// Answered, but no ACK yet (a backup to the endpoint's Timer H).
    Ack,
    /// No RTP from the caller for [`CallSettings::rtp_timeout`] (not while on hold).
    RtpInactivity,
    /// A recognition did not answer within [`CallSettings::recognition_timeout`].
    Recognition,
    /// A REFER or BYE waits for prompts still playing (bounded).
    PromptDrain,
    /// We ended the call (BYE or transfer done) and wait for the endpoint's `Closed`.
    Closing,
    /// The call is longer than [`CallSettings::max_duration`].
    MaxDuration,
}

/// Tunables of the call task (config `call:`).
#[derive(Debug, Clone)]
pub struct CallSettings {
    pub rtp_timeout: Duration,
    pub recognition_timeout: Duration,
    pub max_duration: Duration,
    pub ack_timeout: Duration,
    pub closing_timeout: Duration,
    /// Longest wait for prompts to finish before a REFER/BYE goes out anyway.
    pub prompt_drain: Duration,
    /// Ringing time before the answer (`sip.answer_delay_ms`).
    pub answer_delay: Duration,
}

impl Default for CallSettings {
    fn default() -> Self {
        CallSettings {
            rtp_timeout: Duration::from_secs(20),
            recognition_timeout: Duration::from_secs(10),
            max_duration: Duration::from_secs(1800),
            ack_timeout: Duration::from_secs(40),
            closing_timeout: Duration::from_secs(5),
            prompt_drain: Duration::from_secs(15),
            answer_delay: Duration::ZERO,
        }
    }
}

/// What the server is doing (watched by every call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerPhase {
    Running,
    /// SIGTERM: no new calls (503); calls in progress go on.
    Draining,
    /// The grace period is over: end every call with BYE.
    Deadline,
}

/// A boxed future (for the resume hook).
pub type HookFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Breakpoint resume (wired by the continuity/records side): on a new call the task asks
/// for a snapshot to resume from; at the end of a call that did not reach an outcome it
/// hands the session snapshot over to be stored.
pub trait ResumeHook: Send + Sync {
    /// A snapshot to resume this caller from, if any (bounded in time by the hook).
    fn lookup<'a>(&'a self, caller: &'a CallerInfo) -> HookFuture<'a, Option<Snapshot>>;
    /// The call ended; `finished` is true when it reached an outcome (transfer, hangup by
    /// the flow), false when the caller dropped mid-flow.
    fn store<'a>(
        &'a self,
        caller: &'a CallerInfo,
        snapshot: Snapshot,
        finished: bool,
    ) -> HookFuture<'a, ()>;
}

/// Everything a call needs, shared by all calls.
pub struct CallDeps {
    pub flows: Arc<FlowStore>,
    pub directory: Arc<CallerDirectory>,
    /// None: keypad only (no model).
    pub asr: Option<Arc<dyn Engine>>,
    pub prompts: Arc<PromptCache>,
    pub voice: Voice,
    pub cantonese_voice: Voice,
    pub records: RecordWriter,
    pub media_ip: IpAddr,
    pub ports: Arc<Mutex<PortPool>>,
    pub queues: std::collections::BTreeMap<Queue, String>,
    pub grammars: PathBuf,
    /// Stereo recordings folder, when recording is on.
    pub recordings: Option<PathBuf>,
    pub settings: CallSettings,
    /// This node's name in records.
    pub node: Option<String>,
    pub resume: Option<Arc<dyn ResumeHook>>,
    biases: Mutex<HashMap<String, Bias>>,
}

impl CallDeps {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        flows: Arc<FlowStore>,
        directory: Arc<CallerDirectory>,
        asr: Option<Arc<dyn Engine>>,
        prompts: Arc<PromptCache>,
        voice: Voice,
        cantonese_voice: Voice,
        records: RecordWriter,
        media_ip: IpAddr,
        ports: PortPool,
        queues: std::collections::BTreeMap<Queue, String>,
        grammars: PathBuf,
    ) -> CallDeps {
        CallDeps {
            flows,
            directory,
            asr,
            prompts,
            voice,
            cantonese_voice,
            records,
            media_ip,
            ports: Arc::new(Mutex::new(ports)),
            queues,
            grammars,
            recordings: None,
            settings: CallSettings::default(),
            node: None,
            resume: None,
            biases: Mutex::new(HashMap::new()),
        }
    }

    /// The recogniser bias of a listen node's grammar (`grammars/<name>.txt`), cached.
    fn bias(&self, grammar: Option<&str>) -> Bias {
        let Some(name) = grammar else {
            return Bias::open();
        };
        if let Ok(map) = self.biases.lock() {
            if let Some(b) = map.get(name) {
                return b.clone();
            }
        }
        let file = if name.ends_with(".txt") {
            self.grammars.join(name)
        } else {
            self.grammars.join(format!("{name}.txt"))
        };
        let bias = Bias::load(&file).unwrap_or_else(|e| {
            tracing::warn!(grammar = name, file = %file.display(), error = %e, "grammar unreadable; open recognition");
            Bias::open()
        });
        if let Ok(mut map) = self.biases.lock() {
            map.insert(name.to_string(), bias.clone());
        }
        bias
    }
}

fn fault(kind: &'static str) {
    metrics::counter!("voicenav_call_faults_total", "kind" => kind).increment(1);
}

/// The record of a call, shared with its supervisor so that a panicking task still leaves
/// a complete record.
#[derive(Debug)]
pub struct RecordSlot {
    pub record: CallRecord,
    pub written: bool,
}

type Slot = Arc<Mutex<RecordSlot>>;

fn with_record(slot: &Slot, f: impl FnOnce(&mut CallRecord)) {
    match slot.lock() {
        Ok(mut g) => f(&mut g.record),
        Err(poisoned) => f(&mut poisoned.into_inner().record),
    }
}

/// Writes the record once (durably) and marks it written.
async fn write_record(records: &RecordWriter, slot: &Slot) {
    let rec = {
        let mut g = match slot.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if g.written {
            return;
        }
        g.written = true;
        g.record.clone()
    };
    metrics::counter!("voicenav_calls_total", "outcome" => rec.outcome.as_str(), "queue" => rec.queue.map(|q| q.as_str()).unwrap_or("none")).increment(1);
    if rec.routed_on_first_utterance {
        metrics::counter!("voicenav_calls_routed_first_utterance_total").increment(1);
    }
    if let Err(e) = records.write(&rec).await {
        fault("record_write");
        tracing::error!(error = %e, "call record could not be written");
    }
}

// ---------------------------------------------------------------------------------------
// Dispatcher: SIP events → call tasks; supervision; shutdown.

/// Routes the SIP endpoint's events to one task per call until the server stops; returns
/// once draining and no call is left (or the SIP driver stopped).
pub async fn dispatch(
    deps: Arc<CallDeps>,
    sip: SipHandle,
    mut events: mpsc::Receiver<CallEvent>,
    mut phase: watch::Receiver<ServerPhase>,
) {
    let mut calls: HashMap<CallId, mpsc::Sender<CallEvent>> = HashMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<CallId>();
    let mut phase_open = true;
    loop {
        let current = *phase.borrow();
        if current != ServerPhase::Running && calls.is_empty() {
            break;
        }
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                match ev {
                    CallEvent::Incoming { call, from: _, ani, to, remote_sdp, remote_rtp, peer: _ } => {
                        if current != ServerPhase::Running {
                            metrics::counter!("voicenav_calls_refused_total", "reason" => "draining").increment(1);
                            sip.command(CallCommand::Reject { call, code: 503 }).await;
                            continue;
                        }
                        if calls.contains_key(&call) {
                            continue;
                        }
                        let (tx, rx) = mpsc::channel(256);
                        calls.insert(call.clone(), tx);
                        let incoming = Incoming { call: call.clone(), ani, to, remote_sdp, remote_rtp };
                        spawn_supervised(deps.clone(), sip.clone(), incoming, rx, phase.clone(), done_tx.clone());
                    }
                    CallEvent::Registration { trunk, status } => {
                        tracing::info!(trunk, ?status, "trunk registration");
                    }
                    other => {
                        let id = event_call(&other).clone();
                        if let Some(tx) = calls.get(&id) {
                            if tx.try_send(other).is_err() {
                                tracing::warn!(call = %id, "call task not keeping up; SIP event dropped");
                            }
                        }
                    }
                }
            }
            Some(id) = done_rx.recv() => { calls.remove(&id); }
            r = phase.changed(), if phase_open => {
                if r.is_err() { phase_open = false; }
            }
        }
    }
}

fn event_call(ev: &CallEvent) -> &CallId {
    match ev {
        CallEvent::Incoming { call, .. }
        | CallEvent::Established { call }
        | CallEvent::CallerHangup { call, .. }
        | CallEvent::Dtmf { call, .. }
        | CallEvent::Hold { call, .. }
        | CallEvent::TransferProgress { call, .. }
        | CallEvent::TransferResult { call, .. }
        | CallEvent::Closed { call }
        | CallEvent::MediaAnswered { call, .. } => call,
        CallEvent::Registration { .. } => {
            static NONE: std::sync::OnceLock<CallId> = std::sync::OnceLock::new();
            NONE.get_or_init(|| CallId(String::new()))
        }
    }
}

/// A new call as the SIP layer reported it.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub call: CallId,
    pub ani: String,
    pub to: String,
    pub remote_sdp: Option<SessionDescription>,
    pub remote_rtp: Option<SocketAddr>,
}

fn spawn_supervised(
    deps: Arc<CallDeps>,
    sip: SipHandle,
    incoming: Incoming,
    events: mpsc::Receiver<CallEvent>,
    phase: watch::Receiver<ServerPhase>,
    done: mpsc::UnboundedSender<CallId>,
) {
    let id = incoming.call.clone();
    let masked = mask_ani(&incoming.ani);
    let mut record = CallRecord::new(id.0.clone(), &incoming.ani, Utc::now());
    record.node = deps.node.clone();
    record.dnis = Some(mask_pii(crate::observe::mask::ani_user_part(&incoming.to)));
    let slot: Slot = Arc::new(Mutex::new(RecordSlot {
        record,
        written: false,
    }));
    metrics::gauge!("voicenav_calls_active").increment(1.0);
    let span = tracing::info_span!("call", call = %id, ani = %masked, node = tracing::field::Empty);
    let task_slot = slot.clone();
    let task_deps = deps.clone();
    let task_sip = sip.clone();
    let handle = tokio::spawn(
        async move {
            let mut call = CallTask::new(task_deps, task_sip, incoming, task_slot);
            call.run(events, phase).await;
        }
        .instrument(span.clone()),
    );
    tokio::spawn(async move {
        if let Err(e) = handle.await {
            let why = if e.is_panic() {
                let p = e.into_panic();
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                format!("panic: {msg}")
            } else {
                "call task cancelled".to_string()
            };
            let _g = span.enter();
            tracing::error!(reason = %why, "call task failed; ending the call");
            fault("panic");
            sip.command(CallCommand::Hangup { call: id.clone() }).await;
            with_record(&slot, |r| {
                r.outcome = records::Outcome::Error;
                r.reason = Some(why.clone());
                r.end = Utc::now();
            });
            write_record(&deps.records, &slot).await;
        }
        metrics::gauge!("voicenav_calls_active").decrement(1.0);
        let _ = done.send(id);
    });
}

// ---------------------------------------------------------------------------------------
// The call task.

/// Where the call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Answered, waiting for the ACK.
    Answered,
    /// ACKed: media and dialog run.
    Live,
    /// We asked the SIP layer to end the call (or the transfer is done): wait for Closed.
    Closing,
    Done,
}

/// A prompt of the session, handed to the player one at a time (so that an input can
/// drop the prompts not yet started while a disclosure plays to its end).
#[derive(Debug)]
struct Queued {
    id: String,
    record: usize,
    barge_in: bool,
    /// Queued before the caller's last input: its end is not reported to the session.
    stale: bool,
    prompt: Option<player::Prompt>,
}

/// A recognition in flight.
struct AsrJob {
    pending: Pending,
    node: String,
    speech_end: Instant,
    submitted: Instant,
    deadline: Instant,
}

/// What the session asked for that waits until the prompts before it have played.
#[derive(Debug)]
enum Deferred {
    Refer {
        queue: Queue,
        target: String,
        headers: Vec<(String, String)>,
        scenario: Option<String>,
    },
    Hangup,
}

/// Why the call ended, when we ended it.
#[derive(Debug, Clone)]
enum EndCause {
    Caller(HangupReason),
    Flow,
    Transferred,
    Fault(&'static str),
    Shutdown,
}

struct CallTask {
    deps: Arc<CallDeps>,
    sip: SipHandle,
    id: CallId,
    incoming: Incoming,
    slot: Slot,
    t0: Instant,
    stage: Stage,
    law: Law,
    dtmf_pt: Option<u8>,
    socket: Option<UdpSocket>,
    port: Option<u16>,
    pipeline: Option<Pipeline>,
    session: Option<Session>,
    caller: CallerInfo,
    listen: Option<ListenSpec>,
    /// The prompt in the player.
    current: Option<Queued>,
    /// Prompts waiting for the player.
    waiting: VecDeque<Queued>,
    prompt_seq: u64,
    /// Speech heard while a non-interruptible prompt played: not an answer.
    ignore_speech: bool,
    /// Recognitions in flight, oldest first (results go to the dialog in speaking order).
    asr: VecDeque<AsrJob>,
    deferred: Option<Deferred>,
    timers: HashMap<CallTimer, Instant>,
    held: bool,
    end: Option<EndCause>,
    /// When the caller's last utterance ended (turn latency is measured from here).
    last_speech_end: Option<Instant>,
    first_input_routed: Option<bool>,
    inputs: u32,
    transfer_done: bool,
    bad_rtp: u64,
    /// The last input left the session on the same node (a no-match or invalid key).
    pending_same_node: bool,
    recorder: Option<Recorder>,
    /// The flow set this call runs on (hot reload does not change it mid-call).
    flows: Option<Arc<crate::dialog::FlowSet>>,
}

impl CallTask {
    fn new(deps: Arc<CallDeps>, sip: SipHandle, incoming: Incoming, slot: Slot) -> CallTask {
        let caller = deps
            .directory
            .caller(Some(&incoming.ani), None, &incoming.call.0);
        let now = Instant::now();
        CallTask {
            id: incoming.call.clone(),
            deps,
            sip,
            incoming,
            slot,
            t0: now,
            stage: Stage::Answered,
            law: Law::Ulaw,
            dtmf_pt: None,
            socket: None,
            port: None,
            pipeline: None,
            session: None,
            caller,
            listen: None,
            current: None,
            waiting: VecDeque::new(),
            prompt_seq: 0,
            ignore_speech: false,
            asr: VecDeque::new(),
            deferred: None,
            timers: HashMap::new(),
            held: false,
            end: None,
            last_speech_end: None,
            first_input_routed: None,
            inputs: 0,
            transfer_done: false,
            bad_rtp: 0,
            pending_same_node: false,
            flows: None,
            recorder: None,
        }
    }

    fn at_ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.t0).as_millis() as u64
    }

    fn record(&self, f: impl FnOnce(&mut CallRecord)) {
        with_record(&self.slot, f);
    }

    async fn run(
        &mut self,
        mut events: mpsc::Receiver<CallEvent>,
        mut phase: watch::Receiver<ServerPhase>,
    ) {
        if let Err(why) = self.answer().await {
            tracing::warn!(reason = why, "call refused");
            self.record(|r| {
                r.outcome = records::Outcome::Unanswered;
                r.reason = Some(why.to_string());
                r.end = Utc::now();
            });
            write_record(&self.deps.records, &self.slot).await;
            self.release_port();
            return;
        }
        let mut buf = vec![0u8; 2048];
        let mut phase_open = true;
        loop {
            let now = Instant::now();
            self.step(now);
            if self.stage == Stage::Done {
                break;
            }
            if *phase.borrow() == ServerPhase::Deadline && self.end.is_none() {
                self.finish_by_us(now, EndCause::Shutdown);
                continue;
            }
            let wake = self.next_wake(now);
            tokio::select! {
                r = recv_opt(&self.socket, &mut buf) => {
                    if let Some((n, from)) = r {
                        self.datagram(from, &buf[..n]);
                    }
                }
                ev = events.recv() => match ev {
                    Some(ev) => self.sip_event(Instant::now(), ev),
                    None => {
                        // The dispatcher is gone (server stopping): end here.
                        self.end.get_or_insert(EndCause::Shutdown);
                        self.stage = Stage::Done;
                    }
                },
                r = asr_wait(&mut self.asr) => {
                    self.recognised(Instant::now(), r);
                }
                r = phase.changed(), if phase_open => {
                    if r.is_err() { phase_open = false; }
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
            }
        }
        self.wrap_up().await;
    }

    /// Reserves media, decides the codec, rings and answers.
    async fn answer(&mut self) -> Result<(), &'static str> {
        let Some(offer) = self.incoming.remote_sdp.clone() else {
            self.sip
                .command(CallCommand::Reject {
                    call: self.id.clone(),
                    code: 488,
                })
                .await;
            return Err("no SDP offer");
        };
        let sockets = match bind_from_pool(&self.deps.ports, self.deps.media_ip).await {
            Ok(s) => s,
            Err(_) => {
                fault("no_rtp_port");
                self.sip
                    .command(CallCommand::Reject {
                        call: self.id.clone(),
                        code: 503,
                    })
                    .await;
                return Err("no free RTP port");
            }
        };
        let media = LocalMedia {
            address: self.deps.media_ip,
            rtp_port: sockets.port,
            session_id: u64::from(rand::random::<u32>()),
            version: 1,
        };
        self.port = Some(sockets.port);
        match sdp::answer(&offer, &media) {
            Ok(a) => {
                self.law = if a.codec == Codec::Pcma {
                    Law::Alaw
                } else {
                    Law::Ulaw
                };
                self.dtmf_pt = a.dtmf_pt;
            }
            Err(_) => {
                self.sip
                    .command(CallCommand::Reject {
                        call: self.id.clone(),
                        code: 488,
                    })
                    .await;
                return Err("no common codec");
            }
        }
        self.socket = Some(sockets.rtp);
        drop(sockets.rtcp);
        self.sip
            .command(CallCommand::Ring {
                call: self.id.clone(),
            })
            .await;
        if !self.deps.settings.answer_delay.is_zero() {
            tokio::time::sleep(self.deps.settings.answer_delay).await;
        }
        self.sip
            .command(CallCommand::Answer {
                call: self.id.clone(),
                media,
            })
            .await;
        let now = Instant::now();
        self.record(|r| {
            r.answer = Some(Utc::now());
            r.lane = if self.caller.senior {
                Lane::Elderly
            } else {
                Lane::Standard
            };
            r.dialect = self.caller.dialect.clone();
        });
        self.timers
            .insert(CallTimer::Ack, now + self.deps.settings.ack_timeout);
        self.timers.insert(
            CallTimer::MaxDuration,
            now + self.deps.settings.max_duration,
        );
        Ok(())
    }

    /// The ACK arrived: start media and the dialog.
    fn established(&mut self, now: Instant) {
        if self.stage != Stage::Answered {
            return;
        }
        self.stage = Stage::Live;
        self.timers.remove(&CallTimer::Ack);
        self.timers.insert(
            CallTimer::RtpInactivity,
            now + self.deps.settings.rtp_timeout,
        );
        let mut session_cfg = SessionConfig::new(self.law);
        session_cfg.event_pt = self.dtmf_pt;
        let mut cfg = PipelineConfig::new(self.law);
        cfg.session = session_cfg;
        cfg.record = false;
        if let Some(dir) = &self.deps.recordings {
            let safe: String = self
                .id
                .0
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let file = dir.join(format!("{}-{safe}.wav", Utc::now().format("%Y%m%dT%H%M%S")));
            let made = std::fs::create_dir_all(dir)
                .map_err(|e| e.to_string())
                .and_then(|_| Recorder::create(&file).map_err(|e| e.to_string()));
            match made {
                Ok(r) => {
                    cfg.record = true;
                    self.recorder = Some(r);
                }
                Err(e) => tracing::warn!(error = %e, "cannot record this call"),
            }
        }
        self.pipeline = Some(Pipeline::new(cfg, self.incoming.remote_rtp, now));
        let flows = self.deps.flows.current();
        self.record(|r| r.flow_version = Some(flows.version.to_string()));
        self.session = Some(Session::new(flows.clone(), self.caller.clone(), now));
        self.flows = Some(flows);
    }

    fn next_wake(&self, now: Instant) -> Instant {
        let mut wake = now + Duration::from_secs(1);
        if let Some(p) = &self.pipeline {
            wake = wake.min(p.poll_timeout());
        }
        if let Some(t) = self.session.as_ref().and_then(|s| s.poll_timeout()) {
            wake = wake.min(t);
        }
        if let Some(t) = self.timers.values().min() {
            wake = wake.min(*t);
        }
        wake.max(now)
    }

    /// One pass of the drive loop at `now` (see the module doc).
    fn step(&mut self, now: Instant) {
        for _ in 0..8 {
            let mut progressed = false;
            if self.stage == Stage::Live {
                progressed |= self.pump_media(now);
                if let Some(s) = self.session.as_mut() {
                    if s.poll_timeout().is_some_and(|t| t <= now) {
                        let which = s.next_timer().map(|(_, t)| t);
                        let node = s.current_node().to_string();
                        s.handle_timeout(now);
                        match which {
                            Some(Timer::NoInput) => {
                                metrics::counter!("voicenav_no_input_total").increment(1);
                                self.record(|r| r.no_inputs += 1);
                            }
                            Some(Timer::MaxSpeech) => {
                                metrics::counter!("voicenav_no_match_total").increment(1);
                                self.record(|r| r.no_matches += 1);
                            }
                            _ => {}
                        }
                        tracing::debug!(node, timer = ?which, "dialog timer");
                        progressed = true;
                    }
                }
                progressed |= self.drain_actions(now);
            }
            if !progressed {
                break;
            }
        }
        self.run_deferred(now);
        self.call_timers(now);
        if self.stage == Stage::Live
            && self.end.is_none()
            && self.session.as_ref().is_some_and(|s| s.is_finished())
            && self.deferred.is_none()
        {
            // The session ended by itself (e.g. caller hangup already handled).
            self.finish_by_us(now, EndCause::Flow);
        }
    }

    /// Runs the pipeline's due work and forwards its output; true when events came out.
    fn pump_media(&mut self, now: Instant) -> bool {
        let Some(p) = self.pipeline.as_mut() else {
            return false;
        };
        p.handle_timeout(now);
        if let Some(sock) = &self.socket {
            while let Some(t) = p.poll_transmit() {
                if let Err(e) = sock.try_send_to(&t.payload, t.to) {
                    tracing::trace!(error = %e, "rtp send");
                }
            }
        }
        while let Some((l, r)) = p.poll_recorded() {
            if let Some(rec) = self.recorder.as_mut() {
                if let Err(e) = rec.write(&l, &r) {
                    tracing::warn!(error = %e, "recording stopped");
                    self.recorder = None;
                }
            }
        }
        let mut events = Vec::new();
        while let Some(e) = p.poll_event() {
            events.push(e);
        }
        let any = !events.is_empty();
        for e in events {
            self.media_event(now, e);
        }
        any
    }

    fn datagram(&mut self, from: SocketAddr, bytes: &[u8]) {
        let now = Instant::now();
        let Some(p) = self.pipeline.as_mut() else {
            return;
        };
        match p.handle_datagram(now, from, bytes) {
            Ok(()) => {
                if !self.held {
                    self.timers.insert(
                        CallTimer::RtpInactivity,
                        now + self.deps.settings.rtp_timeout,
                    );
                }
            }
            Err(_) => {
                self.bad_rtp += 1;
                if self.bad_rtp == 1 {
                    fault("bad_rtp");
                    tracing::info!(%from, "undecodable datagram on the RTP port (ignored)");
                }
            }
        }
    }

    fn media_event(&mut self, now: Instant, e: MediaEvent) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        match e {
            MediaEvent::SpeechStart { .. } => {
                let uninterruptible = self.current.as_ref().is_some_and(|q| !q.barge_in);
                if uninterruptible {
                    self.ignore_speech = true;
                    return;
                }
                self.ignore_speech = false;
                session.handle_event(now, Event::SpeechStarted);
            }
            MediaEvent::SpeechEnd { at, pcm, truncated } => {
                if std::mem::take(&mut self.ignore_speech) {
                    tracing::debug!("speech during a disclosure ignored");
                    return;
                }
                self.speech_ended(now, at, pcm, truncated);
            }
            MediaEvent::Dtmf(press) => {
                let digit = press.digit.as_char();
                let at_ms = self.at_ms(now);
                let source = format!("{:?}", press.source).to_lowercase();
                self.record(|r| {
                    r.keys.push(KeyRecord {
                        at_ms,
                        digit,
                        source,
                    })
                });
                self.ignore_speech = false;
                self.last_speech_end = Some(now);
                self.input(now, Event::Dtmf(digit), None);
            }
            // The call keeps its own inactivity timer (it knows about hold).
            MediaEvent::RtpInactive { .. } => {}
            MediaEvent::PromptEnded { report, barge_in } => {
                let heard = report.heard;
                let mut stale = false;
                if self.current.as_ref().is_some_and(|q| q.id == report.id) {
                    if let Some(q) = self.current.take() {
                        stale = q.stale;
                        let heard_ms = heard.as_millis() as u64;
                        self.record(|r| {
                            if let Some(p) = r.prompts.get_mut(q.record) {
                                p.heard_ms = heard_ms;
                                p.barged_in = barge_in.is_some();
                            }
                        });
                    }
                }
                if barge_in.is_some() {
                    // The rest of the node's prompts go with the interrupted one.
                    self.waiting.clear();
                    metrics::counter!("voicenav_barge_in_total").increment(1);
                    if let Some(session) = self.session.as_mut() {
                        session.handle_event(now, Event::BargeIn);
                    }
                } else if !stale {
                    if let Some(session) = self.session.as_mut() {
                        session.handle_event(now, Event::PromptFinished { heard });
                    }
                }
                self.feed_player();
            }
        }
    }

    /// An utterance ended: recognise it (or, keypad-only, count it as no-match).
    fn speech_ended(&mut self, now: Instant, at: Instant, pcm: Vec<i16>, truncated: bool) {
        let Some(listen) = self.listen.clone() else {
            return;
        };
        self.last_speech_end = Some(at);
        let engine = match (&self.deps.asr, listen.speech) {
            (Some(e), true) => e.clone(),
            _ => {
                self.classified(now, Transcript::default(), 0, &listen.node);
                return;
            }
        };
        if truncated {
            tracing::debug!("utterance cut at the max speech length");
        }
        let bias = self.deps.bias(listen.grammar.as_deref());
        let pending = match engine.start(8000, &bias) {
            Ok(mut r) => match r.accept(&pcm) {
                Ok(_) => r.finish(),
                Err(e) => Pending::ready(Err(e)),
            },
            Err(e) => Pending::ready(Err(e)),
        };
        let deadline = now + self.deps.settings.recognition_timeout;
        self.asr.push_back(AsrJob {
            pending,
            node: listen.node.clone(),
            speech_end: at,
            submitted: now,
            deadline,
        });
        self.arm_recognition_timer();
    }

    fn recognised(&mut self, now: Instant, r: Result<Transcript, AsrError>) {
        let Some(job) = self.asr.pop_front() else {
            return;
        };
        self.arm_recognition_timer();
        let latency = now.saturating_duration_since(job.submitted);
        metrics::histogram!("voicenav_asr_latency_seconds").record(latency.as_secs_f64());
        let t = match r {
            Ok(t) => t,
            Err(AsrError::Saturated) => {
                fault("asr_saturated");
                Transcript::default()
            }
            Err(e) => {
                fault("asr_error");
                tracing::warn!(error = %e, "recognition failed; taken as no-match");
                Transcript::default()
            }
        };
        let _ = job.speech_end;
        self.classified(now, t, latency.as_millis() as u64, &job.node);
    }

    /// A transcript (possibly empty) → NLU → the dialog.
    fn classified(&mut self, now: Instant, t: Transcript, asr_ms: u64, node: &str) {
        let Some(flows) = self.flows.as_ref() else {
            return;
        };
        let classifier = flows.classifier.clone();
        let t_nlu = Instant::now();
        let nbest = t.nbest();
        let c: Classification = if nbest.is_empty() {
            Classification {
                text: String::new(),
                queue: None,
                scenario: None,
                confidence: 0.0,
                decision: Decision::Clarify,
                alternatives: Vec::new(),
            }
        } else {
            classifier.classify_nbest(&nbest)
        };
        let nlu = t_nlu.elapsed();
        metrics::histogram!("voicenav_nlu_latency_seconds").record(nlu.as_secs_f64());
        let at_ms = self.at_ms(now);
        let no_match = nbest.is_empty();
        let node = node.to_string();
        let text = t.text().to_string();
        let decision = c.clone();
        self.record(|r| {
            r.recognitions.push(RecognitionRecord {
                at_ms,
                node,
                text: text.clone(),
                nbest: t
                    .alternatives
                    .iter()
                    .map(|h| Hypothesis {
                        text: h.text.clone(),
                        confidence: h.confidence,
                    })
                    .collect(),
                latency_ms: asr_ms,
                no_match,
            });
            if !no_match {
                r.decisions.push(DecisionRecord {
                    at_ms,
                    text: decision.text.clone(),
                    queue: decision.queue,
                    scenario: decision.scenario.clone(),
                    confidence: decision.confidence,
                    decision: decision.decision,
                    latency_ms: nlu.as_millis() as u64,
                });
            }
        });
        if !no_match {
            let d = match c.decision {
                Decision::Route => "route",
                Decision::Confirm => "confirm",
                Decision::Clarify => "clarify",
            };
            metrics::counter!("voicenav_nlu_decisions_total", "decision" => d).increment(1);
        }
        tracing::info!(text = %mask_pii(&c.text), scenario = ?c.scenario, confidence = c.confidence, decision = ?c.decision, "heard");
        let routed = c.decision == Decision::Route;
        self.input(now, Event::Utterance(c), Some(routed));
    }

    /// A caller input into the session; counts turns and no-matches.
    fn input(&mut self, now: Instant, ev: Event, routed: Option<bool>) {
        if self.session.is_none() {
            return;
        }
        self.prompts_superseded(now);
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let before = session.current_node().to_string();
        session.handle_event(now, ev);
        self.inputs += 1;
        if self.first_input_routed.is_none() {
            self.first_input_routed = Some(routed.unwrap_or(false));
        }
        // Staying on the same node without a transfer is a no-match (or an invalid key).
        let after = session.current_node().to_string();
        let turns = self.inputs;
        self.record(|r| r.turns = turns);
        self.pending_same_node = before == after;
        self.drain_actions(now);
    }

    /// Drains the session's actions; true when there were any.
    fn drain_actions(&mut self, now: Instant) -> bool {
        let mut any = false;
        let mut transferred = false;
        while let Some(a) = self.session.as_mut().and_then(|s| s.poll_action()) {
            any = true;
            match a {
                Action::Play(p) => self.play(now, p),
                Action::Listen(l) => {
                    if self.listen.as_ref().is_none_or(|old| old.node != l.node) {
                        tracing::Span::current().record("node", l.node.as_str());
                    }
                    self.listen = Some(l);
                }
                Action::Transfer { queue, context } => {
                    transferred = true;
                    let (lane, dialect) = (context.lane, context.dialect.clone());
                    self.record(|r| {
                        r.lane = lane;
                        if dialect.is_some() {
                            r.dialect = dialect;
                        }
                    });
                    let headers = transfer::transfer_headers(&context);
                    match self.deps.queues.get(&queue) {
                        Some(target) => {
                            self.deferred = Some(Deferred::Refer {
                                queue,
                                target: target.clone(),
                                headers,
                                scenario: context.scenario.clone(),
                            });
                            self.timers.insert(
                                CallTimer::PromptDrain,
                                now + self.deps.settings.prompt_drain,
                            );
                        }
                        None => {
                            fault("queue_without_uri");
                            tracing::error!(%queue, "no URI configured for the queue; transfer fails");
                            if let Some(s) = self.session.as_mut() {
                                s.handle_event(now, Event::TransferResult { ok: false });
                            }
                        }
                    }
                }
                Action::Hangup => {
                    self.deferred = Some(Deferred::Hangup);
                    self.timers.insert(
                        CallTimer::PromptDrain,
                        now + self.deps.settings.prompt_drain,
                    );
                }
            }
        }
        if any && std::mem::take(&mut self.pending_same_node) && !transferred {
            metrics::counter!("voicenav_no_match_total").increment(1);
            self.record(|r| r.no_matches += 1);
        }
        any
    }

    /// Renders a prompt (prompt cache; espeak-ng on a miss) and queues it in the player.
    fn play(&mut self, now: Instant, p: crate::dialog::Prompt) {
        let voice = if self.caller.dialect.as_deref() == Some("yue") {
            &self.deps.cantonese_voice
        } else {
            &self.deps.voice
        };
        let rate = ((voice.rate as f32) * p.rate.clamp(0.5, 2.0)).round() as u32;
        let source = match &p.wav {
            Some(w) => PromptSource::Recording(w.clone()),
            None => PromptSource::Text {
                text: p.text.clone(),
                voice: Voice::new(voice.name.clone(), rate),
            },
        };
        let cache = self.deps.prompts.clone();
        // A cache miss runs espeak-ng (tens of ms): keep it off the other tasks' way.
        let render = move || cache.frames(&source);
        let rendered = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(render),
            _ => render(),
        };
        let frames = match rendered {
            Ok(f) => f,
            Err(e) => {
                fault("tts");
                tracing::warn!(error = %e, "prompt could not be rendered; skipped");
                if let Some(s) = self.session.as_mut() {
                    s.handle_event(
                        now,
                        Event::PromptFinished {
                            heard: Duration::ZERO,
                        },
                    );
                }
                return;
            }
        };
        self.prompt_seq += 1;
        let id = format!("p{}", self.prompt_seq);
        let barge_in = p.barge_in && !p.disclosure;
        let at_ms = self.at_ms(now);
        let node = self
            .session
            .as_ref()
            .map(|s| s.current_node().to_string())
            .unwrap_or_default();
        let duration_ms = frames.duration_ms();
        let mut index = 0;
        self.record(|r| {
            index = r.prompts.len();
            r.prompts.push(PromptRecord {
                at_ms,
                node,
                prompt: p.text.clone(),
                duration_ms,
                heard_ms: 0,
                barged_in: false,
            });
        });
        if let Some(t) = self.last_speech_end.take() {
            let turn = now.saturating_duration_since(t);
            metrics::histogram!("voicenav_turn_latency_seconds", "reply" => "prompt")
                .record(turn.as_secs_f64());
            tracing::info!(
                turn_ms = turn.as_millis() as u64,
                reply = "prompt",
                "turn latency"
            );
        }
        let prompt = player::Prompt::new(id.clone(), frames.bytes().to_vec(), barge_in);
        self.waiting.push_back(Queued {
            id,
            record: index,
            barge_in,
            stale: false,
            prompt: Some(prompt),
        });
        self.feed_player();
    }

    /// The recognition timer follows the oldest recognition in flight.
    fn arm_recognition_timer(&mut self) {
        match self.asr.front() {
            Some(j) => {
                self.timers.insert(CallTimer::Recognition, j.deadline);
            }
            None => {
                self.timers.remove(&CallTimer::Recognition);
            }
        }
    }

    /// Starts the next waiting prompt when the player is idle.
    fn feed_player(&mut self) {
        if self.current.is_some() {
            return;
        }
        let Some(p) = self.pipeline.as_mut() else {
            return;
        };
        if p.is_playing() {
            return;
        }
        if let Some(mut q) = self.waiting.pop_front() {
            if let Some(prompt) = q.prompt.take() {
                p.play(prompt);
            }
            self.current = Some(q);
        }
    }

    /// The caller's input moves the dialog on: prompts not yet started are dropped, an
    /// interruptible prompt stops now, a disclosure plays to its end.
    fn prompts_superseded(&mut self, now: Instant) {
        self.waiting.clear();
        if let Some(q) = self.current.as_mut() {
            q.stale = true;
            if q.barge_in {
                if let Some(p) = self.pipeline.as_mut() {
                    p.stop_prompt(now);
                }
            }
        }
    }

    /// A REFER or BYE waiting for prompts goes out once they have played.
    fn run_deferred(&mut self, now: Instant) {
        if self.deferred.is_none() {
            return;
        }
        let playing = self.current.is_some()
            || !self.waiting.is_empty()
            || self.pipeline.as_ref().is_some_and(|p| p.is_playing());
        let drained = self
            .timers
            .get(&CallTimer::PromptDrain)
            .is_some_and(|t| *t <= now);
        if playing && !drained {
            return;
        }
        self.timers.remove(&CallTimer::PromptDrain);
        match self.deferred.take() {
            Some(Deferred::Refer {
                queue,
                target,
                headers,
                scenario,
            }) => {
                if let Some(t) = self.last_speech_end.take() {
                    let turn = now.saturating_duration_since(t);
                    metrics::histogram!("voicenav_turn_latency_seconds", "reply" => "transfer")
                        .record(turn.as_secs_f64());
                    tracing::info!(
                        turn_ms = turn.as_millis() as u64,
                        reply = "transfer",
                        "turn latency"
                    );
                }
                let at_ms = self.at_ms(now);
                tracing::info!(%queue, %target, "transferring (REFER)");
                self.record(|r| {
                    r.queue = Some(queue);
                    r.scenario = scenario.clone();
                    r.transfer = Some(TransferRecord {
                        at_ms,
                        queue,
                        target: target.clone(),
                        result: TransferResult::Timeout,
                        sip_status: None,
                    });
                });
                let sip = self.sip.clone();
                let call = self.id.clone();
                tokio::spawn(async move {
                    sip.command(CallCommand::Refer {
                        call,
                        target,
                        headers,
                    })
                    .await;
                });
            }
            Some(Deferred::Hangup) => self.finish_by_us(now, EndCause::Flow),
            None => {}
        }
    }

    fn call_timers(&mut self, now: Instant) {
        let due: Vec<CallTimer> = self
            .timers
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| *k)
            .collect();
        for t in due {
            self.timers.remove(&t);
            match t {
                CallTimer::Ack => {
                    if self.stage == Stage::Answered {
                        fault("no_ack");
                        self.finish_by_us(now, EndCause::Fault("no_ack"));
                    }
                }
                CallTimer::RtpInactivity => {
                    if self.stage == Stage::Live && !self.held {
                        fault("rtp_timeout");
                        tracing::warn!("no RTP from the caller: ending the call");
                        self.finish_by_us(now, EndCause::Fault("rtp_timeout"));
                    } else if self.stage == Stage::Live {
                        self.timers.insert(
                            CallTimer::RtpInactivity,
                            now + self.deps.settings.rtp_timeout,
                        );
                    }
                }
                CallTimer::Recognition => {
                    if !self.asr.is_empty() {
                        fault("asr_timeout");
                        tracing::warn!("recogniser timed out; taken as no-match");
                        let node = self.asr.pop_front().map(|j| j.node).unwrap_or_default();
                        self.arm_recognition_timer();
                        let ms = self.deps.settings.recognition_timeout.as_millis() as u64;
                        self.classified(now, Transcript::default(), ms, &node);
                    }
                }
                CallTimer::PromptDrain => {
                    // run_deferred sends what waited; nothing else to do.
                    self.timers.insert(CallTimer::PromptDrain, now);
                    self.run_deferred(now);
                }
                CallTimer::Closing => {
                    self.stage = Stage::Done;
                }
                CallTimer::MaxDuration => {
                    fault("max_duration");
                    self.finish_by_us(now, EndCause::Fault("max_duration"));
                }
            }
        }
    }

    fn sip_event(&mut self, now: Instant, ev: CallEvent) {
        match ev {
            CallEvent::Established { .. } => self.established(now),
            CallEvent::CallerHangup { reason, .. } => {
                tracing::info!(?reason, "caller hung up");
                if reason == HangupReason::NoAck {
                    fault("no_ack");
                }
                if let Some(s) = self.session.as_mut() {
                    s.handle_event(now, Event::CallerHangup);
                }
                self.end.get_or_insert(EndCause::Caller(reason));
                self.stop_media(now);
                self.stage = Stage::Closing;
                self.timers
                    .insert(CallTimer::Closing, now + self.deps.settings.closing_timeout);
            }
            CallEvent::Dtmf { digit, .. } => {
                if let (Some(p), Some(d)) = (self.pipeline.as_mut(), Digit::from_char(digit)) {
                    p.handle_sip_info_digit(now, d);
                }
            }
            CallEvent::Hold { held, .. } => {
                self.held = held;
                if !held {
                    self.timers.insert(
                        CallTimer::RtpInactivity,
                        now + self.deps.settings.rtp_timeout,
                    );
                }
            }
            CallEvent::TransferProgress { code, .. } => {
                self.record(|r| {
                    if let Some(t) = r.transfer.as_mut() {
                        t.sip_status = Some(code);
                        if code == 202 {
                            t.result = TransferResult::Accepted;
                        }
                    }
                });
            }
            CallEvent::TransferResult { outcome, .. } => {
                let ok = outcome == TransferOutcome::Success;
                let (result, code, kind) = match outcome {
                    TransferOutcome::Success => (TransferResult::Completed, Some(200), ""),
                    TransferOutcome::Failed(c) => {
                        (TransferResult::Failed, Some(c), "transfer_failed")
                    }
                    TransferOutcome::Timeout => (TransferResult::Timeout, None, "transfer_timeout"),
                };
                if !kind.is_empty() {
                    fault(kind);
                    tracing::warn!(?outcome, "transfer failed; the flow's fallback runs");
                }
                self.record(|r| {
                    if let Some(t) = r.transfer.as_mut() {
                        t.result = result;
                        if code.is_some() {
                            t.sip_status = code;
                        }
                    }
                });
                if let Some(s) = self.session.as_mut() {
                    s.handle_event(now, Event::TransferResult { ok });
                }
                if ok {
                    self.transfer_done = true;
                    self.end.get_or_insert(EndCause::Transferred);
                    self.stop_media(now);
                    self.stage = Stage::Closing;
                    self.timers
                        .insert(CallTimer::Closing, now + self.deps.settings.closing_timeout);
                }
            }
            CallEvent::Closed { .. } => {
                if self.end.is_none() {
                    self.end = Some(if self.stage == Stage::Answered {
                        EndCause::Caller(HangupReason::Cancel)
                    } else {
                        EndCause::Caller(HangupReason::Bye)
                    });
                }
                if let Some(s) = self.session.as_mut() {
                    if !s.is_finished() {
                        s.handle_event(now, Event::CallerHangup);
                    }
                }
                self.stop_media(now);
                self.stage = Stage::Done;
            }
            // The codec was decided from the same offer in `answer` (sdp::answer).
            CallEvent::MediaAnswered { .. } => {}
            CallEvent::Incoming { .. } | CallEvent::Registration { .. } => {}
        }
    }

    /// We end the call: BYE (or 480 before the ACK), then wait for `Closed`.
    fn finish_by_us(&mut self, now: Instant, cause: EndCause) {
        if self.stage == Stage::Closing || self.stage == Stage::Done {
            return;
        }
        self.end.get_or_insert(cause);
        self.stop_media(now);
        if let Some(s) = self.session.as_mut() {
            if !s.is_finished() {
                s.handle_event(now, Event::CallerHangup);
            }
        }
        let sip = self.sip.clone();
        let call = self.id.clone();
        tokio::spawn(async move {
            sip.command(CallCommand::Hangup { call }).await;
        });
        self.stage = Stage::Closing;
        self.timers
            .insert(CallTimer::Closing, now + self.deps.settings.closing_timeout);
    }

    /// Flushes the media (utterance in progress, prompt reports) into the record.
    fn stop_media(&mut self, now: Instant) {
        if let Some(p) = self.pipeline.as_mut() {
            p.finish(now);
            let mut ended = Vec::new();
            while let Some(e) = p.poll_event() {
                if let MediaEvent::PromptEnded { report, barge_in } = e {
                    ended.push((report, barge_in));
                }
            }
            while let Some((l, r)) = p.poll_recorded() {
                if let Some(rec) = self.recorder.as_mut() {
                    let _ = rec.write(&l, &r);
                }
            }
            for (report, barge_in) in ended {
                if let Some(q) = self.current.take() {
                    let heard_ms = report.heard.as_millis() as u64;
                    self.record(|r| {
                        if let Some(p) = r.prompts.get_mut(q.record) {
                            p.heard_ms = heard_ms;
                            p.barged_in = barge_in.is_some();
                        }
                    });
                }
            }
            if let Some(p) = self.pipeline.as_ref() {
                let rx = p.session().rx_stats();
                let jitter = p.session().jitter_stats();
                metrics::counter!("voicenav_rtp_packets_received_total").increment(rx.packets);
                metrics::counter!("voicenav_rtp_packets_lost_total").increment(jitter.lost);
                metrics::histogram!("voicenav_rtp_jitter_seconds").record(rx.jitter / 8000.0);
            }
            if self.bad_rtp > 0 {
                metrics::counter!("voicenav_rtp_bad_datagrams_total").increment(self.bad_rtp);
            }
        }
        self.pipeline = None;
        if let Some(rec) = self.recorder.take() {
            match rec.finish() {
                Ok(path) => self.record(|r| r.recording = Some(path)),
                Err(e) => tracing::warn!(error = %e, "could not finish the recording"),
            }
        }
        self.asr.clear();
        self.timers.remove(&CallTimer::RtpInactivity);
        self.timers.remove(&CallTimer::Recognition);
        self.timers.remove(&CallTimer::PromptDrain);
    }

    /// Writes the record, hands the snapshot to the resume hook, frees the port.
    async fn wrap_up(&mut self) {
        let now = Instant::now();
        self.stop_media(now);
        let outcome = self.session.as_ref().and_then(|s| s.outcome().cloned());
        let cause = self.end.clone().unwrap_or(EndCause::Flow);
        let routed_first =
            self.first_input_routed == Some(true) && self.transfer_done && self.inputs == 1;
        self.record(|r| {
            r.end = Utc::now();
            r.routed_on_first_utterance = routed_first;
            r.outcome = match (&cause, self.transfer_done) {
                (_, true) => records::Outcome::Transferred,
                (EndCause::Shutdown, _) => records::Outcome::Shutdown,
                (EndCause::Fault(_), _) => records::Outcome::Error,
                (EndCause::Caller(HangupReason::Cancel | HangupReason::NoAck), _)
                    if r.prompts.is_empty() =>
                {
                    records::Outcome::Unanswered
                }
                (EndCause::Caller(_), _) => records::Outcome::Abandoned,
                (EndCause::Flow, _) => records::Outcome::Hangup,
                (EndCause::Transferred, _) => records::Outcome::Transferred,
            };
            if let EndCause::Fault(k) = cause {
                r.reason = Some(k.to_string());
            }
            if let Some(Outcome::Transferred {
                queue, scenario, ..
            }) = &outcome
            {
                r.queue = Some(*queue);
                if scenario.is_some() {
                    r.scenario = scenario.clone();
                }
            }
        });
        write_record(&self.deps.records, &self.slot).await;
        if let (Some(hook), Some(s)) = (self.deps.resume.clone(), self.session.as_ref()) {
            let snapshot = s.snapshot();
            let finished = self.transfer_done || matches!(cause, EndCause::Flow);
            hook.store(&self.caller, snapshot, finished).await;
        }
        self.socket = None;
        self.release_port();
        tracing::info!(outcome = ?self.end, "call ended");
    }

    fn release_port(&mut self) {
        if let Some(port) = self.port.take() {
            if let Ok(mut pool) = self.deps.ports.lock() {
                pool.release(port);
            }
        }
    }
}

impl Drop for CallTask {
    fn drop(&mut self) {
        // A panicking task still gives its port back.
        self.release_port();
    }
}

async fn recv_opt(s: &Option<UdpSocket>, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    match s {
        Some(s) => s.recv_from(buf).await.ok(),
        None => std::future::pending().await,
    }
}

async fn asr_wait(jobs: &mut VecDeque<AsrJob>) -> Result<Transcript, AsrError> {
    match jobs.front_mut() {
        Some(j) => (&mut j.pending).await,
        None => std::future::pending().await,
    }
}
