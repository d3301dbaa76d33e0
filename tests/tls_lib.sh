# TLS helpers for the shell tests (sourced after lib.sh).
#
# tls_serve LOG ARGS...: start "openssl s_server -www -naccept 1" on a free
#   port with the keystore provider loaded (SRV_PROV); sets SRV_PID and SRV_PORT.
# tls_get OUT ARGS...: one "GET /" through s_client into file OUT; fails the
#   test unless the handshake completed, the server's page came back and the
#   chain verified.
SRV_PID=
SRV_PORT=
# how s_server loads the providers; empty to take them from OPENSSL_CONF
SRV_PROV=("${PROV[@]}")

tls_serve() {
    local log=$1; shift
    local try i
    for try in 1 2 3 4 5; do
        free_ports SRV_PORT
        openssl s_server ${SRV_PROV[@]+"${SRV_PROV[@]}"} -accept "127.0.0.1:$SRV_PORT" -naccept 1 -www "$@" \
            >"$log" 2>&1 &
        SRV_PID=$!
        for i in $(seq 1 100); do
            grep -q '^ACCEPT' "$log" && return 0
            kill -0 "$SRV_PID" 2>/dev/null || break
            sleep 0.05
        done
        wait "$SRV_PID" 2>/dev/null || true
        # a taken port is worth another try; anything else is a failure
        grep -qi "address already in use" "$log" || { cat "$log" >&2; fail "s_server did not start: $*"; }
    done
    fail "no free port for s_server"
}

tls_get() {
    local out=$1; shift
    if ! printf 'GET / HTTP/1.0\r\n\r\n' | timeout 30 openssl s_client -connect "127.0.0.1:$SRV_PORT" \
            -servername localhost -verify_return_error -ign_eof "$@" >"$out" 2>&1; then
        cat "$out" >&2
        # a client that failed before connecting leaves the server waiting
        kill "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
        fail "s_client failed: $*"
    fi
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=
    grep -q "Verify return code: 0 (ok)" "$out" || { cat "$out" >&2; fail "chain did not verify: $*"; }
    grep -q "HTTP/1.0 200 ok" "$out" || { cat "$out" >&2; fail "no data from the server: $*"; }
}

# expect_line FILE REGEX WHAT
expect_line() {
    grep -Eq -- "$2" "$1" || { cat "$1" >&2; fail "$3: no line matching /$2/"; }
}

# A self-signed certificate for keystore key $1 (CN=localhost), signed in the server.
selfsigned() {
    openssl req "${PROV[@]}" -new -x509 -key "keystore:$1" -subj /CN=localhost -days 2 \
        -addext subjectAltName=DNS:localhost -out "$T/$1.crt" "${@:2}" >/dev/null 2>&1 \
        || fail "self-signed certificate for $1"
}
