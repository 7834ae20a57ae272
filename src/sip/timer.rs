//! The RFC 3261 timers (§17, Table 4 of Appendix A) as a named table: every transaction
//! reports its next deadline as `(Instant, Timer)` from `poll_timeout()`, and the driver
//! calls `handle_timeout(now)` when the earliest one is due. Nothing here sleeps.

use std::time::Duration;

/// A transaction timer of RFC 3261 §17.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE client: request retransmission (unreliable transports), T1 doubling.
    A,
    /// INVITE client: transaction timeout, 64·T1.
    B,
    /// INVITE client: wait for response retransmissions in Completed, ≥32 s unreliable.
    D,
    /// Non-INVITE client: request retransmission, T1 doubling up to T2.
    E,
    /// Non-INVITE client: transaction timeout, 64·T1.
    F,
    /// INVITE server: response retransmission, T1 doubling up to T2.
    G,
    /// INVITE server: wait for ACK, 64·T1.
    H,
    /// INVITE server: absorb ACK retransmissions in Confirmed, T4 unreliable.
    I,
    /// Non-INVITE server: absorb request retransmissions in Completed, 64·T1 unreliable.
    J,
    /// Non-INVITE client: absorb response retransmissions in Completed, T4 unreliable.
    K,
}

/// The base intervals of RFC 3261 §17.1.1.1 (T1 round-trip estimate, T2 cap, T4 network
/// lifetime). Tests shrink T1 to run Timer H paths in a few seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// A configuration with the given T1 and T2/T4 kept in RFC proportion (T2 = 8·T1, T4 = 10·T1).
    pub fn with_t1(t1: Duration) -> TimerConfig {
        TimerConfig {
            t1,
            t2: t1 * 8,
            t4: t1 * 10,
        }
    }
    /// 64·T1: Timers B, F, H, J.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
    /// Next retransmission interval after `current`, doubled and capped at T2 (Timers E, G).
    pub fn backoff(&self, current: Duration) -> Duration {
        (current * 2).min(self.t2)
    }
}
