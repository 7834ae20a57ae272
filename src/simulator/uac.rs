//! The simulated caller's SIP side: one UAC call, sans-IO (RFC 3261 §8.1, §12.1.2, §13.2,
//! §15; RFC 3515 REFER answered with 202 and a `message/sipfrag` NOTIFY, RFC 3420).
//!
//! It sends the INVITE with an SDP offer through the [`InviteClient`] transaction (Timers
//! A/B/D), ACKs the 2xx itself (and every retransmission of it, §13.2.2.4), builds the
//! dialog from the 2xx (To tag, Contact, Record-Route reversed), answers in-dialog
//! requests through [`NonInviteServer`] transactions (REFER → 202 + NOTIFY `SIP/2.0 200 OK`,
//! BYE → 200, INFO/OPTIONS/NOTIFY → 200, anything else → 501), and hangs up with BYE (or
//! CANCEL while ringing) through [`NonInviteClient`] transactions (Timers E/F/K).
//!
//! Drain contract, as everywhere in voicenav: after each `handle_*` call the driver takes
//! every [`Uac::poll_transmit`] (bytes for the IVR) and [`Uac::poll_event`], then sleeps
//! until [`Uac::poll_timeout`] and calls [`Uac::handle_timeout`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use crate::sip::dialog::{Dialog, DialogState};
use crate::sip::message::{self, Message, Method, NameAddr};
use crate::sip::transaction::{
    InviteClient, NonInviteClient, NonInviteServer, Timer, TimerConfig, TxEvent,
};

/// How to place the call.
#[derive(Debug, Clone)]
pub struct UacConfig {
    /// Our SIP socket (Via sent-by and Contact).
    pub local: SocketAddr,
    /// The Request-URI, e.g. `sip:bot@127.0.0.1:5060`.
    pub request_uri: String,
    /// The calling number (From user), e.g. the script's ANI.
    pub from_user: String,
    /// The SDP offer body.
    pub sdp_offer: String,
    /// Extra INVITE headers.
    pub headers: Vec<(String, String)>,
    pub timers: TimerConfig,
}

/// What the call tells its driver.
#[derive(Debug, Clone, PartialEq)]
pub enum UacEvent {
    /// A provisional response (100, 180, 183).
    Provisional(u16),
    /// 2xx received and ACKed: the SDP answer.
    Answered { sdp: Vec<u8> },
    /// The INVITE got a final error response.
    Rejected { code: u16, reason: String },
    /// A REFER arrived (already answered 202 and NOTIFY sent): its Refer-To URI and every
    /// `X-Voicenav-*` / `User-to-User` header, in order.
    Referred {
        refer_to: String,
        headers: Vec<(String, String)>,
    },
    /// The IVR hung up (BYE answered 200).
    RemoteBye,
    /// A transaction gave up: Timer B (no answer to the INVITE) or F (BYE unanswered).
    TimedOut(Timer),
    /// The call is over (after a BYE either way, a rejection, or a timeout).
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UacState {
    Calling,
    Early,
    Confirmed,
    Terminating,
    Ended,
}

/// One outgoing call.
#[derive(Debug)]
pub struct Uac {
    cfg: UacConfig,
    state: UacState,
    invite: Message,
    invite_tx: Option<InviteClient>,
    ack: Option<(String, Vec<u8>)>,
    dialog: Option<Dialog>,
    local_party: String,
    clients: Vec<(String, Method, NonInviteClient)>,
    servers: Vec<(String, NonInviteServer)>,
    provisional_seen: bool,
    cancel_pending: bool,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<UacEvent>,
    last_now: Option<Instant>,
}

fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn branch() -> String {
    format!("z9hG4bK{}", token())
}

impl Uac {
    /// Builds the INVITE and starts its transaction (the INVITE is the first transmit).
    pub fn new(now: Instant, cfg: UacConfig) -> Uac {
        let call_id = format!("{}@voicenav-caller", token());
        let local_party = format!("<sip:{}@{}>;tag={}", cfg.from_user, cfg.local, token());
        let mut invite = Message::request(Method::Invite, cfg.request_uri.clone());
        invite.push_header(
            "Via",
            format!("SIP/2.0/UDP {};branch={};rport", cfg.local, branch()),
        );
        invite.push_header("Max-Forwards", "70");
        invite.push_header("From", local_party.clone());
        invite.push_header("To", format!("<{}>", cfg.request_uri));
        invite.push_header("Call-ID", call_id);
        invite.push_header("CSeq", "1 INVITE");
        invite.push_header("Contact", format!("<sip:{}@{}>", cfg.from_user, cfg.local));
        invite.push_header(
            "Allow",
            "INVITE, ACK, CANCEL, BYE, REFER, NOTIFY, INFO, OPTIONS",
        );
        invite.push_header(
            "User-Agent",
            concat!("voicenav-caller/", env!("CARGO_PKG_VERSION")),
        );
        for (k, v) in &cfg.headers {
            invite.push_header(k, v.clone());
        }
        invite.push_header("Content-Type", "application/sdp");
        invite.body = cfg.sdp_offer.clone().into_bytes();
        let tx = InviteClient::new(now, cfg.timers, false, invite.clone());
        let mut uac = Uac {
            cfg,
            state: UacState::Calling,
            invite,
            invite_tx: Some(tx),
            ack: None,
            dialog: None,
            local_party,
            clients: Vec::new(),
            servers: Vec::new(),
            provisional_seen: false,
            cancel_pending: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            last_now: Some(now),
        };
        uac.drain_invite();
        uac
    }

    pub fn state(&self) -> UacState {
        self.state
    }

    /// The SIP Call-ID of the call.
    pub fn call_id(&self) -> &str {
        self.invite.call_id().unwrap_or("")
    }

    fn clock(&mut self, now: Instant) -> Instant {
        let now = match self.last_now {
            Some(t) if now < t => t,
            _ => now,
        };
        self.last_now = Some(now);
        now
    }

    /// A datagram from the IVR. Garbage is dropped.
    pub fn handle_datagram(&mut self, now: Instant, bytes: &[u8]) {
        let now = self.clock(now);
        let Ok(msg) = message::parse(bytes) else {
            return;
        };
        if msg.is_request() {
            self.handle_request(now, msg);
        } else {
            self.handle_response(now, msg);
        }
    }

    fn handle_response(&mut self, now: Instant, msg: Message) {
        let Some((_, method)) = msg.cseq() else {
            return;
        };
        if msg.call_id() != self.invite.call_id() {
            return;
        }
        let branch = msg
            .top_via()
            .and_then(|v| v.branch().map(str::to_string))
            .unwrap_or_default();
        if method == Method::Invite {
            let code = msg.code().unwrap_or(0);
            if let Some(tx) = self.invite_tx.as_mut() {
                tx.handle_response(now, msg.clone());
                self.drain_invite();
            } else if (200..300).contains(&code) {
                // A retransmitted 2xx: the transaction is gone, the ACK is resent (§13.2.2.4).
                if let Some((tag, ack)) = &self.ack {
                    if msg.to_tag().as_deref() == Some(tag.as_str()) {
                        self.transmits.push_back(ack.clone());
                    }
                }
            }
            return;
        }
        if let Some((_, _, tx)) = self.clients.iter_mut().find(|(b, _, _)| *b == branch) {
            tx.handle_response(now, msg);
        }
        self.drain_clients();
    }

    fn drain_invite(&mut self) {
        let Some(tx) = self.invite_tx.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        while let Some(t) = tx.poll_transmit() {
            out.push(t);
        }
        let mut evs = Vec::new();
        while let Some(e) = tx.poll_event() {
            evs.push(e);
        }
        self.transmits.extend(out);
        for e in evs {
            match e {
                TxEvent::Response(r) => self.invite_response(r),
                TxEvent::Timeout(t) => {
                    self.events.push_back(UacEvent::TimedOut(t));
                    self.end();
                }
                TxEvent::Terminated => self.invite_tx = None,
            }
        }
    }

    fn invite_response(&mut self, r: Message) {
        let code = r.code().unwrap_or(0);
        if code < 200 {
            if code > 100 {
                self.provisional_seen = true;
                if self.state == UacState::Calling {
                    self.state = UacState::Early;
                }
            } else {
                self.provisional_seen = true;
            }
            self.events.push_back(UacEvent::Provisional(code));
            if self.cancel_pending {
                self.cancel_pending = false;
                self.send_cancel();
            }
            return;
        }
        if code >= 300 {
            let reason = match &r.start {
                message::StartLine::Response { reason, .. } => reason.clone(),
                _ => String::new(),
            };
            if self.state != UacState::Ended {
                self.events.push_back(UacEvent::Rejected { code, reason });
                self.end();
            }
            return;
        }
        // 2xx: the dialog (§12.1.2) and the ACK (§13.2.2.4).
        let remote_tag = r.to_tag().unwrap_or_default();
        let remote_party = r.header("To").unwrap_or_default().to_string();
        let remote_target = r
            .header_values("Contact")
            .first()
            .and_then(|c| NameAddr::parse(c))
            .map(|n| n.uri)
            .unwrap_or_else(|| self.cfg.request_uri.clone());
        let mut route_set: Vec<String> = r
            .header_values("Record-Route")
            .into_iter()
            .map(str::to_string)
            .collect();
        route_set.reverse();
        let local_tag = NameAddr::parse(&self.local_party)
            .and_then(|n| n.param("tag").map(str::to_string))
            .unwrap_or_default();
        let mut dialog = Dialog {
            call_id: self.call_id().to_string(),
            local_tag,
            remote_tag: remote_tag.clone(),
            local_party: self.local_party.clone(),
            remote_party,
            local_cseq: 1,
            remote_cseq: 0,
            route_set,
            remote_target,
            state: DialogState::Confirmed,
        };
        let mut ack = dialog.request(Method::Ack, &self.contact());
        dialog.local_cseq = 1;
        ack.set_header("CSeq", "1 ACK");
        ack.headers.insert(
            0,
            message::Header {
                name: "Via".into(),
                value: self.via(),
            },
        );
        let bytes = ack.to_bytes();
        self.transmits.push_back(bytes.clone());
        self.ack = Some((remote_tag, bytes));
        self.dialog = Some(dialog);
        self.state = UacState::Confirmed;
        self.events.push_back(UacEvent::Answered {
            sdp: r.body.clone(),
        });
        if self.cancel_pending {
            self.cancel_pending = false;
            self.send_bye_now();
        }
    }

    fn contact(&self) -> String {
        format!("sip:{}@{}", self.cfg.from_user, self.cfg.local)
    }

    fn via(&self) -> String {
        format!("SIP/2.0/UDP {};branch={};rport", self.cfg.local, branch())
    }

    fn handle_request(&mut self, now: Instant, req: Message) {
        let Some(method) = req.method().cloned() else {
            return;
        };
        if method == Method::Ack {
            return;
        }
        let branch = req
            .top_via()
            .and_then(|v| v.branch().map(str::to_string))
            .unwrap_or_default();
        if let Some((_, tx)) = self
            .servers
            .iter_mut()
            .find(|(b, _)| !b.is_empty() && *b == branch)
        {
            tx.handle_request(now);
            self.drain_servers();
            return;
        }
        let in_dialog = self.dialog.as_ref().is_some_and(|d| d.matches(&req));
        let mut notify = false;
        let mut tx = NonInviteServer::new(self.cfg.timers, false);
        let respond =
            |code: u16, reason: &str| Message::response_to(&req, code, reason, None).to_bytes();
        if req.check_request().is_err() {
            tx.send_response(now, 400, respond(400, "Bad Request"));
        } else if !in_dialog {
            tx.send_response(now, 481, respond(481, "Call/Transaction Does Not Exist"));
        } else {
            let cseq = req.cseq().map(|(n, _)| n).unwrap_or(0);
            let ok_order = self
                .dialog
                .as_mut()
                .is_some_and(|d| d.accept_remote_cseq(cseq, &method));
            if !ok_order {
                tx.send_response(now, 500, respond(500, "Out of Order"));
            } else {
                match method {
                    Method::Bye => {
                        tx.send_response(now, 200, respond(200, "OK"));
                        if !matches!(self.state, UacState::Ended) {
                            self.events.push_back(UacEvent::RemoteBye);
                            self.end();
                        }
                    }
                    Method::Refer => {
                        let refer_to = req.header("Refer-To").map(|v| {
                            NameAddr::parse(v)
                                .map(|n| n.uri)
                                .unwrap_or_else(|| v.trim().to_string())
                        });
                        match refer_to {
                            None => tx.send_response(now, 400, respond(400, "Missing Refer-To")),
                            Some(refer_to) => {
                                tx.send_response(now, 202, respond(202, "Accepted"));
                                let headers = req
                                    .headers
                                    .iter()
                                    .filter(|h| {
                                        let n = h.name.to_ascii_lowercase();
                                        n.starts_with("x-voicenav-") || n == "user-to-user"
                                    })
                                    .map(|h| (h.name.clone(), h.value.clone()))
                                    .collect();
                                self.events
                                    .push_back(UacEvent::Referred { refer_to, headers });
                                notify = true;
                            }
                        }
                    }
                    Method::Info | Method::Options | Method::Notify => {
                        tx.send_response(now, 200, respond(200, "OK"))
                    }
                    _ => tx.send_response(now, 501, respond(501, "Not Implemented")),
                }
            }
        }
        self.servers.push((branch, tx));
        self.drain_servers();
        if notify {
            // After the 202 has gone out.
            self.send_notify(now);
        }
    }

    /// NOTIFY for the implicit refer subscription: the transfer succeeded (RFC 3515 §2.4.5).
    fn send_notify(&mut self, now: Instant) {
        let contact = self.contact();
        let via = self.via();
        let Some(d) = self.dialog.as_mut() else {
            return;
        };
        let mut n = d.request(Method::Notify, &contact);
        let b = via
            .split("branch=")
            .nth(1)
            .and_then(|s| s.split(';').next())
            .unwrap_or("")
            .to_string();
        n.headers.insert(
            0,
            message::Header {
                name: "Via".into(),
                value: via,
            },
        );
        n.push_header("Event", "refer");
        n.push_header("Subscription-State", "terminated;reason=noresource");
        n.push_header("Content-Type", "message/sipfrag;version=2.0");
        n.body = b"SIP/2.0 200 OK\r\n".to_vec();
        let tx = NonInviteClient::new(now, self.cfg.timers, false, n.to_bytes());
        self.clients.push((b, Method::Notify, tx));
        self.drain_clients();
    }

    /// Ends the call from our side: BYE when answered, CANCEL while ringing (or as soon as
    /// a provisional response allows it), nothing when already over.
    pub fn hangup(&mut self, now: Instant) {
        let now = self.clock(now);
        self.last_now = Some(now);
        match self.state {
            UacState::Confirmed => self.send_bye_now(),
            UacState::Calling | UacState::Early => {
                if self.provisional_seen {
                    self.send_cancel();
                } else {
                    self.cancel_pending = true;
                }
            }
            UacState::Terminating | UacState::Ended => {}
        }
    }

    fn send_bye_now(&mut self) {
        let now = self.last_now.unwrap_or_else(Instant::now);
        let contact = self.contact();
        let via = self.via();
        let Some(d) = self.dialog.as_mut() else {
            return;
        };
        let mut bye = d.request(Method::Bye, &contact);
        let b = via
            .split("branch=")
            .nth(1)
            .and_then(|s| s.split(';').next())
            .unwrap_or("")
            .to_string();
        bye.headers.insert(
            0,
            message::Header {
                name: "Via".into(),
                value: via,
            },
        );
        let tx = NonInviteClient::new(now, self.cfg.timers, false, bye.to_bytes());
        self.clients.push((b, Method::Bye, tx));
        self.state = UacState::Terminating;
        self.drain_clients();
    }

    /// CANCEL (§9.1): same Request-URI, Call-ID, From, To, top Via and CSeq number.
    fn send_cancel(&mut self) {
        let now = self.last_now.unwrap_or_else(Instant::now);
        let mut c = Message::request(Method::Cancel, self.cfg.request_uri.clone());
        for name in ["Via", "From", "To", "Call-ID"] {
            if let Some(v) = self.invite.header(name) {
                c.push_header(name, v);
            }
        }
        c.push_header("CSeq", "1 CANCEL");
        c.push_header("Max-Forwards", "70");
        let b = self
            .invite
            .top_via()
            .and_then(|v| v.branch().map(str::to_string))
            .unwrap_or_default();
        let tx = NonInviteClient::new(now, self.cfg.timers, false, c.to_bytes());
        self.clients.push((b, Method::Cancel, tx));
        self.drain_clients();
    }

    fn end(&mut self) {
        if self.state != UacState::Ended {
            self.state = UacState::Ended;
            self.events.push_back(UacEvent::Ended);
        }
    }

    fn drain_clients(&mut self) {
        let mut bye_done = false;
        let mut bye_timeout = false;
        for (_, method, tx) in &mut self.clients {
            while let Some(t) = tx.poll_transmit() {
                self.transmits.push_back(t);
            }
            while let Some(e) = tx.poll_event() {
                match (e, &*method) {
                    (TxEvent::Response(r), Method::Bye) if r.code().is_some_and(|c| c >= 200) => {
                        bye_done = true
                    }
                    (TxEvent::Timeout(_), Method::Bye) => bye_timeout = true,
                    _ => {}
                }
            }
        }
        self.clients
            .retain(|(_, _, tx)| tx.poll_timeout().is_some());
        if bye_timeout {
            self.events.push_back(UacEvent::TimedOut(Timer::F));
        }
        if bye_done || bye_timeout {
            self.end();
        }
    }

    fn drain_servers(&mut self) {
        for (_, tx) in &mut self.servers {
            while let Some(t) = tx.poll_transmit() {
                self.transmits.push_back(t);
            }
            while tx.poll_event().is_some() {}
        }
        self.servers.retain(|(_, tx)| tx.poll_timeout().is_some());
    }

    /// Fires every due timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock(now);
        if let Some(tx) = self.invite_tx.as_mut() {
            if tx.poll_timeout().is_some_and(|(t, _)| t <= now) {
                tx.handle_timeout(now);
            }
        }
        self.drain_invite();
        for (_, _, tx) in &mut self.clients {
            if tx.poll_timeout().is_some_and(|(t, _)| t <= now) {
                tx.handle_timeout(now);
            }
        }
        self.drain_clients();
        for (_, tx) in &mut self.servers {
            if tx.poll_timeout().is_some_and(|(t, _)| t <= now) {
                tx.handle_timeout(now);
            }
        }
        self.drain_servers();
    }

    /// The earliest transaction deadline and its timer.
    pub fn poll_timeout(&self) -> Option<(Instant, Timer)> {
        let invite = self.invite_tx.as_ref().and_then(InviteClient::poll_timeout);
        let clients = self.clients.iter().filter_map(|(_, _, t)| t.poll_timeout());
        let servers = self.servers.iter().filter_map(|(_, t)| t.poll_timeout());
        invite.into_iter().chain(clients).chain(servers).min()
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<UacEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::parse;
    use std::time::Duration;

    fn cfg() -> UacConfig {
        UacConfig {
            local: "127.0.0.1:5070".parse().unwrap(),
            request_uri: "sip:bot@127.0.0.1:5060".into(),
            from_user: "02088886666".into(),
            sdp_offer: "v=0\r\n".into(),
            headers: vec![],
            timers: TimerConfig::default(),
        }
    }

    fn drain(u: &mut Uac) -> (Vec<Message>, Vec<UacEvent>) {
        let tx = std::iter::from_fn(|| u.poll_transmit())
            .map(|b| parse(&b).unwrap())
            .collect();
        let ev = std::iter::from_fn(|| u.poll_event()).collect();
        (tx, ev)
    }

    /// The IVR's side: a response to `req` with its To tag and Contact.
    fn reply(req: &Message, code: u16, body: &[u8]) -> Vec<u8> {
        let mut r = Message::response_to(req, code, "X", Some("bot1"));
        r.push_header("Contact", "<sip:bot@127.0.0.1:5060>");
        r.body = body.to_vec();
        r.to_bytes()
    }

    /// An in-dialog request from the IVR to the caller.
    fn ivr_request(invite: &Message, method: Method, cseq: u32, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut m = Message::request(method.clone(), "sip:02088886666@127.0.0.1:5070");
        m.push_header(
            "Via",
            format!("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKivr{cseq}"),
        );
        m.push_header("From", format!("{};tag=bot1", invite.header("To").unwrap()));
        m.push_header("To", invite.header("From").unwrap());
        m.push_header("Call-ID", invite.call_id().unwrap());
        m.push_header("CSeq", format!("{cseq} {method}"));
        m.push_header("Max-Forwards", "70");
        m.push_header("Contact", "<sip:bot@127.0.0.1:5060>");
        for (k, v) in extra {
            m.push_header(k, *v);
        }
        m.to_bytes()
    }

    fn answered() -> (Uac, Message, Instant) {
        let now = Instant::now();
        let mut u = Uac::new(now, cfg());
        let (tx, _) = drain(&mut u);
        let invite = tx[0].clone();
        u.handle_datagram(now, &reply(&invite, 200, b"v=0\r\n"));
        (u, invite, now)
    }

    #[test]
    fn invite_is_retransmitted_on_timer_a_and_gives_up_on_timer_b() {
        let now = Instant::now();
        let mut u = Uac::new(now, cfg());
        let (tx, _) = drain(&mut u);
        assert_eq!(tx[0].method(), Some(&Method::Invite));
        assert_eq!(tx[0].content_type(), Some("application/sdp"));
        let (t, timer) = u.poll_timeout().unwrap();
        assert_eq!((timer, t - now), (Timer::A, Duration::from_millis(500)));
        u.handle_timeout(t);
        assert_eq!(drain(&mut u).0.len(), 1, "Timer A resends the INVITE");
        let mut ev = Vec::new();
        while let Some((t, _)) = u.poll_timeout() {
            u.handle_timeout(t);
            ev.extend(drain(&mut u).1);
        }
        assert_eq!(ev, vec![UacEvent::TimedOut(Timer::B), UacEvent::Ended]);
        assert_eq!(u.state(), UacState::Ended);
    }

    #[test]
    fn answer_is_acked_in_dialog_and_retransmitted_2xx_re_acked() {
        let (mut u, invite, now) = answered();
        let (tx, ev) = drain(&mut u);
        assert_eq!(
            ev,
            vec![UacEvent::Answered {
                sdp: b"v=0\r\n".to_vec()
            }]
        );
        assert_eq!(tx.len(), 1);
        let ack = &tx[0];
        assert_eq!(ack.method(), Some(&Method::Ack));
        assert_eq!(ack.request_uri(), Some("sip:bot@127.0.0.1:5060"));
        assert_eq!(ack.cseq(), Some((1, Method::Ack)));
        assert_eq!(ack.to_tag().as_deref(), Some("bot1"));
        u.handle_datagram(now, &reply(&invite, 200, b"v=0\r\n"));
        let (tx, ev) = drain(&mut u);
        assert_eq!(tx.len(), 1, "the 2xx retransmission is ACKed again");
        assert!(ev.is_empty());
    }

    #[test]
    fn refer_gets_202_and_a_sipfrag_notify_with_headers_reported() {
        let (mut u, invite, now) = answered();
        drain(&mut u);
        let refer = ivr_request(
            &invite,
            Method::Refer,
            1,
            &[
                ("Refer-To", "<sip:credit_card@127.0.0.1:5080>"),
                ("X-Voicenav-Queue", "credit_card"),
                ("User-to-User", "7175;encoding=hex"),
            ],
        );
        u.handle_datagram(now, &refer);
        let (tx, ev) = drain(&mut u);
        assert_eq!(tx[0].code(), Some(202));
        let notify = &tx[1];
        assert_eq!(notify.method(), Some(&Method::Notify));
        assert_eq!(notify.header("Event"), Some("refer"));
        assert_eq!(notify.body, b"SIP/2.0 200 OK\r\n");
        assert_eq!(notify.cseq(), Some((2, Method::Notify)));
        assert_eq!(
            ev,
            vec![UacEvent::Referred {
                refer_to: "sip:credit_card@127.0.0.1:5080".into(),
                headers: vec![
                    ("X-Voicenav-Queue".into(), "credit_card".into()),
                    ("User-to-User".into(), "7175;encoding=hex".into())
                ],
            }]
        );
        // The REFER retransmitted: the same 202, no second NOTIFY or event.
        u.handle_datagram(now, &refer);
        let (tx, ev) = drain(&mut u);
        assert_eq!(tx.len(), 1);
        assert_eq!(tx[0].code(), Some(202));
        assert!(ev.is_empty());
        // The IVR then hangs up.
        u.handle_datagram(now, &ivr_request(&invite, Method::Bye, 2, &[]));
        let (tx, ev) = drain(&mut u);
        assert_eq!(tx[0].code(), Some(200));
        assert_eq!(ev, vec![UacEvent::RemoteBye, UacEvent::Ended]);
    }

    #[test]
    fn our_bye_ends_the_call_on_its_200() {
        let (mut u, _invite, now) = answered();
        drain(&mut u);
        u.hangup(now);
        let (tx, _) = drain(&mut u);
        let bye = &tx[0];
        assert_eq!(bye.method(), Some(&Method::Bye));
        assert_eq!(bye.cseq(), Some((2, Method::Bye)));
        u.handle_datagram(now, &Message::response_to(bye, 200, "OK", None).to_bytes());
        assert_eq!(drain(&mut u).1, vec![UacEvent::Ended]);
    }

    #[test]
    fn rejection_and_garbage_and_strangers() {
        let now = Instant::now();
        let mut u = Uac::new(now, cfg());
        let (tx, _) = drain(&mut u);
        u.handle_datagram(now, b"\xff\xfe garbage");
        u.handle_datagram(now, b"SIP/2.0 200 OK\r\n\r\n");
        assert!(drain(&mut u).1.is_empty());
        // A request outside any dialog: 481.
        u.handle_datagram(now, &ivr_request(&tx[0], Method::Bye, 5, &[]));
        let (out, ev) = drain(&mut u);
        assert_eq!(out[0].code(), Some(481));
        assert!(ev.is_empty());
        u.handle_datagram(now, &reply(&tx[0], 486, b""));
        let (out, ev) = drain(&mut u);
        assert_eq!(
            out[0].method(),
            Some(&Method::Ack),
            "the transaction ACKs a 486"
        );
        assert!(matches!(ev[0], UacEvent::Rejected { code: 486, .. }));
        assert_eq!(ev[1], UacEvent::Ended);
    }

    #[test]
    fn hangup_while_ringing_cancels() {
        let now = Instant::now();
        let mut u = Uac::new(now, cfg());
        let (tx, _) = drain(&mut u);
        u.hangup(now);
        assert!(
            drain(&mut u).0.is_empty(),
            "no CANCEL before a provisional response"
        );
        u.handle_datagram(now, &reply(&tx[0], 180, b""));
        let (out, _) = drain(&mut u);
        assert_eq!(out[0].method(), Some(&Method::Cancel));
        assert_eq!(
            out[0].top_via().unwrap().branch(),
            tx[0].top_via().unwrap().branch()
        );
    }
}
