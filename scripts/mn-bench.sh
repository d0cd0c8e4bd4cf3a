#!/usr/bin/env bash
# M-on-N threads against native threads on the C ping-pong (tests/fixtures/mn_pingpong.c):
# RUNS alternating pairs of runs in one invocation; prints each side's median time and
# the ratio (M-on-N / native: lower is better for M-on-N).
#
#   scripts/mn-bench.sh [THREADS] [ROUNDS] [RECORDS] [RUNS]     (default 100 2000 0 7)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-100} rounds=${2:-2000} records=${3:-0} runs=${4:-7}
cargo build --release -q
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
${CC:-cc} -O2 -pthread -o "$dir/pp" tests/fixtures/mn_pingpong.c
flexsc=$PWD/target/release/flexsc
cd "$dir"
native=() mn=()
for ((i = 0; i < runs; i++)); do
    native+=("$(FLEXSC_PINGPONG_TIME=1 ./pp "$threads" "$rounds" "$records" 2>&1 >/dev/null | awk '/elapsed_ns/ {print $2}')")
    mn+=("$(FLEXSC_PINGPONG_TIME=1 "$flexsc" run --threads m-on-n -- ./pp "$threads" "$rounds" "$records" 2>&1 >/dev/null | awk '/elapsed_ns/ {print $2}')")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
n=$(median "${native[@]}") m=$(median "${mn[@]}")
echo "ping-pong: $threads threads, $rounds rounds, $records records each, $runs alternating runs"
echo "native runs (ms): $(printf '%s ' "${native[@]}" | awk '{for(i=1;i<=NF;i++) printf "%.1f ", $i/1e6}')"
echo "m-on-n runs (ms): $(printf '%s ' "${mn[@]}" | awk '{for(i=1;i<=NF;i++) printf "%.1f ", $i/1e6}')"
awk -v n="$n" -v m="$m" 'BEGIN {printf "median native %.1f ms, m-on-n %.1f ms, ratio m-on-n/native %.3f\n", n/1e6, m/1e6, m/n}'
