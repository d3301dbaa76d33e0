#!/usr/bin/env bash
# Signatures over MD5, SHA-1 or MD5-SHA1 (TLS 1.0/1.1: PKCS#1 v1.5 without
# DigestInfo) are refused unless allow_weak_digests names the key: with a
# chosen-prefix collision, one such signature signs a second document.
# The attack: root (allowed to use the key) asks for each weak digest,
# through openssl dgst, pkeyutl and a TLS 1.1 handshake.  SHA-224 and up,
# and TLS 1.2/1.3, keep working.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
ks_start
for k in rsa legacy-rsa; do ks_ctl generate $k --type rsa >/dev/null || fail "generate $k"; done
ks_ctl generate ec --type ec >/dev/null || fail "generate ec"
for k in rsa legacy-rsa ec; do ks_ctl pubkey $k > "$T/$k.pub"; done
echo "firmware 2.1" > "$T/msg"

for md in md5 sha1; do
    expect_fail "key 'rsa' may not sign with $(tr a-z A-Z <<<$md) \(too weak against collisions\): use SHA-256 or stronger, or set allow_weak_digests = rsa in the server configuration" \
        openssl dgst "${PROV[@]}" -$md -sign keystore:rsa -out "$T/s" "$T/msg"
    expect_fail "key 'ec' may not sign with $(tr a-z A-Z <<<$md)" \
        openssl dgst "${PROV[@]}" -$md -sign keystore:ec -out "$T/s" "$T/msg"
done
expect_fail "key 'rsa' may not sign with SHA1" openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:rsa \
    -pkeyopt rsa_padding_mode:pss -pkeyopt digest:sha1 -in <(openssl dgst -sha1 -binary "$T/msg") -out "$T/s"
# TLS 1.0/1.1's digest: MD5 and SHA-1 of the message side by side (36 bytes)
cat <(openssl dgst -md5 -binary "$T/msg") <(openssl dgst -sha1 -binary "$T/msg") > "$T/md5sha1"
expect_fail "key 'rsa' may not sign with MD5-SHA1" openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:rsa \
    -pkeyopt digest:md5-sha1 -in "$T/md5sha1" -out "$T/s"
grep -q "Sign refused: ERROR_PERMISSION_DENIED: key 'rsa' may not sign with MD5-SHA1" "$T/keystored.log" \
    || fail "refusal not logged"
pass "MD5, SHA-1 (PKCS#1, PSS, ECDSA) and MD5-SHA1 signatures are refused, naming digest, key and setting"

for md in sha224 sha256 sha384 sha512 sha3-256; do
    openssl dgst "${PROV[@]}" -$md -sign keystore:rsa -out "$T/s-$md" "$T/msg" || fail "sign $md"
    openssl dgst -$md -verify "$T/rsa.pub" -signature "$T/s-$md" "$T/msg" >/dev/null || fail "verify $md"
done
openssl dgst "${PROV[@]}" -sha256 -sign keystore:ec -out "$T/s-ec" "$T/msg" || fail "ecdsa sha256"
pass "SHA-224, SHA-256, SHA-384, SHA-512 and SHA3-256 still sign"

ks_stop
ks_start "allow_weak_digests = legacy-* old"
grep -q "key 'legacy-rsa'" "$T/keystored.log" || fail "keys not reloaded"
for md in md5 sha1; do
    expect_fail "key 'rsa' may not sign with $(tr a-z A-Z <<<$md)" \
        openssl dgst "${PROV[@]}" -$md -sign keystore:rsa -out "$T/s" "$T/msg"
    openssl dgst "${PROV[@]}" -$md -sign keystore:legacy-rsa -out "$T/l-$md" "$T/msg" || fail "legacy $md"
    openssl dgst -$md -verify "$T/legacy-rsa.pub" -signature "$T/l-$md" "$T/msg" >/dev/null || fail "verify legacy $md"
done
openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:legacy-rsa -pkeyopt digest:md5-sha1 \
    -in "$T/md5sha1" -out "$T/l-md5sha1" || fail "legacy md5-sha1"
openssl pkeyutl -verify -pubin -inkey "$T/legacy-rsa.pub" -pkeyopt digest:md5-sha1 \
    -in "$T/md5sha1" -sigfile "$T/l-md5sha1" >/dev/null || fail "verify legacy md5-sha1"
pass "allow_weak_digests = legacy-* lets legacy-rsa sign MD5, SHA-1 and MD5-SHA1 (and they verify)"

# TLS 1.1 with ECDHE-RSA: the server signs MD5-SHA1 in keystored
selfsigned rsa; selfsigned legacy-rsa
old=(-tls1_1 -cipher 'ECDHE-RSA-AES128-SHA@SECLEVEL=0')
tls_serve "$T/t11.srv" -key keystore:rsa -cert "$T/rsa.crt" "${old[@]}"
if printf 'GET / HTTP/1.0\r\n\r\n' | timeout 30 openssl s_client -connect "127.0.0.1:$SRV_PORT" \
        -CAfile "$T/rsa.crt" "${old[@]}" -ign_eof >"$T/t11.cli" 2>&1 && grep -q "HTTP/1.0 200 ok" "$T/t11.cli"; then
    fail "a TLS 1.1 handshake signed MD5-SHA1 with key rsa"
fi
wait "$SRV_PID" 2>/dev/null || true
grep -q "key 'rsa' may not sign with MD5-SHA1" "$T/keystored.log" || fail "TLS 1.1 refusal not logged"
tls_serve "$T/t11l.srv" -key keystore:legacy-rsa -cert "$T/legacy-rsa.crt" "${old[@]}"
tls_get "$T/t11l.cli" -CAfile "$T/legacy-rsa.crt" "${old[@]}"
expect_line "$T/t11l.cli" "Protocol *: TLSv1.1" "TLS 1.1 with an allowed key"
tls_serve "$T/t12.srv" -key keystore:rsa -cert "$T/rsa.crt"
tls_get "$T/t12.cli" -CAfile "$T/rsa.crt" -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256
expect_line "$T/t12.cli" "Peer signing digest: SHA256" "TLS 1.2 with SHA-256"
pass "TLS 1.1 (MD5-SHA1) is refused for rsa, allowed for legacy-rsa; TLS 1.2 with SHA-256 works"

# the setting is checked like any other
ks_stop
sed -i "s/^allow_weak_digests = .*/allow_weak_digests = legacy-* $(printf 'x%.0s' $(seq 70))/" "$T/keystored.conf"
"$KEYSTORED" -c "$T/keystored.conf" >"$T/bad.log" 2>&1 && fail "started with a 70-character pattern"
grep -q "allow_weak_digests: 'x*' is longer than a key name (64 characters)" "$T/bad.log" \
    || { cat "$T/bad.log"; fail "bad setting message"; }
pass "allow_weak_digests patterns are bounded"
