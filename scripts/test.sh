#!/usr/bin/env bash
# The test command: every unit and integration test, then the loom models of the page
# protocol (a separate build: loom swaps in its own atomics under --cfg loom).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
echo "== loom models (shim) =="
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p flexsc-shim --release --lib loom
echo "== loom models (scheduler) =="
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p flexsc-scheduler --release --lib loom
