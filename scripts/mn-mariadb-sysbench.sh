#!/usr/bin/env bash
# MariaDB under M-on-N threads against native, answering sysbench oltp_read_only over a
# Unix socket: a fresh data folder, the server started natively and then under
# `flexsc run --threads m-on-n`, SECONDS of THREADS client connections each; prints each
# run's throughput and the ratio. About a minute; not in CI.
#
#   scripts/mn-mariadb-sysbench.sh [SECONDS] [THREADS]        (default 10 8)
#
# InnoDB's native AIO is off (--innodb-use-native-aio=0): with it, InnoDB waits in
# liburing's own io_uring_enter, a system call no LD_PRELOAD library can see, which stops
# every user thread of that kernel thread (the server hangs at start-up under M-on-N).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10} threads=${2:-8}
for tool in mariadbd mariadb-install-db mariadb sysbench; do
    command -v "$tool" >/dev/null || { echo "SKIPPED: $tool is not installed"; exit 0; }
done
cargo build --release -q
flexsc=$PWD/target/release/flexsc
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
mariadb-install-db --no-defaults --datadir="$dir/data" --user="$(id -un)" --skip-test-db >install.log 2>&1
run() { # MODE: prints "tps N"
    local mode=$1 sock=$dir/sock-$1 pre=()
    [ "$mode" = m-on-n ] && pre=("$flexsc" run --stats --threads m-on-n --)
    "${pre[@]}" mariadbd --no-defaults --datadir="$dir/data" --socket="$sock" --skip-networking \
        --user="$(id -un)" --skip-grant-tables --innodb-buffer-pool-size=64M \
        --innodb-use-native-aio=0 --max-connections=200 >"server-$mode.log" 2>&1 &
    local server=$!
    for _ in $(seq 1 150); do [ -S "$sock" ] && break; sleep 0.2; done
    [ -S "$sock" ] || { echo "$mode: the server did not start:"; tail -5 "server-$mode.log"; kill "$server"; exit 1; }
    mariadb --no-defaults -S "$sock" -u root -e "create database if not exists sbtest"
    local sb=(sysbench --db-driver=mysql --mysql-socket="$sock" --mysql-user=root --mysql-db=sbtest
        --tables=1 --table-size=10000)
    "${sb[@]}" oltp_read_only cleanup >/dev/null 2>&1 || true
    "${sb[@]}" oltp_read_only prepare >/dev/null
    "${sb[@]}" --threads="$threads" --time="$secs" oltp_read_only run >"sysbench-$mode.log"
    mariadb --no-defaults -S "$sock" -u root -e "shutdown"
    wait "$server"
    grep -q "running threads 1:1" "server-$mode.log" && echo "($mode fell back to 1:1)"
    awk '/transactions:/ {gsub(/\(/, "", $3); print "tps", $3}' "sysbench-$mode.log"
}
native=$(run native | awk '/^tps/ {print $2}')
mn=$(run m-on-n | awk '/^tps/ {print $2}')
echo "sysbench oltp_read_only, $threads connections, ${secs}s: native $native tps, m-on-n $mn tps"
awk -v n="$native" -v m="$mn" 'BEGIN {printf "ratio m-on-n/native (throughput, higher is better) %.2f\n", m/n}'
grep -E " total$" "$dir/server-m-on-n.log" | tail -1 | sed 's/^/m-on-n calls (calls delegated direct errors batch): /'
