//! Test data locations (tests only).

use std::path::PathBuf;

/// The shared real Mandarin clips (`../shared/speech/zh/` of the repository, or
/// `$VOICENAV_SHARED/speech/zh`), if present.
pub fn speech_dir() -> Option<PathBuf> {
    if let Some(s) = std::env::var_os("VOICENAV_SHARED") {
        let p = PathBuf::from(s).join("speech/zh");
        if p.is_dir() {
            return Some(p);
        }
    }
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let p = dir.join("shared/speech/zh");
        if p.is_dir() {
            return Some(p);
        }
        if !dir.pop() {
            return None;
        }
    }
}
