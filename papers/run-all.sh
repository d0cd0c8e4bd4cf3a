#!/usr/bin/env bash
# Everything papers/flexsc.md cites, one after the other (about 25 minutes on 2 vCPUs):
# the microbenchmarks (flexsc bench), then the Apache, MySQL and BIND workloads.
# Arguments, if any, are passed to each workload script as its flexsc configurations.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
mkdir -p "$HERE/results"
(cd "$REPO" && cargo build --release -q)
timeout 600 "$REPO/target/release/flexsc" bench --json "$HERE/results/bench.json" --svg "$HERE/results" \
    | tee "$HERE/results/bench.md"
for w in apache mysql bind; do
    bash "$HERE/$w.sh" "$@"
done
