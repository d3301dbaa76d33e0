#!/usr/bin/env bash
# A real TLS 1.3 handshake: s_server holds only a keystore reference.
. "$(dirname "$0")/lib.sh"
ks_start

ks_ctl generate web --type ec --curve P-256 >/dev/null || fail "generate"
openssl req "${PROV[@]}" -new -x509 -key keystore:web -subj /CN=localhost -days 2 -out "$T/web.crt" \
    || fail "certificate"

free_ports port
openssl s_server "${PROV[@]}" -accept "127.0.0.1:$port" -key keystore:web -cert "$T/web.crt" \
    -tls1_3 -naccept 1 -www >"$T/server.log" 2>&1 &
srv=$!
for i in $(seq 1 100); do
    grep -q ACCEPT "$T/server.log" && break
    kill -0 $srv 2>/dev/null || { cat "$T/server.log"; fail "s_server exited"; }
    sleep 0.1
done
# -www: the server answers the request with a page naming the session's cipher,
# then closes, so s_client ends on its own.
out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client -connect "127.0.0.1:$port" -tls1_3 \
      -CAfile "$T/web.crt" -verify_return_error -ign_eof 2>&1) || { echo "$out"; cat "$T/server.log"; fail "s_client"; }
wait $srv || true
grep -q "Verify return code: 0" <<<"$out" || { echo "$out"; fail "certificate did not verify"; }
grep -q "TLSv1.3" <<<"$out" || { echo "$out"; fail "not TLS 1.3"; }
grep -q "HTTP/1.0 200 ok" <<<"$out" && grep -q "Ciphers supported in s_server binary" <<<"$out" \
    || { echo "$out"; cat "$T/server.log"; fail "no data from server"; }
pass "TLS 1.3 handshake and data with keystore:web"
