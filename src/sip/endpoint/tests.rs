//! Deterministic simulation of the endpoint against a scripted fake caller on a fake clock.

use std::time::{Duration, Instant};

use super::*;
use crate::sip::message::parse;

const CALLER: &str = "127.0.0.1:5061";
const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

struct Sim {
    ep: Endpoint,
    now: Instant,
    peer: Peer,
}

fn media() -> LocalMedia {
    LocalMedia {
        address: "127.0.0.1".parse().unwrap(),
        rtp_port: 20000,
        session_id: 1,
        version: 1,
    }
}

impl Sim {
    fn new(cfg: EndpointConfig) -> Sim {
        let now = Instant::now();
        Sim {
            ep: Endpoint::new(now, cfg),
            now,
            peer: Peer {
                transport: Transport::Udp,
                addr: CALLER.parse().unwrap(),
            },
        }
    }

    fn open() -> Sim {
        Sim::new(EndpointConfig::loopback(5060))
    }

    fn send(&mut self, text: &str) {
        self.ep.handle_input(self.now, self.peer, text.as_bytes());
    }

    fn out(&mut self) -> Vec<Message> {
        std::iter::from_fn(|| self.ep.poll_transmit())
            .map(|t| parse(&t.payload).unwrap())
            .collect()
    }

    fn codes(&mut self) -> Vec<u16> {
        self.out().iter().filter_map(Message::code).collect()
    }

    fn events(&mut self) -> Vec<CallEvent> {
        std::iter::from_fn(|| self.ep.poll_event()).collect()
    }

    /// Advances to the next deadline (fails on none).
    fn tick(&mut self) {
        let t = self.ep.poll_timeout().expect("a pending timer");
        self.now = self.now.max(t);
        self.ep.handle_timeout(self.now);
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.ep.poll_timeout().filter(|t| *t <= end) {
            self.now = self.now.max(t);
            self.ep.handle_timeout(self.now);
        }
        self.now = end;
    }
}

fn invite(call: &str, branch: &str, cseq: u32, to_tag: Option<&str>, body: &str) -> String {
    let to = match to_tag {
        Some(t) => format!("<sip:bot@127.0.0.1>;tag={t}"),
        None => "<sip:bot@127.0.0.1>".into(),
    };
    format!(
        "INVITE sip:bot@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch={branch};rport\r\n\
From: \"Caller\" <sip:02088886666@127.0.0.1>;tag=ct\r\nTo: {to}\r\nCall-ID: {call}\r\nCSeq: {cseq} INVITE\r\n\
Contact: <sip:caller@{CALLER}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn in_dialog(
    method: &str,
    call: &str,
    branch: &str,
    cseq: u32,
    to_tag: &str,
    extra: &str,
    body: &str,
) -> String {
    format!(
        "{method} sip:voicenav@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch={branch}\r\n\
From: <sip:02088886666@127.0.0.1>;tag=ct\r\nTo: <sip:bot@127.0.0.1>;tag={to_tag}\r\nCall-ID: {call}\r\n\
CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Sets up an answered and ACKed call; returns our To tag.
fn established(sim: &mut Sim, call: &str) -> String {
    sim.send(&invite(call, "z9hG4bK-inv", 1, None, OFFER));
    assert_eq!(sim.codes(), vec![100]);
    let ev = sim.events();
    assert!(matches!(&ev[0], CallEvent::Incoming { ani, remote_rtp, .. }
        if ani == "02088886666" && *remote_rtp == Some("127.0.0.1:6000".parse().unwrap())));
    sim.ep.handle_command(
        sim.now,
        CallCommand::Answer {
            call: CallId(call.into()),
            media: media(),
        },
    );
    let ok = sim.out().pop().unwrap();
    assert_eq!(ok.code(), Some(200));
    let tag = ok.to_tag().unwrap();
    assert!(String::from_utf8_lossy(&ok.body).contains("m=audio 20000 RTP/AVP 0 101"));
    let ev = sim.events();
    assert!(
        matches!(&ev[..], [CallEvent::MediaAnswered { answer, .. }]
        if answer.codec == crate::sdp::Codec::Pcmu && answer.dtmf_pt == Some(101)
            && answer.remote_rtp == Some("127.0.0.1:6000".parse().unwrap())),
        "{ev:?}"
    );
    sim.send(&in_dialog("ACK", call, "z9hG4bK-ack", 1, &tag, "", ""));
    assert_eq!(
        sim.events(),
        vec![CallEvent::Established {
            call: CallId(call.into())
        }]
    );
    tag
}

#[test]
fn basic_call_then_caller_bye() {
    let mut sim = Sim::open();
    let tag = established(&mut sim, "c1");
    sim.send(&in_dialog("BYE", "c1", "z9hG4bK-bye", 2, &tag, "", ""));
    assert_eq!(sim.codes(), vec![200]);
    let ev = sim.events();
    assert_eq!(
        ev[0],
        CallEvent::CallerHangup {
            call: CallId("c1".into()),
            reason: HangupReason::Bye
        }
    );
    assert_eq!(
        ev[1],
        CallEvent::Closed {
            call: CallId("c1".into())
        }
    );
    assert_eq!(sim.ep.active_calls(), 0);
    // Retransmitted BYE gets the same 200 from its transaction.
    sim.send(&in_dialog("BYE", "c1", "z9hG4bK-bye", 2, &tag, "", ""));
    assert_eq!(sim.codes(), vec![200]);
}

#[test]
fn retransmitted_invite_is_absorbed() {
    let mut sim = Sim::open();
    sim.send(&invite("c2", "z9hG4bK-a", 1, None, OFFER));
    sim.send(&invite("c2", "z9hG4bK-a", 1, None, OFFER));
    assert_eq!(sim.codes(), vec![100, 100]);
    assert_eq!(sim.events().len(), 1, "one Incoming only");
}

#[test]
fn lost_ack_retransmits_200_then_bye_after_timer_h() {
    let mut sim = Sim::open();
    sim.send(&invite("c3", "z9hG4bK-b", 1, None, OFFER));
    sim.events();
    let start = sim.now;
    sim.ep.handle_command(
        sim.now,
        CallCommand::Answer {
            call: CallId("c3".into()),
            media: media(),
        },
    );
    let mut oks = sim.codes().iter().filter(|c| **c == 200).count();
    let mut bye = None;
    for _ in 0..100 {
        sim.tick();
        for m in sim.out() {
            match (m.code(), m.method()) {
                (Some(200), _) => oks += 1,
                (_, Some(Method::Bye)) => bye = Some(m),
                _ => {}
            }
        }
        if bye.is_some() {
            break;
        }
    }
    let bye = bye.expect("BYE after Timer H");
    assert!(oks >= 8, "200 retransmitted on Timer G ({oks})");
    assert_eq!(sim.now - start, TimerConfig::default().timeout());
    let ev = sim.events();
    assert!(ev.contains(&CallEvent::CallerHangup {
        call: CallId("c3".into()),
        reason: HangupReason::NoAck
    }));
    // The caller answers the BYE: the call is closed.
    let mut ok = Message::response_to(&bye, 200, "OK", None);
    ok.start = message::StartLine::Response {
        version: "SIP/2.0".into(),
        code: 200,
        reason: "OK".into(),
    };
    sim.ep.handle_input(sim.now, sim.peer, &ok.to_bytes());
    assert!(sim.events().contains(&CallEvent::Closed {
        call: CallId("c3".into())
    }));
}

#[test]
fn cancel_before_answer_gives_200_and_487() {
    let mut sim = Sim::open();
    sim.send(&invite("c4", "z9hG4bK-c", 1, None, OFFER));
    sim.out();
    sim.events();
    let cancel = format!(
        "CANCEL sip:bot@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK-c;rport\r\n\
From: \"Caller\" <sip:02088886666@127.0.0.1>;tag=ct\r\nTo: <sip:bot@127.0.0.1>\r\nCall-ID: c4\r\nCSeq: 1 CANCEL\r\n\
Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    sim.send(&cancel);
    let out = sim.out();
    let got: Vec<(u16, Method)> = out
        .iter()
        .map(|m| (m.code().unwrap(), m.cseq().unwrap().1))
        .collect();
    assert_eq!(got, vec![(200, Method::Cancel), (487, Method::Invite)]);
    let ev = sim.events();
    assert_eq!(
        ev[0],
        CallEvent::CallerHangup {
            call: CallId("c4".into()),
            reason: HangupReason::Cancel
        }
    );
    // The ACK for the 487 is absorbed; the 487 is no longer retransmitted.
    let tag = out[1].to_tag().unwrap();
    let ack = format!(
        "ACK sip:bot@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK-c;rport\r\n\
From: \"Caller\" <sip:02088886666@127.0.0.1>;tag=ct\r\nTo: <sip:bot@127.0.0.1>;tag={tag}\r\nCall-ID: c4\r\n\
CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    sim.send(&ack);
    sim.advance(Duration::from_secs(40));
    assert!(sim.codes().is_empty());
    // CANCEL of nothing: 481.
    sim.send(&cancel.replace("z9hG4bK-c", "z9hG4bK-zz"));
    assert_eq!(sim.codes(), vec![481]);
}

#[test]
fn options_unknown_garbage_and_bad_requests() {
    let mut sim = Sim::open();
    let options = format!(
        "OPTIONS sip:bot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK-o\r\n\
From: <sip:p@127.0.0.1>;tag=1\r\nTo: <sip:bot@127.0.0.1>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n"
    );
    sim.send(&options);
    let ok = sim.out().pop().unwrap();
    assert_eq!(ok.code(), Some(200));
    assert_eq!(ok.header("Allow"), Some(ALLOW));
    assert!(ok.header("Accept").unwrap().contains("application/sdp"));
    sim.send(
        &options
            .replace("OPTIONS", "FROBNICATE")
            .replace("z9hG4bK-o", "z9hG4bK-f"),
    );
    assert_eq!(sim.codes(), vec![501]);
    sim.send("\u{1}\u{2} definitely not SIP");
    assert!(sim.out().is_empty());
    assert_eq!(sim.ep.stats().dropped, 1);
    sim.send(
        &options
            .replace("Call-ID: o1\r\n", "")
            .replace("z9hG4bK-o", "z9hG4bK-p"),
    );
    let bad = sim.out().pop().unwrap();
    assert_eq!(
        (bad.code(), bad_reason(&bad)),
        (Some(400), "Missing Call-ID header".to_string())
    );
}

fn bad_reason(m: &Message) -> String {
    match &m.start {
        message::StartLine::Response { reason, .. } => reason.clone(),
        _ => String::new(),
    }
}

#[test]
fn rport_and_received_are_filled_in() {
    let mut sim = Sim::open();
    sim.peer.addr = "127.0.0.1:40000".parse().unwrap();
    sim.send(&invite("c5", "z9hG4bK-r", 1, None, OFFER));
    let t = sim.ep.poll_transmit().unwrap();
    assert_eq!(
        t.peer.addr,
        "127.0.0.1:40000".parse().unwrap(),
        "answered to the source port (rport)"
    );
    let via = parse(&t.payload).unwrap().top_via().unwrap();
    assert_eq!(via.param("rport"), Some("40000"));
    assert_eq!(via.param("received"), Some("127.0.0.1"));
}

#[test]
fn overload_gives_503_with_retry_after() {
    let mut cfg = EndpointConfig::loopback(5060);
    cfg.max_calls = 1;
    let mut sim = Sim::new(cfg);
    sim.send(&invite("c6", "z9hG4bK-1", 1, None, OFFER));
    sim.send(&invite("c7", "z9hG4bK-2", 1, None, OFFER));
    let out = sim.out();
    let last = out.last().unwrap();
    assert_eq!(last.code(), Some(503));
    assert_eq!(last.header("Retry-After"), Some("5"));
    let mut cfg = EndpointConfig::loopback(5060);
    cfg.max_calls_per_second = 2;
    let mut sim = Sim::new(cfg);
    for i in 0..3 {
        sim.send(&invite(
            &format!("r{i}"),
            &format!("z9hG4bK-r{i}"),
            1,
            None,
            OFFER,
        ));
    }
    let codes = sim.codes();
    assert_eq!(codes.iter().filter(|c| **c == 503).count(), 1, "{codes:?}");
}

#[test]
fn acl_forbids_or_challenges() {
    let mut cfg = EndpointConfig::loopback(5060);
    cfg.acl = Acl::new(vec!["10.0.0.0/8".parse().unwrap()], vec![], "voicenav", "s");
    let mut sim = Sim::new(cfg);
    sim.send(&invite("c8", "z9hG4bK-8", 1, None, OFFER));
    assert_eq!(sim.codes(), vec![100, 403]);
    assert!(sim.events().is_empty());

    let mut cfg = EndpointConfig::loopback(5060);
    cfg.acl = Acl::new(
        vec!["10.0.0.0/8".parse().unwrap()],
        vec![("pbx".into(), "pw".into())],
        "voicenav",
        "s",
    );
    let mut sim = Sim::new(cfg);
    sim.send(&invite("c9", "z9hG4bK-9", 1, None, OFFER));
    let out = sim.out();
    let challenge = out.last().unwrap();
    assert_eq!(challenge.code(), Some(401));
    let ch = crate::sip::digest::Challenge::parse(challenge.header("WWW-Authenticate").unwrap())
        .unwrap();
    let auth = ch.answer("INVITE", "sip:bot@127.0.0.1:5060", "pbx", "pw", "cn", 1);
    let retry = invite("c9", "z9hG4bK-9b", 2, None, OFFER).replace(
        "Max-Forwards",
        &format!("Authorization: {auth}\r\nMax-Forwards"),
    );
    sim.send(&retry);
    assert_eq!(sim.codes(), vec![100]);
    assert!(matches!(sim.events()[0], CallEvent::Incoming { .. }));
}

#[test]
fn no_common_codec_is_488() {
    let mut sim = Sim::open();
    let g729 = OFFER.replace("RTP/AVP 0 101", "RTP/AVP 18");
    sim.send(&invite("c10", "z9hG4bK-10", 1, None, &g729));
    assert_eq!(sim.codes(), vec![100, 488]);
    assert!(sim.events().is_empty());
}

#[test]
fn info_dtmf_and_reinvite_hold() {
    let mut sim = Sim::open();
    let tag = established(&mut sim, "c11");
    let info = in_dialog(
        "INFO",
        "c11",
        "z9hG4bK-i",
        2,
        &tag,
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=5\r\nDuration=160\r\n",
    );
    sim.send(&info);
    assert_eq!(sim.codes(), vec![200]);
    assert_eq!(
        sim.events(),
        vec![CallEvent::Dtmf {
            call: CallId("c11".into()),
            digit: '5',
            duration_ms: 160
        }]
    );
    let hold = format!("{OFFER}a=sendonly\r\n");
    sim.send(&invite("c11", "z9hG4bK-h", 3, Some(&tag), &hold));
    let out = sim.out();
    let ok = out.iter().find(|m| m.code() == Some(200)).unwrap();
    let sdp = String::from_utf8_lossy(&ok.body).to_string();
    assert!(
        sdp.contains("a=recvonly") && sdp.contains("o=voicenav 1 2 "),
        "{sdp}"
    );
    let ev = sim.events();
    assert!(
        matches!(&ev[0], CallEvent::MediaAnswered { answer, .. } if answer.direction == crate::sdp::Direction::RecvOnly)
    );
    assert_eq!(
        ev[1],
        CallEvent::Hold {
            call: CallId("c11".into()),
            held: true
        }
    );
    sim.send(&in_dialog("ACK", "c11", "z9hG4bK-ha", 3, &tag, "", ""));
    sim.advance(Duration::from_secs(5));
    assert!(
        sim.codes().is_empty(),
        "no 200 retransmission after the ACK"
    );
    // Out-of-order CSeq: 500.
    sim.send(&in_dialog("INFO", "c11", "z9hG4bK-old", 1, &tag, "", ""));
    assert_eq!(sim.codes(), vec![500]);
}

#[test]
fn refer_with_notify_success_hangs_up() {
    let mut sim = Sim::open();
    let tag = established(&mut sim, "c12");
    let headers = vec![("X-Voicenav-Queue".to_string(), "credit_card".to_string())];
    sim.ep.handle_command(
        sim.now,
        CallCommand::Refer {
            call: CallId("c12".into()),
            target: "sip:credit_card@127.0.0.1:5080".into(),
            headers,
        },
    );
    let refer = sim.out().pop().unwrap();
    assert_eq!(refer.method(), Some(&Method::Refer));
    assert_eq!(
        refer.header("Refer-To"),
        Some("<sip:credit_card@127.0.0.1:5080>")
    );
    assert_eq!(refer.header("X-Voicenav-Queue"), Some("credit_card"));
    assert_eq!(refer.request_uri(), Some("sip:caller@127.0.0.1:5061"));
    let mut accepted = Message::response_to(&refer, 202, "Accepted", None);
    accepted.start = message::StartLine::Response {
        version: "SIP/2.0".into(),
        code: 202,
        reason: "Accepted".into(),
    };
    sim.ep.handle_input(sim.now, sim.peer, &accepted.to_bytes());
    assert_eq!(
        sim.events(),
        vec![CallEvent::TransferProgress {
            call: CallId("c12".into()),
            code: 202
        }]
    );
    let notify = in_dialog(
        "NOTIFY",
        "c12",
        "z9hG4bK-n",
        2,
        &tag,
        "Event: refer\r\nSubscription-State: terminated;reason=noresource\r\nContent-Type: message/sipfrag\r\n",
        "SIP/2.0 200 OK\r\n",
    );
    sim.send(&notify);
    let out = sim.out();
    assert_eq!(out[0].code(), Some(200));
    assert_eq!(
        out[1].method(),
        Some(&Method::Bye),
        "bot leg hung up after success"
    );
    let ev = sim.events();
    assert!(ev.contains(&CallEvent::TransferResult {
        call: CallId("c12".into()),
        outcome: TransferOutcome::Success
    }));
}

#[test]
fn refer_rejected_or_unanswered_is_reported() {
    let mut sim = Sim::open();
    established(&mut sim, "c13");
    let refer_cmd = CallCommand::Refer {
        call: CallId("c13".into()),
        target: "sip:q@127.0.0.1".into(),
        headers: vec![],
    };
    sim.ep.handle_command(sim.now, refer_cmd.clone());
    let refer = sim.out().pop().unwrap();
    let mut rejected = Message::response_to(&refer, 403, "Forbidden", None);
    rejected.start = message::StartLine::Response {
        version: "SIP/2.0".into(),
        code: 403,
        reason: "Forbidden".into(),
    };
    sim.ep.handle_input(sim.now, sim.peer, &rejected.to_bytes());
    assert_eq!(
        sim.events(),
        vec![CallEvent::TransferResult {
            call: CallId("c13".into()),
            outcome: TransferOutcome::Failed(403)
        }]
    );
    // No answer at all: Timer F, reported as a timeout; the call stays up for a fallback.
    sim.ep.handle_command(sim.now, refer_cmd);
    sim.advance(Duration::from_secs(40));
    let ev = sim.events();
    assert!(
        ev.contains(&CallEvent::TransferResult {
            call: CallId("c13".into()),
            outcome: TransferOutcome::Timeout
        }),
        "{ev:?}"
    );
    assert_eq!(sim.ep.active_calls(), 1);
}

#[test]
fn local_hangup_sends_bye_and_closes_on_200() {
    let mut sim = Sim::open();
    established(&mut sim, "c14");
    sim.ep.handle_command(
        sim.now,
        CallCommand::Hangup {
            call: CallId("c14".into()),
        },
    );
    let bye = sim.out().pop().unwrap();
    assert_eq!(bye.method(), Some(&Method::Bye));
    let mut ok = Message::response_to(&bye, 200, "OK", None);
    ok.start = message::StartLine::Response {
        version: "SIP/2.0".into(),
        code: 200,
        reason: "OK".into(),
    };
    sim.ep.handle_input(sim.now, sim.peer, &ok.to_bytes());
    assert_eq!(
        sim.events(),
        vec![CallEvent::Closed {
            call: CallId("c14".into())
        }]
    );
}

#[test]
fn registration_answers_the_challenge() {
    let mut cfg = EndpointConfig::loopback(5060);
    cfg.registrations.push(RegistrationConfig {
        trunk: "carrier".into(),
        registrar: "127.0.0.1:5070".parse().unwrap(),
        domain: "127.0.0.1".into(),
        username: "voicenav".into(),
        password: Some("pw".into()),
        expires: 60,
        backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(30),
    });
    let mut sim = Sim::new(cfg);
    sim.ep.handle_timeout(sim.now);
    let t = sim.ep.poll_transmit().unwrap();
    assert_eq!(t.peer.addr, "127.0.0.1:5070".parse().unwrap());
    let reg = parse(&t.payload).unwrap();
    let ch = crate::sip::digest::Challenger::new("carrier", "x").challenges(5);
    let mut r401 = Message::response_to(&reg, 401, "Unauthorized", Some("r"));
    r401.push_header("WWW-Authenticate", ch[1].clone());
    sim.ep.handle_input(
        sim.now,
        Peer {
            transport: Transport::Udp,
            addr: t.peer.addr,
        },
        &r401.to_bytes(),
    );
    let second = sim.out().pop().unwrap();
    assert!(second
        .header("Authorization")
        .unwrap()
        .contains("algorithm=MD5"));
    let mut ok = Message::response_to(&second, 200, "OK", Some("r"));
    ok.push_header("Expires", "60");
    sim.ep.handle_input(
        sim.now,
        Peer {
            transport: Transport::Udp,
            addr: t.peer.addr,
        },
        &ok.to_bytes(),
    );
    assert_eq!(
        sim.ep.registrations()[0].1,
        RegistrationStatus::Registered { expires: 60 }
    );
}

#[test]
fn time_going_backwards_is_ignored() {
    let mut sim = Sim::open();
    sim.send(&invite("c15", "z9hG4bK-15", 1, None, OFFER));
    sim.ep.handle_command(
        sim.now,
        CallCommand::Answer {
            call: CallId("c15".into()),
            media: media(),
        },
    );
    sim.out();
    let earlier = sim.now - Duration::from_secs(1);
    sim.ep.handle_timeout(earlier);
    assert!(sim.out().is_empty());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
    /// Arbitrary byte damage to a valid INVITE never panics the endpoint, and whatever it
    /// sends back parses.
    #[test]
    fn damaged_messages_never_panic(edits in proptest::collection::vec((0usize..400, proptest::prelude::any::<u8>()), 0..12), cut in 0usize..600) {
        let mut bytes = invite("p1", "z9hG4bK-p", 1, None, OFFER).into_bytes();
        for (pos, b) in edits {
            if let Some(x) = bytes.get_mut(pos) {
                *x = b;
            }
        }
        bytes.truncate(cut.max(1));
        let mut sim = Sim::open();
        sim.ep.handle_input(sim.now, sim.peer, &bytes);
        sim.ep.handle_command(sim.now, CallCommand::Answer { call: CallId("p1".into()), media: media() });
        sim.advance(Duration::from_secs(40));
        while let Some(t) = sim.ep.poll_transmit() {
            proptest::prop_assert!(parse(&t.payload).is_ok());
        }
    }
}
