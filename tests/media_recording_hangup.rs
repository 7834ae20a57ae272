//! Recordings are complete after hangup — and after the call task dies without one: a
//! real RTP call over UDP loopback is recorded to a stereo WAV (caller left, bot right).

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::rtp_sender::{self, Netem};
use tokio::sync::mpsc;
use voicenav::media::driver::{self, MediaCommand};
use voicenav::media::g711::Law;
use voicenav::media::pipeline::{Pipeline, PipelineConfig};
use voicenav::media::player::Prompt;
use voicenav::media::recorder::Recorder;
use voicenav::rtp::ports::PortPool;

async fn call(hangup: bool) -> (hound::WavSpec, Vec<i16>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec/call.wav");
    let pool = Mutex::new(PortPool::new(31200, 31300));
    let sockets = driver::bind_from_pool(&pool, "127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let to = sockets.rtp.local_addr().unwrap();
    let mut cfg = PipelineConfig::new(Law::Alaw);
    cfg.record = true;
    let pipeline = Pipeline::new(cfg, None, std::time::Instant::now());
    let (cmd_tx, cmd_rx) = mpsc::channel(8);
    let (ev_tx, _ev_rx) = mpsc::unbounded_channel();
    let rec = Recorder::create(&path).unwrap();
    let media = tokio::spawn(driver::run(sockets, pipeline, cmd_rx, ev_tx, Some(rec)));
    // The bot plays 0.5 s of a 1000-valued prompt; the caller sends 1 s of −3000.
    cmd_tx
        .send(MediaCommand::Play(Prompt::new(
            "p",
            Law::Alaw.encode(&vec![1000i16; 4000]),
            false,
        )))
        .await
        .unwrap();
    let net = Netem {
        loss: 0.0,
        max_jitter: Duration::from_millis(5),
        seed: 1,
    };
    rtp_sender::send(
        to,
        Law::Alaw,
        rtp_sender::audio_steps(&vec![-3000i16; 8000]),
        net,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    if hangup {
        cmd_tx.send(MediaCommand::Hangup).await.unwrap();
    } else {
        drop(cmd_tx); // the call task is gone
    }
    let summary = media.await.unwrap();
    assert_eq!(summary.recording.as_deref(), Some(path.as_path()));
    let mut r = hound::WavReader::open(&path).unwrap();
    let s: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
    (r.spec(), s)
}

fn check(spec: hound::WavSpec, s: &[i16]) {
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let left: Vec<i16> = s.iter().step_by(2).copied().collect();
    let right: Vec<i16> = s.iter().skip(1).step_by(2).copied().collect();
    let caller = left.iter().filter(|&&x| (x + 3000).abs() < 100).count();
    let bot = right.iter().filter(|&&x| (x - 1000).abs() < 40).count();
    assert_eq!(
        caller, 8000,
        "all of the caller's second, once, on the left"
    );
    assert_eq!(bot, 4000, "all of the prompt, once, on the right");
    // The recording spans the call (≈ 1.3–2 s), not more than a few frames beyond it.
    assert!(
        left.len() >= 8000 + 160 && left.len() < 8000 * 3,
        "{} samples",
        left.len()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn recording_is_complete_after_hangup() {
    let (spec, s) = call(true).await;
    check(spec, &s);
}

#[tokio::test(flavor = "current_thread")]
async fn recording_is_complete_when_the_call_task_disappears() {
    let (spec, s) = call(false).await;
    check(spec, &s);
}
