#!/usr/bin/env bash
# The test command: every unit and integration test, then the loom models of the page
# protocol (a separate build: loom swaps in its own atomics under --cfg loom), then which
# tests skipped something and why.
set -euo pipefail
cd "$(dirname "$0")/.."
# A test that cannot run here (one core, no io_uring, not root, a missing program) says
# so on stderr and passes; cargo shows a passing test's output only with --show-output.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace -- --show-output 2>&1 | tee "$log"
echo "== loom models (shim) =="
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p flexsc-shim --release --lib loom
echo "== loom models (scheduler) =="
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p flexsc-scheduler --release --lib loom
echo "== tests that skipped all or part of their work here =="
if ! grep -i "skipped" "$log" | sort | uniq -c; then
    echo "none: every test ran in full"
fi
