#!/usr/bin/env bash
# The main job: set up what is missing, build, and serve the gateway with the embedded local
# default (SmolLM2-135M-Instruct in-process, no upstream). Extra arguments go to `serve`,
# e.g. scripts/run.sh --listen 0.0.0.0:8080 or scripts/run.sh --config switchyard.toml
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --run
cargo build --release --bin switchyard
exec "${CARGO_TARGET_DIR:-target}/release/switchyard" serve "$@"
