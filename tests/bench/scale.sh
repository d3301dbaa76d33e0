#!/usr/bin/env bash
# One keystored with many keys: start-up time, resident and locked memory per
# key, and sign speed with 1 key loaded versus N keys loaded.
# Usage: tests/bench/scale.sh [BUILD_DIR] [N=10000]
# The N keys (EC P-256) are written as sealed files by tests/bench/ksgenkeys
# into a fresh key directory (no manifest yet): the first start takes them
# and writes the manifest, the second (measured) start verifies every file
# against it, as every later start does.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
n=${2:-10000}
export OPENSSL_MODULES="$build/provider" OPENSSL_CONF=/dev/null
T=$(mktemp -d /tmp/ksscale.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
ctl="$build/keystore-server/keystorectl"
"$build/keystore-server/keystored" --gen-master-key "$T/master.key" 2>/dev/null
# A P-256 key takes 32 bytes of the secure heap: the default 32 MiB fits a million.
heap=32
conf() {
    cat > "$T/keystored.conf" <<CONF
socket = unix:$T/ks.sock
admin_socket = unix:$T/admin.sock
key_dir = $T/$1
rollback_counter = $T/$1.generation
master_key = $T/master.key
secure_heap_mb = $heap
CONF
}
dev=; [ "$(id -u)" = 0 ] || dev=--dev
export KEYSTORE_SERVER="unix:$T/ks.sock" KEYSTORE_ADMIN="unix:$T/admin.sock"

start() {
    rm -f "$T/ks.sock" "$T/admin.sock"
    local t0=$(date +%s.%N)
    "$build/keystore-server/keystored" -c "$T/keystored.conf" $dev 2>"$T/log" &
    PID=$!
    while [ ! -S "$T/admin.sock" ] || ! grep -q "serving with" "$T/log"; do sleep 0.01; done
    STARTUP=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
}
stop() { kill $PID; wait $PID 2>/dev/null || true; }
mem() { awk '$1 == "VmRSS:" { r = $2 } $1 == "VmLck:" { l = $2 } END { print r, l }' /proc/$PID/status; }
sign_rate() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/p256.pem" 2>/dev/null
    "$ctl" delete bench-p256 >/dev/null 2>&1 || true
    "$ctl" import bench-p256 "$T/p256.pem" >/dev/null
    "$build/tests/bench/ksbench" --pem-dir "$T" --algs p256 --modes threads --clients 1,4 \
        --backends keystore --seconds 2 |
        awk '$1 !~ /^#/ && $1 != "algorithm" { print $2 "x" $3 ": " $10 " ops/s (+-" $11 ", p50 " $12 " us)" }' |
        paste -sd' '
}

echo "# $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), secure_heap_mb = $heap"
conf empty
start
read rss0 lck0 < <(mem)
echo "# empty server: start-up ${STARTUP}s, VmRSS ${rss0} kB, VmLck ${lck0} kB"
echo "# sign speed with 1 key: $(sign_rate)"
stop
echo "# writing $n sealed EC P-256 key files (tests/bench/ksgenkeys)..."
mkdir -p "$T/keys"
"$build/tests/ksgenkeys" "$T/master.key" "$T/keys" "$n"
conf keys
start
echo "# first start (no manifest yet, writes it): ${STARTUP}s"
stop
start
read rss1 lck1 < <(mem)
echo "# $n keys: start-up ${STARTUP}s, VmRSS ${rss1} kB, VmLck ${lck1} kB (load average $(cut -d' ' -f1-3 /proc/loadavg))"
awk -v n="$n" -v a="$rss0" -v b="$rss1" -v c="$lck0" -v d="$lck1" \
    'BEGIN { printf "# per key: %.2f kB resident, %.2f kB locked\n", (b - a) / n, (d - c) / n }'
echo "# sign speed with $((n + 1)) keys: $(sign_rate)"
stop
