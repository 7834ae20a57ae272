//! INVITE client transaction, RFC 3261 §17.1.1 (Figure 5): Timer A retransmits the INVITE
//! (unreliable transports), Timer B gives up after 64·T1, a 3xx–6xx is ACKed by the
//! transaction itself and Timer D (64·T1, at least the RFC's 32 s with default timers;
//! zero on reliable transports) absorbs its retransmissions. A 2xx ends the transaction and
//! goes to the user, which ACKs it in the dialog (§13.2.2.4).
//!
//! ```text
//!   INVITE → Calling --1xx--> Proceeding
//!     A,B     |  \2xx → Terminated   |300-699 → ACK
//!             |300-699 → ACK     Completed --D--> Terminated
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Timer, TimerConfig, TxEvent};
use crate::sip::message::{Message, Method, StartLine};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteClientState {
    Calling,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct InviteClient {
    state: InviteClientState,
    reliable: bool,
    cfg: TimerConfig,
    request: Message,
    request_bytes: Vec<u8>,
    ack: Option<Vec<u8>>,
    a: Option<(Instant, Duration)>,
    b: Option<Instant>,
    d: Option<Instant>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<TxEvent>,
}

impl InviteClient {
    pub fn new(now: Instant, cfg: TimerConfig, reliable: bool, request: Message) -> InviteClient {
        let bytes = request.to_bytes();
        InviteClient {
            state: InviteClientState::Calling,
            reliable,
            cfg,
            request,
            transmits: VecDeque::from([bytes.clone()]),
            request_bytes: bytes,
            ack: None,
            a: (!reliable).then_some((now + cfg.t1, cfg.t1)),
            b: Some(now + cfg.timeout()),
            d: None,
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> InviteClientState {
        self.state
    }

    pub fn handle_response(&mut self, now: Instant, response: Message) {
        let Some(code) = response.code() else { return };
        match self.state {
            InviteClientState::Calling | InviteClientState::Proceeding => {
                if code < 200 {
                    self.state = InviteClientState::Proceeding;
                    self.a = None;
                    self.events.push_back(TxEvent::Response(response));
                } else if code < 300 {
                    self.events.push_back(TxEvent::Response(response));
                    self.terminate();
                } else {
                    let ack = ack_for(&self.request, &response).to_bytes();
                    self.transmits.push_back(ack.clone());
                    self.ack = Some(ack);
                    self.events.push_back(TxEvent::Response(response));
                    self.state = InviteClientState::Completed;
                    self.a = None;
                    self.b = None;
                    if self.reliable {
                        self.terminate();
                    } else {
                        self.d = Some(now + self.cfg.timeout());
                    }
                }
            }
            InviteClientState::Completed => {
                if code >= 300 {
                    if let Some(ack) = &self.ack {
                        self.transmits.push_back(ack.clone());
                    }
                }
            }
            InviteClientState::Terminated => {}
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.b.is_some_and(|b| now >= b) {
            self.events.push_back(TxEvent::Timeout(Timer::B));
            self.terminate();
            return;
        }
        if self.d.is_some_and(|d| now >= d) {
            self.terminate();
            return;
        }
        if let Some((a, interval)) = self.a {
            if now >= a {
                self.transmits.push_back(self.request_bytes.clone());
                // Timer A doubles without the T2 cap (§17.1.1.2).
                let next = interval * 2;
                self.a = Some((now + next, next));
            }
        }
    }

    fn terminate(&mut self) {
        if self.state != InviteClientState::Terminated {
            self.state = InviteClientState::Terminated;
            self.a = None;
            self.b = None;
            self.d = None;
            self.events.push_back(TxEvent::Terminated);
        }
    }

    pub fn poll_timeout(&self) -> Option<(Instant, Timer)> {
        [
            self.a.map(|(t, _)| (t, Timer::A)),
            self.b.map(|t| (t, Timer::B)),
            self.d.map(|t| (t, Timer::D)),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }
}

/// The ACK for a non-2xx final response (§17.1.1.3): same Request-URI, Call-ID, From, top
/// Via and Route as the INVITE, To from the response, CSeq number with method ACK.
pub fn ack_for(invite: &Message, response: &Message) -> Message {
    let uri = invite.request_uri().unwrap_or("sip:invalid").to_string();
    let mut ack = Message::request(Method::Ack, uri);
    if let Some(v) = invite.header_values("Via").first() {
        ack.push_header("Via", *v);
    }
    for name in ["From", "Call-ID"] {
        if let Some(v) = invite.header(name) {
            ack.push_header(name, v);
        }
    }
    if let Some(v) = response.header("To") {
        ack.push_header("To", v);
    }
    let num = invite.cseq().map(|(n, _)| n).unwrap_or(1);
    ack.push_header("CSeq", format!("{num} ACK"));
    for r in invite.header_lines("Route") {
        ack.push_header("Route", r);
    }
    ack.push_header("Max-Forwards", "70");
    debug_assert!(matches!(ack.start, StartLine::Request { .. }));
    ack
}

#[cfg(test)]
mod tests {
    use super::super::testutil::FakeClock;
    use super::*;
    use crate::sip::message::parse;

    fn invite() -> Message {
        parse(
            b"INVITE sip:q@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:q@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 5 INVITE\r\n\r\n",
        )
        .unwrap()
    }

    fn resp(code: u16) -> Message {
        let text = format!(
            "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nCall-ID: c\r\nCSeq: 5 INVITE\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:q@127.0.0.1>;tag=9\r\n\r\n"
        );
        parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn timer_a_doubles_and_timer_b_gives_up() {
        let mut clock = FakeClock::new();
        let cfg = TimerConfig::default();
        let start = clock.now;
        let mut tx = InviteClient::new(clock.now, cfg, false, invite());
        tx.poll_transmit();
        let mut sends = Vec::new();
        while let Some((t, _)) = tx.poll_timeout() {
            clock.advance_to(t);
            tx.handle_timeout(clock.now);
            while tx.poll_transmit().is_some() {
                sends.push((clock.now - start).as_millis());
            }
        }
        assert_eq!(sends, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(tx.poll_event(), Some(TxEvent::Timeout(Timer::B)));
    }

    #[test]
    fn error_response_is_acked_and_timer_d_absorbs_retransmissions() {
        let mut clock = FakeClock::new();
        let cfg = TimerConfig::default();
        let mut tx = InviteClient::new(clock.now, cfg, false, invite());
        tx.poll_transmit();
        tx.handle_response(clock.now, resp(180));
        assert_eq!(tx.state(), InviteClientState::Proceeding);
        assert!(
            tx.poll_timeout().is_some_and(|(_, t)| t == Timer::B),
            "A stops after a provisional"
        );
        tx.handle_response(clock.now, resp(486));
        let ack = parse(&tx.poll_transmit().unwrap()).unwrap();
        assert_eq!(ack.method(), Some(&Method::Ack));
        assert_eq!(ack.to_tag().as_deref(), Some("9"));
        assert_eq!(ack.cseq(), Some((5, Method::Ack)));
        tx.handle_response(clock.now, resp(486));
        assert!(
            tx.poll_transmit().is_some(),
            "ACK resent for a retransmitted final response"
        );
        let (d, timer) = tx.poll_timeout().unwrap();
        assert_eq!(timer, Timer::D);
        assert!(d - clock.now >= Duration::from_secs(32));
        clock.advance_to(d);
        tx.handle_timeout(clock.now);
        assert_eq!(tx.state(), InviteClientState::Terminated);
    }

    #[test]
    fn two_hundred_terminates_and_goes_to_the_user() {
        let clock = FakeClock::new();
        let mut tx = InviteClient::new(clock.now, TimerConfig::default(), true, invite());
        tx.handle_response(clock.now, resp(200));
        assert!(matches!(tx.poll_event(), Some(TxEvent::Response(m)) if m.code() == Some(200)));
        assert_eq!(tx.poll_event(), Some(TxEvent::Terminated));
    }
}
