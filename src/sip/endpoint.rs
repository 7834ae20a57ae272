//! The sans-IO SIP endpoint: a UAS for inbound calls from trunks (RFC 3261 §8.2, §12–§17),
//! transfer by REFER (RFC 3515), trunk registration, inbound ACL and overload control.
//!
//! It owns the transaction machines, the calls (one INVITE dialog each) and the trunk
//! registrations, and talks to the outside only through plain values:
//! [`Endpoint::handle_input`] (bytes from a peer), [`Endpoint::handle_command`] (what the
//! call layer decided), [`Endpoint::handle_timeout`]; and [`Endpoint::poll_transmit`],
//! [`Endpoint::poll_event`], [`Endpoint::poll_timeout`]. See the module doc of
//! [`crate::sip`] for the drain loop a driver runs.
//!
//! Behaviour in short: INVITE → 100 Trying, then the call layer answers (200 with the SDP
//! answer; 488 when the offer has no PCMU/PCMA, decided here before the call layer hears of
//! it); ACK → `Established`; BYE → 200 + `CallerHangup`; CANCEL before the answer → 200 +
//! 487; re-INVITE → 200 with a fresh answer (hold mirrored); OPTIONS → 200 with
//! Allow/Accept; INFO `application/dtmf-relay` → 200 + `Dtmf`; unknown methods → 501;
//! parseable-but-bad → 400 (or 416/420/483/505) with a reason; unparseable → dropped and
//! counted. Responses follow RFC 3581 (`received`/`rport`) and go back over the flow the
//! request came on; in-dialog requests we send go to that same flow (symmetric signalling).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::admission::{Acl, Admission, RateLimiter};
use super::dialog::{Dialog, DialogState};
use super::message::{self, Message, Method, NameAddr, SipUri, Via};
use super::registration::{Registration, RegistrationConfig, RegistrationStatus};
use super::transaction::{
    InviteServer, InviteServerState, NonInviteClient, NonInviteServer, Timer, TimerConfig,
    TransactionKey, TxEvent, MAGIC_COOKIE,
};
use super::transfer::sipfrag_status;
use crate::sdp::{self, LocalMedia, SessionDescription};

/// Methods we accept (the `Allow` header).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY";
/// Bodies we accept (the `Accept` header).
pub const ACCEPT: &str = "application/sdp, application/dtmf-relay, message/sipfrag";

/// The Call-ID of one call: the id every layer uses for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub String);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// The other end of a flow: transport and socket address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
}

/// Bytes for the driver to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub peer: Peer,
    pub payload: Vec<u8>,
}

/// Why the caller's side ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupReason {
    Bye,
    Cancel,
    /// Our 200 was never ACKed (Timer H); we sent BYE.
    NoAck,
}

/// How a REFER ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferOutcome {
    /// NOTIFY with a 2xx sipfrag: the caller is connected to the queue; we sent BYE.
    Success,
    /// The REFER was rejected, or a NOTIFY reported a failure (the status code).
    Failed(u16),
    /// No final NOTIFY (or no REFER response) in time.
    Timeout,
}

/// What the endpoint tells the call layer.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// A new call passed ACL and overload checks; answer with [`CallCommand::Answer`].
    Incoming {
        call: CallId,
        /// The From header as received.
        from: String,
        /// The caller's number (user part of the From URI).
        ani: String,
        /// The dialled URI (To).
        to: String,
        remote_sdp: Option<SessionDescription>,
        remote_rtp: Option<SocketAddr>,
        peer: Peer,
    },
    /// We answered an SDP offer (initial INVITE or re-INVITE): codec, telephone-event
    /// payload type and the peer's RTP address for the media pipeline
    /// (`media::PipelineConfig::for_answer`).
    MediaAnswered {
        call: CallId,
        answer: crate::sdp::Answer,
    },
    /// The caller ACKed our 200: media may flow.
    Established { call: CallId },
    /// The caller ended the call (BYE, CANCEL) or never ACKed it.
    CallerHangup { call: CallId, reason: HangupReason },
    /// A keypad press by SIP INFO (application/dtmf-relay).
    Dtmf {
        call: CallId,
        digit: char,
        duration_ms: u32,
    },
    /// A re-INVITE put the call on hold or took it off (answered already).
    Hold { call: CallId, held: bool },
    /// A REFER response or NOTIFY sipfrag status (100, 180, 202 …).
    TransferProgress { call: CallId, code: u16 },
    TransferResult {
        call: CallId,
        outcome: TransferOutcome,
    },
    /// The call is gone from the endpoint (any reason): release its resources.
    Closed { call: CallId },
    /// A trunk registration changed state.
    Registration {
        trunk: String,
        status: RegistrationStatus,
    },
}

/// What the call layer tells the endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum CallCommand {
    /// 180 Ringing.
    Ring { call: CallId },
    /// 200 OK with the SDP answer built from `media` (the endpoint keeps it to answer
    /// re-INVITEs the same way).
    Answer { call: CallId, media: LocalMedia },
    /// A final error response (4xx–6xx) to an unanswered call.
    Reject { call: CallId, code: u16 },
    /// End the call: BYE when answered, 480 before.
    Hangup { call: CallId },
    /// Transfer the caller: REFER in the call's dialog with `Refer-To: <target>` and the
    /// extra (context) headers.
    Refer {
        call: CallId,
        target: String,
        headers: Vec<(String, String)>,
    },
}

/// Everything the endpoint needs to know, resolved (no IO).
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub timers: TimerConfig,
    /// Host written into Via and Contact.
    pub host: String,
    pub udp_port: u16,
    pub tcp_port: u16,
    pub user_agent: String,
    pub max_calls: usize,
    pub max_calls_per_second: u32,
    /// Ceiling of live server transactions; beyond it requests get a stateless 503.
    pub max_transactions: usize,
    pub acl: Acl,
    pub registrations: Vec<RegistrationConfig>,
    /// How long a REFER may take to reach a final NOTIFY.
    pub transfer_timeout: Duration,
    pub seed: u64,
}

impl EndpointConfig {
    /// Loopback defaults for tests: open ACL, generous limits.
    pub fn loopback(udp_port: u16) -> EndpointConfig {
        EndpointConfig {
            timers: TimerConfig::default(),
            host: "127.0.0.1".into(),
            udp_port,
            tcp_port: udp_port,
            user_agent: "voicenav".into(),
            max_calls: 1000,
            max_calls_per_second: 1000,
            max_transactions: 100_000,
            acl: Acl::open(),
            registrations: Vec::new(),
            transfer_timeout: Duration::from_secs(32),
            seed: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// INVITE received, not answered.
    Offered,
    /// 200 sent, waiting for the ACK.
    Answered,
    Confirmed,
    /// We sent BYE.
    Ending,
}

#[derive(Debug)]
struct Call {
    invite: Message,
    invite_key: TransactionKey,
    peer: Peer,
    dialog: Dialog,
    state: CallState,
    offer: Option<SessionDescription>,
    media: Option<LocalMedia>,
    /// The INVITE (initial or re-INVITE) whose 2xx awaits an ACK: CSeq number and tx key.
    ack_pending: Option<(u32, TransactionKey)>,
    /// Deadline of a REFER in progress.
    refer_deadline: Option<Instant>,
}

#[derive(Debug)]
enum ServerTx {
    Invite(InviteServer),
    NonInvite(NonInviteServer),
}

#[derive(Debug)]
struct ServerEntry {
    tx: ServerTx,
    /// Where responses go (RFC 3261 §18.2.2 / RFC 3581).
    dest: Peer,
    call: Option<CallId>,
}

#[derive(Debug, Clone)]
enum Purpose {
    Bye(CallId),
    Refer(CallId),
    Register(usize),
}

#[derive(Debug)]
struct ClientEntry {
    tx: NonInviteClient,
    dest: Peer,
    purpose: Purpose,
}

/// Who owns a deadline in the timer heap. Entries are lazily invalidated: a popped entry
/// just makes its owner check its own deadlines.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    Server(TransactionKey),
    Client(String),
    Call(CallId),
    Registration(usize),
}

/// Counters the endpoint keeps (also exported as metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub dropped: u64,
    pub bad_requests: u64,
    pub acl_rejected: u64,
    pub overload_rejected: u64,
    pub calls_offered: u64,
}

pub struct Endpoint {
    cfg: EndpointConfig,
    rng: StdRng,
    server: HashMap<TransactionKey, ServerEntry>,
    client: HashMap<String, ClientEntry>,
    calls: HashMap<CallId, Call>,
    registrations: Vec<Registration>,
    /// The last status reported per registration (events only on change).
    reported: Vec<Option<RegistrationStatus>>,
    rate: RateLimiter,
    timers: BinaryHeap<Reverse<(Instant, Owner)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<CallEvent>,
    stats: Stats,
    last_now: Option<Instant>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("calls", &self.calls.len())
            .field("server_transactions", &self.server.len())
            .field("client_transactions", &self.client.len())
            .finish_non_exhaustive()
    }
}

fn count(name: &'static str, label: &'static str, value: String) {
    metrics::counter!(name, label => value).increment(1);
}

impl Endpoint {
    pub fn new(now: Instant, cfg: EndpointConfig) -> Endpoint {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let contact = format!("sip:voicenav@{}:{}", cfg.host, cfg.udp_port);
        let registrations: Vec<Registration> = cfg
            .registrations
            .iter()
            .map(|r| {
                Registration::new(
                    now,
                    r.clone(),
                    contact.clone(),
                    [rng.random(), rng.random(), rng.random()],
                )
            })
            .collect();
        let rate = RateLimiter::new(cfg.max_calls_per_second);
        let reported = vec![None; registrations.len()];
        let mut ep = Endpoint {
            cfg,
            rng,
            server: HashMap::new(),
            client: HashMap::new(),
            calls: HashMap::new(),
            registrations,
            reported,
            rate,
            timers: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            last_now: None,
        };
        for i in 0..ep.registrations.len() {
            ep.schedule(Owner::Registration(i), Some(now));
        }
        ep
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// (trunk, status) of every registration.
    pub fn registrations(&self) -> Vec<(String, RegistrationStatus)> {
        self.registrations
            .iter()
            .map(|r| (r.trunk().to_string(), r.status().clone()))
            .collect()
    }

    /// Monotonic guard: a `now` earlier than one already seen is replaced by it.
    fn clock(&mut self, now: Instant) -> Instant {
        let now = match self.last_now {
            Some(last) if now < last => last,
            _ => now,
        };
        self.last_now = Some(now);
        now
    }

    // ---- outputs -------------------------------------------------------------------

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    /// The earliest deadline (possibly of an entry that turns out stale: waking early is
    /// harmless, late never happens).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    fn schedule(&mut self, owner: Owner, at: Option<Instant>) {
        if let Some(t) = at {
            self.timers.push(Reverse((t, owner)));
        }
    }

    // ---- inputs --------------------------------------------------------------------

    /// Bytes received from `peer` (one datagram or one TCP frame).
    pub fn handle_input(&mut self, now: Instant, peer: Peer, bytes: &[u8]) {
        let now = self.clock(now);
        let msg = match message::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.drop_message(peer, &e.to_string(), "unparseable");
                return;
            }
        };
        if msg.is_request() {
            self.handle_request(now, peer, msg);
        } else {
            self.handle_response(now, msg);
        }
    }

    fn drop_message(&mut self, peer: Peer, why: &str, reason: &'static str) {
        self.stats.dropped += 1;
        metrics::counter!("voicenav_sip_dropped_total", "reason" => reason).increment(1);
        tracing::debug!(peer = %peer.addr, transport = peer.transport.as_str(), why, "dropped SIP message");
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock(now);
        while let Some(Reverse((t, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((_, owner))) = self.timers.pop() else {
                break;
            };
            match owner {
                Owner::Server(key) => {
                    if let Some(e) = self.server.get_mut(&key) {
                        match &mut e.tx {
                            ServerTx::Invite(tx)
                                if tx.poll_timeout().is_some_and(|(d, _)| d <= now) =>
                            {
                                tx.handle_timeout(now)
                            }
                            ServerTx::NonInvite(tx)
                                if tx.poll_timeout().is_some_and(|(d, _)| d <= now) =>
                            {
                                tx.handle_timeout(now)
                            }
                            _ => continue,
                        }
                        self.drain_server(now, &key);
                    }
                }
                Owner::Client(branch) => {
                    if let Some(e) = self.client.get_mut(&branch) {
                        if e.tx.poll_timeout().is_some_and(|(d, _)| d <= now) {
                            e.tx.handle_timeout(now);
                            self.drain_client(now, &branch);
                        }
                    }
                }
                Owner::Call(id) => self.call_timeout(now, &id),
                Owner::Registration(i) => {
                    if let Some(r) = self.registrations.get_mut(i) {
                        if r.poll_timeout().is_some_and(|d| d <= now) {
                            r.handle_timeout(now);
                            self.drain_registration(now, i);
                        }
                    }
                }
            }
        }
    }

    pub fn handle_command(&mut self, now: Instant, cmd: CallCommand) {
        let now = self.clock(now);
        match cmd {
            CallCommand::Ring { call } => {
                if let Some(c) = self
                    .calls
                    .get(&call)
                    .filter(|c| c.state == CallState::Offered)
                {
                    let (key, mut resp) = (
                        c.invite_key.clone(),
                        self.dialog_response(c, 180, "Ringing"),
                    );
                    resp.push_header("Contact", self.contact(c.peer.transport));
                    self.send_response(now, &key, 180, resp);
                }
            }
            CallCommand::Answer { call, media } => self.answer(now, &call, media),
            CallCommand::Reject { call, code } => {
                let code = if (300..700).contains(&code) {
                    code
                } else {
                    500
                };
                if let Some(c) = self
                    .calls
                    .get(&call)
                    .filter(|c| c.state == CallState::Offered)
                {
                    let (key, resp) = (
                        c.invite_key.clone(),
                        self.dialog_response(c, code, reason_phrase(code)),
                    );
                    self.send_response(now, &key, code, resp);
                    self.close_call(&call);
                }
            }
            CallCommand::Hangup { call } => self.hangup(now, &call),
            CallCommand::Refer {
                call,
                target,
                headers,
            } => self.refer(now, &call, &target, &headers),
        }
    }

    // ---- requests ------------------------------------------------------------------

    fn handle_request(&mut self, now: Instant, peer: Peer, mut msg: Message) {
        let method = msg
            .method()
            .cloned()
            .unwrap_or(Method::Other(String::new()));
        count(
            "voicenav_sip_requests_total",
            "method",
            method.as_str().chars().take(16).collect(),
        );
        let Some(via) = msg.top_via() else {
            self.drop_message(peer, "no usable Via to answer to", "no_via");
            return;
        };
        let dest = patch_via(&mut msg, &via, peer);
        if let Err(rej) = msg.check_request() {
            self.stats.bad_requests += 1;
            tracing::info!(peer = %peer.addr, code = rej.code, reason = %rej.reason, "bad request");
            if method != Method::Ack {
                let mut resp = Message::response_to(&msg, rej.code, &rej.reason, Some(&self.tag()));
                if rej.code == 420 {
                    resp.push_header(
                        "Unsupported",
                        rej.reason.trim_start_matches("Bad Extension: "),
                    );
                }
                self.send_stateless(dest, resp);
            }
            return;
        }
        let Some(key) = TransactionKey::of(&msg) else {
            self.drop_message(peer, "no transaction key", "no_key");
            return;
        };
        match method {
            Method::Ack => self.handle_ack(now, msg, &key),
            Method::Cancel => self.handle_cancel(now, dest, msg, key),
            _ => {
                if let Some(entry) = self.server.get_mut(&key) {
                    match &mut entry.tx {
                        ServerTx::Invite(tx) => tx.handle_request(now),
                        ServerTx::NonInvite(tx) => tx.handle_request(now),
                    }
                    self.drain_server(now, &key);
                    return;
                }
                if self.server.len() >= self.cfg.max_transactions {
                    self.stats.overload_rejected += 1;
                    let mut resp =
                        Message::response_to(&msg, 503, "Service Unavailable", Some(&self.tag()));
                    resp.push_header("Retry-After", "5");
                    self.send_stateless(dest, resp);
                    return;
                }
                if msg.to_tag().is_some() {
                    self.in_dialog(now, dest, msg, key, method);
                } else {
                    self.out_of_dialog(now, dest, msg, key, method);
                }
            }
        }
    }

    fn new_server(&mut self, key: &TransactionKey, dest: Peer, invite: bool, call: Option<CallId>) {
        let reliable = dest.transport.is_reliable();
        let tx = if invite {
            ServerTx::Invite(InviteServer::new(self.cfg.timers, reliable))
        } else {
            ServerTx::NonInvite(NonInviteServer::new(self.cfg.timers, reliable))
        };
        self.server
            .insert(key.clone(), ServerEntry { tx, dest, call });
    }

    /// A response through the server transaction `key` (created non-INVITE if missing).
    fn respond(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        req: &Message,
        code: u16,
        reason: &str,
        extra: &[(&str, String)],
    ) {
        let mut resp = Message::response_to(req, code, reason, Some(&self.tag()));
        for (k, v) in extra {
            resp.push_header(k, v.clone());
        }
        self.send_response(now, key, code, resp);
    }

    fn send_response(&mut self, now: Instant, key: &TransactionKey, code: u16, mut resp: Message) {
        resp.push_header("Server", self.cfg.user_agent.clone());
        count("voicenav_sip_responses_total", "code", code.to_string());
        let bytes = resp.to_bytes();
        if let Some(entry) = self.server.get_mut(key) {
            match &mut entry.tx {
                ServerTx::Invite(tx) => tx.send_response(now, code, bytes),
                ServerTx::NonInvite(tx) => tx.send_response(now, code, bytes),
            }
            self.drain_server(now, key);
        }
    }

    fn send_stateless(&mut self, dest: Peer, mut resp: Message) {
        resp.push_header("Server", self.cfg.user_agent.clone());
        if let Some(code) = resp.code() {
            count("voicenav_sip_responses_total", "code", code.to_string());
        }
        self.transmits.push_back(Transmit {
            peer: dest,
            payload: resp.to_bytes(),
        });
    }

    fn out_of_dialog(
        &mut self,
        now: Instant,
        dest: Peer,
        msg: Message,
        key: TransactionKey,
        method: Method,
    ) {
        match method {
            Method::Invite => self.new_invite(now, dest, msg, key),
            Method::Options => {
                self.new_server(&key, dest, false, None);
                let extra = [
                    ("Allow", ALLOW.to_string()),
                    ("Accept", ACCEPT.to_string()),
                    ("Supported", "norefersub".into()),
                ];
                self.respond(now, &key, &msg, 200, "OK", &extra);
            }
            Method::Bye
            | Method::Info
            | Method::Notify
            | Method::Refer
            | Method::Update
            | Method::Prack => {
                self.new_server(&key, dest, false, None);
                self.respond(now, &key, &msg, 481, "Call/Transaction Does Not Exist", &[]);
            }
            Method::Register | Method::Subscribe | Method::Message => {
                self.new_server(&key, dest, false, None);
                self.respond(
                    now,
                    &key,
                    &msg,
                    405,
                    "Method Not Allowed",
                    &[("Allow", ALLOW.into())],
                );
            }
            Method::Other(_) => {
                self.new_server(&key, dest, false, None);
                self.respond(
                    now,
                    &key,
                    &msg,
                    501,
                    "Not Implemented",
                    &[("Allow", ALLOW.into())],
                );
            }
            Method::Ack | Method::Cancel => {}
        }
    }

    fn new_invite(&mut self, now: Instant, dest: Peer, msg: Message, key: TransactionKey) {
        self.new_server(&key, dest, true, None);
        self.respond(now, &key, &msg, 100, "Trying", &[]);
        let call_id = CallId(msg.call_id().unwrap_or_default().to_string());
        if self.calls.contains_key(&call_id) {
            // Same Call-ID, new branch, no To tag: a loop or a fork we cannot tell apart.
            self.respond(now, &key, &msg, 482, "Loop Detected", &[]);
            return;
        }
        if self.calls.len() >= self.cfg.max_calls {
            self.stats.overload_rejected += 1;
            metrics::counter!("voicenav_sip_overload_rejected_total", "limit" => "max_calls")
                .increment(1);
            self.respond(
                now,
                &key,
                &msg,
                503,
                "Service Unavailable",
                &[("Retry-After", "5".into())],
            );
            return;
        }
        if !self.rate.take(now) {
            self.stats.overload_rejected += 1;
            metrics::counter!("voicenav_sip_overload_rejected_total", "limit" => "calls_per_second").increment(1);
            self.respond(
                now,
                &key,
                &msg,
                503,
                "Service Unavailable",
                &[("Retry-After", "1".into())],
            );
            return;
        }
        let random = self.rng.random();
        match self.cfg.acl.check(dest.addr.ip(), &msg, random) {
            Admission::Allowed => {}
            Admission::Challenge(challenges) => {
                self.stats.acl_rejected += 1;
                metrics::counter!("voicenav_sip_acl_rejected_total", "action" => "challenge")
                    .increment(1);
                tracing::info!(peer = %dest.addr, "INVITE from outside the trunk networks: digest challenge");
                let extra: Vec<(&str, String)> = challenges
                    .into_iter()
                    .map(|c| ("WWW-Authenticate", c))
                    .collect();
                self.respond(now, &key, &msg, 401, "Unauthorized", &extra);
                return;
            }
            Admission::Forbidden => {
                self.stats.acl_rejected += 1;
                metrics::counter!("voicenav_sip_acl_rejected_total", "action" => "forbidden")
                    .increment(1);
                tracing::warn!(peer = %dest.addr, "INVITE from outside every trunk's networks: 403");
                self.respond(now, &key, &msg, 403, "Forbidden", &[]);
                return;
            }
        }
        let offer = if msg.body.is_empty() {
            None
        } else {
            let is_sdp = msg
                .content_type()
                .is_none_or(|ct| ct.to_ascii_lowercase().starts_with("application/sdp"));
            if !is_sdp {
                self.respond(
                    now,
                    &key,
                    &msg,
                    415,
                    "Unsupported Media Type",
                    &[("Accept", "application/sdp".into())],
                );
                return;
            }
            match SessionDescription::parse(&msg.body) {
                Ok(o) => Some(o),
                Err(e) => {
                    self.stats.bad_requests += 1;
                    self.respond(now, &key, &msg, 400, &format!("Bad SDP: {e}"), &[]);
                    return;
                }
            }
        };
        if let Some(o) = &offer {
            let probe = LocalMedia {
                address: std::net::Ipv4Addr::LOCALHOST.into(),
                rtp_port: 0,
                session_id: 0,
                version: 0,
            };
            if sdp::answer(o, &probe).is_err() {
                self.respond(
                    now,
                    &key,
                    &msg,
                    488,
                    "Not Acceptable Here",
                    &[(
                        "Warning",
                        "304 voicenav \"no common codec: PCMU, PCMA\"".into(),
                    )],
                );
                return;
            }
        }
        let local_tag = self.tag();
        let dialog = match Dialog::uas(&msg, &local_tag) {
            Ok(d) => d,
            Err(e) => {
                self.respond(now, &key, &msg, 400, &format!("Bad Request: {e}"), &[]);
                return;
            }
        };
        let from = msg.header("From").unwrap_or_default().to_string();
        let ani = NameAddr::parse(&from)
            .and_then(|n| {
                SipUri::parse(&n.uri)
                    .and_then(|u| u.user)
                    .or_else(|| n.uri.strip_prefix("tel:").map(str::to_string))
            })
            .unwrap_or_default();
        let to = msg
            .header("To")
            .and_then(NameAddr::parse)
            .map(|n| n.uri)
            .unwrap_or_default();
        if let Some(e) = self.server.get_mut(&key) {
            e.call = Some(call_id.clone());
        }
        let remote_rtp = offer.as_ref().and_then(|o| o.rtp_addr());
        self.events.push_back(CallEvent::Incoming {
            call: call_id.clone(),
            from,
            ani,
            to,
            remote_sdp: offer.clone(),
            remote_rtp,
            peer: dest,
        });
        self.calls.insert(
            call_id,
            Call {
                invite: msg,
                invite_key: key,
                peer: dest,
                dialog,
                state: CallState::Offered,
                offer,
                media: None,
                ack_pending: None,
                refer_deadline: None,
            },
        );
        self.stats.calls_offered += 1;
        metrics::gauge!("voicenav_sip_calls_active").set(self.calls.len() as f64);
    }

    fn in_dialog(
        &mut self,
        now: Instant,
        dest: Peer,
        msg: Message,
        key: TransactionKey,
        method: Method,
    ) {
        let call_id = CallId(msg.call_id().unwrap_or_default().to_string());
        let is_invite = method == Method::Invite;
        self.new_server(&key, dest, is_invite, Some(call_id.clone()));
        let cseq = msg.cseq().map(|(n, _)| n).unwrap_or(0);
        let ok = match self.calls.get_mut(&call_id) {
            Some(c) if c.dialog.matches(&msg) => {
                if c.dialog.accept_remote_cseq(cseq, &method) {
                    Ok(())
                } else {
                    Err((500, "CSeq Out of Order"))
                }
            }
            _ => Err((481, "Call/Transaction Does Not Exist")),
        };
        if let Err((code, reason)) = ok {
            self.respond(now, &key, &msg, code, reason, &[]);
            return;
        }
        match method {
            Method::Bye => {
                self.respond(now, &key, &msg, 200, "OK", &[]);
                self.stop_2xx_retransmissions(now, &call_id);
                self.events.push_back(CallEvent::CallerHangup {
                    call: call_id.clone(),
                    reason: HangupReason::Bye,
                });
                self.close_call(&call_id);
            }
            Method::Invite => self.reinvite(now, &call_id, msg, key),
            Method::Info => {
                let ct = msg.content_type().unwrap_or("").to_ascii_lowercase();
                if ct.starts_with("application/dtmf-relay") || ct.starts_with("application/dtmf") {
                    match parse_dtmf_relay(&msg.body) {
                        Some((digit, duration_ms)) => {
                            self.respond(now, &key, &msg, 200, "OK", &[]);
                            self.events.push_back(CallEvent::Dtmf {
                                call: call_id,
                                digit,
                                duration_ms,
                            });
                        }
                        None => self.respond(now, &key, &msg, 400, "Bad DTMF relay body", &[]),
                    }
                } else if msg.body.is_empty() {
                    self.respond(now, &key, &msg, 200, "OK", &[]);
                } else {
                    self.respond(
                        now,
                        &key,
                        &msg,
                        415,
                        "Unsupported Media Type",
                        &[("Accept", "application/dtmf-relay".into())],
                    );
                }
            }
            Method::Notify => self.notify(now, &call_id, msg, key),
            Method::Options => {
                let extra = [("Allow", ALLOW.to_string()), ("Accept", ACCEPT.to_string())];
                self.respond(now, &key, &msg, 200, "OK", &extra);
            }
            Method::Other(_) => self.respond(
                now,
                &key,
                &msg,
                501,
                "Not Implemented",
                &[("Allow", ALLOW.into())],
            ),
            _ => self.respond(
                now,
                &key,
                &msg,
                405,
                "Method Not Allowed",
                &[("Allow", ALLOW.into())],
            ),
        }
    }

    fn reinvite(&mut self, now: Instant, call_id: &CallId, msg: Message, key: TransactionKey) {
        self.respond(now, &key, &msg, 100, "Trying", &[]);
        let Some(mut media) = self.calls.get(call_id).and_then(|c| c.media.clone()) else {
            // Not answered yet: a re-INVITE cannot overlap the initial one (RFC 3261 §14.2).
            self.respond(now, &key, &msg, 491, "Request Pending", &[]);
            return;
        };
        media.version += 1;
        let offer = if msg.body.is_empty() {
            None
        } else {
            SessionDescription::parse(&msg.body).ok()
        };
        if !msg.body.is_empty() && offer.is_none() {
            self.respond(now, &key, &msg, 400, "Bad SDP", &[]);
            return;
        }
        let (body, negotiated) = match &offer {
            Some(o) => match sdp::answer(o, &media) {
                Ok(a) => (a.sdp.clone(), Some(a)),
                Err(_) => {
                    self.respond(now, &key, &msg, 488, "Not Acceptable Here", &[]);
                    return;
                }
            },
            None => (sdp::offer(&media), None),
        };
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        call.media = Some(media);
        let held = offer.as_ref().map(|o| o.is_hold());
        if let Some(o) = offer {
            call.offer = Some(o);
        }
        // A re-INVITE may refresh the remote target (§12.2.2).
        if let Some(c) = msg
            .header_values("Contact")
            .first()
            .and_then(|c| NameAddr::parse(c))
        {
            call.dialog.remote_target = c.uri;
        }
        let cseq = msg.cseq().map(|(n, _)| n).unwrap_or(0);
        call.ack_pending = Some((cseq, key.clone()));
        let transport = call.peer.transport;
        let mut resp = Message::response_to(&msg, 200, "OK", Some(&call.dialog.local_tag));
        resp.push_header("Contact", self.contact(transport));
        resp.push_header("Allow", ALLOW);
        resp.push_header("Content-Type", "application/sdp");
        resp.body = body.into_bytes();
        self.send_response(now, &key, 200, resp);
        if let Some(answer) = negotiated {
            self.events.push_back(CallEvent::MediaAnswered {
                call: call_id.clone(),
                answer,
            });
        }
        if let Some(held) = held {
            self.events.push_back(CallEvent::Hold {
                call: call_id.clone(),
                held,
            });
        }
    }

    fn notify(&mut self, now: Instant, call_id: &CallId, msg: Message, key: TransactionKey) {
        let in_refer = self
            .calls
            .get(call_id)
            .is_some_and(|c| c.refer_deadline.is_some());
        let event_is_refer = msg
            .header("Event")
            .is_some_and(|e| e.trim().to_ascii_lowercase().starts_with("refer"));
        if !event_is_refer {
            self.respond(now, &key, &msg, 489, "Bad Event", &[]);
            return;
        }
        if !in_refer {
            self.respond(now, &key, &msg, 481, "Subscription Does Not Exist", &[]);
            return;
        }
        self.respond(now, &key, &msg, 200, "OK", &[]);
        let Some(code) = sipfrag_status(&msg.body) else {
            return;
        };
        self.events.push_back(CallEvent::TransferProgress {
            call: call_id.clone(),
            code,
        });
        if code >= 200 {
            if let Some(c) = self.calls.get_mut(call_id) {
                c.refer_deadline = None;
            }
            if code < 300 {
                self.events.push_back(CallEvent::TransferResult {
                    call: call_id.clone(),
                    outcome: TransferOutcome::Success,
                });
                self.hangup(now, call_id);
            } else {
                self.events.push_back(CallEvent::TransferResult {
                    call: call_id.clone(),
                    outcome: TransferOutcome::Failed(code),
                });
            }
        }
    }

    fn handle_ack(&mut self, now: Instant, msg: Message, key: &TransactionKey) {
        // ACK for a 3xx–6xx: same branch as the INVITE, absorbed by its transaction.
        if let Some(entry) = self.server.get_mut(key) {
            if let ServerTx::Invite(tx) = &mut entry.tx {
                if tx.state() == InviteServerState::Completed
                    || tx.state() == InviteServerState::Confirmed
                {
                    tx.handle_ack(now);
                    self.drain_server(now, key);
                    return;
                }
            }
        }
        // ACK for a 2xx: its own transaction, matched through the dialog.
        let call_id = CallId(msg.call_id().unwrap_or_default().to_string());
        let cseq = msg.cseq().map(|(n, _)| n).unwrap_or(0);
        let Some(call) = self
            .calls
            .get_mut(&call_id)
            .filter(|c| c.dialog.matches(&msg))
        else {
            return;
        };
        let Some((pending, tx_key)) = call.ack_pending.clone() else {
            return;
        };
        if pending != cseq {
            return;
        }
        call.ack_pending = None;
        let established = call.state == CallState::Answered;
        if established {
            call.state = CallState::Confirmed;
            call.dialog.state = DialogState::Confirmed;
        }
        if let Some(ServerEntry {
            tx: ServerTx::Invite(tx),
            ..
        }) = self.server.get_mut(&tx_key)
        {
            tx.handle_ack(now);
        }
        self.drain_server(now, &tx_key);
        if established {
            self.events
                .push_back(CallEvent::Established { call: call_id });
        }
    }

    fn handle_cancel(&mut self, now: Instant, dest: Peer, msg: Message, key: TransactionKey) {
        if let Some(entry) = self.server.get_mut(&key) {
            if let ServerTx::NonInvite(tx) = &mut entry.tx {
                tx.handle_request(now);
            }
            self.drain_server(now, &key);
            return;
        }
        self.new_server(&key, dest, false, None);
        let invite_key = key.invite_of_cancel();
        let target = self.server.get(&invite_key).map(|e| match &e.tx {
            ServerTx::Invite(tx) => (tx.state() == InviteServerState::Proceeding, e.call.clone()),
            ServerTx::NonInvite(_) => (false, None),
        });
        match target {
            None => self.respond(now, &key, &msg, 481, "Call/Transaction Does Not Exist", &[]),
            Some((pending, call)) => {
                self.respond(now, &key, &msg, 200, "OK", &[]);
                if !pending {
                    return; // Already answered: the CANCEL has no effect (§9.2).
                }
                let found = call.and_then(|id| {
                    self.calls.get(&id).map(|c| {
                        (
                            id.clone(),
                            self.dialog_response(c, 487, "Request Terminated"),
                        )
                    })
                });
                match found {
                    Some((id, resp)) => {
                        self.send_response(now, &invite_key, 487, resp);
                        self.events.push_back(CallEvent::CallerHangup {
                            call: id.clone(),
                            reason: HangupReason::Cancel,
                        });
                        self.close_call(&id);
                    }
                    None => {
                        // An INVITE still being screened (no call yet): answer 487 from the CANCEL.
                        let mut resp = Message::response_to(
                            &msg,
                            487,
                            "Request Terminated",
                            Some(&self.tag()),
                        );
                        resp.set_header(
                            "CSeq",
                            format!("{} INVITE", msg.cseq().map(|(n, _)| n).unwrap_or(0)),
                        );
                        self.send_response(now, &invite_key, 487, resp);
                    }
                }
            }
        }
    }

    // ---- commands ------------------------------------------------------------------

    fn answer(&mut self, now: Instant, call_id: &CallId, media: LocalMedia) {
        let Some(call) = self
            .calls
            .get_mut(call_id)
            .filter(|c| c.state == CallState::Offered)
        else {
            return;
        };
        let (body, negotiated) = match &call.offer {
            Some(o) => match sdp::answer(o, &media) {
                Ok(a) => (a.sdp.clone(), Some(a)),
                Err(_) => {
                    let (key, resp) = (
                        call.invite_key.clone(),
                        Message::response_to(
                            &call.invite,
                            488,
                            "Not Acceptable Here",
                            Some(&call.dialog.local_tag),
                        ),
                    );
                    self.send_response(now, &key, 488, resp);
                    self.close_call(call_id);
                    return;
                }
            },
            None => (sdp::offer(&media), None),
        };
        call.media = Some(media);
        call.state = CallState::Answered;
        let cseq = call.invite.cseq().map(|(n, _)| n).unwrap_or(0);
        call.ack_pending = Some((cseq, call.invite_key.clone()));
        let key = call.invite_key.clone();
        let transport = call.peer.transport;
        let mut resp = Message::response_to(&call.invite, 200, "OK", Some(&call.dialog.local_tag));
        resp.push_header("Contact", self.contact(transport));
        resp.push_header("Allow", ALLOW);
        resp.push_header("Supported", "norefersub");
        resp.push_header("Content-Type", "application/sdp");
        resp.body = body.into_bytes();
        self.send_response(now, &key, 200, resp);
        if let Some(answer) = negotiated {
            self.events.push_back(CallEvent::MediaAnswered {
                call: call_id.clone(),
                answer,
            });
        }
    }

    fn hangup(&mut self, now: Instant, call_id: &CallId) {
        let Some(call) = self.calls.get(call_id) else {
            return;
        };
        match call.state {
            CallState::Offered => {
                let (key, resp) = (
                    call.invite_key.clone(),
                    self.dialog_response(call, 480, "Temporarily Unavailable"),
                );
                self.send_response(now, &key, 480, resp);
                self.close_call(call_id);
            }
            CallState::Answered | CallState::Confirmed => {
                self.stop_2xx_retransmissions(now, call_id);
                self.send_in_dialog(
                    now,
                    call_id,
                    Method::Bye,
                    &[],
                    Purpose::Bye(call_id.clone()),
                );
                if let Some(c) = self.calls.get_mut(call_id) {
                    c.state = CallState::Ending;
                }
            }
            CallState::Ending => {}
        }
    }

    fn refer(
        &mut self,
        now: Instant,
        call_id: &CallId,
        target: &str,
        headers: &[(String, String)],
    ) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        if !matches!(call.state, CallState::Answered | CallState::Confirmed) {
            self.events.push_back(CallEvent::TransferResult {
                call: call_id.clone(),
                outcome: TransferOutcome::Failed(481),
            });
            return;
        }
        let deadline = now + self.cfg.transfer_timeout;
        call.refer_deadline = Some(deadline);
        let contact = self.contact_uri(Transport::Udp);
        let mut extra: Vec<(String, String)> = vec![
            ("Refer-To".into(), format!("<{target}>")),
            ("Referred-By".into(), format!("<{contact}>")),
        ];
        extra.extend(headers.iter().cloned());
        self.send_in_dialog(
            now,
            call_id,
            Method::Refer,
            &extra,
            Purpose::Refer(call_id.clone()),
        );
        self.schedule(Owner::Call(call_id.clone()), Some(deadline));
    }

    fn call_timeout(&mut self, now: Instant, call_id: &CallId) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        if call.refer_deadline.is_some_and(|d| d <= now) {
            call.refer_deadline = None;
            self.events.push_back(CallEvent::TransferResult {
                call: call_id.clone(),
                outcome: TransferOutcome::Timeout,
            });
        }
    }

    fn send_in_dialog(
        &mut self,
        now: Instant,
        call_id: &CallId,
        method: Method,
        extra: &[(String, String)],
        purpose: Purpose,
    ) {
        let contact = self.contact_uri(Transport::Udp);
        let branch = self.branch();
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let dest = call.peer;
        let mut req = call.dialog.request(method, &contact);
        let via = self.via(dest.transport, &branch);
        req.headers.insert(
            0,
            message::Header {
                name: "Via".into(),
                value: via,
            },
        );
        for (k, v) in extra {
            req.push_header(k, v.clone());
        }
        req.push_header("User-Agent", self.cfg.user_agent.clone());
        let tx = NonInviteClient::new(
            now,
            self.cfg.timers,
            dest.transport.is_reliable(),
            req.to_bytes(),
        );
        self.client
            .insert(branch.clone(), ClientEntry { tx, dest, purpose });
        self.drain_client(now, &branch);
    }

    // ---- responses -----------------------------------------------------------------

    fn handle_response(&mut self, now: Instant, msg: Message) {
        let branch = msg.top_via().and_then(|v| v.branch().map(str::to_string));
        match branch.filter(|b| self.client.contains_key(b)) {
            Some(b) => {
                if let Some(e) = self.client.get_mut(&b) {
                    e.tx.handle_response(now, msg);
                }
                self.drain_client(now, &b);
            }
            None => {
                self.stats.dropped += 1;
                metrics::counter!("voicenav_sip_dropped_total", "reason" => "stray_response")
                    .increment(1);
            }
        }
    }

    // ---- draining machines ---------------------------------------------------------

    fn drain_server(&mut self, now: Instant, key: &TransactionKey) {
        let Some(entry) = self.server.get_mut(key) else {
            return;
        };
        let dest = entry.dest;
        let mut events = Vec::new();
        let deadline = match &mut entry.tx {
            ServerTx::Invite(tx) => {
                while let Some(p) = tx.poll_transmit() {
                    self.transmits.push_back(Transmit {
                        peer: dest,
                        payload: p,
                    });
                }
                while let Some(e) = tx.poll_event() {
                    events.push(e);
                }
                tx.poll_timeout()
            }
            ServerTx::NonInvite(tx) => {
                while let Some(p) = tx.poll_transmit() {
                    self.transmits.push_back(Transmit {
                        peer: dest,
                        payload: p,
                    });
                }
                while let Some(e) = tx.poll_event() {
                    events.push(e);
                }
                tx.poll_timeout()
            }
        };
        let call = entry.call.clone();
        self.schedule(Owner::Server(key.clone()), deadline.map(|(t, _)| t));
        for e in events {
            match e {
                TxEvent::Timeout(Timer::H) => {
                    let Some(id) = call.clone() else { continue };
                    let no_ack = self
                        .calls
                        .get(&id)
                        .is_some_and(|c| c.ack_pending.as_ref().is_some_and(|(_, k)| k == key));
                    if no_ack {
                        tracing::info!(call = %id, "no ACK for our 200 (Timer H): BYE");
                        if let Some(c) = self.calls.get_mut(&id) {
                            c.ack_pending = None;
                        }
                        self.events.push_back(CallEvent::CallerHangup {
                            call: id.clone(),
                            reason: HangupReason::NoAck,
                        });
                        self.hangup(now, &id);
                    }
                }
                TxEvent::Terminated => {
                    self.server.remove(key);
                }
                _ => {}
            }
        }
    }

    fn stop_2xx_retransmissions(&mut self, now: Instant, call_id: &CallId) {
        let Some(key) = self
            .calls
            .get_mut(call_id)
            .and_then(|c| c.ack_pending.take())
            .map(|(_, k)| k)
        else {
            return;
        };
        if let Some(ServerEntry {
            tx: ServerTx::Invite(tx),
            ..
        }) = self.server.get_mut(&key)
        {
            tx.handle_ack(now);
        }
        self.drain_server(now, &key);
    }

    fn drain_client(&mut self, now: Instant, branch: &str) {
        let Some(entry) = self.client.get_mut(branch) else {
            return;
        };
        let dest = entry.dest;
        while let Some(p) = entry.tx.poll_transmit() {
            self.transmits.push_back(Transmit {
                peer: dest,
                payload: p,
            });
        }
        let mut events = Vec::new();
        while let Some(e) = entry.tx.poll_event() {
            events.push(e);
        }
        let purpose = entry.purpose.clone();
        let deadline = entry.tx.poll_timeout().map(|(t, _)| t);
        self.schedule(Owner::Client(branch.to_string()), deadline);
        for e in events {
            match (e, &purpose) {
                (TxEvent::Response(resp), Purpose::Bye(id)) => {
                    if resp.code().is_some_and(|c| c >= 200) {
                        self.close_call(id);
                    }
                }
                (TxEvent::Timeout(_), Purpose::Bye(id)) => self.close_call(id),
                (TxEvent::Response(resp), Purpose::Refer(id)) => {
                    let code = resp.code().unwrap_or(500);
                    if code < 300 {
                        self.events.push_back(CallEvent::TransferProgress {
                            call: id.clone(),
                            code,
                        });
                    } else {
                        if let Some(c) = self.calls.get_mut(id) {
                            c.refer_deadline = None;
                        }
                        self.events.push_back(CallEvent::TransferResult {
                            call: id.clone(),
                            outcome: TransferOutcome::Failed(code),
                        });
                    }
                }
                (TxEvent::Timeout(_), Purpose::Refer(id)) => {
                    if let Some(c) = self.calls.get_mut(id) {
                        c.refer_deadline = None;
                    }
                    self.events.push_back(CallEvent::TransferResult {
                        call: id.clone(),
                        outcome: TransferOutcome::Timeout,
                    });
                }
                (TxEvent::Response(resp), Purpose::Register(i)) => {
                    if let Some(r) = self.registrations.get_mut(*i) {
                        r.handle_response(now, &resp);
                    }
                    self.drain_registration(now, *i);
                }
                (TxEvent::Timeout(_), Purpose::Register(i)) => {
                    if let Some(r) = self.registrations.get_mut(*i) {
                        r.handle_transaction_timeout(now);
                    }
                    self.drain_registration(now, *i);
                }
                (TxEvent::Terminated, _) => {
                    self.client.remove(branch);
                }
            }
        }
    }

    fn drain_registration(&mut self, now: Instant, i: usize) {
        let Some(r) = self.registrations.get_mut(i) else {
            return;
        };
        let mut requests = Vec::new();
        while let Some(req) = r.poll_request() {
            requests.push(req);
        }
        let deadline = r.poll_timeout();
        let status = r.status().clone();
        let trunk = r.trunk().to_string();
        let dest = Peer {
            transport: Transport::Udp,
            addr: r.registrar(),
        };
        self.schedule(Owner::Registration(i), deadline);
        let changed = self
            .reported
            .get(i)
            .is_some_and(|last| last.as_ref() != Some(&status));
        if changed {
            if let Some(slot) = self.reported.get_mut(i) {
                *slot = Some(status.clone());
            }
            let up = matches!(status, RegistrationStatus::Registered { .. });
            metrics::gauge!("voicenav_sip_trunk_registered", "trunk" => trunk.clone()).set(if up {
                1.0
            } else {
                0.0
            });
            match &status {
                RegistrationStatus::Failed { reason, retry_in } => {
                    tracing::warn!(
                        trunk,
                        reason,
                        retry_in_s = retry_in.as_secs_f32(),
                        "trunk registration failed"
                    )
                }
                s => tracing::info!(trunk, status = ?s, "trunk registration"),
            }
            self.events
                .push_back(CallEvent::Registration { trunk, status });
        }
        for mut req in requests {
            let branch = self.branch();
            let via = self.via(Transport::Udp, &branch);
            req.headers.insert(
                0,
                message::Header {
                    name: "Via".into(),
                    value: via,
                },
            );
            req.push_header("User-Agent", self.cfg.user_agent.clone());
            let tx = NonInviteClient::new(now, self.cfg.timers, false, req.to_bytes());
            self.client.insert(
                branch.clone(),
                ClientEntry {
                    tx,
                    dest,
                    purpose: Purpose::Register(i),
                },
            );
            self.drain_client(now, &branch);
        }
    }

    // ---- helpers -------------------------------------------------------------------

    fn close_call(&mut self, call_id: &CallId) {
        if self.calls.remove(call_id).is_some() {
            self.events.push_back(CallEvent::Closed {
                call: call_id.clone(),
            });
            metrics::gauge!("voicenav_sip_calls_active").set(self.calls.len() as f64);
        }
    }

    fn dialog_response(&self, call: &Call, code: u16, reason: &str) -> Message {
        Message::response_to(&call.invite, code, reason, Some(&call.dialog.local_tag))
    }

    fn tag(&mut self) -> String {
        format!("{:012x}", self.rng.random::<u64>() & 0xffff_ffff_ffff)
    }

    fn branch(&mut self) -> String {
        format!("{MAGIC_COOKIE}-vn{:016x}", self.rng.random::<u64>())
    }

    fn port(&self, transport: Transport) -> u16 {
        match transport {
            Transport::Udp => self.cfg.udp_port,
            Transport::Tcp => self.cfg.tcp_port,
        }
    }

    fn via(&self, transport: Transport, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {}:{};branch={branch};rport",
            transport.as_str(),
            self.cfg.host,
            self.port(transport)
        )
    }

    fn contact_uri(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!("sip:voicenav@{}:{}", self.cfg.host, self.cfg.udp_port),
            Transport::Tcp => format!(
                "sip:voicenav@{}:{};transport=tcp",
                self.cfg.host, self.cfg.tcp_port
            ),
        }
    }

    fn contact(&self, transport: Transport) -> String {
        format!("<{}>", self.contact_uri(transport))
    }
}

/// RFC 3581 / RFC 3261 §18.2.1: records `received` (and `rport`) in the top Via, and
/// returns where responses go (§18.2.2): the flow for reliable transports and rport, else
/// the source address with the Via's port.
fn patch_via(msg: &mut Message, via: &Via, peer: Peer) -> Peer {
    let src_ip = peer.addr.ip().to_string();
    let wants_rport = via.has_param("rport");
    let host_differs = via.host.trim_start_matches('[').trim_end_matches(']') != src_ip;
    if wants_rport || host_differs {
        let mut params: Vec<(String, Option<String>)> = via
            .params
            .iter()
            .filter(|(k, _)| k != "received" && k != "rport")
            .cloned()
            .collect();
        params.push(("received".into(), Some(src_ip)));
        if wants_rport {
            params.push(("rport".into(), Some(peer.addr.port().to_string())));
        }
        let mut value = format!("SIP/2.0/{} {}", via.transport, via.sent_by());
        for (k, v) in params {
            value.push(';');
            value.push_str(&k);
            if let Some(v) = v {
                value.push('=');
                value.push_str(&v);
            }
        }
        // Replace the first value of the first Via header line.
        if let Some(h) = msg
            .headers
            .iter_mut()
            .find(|h| h.name.eq_ignore_ascii_case("Via"))
        {
            let rest: Vec<&str> = message::split_list(&h.value).into_iter().skip(1).collect();
            let mut all = vec![value];
            all.extend(rest.into_iter().map(str::to_string));
            h.value = all.join(", ");
        }
    }
    if peer.transport.is_reliable() || wants_rport {
        peer
    } else {
        Peer {
            transport: peer.transport,
            addr: SocketAddr::new(peer.addr.ip(), via.port.unwrap_or(5060)),
        }
    }
}

/// `Signal=5\r\nDuration=160` (application/dtmf-relay) → ('5', 160).
pub fn parse_dtmf_relay(body: &[u8]) -> Option<(char, u32)> {
    let text = std::str::from_utf8(body).ok()?;
    let mut digit = None;
    let mut duration = 160;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "signal" => {
                let v = v.trim();
                digit = match v {
                    "10" => Some('*'),
                    "11" => Some('#'),
                    _ if v.len() == 1 => v
                        .chars()
                        .next()
                        .filter(|c| c.is_ascii_digit() || "*#ABCDabcd".contains(*c)),
                    _ => None,
                }
                .map(|c| c.to_ascii_uppercase());
            }
            "duration" => duration = v.trim().parse().unwrap_or(160),
            _ => {}
        }
    }
    digit.map(|d| (d, duration))
}

pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests;
