//! One real Mandarin recording through the whole call-side recognition path: 8 kHz G.711
//! frames into a Whisper stream on the pool, and the same through the media endpointer
//! (voice path), each with a CER bound; silence gives no text.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use voicenav::asr::text::cer_counts;
use voicenav::asr::voice::VoicePath;
use voicenav::asr::whisper::{
    model_present, DecodeOptions, WhisperConfig, WhisperEngine, WhisperModel,
};
use voicenav::asr::{AsrPool, Bias, Engine, NoResult};
use voicenav::media::vad::VadConfig;
use voicenav::media::{g711, wav};
use voicenav::tts::{EspeakNg, Voice};

fn shared_speech() -> Option<PathBuf> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    [
        here.join("../shared/speech"),
        here.join("../../shared/speech"),
        PathBuf::from("/work/shared/speech"),
    ]
    .into_iter()
    .find(|p| p.join("zh/transcripts.tsv").is_file())
}

#[test]
fn a_recorded_clip_through_g711_is_recognised_within_the_cer_bound_and_silence_is_not() {
    let dir = voicenav::config::AsrConfig::default().whisper_model;
    if !model_present(&dir) {
        println!("SKIP: whisper model missing (run scripts/setup.sh)");
        return;
    }
    let Some(speech) = shared_speech() else {
        println!("SKIP: shared/speech clips not found");
        return;
    };
    let model = Arc::new(WhisperModel::load(&WhisperConfig::new(&dir)).expect("model loads"));
    let engine = WhisperEngine {
        model,
        pool: AsrPool::new(1, Duration::from_secs(30)),
        options: DecodeOptions::default(),
    };

    // PaddleSpeech's zh.wav, 5 s: 我认为跑步最重要的就是给我带来了身体健康
    let pcm8k = wav::read_mono(speech.join("zh/paddlespeech_zh.wav"), 8000).expect("clip");
    let line = g711::alaw_decode(&g711::alaw_encode(&pcm8k));
    let mut s = engine.start(8000, &Bias::open()).expect("stream");
    for frame in line.chunks(160) {
        s.accept(frame).expect("accept");
    }
    let t = s.finish().wait().expect("recognised");
    let (edits, n) = cer_counts("我认为跑步最重要的就是给我带来了身体健康", t.text());
    println!(
        "recognised {:?} ({edits}/{n} edits), {:?}",
        t.text(),
        t.timings
    );
    assert!(edits * 100 <= n * 20, "CER above 20%: {:?}", t.text());
    assert!(!t.alternatives.is_empty() && t.confidence() > 0.0 && t.confidence() <= 1.0);

    // The offline voice path: half a second of line silence, the clip, then the media
    // endpointer decides where the utterance is (and hints the pause) before recognition.
    let path = VoicePath {
        engine: Arc::new(engine.clone()),
        synth: Arc::new(EspeakNg::default()),
        voice: Voice::mandarin(),
        law: g711::Law::Alaw,
        vad: VadConfig::default(),
    };
    let mut call = vec![0i16; 4000];
    call.extend_from_slice(&line);
    let heard = path.hear(&call, &Bias::open()).expect("voice path");
    let (edits, n) = cer_counts("我认为跑步最重要的就是给我带来了身体健康", heard.text());
    println!("voice path heard {:?} ({edits}/{n} edits)", heard.text());
    assert!(
        edits * 100 <= n * 20,
        "CER above 20% through the endpointer: {:?}",
        heard.text()
    );

    let mut s = engine.start(8000, &Bias::open()).expect("stream");
    s.accept(&[0i16; 8000]).expect("accept");
    let t = s.finish().wait().expect("silence result");
    assert_eq!(t.text(), "");
    assert_eq!(t.reason, Some(NoResult::Silence));
    engine.pool.shutdown();
}
