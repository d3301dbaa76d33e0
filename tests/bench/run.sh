#!/usr/bin/env bash
# Runs the benchmarks in one go: in-process OpenSSL versus keystore, same keys,
# same machine, same run.  Usage: tests/bench/run.sh [BUILD_DIR] [ksbench args...]
# Prints the ksbench table, then TLS 1.3 full handshakes/s (openssl s_time)
# against s_server with a key file versus the same key in the keystore.
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
for _ in $(seq 100); do [ -S "$T/admin.sock" ] && break; sleep 0.1; done
export KEYSTORE_SERVER="unix:$T/ks.sock" KEYSTORE_ADMIN="unix:$T/admin.sock"
for k in rsa2048 rsa3072 p256 p384 ed25519; do
    "$build/keystore-server/keystorectl" import "bench-$k" "$T/$k.pem" >/dev/null
done

echo "# ksbench: $(nproc) cores, ${secs}s per case, $(date -u +%Y-%m-%dT%H:%MZ)"
"$build/tests/bench/ksbench" --pem-dir "$T" --seconds "$secs" "$@"

echo
echo "# TLS 1.3 full handshakes/s (openssl s_time -new, ${secs}x3 s), s_server key from a file vs keystore"
printf '%-8s %12s %12s %7s\n' key file/s keystore/s ratio
for k in p256 rsa2048; do
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
    f=$(rate -key "$T/$k.pem")
    s=$(rate -provider keystore -provider default -key "keystore:bench-$k")
    awk -v k=$k -v f="$f" -v s="$s" 'BEGIN { printf "%-8s %12.0f %12.0f %6.0f%%\n", k, f, s, (f > 0 ? 100 * s / f : 0) }'
done

echo
# Implicit rejection: conformant and non-conformant PKCS#1 v1.5 ciphertexts
# should take the same time (tests/bench/irbench.c; figures only, no verdict).
"$build/tests/bench/irbench" "$T/rsa2048.pem" keystore:bench-rsa2048 "${KS_IRBENCH_SAMPLES:-400}" 3
