#!/usr/bin/env bash
# Signing through the keystore for every key type, verified by the default
# provider alone; deterministic signatures match the default provider's bytes.
. "$(dirname "$0")/lib.sh"
ks_start

head -c 1000 /dev/urandom > "$T/data"
openssl dgst -sha256 -binary "$T/data" > "$T/data.sha256"
openssl dgst -sha384 -binary "$T/data" > "$T/data.sha384"

gen() { ks_ctl generate "$@" >/dev/null || fail "keystorectl generate $*"; }
gen rsa2k --type rsa --bits 2048
gen rsa3k --type rsa --bits 3072
gen pss --type rsa-pss --bits 2048
gen p256 --type ec --curve P-256
gen p384 --type ec --curve P-384
gen p521 --type ec --curve P-521
gen ed25519 --type ed25519
gen ed448 --type ed448

for k in rsa2k rsa3k pss p256 p384 p521 ed25519 ed448; do
    ks_ctl pubkey "$k" > "$T/$k.pub" || fail "pubkey $k"
    openssl pkey -pubin -in "$T/$k.pub" -noout || fail "pubkey $k is not a valid PEM public key"
done

# pkeyutl -sign on a digest (what pkeyutl and TLS libraries do), verified by
# the default provider with the public key only.
sign_digest() {
    local k=$1 md=$2; shift 2
    rm -f "$T/sig"
    openssl pkeyutl "${PROV[@]}" -sign -inkey "keystore:$k" -in "$T/data.$md" \
        -out "$T/sig" -pkeyopt "digest:$md" "$@" || fail "pkeyutl -sign $k $md $*"
    openssl pkeyutl -verify -pubin -inkey "$T/$k.pub" -in "$T/data.$md" \
        -sigfile "$T/sig" -pkeyopt "digest:$md" "$@" >/dev/null \
        || fail "signature by $k ($md $*) does not verify"
    pass "pkeyutl -sign $k $md $*"
}
sign_digest rsa2k sha256
sign_digest rsa2k sha256 -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest
sign_digest rsa3k sha384 -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:max
sign_digest pss sha256
sign_digest p256 sha256
sign_digest p384 sha384
sign_digest p521 sha256

# EdDSA signs the message itself.
for k in ed25519 ed448; do
    openssl pkeyutl "${PROV[@]}" -sign -rawin -inkey "keystore:$k" -in "$T/data" -out "$T/sig" \
        || fail "pkeyutl -sign -rawin $k"
    openssl pkeyutl -verify -rawin -pubin -inkey "$T/$k.pub" -in "$T/data" -sigfile "$T/sig" >/dev/null \
        || fail "$k signature does not verify"
    pass "pkeyutl -sign -rawin $k"
done

# openssl dgst hashes locally and signs through digest_sign (OpenSSL 3.0's dgst
# cannot do EdDSA even with key files; pkeyutl -rawin above covers it).
for k in rsa2k pss p256 p384 p521; do
    openssl dgst "${PROV[@]}" -sha256 -sign "keystore:$k" -out "$T/sig" "$T/data" \
        || fail "dgst -sign $k"
    openssl dgst -sha256 -verify "$T/$k.pub" -signature "$T/sig" "$T/data" | grep -q "Verified OK" \
        || fail "dgst signature by $k does not verify"
    pass "dgst -sign $k"
done

# Imported keys: deterministic schemes give exactly the default provider's bytes.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/imp-rsa.pem" 2>/dev/null
openssl genpkey -algorithm ED25519 -out "$T/imp-ed.pem"
ks_ctl import imp-rsa "$T/imp-rsa.pem" >/dev/null || fail "import RSA"
ks_ctl import imp-ed "$T/imp-ed.pem" >/dev/null || fail "import Ed25519"

openssl pkeyutl -sign -inkey "$T/imp-rsa.pem" -in "$T/data.sha256" -pkeyopt digest:sha256 -out "$T/sig.ref"
openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:imp-rsa -in "$T/data.sha256" -pkeyopt digest:sha256 -out "$T/sig.ks"
cmp -s "$T/sig.ref" "$T/sig.ks" || fail "RSA PKCS#1 v1.5 signature differs from the default provider's"
pass "RSA PKCS#1 v1.5 signature byte-identical"

openssl dgst -sha256 -sign "$T/imp-rsa.pem" -out "$T/sig.ref" "$T/data"
openssl dgst "${PROV[@]}" -sha256 -sign keystore:imp-rsa -out "$T/sig.ks" "$T/data"
cmp -s "$T/sig.ref" "$T/sig.ks" || fail "dgst RSA signature differs from the default provider's"
pass "dgst RSA signature byte-identical"

openssl pkeyutl -sign -rawin -inkey "$T/imp-ed.pem" -in "$T/data" -out "$T/sig.ref"
openssl pkeyutl "${PROV[@]}" -sign -rawin -inkey keystore:imp-ed -in "$T/data" -out "$T/sig.ks"
cmp -s "$T/sig.ref" "$T/sig.ks" || fail "Ed25519 signature differs from the default provider's"
pass "Ed25519 signature byte-identical"
