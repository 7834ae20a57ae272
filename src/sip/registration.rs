//! Outbound registration of a trunk (RFC 3261 §10) with digest authentication
//! (RFC 7616: MD5 and SHA-256, `qop=auth`): REGISTER, answer one 401/407 challenge per
//! nonce, refresh at 80 % of the granted expiry, retry with exponential backoff on
//! failure. Sans-IO: the endpoint sends what [`Registration::poll_request`] yields through a
//! non-INVITE client transaction and feeds back responses and transaction timeouts.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::digest::Challenge;
use super::message::{Message, Method};

#[derive(Debug, Clone)]
pub struct RegistrationConfig {
    pub trunk: String,
    pub registrar: SocketAddr,
    /// Domain of the address-of-record (`sip:user@domain`); the registrar's host by default.
    pub domain: String,
    pub username: String,
    /// Never logged; only hashed into `HA1`.
    pub password: Option<String>,
    pub expires: u32,
    /// First retry delay; doubles up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

/// What `doctor`, metrics and logs may show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationStatus {
    Registering,
    Registered { expires: u32 },
    Failed { reason: String, retry_in: Duration },
}

pub struct Registration {
    cfg: RegistrationConfig,
    status: RegistrationStatus,
    call_id: String,
    from_tag: String,
    cseq: u32,
    cnonce: String,
    nc: u32,
    last_nonce: Option<String>,
    next: Option<Instant>,
    failures: u32,
    outbox: VecDeque<Message>,
    contact: String,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("trunk", &self.cfg.trunk)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// `ids` supplies randomness: Call-ID, tag and cnonce material.
    pub fn new(
        now: Instant,
        cfg: RegistrationConfig,
        contact: String,
        ids: [u64; 3],
    ) -> Registration {
        Registration {
            call_id: format!("reg-{:016x}", ids[0]),
            from_tag: format!("{:x}", ids[1]),
            cnonce: format!("{:016x}", ids[2]),
            cfg,
            status: RegistrationStatus::Registering,
            cseq: 0,
            nc: 0,
            last_nonce: None,
            next: Some(now),
            failures: 0,
            outbox: VecDeque::new(),
            contact,
        }
    }

    pub fn trunk(&self) -> &str {
        &self.cfg.trunk
    }

    pub fn registrar(&self) -> SocketAddr {
        self.cfg.registrar
    }

    pub fn status(&self) -> &RegistrationStatus {
        &self.status
    }

    fn aor(&self) -> String {
        format!("sip:{}@{}", self.cfg.username, self.cfg.domain)
    }

    fn request_uri(&self) -> String {
        format!("sip:{}", self.cfg.domain)
    }

    fn build(&mut self, authorization: Option<String>) -> Message {
        self.cseq += 1;
        let mut m = Message::request(Method::Register, self.request_uri());
        m.push_header("From", format!("<{}>;tag={}", self.aor(), self.from_tag));
        m.push_header("To", format!("<{}>", self.aor()));
        m.push_header("Call-ID", self.call_id.clone());
        m.push_header("CSeq", format!("{} REGISTER", self.cseq));
        m.push_header("Contact", format!("<{}>", self.contact));
        m.push_header("Expires", self.cfg.expires.to_string());
        m.push_header("Max-Forwards", "70");
        if let Some(a) = authorization {
            m.push_header("Authorization", a);
        }
        m
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next.is_some_and(|t| now >= t) {
            self.next = None;
            self.last_nonce = None;
            let req = self.build(None);
            self.outbox.push_back(req);
        }
    }

    /// A final response to our REGISTER (provisionals are ignored).
    pub fn handle_response(&mut self, now: Instant, resp: &Message) {
        let Some(code) = resp.code() else { return };
        match code {
            100..=199 => {}
            200..=299 => {
                let granted = resp
                    .header_values("Contact")
                    .iter()
                    .find_map(|c| {
                        super::message::NameAddr::parse(c)
                            .and_then(|n| n.param("expires").and_then(|e| e.parse::<u32>().ok()))
                    })
                    .or_else(|| resp.header("Expires").and_then(|e| e.trim().parse().ok()))
                    .unwrap_or(self.cfg.expires);
                self.failures = 0;
                self.status = RegistrationStatus::Registered { expires: granted };
                let refresh = Duration::from_secs(u64::from(granted))
                    .mul_f64(0.8)
                    .max(Duration::from_secs(1));
                self.next = Some(now + refresh);
            }
            401 | 407 => {
                let header = if code == 401 {
                    "WWW-Authenticate"
                } else {
                    "Proxy-Authenticate"
                };
                let challenges: Vec<Challenge> = resp
                    .header_lines(header)
                    .filter_map(|v| Challenge::parse(v).ok())
                    .collect();
                // Prefer SHA-256 (RFC 7616 §3.7), else MD5.
                let pick = challenges
                    .iter()
                    .find(|c| {
                        matches!(
                            c.algorithm,
                            super::digest::Algorithm::Sha256 | super::digest::Algorithm::Sha256Sess
                        )
                    })
                    .or_else(|| challenges.first());
                let (Some(ch), Some(pw)) = (pick, self.cfg.password.clone()) else {
                    self.fail(
                        now,
                        format!("{code} without a usable challenge or no password configured"),
                    );
                    return;
                };
                if self.last_nonce.as_deref() == Some(ch.nonce.as_str()) && !ch.stale {
                    self.fail(now, format!("{code}: credentials refused"));
                    return;
                }
                self.last_nonce = Some(ch.nonce.clone());
                self.nc += 1;
                let auth = ch.answer(
                    "REGISTER",
                    &self.request_uri(),
                    &self.cfg.username,
                    &pw,
                    &self.cnonce,
                    self.nc,
                );
                let req = self.build(Some(auth));
                let req = if code == 407 {
                    let mut r = req;
                    if let Some(v) = r.header("Authorization").map(str::to_string) {
                        r.remove_header("Authorization");
                        r.push_header("Proxy-Authorization", v);
                    }
                    r
                } else {
                    req
                };
                self.outbox.push_back(req);
            }
            _ => self.fail(now, format!("registrar answered {code}")),
        }
    }

    /// The REGISTER transaction timed out (Timer F) or could not be sent.
    pub fn handle_transaction_timeout(&mut self, now: Instant) {
        self.fail(now, "no response from the registrar".into());
    }

    fn fail(&mut self, now: Instant, reason: String) {
        self.failures = self.failures.saturating_add(1);
        let factor = 2u32.saturating_pow(self.failures.saturating_sub(1).min(16));
        let retry = (self.cfg.backoff * factor).min(self.cfg.max_backoff);
        self.status = RegistrationStatus::Failed {
            reason,
            retry_in: retry,
        };
        self.next = Some(now + retry);
    }

    pub fn poll_request(&mut self) -> Option<Message> {
        self.outbox.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::digest::Challenger;
    use crate::sip::message::parse;

    fn cfg() -> RegistrationConfig {
        RegistrationConfig {
            trunk: "carrier".into(),
            registrar: "127.0.0.1:5070".parse().unwrap(),
            domain: "127.0.0.1".into(),
            username: "voicenav".into(),
            password: Some("pw".into()),
            expires: 100,
            backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
        }
    }

    fn reply(req: &Message, code: u16, extra: &[(&str, &str)]) -> Message {
        let mut r = Message::response_to(req, code, "X", Some("reg"));
        for (k, v) in extra {
            r.push_header(k, *v);
        }
        parse(&r.to_bytes()).unwrap()
    }

    #[test]
    fn challenge_answered_then_refresh_before_expiry() {
        let t0 = Instant::now();
        let mut reg = Registration::new(t0, cfg(), "sip:voicenav@127.0.0.1:5060".into(), [1, 2, 3]);
        reg.handle_timeout(t0);
        let first = reg.poll_request().unwrap();
        assert_eq!(first.header("Authorization"), None);
        let srv = Challenger::new("carrier", "k");
        let ch = srv.challenges(9);
        let challenge = reply(
            &first,
            401,
            &[("WWW-Authenticate", &ch[1]), ("WWW-Authenticate", &ch[0])],
        );
        reg.handle_response(t0, &challenge);
        let second = reg.poll_request().unwrap();
        assert_eq!(second.cseq().unwrap().0, 2);
        let auth = second.header("Authorization").unwrap();
        assert!(
            auth.contains("algorithm=SHA-256"),
            "SHA-256 preferred: {auth}"
        );
        assert_eq!(
            srv.verify(auth, "REGISTER", |_| Some("pw".into()))
                .as_deref(),
            Some("voicenav")
        );
        reg.handle_response(t0, &reply(&second, 200, &[("Expires", "100")]));
        assert_eq!(
            reg.status(),
            &RegistrationStatus::Registered { expires: 100 }
        );
        assert_eq!(reg.poll_timeout(), Some(t0 + Duration::from_secs(80)));
    }

    #[test]
    fn refused_credentials_and_timeouts_back_off() {
        let t0 = Instant::now();
        let mut reg = Registration::new(t0, cfg(), "sip:v@h".into(), [1, 2, 3]);
        reg.handle_timeout(t0);
        let first = reg.poll_request().unwrap();
        let ch = Challenger::new("carrier", "k").challenges(1);
        reg.handle_response(t0, &reply(&first, 401, &[("WWW-Authenticate", &ch[1])]));
        let second = reg.poll_request().unwrap();
        reg.handle_response(t0, &reply(&second, 401, &[("WWW-Authenticate", &ch[1])]));
        assert!(reg.poll_request().is_none(), "same nonce refused: no loop");
        assert!(
            matches!(reg.status(), RegistrationStatus::Failed { retry_in, .. } if *retry_in == Duration::from_secs(2))
        );
        reg.handle_transaction_timeout(t0);
        assert_eq!(reg.poll_timeout(), Some(t0 + Duration::from_secs(4)));
        for _ in 0..10 {
            reg.handle_transaction_timeout(t0);
        }
        assert_eq!(
            reg.poll_timeout(),
            Some(t0 + Duration::from_secs(60)),
            "capped"
        );
    }
}
