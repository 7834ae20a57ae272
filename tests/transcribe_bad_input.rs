//! `voicenav transcribe` on bad files: a clear error and a non-zero exit, never a hang or
//! a crash (each run bounded by a timeout).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn transcribe(path: &std::path::Path) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_voicenav"))
        .args([
            "transcribe",
            path.to_str().expect("utf-8 path"),
            "--config",
            "/nonexistent.yaml",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run voicenav");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            let text = String::from_utf8_lossy(&out.stderr).to_string()
                + &String::from_utf8_lossy(&out.stdout);
            return (status.code().unwrap_or(-1), text);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("transcribe hung on {}", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn empty_non_wav_truncated_and_missing_files_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").expect("write");
    let text = dir.path().join("notes.wav");
    std::fs::write(&text, "这不是音频文件\n").expect("write");
    // A valid header announcing 1 s of 16 kHz audio, but only 100 bytes of it.
    let truncated = dir.path().join("truncated.wav");
    let mut f = std::fs::File::create(&truncated).expect("create");
    let data_len: u32 = 32_000;
    f.write_all(b"RIFF")
        .and_then(|_| f.write_all(&(36 + data_len).to_le_bytes()))
        .expect("w");
    f.write_all(b"WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0\0\x7d\0\0\x02\0\x10\0data")
        .expect("w");
    f.write_all(&data_len.to_le_bytes())
        .and_then(|_| f.write_all(&[0u8; 100]))
        .expect("w");
    drop(f);
    let missing = dir.path().join("missing.wav");

    for (path, needle) in [
        (&empty, "empty"),
        (&text, "WAV"),
        (&truncated, "truncated.wav"),
        (&missing, "missing.wav"),
    ] {
        let (code, out) = transcribe(path);
        println!("{}: exit {code}: {out}", path.display());
        assert_ne!(code, 0, "{} must fail", path.display());
        assert!(
            out.contains(needle),
            "error for {} should mention {needle:?}: {out}",
            path.display()
        );
        assert!(!out.contains("panicked"), "{out}");
    }
}
