#!/usr/bin/env bash
# The knowledge-base demo: builds Switchyard, ingests the sample Corvane base
# (examples/knowledge/docs; unchanged files are skipped) into ./corvane.db, and asks a policy
# question, which the route answers from the base with its sources.
#   scripts/kb-demo.sh ["question"]
set -euo pipefail
cd "$(dirname "$0")/.."
question="${1:-How much is the fee if my payment is late?}"
scripts/setup.sh --run >/dev/null
cargo build --release --bin switchyard
bin="${CARGO_TARGET_DIR:-target}/release/switchyard"
config=examples/knowledge/switchyard.toml
"$bin" ingest --config "$config" --kb corvane examples/knowledge/docs
exec "$bin" chat --config "$config" "$question"
