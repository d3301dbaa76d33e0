#!/usr/bin/env bash
# The provider order the docs give (default activated before keystore, on the
# command line or in openssl.cnf) keeps every TLS group: libssl takes a group
# from a provider only if a fetch of its key management without a property
# query returns that provider's, and the keystore provider has key
# managements named EC, X25519 and X448.  Checked with a key file in s_server
# while keystore is loaded, with a keystore key in s_server, with a keystore
# client key for mutual TLS and with a keyless client, each negotiating X25519
# by default and P-256 when asked.  In the reverse order, a program that makes
# its SSL_CTX before opening a keystore key is refused with the remedy
# (provider.c ks_get_capabilities) instead of getting FFDHE alone.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
ks_start

ks_ctl generate web --type ec --curve P-256 >/dev/null || fail "generate web"
ks_ctl generate client --type ec --curve P-256 >/dev/null || fail "generate client"
selfsigned web
openssl req "${PROV[@]}" -new -x509 -key keystore:client -subj /CN=ks-client -days 2 \
    -out "$T/client.crt" || fail "client certificate"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/file.pem" 2>/dev/null \
    || fail "genpkey file key"
openssl req -new -x509 -key "$T/file.pem" -subj /CN=localhost -days 2 \
    -addext subjectAltName=DNS:localhost -out "$T/file.crt" || fail "file key certificate"

X25519="Server Temp Key: X25519, 253 bits"
P256="Server Temp Key: ECDH, prime256v1, 256 bits"

# serve_and_get NAME GROUPLINE SERVER-ARGS -- CLIENT-ARGS: one handshake; the
# client's output must show the group.  SRV_PROV and CLI_PROV load the
# providers; SRV_CONF and CLI_CONF are the openssl.cnf of each side.
serve_and_get() {
    local name=$1 want=$2 srv=() ; shift 2
    while [ "$1" != -- ]; do srv+=("$1"); shift; done
    shift
    OPENSSL_CONF=$SRV_CONF tls_serve "$T/$name.srv" -tls1_3 "${srv[@]}"
    OPENSSL_CONF=$CLI_CONF tls_get "$T/$name.cli" ${CLI_PROV[@]+"${CLI_PROV[@]}"} "$@"
    expect_line "$T/$name.cli" "$want" "$name"
}

# The three cases; $2 is the openssl.cnf of the side that loads keystore,
# SRV_PROV and CLI_PROV its command-line providers.
order_checks() {
    local how=$1 cnf=$2 keep_srv=("${SRV_PROV[@]+"${SRV_PROV[@]}"}") keep_cli=("${CLI_PROV[@]+"${CLI_PROV[@]}"}")
    # (1) a key file in s_server with keystore loaded, a default client
    SRV_CONF=$cnf CLI_CONF=/dev/null
    CLI_PROV=()
    serve_and_get "$how-file" "$X25519" -key "$T/file.pem" -cert "$T/file.crt" -- -CAfile "$T/file.crt"
    serve_and_get "$how-file-p256" "$P256" -key "$T/file.pem" -cert "$T/file.crt" -- \
        -CAfile "$T/file.crt" -groups P-256
    pass "$how: s_server -key FILE with keystore loaded negotiates X25519, and P-256 when asked"
    # (2) a keystore key in s_server
    serve_and_get "$how-ks" "$X25519" -key keystore:web -cert "$T/web.crt" -- -CAfile "$T/web.crt"
    serve_and_get "$how-ks-p256" "$P256" -key keystore:web -cert "$T/web.crt" -- \
        -CAfile "$T/web.crt" -groups P-256
    pass "$how: s_server -key keystore:web negotiates X25519, and P-256 when asked"
    # (3) s_client with keystore loaded and its key in the keystore (mutual
    # TLS); the server is a plain one
    SRV_CONF=/dev/null CLI_CONF=$cnf
    SRV_PROV=()
    CLI_PROV=("${keep_cli[@]+"${keep_cli[@]}"}")
    serve_and_get "$how-mtls" "$X25519" -key "$T/file.pem" -cert "$T/file.crt" \
        -Verify 1 -CAfile "$T/client.crt" -verify_return_error -- \
        -CAfile "$T/file.crt" -key keystore:client -cert "$T/client.crt"
    expect_line "$T/$how-mtls.srv" "depth=0 CN = ks-client" "$how: server saw the client certificate"
    serve_and_get "$how-mtls-p256" "$P256" -key "$T/file.pem" -cert "$T/file.crt" \
        -Verify 1 -CAfile "$T/client.crt" -verify_return_error -- \
        -CAfile "$T/file.crt" -key keystore:client -cert "$T/client.crt" -groups P-256:X25519
    pass "$how: s_client -key keystore:client (mutual TLS) negotiates X25519, and P-256 when asked"
    # a client with keystore loaded and no keystore key, as any TLS client is
    serve_and_get "$how-cli" "$X25519" -key "$T/file.pem" -cert "$T/file.crt" -- -CAfile "$T/file.crt"
    serve_and_get "$how-cli-p256" "$P256" -key "$T/file.pem" -cert "$T/file.crt" -- \
        -CAfile "$T/file.crt" -groups P-256:X25519
    pass "$how: s_client with keystore loaded and no keystore key negotiates X25519, and P-256 when asked"
    SRV_PROV=("${keep_srv[@]+"${keep_srv[@]}"}")
}

# On the command line, as README.md and docs/openssl-usage.md write it.
SRV_PROV=("${PROV[@]}")
CLI_PROV=("${PROV[@]}")
order_checks cmdline /dev/null

# (4) In openssl.cnf, as docs/openssl-usage.md writes it (default listed first).
cnf=$(ks_write_cnf)
grep -A2 '^\[provider_sect\]' "$cnf" | tr '\n' ' ' | grep -q 'default = default_sect keystore = keystore_sect' \
    || { cat "$cnf"; fail "ks_write_cnf no longer lists default first"; }
SRV_PROV=()
CLI_PROV=()
order_checks cnf "$cnf"

# keystore activated first, nothing re-ordering the providers before the
# SSL_CTX is made: the provider refuses the SSL_CTX (get_capabilities
# "TLS-GROUP") instead of letting libssl drop every group but FFDHE.
OLD=("${PROV[@]:2:2}" "${PROV[@]:0:2}")   # the documented order reversed
ORDER_MSG="TLS would offer no X25519, X448 or EC groups, only FFDHE.*activate default first \(-provider default -provider keystore"
expect_fail "$ORDER_MSG" timeout 20 openssl s_server "${OLD[@]}" -key "$T/file.pem" -cert "$T/file.crt" \
    -accept 127.0.0.1:0 -naccept 1 -www
expect_fail "$ORDER_MSG" timeout 20 openssl s_client "${OLD[@]}" -connect 127.0.0.1:1 </dev/null
sed '/^default = default_sect$/{h;d};/^keystore = keystore_sect$/G' "$cnf" >"$T/ks-first.cnf"
grep -A2 '^\[provider_sect\]' "$T/ks-first.cnf" | tr '\n' ' ' | grep -q 'keystore = keystore_sect default = default_sect' \
    || { cat "$T/ks-first.cnf"; fail "ks-first.cnf does not list keystore first"; }
OPENSSL_CONF=$T/ks-first.cnf expect_fail "$ORDER_MSG" timeout 20 openssl s_server -key "$T/file.pem" \
    -cert "$T/file.crt" -accept 127.0.0.1:0 -naccept 1 -www
pass "keystore before default: s_server -key FILE and a keyless s_client fail, saying to activate default first"
# Opening a keystore key before the SSL_CTX re-orders the providers
# (ks_prefer_other_providers), so these keep every group and pass the check.
SRV_PROV=("${OLD[@]}") SRV_CONF=/dev/null CLI_CONF=/dev/null CLI_PROV=()
serve_and_get old-ks "$X25519" -key keystore:web -cert "$T/web.crt" -- -CAfile "$T/web.crt"
SRV_PROV=() CLI_PROV=("${OLD[@]}")
serve_and_get old-mtls "$X25519" -key "$T/file.pem" -cert "$T/file.crt" \
    -Verify 1 -CAfile "$T/client.crt" -verify_return_error -- \
    -CAfile "$T/file.crt" -key keystore:client -cert "$T/client.crt"
pass "keystore before default with a keystore key opened first: X25519 in s_server and s_client"
