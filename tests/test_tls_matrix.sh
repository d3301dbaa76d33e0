#!/usr/bin/env bash
# s_server with keystore keys against a plain s_client: each handshake must
# complete, verify and carry data, with the expected protocol, cipher and
# peer signature.  TLS 1.3 (RSA-PSS rsae and pss, ECDSA P-256/P-384,
# Ed25519, Ed448), TLS 1.2 (ECDHE-RSA, ECDHE-ECDSA, RSA key exchange, which
# decrypts in the server), and mutual TLS with the client's key in the keystore.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
ks_start

ks_ctl generate rsa --type rsa --bits 2048 --usage sign,decrypt >/dev/null || fail "generate rsa"
ks_ctl generate pss --type rsa-pss --bits 2048 >/dev/null || fail "generate rsa-pss"
ks_ctl generate p256 --type ec --curve P-256 >/dev/null || fail "generate p256"
ks_ctl generate p384 --type ec --curve P-384 >/dev/null || fail "generate p384"
ks_ctl generate ed --type ed25519 >/dev/null || fail "generate ed25519"
ks_ctl generate ed448 --type ed448 >/dev/null || fail "generate ed448"
ks_ctl generate client --type ec --curve P-256 >/dev/null || fail "generate client"
keys_before=$(ks_ctl list | awk 'NR > 1 { print $1 }' | sort)
for k in rsa pss p256 p384 ed ed448; do selfsigned "$k"; done
openssl req "${PROV[@]}" -new -x509 -key keystore:client -subj /CN=ks-client -days 2 \
    -out "$T/client.crt" || fail "client certificate"

# name | server key | s_client options | expected lines (regexes, ';'-separated)
run() {
    local name=$1 key=$2 copts=$3 expects=$4 re
    tls_serve "$T/$name.srv" -key "keystore:$key" -cert "$T/$key.crt"
    # shellcheck disable=SC2086
    tls_get "$T/$name.cli" -CAfile "$T/$key.crt" $copts
    IFS=';' read -ra res <<<"$expects"
    for re in "${res[@]}"; do expect_line "$T/$name.cli" "$re" "$name"; done
    pass "$name"
}

run tls13-rsa-pss-rsae rsa "-tls1_3 -sigalgs rsa_pss_rsae_sha256" \
    "Protocol *: TLSv1.3;Peer signature type: RSA-PSS;Peer signing digest: SHA256"
run tls13-rsa-pss-rsae-sha384 rsa "-tls1_3 -sigalgs rsa_pss_rsae_sha384" \
    "Protocol *: TLSv1.3;Peer signature type: RSA-PSS;Peer signing digest: SHA384"
run tls13-rsa-pss-pss pss "-tls1_3 -sigalgs rsa_pss_pss_sha256" \
    "Protocol *: TLSv1.3;Peer signature type: RSA-PSS;Peer signing digest: SHA256"
run tls13-ecdsa-p256 p256 "-tls1_3 -sigalgs ecdsa_secp256r1_sha256" \
    "Protocol *: TLSv1.3;Peer signature type: ECDSA;Peer signing digest: SHA256"
run tls13-ecdsa-p384 p384 "-tls1_3 -sigalgs ecdsa_secp384r1_sha384" \
    "Protocol *: TLSv1.3;Peer signature type: ECDSA;Peer signing digest: SHA384"
run tls13-ed25519 ed "-tls1_3 -sigalgs ed25519" \
    "Protocol *: TLSv1.3;Peer signature type: ed25519"
run tls13-ed448 ed448 "-tls1_3 -sigalgs ed448" \
    "Protocol *: TLSv1.3;Peer signature type: ed448"
run tls12-ecdhe-rsa rsa "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256" \
    "Protocol *: TLSv1.2;Cipher *: ECDHE-RSA-AES128-GCM-SHA256;Peer signature type: RSA"
run tls12-ecdhe-rsa-pss rsa "-tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384 -sigalgs rsa_pss_rsae_sha384" \
    "Protocol *: TLSv1.2;Cipher *: ECDHE-RSA-AES256-GCM-SHA384;Peer signature type: RSA-PSS"
run tls12-ecdhe-ecdsa p256 "-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256" \
    "Protocol *: TLSv1.2;Cipher *: ECDHE-ECDSA-AES128-GCM-SHA256;Peer signature type: ECDSA"
# RSA key exchange: the premaster secret is decrypted in the server (TLS mode)
run tls12-rsa-kx rsa "-tls1_2 -cipher AES128-GCM-SHA256" \
    "Protocol *: TLSv1.2;Cipher *: AES128-GCM-SHA256"
grep -q "Peer signature type" "$T/tls12-rsa-kx.cli" && fail "RSA key exchange should not sign"

# Mutual TLS: the client's key is in the keystore too; s_server demands and checks it.
tls_serve "$T/mtls.srv" -key keystore:p256 -cert "$T/p256.crt" -Verify 1 -CAfile "$T/client.crt" \
    -verify_return_error
tls_get "$T/mtls.cli" "${PROV[@]}" -tls1_3 -CAfile "$T/p256.crt" -key keystore:client -cert "$T/client.crt"
expect_line "$T/mtls.srv" "depth=0 CN = ks-client" "server saw the client certificate"
grep -q "verify error" "$T/mtls.srv" && { cat "$T/mtls.srv"; fail "client certificate did not verify"; }
expect_line "$T/mtls.cli" "Protocol *: TLSv1.3" "mtls protocol"
pass "mutual TLS 1.3 with the client key in the keystore"

tls_serve "$T/mtls12.srv" -key keystore:rsa -cert "$T/rsa.crt" -Verify 1 -CAfile "$T/client.crt" \
    -verify_return_error
tls_get "$T/mtls12.cli" "${PROV[@]}" -tls1_2 -CAfile "$T/rsa.crt" -key keystore:client -cert "$T/client.crt"
expect_line "$T/mtls12.cli" "Protocol *: TLSv1.2" "mtls 1.2 protocol"
expect_line "$T/mtls12.srv" "depth=0 CN = ks-client" "server saw the client certificate"
pass "mutual TLS 1.2 with the client key in the keystore"

# Without a client certificate the same server refuses the handshake.
tls_serve "$T/mtls-none.srv" -key keystore:p256 -cert "$T/p256.crt" -Verify 1 -CAfile "$T/client.crt" \
    -verify_return_error
if printf 'GET / HTTP/1.0\r\n\r\n' | timeout 30 openssl s_client -connect "127.0.0.1:$SRV_PORT" \
        -tls1_3 -CAfile "$T/p256.crt" -ign_eof >"$T/mtls-none.cli" 2>&1 \
        && grep -q "HTTP/1.0 200 ok" "$T/mtls-none.cli"; then
    fail "server accepted a client without a certificate"
fi
wait "$SRV_PID" 2>/dev/null || true
pass "mutual TLS refuses a client without a certificate"

# Ephemeral ECDHE keys were made locally, never in the server.
keys_after=$(ks_ctl list | awk 'NR > 1 { print $1 }' | sort)
[ "$keys_before" = "$keys_after" ] || { diff <(echo "$keys_before") <(echo "$keys_after"); fail "handshakes created keys in the server"; }
pass "no key was created in the server by the handshakes"
