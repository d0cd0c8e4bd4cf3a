# Shared by the server workload scripts in papers/ (sourced, never run on its own).
#
# A script defines server_start CONFIG_DIR PREFIX..., server_stop, load_run OUT_FILE
# (prints one throughput figure), and optionally check_correct; then calls papers_main.
# See papers/README.md for the knobs (ROUNDS, DURATION, SERVER_CPUS, LOAD_CPUS, ...).

set -euo pipefail

PAPERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$PAPERS_DIR/.." && pwd)
FLEXSC=${FLEXSC:-$REPO/target/release/flexsc}
RESULTS=${RESULTS:-$PAPERS_DIR/results}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
# Both vCPUs for the server (flexsc needs the process to be allowed on two cores, or it
# runs every call on its caller); the load generator on core 0 only, so core 1 (where the
# service thread runs by default: the highest usable core) is shared by the server only.
SERVER_CPUS=${SERVER_CPUS:-0,1}
LOAD_CPUS=${LOAD_CPUS:-0}

log() { printf '[%s %s] %s\n' "$(date +%T)" "${PAPERS_NAME:-papers}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Re-runs the calling script under `timeout`, so a hung server or client cannot keep it
# alive: TERM at the bound (the EXIT trap stops the servers), KILL 30 s later.
papers_bound() {
    local limit=$1; shift
    if [ -z "${PAPERS_BOUNDED:-}" ]; then
        export PAPERS_BOUNDED=1
        exec timeout -k 30 "$limit" bash "$0" "$@"
    fi
}

# Debian packages, installed without starting their services (as .ci/run does).
install_pkgs() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} = 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "packages missing (${missing[*]}) and not root to install them"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    local policy=/usr/sbin/policy-rc.d had_policy=0
    [ -e "$policy" ] && had_policy=1
    [ "$had_policy" = 1 ] || printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy" 2>/dev/null || true
    local rc=0
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    [ "$had_policy" = 1 ] || rm -f "$policy"
    [ "$rc" = 0 ] || die "apt-get install ${missing[*]} failed"
}

ensure_flexsc() {
    if [ ! -x "$FLEXSC" ] || [ ! -e "$(dirname "$FLEXSC")/libflexsc_preload.so" ]; then
        log "building flexsc (cargo build --release)"
        (cd "$REPO" && cargo build --release -q)
    fi
}

# On exit (normal, error, TERM from the time bound): stop the server this script started
# (server_stop uses the ids it recorded, never a process name), then drop the work dir.
papers_cleanup() {
    if declare -F server_stop >/dev/null; then server_stop 2>/dev/null || true; fi
    if [ -n "${WORK:-}" ] && [ -d "$WORK" ] && [ -z "${KEEP_WORK:-}" ]; then rm -rf "$WORK"; fi
}

papers_setup() {
    PAPERS_NAME=$1
    WORK=$(mktemp -d "/tmp/papers-$PAPERS_NAME.XXXXXX")
    chmod 755 "$WORK"
    trap papers_cleanup EXIT
    trap 'exit 143' TERM INT
    mkdir -p "$RESULTS"
}

# Waits (up to $2 seconds) until command $1 succeeds.
wait_until() {
    local cmd=$1 limit=$2 i
    for ((i = 0; i < limit * 10; i++)); do
        if eval "$cmd" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

# Waits for pid $1 to end, up to $2 seconds; then KILLs it.
wait_pid() {
    local pid=$1 limit=$2 i
    for ((i = 0; i < limit * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    log "pid $pid did not stop within ${limit}s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# The configurations: "native", then one per flexsc run option string.
# Arguments of the script: each one is a set of `flexsc run` options (one mode), e.g.
#   papers/apache.sh "--policy adaptive" "--policy always"
# The default is the two modes that delegate (adaptive, the default of `flexsc run`, and
# always) and `--policy never`, which delegates nothing and so measures the cost of the
# interposition alone. The M-on-N mode of issue #7 will be one more such string.
papers_configs() {
    CONFIGS=("native")
    if [ $# = 0 ]; then
        set -- "--policy adaptive" "--policy always" "--policy never"
    fi
    CONFIGS+=("$@")
}

# The command prefix that runs the server in configuration $1 on SERVER_CPUS as user $2.
# For flexsc configurations it writes statistics to $3.
server_prefix() {
    local config=$1 user=$2 stats=$3
    PREFIX=(taskset -c "$SERVER_CPUS")
    [ -n "$user" ] && PREFIX+=(setpriv "--reuid=$user" "--regid=$user" --clear-groups)
    if [ "$config" != native ]; then
        # shellcheck disable=SC2206 # the mode is a list of options, split on purpose
        local opts=($config)
        PREFIX+=("$FLEXSC" run --json "$stats" "${opts[@]}" --)
    fi
}

# Rounds: every configuration once per round, the order rotated each round, each run on
# a freshly started server (flexsc is chosen when the server starts).
papers_rounds() {
    PAPERS_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    local r i n=${#CONFIGS[@]} k config out value
    : > "$WORK/runs.tsv"
    : > "$WORK/checks.tsv"
    for ((r = 1; r <= ROUNDS; r++)); do
        for ((i = 0; i < n; i++)); do
            k=$(((i + r - 1) % n))
            config=${CONFIGS[$k]}
            out=$WORK/run-$r-$k
            mkdir -p "$out"
            chmod 777 "$out"
            server_start "$config" "$out/stats.json"
            if [ "$WARMUP" -gt 0 ]; then load_run "$out/warmup.txt" "$WARMUP" >/dev/null || true; fi
            value=$(load_run "$out/load.txt" "$DURATION") || {
                # Recorded and reported, never silently dropped: a configuration that breaks
                # the server shows up as failed runs.
                log "load failed in round $r, configuration '$config': $(tail -3 "$out/load.txt" | tr '\n' ' ')"
                value=fail
            }
            if declare -F check_run >/dev/null; then
                printf '%s\t%s\n' "$config" "$(check_run "$out" 2>&1 | tr '\n' ' ')" >> "$WORK/checks.tsv"
            fi
            server_stop
            printf '%s\t%s\t%s\t%s\n' "$r" "$k" "$value" "$out" >> "$WORK/runs.tsv"
            log "round $r/$ROUNDS  $(printf '%-22s' "${config}")  $value"
        done
    done
    # The raw runs, for anyone who wants other statistics than ours.
    awk -F'\t' -v OFS='\t' 'BEGIN { print "round", "configuration", "value" }
        NR == FNR { name[FNR - 1] = $0; next } { print $1, name[$2], $3 }' \
        <(printf '%s\n' "${CONFIGS[@]}") "$WORK/runs.tsv" > "$RESULTS/$PAPERS_NAME-runs.tsv"
}

# Prints the markdown report: throughput table, what flexsc did, and the caller's extra
# sections ($1: a file with markdown to append).
papers_report() {
    local title=$1 unit=$2 extra=$3 setup=$4
    local configs_file=$WORK/configs.txt
    printf '%s\n' "${CONFIGS[@]}" > "$configs_file"
    python3 - "$WORK/runs.tsv" "$configs_file" "$title" "$unit" "$extra" "$setup" <<'PY'
import json, os, statistics, sys
runs_path, configs_path, title, unit, extra, setup = sys.argv[1:]
configs = [l.rstrip("\n") for l in open(configs_path) if l.strip()]
runs = {i: [] for i in range(len(configs))}
dirs = {i: [] for i in range(len(configs))}
by_round = {}
failed = {i: 0 for i in range(len(configs))}
for line in open(runs_path):
    r, k, v, d = line.rstrip("\n").split("\t")
    dirs[int(k)].append(d)
    if v == "fail":
        failed[int(k)] += 1
        continue
    runs[int(k)].append(float(v))
    by_round.setdefault(r, {})[int(k)] = float(v)
def label(c):
    return "native (no flexsc)" if c == "native" else "`flexsc run " + c + "`"
base = statistics.median(runs[0]) if runs[0] else float("nan")
out = [f"# {title}", "", setup, "",
       f"## Throughput ({unit}; median of {len(runs[0])} alternating runs; ratio = flexsc ÷ native, higher is better)", "",
       "| configuration | runs | median | ratio of medians | paired ratio: median (min–max) | failed runs |",
       "|---|---|---|---|---|---|"]
for i, c in enumerate(configs):
    xs = runs[i]
    med = statistics.median(xs) if xs else float("nan")
    ratio = "1.00" if i == 0 else f"{med / base:.2f}"
    # Each run divided by the native run of its own round: slow drifts of the background
    # load cancel out of these better than out of the ratio of medians.
    paired = [rr[i] / rr[0] for rr in by_round.values() if i in rr and 0 in rr and rr[0] > 0]
    pr = "—" if i == 0 or not paired else \
        f"{statistics.median(paired):.2f} ({min(paired):.2f}–{max(paired):.2f})"
    out.append(f"| {label(c)} | {', '.join(f'{x:.0f}' for x in xs)} | {med:.0f} | {ratio} | {pr} | {failed[i]} |")
out += ["", "## What flexsc did (statistics of `flexsc run --json`, summed over the runs)", "",
        "| configuration | process images | calls | delegated | delegated % | batches | calls per batch | declined | taken back | policy checks: delegate / alone / slower | isolated |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
tops = []
for i, c in enumerate(configs):
    if c == "native":
        continue
    tot = dict(calls=0, delegated=0, batches=0, declined=0, taken_back=0, procs=0, p=[0, 0, 0], iso=False, missing=0)
    per = {}
    for d in dirs[i]:
        path = os.path.join(d, "stats.json")
        try:
            j = json.load(open(path))
        except (OSError, ValueError):
            tot["missing"] += 1
            continue
        t = j.get("totals", {})
        tot["calls"] += t.get("calls", 0)
        tot["delegated"] += t.get("delegated", 0)
        tot["batches"] += t.get("batches", 0)
        tot["declined"] += j.get("declined", 0)
        tot["taken_back"] += j.get("taken_back", 0)
        tot["procs"] += j.get("processes", 0)
        p = j.get("policy", {})
        for n, key in enumerate(["shared_phases", "alone_phases", "slower_phases"]):
            tot["p"][n] += p.get(key, 0)
        tot["iso"] = tot["iso"] or bool(j.get("isolated"))
        for name, s in j.get("syscalls", {}).items():
            e = per.setdefault(name, [0, 0])
            e[0] += s.get("calls", 0)
            e[1] += s.get("delegated", 0)
    pct = 100.0 * tot["delegated"] / tot["calls"] if tot["calls"] else 0.0
    per_batch = tot["delegated"] / tot["batches"] if tot["batches"] else 0.0
    note = f" ({tot['missing']} runs reported nothing)" if tot["missing"] else ""
    out.append(f"| {label(c)}{note} | {tot['procs']} | {tot['calls']} | {tot['delegated']} | {pct:.1f} | "
               f"{tot['batches']} | {per_batch:.2f} | {tot['declined']} | {tot['taken_back']} | "
               f"{tot['p'][0]} / {tot['p'][1]} / {tot['p'][2]} | {'yes' if tot['iso'] else 'no'} |")
    top = sorted(per.items(), key=lambda kv: -kv[1][0])[:8]
    tops.append((label(c), top))
for lab, top in tops:
    out += ["", f"Busiest calls under {lab}: " + ", ".join(
        f"{n} {c} ({100.0 * d / c:.0f}% delegated)" if c else n for n, (c, d) in top) + "."]
out += ["", "`calls per batch` = delegated calls ÷ service-thread batches (a batch also holds calls handed back as declined).",
        "`taken back` = posted calls that waited behind a service thread busy in one call for longer than 10 ms (their caller ran them) or 50 ms (a worker did).",
        "Where a mode delegates nothing, its ratio measures only the interposition overhead."]
if extra and os.path.exists(extra):
    out += ["", open(extra).read().rstrip()]
print("\n".join(out))
PY
}

# A markdown line describing the machine and the settings.
papers_setup_text() {
    local server_desc=$1 load_desc=$2
    local commit
    commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
    cat <<EOF
Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) vCPUs ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), Linux $(uname -r), flexsc commit \`$commit\`.
Load average when the runs began: $PAPERS_LOAD_START (other work on this shared machine adds noise;
ratios are taken between runs interleaved in time, never across separate invocations).
Rounds: $ROUNDS, each configuration once per round in rotated order, on a freshly started server;
each run: ${WARMUP} s warm-up, then ${DURATION} s measured.

Cores: the server runs under \`taskset -c $SERVER_CPUS\` in every configuration (flexsc's
service thread takes the highest core the process may use: core ${SERVER_CPUS##*[,-]}); the load generator runs
under \`taskset -c $LOAD_CPUS\`. With 2 vCPUs nothing can be isolated: flexsc needs the
server allowed on both cores (with one usable core it runs every call on its caller), so the
load generator shares core $LOAD_CPUS with the server, and core ${SERVER_CPUS##*[,-]} is shared by the server's
threads and the service thread.

Server: $server_desc

Load: $load_desc
EOF
}

# Stops the server started in the background as $SERVER_PID: TERM to the server's main
# process (read from pid file $1), so that `flexsc run`, when it is the wrapper, sees its
# program end and merges the statistics; then waits, bounded, and KILLs what is left.
stop_started() {
    local pidfile=$1 inner=""
    [ -n "${SERVER_PID:-}" ] || return 0
    [ -s "$pidfile" ] && inner=$(cat "$pidfile" 2>/dev/null || true)
    if [ -n "$inner" ]; then
        kill -TERM "$inner" 2>/dev/null || true
    else
        pkill -TERM -P "$SERVER_PID" 2>/dev/null || true
        kill -TERM "$SERVER_PID" 2>/dev/null || true
    fi
    wait_pid "$SERVER_PID" 40
    if [ -n "$inner" ] && kill -0 "$inner" 2>/dev/null; then
        log "server pid $inner still running: killing it"
        kill -KILL "$inner" 2>/dev/null || true
    fi
    SERVER_PID=""
}

# The correctness checks (check_run's one line per run), as markdown.
papers_checks_md() {
    echo "## Correctness (checked after every measured run, on the same server)"
    echo
    echo "| configuration | check result |"
    echo "|---|---|"
    sort "$WORK/checks.tsv" | uniq -c | while read -r count rest; do
        config=${rest%%$'\t'*}
        result=${rest#*$'\t'}
        [ "$config" = native ] && config="native (no flexsc)" || config="\`flexsc run $config\`"
        echo "| $config | $count × $result |"
    done
}
