#!/usr/bin/env bash
# Runs the benchmarks in one go: in-process OpenSSL versus keystore, same keys,
# same machine, same run.  Usage: tests/bench/run.sh [BUILD_DIR] [ksbench args...]
# Prints the machine (cores, load, the cost of a system call and of a Unix
# socket round trip, before and after), the ksbench table (each case 3 times,
# interleaved, median and spread, and the CPU time per operation of client and
# server), one client pausing between operations (the latency of waking an
# idle server), then TLS 1.3 full handshakes/s (openssl s_time)
# against s_server with a key file versus the same key in the keystore, and
# a burst of 1000 forked processes each doing a few operations.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}; shift || true
secs=${KS_BENCH_SECONDS:-2}
export OPENSSL_MODULES="$build/provider" OPENSSL_CONF=/dev/null
T=$(mktemp -d /tmp/ksbench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/rsa2048.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$T/rsa3072.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/p256.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$T/p384.pem"
openssl genpkey -algorithm ED25519 -out "$T/ed25519.pem"

mkdir -p "$T/keys"
"$build/keystore-server/keystored" --gen-master-key "$T/master.key" >/dev/null
cat > "$T/keystored.conf" <<CONF
socket = unix:$T/ks.sock
admin_socket = unix:$T/admin.sock
key_dir = $T/keys
master_key = $T/master.key
${KS_BENCH_CONF:-}
CONF
dev=; [ "$(id -u)" = 0 ] || dev=--dev
"$build/keystore-server/keystored" -c "$T/keystored.conf" $dev 2>"$T/keystored.log" &
kspid=$!
for _ in $(seq 100); do [ -S "$T/admin.sock" ] && break; sleep 0.1; done
export KEYSTORE_SERVER="unix:$T/ks.sock" KEYSTORE_ADMIN="unix:$T/admin.sock"
for k in rsa2048 rsa3072 p256 p384 ed25519; do
    # the RSA keys also decrypt (rsa2048-oaep)
    "$build/keystore-server/keystorectl" import "bench-$k" "$T/$k.pem" --usage \
        "$(case $k in rsa*) echo sign,decrypt ;; *) echo sign ;; esac)" >/dev/null
done

machine() {   # one line a reader needs to tell a slow machine from a slow design
    echo "# machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(uname -r)," \
         "load average $(cut -d' ' -f1-3 /proc/loadavg), $("$build/tests/bench/ksbench" --calibrate)"
}
echo "# tests/bench/run.sh $(date -u +%Y-%m-%dT%H:%MZ), ${secs}s per run"
machine
echo
"$build/tests/bench/ksbench" --pem-dir "$T" --seconds "$secs" --server-pid "$kspid" "$@"

echo
echo "# one client that pauses ${KS_BENCH_GAP_US:-1000} us after each operation: the keystore worker is asleep"
echo "# when a request comes, as between a TLS server's handshakes (+p50 is the cost of waking it)"
"$build/tests/bench/ksbench" --pem-dir "$T" --seconds "$secs" --clients 1 --modes threads \
    --algs p256,ed25519,rsa2048 --gap-us "${KS_BENCH_GAP_US:-1000}" | tail -n +2

echo
echo "# TLS 1.3 full handshakes/s (openssl s_time -new, ${secs}x3 s per run), s_server key from a"
echo "# file vs the same key in keystore; 3 runs each, interleaved: median (min..max)"
printf '%-8s %22s %22s %7s\n' key file/s keystore/s ratio
for k in p256 p384 rsa2048 ed25519; do
    openssl req -new -x509 -key "$T/$k.pem" -subj /CN=localhost -days 2 -out "$T/$k.crt"
    rate() {
        local port=$(( 20000 + RANDOM % 20000 ))
        openssl s_server "$@" -accept "127.0.0.1:$port" -cert "$T/$k.crt" -www -tls1_3 -quiet >/dev/null 2>&1 &
        local pid=$!
        sleep 0.5
        local t0 t1 n
        t0=$(date +%s.%N)
        n=$(openssl s_time -connect "127.0.0.1:$port" -new -time $((secs * 3)) 2>/dev/null \
            | awk '/connections in .*s;/ { print $1; exit }')
        t1=$(date +%s.%N)
        awk -v n="${n:-0}" -v a="$t0" -v b="$t1" 'BEGIN { print n / (b - a) }'
        kill $pid; wait $pid 2>/dev/null || true
    }
    fs=() ks=()
    for r in 1 2 3; do
        fs+=("$(rate -key "$T/$k.pem")")
        ks+=("$(rate -provider default -provider keystore -key "keystore:bench-$k")")
    done
    python3 - "$k" "${fs[@]}" "${ks[@]}" <<'PY'
import statistics, sys
k, v = sys.argv[1], [float(x) for x in sys.argv[2:]]
f, s = v[:3], v[3:]
mf, ms = statistics.median(f), statistics.median(s)
cell = lambda m, xs: "%6.0f (%.0f..%.0f)" % (m, min(xs), max(xs))
print("%-8s %22s %22s %6.0f%%" % (k, cell(mf, f), cell(ms, s), 100 * ms / mf if mf else 0))
PY
done

echo
echo "# a pre-fork server's pattern: ${KS_BENCH_FORKS:-1000} processes forked from one that loaded the key, each"
echo "# doing 4 signatures (keystore: a connection of its own each); children per second"
"$build/tests/bench/ksbench" --pem-dir "$T" --fork-burst "${KS_BENCH_FORKS:-1000}" --ops 4 \
    --algs p256,rsa2048

echo
# Implicit rejection: conformant and non-conformant PKCS#1 v1.5 ciphertexts
# should take the same time (tests/bench/irbench.c; figures only, no verdict).
"$build/tests/bench/irbench" "$T/rsa2048.pem" keystore:bench-rsa2048 "${KS_IRBENCH_SAMPLES:-400}" 3

echo
machine | sed 's/^# machine:/# machine after the run:/'
