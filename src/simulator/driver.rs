//! The tokio driver of one simulated call: a UDP socket for SIP and one for RTP, the
//! clock, and the drain loop around the two sans-IO cores ([`Uac`] for signalling,
//! [`Caller`] for media):
//!
//! ```text
//! loop {
//!     select { SIP datagram => uac.handle_datagram(now, ..),
//!              RTP datagram => caller.handle_bot_audio(now, ..),
//!              20 ms tick   => send(caller.tick(now, rtp)),
//!              uac.poll_timeout() => uac.handle_timeout(now),
//!              call deadline => uac.hangup(now) }
//!     send every uac.poll_transmit(); act on every uac.poll_event()
//! }
//! ```

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::time::MissedTickBehavior;

use super::caller::{Caller, CallerConfig, Prepared};
use super::report::CallReport;
use super::uac::{Uac, UacConfig, UacEvent, UacState};
use crate::media::g711::Law;
use crate::rtp::packet::RtpPacket;
use crate::rtp::session::{RtpSession, SessionConfig};
use crate::sdp::{self, LocalMedia, SessionDescription};
use crate::sip::transaction::TimerConfig;

/// A call's turns ready in both laws (the IVR's answer picks one).
#[derive(Debug, Clone)]
pub struct PreparedCall {
    pub ulaw: Vec<Prepared>,
    pub alaw: Vec<Prepared>,
}

/// Everything one call needs.
#[derive(Debug, Clone)]
pub struct CallPlan {
    pub id: String,
    pub ani: Option<String>,
    pub age: Option<u32>,
    pub turns: Arc<PreparedCall>,
    pub target: SocketAddr,
    pub request_uri: String,
    pub timeout: Duration,
    pub caller: CallerConfig,
}

/// How long after a REFER the IVR has to hang up the bot leg before we do.
const BYE_AFTER_REFER: Duration = Duration::from_secs(5);
/// How long our own BYE/CANCEL may take after the call deadline.
const HANGUP_GRACE: Duration = Duration::from_secs(5);

/// Places one call and reports it. Never panics on network input; socket errors end the
/// call with `error` set.
pub async fn place(plan: CallPlan) -> CallReport {
    let mut report = CallReport::new(&plan.id);
    match run(&plan, &mut report).await {
        Ok(()) => {}
        Err(e) => {
            report.error.get_or_insert(e.to_string());
        }
    }
    report
}

fn local_ip(target: SocketAddr) -> IpAddr {
    match target.ip() {
        IpAddr::V4(v) if v.is_loopback() => IpAddr::V4(v),
        IpAddr::V6(v) if v.is_loopback() => IpAddr::V6(v),
        IpAddr::V4(_) => std::net::UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| s.connect(target).and_then(|_| s.local_addr()))
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        IpAddr::V6(_) => std::net::UdpSocket::bind("[::]:0")
            .and_then(|s| s.connect(target).and_then(|_| s.local_addr()))
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)),
    }
}

async fn run(plan: &CallPlan, report: &mut CallReport) -> std::io::Result<()> {
    let ip = local_ip(plan.target);
    let sip = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
    let rtp_sock = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
    let local = sip.local_addr()?;
    let media = LocalMedia {
        address: ip,
        rtp_port: rtp_sock.local_addr()?.port(),
        session_id: u64::from(rand::random::<u32>()),
        version: 1,
    };
    let mut headers = Vec::new();
    if let Some(age) = plan.age {
        headers.push(("X-Voicenav-Age".to_string(), age.to_string()));
    }
    let start = Instant::now();
    let mut uac = Uac::new(
        start,
        UacConfig {
            local,
            request_uri: plan.request_uri.clone(),
            from_user: plan.ani.clone().unwrap_or_else(|| "caller".into()),
            sdp_offer: sdp::offer(&media),
            headers,
            timers: TimerConfig::default(),
        },
    );
    report.sip_call_id = uac.call_id().to_string();
    let deadline = start + plan.timeout;
    let mut hung_up_at: Option<Instant> = None;
    let mut media_state: Option<(RtpSession, Caller, Law)> = None;
    let mut answered_at: Option<Instant> = None;
    let mut referred_at: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut sip_buf = vec![0u8; 65536];
    let mut rtp_buf = vec![0u8; 2048];
    loop {
        flush(&sip, plan.target, &mut uac).await;
        let mut ended = false;
        while let Some(ev) = uac.poll_event() {
            let now = Instant::now();
            match ev {
                UacEvent::Provisional(_) => {}
                UacEvent::Answered { sdp } => {
                    answered_at = Some(now);
                    report.setup_ms = Some(ms(now - start));
                    match negotiated(&sdp) {
                        Ok((law, event_pt, remote)) => {
                            let mut cfg = SessionConfig::new(law);
                            cfg.event_pt = event_pt;
                            let turns = match law {
                                Law::Ulaw => plan.turns.ulaw.clone(),
                                Law::Alaw => plan.turns.alaw.clone(),
                            };
                            report.codec = Some(if law == Law::Ulaw { "PCMU" } else { "PCMA" });
                            media_state = Some((
                                RtpSession::new(cfg, Some(remote)),
                                Caller::new(now, plan.caller, law, turns),
                                law,
                            ));
                        }
                        Err(e) => {
                            report.error = Some(format!("bad SDP answer: {e}"));
                            uac.hangup(now);
                        }
                    }
                }
                UacEvent::Rejected { code, reason } => {
                    report.error = Some(format!("INVITE rejected: {code} {reason}"));
                    report.sip_code = Some(code);
                }
                UacEvent::Referred { refer_to, headers } => {
                    if referred_at.is_none() {
                        referred_at = Some(now);
                        report.refer_ms = answered_at.map(|a| ms(now - a));
                        report.set_transfer(refer_to, headers);
                        if let Some((_, c, _)) = &media_state {
                            report.turns = c.turns_started();
                        }
                        report.outcome = "transferred";
                    }
                }
                UacEvent::RemoteBye => {
                    if referred_at.is_none() {
                        report.outcome = "hangup";
                        report.hangup_by = Some("ivr");
                    }
                }
                UacEvent::TimedOut(t) => {
                    if answered_at.is_none() {
                        report.error = Some(format!("no answer to the INVITE (Timer {t:?})"));
                    }
                }
                UacEvent::Ended => ended = true,
            }
        }
        if ended {
            break;
        }
        let now = Instant::now();
        if let Some((_, c, _)) = &media_state {
            if referred_at.is_none() {
                report.turns = c.turns_started();
            }
            if c.is_done() && hung_up_at.is_none() && referred_at.is_none() {
                report.outcome = "hangup";
                report.hangup_by = Some("caller");
                hung_up_at = Some(now);
                uac.hangup(now);
                continue;
            }
        }
        if let Some(r) = referred_at {
            if now >= r + BYE_AFTER_REFER && hung_up_at.is_none() {
                hung_up_at = Some(now);
                uac.hangup(now);
                continue;
            }
        }
        if now >= deadline && hung_up_at.is_none() {
            if referred_at.is_none() {
                report.error = Some(format!("call timed out after {} s", plan.timeout.as_secs()));
            }
            hung_up_at = Some(now);
            uac.hangup(now);
            continue;
        }
        if hung_up_at.is_some_and(|h| now >= h + HANGUP_GRACE) {
            break;
        }
        // The next deadline: a SIP timer, the call deadline or the post-REFER wait (until
        // we hang up), the hang-up grace (after).
        let pending = match hung_up_at {
            None => [Some(deadline), referred_at.map(|r| r + BYE_AFTER_REFER)],
            Some(h) => [Some(h + HANGUP_GRACE), None],
        };
        let wake = pending
            .into_iter()
            .chain([uac.poll_timeout().map(|(t, _)| t)])
            .flatten()
            .min()
            .unwrap_or(deadline)
            .max(now);
        let has_media = media_state.is_some() && uac.state() == UacState::Confirmed;
        tokio::select! {
            r = sip.recv_from(&mut sip_buf) => {
                if let Ok((n, _)) = r {
                    uac.handle_datagram(Instant::now(), &sip_buf[..n]);
                }
            }
            r = rtp_sock.recv_from(&mut rtp_buf) => {
                if let (Ok((n, from)), Some((session, caller, _))) = (r, media_state.as_mut()) {
                    if let Ok(p) = RtpPacket::parse(&rtp_buf[..n]) {
                        report.rtp_received += 1;
                        if let Some(law) = Law::from_payload_type(p.header.payload_type) {
                            caller.handle_bot_audio(Instant::now(), law, p.payload);
                        }
                        // Symmetric RTP (RFC 4961): answer where the bot sends from.
                        let _ = session.handle_datagram(Instant::now(), from, &rtp_buf[..n]);
                        while session.poll_playout(Instant::now()).is_some() {}
                    }
                }
            }
            _ = tick.tick(), if has_media => {
                if let Some((session, caller, _)) = media_state.as_mut() {
                    if let (Some(pkt), Some(to)) = (caller.tick(Instant::now(), session), session.remote()) {
                        if rtp_sock.send_to(&pkt, to).await.is_ok() {
                            report.rtp_sent += 1;
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                uac.handle_timeout(Instant::now());
            }
        }
    }
    if let Some((_, c, _)) = &media_state {
        report.turn_latency_ms = c.latencies().iter().map(|(_, d)| ms(*d)).collect();
        report.bot_speech_ms = c.bot_speech_frames() * 20;
    }
    report.duration_ms = ms(start.elapsed());
    if report.outcome.is_empty() {
        report.outcome = if answered_at.is_some() {
            "hangup"
        } else {
            "failed"
        };
    }
    Ok(())
}

async fn flush(sock: &UdpSocket, to: SocketAddr, uac: &mut Uac) {
    while let Some(b) = uac.poll_transmit() {
        let _ = sock.send_to(&b, to).await;
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// Law, telephone-event payload type and RTP address of the IVR's SDP answer.
fn negotiated(body: &[u8]) -> Result<(Law, Option<u8>, SocketAddr), String> {
    let sdp = SessionDescription::parse(body).map_err(|e| e.to_string())?;
    let law = sdp
        .payloads
        .iter()
        .find_map(|p| match (p.encoding.as_str(), p.clock_rate) {
            ("PCMU", 8000) => Some(Law::Ulaw),
            ("PCMA", 8000) => Some(Law::Alaw),
            _ => None,
        })
        .ok_or("no PCMU/PCMA in the answer")?;
    let event_pt = sdp
        .payloads
        .iter()
        .find(|p| p.encoding.eq_ignore_ascii_case("telephone-event"))
        .map(|p| p.pt);
    let remote = sdp.rtp_addr().ok_or("no RTP address in the answer")?;
    Ok((law, event_pt, remote))
}
