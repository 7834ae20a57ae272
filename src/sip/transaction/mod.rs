//! The transaction layer of RFC 3261 §17: four state machines, one file each, every one
//! sans-IO. A machine is fed with `handle_*(now, …)` and drained with
//! [`poll_transmit`](InviteServer::poll_transmit) (bytes for the transaction's peer),
//! `poll_event` (what the transaction user must know) and `poll_timeout` (the earliest
//! named [`Timer`] deadline). The endpoint owns the machines in a map keyed by
//! [`TransactionKey`] (RFC 3261 §17.2.3 branch matching, with the RFC 2543 fallback).
//!
//! - [`InviteServer`] — Figure 7, plus the `Accepted` state of RFC 6026 in which the 2xx is
//!   retransmitted on Timer G until the ACK, and Timer H reports a lost ACK.
//! - [`NonInviteServer`] — Figure 8 (Timer J).
//! - [`InviteClient`] — Figure 5 (Timers A, B, D); builds the ACK for 3xx–6xx itself.
//! - [`NonInviteClient`] — Figure 6 (Timers E, F, K), used for REGISTER, BYE, REFER.

mod invite_client;
mod invite_server;
mod non_invite_client;
mod non_invite_server;

pub use invite_client::{InviteClient, InviteClientState};
pub use invite_server::{InviteServer, InviteServerState};
pub use non_invite_client::{NonInviteClient, NonInviteClientState};
pub use non_invite_server::{NonInviteServer, NonInviteServerState};

use super::message::{Message, Method};
pub use super::timer::{Timer, TimerConfig};

/// What a transaction tells its user.
#[derive(Debug, Clone, PartialEq)]
pub enum TxEvent {
    /// A response for a client transaction's user (provisional or final).
    Response(Message),
    /// The transaction gave up: Timer B/F (no response) or Timer H (no ACK).
    Timeout(Timer),
    /// The transaction is over and may be forgotten.
    Terminated,
}

/// The magic cookie that marks an RFC 3261 branch.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Matches requests and responses to a transaction (RFC 3261 §17.1.3, §17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionKey {
    /// The top Via branch (RFC 3261) or, for RFC 2543 peers, a digest of the request's
    /// identifying fields.
    pub branch: String,
    pub sent_by: String,
    /// The method, with ACK folded into INVITE (an ACK for a non-2xx matches its INVITE).
    pub method: String,
}

impl TransactionKey {
    /// The key of a received request (server transaction) or a received response (client
    /// transaction: sent-by is ours, so it is left out).
    pub fn of(msg: &Message) -> Option<TransactionKey> {
        let via = msg.top_via()?;
        let (_, cseq_method) = msg.cseq()?;
        let method = match msg.method().unwrap_or(&cseq_method) {
            Method::Ack => Method::Invite,
            m => m.clone(),
        };
        let sent_by = if msg.is_request() {
            via.sent_by().to_ascii_lowercase()
        } else {
            String::new()
        };
        let branch = match via.branch() {
            Some(b) if b.starts_with(MAGIC_COOKIE) && b.len() > MAGIC_COOKIE.len() => b.to_string(),
            _ => {
                // RFC 2543 fallback (§17.2.3), simplified: From tag, Call-ID, CSeq number and
                // top Via identify the transaction; the Request-URI and To tag are left out so
                // an ACK for a 3xx–6xx (which carries our To tag) still matches its INVITE.
                let (num, _) = msg.cseq()?;
                format!(
                    "2543|{}|{}|{num}|{}",
                    msg.from_tag().unwrap_or_default(),
                    msg.call_id().unwrap_or(""),
                    msg.header_values("Via").first().copied().unwrap_or("")
                )
            }
        };
        Some(TransactionKey {
            branch,
            sent_by,
            method: method.as_str().to_string(),
        })
    }

    /// The key of a CANCEL's target INVITE (same branch, method INVITE).
    pub fn invite_of_cancel(&self) -> TransactionKey {
        TransactionKey {
            method: "INVITE".into(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::time::{Duration, Instant};

    /// A fake clock for transaction tests: starts at an arbitrary instant, moves only when told.
    pub struct FakeClock {
        pub now: Instant,
    }

    impl FakeClock {
        pub fn new() -> FakeClock {
            FakeClock {
                now: Instant::now(),
            }
        }
        pub fn advance_to(&mut self, t: Instant) {
            assert!(t >= self.now, "time went backwards in a test");
            self.now = t;
        }
        pub fn advance(&mut self, d: Duration) {
            self.now += d;
        }
    }
}
