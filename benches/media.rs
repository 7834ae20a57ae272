//! Media benchmarks: frames per second per core through the receive path (RTP parse →
//! jitter buffer → G.711 decode → concealment → in-band DTMF → VAD/endpointer) and the send
//! path (prompt player → RTP packetisation). Target: ≥ 25,000 frames/s/core (500 calls of
//! 50 frames/s each). Figures go in docs/BENCHMARKS.md `## media`.
//!
//! `cargo bench --bench media`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use voicenav::media::g711::Law;
use voicenav::media::pipeline::{Pipeline, PipelineConfig};
use voicenav::media::player::Prompt;
use voicenav::rtp::packet::{RtpHeader, Ssrc};

const FRAMES: usize = 500; // 10 s of call audio

fn caller_packets() -> Vec<Vec<u8>> {
    // Speech-like noise bursts with a DTMF key in the middle, µ-law, 20 ms packets.
    let mut seed = 1u32;
    let mut pcm: Vec<i16> = (0..FRAMES * 160)
        .map(|i| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let env = if (i / 4000) % 2 == 0 { 0.8 } else { 0.02 };
            (((seed >> 16) as i16 as f32) * 0.2 * env) as i16
        })
        .collect();
    let tone = voicenav::media::dtmf::tone(
        voicenav::rtp::event::Digit::from_char('5').unwrap(),
        100,
        -10.0,
    );
    pcm[40_000..40_000 + tone.len()].copy_from_slice(&tone);
    pcm.chunks(160)
        .enumerate()
        .map(|(i, f)| {
            RtpHeader {
                payload_type: 0,
                marker: i == 0,
                seq: i as u16,
                timestamp: 160 * i as u32,
                ssrc: Ssrc(1),
            }
            .emit(&Law::Ulaw.encode(f))
            .unwrap()
        })
        .collect()
}

fn receive(c: &mut Criterion) {
    let pkts = caller_packets();
    let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut g = c.benchmark_group("media");
    g.throughput(Throughput::Elements(FRAMES as u64));
    g.bench_function("receive_path_frames", |b| {
        b.iter_batched(
            Instant::now,
            |t0| {
                let mut cfg = PipelineConfig::new(Law::Ulaw);
                cfg.send = false; // only the receive side
                let mut p = Pipeline::new(cfg, Some(from), t0);
                let mut events = 0;
                for (k, pkt) in pkts.iter().enumerate() {
                    let now = t0 + Duration::from_millis(20 * k as u64);
                    let _ = p.handle_datagram(now, from, pkt);
                    p.handle_timeout(now);
                    while p.poll_transmit().is_some() {}
                    while p.poll_event().is_some() {
                        events += 1;
                    }
                }
                events
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("send_path_frames", |b| {
        let prompt = Prompt::new("p", Law::Ulaw.encode(&vec![1000i16; FRAMES * 160]), true);
        b.iter_batched(
            Instant::now,
            |t0| {
                let mut p = Pipeline::new(PipelineConfig::new(Law::Ulaw), Some(from), t0);
                p.play(prompt.clone());
                let mut bytes = 0;
                for k in 0..FRAMES {
                    p.handle_timeout(t0 + Duration::from_millis(20 * k as u64));
                    while let Some(t) = p.poll_transmit() {
                        bytes += t.payload.len();
                    }
                }
                bytes
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, receive);
criterion_main!(benches);
