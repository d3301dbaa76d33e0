#!/usr/bin/env bash
# openssl genpkey creates keys inside keystored (keystore-name option) and
# writes a key-reference file; that file stands in for the key wherever
# OpenSSL takes a key file (pkey, req, dgst, pkeyutl, s_server), holds only
# the URI, and is refused cleanly when it names no key.  Generation is refused
# with a clear message when the server does not allow it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
ks_start "allow_client_generate = yes"

gen() { openssl genpkey "${PROV[@]}" -propquery provider=keystore "$@"; }

gen -algorithm EC -pkeyopt group:P-256 -pkeyopt keystore-name:web -out "$T/web.pem" || fail "genpkey EC P-256"
gen -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -pkeyopt keystore-name:ec384 -out "$T/ec384.pem" \
    || fail "genpkey EC P-384"
gen -algorithm EC -pkeyopt group:P-521 -pkeyopt keystore-name:ec521 -out "$T/ec521.pem" || fail "genpkey EC P-521"
gen -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -pkeyopt keystore-name:rsa3k -out "$T/rsa3k.pem" \
    || fail "genpkey RSA 3072"
gen -algorithm RSA-PSS -pkeyopt keystore-name:pss -out "$T/pss.pem" || fail "genpkey RSA-PSS"
gen -algorithm ED25519 -pkeyopt keystore-name:ed -out "$T/ed.pem" || fail "genpkey Ed25519"
gen -algorithm ED448 -pkeyopt keystore-name:ed448 -out "$T/ed448.pem" || fail "genpkey Ed448"
# the explicit property query selects keystore whatever the provider order
openssl genpkey "${PROV[@]:2:2}" "${PROV[@]:0:2}" -propquery provider=keystore -algorithm EC \
    -pkeyopt keystore-name:pq -out "$T/pq.pem" || fail "genpkey with keystore first and -propquery provider=keystore"
# without it default's key management is chosen and keystore-name is refused
expect_fail "command not supported" openssl genpkey "${PROV[@]}" -algorithm EC -pkeyopt keystore-name:noq \
    -out "$T/noq.pem"

list=$(ks_ctl list)
check_key() {
    grep -Eq "^$1 +$2 +$3 " <<<"$list" || { echo "$list"; fail "server lacks $1 ($2 $3)"; }
}
check_key web EC P-256
check_key ec384 EC P-384
check_key ec521 EC P-521
check_key rsa3k RSA 3072
check_key pss RSA-PSS 2048
check_key ed ED25519 -
check_key ed448 ED448 -
check_key pq EC P-256
grep -q "^noq " <<<"$list" && fail "genpkey without the property query made a key in the server"
pass "genpkey generated every key type inside the server"

# The reference file: tiny, the URI only, no key material.
for k in web ec384 ec521 rsa3k pss ed ed448 pq; do
    f="$T/$k.pem"
    [ "$(wc -c <"$f")" -lt 200 ] || fail "$k.pem is $(wc -c <"$f") bytes: a reference should be tiny"
    [ "$(head -1 "$f")" = "-----BEGIN KEYSTORE KEY REFERENCE-----" ] || { cat "$f"; fail "$k.pem label"; }
    grep -q "PRIVATE KEY" "$f" && fail "$k.pem looks like a private key"
    grep -q "keystore:$k" <(sed '1d;$d' "$f" | base64 -d) || fail "$k.pem does not hold keystore:$k"
    [ "$(sed '1d;$d' "$f" | base64 -d | wc -c)" -eq $(( 4 + 9 + ${#k} )) ] \
        || fail "$k.pem payload holds more than the URI"
    # its public key is the server's
    openssl pkey "${PROV[@]}" -in "$f" -pubout -out "$T/$k.pub" || fail "pkey -in $k.pem -pubout"
    ks_ctl pubkey "$k" | cmp -s - "$T/$k.pub" || fail "public key from $k.pem differs from the server's"
done
pass "reference files hold only keystore:NAME and give the server's public key"

# Writing a reference for an existing key gives the same bytes; DER works too.
openssl pkey "${PROV[@]}" -in keystore:web -out "$T/web2.pem" || fail "pkey -in keystore:web -out"
cmp -s "$T/web.pem" "$T/web2.pem" || fail "pkey -out of keystore:web differs from genpkey's file"
openssl pkey "${PROV[@]}" -in keystore:web -outform DER -out "$T/web.der" || fail "DER reference"
openssl pkey "${PROV[@]}" -inform DER -in "$T/web.der" -pubout | cmp -s - "$T/web.pub" \
    || fail "DER reference does not load"
openssl pkey "${PROV[@]}" -in "$T/web.pem" -text -noout >"$T/web.txt" || fail "pkey -text of a reference"
grep -q "^keystore key: keystore:web (EC" "$T/web.txt" && grep -q "NIST CURVE: P-256" "$T/web.txt" \
    || { cat "$T/web.txt"; fail "pkey -text does not name the key and its public half"; }
grep -Eqi "^priv(ate)?( key)?:" "$T/web.txt" && fail "pkey -text printed a private part"
openssl req "${PROV[@]}" -new -x509 -key keystore:web -subj /CN=p12 -out "$T/p12.crt" || fail "req for p12"
expect_fail "PKCS12" openssl pkcs12 "${PROV[@]}" -export -inkey keystore:web -in "$T/p12.crt" \
    -passout pass:x -out "$T/web.p12"
pass "pkey writes references (PEM and DER) and text for keystore keys; PKCS#12 export fails"

# Programs that take key files: sign with the reference, verify with the public key.
echo "signed through a reference file" >"$T/data"
for k in web rsa3k pss ec521; do
    openssl dgst "${PROV[@]}" -sha256 -sign "$T/$k.pem" -out "$T/$k.sig" "$T/data" || fail "dgst -sign $k.pem"
    openssl dgst -sha256 -verify "$T/$k.pub" -signature "$T/$k.sig" "$T/data" >/dev/null \
        || fail "signature made through $k.pem does not verify"
done
openssl pkeyutl "${PROV[@]}" -sign -rawin -inkey "$T/ed.pem" -in "$T/data" -out "$T/ed.sig" \
    || fail "pkeyutl -sign -inkey ed.pem"
openssl pkeyutl -verify -rawin -pubin -inkey "$T/ed.pub" -in "$T/data" -sigfile "$T/ed.sig" >/dev/null \
    || fail "Ed25519 signature through ed.pem does not verify"
openssl req "${PROV[@]}" -new -x509 -key "$T/web.pem" -subj /CN=localhost -days 2 \
    -addext subjectAltName=DNS:localhost -out "$T/web.crt" || fail "req -key web.pem"
openssl x509 -in "$T/web.crt" -pubkey -noout | cmp -s - "$T/web.pub" || fail "certificate key differs"
openssl verify -CAfile "$T/web.crt" "$T/web.crt" >/dev/null || fail "self-signed certificate does not verify"
openssl req "${PROV[@]}" -new -key "$T/rsa3k.pem" -subj /CN=csr -out "$T/rsa.csr" || fail "req -new -key rsa3k.pem"
openssl req -in "$T/rsa.csr" -verify -noout 2>/dev/null || fail "CSR signed through rsa3k.pem does not verify"
pass "dgst, pkeyutl and req sign through reference files"

# s_server -key FILE with a reference: TLS 1.3 and TLS 1.2 ECDHE.
tls_serve "$T/s13.log" -key "$T/web.pem" -cert "$T/web.crt"
tls_get "$T/c13.log" -tls1_3 -CAfile "$T/web.crt"
expect_line "$T/c13.log" "Peer signature type: ECDSA" "TLS 1.3 through web.pem"
tls_serve "$T/s12.log" -key "$T/web.pem" -cert "$T/web.crt"
tls_get "$T/c12.log" -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256 -CAfile "$T/web.crt"
expect_line "$T/c12.log" "Cipher *: ECDHE-ECDSA-AES128-GCM-SHA256" "TLS 1.2 through web.pem"
[ "$(ks_ctl list | wc -l)" -eq "$(wc -l <<<"$list")" ] || { ks_ctl list; fail "a handshake created a key in the server"; }
pass "s_server -key web.pem serves TLS 1.3 and 1.2 with the key in the server"

# Programs that read key files without OSSL_STORE (PEM_read_bio_PrivateKey,
# d2i, SSL_CTX_use_PrivateKey_file), with the providers from openssl.cnf
# (default listed first, as docs/openssl-usage.md recommends).
ks_write_cnf >/dev/null
for k in web rsa3k; do
    openssl req "${PROV[@]}" -new -x509 -key "keystore:$k" -subj /CN=r -out "$T/$k.r.crt" || fail "cert $k"
    openssl pkey "${PROV[@]}" -in "keystore:$k" -outform DER -out "$T/$k.der" || fail "DER reference $k"
    rc=0
    OPENSSL_CONF="$T/openssl.cnf" "$KS_BUILD_ROOT/tests/refload" "$T/$k.pem" "$T/$k.der" "$T/$k.r.crt" \
        >"$T/refload.out" 2>&1 || rc=$?
    cat "$T/refload.out"
    [ $rc -eq 0 ] && ! grep -q FAIL "$T/refload.out" || fail "refload $k"
done
pass "PEM_read_bio_PrivateKey, d2i_PrivateKey_bio and SSL_CTX_use_PrivateKey_file take reference files"

# s_server with the providers from openssl.cnf (default first) and a reference file
SRV_PROV=()
OPENSSL_CONF="$T/openssl.cnf" tls_serve "$T/cnf.srv" -key "$T/web.pem" -cert "$T/web.crt"
SRV_PROV=("${PROV[@]}")
tls_get "$T/cnf.cli" -tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384 -CAfile "$T/web.crt"
pass "s_server -key web.pem with the providers from openssl.cnf (TLS 1.2 ECDHE)"

# No name given: a random gen-<hex> name, announced on stderr.
gen -algorithm EC -out "$T/anon.pem" 2>"$T/anon.err" || { cat "$T/anon.err"; fail "genpkey without a name"; }
anon=$(grep -Eo "named 'gen-[0-9a-f]{16}'" "$T/anon.err" | tr -d "'" | sed 's/named //') \
    || { cat "$T/anon.err"; fail "no generated name announced"; }
ks_ctl list | grep -q "^$anon " || fail "announced key $anon is not in the server"
grep -q "keystore:$anon" <(sed '1d;$d' "$T/anon.pem" | base64 -d) || fail "anon.pem does not name $anon"
pass "genpkey without keystore-name picks $anon and says so"

# Refusals, with messages a person can act on.
expect_fail "KEY_EXISTS|already" gen -algorithm EC -pkeyopt keystore-name:web -out "$T/dup.pem"
expect_fail "invalid keystore-name" gen -algorithm EC -pkeyopt keystore-name:bad/name -out "$T/bad.pem"
expect_fail "2048, 3072 or 4096" gen -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -pkeyopt keystore-name:small
expect_fail "unrestricted RSA-PSS keys only" gen -algorithm RSA-PSS -pkeyopt rsa_pss_keygen_md:sha256 \
    -pkeyopt keystore-name:restricted
ks_ctl delete ec384 >/dev/null || fail "delete ec384"
expect_fail "no key named 'ec384'" openssl pkey "${PROV[@]}" -in "$T/ec384.pem" -pubout
printf -- '-----BEGIN KEYSTORE KEY REFERENCE-----\nMAUMA3h5eg==\n-----END KEYSTORE KEY REFERENCE-----\n' >"$T/junk.pem"
expect_fail "malformed KEYSTORE KEY REFERENCE" openssl pkey "${PROV[@]}" -in "$T/junk.pem" -pubout
ks_ctl list | grep -Eq "^(dup|small|restricted|bad) " && fail "a refused generation left a key"
pass "duplicate, bad name, bad size, restricted RSA-PSS, missing key and junk references are refused"

# A file holding a certificate and then a reference: both are found.
cat "$T/web.crt" "$T/web.pem" >"$T/both.pem"
tls_serve "$T/sboth.log" -key "$T/both.pem" -cert "$T/both.pem"
tls_get "$T/cboth.log" -tls1_3 -CAfile "$T/web.crt"
pass "certificate and reference in one file"

# Without allow_client_generate the server refuses, and the error names the option.
ks_stop
ks_start
expect_fail "allow_client_generate = yes" gen -algorithm EC -pkeyopt keystore-name:nope -out "$T/nope.pem"
[ -s "$T/nope.pem" ] && fail "a refused genpkey wrote a file"
ks_ctl list | grep -q "^nope " && fail "refused key exists"
pass "genpkey is refused with a pointer to allow_client_generate when the server forbids it"
