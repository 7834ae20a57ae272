//! The thin tokio driver of one call's media: owns the RTP socket (and the RTCP socket on
//! the odd port above it), the clock and the recorder file; everything else is the sans-IO
//! [`Pipeline`]. It follows the pipeline's drain contract: after each input (datagram,
//! command, timer) it runs `handle_timeout(now)`, sends every transmit, forwards every
//! event, writes every recorded frame pair, then sleeps until `poll_timeout()`.
//!
//! ```text
//! call task ──MediaCommand──▶ driver ──▶ Pipeline ──▶ UDP (RTP to the caller, symmetric)
//!           ◀──MediaEvent────        ◀── UDP (the caller's RTP / RTCP)
//! ```
//! The driver ends on [`MediaCommand::Hangup`] or when the command channel closes (the
//! call task ended or crashed); either way the utterance in progress is flushed and the
//! recording is finished before it returns.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::pipeline::{MediaEvent, Pipeline};
use super::player::Prompt;
use super::recorder::Recorder;
use crate::rtp::event::Digit;
use crate::rtp::jitter::JitterStats;
use crate::rtp::ports::PortPool;

/// What the call task asks of the media.
#[derive(Debug, Clone)]
pub enum MediaCommand {
    Play(Prompt),
    StopPrompt,
    /// Send a key as RFC 4733 events, for the given milliseconds.
    SendDigit(Digit, u32),
    /// A digit the SIP layer got in an INFO request.
    SipInfoDigit(Digit),
    Hangup,
}

/// The RTP and RTCP sockets of a call and the port they hold.
#[derive(Debug)]
pub struct MediaSockets {
    pub rtp: UdpSocket,
    pub rtcp: Option<UdpSocket>,
    pub port: u16,
}

/// Binds an RTP/RTCP socket pair on `ip` with a port from `pool` (ports busy on the host
/// are skipped). Give the port back with `pool.release(port)` when the call ends.
pub async fn bind_from_pool(pool: &Mutex<PortPool>, ip: IpAddr) -> std::io::Result<MediaSockets> {
    let attempts = pool.lock().map(|p| p.capacity()).unwrap_or(0).min(64);
    for _ in 0..attempts {
        let port = pool.lock().ok().and_then(|mut p| p.allocate());
        let Some(port) = port else { break };
        match UdpSocket::bind(SocketAddr::new(ip, port)).await {
            Ok(rtp) => {
                let rtcp = UdpSocket::bind(SocketAddr::new(ip, port.saturating_add(1)))
                    .await
                    .ok();
                return Ok(MediaSockets { rtp, rtcp, port });
            }
            Err(_) => {
                if let Ok(mut p) = pool.lock() {
                    p.release(port);
                }
            }
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no free RTP port in the configured range",
    ))
}

/// What a call's media did.
#[derive(Debug, Clone, Default)]
pub struct MediaSummary {
    pub frames_in: u64,
    pub frames_out: u64,
    pub jitter: JitterStats,
    pub recording: Option<PathBuf>,
    pub bad_datagrams: u64,
}

/// Runs one call's media until hangup.
pub async fn run(
    sockets: MediaSockets,
    mut pipeline: Pipeline,
    mut commands: mpsc::Receiver<MediaCommand>,
    events: mpsc::UnboundedSender<MediaEvent>,
    mut recorder: Option<Recorder>,
) -> MediaSummary {
    let mut buf = vec![0u8; 2048];
    let mut rtcp_buf = vec![0u8; 1500];
    let mut summary = MediaSummary::default();
    let mut next_rtcp = Instant::now() + Duration::from_secs(5);
    loop {
        let wake = pipeline.poll_timeout().min(next_rtcp);
        let mut hangup = false;
        tokio::select! {
            r = sockets.rtp.recv_from(&mut buf) => {
                if let Ok((n, from)) = r {
                    if pipeline.handle_datagram(Instant::now(), from, &buf[..n]).is_err() {
                        summary.bad_datagrams += 1;
                    }
                }
            }
            r = recv_opt(&sockets.rtcp, &mut rtcp_buf) => {
                if let Some((n, from)) = r {
                    let _ = pipeline.handle_datagram(Instant::now(), from, &rtcp_buf[..n]);
                }
            }
            c = commands.recv() => {
                let now = Instant::now();
                match c {
                    Some(MediaCommand::Play(p)) => pipeline.play(p),
                    Some(MediaCommand::StopPrompt) => pipeline.stop_prompt(now),
                    Some(MediaCommand::SendDigit(d, ms)) => { pipeline.send_digit(d, ms); }
                    Some(MediaCommand::SipInfoDigit(d)) => pipeline.handle_sip_info_digit(now, d),
                    Some(MediaCommand::Hangup) | None => hangup = true,
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
        }
        let now = Instant::now();
        if now >= next_rtcp {
            next_rtcp = now + Duration::from_secs(5);
            send_rtcp(&sockets, &pipeline, now).await;
        }
        if hangup {
            pipeline.finish(now);
        } else {
            pipeline.handle_timeout(now);
        }
        while let Some(t) = pipeline.poll_transmit() {
            let _ = sockets.rtp.send_to(&t.payload, t.to).await;
        }
        while let Some(e) = pipeline.poll_event() {
            let _ = events.send(e);
        }
        while let Some((l, r)) = pipeline.poll_recorded() {
            if let Some(rec) = recorder.as_mut() {
                if let Err(e) = rec.write(&l, &r) {
                    tracing::warn!(error = %e, "recording stopped");
                    recorder = None;
                }
            }
        }
        if hangup {
            break;
        }
    }
    let (fi, fo) = pipeline.frame_counts();
    summary.frames_in = fi;
    summary.frames_out = fo;
    summary.jitter = pipeline.session().jitter_stats();
    if let Some(rec) = recorder {
        match rec.finish() {
            Ok(p) => summary.recording = Some(p),
            Err(e) => tracing::warn!(error = %e, "could not finish recording"),
        }
    }
    summary
}

async fn recv_opt(s: &Option<UdpSocket>, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    match s {
        Some(s) => s.recv_from(buf).await.ok(),
        None => std::future::pending().await,
    }
}

async fn send_rtcp(sockets: &MediaSockets, pipeline: &Pipeline, now: Instant) {
    let (Some(rtcp), Some(remote)) = (&sockets.rtcp, pipeline.session().remote()) else {
        return;
    };
    let report = pipeline.session().rtcp_report(now, ntp_now());
    let to = SocketAddr::new(remote.ip(), remote.port().saturating_add(1));
    let _ = rtcp.send_to(&report, to).await;
}

/// The wall clock as a 64-bit NTP timestamp (RFC 3550 §4).
fn ntp_now() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() + 2_208_988_800;
    let frac = ((d.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (secs << 32) | frac
}
