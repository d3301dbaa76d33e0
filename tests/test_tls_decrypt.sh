#!/usr/bin/env bash
# TLS 1.2 RSA key exchange decryption through the keystore behaves like the
# default provider: no distinguishable failure for bad blocks (tls_decrypt.c),
# and a real RSA key-exchange handshake completes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
ks_start

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/rsa.pem" 2>/dev/null
ks_ctl import rsa "$T/rsa.pem" --usage sign,decrypt >/dev/null || fail "import rsa"
ks_write_cnf >/dev/null
rc=0
OPENSSL_CONF="$T/openssl.cnf" "$KS_BUILD_ROOT/tests/tls_decrypt" keystore:rsa "$T/rsa.pem" >"$T/out" 2>&1 || rc=$?
cat "$T/out"
[ $rc -eq 0 ] || fail "tls_decrypt"
grep -q "FAIL" "$T/out" && fail "tls_decrypt reported a failure"
pass "TLS-mode decryption: good blocks decrypt, bad blocks give 48 random bytes and no error, like the default provider"

# A real RSA key-exchange handshake (the premaster is decrypted in the server).
openssl req "${PROV[@]}" -new -x509 -key keystore:rsa -subj /CN=localhost -days 2 -out "$T/rsa.crt" \
    || fail "certificate"
tls_serve "$T/srv.log" -key keystore:rsa -cert "$T/rsa.crt"
tls_get "$T/cli.log" -tls1_2 -cipher AES256-GCM-SHA384 -CAfile "$T/rsa.crt"
expect_line "$T/cli.log" "Cipher *: AES256-GCM-SHA384" "RSA key exchange"
pass "TLS 1.2 RSA key exchange with the key in the server"
