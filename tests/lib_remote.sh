# Helpers for the remote (TCP) tests; source after lib.sh.
TCP_TAMPER="$KS_BUILD_ROOT/tests/tcp_tamper"

# Server key, client keys fe1 fe2 (authorized) and stranger (not), then
# keystored listening on 127.0.0.1 and ::1 (ports chosen by the kernel).
# Extra config lines may be given as arguments.
# Called again (a restart), it keeps the keys it made the first time.
ks_start_remote() {
    if [ ! -f "$T/server.key" ]; then
        SERVER_PUB=$("$KEYSTORED" --gen-server-key "$T/server.key" 2>/dev/null) || fail "gen-server-key"
        ks_ctl client-keygen fe1 -o "$T/fe1.key" 2>/dev/null > "$T/authorized_clients" || fail "client-keygen fe1"
        ks_ctl client-keygen fe2 -o "$T/fe2.key" 2>/dev/null >> "$T/authorized_clients" || fail "client-keygen fe2"
        ks_ctl client-keygen stranger -o "$T/stranger.key" >/dev/null 2>&1 || fail "client-keygen stranger"
    fi
    ks_start "listen_tcp = tcp:127.0.0.1:0 tcp:[::1]:0" \
        "server_key = $T/server.key" \
        "authorized_clients = $T/authorized_clients" \
        "audit_log = $T/audit.log" "$@"
    TCP4=$(grep -o 'listening on tcp:127\.0\.0\.1:[0-9]*' "$T/keystored.log" | sed 's/listening on //')
    TCP6=$(grep -o 'listening on tcp:\[::1\]:[0-9]*' "$T/keystored.log" | sed 's/listening on //')
    [ -n "$TCP4" ] && [ -n "$TCP6" ] || { cat "$T/keystored.log"; fail "no TCP listeners in the log"; }
    grep -q "TCP server public key: $SERVER_PUB" "$T/keystored.log" || fail "server does not print its public key"
}

# The access list of tests about the transport: root and every TCP client
# may use every key (without one no TCP client may use any, see
# test_safe_defaults.sh).  Prints the config line.
ks_acl_all() {
    echo "*  sign,decrypt  uid:0 tcp:*" > "$T/acl-all"
    echo "acl = $T/acl-all"
}

# An openssl.cnf for a TCP server, as docs/remote.md shows it; prints its path.
# Usage: ks_write_tcp_cnf NAME ADDR CLIENT_KEY [SERVER_PUB]
ks_write_tcp_cnf() {
    ks_write_cnf "$1" "$2" "server_public_key = ${4:-$SERVER_PUB}" "client_key = $3"
}

# Run a command with only the given openssl.cnf deciding where keys are.
with_cnf() {
    local cnf=$1; shift
    env -u KEYSTORE_SERVER -u KEYSTORE_SERVER_PUBKEY -u KEYSTORE_CLIENT_KEY OPENSSL_CONF="$cnf" "$@"
}
