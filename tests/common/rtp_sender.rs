//! A test caller that sends a real RTP stream over UDP with seeded loss and jitter.

use std::net::SocketAddr;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use voicenav::media::g711::Law;
use voicenav::rtp::event::Digit;
use voicenav::rtp::packet::Ssrc;
use voicenav::rtp::session::{RtpSession, SessionConfig};

/// What the caller does in each 20 ms interval.
#[derive(Debug, Clone)]
pub enum Step {
    /// A frame of audio (160 samples).
    Audio(Vec<i16>),
    /// Start an RFC 4733 key press of this many ms (the following intervals carry it).
    Press(Digit, u32),
}

/// Network conditions.
#[derive(Debug, Clone, Copy)]
pub struct Netem {
    pub loss: f64,
    pub max_jitter: Duration,
    pub seed: u64,
}

/// The steps for `pcm` cut into 20 ms frames.
pub fn audio_steps(pcm: &[i16]) -> Vec<Step> {
    pcm.chunks(160)
        .map(|c| {
            let mut f = c.to_vec();
            f.resize(160, 0);
            Step::Audio(f)
        })
        .collect()
}

/// Sends the steps to `to` in real time (one packet per 20 ms, each delayed by a random
/// 0..max_jitter, so packets also reorder; `loss` of them dropped). Returns how many
/// packets were dropped.
pub async fn send(to: SocketAddr, law: Law, steps: Vec<Step>, net: Netem) -> usize {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut session = RtpSession::new(
        SessionConfig {
            ssrc: Ssrc(0x1234),
            initial_seq: 65000,
            ..SessionConfig::new(law)
        },
        Some(to),
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(net.seed);
    let mut scheduled: Vec<(Duration, Vec<u8>)> = Vec::new();
    let mut slot = 0u32;
    let mut dropped = 0;
    let mut queue = steps.into_iter().peekable();
    loop {
        let payload = match queue.peek() {
            Some(Step::Press(d, ms)) => {
                session.send_digit(*d, *ms);
                queue.next();
                continue;
            }
            Some(Step::Audio(f)) if !session.sending_digits() => {
                let enc = law.encode(f);
                queue.next();
                enc
            }
            Some(Step::Audio(_)) => vec![law.silence(); 160], // ignored: the press takes the slot
            None if session.sending_digits() => vec![law.silence(); 160],
            None => break,
        };
        if let Some(pkt) = session.next_packet(Some(&payload)) {
            if rng.random_bool(net.loss) {
                dropped += 1;
            } else {
                let jitter =
                    Duration::from_micros(rng.random_range(0..=net.max_jitter.as_micros() as u64));
                scheduled.push((Duration::from_millis(20) * slot + jitter, pkt));
            }
        }
        slot += 1;
    }
    scheduled.sort_by_key(|s| s.0);
    let start = tokio::time::Instant::now();
    for (at, pkt) in scheduled {
        tokio::time::sleep_until(start + at).await;
        sock.send_to(&pkt, to).await.unwrap();
    }
    dropped
}
