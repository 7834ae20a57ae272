//! INVITE server transaction, RFC 3261 §17.2.1 (Figure 7) with the `Accepted` state of
//! RFC 6026 §7.1: a 2xx is retransmitted on Timer G (unreliable transports) until the
//! transaction user reports the ACK, and Timer H reports a lost ACK so the user can end the
//! call with BYE. A 3xx–6xx is retransmitted on Timer G until the ACK (absorbed here), then
//! Timer I absorbs ACK retransmissions.
//!
//! ```text
//!              INVITE → 100 Trying
//!                  |
//!             Proceeding --1xx--> Proceeding
//!              |2xx       \300-699
//!           Accepted      Completed --G--> retransmit
//!   G: retransmit 2xx      |ACK     \H: Timeout
//!   ACK: Terminated     Confirmed
//!   H: Timeout            |I
//!                      Terminated
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Timer, TimerConfig, TxEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteServerState {
    Proceeding,
    Completed,
    Accepted,
    Confirmed,
    Terminated,
}

#[derive(Debug)]
pub struct InviteServer {
    state: InviteServerState,
    reliable: bool,
    cfg: TimerConfig,
    last_response: Option<Vec<u8>>,
    /// Timer G: deadline and the interval that produced it.
    g: Option<(Instant, Duration)>,
    h: Option<Instant>,
    i: Option<Instant>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<TxEvent>,
}

impl InviteServer {
    /// A transaction for a new INVITE. The user sends 100 Trying with [`Self::send_response`].
    pub fn new(cfg: TimerConfig, reliable: bool) -> InviteServer {
        InviteServer {
            state: InviteServerState::Proceeding,
            reliable,
            cfg,
            last_response: None,
            g: None,
            h: None,
            i: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> InviteServerState {
        self.state
    }

    /// A retransmission of the INVITE: the last response goes out again (§17.2.1).
    pub fn handle_request(&mut self, _now: Instant) {
        if matches!(
            self.state,
            InviteServerState::Proceeding
                | InviteServerState::Completed
                | InviteServerState::Accepted
        ) {
            if let Some(r) = &self.last_response {
                self.transmits.push_back(r.clone());
            }
        }
    }

    /// The user sends a response with status `code` (already serialised).
    pub fn send_response(&mut self, now: Instant, code: u16, bytes: Vec<u8>) {
        if self.state != InviteServerState::Proceeding {
            // Only a 2xx retransmission may follow a 2xx (RFC 6026); anything else is ignored.
            if self.state == InviteServerState::Accepted && (200..300).contains(&code) {
                self.transmits.push_back(bytes);
            }
            return;
        }
        self.transmits.push_back(bytes.clone());
        self.last_response = Some(bytes);
        if code < 200 {
            return;
        }
        self.state = if code < 300 {
            InviteServerState::Accepted
        } else {
            InviteServerState::Completed
        };
        if !self.reliable {
            self.g = Some((now + self.cfg.t1, self.cfg.t1));
        }
        self.h = Some(now + self.cfg.timeout());
    }

    /// The ACK arrived: for a 3xx–6xx it matched this transaction; for a 2xx the user
    /// matched it through the dialog (it is its own transaction, §13.2.2.4).
    pub fn handle_ack(&mut self, now: Instant) {
        match self.state {
            InviteServerState::Completed => {
                self.state = InviteServerState::Confirmed;
                self.g = None;
                self.h = None;
                if self.reliable {
                    self.terminate();
                } else {
                    self.i = Some(now + self.cfg.t4);
                }
            }
            InviteServerState::Accepted => self.terminate(),
            _ => {}
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(h) = self.h {
            if now >= h {
                self.events.push_back(TxEvent::Timeout(Timer::H));
                self.terminate();
                return;
            }
        }
        if let Some(i) = self.i {
            if now >= i {
                self.terminate();
                return;
            }
        }
        if let Some((g, interval)) = self.g {
            if now >= g {
                if let Some(r) = &self.last_response {
                    self.transmits.push_back(r.clone());
                }
                let next = self.cfg.backoff(interval);
                self.g = Some((now + next, next));
            }
        }
    }

    fn terminate(&mut self) {
        if self.state != InviteServerState::Terminated {
            self.state = InviteServerState::Terminated;
            self.g = None;
            self.h = None;
            self.i = None;
            self.events.push_back(TxEvent::Terminated);
        }
    }

    pub fn poll_timeout(&self) -> Option<(Instant, Timer)> {
        [
            self.g.map(|(t, _)| (t, Timer::G)),
            self.h.map(|t| (t, Timer::H)),
            self.i.map(|t| (t, Timer::I)),
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

    fn drain(tx: &mut InviteServer) -> usize {
        std::iter::from_fn(|| tx.poll_transmit()).count()
    }

    #[test]
    fn retransmitted_invite_gets_the_last_response_again() {
        let clock = FakeClock::new();
        let mut tx = InviteServer::new(TimerConfig::default(), false);
        tx.send_response(clock.now, 100, b"100".to_vec());
        assert_eq!(drain(&mut tx), 1);
        tx.handle_request(clock.now);
        assert_eq!(tx.poll_transmit().as_deref(), Some(&b"100"[..]));
        assert_eq!(tx.poll_timeout(), None, "no timers while proceeding");
    }

    #[test]
    fn timer_g_retransmits_2xx_with_backoff_until_ack() {
        let mut clock = FakeClock::new();
        let cfg = TimerConfig::default();
        let mut tx = InviteServer::new(cfg, false);
        let start = clock.now;
        tx.send_response(clock.now, 200, b"200".to_vec());
        assert_eq!(tx.state(), InviteServerState::Accepted);
        assert_eq!(drain(&mut tx), 1);
        let mut gaps = Vec::new();
        let mut last = start;
        for _ in 0..5 {
            let (t, timer) = tx.poll_timeout().unwrap();
            assert_eq!(timer, Timer::G);
            clock.advance_to(t);
            tx.handle_timeout(clock.now);
            assert_eq!(drain(&mut tx), 1);
            gaps.push((t - last).as_millis());
            last = t;
        }
        assert_eq!(
            gaps,
            vec![500, 1000, 2000, 4000, 4000],
            "T1 doubling capped at T2"
        );
        tx.handle_ack(clock.now);
        assert_eq!(tx.state(), InviteServerState::Terminated);
        assert_eq!(tx.poll_event(), Some(TxEvent::Terminated));
        assert_eq!(tx.poll_timeout(), None);
    }

    #[test]
    fn timer_h_reports_a_lost_ack() {
        let mut clock = FakeClock::new();
        let cfg = TimerConfig::default();
        let mut tx = InviteServer::new(cfg, false);
        let start = clock.now;
        tx.send_response(clock.now, 200, b"200".to_vec());
        let mut sent = drain(&mut tx);
        while let Some((t, _)) = tx.poll_timeout() {
            clock.advance_to(t);
            tx.handle_timeout(clock.now);
            sent += drain(&mut tx);
        }
        assert_eq!(clock.now - start, cfg.timeout(), "Timer H is 64·T1");
        assert_eq!(tx.poll_event(), Some(TxEvent::Timeout(Timer::H)));
        assert_eq!(tx.poll_event(), Some(TxEvent::Terminated));
        // G fires at 0.5, 1.5, 3.5, 7.5, 11.5 … 31.5 s: 10 retransmissions, plus the original.
        assert_eq!(sent, 11);
    }

    #[test]
    fn error_response_ack_then_timer_i() {
        let mut clock = FakeClock::new();
        let cfg = TimerConfig::default();
        let mut tx = InviteServer::new(cfg, false);
        tx.send_response(clock.now, 486, b"486".to_vec());
        assert_eq!(tx.state(), InviteServerState::Completed);
        drain(&mut tx);
        clock.advance(Duration::from_millis(100));
        tx.handle_ack(clock.now);
        assert_eq!(tx.state(), InviteServerState::Confirmed);
        let (t, timer) = tx.poll_timeout().unwrap();
        assert_eq!((timer, t - clock.now), (Timer::I, cfg.t4));
        // ACK retransmissions are absorbed: nothing is sent.
        tx.handle_ack(clock.now);
        tx.handle_request(clock.now);
        assert_eq!(drain(&mut tx), 0);
        clock.advance_to(t);
        tx.handle_timeout(clock.now);
        assert_eq!(tx.state(), InviteServerState::Terminated);
    }

    #[test]
    fn reliable_transport_has_no_timer_g_and_no_timer_i() {
        let clock = FakeClock::new();
        let cfg = TimerConfig::default();
        let mut tx = InviteServer::new(cfg, true);
        tx.send_response(clock.now, 487, b"487".to_vec());
        assert_eq!(
            tx.poll_timeout(),
            Some((clock.now + cfg.timeout(), Timer::H))
        );
        tx.handle_ack(clock.now);
        assert_eq!(tx.state(), InviteServerState::Terminated);
    }

    #[test]
    fn error_response_without_ack_times_out_on_h() {
        let mut clock = FakeClock::new();
        let mut tx = InviteServer::new(TimerConfig::default(), true);
        tx.send_response(clock.now, 503, b"503".to_vec());
        let (t, _) = tx.poll_timeout().unwrap();
        clock.advance_to(t);
        tx.handle_timeout(clock.now);
        assert_eq!(tx.poll_event(), Some(TxEvent::Timeout(Timer::H)));
    }
}
