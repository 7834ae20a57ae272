//! Acceptance (issue 7): a real RTP stream over UDP loopback with 5 % loss and 40 ms jitter
//! carries RFC 4733 and in-band digits (one key sent both ways, as some gateways do); every
//! digit is detected exactly once, in order.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::rtp_sender::{self, Netem, Step};
use tokio::sync::mpsc;
use voicenav::media::driver::{self, MediaCommand};
use voicenav::media::dtmf;
use voicenav::media::g711::Law;
use voicenav::media::pipeline::{MediaEvent, Pipeline, PipelineConfig};
use voicenav::rtp::event::Digit;
use voicenav::rtp::ports::PortPool;

fn d(c: char) -> Digit {
    Digit::from_char(c).unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn digits_over_lossy_jittery_rtp_are_detected_exactly_once() {
    let pool = Mutex::new(PortPool::new(31000, 31100));
    let sockets = driver::bind_from_pool(&pool, "127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let to = sockets.rtp.local_addr().unwrap();
    let pipeline = Pipeline::new(
        PipelineConfig::new(Law::Ulaw),
        None,
        std::time::Instant::now(),
    );
    let (cmd_tx, cmd_rx) = mpsc::channel(8);
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let media = tokio::spawn(driver::run(sockets, pipeline, cmd_rx, ev_tx, None));

    // The caller: quiet line noise, keys as RFC 4733 ('r') or as tones ('t') or both ('b').
    let plan = [
        ('1', 'r'),
        ('3', 't'),
        ('5', 'r'),
        ('7', 't'),
        ('8', 'b'),
        ('#', 'r'),
        ('*', 't'),
        ('0', 't'),
        ('9', 'r'),
        ('D', 't'),
    ];
    let gap = || rtp_sender::audio_steps(&vec![3i16; 160 * 15]); // 300 ms
    let mut steps = gap();
    for (k, how) in plan {
        if how == 'r' || how == 'b' {
            steps.push(Step::Press(d(k), 100));
        }
        if how == 't' || how == 'b' {
            steps.extend(rtp_sender::audio_steps(&dtmf::tone(d(k), 120, -12.0)));
        }
        steps.extend(gap());
    }
    let net = Netem {
        loss: 0.05,
        max_jitter: Duration::from_millis(40),
        seed: 4733,
    };
    let dropped = rtp_sender::send(to, Law::Ulaw, steps, net).await;
    assert!(dropped > 0, "the network must actually lose packets");
    tokio::time::sleep(Duration::from_millis(500)).await;
    cmd_tx.send(MediaCommand::Hangup).await.unwrap();
    let summary = media.await.unwrap();

    let mut got = String::new();
    while let Ok(e) = ev_rx.try_recv() {
        if let MediaEvent::Dtmf(p) = e {
            got.push(p.digit.as_char());
        }
    }
    let want: String = plan.iter().map(|p| p.0).collect();
    assert_eq!(
        got, want,
        "dropped {dropped} packets; jitter buffer {:?}",
        summary.jitter
    );
    assert!(summary.jitter.lost + summary.jitter.underruns > 0);
}
