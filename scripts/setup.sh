#!/usr/bin/env bash
# Installs what Switchyard needs to build, run and test, on a fresh Debian machine:
# cmake and clang for llama.cpp, poppler's pdftotext for PDF documents, a Python venv with the openai SDK (for the SDK tests), and
# the models (scripts/fetch-models.sh). Idempotent: what is already there is kept.
#   scripts/setup.sh          everything
#   scripts/setup.sh --run    only what serving needs (no Python venv)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v clang >/dev/null || need+=(clang)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev)
command -v unzip >/dev/null || need+=(unzip)
command -v pdftotext >/dev/null || need+=(poppler-utils) # PDF ingest into knowledge bases
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ "${1:-}" != "--run" ] && ! .venv/bin/python -c "import openai" 2>/dev/null; then
  echo "setup: creating .venv with the openai SDK"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check openai
fi

scripts/fetch-models.sh
