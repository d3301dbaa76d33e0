#!/usr/bin/env bash
# One keystored with many keys: start-up time, resident and locked memory per
# key, and sign speed with 1 key loaded versus N keys loaded.
# Usage: tests/bench/scale.sh [BUILD_DIR] [N=10000]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
n=${2:-10000}
export OPENSSL_MODULES="$build/provider" OPENSSL_CONF=/dev/null
T=$(mktemp -d /tmp/ksscale.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
ctl="$build/keystore-server/keystorectl"
mkdir -p "$T/keys"
"$build/keystore-server/keystored" --gen-master-key "$T/master.key" 2>/dev/null
cat > "$T/keystored.conf" <<CONF
socket = unix:$T/ks.sock
admin_socket = unix:$T/admin.sock
key_dir = $T/keys
master_key = $T/master.key
CONF
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
        --backends keystore --seconds 2 | awk 'NR > 1 { print $2 "x" $3 ": " $9 " ops/s" }' | paste -sd' '
}

start
read rss0 lck0 < <(mem)
echo "# empty server: start-up ${STARTUP}s, VmRSS ${rss0} kB, VmLck ${lck0} kB"
echo "# sign speed with 1 key: $(sign_rate)"
echo "# generating $n EC P-256 keys inside the server..."
for i in $(seq 1 "$n"); do echo "$i"; done | xargs -P 2 -I{} "$ctl" generate "k{}" --type ec >/dev/null
stop
start
read rss1 lck1 < <(mem)
echo "# $((n + 1)) keys: start-up ${STARTUP}s, VmRSS ${rss1} kB, VmLck ${lck1} kB"
awk -v n="$n" -v a="$rss0" -v b="$rss1" -v c="$lck0" -v d="$lck1" \
    'BEGIN { printf "# per key: %.2f kB resident, %.2f kB locked\n", (b - a) / n, (d - c) / n }'
echo "# sign speed with $((n + 1)) keys: $(sign_rate)"
stop
