//! The RTP port pool: even ports from `config.rtp.port_min ..= port_max` (RTCP may use the
//! odd port above, RFC 3550 §11), handed out round-robin so a just-released port is not
//! reused at once (late packets of the previous call would land in the new one).

use std::collections::BTreeSet;

use crate::config::RtpConfig;

/// Even RTP ports not in use.
#[derive(Debug, Clone)]
pub struct PortPool {
    min: u16,
    max: u16,
    next: u16,
    in_use: BTreeSet<u16>,
}

impl PortPool {
    /// A pool over the even ports of `min ..= max`.
    pub fn new(min: u16, max: u16) -> PortPool {
        let min = min + (min % 2);
        PortPool {
            min,
            max: max.max(min),
            next: min,
            in_use: BTreeSet::new(),
        }
    }

    pub fn from_config(c: &RtpConfig) -> PortPool {
        PortPool::new(c.port_min, c.port_max)
    }

    /// Number of even ports in the range.
    pub fn capacity(&self) -> usize {
        ((self.max - self.min) / 2 + 1) as usize
    }

    pub fn in_use(&self) -> usize {
        self.in_use.len()
    }

    /// The next free even port, or `None` when all are taken.
    pub fn allocate(&mut self) -> Option<u16> {
        for _ in 0..self.capacity() {
            let p = self.next;
            self.next = if p as u32 + 2 > self.max as u32 {
                self.min
            } else {
                p + 2
            };
            if self.in_use.insert(p) {
                return Some(p);
            }
        }
        None
    }

    /// Returns a port (unknown ports are ignored).
    pub fn release(&mut self, port: u16) {
        self.in_use.remove(&port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_even_ports_round_robin_until_exhausted() {
        let mut p = PortPool::new(20001, 20008);
        assert_eq!(p.capacity(), 4);
        let got: Vec<u16> = (0..4).map(|_| p.allocate().unwrap()).collect();
        assert_eq!(got, [20002, 20004, 20006, 20008]);
        assert_eq!(p.allocate(), None);
        p.release(20004);
        assert_eq!(p.allocate(), Some(20004));
        p.release(20002);
        p.release(20006);
        // Round-robin: the search continues after the last port handed out.
        assert_eq!(p.allocate(), Some(20006));
        assert_eq!(p.allocate(), Some(20002));
    }

    #[test]
    fn top_of_the_port_range_does_not_overflow() {
        let mut p = PortPool::new(65532, 65535);
        assert_eq!(p.allocate(), Some(65532));
        assert_eq!(p.allocate(), Some(65534));
        assert_eq!(p.allocate(), None);
    }
}
