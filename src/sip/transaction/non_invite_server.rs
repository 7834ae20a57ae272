//! Non-INVITE server transaction, RFC 3261 §17.2.2 (Figure 8): request retransmissions
//! are answered with the last response; Timer J (64·T1 on unreliable transports, zero on
//! reliable ones) keeps the Completed state to absorb them.
//!
//! ```text
//!   request → Trying --1xx--> Proceeding --1xx--> Proceeding
//!               \200-699          |200-699
//!                 `-----------> Completed --J--> Terminated
//! ```

use std::collections::VecDeque;
use std::time::Instant;

use super::{Timer, TimerConfig, TxEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteServerState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct NonInviteServer {
    state: NonInviteServerState,
    reliable: bool,
    cfg: TimerConfig,
    last_response: Option<Vec<u8>>,
    j: Option<Instant>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<TxEvent>,
}

impl NonInviteServer {
    pub fn new(cfg: TimerConfig, reliable: bool) -> NonInviteServer {
        NonInviteServer {
            state: NonInviteServerState::Trying,
            reliable,
            cfg,
            last_response: None,
            j: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> NonInviteServerState {
        self.state
    }

    /// A retransmitted request: resend the last response (none yet in Trying).
    pub fn handle_request(&mut self, _now: Instant) {
        if matches!(
            self.state,
            NonInviteServerState::Proceeding | NonInviteServerState::Completed
        ) {
            if let Some(r) = &self.last_response {
                self.transmits.push_back(r.clone());
            }
        }
    }

    pub fn send_response(&mut self, now: Instant, code: u16, bytes: Vec<u8>) {
        if matches!(
            self.state,
            NonInviteServerState::Completed | NonInviteServerState::Terminated
        ) {
            return;
        }
        self.transmits.push_back(bytes.clone());
        self.last_response = Some(bytes);
        if code < 200 {
            self.state = NonInviteServerState::Proceeding;
            return;
        }
        self.state = NonInviteServerState::Completed;
        if self.reliable {
            self.terminate();
        } else {
            self.j = Some(now + self.cfg.timeout());
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.j.is_some_and(|j| now >= j) {
            self.terminate();
        }
    }

    fn terminate(&mut self) {
        if self.state != NonInviteServerState::Terminated {
            self.state = NonInviteServerState::Terminated;
            self.j = None;
            self.events.push_back(TxEvent::Terminated);
        }
    }

    pub fn poll_timeout(&self) -> Option<(Instant, Timer)> {
        self.j.map(|t| (t, Timer::J))
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

    #[test]
    fn timer_j_absorbs_retransmissions_then_terminates() {
        let mut clock = FakeClock::new();
        let cfg = TimerConfig::default();
        let mut tx = NonInviteServer::new(cfg, false);
        tx.handle_request(clock.now);
        assert_eq!(tx.poll_transmit(), None, "nothing to resend while Trying");
        tx.send_response(clock.now, 200, b"200".to_vec());
        assert_eq!(tx.poll_transmit().as_deref(), Some(&b"200"[..]));
        let (t, timer) = tx.poll_timeout().unwrap();
        assert_eq!((timer, t - clock.now), (Timer::J, cfg.timeout()));
        tx.handle_request(clock.now);
        assert_eq!(tx.poll_transmit().as_deref(), Some(&b"200"[..]));
        tx.send_response(clock.now, 500, b"500".to_vec());
        assert_eq!(
            tx.poll_transmit(),
            None,
            "a second final response is not sent"
        );
        clock.advance_to(t);
        tx.handle_timeout(clock.now);
        assert_eq!(tx.state(), NonInviteServerState::Terminated);
        assert_eq!(tx.poll_event(), Some(TxEvent::Terminated));
    }

    #[test]
    fn provisional_then_final() {
        let clock = FakeClock::new();
        let mut tx = NonInviteServer::new(TimerConfig::default(), false);
        tx.send_response(clock.now, 100, b"100".to_vec());
        assert_eq!(tx.state(), NonInviteServerState::Proceeding);
        tx.handle_request(clock.now);
        assert_eq!(std::iter::from_fn(|| tx.poll_transmit()).count(), 2);
        tx.send_response(clock.now, 200, b"200".to_vec());
        assert_eq!(tx.state(), NonInviteServerState::Completed);
    }

    #[test]
    fn reliable_transport_terminates_at_once() {
        let clock = FakeClock::new();
        let mut tx = NonInviteServer::new(TimerConfig::default(), true);
        tx.send_response(clock.now, 200, b"200".to_vec());
        assert_eq!(tx.state(), NonInviteServerState::Terminated);
        assert_eq!(tx.poll_timeout(), None);
    }
}
