#!/usr/bin/env bash
# Apache (worker MPM) serving a static file, natively and under M-on-N threads: checks 20
# fetches byte for byte, counts the worker process's OS threads, and measures requests
# per second with `ab` (REQUESTS requests, CONCURRENCY at a time). Not in CI.
#
#   scripts/mn-apache.sh [REQUESTS] [CONCURRENCY]      (default 20000 16)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-20000} concurrency=${2:-16}
for tool in apache2 curl ab; do
    command -v "$tool" >/dev/null || { echo "SKIPPED: $tool is not installed"; exit 0; }
done
modules=/usr/lib/apache2/modules
[ -f "$modules/mod_mpm_worker.so" ] || { echo "SKIPPED: no $modules/mod_mpm_worker.so"; exit 0; }
cargo build --release -q
flexsc=$PWD/target/release/flexsc
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/htdocs" "$dir/logs"
head -c 200000 /dev/urandom >"$dir/htdocs/blob.bin"
user=$(id -un) group=$(id -gn)
if [ "$(id -u)" = 0 ]; then user=www-data group=www-data; fi # apache refuses to serve as root
chmod -R a+rX "$dir"
port=$((20000 + RANDOM % 20000))
cat >"$dir/httpd.conf" <<CONF
ServerRoot $dir
PidFile $dir/logs/httpd.pid
Listen 127.0.0.1:$port
LoadModule mpm_worker_module $modules/mod_mpm_worker.so
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule mime_module $modules/mod_mime.so
ServerName localhost
DocumentRoot $dir/htdocs
ErrorLog $dir/logs/error.log
TypesConfig /etc/mime.types
User $user
Group $group
StartServers 1
ServerLimit 1
ThreadsPerChild 25
MaxRequestWorkers 25
<Directory $dir/htdocs>
  Require all granted
</Directory>
CONF
run() { # MODE
    local mode=$1 pre=()
    [ "$mode" = m-on-n ] && pre=("$flexsc" run --threads m-on-n --)
    APACHE_RUN_DIR=$dir "${pre[@]}" apache2 -f "$dir/httpd.conf" -DFOREGROUND >"$dir/logs/out-$mode.log" 2>&1 &
    local wrapper=$!
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/blob.bin" && break; sleep 0.1; done
    local same=0
    for _ in $(seq 1 20); do
        curl -s "http://127.0.0.1:$port/blob.bin" | cmp -s - "$dir/htdocs/blob.bin" && same=$((same + 1))
    done
    local parent worker threads
    parent=$(cat "$dir/logs/httpd.pid")
    worker=$(pgrep -P "$parent" | head -1)
    threads=$(ls "/proc/$worker/task" | wc -l)
    local rps
    rps=$(ab -q -n "$requests" -c "$concurrency" "http://127.0.0.1:$port/blob.bin" 2>/dev/null |
        awk '/Requests per second/ {print $4}')
    kill -TERM "$parent"
    wait "$wrapper" || true
    grep -h "running threads 1:1" "$dir/logs/error.log" "$dir/logs/out-$mode.log" || true
    echo "$mode: $same/20 fetches byte-identical; worker process has $threads OS threads (25 worker threads); $rps requests/s"
    echo "$rps" >"$dir/rps-$mode"
}
run native
run m-on-n
awk -v n="$(cat "$dir/rps-native")" -v m="$(cat "$dir/rps-m-on-n")" \
    'BEGIN {printf "ratio m-on-n/native (requests/s, higher is better) %.2f\n", m/n}'
