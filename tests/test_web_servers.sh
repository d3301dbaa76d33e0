#!/usr/bin/env bash
# Debian's nginx, Apache (mod_ssl) and HAProxy serving keystore keys (EC
# P-256, RSA-2048, Ed25519), configured with the blocks of
# docs/web-servers.md: the provider from OPENSSL_CONF in the server's
# environment (the drop-in's value), key-reference PEMs as key files, workers
# as www-data / haproxy reaching a 0660 root:keystore socket and granted by
# the access list.  Fetched over TLS 1.2 and 1.3 with curl (OpenSSL) and
# gnutls-cli (GnuTLS); reloaded; the EC key rotated (keystorectl rotate: a new
# version under the same name, its CSR from keystore:web-ec?version=2) while
# requests run, the servers reloaded onto it, with
# no failed request and the new certificate served afterwards.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/web_lib.sh"
[ "$(id -u)" = 0 ] || fail "run as root: the web servers' masters start as root and drop to their users"
for b in nginx haproxy apache2 apachectl curl gnutls-cli systemd-analyze unshare; do
    command -v "$b" >/dev/null || fail "$b is missing: run tests/install-deps.sh"
done
getent group keystore >/dev/null || groupadd --system keystore
NGX=() HAP_PID=
# By pid file: "nginx -s stop" and "apachectl stop" parse the configuration,
# which needs the provider (and fails once the test broke something).
stop_pidfile() {
    local pid i
    pid=$(cat "$1" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || return 0
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}
stop_servers() {
    touch "$T/stop"
    stop_pidfile "$T/nginx/nginx.pid"
    stop_pidfile "$T/apache/apache2.pid"
    [ -z "$HAP_PID" ] || { kill "$HAP_PID" 2>/dev/null; wait "$HAP_PID" 2>/dev/null; } || true
}
trap 'rc=$?; stop_servers; (exit $rc); cleanup' EXIT
chmod 0711 "$T"                         # the workers reach the socket inside it
mkdir -p "$T/ssl" "$T/ca" "$T/bin" "$T/nginx" "$T/apache/htdocs" "$T/haproxy/jail"
ln -s "$KEYSTORECTL" "$T/bin/keystorectl"

# --- keystored: the access list of the doc, the socket root:keystore 0660
export KEYSTORE_SERVER="unix:$T/ks.sock"
doc_block acl > "$T/acl"
ks_start "acl = $T/acl" "socket_mode = 0660"
chgrp keystore "$T/ks.sock"             # what socket_group / SocketGroup= do
doc_block cnf > "$T/keystore.cnf"
grep -q "^timeout = 5$" "$T/keystore.cnf" || fail "the doc's cnf should set the provider timeout"

# --- keys, references, certificates (the CA's part is the test's own)
OPENSSL_CONF=/dev/null openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/ca/ca.key" -subj /CN=Web-Test-CA -days 2 -out "$CA" 2>/dev/null || fail "test CA"
doc_run keys
for k in web-ec web-rsa web-ed; do ca_sign "$k"; done
doc_run certs
doc_run grant
id -nG www-data | grep -qw keystore || fail "www-data is not in group keystore"
pass "keys generated, references written, certificates attached (doc blocks keys, certs, grant)"

# The servers' key files are references: the URI and nothing else.
for k in web-ec web-rsa web-ed; do
    der=$(OPENSSL_CONF=/dev/null openssl asn1parse -in "$T/ssl/$k.pem" 2>&1) || fail "asn1parse $k.pem: $der"
    [ "$(wc -l <<<"$der")" = 2 ] && grep -q "SEQUENCE" <<<"$der" \
        && grep -q "UTF8STRING *:keystore:$k\$" <<<"$der" || fail "$k.pem is not a bare reference: $der"
done

# --- the environment of each service is the drop-in's
ENV_NGINX=$(dropin_env nginx); ENV_APACHE=$(dropin_env apache2); ENV_HAP=$(dropin_env haproxy)
[ "$ENV_NGINX" = "$T/keystore.cnf" ] && [ "$ENV_APACHE" = "$T/keystore.cnf" ] \
    && [ "$ENV_HAP" = "$T/keystore.cnf" ] || fail "drop-ins should set OPENSSL_CONF to the cnf"
pass "drop-ins pass systemd-analyze verify with Debian's units"

free_ports P_NGX_EC P_NGX_RSA P_NGX_ED P_APA_EC P_APA_RSA P_APA_ED P_HAP_EC P_HAP_RSA P_HAP_ED

# --- nginx: the doc's site per key type inside a minimal nginx.conf of the test's
{
    echo "user www-data;"
    echo "worker_processes 2;"
    echo "pid $T/nginx/nginx.pid;"
    echo "error_log $T/nginx/error.log;"
    echo "events { worker_connections 128; }"
    echo "http {"
    echo "access_log off;"
    for d in client_body proxy fastcgi uwsgi scgi; do echo "${d}_temp_path $T/nginx/tmp-$d;"; done
    doc_site nginx ec "$P_NGX_EC"; doc_site nginx rsa "$P_NGX_RSA"; doc_site nginx ed "$P_NGX_ED"
    echo "}"
} > "$T/nginx/nginx.conf"
NGX=(-c "$T/nginx/nginx.conf" -p "$T/nginx/" -e "$T/nginx/error.log" -g "daemon on; master_process on;")
# Without the provider in the environment the key file is unreadable, even
# with nginx's own env directive.
expect_fail "PEM_read_bio_PrivateKey\(\) failed.*DECODER routines::unsupported" \
    env -u OPENSSL_CONF nginx "${NGX[@]}" -t
sed "1i env OPENSSL_CONF=$T/keystore.cnf;" "$T/nginx/nginx.conf" > "$T/nginx/env-directive.conf"
expect_fail "PEM_read_bio_PrivateKey\(\) failed" env -u OPENSSL_CONF nginx -c "$T/nginx/env-directive.conf" \
    -p "$T/nginx/" -e "$T/nginx/error.log" -t
pass "nginx -t without OPENSSL_CONF in its environment fails (env directive too late)"
# A URI instead of a reference file is taken for a file name.
sed "s|ssl_certificate_key .*/web-ec.pem;|ssl_certificate_key store:keystore:web-ec;|" \
    "$T/nginx/nginx.conf" > "$T/nginx/store.conf"
expect_fail "store:keystore:web-ec\": BIO_new_file\(\) failed" \
    env OPENSSL_CONF="$T/keystore.cnf" nginx -c "$T/nginx/store.conf" -p "$T/nginx/" -e "$T/nginx/error.log" -t
OPENSSL_CONF=$ENV_NGINX nginx "${NGX[@]}" -t 2>/dev/null || fail "nginx -t with the drop-in's environment"
OPENSSL_CONF=$ENV_NGINX nginx "${NGX[@]}" || { cat "$T/nginx/error.log"; fail "nginx start"; }

# --- Apache: Debian's apachectl with the test's own config directory
cat > "$T/apache/envvars" <<EOF
export APACHE_RUN_USER=www-data APACHE_RUN_GROUP=www-data APACHE_PID_FILE=$T/apache/apache2.pid
export APACHE_RUN_DIR=$T/apache/run APACHE_LOCK_DIR=$T/apache/lock APACHE_LOG_DIR=$T/apache LANG=C
EOF
echo "hello from apache" > "$T/apache/htdocs/index.html"
chmod -R a+rX "$T/apache/htdocs"
{
    echo "ServerRoot $T/apache"
    echo "ServerName localhost"
    echo 'PidFile ${APACHE_PID_FILE}'
    echo 'User ${APACHE_RUN_USER}'
    echo 'Group ${APACHE_RUN_GROUP}'
    echo "ErrorLog $T/apache/error.log"
    for m in mpm_event authz_core ssl socache_shmcb; do
        echo "LoadModule ${m}_module /usr/lib/apache2/modules/mod_$m.so"
    done
    echo "<Directory $T/apache/htdocs>"; echo "Require all granted"; echo "</Directory>"
    for p in "ec $P_APA_EC" "rsa $P_APA_RSA" "ed $P_APA_ED"; do
        set -- $p; echo "Listen 127.0.0.1:$2"; doc_site apache "$1" "$2"
    done
} > "$T/apache/apache2.conf"
sed "s|SSLCertificateKeyFile .*/web-ec.pem|SSLCertificateKeyFile keystore:web-ec|" \
    "$T/apache/apache2.conf" > "$T/apache/uri.conf"
expect_fail "SSLCertificateKeyFile: file '.*/keystore:web-ec' does not exist" \
    env APACHE_CONFDIR="$T/apache" OPENSSL_CONF="$ENV_APACHE" apachectl -f "$T/apache/uri.conf" -t
sed "s|ssl_certificate_key .*/web-ec.pem;|ssl_certificate_key engine:keystore:web-ec;|" \
    "$T/nginx/nginx.conf" > "$T/nginx/engine.conf"
expect_fail "ENGINE_by_id\(\) failed" \
    env OPENSSL_CONF="$T/keystore.cnf" nginx -c "$T/nginx/engine.conf" -p "$T/nginx/" -e "$T/nginx/error.log" -t
pass "nginx and Apache take a keystore: URI as key for a file name; nginx's engine: form finds no engine"
( export APACHE_CONFDIR="$T/apache" OPENSSL_CONF=$ENV_APACHE; apachectl start ) >"$T/apache/start.log" 2>&1 \
    || { cat "$T/apache/start.log" "$T/apache/error.log"; fail "apachectl start"; }

# --- HAProxy: master-worker, workers chrooted; the drop-in's BindPaths= done
# by hand in a mount namespace of its own.
{ doc_block haproxy-global | sed '/^global$/a\    pidfile '"$T"'/haproxy/haproxy.pid'
  doc_site haproxy-frontend ec "$P_HAP_EC"; doc_site haproxy-frontend rsa "$P_HAP_RSA"
  doc_site haproxy-frontend ed "$P_HAP_ED"; } > "$T/haproxy/haproxy.cfg"
bind=$(doc_block dropin-haproxy | sed -n 's/^BindPaths=//p')
[ -n "$bind" ] || fail "the haproxy drop-in has no BindPaths="
mkdir -p "${bind#*:}"
OPENSSL_CONF=$ENV_HAP haproxy -c -q -f "$T/haproxy/haproxy.cfg" || fail "haproxy -c with the drop-in's environment"
sed "s|crt .*/web-ec.haproxy.pem|crt keystore:web-ec|" "$T/haproxy/haproxy.cfg" > "$T/haproxy/uri.cfg"
expect_fail "unable to stat SSL certificate from file 'keystore:web-ec'" \
    env OPENSSL_CONF="$ENV_HAP" haproxy -c -f "$T/haproxy/uri.cfg"
pass "HAProxy takes a keystore: URI as crt for a file name"
OPENSSL_CONF=$ENV_HAP unshare -m --propagation private sh -c \
    'mount --bind "$1" "$2" && exec haproxy -W -f "$3"' sh "${bind%%:*}" "${bind#*:}" \
    "$T/haproxy/haproxy.cfg" >"$T/haproxy/haproxy.log" 2>&1 &
HAP_PID=$!

# --- every server, key type, protocol version and client
fetch_curl() {   # label what port version
    local out
    out=$(web_curl "$3" "$4") || { cat "$T/curl.err"; fail "$1: curl $2 TLS $4"; }
    grep -q "^hello from" <<<"$out" || fail "$1: curl $2 TLS $4: body '$out'"
    grep -q "SSL connection using TLSv$4" "$T/curl.err" || fail "$1: curl $2: not TLS $4"
}
fetch_gnutls() {
    local out
    out=$(web_gnutls "$3" "$4") || { echo "$out"; fail "$1: gnutls-cli $2 TLS $4"; }
    grep -q "Description: (TLS$4-" <<<"$out" && grep -q "^hello from" <<<"$out" \
        || { echo "$out"; fail "$1: gnutls-cli $2 TLS $4"; }
}
# $1: label; $2 "quick": only TLS 1.3 with curl and TLS 1.2 with gnutls-cli
check_all() {
    local srv t port v c
    for srv in NGX APA HAP; do for t in EC RSA ED; do
        port=P_${srv}_$t; port=${!port}
        for v in 1.2 1.3; do for c in curl gnutls; do
            [ "${2:-}" = quick ] && [ "$v-$c" != 1.3-curl ] && [ "$v-$c" != 1.2-gnutls ] && continue
            "fetch_$c" "$1" "$srv $t" "$port" "$v"
        done; done
    done; done
    # TLS 1.2 RSA key exchange: the decrypt grant
    web_curl "$P_NGX_RSA" 1.2 --ciphers AES128-GCM-SHA256 >/dev/null \
        || { cat "$T/curl.err"; fail "$1: RSA key exchange"; }
}
wait_serving() {
    local port i
    for port in "$@"; do
        for i in $(seq 200); do web_curl "$port" 1.3 >/dev/null 2>&1 && continue 2; sleep 0.1; done
        cat "$T/haproxy/haproxy.log" "$T/nginx/error.log" "$T/apache/error.log" >&2
        fail "nothing serves on port $port"
    done
}
wait_serving "$P_NGX_EC" "$P_APA_EC" "$P_HAP_EC"
check_all "start"
pass "nginx, Apache, HAProxy serve EC, RSA and Ed25519 keys over TLS 1.2 and 1.3 to curl and gnutls-cli"

# The handshakes were signed by the workers, as their users, over the 0660 socket.
for u in www-data haproxy; do
    grep -q "uid $(id -u $u) gid [0-9]* pid [0-9]*: hello" "$T/keystored.log" \
        || fail "no connection from a worker running as $u"
done
expect_fail "keystore server unreachable.*Permission denied" setpriv --reuid nobody --regid nogroup --clear-groups \
    openssl pkey -provider default -provider keystore -in keystore:web-ec -noout
pass "workers connect as www-data and haproxy; a user outside group keystore cannot"

# --- reload (what the units' ExecReload= run), then again with a rotated key
reload_all() {
    OPENSSL_CONF=$ENV_NGINX nginx "${NGX[@]}" -s reload
    ( export APACHE_CONFDIR="$T/apache" OPENSSL_CONF=$ENV_APACHE; apachectl graceful )
    OPENSSL_CONF=$ENV_HAP haproxy -c -q -f "$T/haproxy/haproxy.cfg"
    kill -USR2 "$HAP_PID"
}
reload_all >"$T/reload.log" 2>&1 || { cat "$T/reload.log"; fail "reload"; }
sleep 1
check_all "after reload" quick
pass "all three serve the same after a reload"

old=$(served_serial "$P_NGX_EC")
[ -n "$old" ] && [ "$old" = "$(served_serial "$P_APA_EC")" ] && [ "$old" = "$(served_serial "$P_HAP_EC")" ] \
    || fail "the three servers should serve the same web-ec certificate"
doc_run rotate
ca_sign web-ec-2
rm -f "$T/stop"; loops=()
for srv in NGX APA HAP; do port=P_${srv}_EC; req_loop "${!port}" "$T/loop.$srv" & loops+=($!); done
sleep 1
doc_run rotate-install
for srv in NGX APA HAP; do
    port=P_${srv}_EC
    for i in $(seq 100); do
        s=$(served_serial "${!port}"); [ -n "$s" ] && [ "$s" != "$old" ] && break; sleep 0.2
    done
    [ "$s" != "$old" ] || fail "$srv still serves the old certificate after the reload"
done
sleep 1; touch "$T/stop"; wait "${loops[@]}"
for srv in NGX APA HAP; do
    n=$(grep -c . "$T/loop.$srv"); bad=$(grep -c FAIL "$T/loop.$srv" || true)
    [ "$bad" = 0 ] || { cat "$T/loop.$srv.err"; fail "$srv: $bad of $n requests failed across the rotation"; }
    [ "$n" -ge 5 ] || fail "$srv: only $n requests ran across the rotation"
    note "$srv: $n requests across the rotation, none failed"
done
new=$(served_serial "$P_NGX_EC")
[ "$new" = "$(OPENSSL_CONF=/dev/null openssl x509 -in "$T/ssl/web-ec-2.crt" -noout -serial)" ] \
    || fail "the served certificate is not web-ec-2's"
check_all "after the rotation" quick
pass "key rotated under load: new certificate served by all three, 0 failed requests"

# No private key in any file the servers read.
if grep -rlE "PRIVATE KEY" "$T/ssl" "$T/nginx" "$T/apache" "$T/haproxy" 2>/dev/null; then
    fail "a web server's file holds a private key"
fi
pass "no private key in the servers' files"

# The recommended provider timeout: with keystored stuck, a handshake fails
# after about 5 s instead of holding the nginx worker; once keystored runs
# again the same workers serve again.
kill -STOP "$KS_PID"
t0=$SECONDS
if web_curl "$P_NGX_ED" 1.3 >/dev/null; then kill -CONT "$KS_PID"; fail "a handshake succeeded with keystored stopped"; fi
took=$(( SECONDS - t0 ))
kill -CONT "$KS_PID"
[ "$took" -ge 4 ] && [ "$took" -le 15 ] || fail "with keystored stopped the handshake failed after ${took}s, not ~5s"
# the worker's provider backs off from the server for 25-50 ms after that
# one failure (provider/servers.c): a handshake inside it fails at once, so
# give it up to 1 s
for i in $(seq 10); do web_curl "$P_NGX_ED" 1.3 >/dev/null && break; sleep 0.1; done
web_curl "$P_NGX_ED" 1.3 >/dev/null || { cat "$T/curl.err"; fail "nginx does not serve again within 1 s after keystored resumed"; }
pass "keystored stopped: the handshake fails after ${took}s (timeout = 5), and nginx serves again once it resumes"
