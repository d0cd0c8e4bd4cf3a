#!/usr/bin/env bash
# Memory checks of the preload library with valgrind, on small real programs run with
# libflexsc_preload.so and FLEXSC_POLICY=always (so their calls go through the syscall
# pages), each compared with the same program run under valgrind without the library:
#
# - memcheck (invalid reads and writes, uninitialised values, leaks): the run with the
#   library must have no more errors than the run without it (the programs' own leaks
#   are theirs). FLEXSC_BACKEND=direct, since memcheck cannot see what the kernel writes
#   through io_uring; forked children are not checked (--child-silent-after-fork: a
#   child holds the parent's runtime, whose threads it does not have, by design).
# - helgrind (races, lock order, pthread API misuse): no error of any kind but "race".
#   Races are counted, not failed on: helgrind only knows happens-before through pthread
#   primitives, and the pages synchronise with atomics and futexes, so every buffer the
#   kernel fills for the program from a service thread looks racy to it (the protocol is
#   checked by the loom models instead). See docs/RELIABILITY.md.
#
# Suppressions: scripts/valgrind.supp (each explained there and in docs/RELIABILITY.md).
# Exits 1 on a failure; logs in target/valgrind/.
#
#   bash scripts/valgrind.sh                    # both tools (a few minutes on 2 cores)
#   TOOLS=memcheck bash scripts/valgrind.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
    echo "SKIPPED: valgrind is not installed (apt-get install valgrind)"
    exit 0
fi
cargo build --release -p flexsc-preload
root=$PWD
lib=$root/target/release/libflexsc_preload.so
supp=$root/scripts/valgrind.supp
out=$root/target/valgrind
rm -rf "$out" && mkdir -p "$out/work"
"${CC:-cc}" -O2 -g -Wall -pthread -o "$out/fdchaos" tests/fixtures/fdchaos.c
seq 1 2000 | sed 's/^/line /' > "$out/work/input.txt"

# name|command (run in $out/work)
programs=(
    "ls|/bin/ls -la /usr/share/doc"
    "cat|/bin/cat input.txt"
    "sort|/usr/bin/sort -r input.txt"
    "threads|$out/fdchaos closerange"
    "fork|$out/fdchaos fork"
)

# run TOOL NAME LOG PRELOAD CMD...: runs one program under valgrind; prints its exit code.
run() {
    local tool=$1 log=$2 preload=$3
    shift 3
    local extra=(--log-file="$log" --suppressions="$supp" --child-silent-after-fork=yes)
    if [ "$tool" = memcheck ]; then
        extra+=(--leak-check=full --show-leak-kinds=definite,possible --errors-for-leak-kinds=definite,possible)
    else
        extra+=(--xml=yes --xml-file="$log.xml")
    fi
    local env=(FLEXSC_POLICY=always FLEXSC_BACKEND=direct)
    [ "$preload" = yes ] && env+=(LD_PRELOAD="$lib")
    local rc=0
    (cd "$out/work" && env "${env[@]}" valgrind --tool="$tool" "${extra[@]}" "$@" >/dev/null 2>&1) || rc=$?
    echo "$rc"
}

errors() { grep -h "ERROR SUMMARY" "$1" | awk '{s += $4} END {print s + 0}'; }
suppressed() { grep -h "ERROR SUMMARY" "$1" | sed -n 's/.*suppressed: \([0-9]*\) from.*/\1/p' | head -1; }
kinds() { grep -o '<kind>[A-Za-z]*</kind>' "$1" | sed 's/<[^>]*>//g' | sort | uniq -c | awk '{printf "%s %s ", $2, $1}'; }
# Races none of whose two stacks is in flexsc's code: the program's own.
own_races() {
    python3 -c 'import re,sys; x=open(sys.argv[1]).read(); print(sum(1 for e in re.findall(r"<error>.*?</error>", x, re.S) if "<kind>Race</kind>" in e and "flexsc" not in e))' "$1"
}

failed=0
for tool in ${TOOLS:-memcheck helgrind}; do
    echo "== $tool"
    if [ "$tool" = memcheck ]; then
        printf '| program | errors without flexsc | errors with flexsc | suppressed |\n|---|---|---|---|\n'
    else
        printf '| program | exit | reports by kind (with flexsc) | of the races, the program'"'"'s own |\n|---|---|---|---|\n'
    fi
    for entry in "${programs[@]}"; do
        name=${entry%%|*}
        # shellcheck disable=SC2206 # split the command into words on purpose
        cmd=(${entry#*|})
        log=$out/$tool-$name.log
        if [ "$tool" = memcheck ]; then
            run memcheck "$out/memcheck-$name-native.log" no "${cmd[@]}" >/dev/null
            rc=$(run memcheck "$log" yes "${cmd[@]}")
            base=$(errors "$out/memcheck-$name-native.log")
            with=$(errors "$log")
            printf '| %s | %s | %s | %s |\n' "$name" "$base" "$with" "$(suppressed "$log")"
            if [ "$with" -gt "$base" ]; then failed=1; fi
        else
            rc=$(run helgrind "$log" yes "${cmd[@]}")
            k=$(kinds "$log.xml")
            printf '| %s | %s | %s | %s |\n' "$name" "$rc" "${k:-none}" "$(own_races "$log.xml")"
            if grep -o '<kind>[A-Za-z]*</kind>' "$log.xml" | grep -qv '<kind>Race</kind>'; then failed=1; fi
        fi
    done
done
if [ "$failed" != 0 ]; then
    echo "valgrind found errors that flexsc adds: see $out/*.log"
    exit 1
fi
echo "no errors added by flexsc (logs in $out)"
