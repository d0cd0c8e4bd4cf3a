#!/usr/bin/env bash
# Reproductions of two flexsc behaviours found while running the servers in papers/.
# Each case runs a small C program under `flexsc run --policy always --json` and checks
# the statistics. Both failed when found and pass since their fixes; see papers/flexsc.md,
# "Findings".
#
#   bash papers/repro/run.sh        (about 5 s; exits 1 if any case fails)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
FLEXSC=${FLEXSC:-$REPO/target/release/flexsc}
[ -x "$FLEXSC" ] || (cd "$REPO" && cargo build --release -q)
command -v gcc >/dev/null || { echo "SKIP: gcc is not installed (apt-get install gcc libc6-dev)"; exit 0; }
[ "$(nproc)" -ge 2 ] || { echo "SKIP: flexsc needs two cores to delegate anything"; exit 0; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

gcc -O2 -o "$T/dontwait" "$HERE/dontwait.c"
"$T/dontwait"
"$FLEXSC" run --policy always --json "$T/dw.json" -- "$T/dontwait"
declined=$(field "$T/dw.json" "d['declined']")
delegated=$(field "$T/dw.json" "d['syscalls'].get('sendto',{}).get('delegated',0) + d['syscalls'].get('recvfrom',{}).get('delegated',0)")
if [ "$declined" -eq 0 ] && [ "$delegated" -gt 0 ]; then
    echo "PASS dontwait: MSG_DONTWAIT calls ran inline on the service thread ($delegated delegated)"
else
    echo "FAIL dontwait: $declined calls declined (sent to the service thread, then handed back and run"
    echo "     on the caller), $delegated delegated; a MSG_DONTWAIT call never waits, so it can run inline"
    echo "     (kernel-side/src/execute.rs, fn socket: MSG_DONTWAIT is treated like MSG_WAITALL)"
    fails=$((fails + 1))
fi

gcc -O2 -o "$T/keepcaps" "$HERE/keepcaps.c"
"$FLEXSC" run --policy always --json "$T/kc.json" -- "$T/keepcaps"
isolated=$(field "$T/kc.json" "d['isolated']")
delegated=$(field "$T/kc.json" "d['syscalls'].get('pread64',{}).get('delegated',0)")
if [ "$isolated" = False ] && [ "$delegated" -gt 0 ]; then
    echo "PASS keepcaps: preads after PR_SET_KEEPCAPS were delegated ($delegated)"
else
    echo "FAIL keepcaps: isolated=$isolated, $delegated preads delegated: prctl(PR_SET_KEEPCAPS) stops"
    echo "     all delegation in the process (shim/src/table.rs classifies it Isolate), though it changes"
    echo "     no credential until a later setuid; named calls it at start, so BIND delegates nothing"
    fails=$((fails + 1))
fi

echo "$((2 - fails)) passed, $fails failed"
[ "$fails" = 0 ]
