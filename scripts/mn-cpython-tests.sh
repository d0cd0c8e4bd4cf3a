#!/usr/bin/env bash
# CPython's own thread tests, natively and with M-on-N threads (about a minute; not in CI):
# prints each run's summary and the tests that failed, and exits 1 if the two differ.
#
#   scripts/mn-cpython-tests.sh [TEST...]      (default: test_threading test_queue)
#
# Needs python3 with its test package (Debian: libpython3.11-testsuite; pyenv builds
# include it).
set -euo pipefail
cd "$(dirname "$0")/.."
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test_threading test_queue)
if ! python3 -c 'import test.libregrtest' 2>/dev/null; then
    echo "SKIPPED: python3 has no test package (install libpython3-testsuite)"
    exit 0
fi
cargo build --release -q
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
summary() {
    grep -E '^(Total tests|Result):' "$1" || true
    grep -E '^(FAIL|ERROR): ' "$1" | sort || true
}
(cd "$out" && timeout 1800 python3 -m test "${tests[@]}" >native.log 2>&1) || true
(cd "$out" && timeout 1800 "$OLDPWD/target/release/flexsc" run --threads m-on-n -- \
    python3 -m test "${tests[@]}" >mn.log 2>&1) || true
echo "== native";  summary "$out/native.log" | tee "$out/native.sum"
echo "== m-on-n";  summary "$out/mn.log" | tee "$out/mn.sum"
grep -h "running threads 1:1" "$out/mn.log" && echo "(M-on-N fell back to 1:1)"
for log in native mn; do
    if ! grep -q '^Total tests' "$out/$log.log"; then
        echo "the $log run did not finish; its last lines:"; tail -20 "$out/$log.log"; exit 1
    fi
done
# Failing tests by name, from regrtest's "test X failed" lines and tracebacks.
fails() { grep -hoE '^(FAIL|ERROR): [a-z_0-9]+ \([^)]*\)|test [a-z_0-9]+ failed' "$1" | sort -u; }
if [ "$(fails "$out/native.log")" = "$(fails "$out/mn.log")" ] &&
   [ "$(grep '^Total tests' "$out/native.log")" = "$(grep '^Total tests' "$out/mn.log")" ]; then
    echo "same results"
else
    echo "results differ"; diff <(fails "$out/native.log") <(fails "$out/mn.log") || true
    exit 1
fi
