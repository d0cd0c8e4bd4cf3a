#!/usr/bin/env bash
# Apache (worker MPM, static files) under wrk, with and without `flexsc run`.
#
#   bash papers/apache.sh [FLEXSC_RUN_OPTIONS...]
#
# Each argument is one flexsc configuration (a string of `flexsc run` options); the
# default is "--policy adaptive" "--policy always" "--policy never". Writes papers/results/apache.md.
# Knobs (environment): ROUNDS (5), DURATION (10 s), WARMUP (2 s), SERVER_CPUS (0,1),
# LOAD_CPUS (0), CONNECTIONS (32), PORT (18080), FILE_SIZE (4096 bytes), PROCESSES (2)
# and THREADS (32): the worker MPM's processes and threads per process.
source "$(dirname "$0")/lib.sh"
papers_bound 1500 "$@"
papers_setup apache
papers_configs "$@"

CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18080}
FILE_SIZE=${FILE_SIZE:-4096}
PROCESSES=${PROCESSES:-2}
THREADS=${THREADS:-32}
for knob in PROCESSES THREADS; do
    [[ ${!knob} =~ ^[1-9][0-9]{0,3}$ ]] || die "$knob=${!knob} is not valid (valid: a whole number from 1 to 9999)"
done
RUN_AS=www-data

install_pkgs apache2 wrk curl python3 util-linux
ensure_flexsc

DOCS=$WORK/htdocs
mkdir -p "$DOCS" "$WORK/logs"
head -c "$FILE_SIZE" /dev/urandom > "$DOCS/file.bin"
head -c 1048576 /dev/urandom > "$DOCS/1m.bin"
chown -R "$RUN_AS:" "$WORK/logs" "$DOCS"

M=/usr/lib/apache2/modules
cat > "$WORK/httpd.conf" <<EOF
ServerRoot $WORK
ServerName 127.0.0.1
Listen 127.0.0.1:$PORT
PidFile $WORK/logs/httpd.pid
ErrorLog $WORK/logs/error.log
LogLevel warn
Mutex file:$WORK/logs
LoadModule mpm_worker_module $M/mod_mpm_worker.so
LoadModule authz_core_module $M/mod_authz_core.so
LoadModule mime_module $M/mod_mime.so
TypesConfig /etc/mime.types
DocumentRoot $DOCS
<Directory />
  AllowOverride None
  Require all denied
</Directory>
<Directory $DOCS>
  Require all granted
</Directory>
# PROCESSES processes of THREADS threads (2 x 32 by default: every wrk connection has a
# thread of its own).
StartServers $PROCESSES
ServerLimit $PROCESSES
ThreadsPerChild $THREADS
MaxRequestWorkers $((PROCESSES * THREADS))
MinSpareThreads $THREADS
MaxSpareThreads $((PROCESSES * THREADS))
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
EOF
/usr/sbin/apache2 -f "$WORK/httpd.conf" -t >/dev/null 2>&1 || die "apache2 rejects $WORK/httpd.conf"

SERVER_PID=""
server_start() {
    local config=$1 stats=$2
    rm -f "$WORK/logs/httpd.pid"
    server_prefix "$config" "$RUN_AS" "$stats"
    # Started as www-data rather than as root with `User`: no credential change happens
    # under flexsc (whose "isolate" rule, shim/src/table.rs, stops delegation after some
    # credential calls), and the server is the same process tree in every configuration.
    "${PREFIX[@]}" /usr/sbin/apache2 -f "$WORK/httpd.conf" -DFOREGROUND \
        >> "$WORK/logs/server.out" 2>&1 &
    SERVER_PID=$!
    wait_until "curl -sf -o /dev/null http://127.0.0.1:$PORT/file.bin" 20 \
        || die "apache did not answer on port $PORT (see $WORK/logs/error.log)"
}

server_stop() { stop_started "$WORK/logs/httpd.pid"; }

load_run() {
    local out=$1 secs=$2
    timeout $((secs + 30)) taskset -c "$LOAD_CPUS" wrk -t1 -c"$CONNECTIONS" -d"${secs}s" \
        "http://127.0.0.1:$PORT/file.bin" > "$out" 2>&1 || return 1
    # Errors (non-2xx, socket errors) make the run invalid rather than fast.
    if grep -qE 'Non-2xx|Socket errors' "$out"; then return 1; fi
    awk '/^Requests\/sec:/ {print $2}' "$out"
}

check_run() {
    local out=$1
    curl -sf -o "$out/1m.bin" "http://127.0.0.1:$PORT/1m.bin" || { echo "FAIL: curl failed"; return; }
    if cmp -s "$out/1m.bin" "$DOCS/1m.bin"; then
        echo "1 MiB file fetched by curl byte-identical"
    else
        echo "FAIL: 1 MiB file differs"
    fi
    rm -f "$out/1m.bin"
}

papers_rounds

{
    papers_checks_md
    cat <<EOF

## M-on-N (FlexSC-Threads for pthread programs, issue #7)

The M-on-N thread mode is \`flexsc run --threads m-on-n\`: run
\`bash papers/apache.sh "--policy always" "--threads m-on-n"\` to get its row beside
native (\`papers/results/mn/\` holds such a run).
Paper (Soares & Stumm, OSDI 2010, abstract and §6): Apache up to +116% throughput with
FlexSC-Threads, i.e. a ratio of up to 2.16.
EOF
} > "$WORK/extra.md"

papers_report "Apache 2.4 (worker MPM, static file) under \`flexsc run\`" "requests/s, wrk" "$WORK/extra.md" \
    "$(papers_setup_text "apache2 $(dpkg-query -W -f='${Version}' apache2), worker MPM, $PROCESSES process(es) × $THREADS threads, keep-alive, no access log, one ${FILE_SIZE}-byte static file, run as $RUN_AS on 127.0.0.1:$PORT." \
        "wrk $(dpkg-query -W -f='${Version}' wrk), 1 thread, $CONNECTIONS keep-alive connections, GET of the ${FILE_SIZE}-byte file.")" \
    | tee "$RESULTS/apache.md"
