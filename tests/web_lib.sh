# Helpers for tests/test_web_servers.sh: the configuration blocks of
# docs/web-servers.md, moved to the test's directory and ports, and the two
# TLS clients.  Sourced after lib.sh.

WEB_DOC="$KS_SOURCE_ROOT/docs/web-servers.md"
CA="$T/ca/ca.crt"
HOST=www.example.org

# The fenced block after "<!-- test:NAME -->" in docs/web-servers.md, with the
# production paths replaced by the test's (the longer paths first).
doc_block() {
    local out
    out=$(awk -v tag="<!-- test:$1 -->" '
        $0 == tag { want = 1; next }
        want && /^```/ { if (inside) exit; inside = 1; next }
        inside { print }' "$WEB_DOC")
    [ -n "$out" ] || fail "docs/web-servers.md has no block <!-- test:$1 -->"
    sed -e "s|/etc/ssl/keystore.cnf|$T/keystore.cnf|g" \
        -e "s|/etc/ssl/keystore|$T/ssl|g" \
        -e "s|/usr/lib/x86_64-linux-gnu/ossl-modules/keystore.so|$OPENSSL_MODULES/keystore.so|g" \
        -e "s|unix:/run/keystored/keystored.sock|$KEYSTORE_SERVER|g" \
        -e "s|/var/lib/haproxy|$T/haproxy/jail|g" \
        -e "s|/run/keystored|$T|g" \
        -e "s|/run/haproxy/admin.sock|$T/haproxy/admin.sock|g" \
        -e "s|/var/www/html|$T/apache/htdocs|g" \
        -e "s|/etc/keystored/acl|$T/acl|g" <<<"$out"
}

# A site block for key type $2 on port $3 (web-ec in the doc -> web-$2).
doc_site() {
    doc_block "$1" | sed -e "s|web-ec|web-$2|g" \
        -e "s|listen 443 |listen 127.0.0.1:$3 |; s|bind :443 |bind 127.0.0.1:$3 |" \
        -e "s|\*:443>|127.0.0.1:$3>|; s|^frontend www$|frontend www-$2|"
}

# The OPENSSL_CONF value a drop-in sets; also checks the drop-in against
# Debian's own unit with systemd-analyze.
dropin_env() {
    local unit=/lib/systemd/system/$1.service v
    mkdir -p "$T/units"
    { cat "$unit"; doc_block_raw "dropin-$1"; } > "$T/units/$1.service"
    v=$(systemd-analyze verify --man=no "$T/units/$1.service" 2>&1) \
        || fail "systemd-analyze verify of $1.service with the drop-in: $v"
    [ -z "$v" ] || fail "systemd-analyze verify complains about the $1 drop-in: $v"
    doc_block "dropin-$1" | sed -n 's/^Environment=OPENSSL_CONF=//p'
}
# The block with the production paths (for systemd-analyze).
doc_block_raw() {
    awk -v tag="<!-- test:$1 -->" '
        $0 == tag { want = 1; next }
        want && /^```/ { if (inside) exit; inside = 1; next }
        inside { print }' "$WEB_DOC"
}

# Run a sh block of the doc (systemctl reload replaced by the test's reload).
doc_run() {
    local f="$T/block-$1.sh"
    doc_block "$1" | sed "s|^systemctl reload .*|reload_all|" > "$f"
    ( set -e; PATH="$T/bin:$PATH"; . "$f" ) > "$T/block-$1.log" 2>&1 \
        || { cat "$T/block-$1.log" >&2; fail "docs/web-servers.md block '$1' failed"; }
}

# The test CA signs $T/ssl/NAME.csr into $T/ssl/NAME.crt (keeping the SAN).
ca_sign() {
    OPENSSL_CONF=/dev/null openssl x509 -req -in "$T/ssl/$1.csr" -CA "$CA" -CAkey "$T/ca/ca.key" \
        -CAcreateserial -days 2 -copy_extensions copy -out "$T/ssl/$1.crt" 2>"$T/ca/sign.log" \
        || { cat "$T/ca/sign.log" >&2; fail "CA signing $1"; }
}

# curl PORT VERSION [curl options...]: body of https://www.example.org:PORT/, TLS VERSION only.
web_curl() {
    local port=$1 v=$2; shift 2
    OPENSSL_CONF=/dev/null curl -sS --fail --max-time 20 -v --cacert "$CA" \
        --resolve "$HOST:$port:127.0.0.1" "--tlsv$v" --tls-max "$v" "$@" \
        "https://$HOST:$port/index.html" 2>"$T/curl.err"
}

# gnutls-cli PORT VERSION: the whole session log of a GET.
web_gnutls() {
    printf 'GET /index.html HTTP/1.0\r\nHost: %s\r\n\r\n' "$HOST" | timeout 20 gnutls-cli \
        --x509cafile "$CA" --verify-hostname "$HOST" --sni-hostname "$HOST" -p "$1" \
        --priority "NORMAL:-VERS-ALL:+VERS-TLS$2" 127.0.0.1 2>&1
}

# Serial number of the certificate served on PORT.
served_serial() {
    OPENSSL_CONF=/dev/null timeout 20 openssl s_client -connect "127.0.0.1:$1" -servername "$HOST" \
        </dev/null 2>/dev/null | OPENSSL_CONF=/dev/null openssl x509 -noout -serial 2>/dev/null
}

# Requests one after the other to PORT until $T/stop exists; one line each.
req_loop() {
    while [ ! -e "$T/stop" ]; do
        if OPENSSL_CONF=/dev/null curl -sS --fail --max-time 20 -o /dev/null --cacert "$CA" \
                --resolve "$HOST:$1:127.0.0.1" "https://$HOST:$1/index.html" 2>>"$2.err"; then
            echo ok
        else
            echo FAIL
        fi
    done > "$2"
}

