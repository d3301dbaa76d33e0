#!/usr/bin/env bash
# The mission's proof: after 200 TLS handshakes, the memory of an s_server
# that uses keystore keys holds none of the private key's components.  The
# same scan of an s_server that loaded the PEM files finds them, which proves
# the scan works.
. "$(dirname "$0")/lib.sh"
MEMSCAN="$KS_BUILD_ROOT/tests/memscan"
ks_start

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/rsa.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ec.pem"
ks_ctl import web-rsa "$T/rsa.pem" >/dev/null || fail "import rsa"
ks_ctl import web-ec "$T/ec.pem" >/dev/null || fail "import ec"
openssl req -new -x509 -key "$T/rsa.pem" -subj /CN=localhost -days 2 -out "$T/rsa.crt"
openssl req -new -x509 -key "$T/ec.pem" -subj /CN=localhost -days 2 -out "$T/ec.crt"

# start_server LOG KEYARGS...: s_server with an RSA and an EC key (-dkey)
start_server() {
    local log=$1; shift
    free_ports SRV_PORT
    openssl s_server "$@" -accept "127.0.0.1:$SRV_PORT" -cert "$T/rsa.crt" -dcert "$T/ec.crt" \
        -www >"$log" 2>&1 &
    SRV_PID=$!
    for _ in $(seq 100); do grep -q ACCEPT "$log" && return 0; kill -0 $SRV_PID || break; sleep 0.1; done
    cat "$log"; fail "s_server did not start"
}

handshakes() {
    local i ok=0
    for i in $(seq 1 "$1"); do
        # alternate RSA (TLS 1.2 RSA-PSS/ECDHE-RSA and TLS 1.3) and ECDSA handshakes
        local opts=(-tls1_3 -sigalgs rsa_pss_rsae_sha256)
        [ $((i % 2)) = 0 ] && opts=(-tls1_3 -sigalgs ecdsa_secp256r1_sha256)
        [ $((i % 4)) = 1 ] && opts=(-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256)
        if printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$SRV_PORT" \
               "${opts[@]}" -CAfile "$T/rsa.crt" -quiet >/dev/null 2>&1; then
            ok=$((ok + 1))
        fi
    done
    [ "$ok" = "$1" ] || fail "only $ok of $1 handshakes succeeded"
}

start_server "$T/ks.log" "${PROV[@]}" -key keystore:web-rsa -dkey keystore:web-ec
handshakes 200
"$MEMSCAN" $SRV_PID "$T/rsa.pem" || fail "RSA key material found in the memory of s_server using keystore"
"$MEMSCAN" $SRV_PID "$T/ec.pem" || fail "EC key material found in the memory of s_server using keystore"
kill $SRV_PID; wait $SRV_PID 2>/dev/null || true
pass "no private key bytes in s_server after 200 handshakes through keystore"

# control: the same scan finds the keys when s_server loads the PEM files
start_server "$T/file.log" -key "$T/rsa.pem" -dkey "$T/ec.pem"
handshakes 8
"$MEMSCAN" $SRV_PID "$T/rsa.pem" --expect-found || fail "scan missed the RSA key in a PEM-loading s_server"
"$MEMSCAN" $SRV_PID "$T/ec.pem" --expect-found || fail "scan missed the EC key in a PEM-loading s_server"
kill $SRV_PID; wait $SRV_PID 2>/dev/null || true
pass "control: the scan finds the keys in an s_server that loaded them"
