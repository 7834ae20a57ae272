//! Non-INVITE client transaction, RFC 3261 §17.1.2 (Figure 6), for the requests we send:
//! REGISTER, BYE, REFER, OPTIONS. Timer E retransmits (T1 doubling to T2; T2 once a
//! provisional arrived), Timer F gives up after 64·T1, Timer K absorbs response
//! retransmissions in Completed (T4 unreliable, zero reliable).
//!
//! ```text
//!   request → Trying --1xx--> Proceeding
//!       |E,F      \200-699       |200-699, E(T2), F
//!       |          `--------> Completed --K--> Terminated
//!       F: Timeout → Terminated
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Timer, TimerConfig, TxEvent};
use crate::sip::message::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteClientState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct NonInviteClient {
    state: NonInviteClientState,
    reliable: bool,
    cfg: TimerConfig,
    request: Vec<u8>,
    e: Option<(Instant, Duration)>,
    f: Option<Instant>,
    k: Option<Instant>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<TxEvent>,
}

impl NonInviteClient {
    /// Starts the transaction: the request is sent at once.
    pub fn new(
        now: Instant,
        cfg: TimerConfig,
        reliable: bool,
        request: Vec<u8>,
    ) -> NonInviteClient {
        let e = (!reliable).then_some((now + cfg.t1, cfg.t1));
        NonInviteClient {
            state: NonInviteClientState::Trying,
            reliable,
            cfg,
            transmits: VecDeque::from([request.clone()]),
            request,
            e,
            f: Some(now + cfg.timeout()),
            k: None,
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> NonInviteClientState {
        self.state
    }

    pub fn handle_response(&mut self, now: Instant, response: Message) {
        let Some(code) = response.code() else { return };
        match self.state {
            NonInviteClientState::Trying | NonInviteClientState::Proceeding => {
                self.events.push_back(TxEvent::Response(response));
                if code < 200 {
                    self.state = NonInviteClientState::Proceeding;
                    return;
                }
                self.state = NonInviteClientState::Completed;
                self.e = None;
                self.f = None;
                if self.reliable {
                    self.terminate();
                } else {
                    self.k = Some(now + self.cfg.t4);
                }
            }
            // Retransmitted responses are absorbed.
            NonInviteClientState::Completed | NonInviteClientState::Terminated => {}
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.f.is_some_and(|f| now >= f) {
            self.events.push_back(TxEvent::Timeout(Timer::F));
            self.terminate();
            return;
        }
        if self.k.is_some_and(|k| now >= k) {
            self.terminate();
            return;
        }
        if let Some((e, interval)) = self.e {
            if now >= e {
                self.transmits.push_back(self.request.clone());
                let next = match self.state {
                    NonInviteClientState::Proceeding => self.cfg.t2,
                    _ => self.cfg.backoff(interval),
                };
                self.e = Some((now + next, next));
            }
        }
    }

    fn terminate(&mut self) {
        if self.state != NonInviteClientState::Terminated {
            self.state = NonInviteClientState::Terminated;
            self.e = None;
            self.f = None;
            self.k = None;
            self.events.push_back(TxEvent::Terminated);
        }
    }

    pub fn poll_timeout(&self) -> Option<(Instant, Timer)> {
        [
            self.e.map(|(t, _)| (t, Timer::E)),
            self.f.map(|t| (t, Timer::F)),
            self.k.map(|t| (t, Timer::K)),
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

#[cfg(test)]
mod tests {
    use super::super::testutil::FakeClock;
    use super::*;
    use crate::sip::message::parse;

    fn resp(code: u16) -> Message {
        let text = format!(
            "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: c\r\nCSeq: 1 BYE\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\n\r\n"
        );
        parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn timer_e_backs_off_and_timer_f_gives_up() {
        let mut clock = FakeClock::new();
        let cfg = TimerConfig::default();
        let start = clock.now;
        let mut tx = NonInviteClient::new(clock.now, cfg, false, b"BYE".to_vec());
        assert_eq!(tx.poll_transmit().as_deref(), Some(&b"BYE"[..]));
        let mut sends = Vec::new();
        while let Some((t, _)) = tx.poll_timeout() {
            clock.advance_to(t);
            tx.handle_timeout(clock.now);
            while tx.poll_transmit().is_some() {
                sends.push((clock.now - start).as_millis());
            }
        }
        assert_eq!(&sends[..5], &[500, 1500, 3500, 7500, 11500]);
        assert_eq!(clock.now - start, cfg.timeout());
        assert_eq!(tx.poll_event(), Some(TxEvent::Timeout(Timer::F)));
        assert_eq!(tx.poll_event(), Some(TxEvent::Terminated));
    }

    #[test]
    fn provisional_moves_retransmits_to_t2_then_final_and_timer_k() {
        let mut clock = FakeClock::new();
        let cfg = TimerConfig::default();
        let mut tx = NonInviteClient::new(clock.now, cfg, false, b"REFER".to_vec());
        tx.poll_transmit();
        tx.handle_response(clock.now, resp(100));
        assert!(matches!(tx.poll_event(), Some(TxEvent::Response(_))));
        let (t, timer) = tx.poll_timeout().unwrap();
        assert_eq!(timer, Timer::E);
        clock.advance_to(t);
        tx.handle_timeout(clock.now);
        assert!(tx.poll_transmit().is_some());
        let (t2, _) = tx.poll_timeout().unwrap();
        assert_eq!(t2 - clock.now, cfg.t2, "Proceeding retransmits every T2");
        tx.handle_response(clock.now, resp(202));
        assert_eq!(tx.state(), NonInviteClientState::Completed);
        assert!(matches!(tx.poll_event(), Some(TxEvent::Response(m)) if m.code() == Some(202)));
        tx.handle_response(clock.now, resp(202));
        assert_eq!(
            tx.poll_event(),
            None,
            "retransmitted final response absorbed"
        );
        let (k, timer) = tx.poll_timeout().unwrap();
        assert_eq!((timer, k - clock.now), (Timer::K, cfg.t4));
        clock.advance_to(k);
        tx.handle_timeout(clock.now);
        assert_eq!(tx.poll_event(), Some(TxEvent::Terminated));
    }

    #[test]
    fn reliable_has_no_timer_e_and_no_timer_k() {
        let clock = FakeClock::new();
        let cfg = TimerConfig::default();
        let mut tx = NonInviteClient::new(clock.now, cfg, true, b"REGISTER".to_vec());
        assert_eq!(
            tx.poll_timeout(),
            Some((clock.now + cfg.timeout(), Timer::F))
        );
        tx.handle_response(clock.now, resp(200));
        assert_eq!(tx.state(), NonInviteClientState::Terminated);
    }
}
