#!/usr/bin/env bash
# A CA whose keys live in the keystore issues certificates (x509 -req -CAkey
# keystore:...), the chain is attached to the key and served from the same
# URI (s_server -cert keystore:web -cert_chain keystore:web), mismatched
# certificates are refused, and CMS signs and decrypts with keystore keys.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
ks_start

ks_ctl generate root --type ec --curve P-384 >/dev/null || fail "generate root"
ks_ctl generate inter --type rsa --bits 3072 >/dev/null || fail "generate inter"
ks_ctl generate web --type rsa --bits 2048 --usage sign,decrypt >/dev/null || fail "generate web"
ks_ctl generate signer --type ec --curve P-256 >/dev/null || fail "generate signer"

cat >"$T/ext.cnf" <<'CNF'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth, emailProtection
subjectAltName = DNS:localhost
CNF

openssl req "${PROV[@]}" -new -x509 -key keystore:root -subj "/CN=Keystore Test Root" -days 5 \
    -extensions ca -config <(cat "$T/ext.cnf"; printf '[req]\ndistinguished_name=dn\n[dn]\n') \
    -out "$T/root.crt" || fail "root certificate"
# intermediate: CSR signed by its keystore key, issued by the root's keystore key
openssl req "${PROV[@]}" -new -key keystore:inter -subj "/CN=Keystore Test Intermediate" -out "$T/inter.csr" \
    || fail "intermediate CSR"
openssl x509 "${PROV[@]}" -req -in "$T/inter.csr" -CA "$T/root.crt" -CAkey keystore:root -CAcreateserial \
    -days 4 -extfile "$T/ext.cnf" -extensions ca -out "$T/inter.crt" || fail "root signs the intermediate"
openssl verify -CAfile "$T/root.crt" "$T/inter.crt" >/dev/null || fail "intermediate does not verify"
# a leaf for a key the CA never sees (ordinary key file, default provider)
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/plain.pem" 2>/dev/null
openssl req -new -key "$T/plain.pem" -subj /CN=plain -out "$T/plain.csr"
openssl x509 "${PROV[@]}" -req -in "$T/plain.csr" -CA "$T/inter.crt" -CAkey keystore:inter -CAcreateserial \
    -days 3 -extfile "$T/ext.cnf" -extensions leaf -out "$T/plain.crt" || fail "intermediate signs a CSR"
openssl verify -CAfile "$T/root.crt" -untrusted "$T/inter.crt" "$T/plain.crt" >/dev/null \
    || fail "issued certificate does not verify"
# the leaves for keystore keys
for k in web signer; do
    openssl req "${PROV[@]}" -new -key "keystore:$k" -subj "/CN=$k" -out "$T/$k.csr" || fail "$k CSR"
    openssl x509 "${PROV[@]}" -req -in "$T/$k.csr" -CA "$T/inter.crt" -CAkey keystore:inter -CAcreateserial \
        -days 3 -extfile "$T/ext.cnf" -extensions leaf -out "$T/$k.crt" || fail "issue $k"
    openssl verify -CAfile "$T/root.crt" -untrusted "$T/inter.crt" "$T/$k.crt" >/dev/null || fail "$k.crt"
done
pass "a CA with keystore keys issues certificates that verify"

# attach-cert refuses a certificate of another key, accepts the right chain
out=$("$KEYSTORECTL" attach-cert web "$T/signer.crt" 2>&1) && fail "mismatched certificate attached"
grep -q "CERT_MISMATCH" <<<"$out" || { echo "$out"; fail "mismatch not reported as CERT_MISMATCH"; }
out=$("$KEYSTORECTL" attach-cert web "$T/plain.crt" "$T/inter.crt" 2>&1) && fail "foreign leaf attached"
ks_ctl attach-cert web "$T/web.crt" "$T/inter.crt" >/dev/null || fail "attach web chain"
ks_ctl attach-cert signer "$T/signer.crt" >/dev/null || fail "attach signer cert"
pass "attach-cert refuses mismatched certificates"

# the certificate comes from the same URI as the key
openssl x509 "${PROV[@]}" -in keystore:web -noout -fingerprint -sha256 >"$T/fp.ks" || fail "x509 -in keystore:web"
openssl x509 -in "$T/web.crt" -noout -fingerprint -sha256 >"$T/fp.file"
cmp -s "$T/fp.ks" "$T/fp.file" || fail "x509 -in keystore:web is not the attached leaf"
openssl storeutl "${PROV[@]}" -certs keystore:web >"$T/storeutl.out" || fail "storeutl -certs"
grep -q "Total found: 2" "$T/storeutl.out" || { cat "$T/storeutl.out"; fail "storeutl did not list leaf and chain"; }
openssl storeutl "${PROV[@]}" -keys keystore:web | grep -q "Total found: 1" || fail "storeutl -keys"
pass "keystore:web yields the attached leaf and chain (x509, storeutl)"

# s_server takes key, certificate and chain from the one URI; the client
# trusts only the root, so the intermediate must have been sent
openssl storeutl "${PROV[@]}" -certs 'keystore:web?chain' >"$T/chain.out" || fail "storeutl keystore:web?chain"
grep -q "Total found: 1" "$T/chain.out" \
    && openssl x509 -in "$T/chain.out" -noout -subject | grep -q "Keystore Test Intermediate" \
    || { cat "$T/chain.out"; fail "keystore:web?chain is not the intermediate alone"; }
expect_fail "unknown query 'bogus'" openssl storeutl "${PROV[@]}" -certs 'keystore:web?bogus'
tls_serve "$T/s1.log" -key keystore:web -cert keystore:web -cert_chain 'keystore:web?chain'
tls_get "$T/c1.log" -tls1_3 -CAfile "$T/root.crt" -showcerts
[ "$(grep -c "^ *[0-9] s:CN = web" "$T/c1.log")" = 1 ] || { cat "$T/c1.log"; fail "leaf not sent exactly once"; }
expect_line "$T/c1.log" "1 s:CN = Keystore Test Intermediate" "intermediate sent after the leaf"
pass "s_server -cert keystore:web -cert_chain 'keystore:web?chain' -key keystore:web"
# the plain URI as -cert_chain works too (the leaf is then sent twice)
tls_serve "$T/s2.log" -key keystore:web -cert keystore:web -cert_chain keystore:web
tls_get "$T/c2.log" -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256 -CAfile "$T/root.crt"
pass "the same over TLS 1.2"

# CMS: sign with keystore keys (PKCS#1, PSS, ECDSA), verify with the chain
echo "a message signed in the keystore" >"$T/msg"
cms_sign() {
    local name=$1; shift
    openssl cms "${PROV[@]}" -sign -in "$T/msg" -out "$T/$name.p7s" -outform PEM -nodetach -binary \
        -certfile "$T/inter.crt" "$@" || fail "cms -sign $name"
    openssl cms -verify -binary -in "$T/$name.p7s" -inform PEM -CAfile "$T/root.crt" \
        -out "$T/$name.out" 2>/dev/null || fail "cms -verify $name"
    cmp -s "$T/msg" "$T/$name.out" || fail "cms $name content"
    pass "cms -sign $name verifies"
}
cms_sign rsa -signer "$T/web.crt" -inkey keystore:web
cms_sign rsa-pss -signer "$T/web.crt" -inkey keystore:web -keyopt rsa_padding_mode:pss
cms_sign ecdsa -signer keystore:signer -inkey keystore:signer -md sha384
openssl cms -cmsout -print -in "$T/rsa-pss.p7s" -inform PEM | grep -q "rsassaPss" || fail "PSS not used"
# a detached signature verifies its message and not a forged one
sed 's/signed/forged/' "$T/msg" >"$T/forged"
openssl cms "${PROV[@]}" -sign -in "$T/msg" -signer "$T/web.crt" -inkey keystore:web -out "$T/det.p7s" \
    -certfile "$T/inter.crt" -outform DER -binary || fail "detached signature"
openssl cms -verify -in "$T/det.p7s" -inform DER -content "$T/msg" -binary -CAfile "$T/root.crt" \
    -out /dev/null 2>/dev/null || fail "detached signature does not verify"
openssl cms -verify -in "$T/det.p7s" -inform DER -content "$T/forged" -binary -CAfile "$T/root.crt" \
    -out /dev/null 2>/dev/null && fail "detached signature verified a forged message"
pass "cms detects a forged message"

# CMS decryption in the server (key transport with PKCS#1 and OAEP)
openssl cms -encrypt -binary -in "$T/msg" -recip "$T/web.crt" -aes256 -out "$T/enc.p7m" || fail "cms -encrypt"
openssl cms "${PROV[@]}" -decrypt -in "$T/enc.p7m" -recip "$T/web.crt" -inkey keystore:web -out "$T/dec" \
    || fail "cms -decrypt"
cmp -s "$T/msg" "$T/dec" || fail "cms decrypted content"
openssl cms -encrypt -binary -in "$T/msg" -recip "$T/web.crt" -keyopt rsa_padding_mode:oaep -aes256 -out "$T/enc2.p7m" \
    || fail "cms -encrypt oaep"
openssl cms "${PROV[@]}" -decrypt -in "$T/enc2.p7m" -recip "$T/web.crt" -inkey keystore:web -out "$T/dec2" \
    || fail "cms -decrypt oaep"
cmp -s "$T/msg" "$T/dec2" || fail "cms OAEP decrypted content"
pass "cms -decrypt with the key in the server (PKCS#1 and OAEP)"
