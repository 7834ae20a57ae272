//! Links libvosk from `vendor/` (put there by `scripts/setup.sh`) with an rpath, so the
//! binary finds it at run time without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=VOICENAV_VENDOR");
    // Every test binary links CTranslate2 statically; with its debug info each is ~400 MB.
    // Strip debug sections at link time (our package only, so no dependency rebuilds).
    println!("cargo:rustc-link-arg=-Wl,--strip-debug");
    if std::env::var_os("CARGO_FEATURE_VOSK").is_none() {
        return;
    }
    let vendor = std::env::var("VOICENAV_VENDOR").unwrap_or_else(|_| {
        format!(
            "{}/vendor",
            std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")
        )
    });
    if !std::path::Path::new(&vendor).join("libvosk.so").exists() {
        panic!("{vendor}/libvosk.so is missing: run `bash scripts/setup.sh` (or build with --no-default-features --features whisper)");
    }
    println!("cargo:rustc-link-search=native={vendor}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{vendor}");
}
