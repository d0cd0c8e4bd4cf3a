#!/usr/bin/env bash
# BIND 9 (authoritative, a local zone) under dnsperf, with and without `flexsc run`.
#
#   bash papers/bind.sh [FLEXSC_RUN_OPTIONS...]
#
# Each argument is one flexsc configuration (a string of `flexsc run` options); the
# default is "--policy adaptive" "--policy always" "--policy never". Writes
# papers/results/bind.md. Knobs (environment): ROUNDS (5), DURATION (10 s), WARMUP (2 s),
# SERVER_CPUS (0,1), LOAD_CPUS (0), RECORDS (1000), OUTSTANDING (100), PORT (15353).
source "$(dirname "$0")/lib.sh"
papers_bound 1500 "$@"
papers_setup bind
papers_configs "$@"

RECORDS=${RECORDS:-1000}
OUTSTANDING=${OUTSTANDING:-100}
PORT=${PORT:-15353}
ZONE=bench.test
RUN_AS=bind

install_pkgs bind9 bind9-dnsutils dnsperf python3 util-linux
ensure_flexsc

RUN=$WORK/run
mkdir -p "$RUN"
{
    # shellcheck disable=SC2016 # $TTL is the zone file's directive, not a shell variable
    printf '$TTL 3600\n@ IN SOA ns.%s. admin.%s. 1 3600 600 86400 3600\n' "$ZONE" "$ZONE"
    printf '@ IN NS ns.%s.\nns IN A 127.0.0.1\n' "$ZONE"
    for ((i = 1; i <= RECORDS; i++)); do
        printf 'host%d IN A 10.%d.%d.%d\n' "$i" $((i >> 16 & 255)) $((i >> 8 & 255)) $((i & 255))
    done
} > "$WORK/$ZONE.zone"
named-checkzone -q "$ZONE" "$WORK/$ZONE.zone" || die "the generated zone does not load"
for ((i = 1; i <= RECORDS; i++)); do echo "host$i.$ZONE A"; done > "$WORK/queries.txt"

cat > "$WORK/named.conf" <<EOF
options {
    directory "$RUN";
    pid-file "$RUN/named.pid";
    session-keyfile "$RUN/session.key";
    listen-on port $PORT { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    allow-query { 127.0.0.1; };
    querylog no;
};
controls { };
logging { channel f { file "$RUN/named.log"; severity warning; }; category default { f; }; };
zone "$ZONE" { type primary; file "$WORK/$ZONE.zone"; };
EOF
chown -R "$RUN_AS:" "$RUN"
named-checkconf "$WORK/named.conf" || die "named-checkconf rejects $WORK/named.conf"

SERVER_PID=""
server_start() {
    local config=$1 stats=$2
    rm -f "$RUN/named.pid"
    server_prefix "$config" "$RUN_AS" "$stats"
    # Started as bind rather than as root with -u bind: no credential change happens under
    # flexsc (see apache.sh). named still calls prctl(PR_SET_KEEPCAPS), which flexsc counts
    # as isolating (papers/flexsc.md, finding 2). One worker thread per core the process
    # may use (named's default).
    "${PREFIX[@]}" /usr/sbin/named -f -c "$WORK/named.conf" >> "$RUN/server.out" 2>&1 &
    SERVER_PID=$!
    wait_until "dig +time=1 +tries=1 @127.0.0.1 -p $PORT host1.$ZONE A +short | grep -q 10.0.0.1" 20 \
        || die "named did not answer on port $PORT (see $RUN/named.log, $RUN/server.out)"
}

server_stop() { stop_started "$RUN/named.pid"; }

load_run() {
    local out=$1 secs=$2
    timeout $((secs + 30)) taskset -c "$LOAD_CPUS" dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/queries.txt" \
        -l "$secs" -q "$OUTSTANDING" > "$out" 2>&1 || return 1
    sed -n 's/^ *Queries per second: *\([0-9.]*\).*/\1/p' "$out"
}

check_run() {
    local out=$1 lost sent i bad=0
    lost=$(sed -n 's/^ *Queries lost: *\([0-9]*\).*/\1/p' "$out/load.txt")
    sent=$(sed -n 's/^ *Queries sent: *\([0-9]*\).*/\1/p' "$out/load.txt")
    # Every answer code must be NOERROR, and ten sampled answers must hold the zone's data.
    if grep -E '^ *Response codes:' "$out/load.txt" | grep -vqE 'Response codes: +NOERROR [0-9]+ \(100\.00%\)$'; then
        bad=1
    fi
    for i in 1 7 99 128 255 256 500 777 999 "$RECORDS"; do
        [ "$(dig +time=2 +tries=1 @127.0.0.1 -p "$PORT" "host$i.$ZONE" A +short)" = \
            "10.$((i >> 16 & 255)).$((i >> 8 & 255)).$((i & 255))" ] || bad=1
    done
    if [ "$bad" = 0 ]; then
        echo "dnsperf: $lost of $sent queries lost, all answers NOERROR; 10 dig answers match the zone"
    else
        echo "FAIL: $lost of $sent queries lost; $(grep -E 'Response codes' "$out/load.txt" | tr -s ' '); or a dig answer differs"
    fi
}

papers_rounds

{
    papers_checks_md
    cat <<EOF

## M-on-N (FlexSC-Threads for pthread programs, issue #7)

The M-on-N thread mode is \`flexsc run --threads m-on-n\`: run
\`bash papers/bind.sh "--policy always" "--threads m-on-n"\` to get its row beside
native (\`papers/results/mn/\` holds such a run).
Paper (Soares & Stumm, OSDI 2010, abstract and §6): BIND up to +105% throughput with
FlexSC-Threads, i.e. a ratio of up to 2.05.
EOF
} > "$WORK/extra.md"

papers_report "BIND 9 (authoritative, local zone) under dnsperf, with \`flexsc run\`" "queries/s, dnsperf" "$WORK/extra.md" \
    "$(papers_setup_text "named $(dpkg-query -W -f='${Version}' bind9), authoritative only (recursion off), one zone of $RECORDS A records, query log off, run as $RUN_AS on 127.0.0.1:$PORT (UDP)." \
        "dnsperf $(dpkg-query -W -f='${Version}' dnsperf), one thread, up to $OUTSTANDING queries outstanding, cycling through the $RECORDS names.")" \
    | tee "$RESULTS/bind.md"
