#!/usr/bin/env bash
# MariaDB (the Debian stand-in for MySQL) under sysbench oltp_read_only, with and without
# `flexsc run`.
#
#   bash papers/mysql.sh [FLEXSC_RUN_OPTIONS...]
#
# Each argument is one flexsc configuration (a string of `flexsc run` options); the
# default is "--policy adaptive" "--policy always" "--policy never". Writes
# papers/results/mysql.md. Knobs (environment): ROUNDS (5), DURATION (10 s), WARMUP (2 s),
# SERVER_CPUS (0,1), LOAD_CPUS (0), THREADS (16 sysbench threads), TABLES (4),
# TABLE_SIZE (10000 rows), PORT (13306).
source "$(dirname "$0")/lib.sh"
papers_bound 1800 "$@"
papers_setup mysql
papers_configs "$@"

THREADS=${THREADS:-16}
TABLES=${TABLES:-4}
TABLE_SIZE=${TABLE_SIZE:-10000}
PORT=${PORT:-13306}
RUN_AS=mysql

install_pkgs mariadb-server mariadb-client sysbench python3 util-linux
ensure_flexsc

RUN=$WORK/run
mkdir -p "$WORK/data" "$RUN"
chown "$RUN_AS:" "$WORK/data" "$RUN"
mariadb-install-db --no-defaults --datadir="$WORK/data" --user="$RUN_AS" --skip-test-db \
    --auth-root-authentication-method=socket > "$WORK/install.log" 2>&1 \
    || die "mariadb-install-db failed (see $WORK/install.log)"

# --innodb-use-native-aio=0 in every configuration, native included: with native AIO InnoDB
# waits inside liburing's own io_uring_enter, which no preload sees, so under M-on-N
# (--threads m-on-n) a user thread would block its kernel thread and the server hangs at
# start-up. The read-only workload reads from the buffer pool, so this changes little.
SERVER_ARGS=(--no-defaults --datadir="$WORK/data" --socket="$RUN/mysql.sock" --port="$PORT"
    --bind-address=127.0.0.1 --pid-file="$RUN/mysqld.pid" --log-error="$RUN/error.log"
    --skip-log-bin --innodb-buffer-pool-size=256M --max-connections=200
    --innodb-use-native-aio=0
    --innodb-buffer-pool-dump-at-shutdown=0 --innodb-buffer-pool-load-at-startup=0)
SB=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$PORT" --mysql-user=sbtest
    --mysql-password=sbtest --tables="$TABLES" --table-size="$TABLE_SIZE")
CLIENT=(mariadb -h 127.0.0.1 -P "$PORT" -u sbtest -psbtest -N -B)

SERVER_PID=""
server_start() {
    local config=$1 stats=$2
    rm -f "$RUN/mysqld.pid"
    server_prefix "$config" "$RUN_AS" "$stats"
    # Started as mysql rather than as root with --user=mysql: no credential change happens
    # under flexsc (see apache.sh).
    "${PREFIX[@]}" /usr/sbin/mariadbd "${SERVER_ARGS[@]}" >> "$RUN/server.out" 2>&1 &
    SERVER_PID=$!
    wait_until "${CLIENT[*]} -e 'SELECT 1' || mariadb -S $RUN/mysql.sock -u root -e 'SELECT 1'" 60 \
        || die "mariadbd did not answer on port $PORT (see $RUN/error.log)"
}

server_stop() { stop_started "$RUN/mysqld.pid"; }

checksums() { "${CLIENT[@]}" -e "CHECKSUM TABLE $(seq -s, -f 'sbtest.sbtest%g' 1 "$TABLES")"; }

# Once, natively: the user, the tables, and their checksums to compare against later.
log "preparing $TABLES tables of $TABLE_SIZE rows"
server_start native "$WORK/unused.json"
mariadb -S "$RUN/mysql.sock" -u root -e "CREATE DATABASE sbtest;
    CREATE USER sbtest@'127.0.0.1' IDENTIFIED BY 'sbtest';
    GRANT ALL ON sbtest.* TO sbtest@'127.0.0.1';"
timeout 600 sysbench oltp_read_only "${SB[@]}" prepare > "$WORK/prepare.log" 2>&1 \
    || die "sysbench prepare failed (see $WORK/prepare.log)"
checksums > "$WORK/checksums.expected"
server_stop

load_run() {
    local out=$1 secs=$2
    timeout $((secs + 60)) taskset -c "$LOAD_CPUS" sysbench oltp_read_only "${SB[@]}" \
        --threads="$THREADS" --time="$secs" --report-interval=0 run > "$out" 2>&1 || return 1
    # A run with errors or reconnects is invalid, whatever its speed.
    grep -qE 'ignored errors: +0 ' "$out" || return 1
    grep -qE 'reconnects: +0 ' "$out" || return 1
    sed -n 's/.*transactions: .*(\([0-9.]*\) per sec.)/\1/p' "$out"
}

check_run() {
    local out=$1
    local errs
    errs=$(sed -n 's/.*ignored errors: *\([0-9]*\).*/\1/p' "$out/load.txt")
    if checksums > "$out/checksums" 2>&1 && cmp -s "$out/checksums" "$WORK/checksums.expected"; then
        echo "sysbench: $errs errors, 0 reconnects; CHECKSUM TABLE of all $TABLES tables equals the native one"
    else
        echo "FAIL: CHECKSUM TABLE differs from the native one ($(tr '\n' ' ' < "$out/checksums"))"
    fi
}

papers_rounds

{
    papers_checks_md
    cat <<EOF

## M-on-N (FlexSC-Threads for pthread programs, issue #7)

The M-on-N thread mode is \`flexsc run --threads m-on-n\`: run
\`bash papers/mysql.sh "--policy always" "--threads m-on-n"\` to get its row beside
native (\`papers/results/mn/\` holds such a run).
Paper (Soares & Stumm, OSDI 2010, abstract and §6): MySQL up to +40% throughput with
FlexSC-Threads, i.e. a ratio of up to 1.40.
EOF
} > "$WORK/extra.md"

papers_report "MariaDB (MySQL) under sysbench oltp_read_only, with \`flexsc run\`" "transactions/s, sysbench" "$WORK/extra.md" \
    "$(papers_setup_text "mariadbd $(dpkg-query -W -f='${Version}' mariadb-server), InnoDB, 256 MiB buffer pool (the data, $TABLES tables × $TABLE_SIZE rows, fits), binary log off, one thread per connection, run as $RUN_AS on 127.0.0.1:$PORT." \
        "sysbench $(dpkg-query -W -f='${Version}' sysbench) oltp_read_only, $THREADS client threads over TCP.")" \
    | tee "$RESULTS/mysql.md"
