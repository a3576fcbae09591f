#!/usr/bin/env bash
# Every test: sets up what is missing (scripts/setup.sh), checks formatting and lints, then runs
# the whole workspace's tests (unit, HTTP end-to-end, the openai Python SDK against the gateway,
# real local inference on the tiny fixture and SmolLM2-135M) in the release profile, the only
# profile the project builds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Say where the models are: a target folder shared between checkouts can hold a build that
# remembers another checkout's path (cargo does not rebuild when a workspace moves).
export SWITCHYARD_MODELS="${SWITCHYARD_MODELS:-$PWD/models}"
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --release --workspace --no-fail-fast
else
  cargo test --release --workspace --no-fail-fast
fi
