//! Who may start a call, and how fast: the inbound access control of a trunk (source
//! networks by CIDR, else an RFC 7616 digest challenge for configured users, else 403) and
//! the overload guard (a token bucket of new calls per second; the concurrent-call ceiling
//! is checked by the endpoint, which counts calls). Sans-IO: time is passed in.

use std::net::IpAddr;
use std::time::Instant;

use ipnet::IpNet;

use super::digest::Challenger;
use super::message::Message;

/// The decision for a new INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Answer 401 with these `WWW-Authenticate` values.
    Challenge(Vec<String>),
    Forbidden,
}

#[derive(Debug, Clone)]
pub struct Acl {
    allow: Vec<IpNet>,
    /// (username, password) of users that may authenticate; passwords from the environment.
    users: Vec<(String, String)>,
    challenger: Challenger,
}

impl Acl {
    pub fn new(allow: Vec<IpNet>, users: Vec<(String, String)>, realm: &str, secret: &str) -> Acl {
        Acl {
            allow,
            users,
            challenger: Challenger::new(realm, secret),
        }
    }

    /// Allows everyone (tests, and deployments behind an SBC that filters).
    /// The digest algorithms offered to challenged callers, in order of preference.
    pub fn with_algorithms(mut self, algorithms: Vec<super::digest::Algorithm>) -> Acl {
        self.challenger = self.challenger.with_algorithms(algorithms);
        self
    }

    pub fn open() -> Acl {
        Acl::new(
            vec![
                "0.0.0.0/0".parse().expect("static CIDR"),
                "::/0".parse().expect("static CIDR"),
            ],
            Vec::new(),
            "voicenav",
            "",
        )
    }

    pub fn check(&self, src: IpAddr, req: &Message, random: u64) -> Admission {
        let src = match src {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        if self.allow.iter().any(|net| net.contains(&src)) {
            return Admission::Allowed;
        }
        if self.users.is_empty() {
            return Admission::Forbidden;
        }
        let method = req
            .method()
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        if let Some(auth) = req.header("Authorization") {
            let found = self.challenger.verify(auth, &method, |u| {
                self.users
                    .iter()
                    .find(|(name, _)| name == u)
                    .map(|(_, pw)| pw.clone())
            });
            if found.is_some() {
                return Admission::Allowed;
            }
        }
        Admission::Challenge(self.challenger.challenges(random))
    }
}

/// A token bucket: `rate` new calls per second, bursts up to one second's worth.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> RateLimiter {
        let rate = f64::from(per_second.max(1));
        RateLimiter {
            rate,
            tokens: rate,
            last: None,
        }
    }

    /// Takes a token if one is available at `now` (a `now` earlier than the last is ignored).
    pub fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            if now > last {
                self.tokens = (self.tokens + (now - last).as_secs_f64() * self.rate).min(self.rate);
                self.last = Some(now);
            }
        } else {
            self.last = Some(now);
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sip::digest::Challenge;
    use crate::sip::message::parse;

    fn invite(auth: Option<&str>) -> Message {
        let mut m = parse(
            b"INVITE sip:bot@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n\
To: <sip:bot@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
        )
        .unwrap();
        if let Some(a) = auth {
            m.push_header("Authorization", a);
        }
        m
    }

    #[test]
    fn cidr_then_challenge_then_forbidden() {
        let acl = Acl::new(
            vec!["10.0.0.0/8".parse().unwrap()],
            vec![("pbx".into(), "pw".into())],
            "voicenav",
            "s",
        );
        assert_eq!(
            acl.check("10.1.2.3".parse().unwrap(), &invite(None), 1),
            Admission::Allowed
        );
        let Admission::Challenge(ch) = acl.check("192.0.2.1".parse().unwrap(), &invite(None), 1)
        else {
            panic!("expected a challenge")
        };
        let c = Challenge::parse(&ch[1]).unwrap();
        let good = c.answer("INVITE", "sip:bot@h", "pbx", "pw", "cn", 1);
        assert_eq!(
            acl.check("192.0.2.1".parse().unwrap(), &invite(Some(&good)), 2),
            Admission::Allowed
        );
        let bad = c.answer("INVITE", "sip:bot@h", "pbx", "wrong", "cn", 1);
        assert!(matches!(
            acl.check("192.0.2.1".parse().unwrap(), &invite(Some(&bad)), 2),
            Admission::Challenge(_)
        ));
        let closed = Acl::new(vec!["10.0.0.0/8".parse().unwrap()], vec![], "voicenav", "s");
        assert_eq!(
            closed.check("127.0.0.1".parse().unwrap(), &invite(None), 1),
            Admission::Forbidden
        );
    }

    #[test]
    fn token_bucket_limits_new_calls_per_second() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(10);
        assert_eq!((0..20).filter(|_| r.take(t0)).count(), 10);
        assert!(!r.take(t0 + Duration::from_millis(50)));
        assert!(r.take(t0 + Duration::from_millis(100)));
        // Time going backwards is ignored, not a refill.
        assert!(!r.take(t0));
    }
}
