#!/usr/bin/env bash
# openssl req makes self-signed certificates with keystore keys.
. "$(dirname "$0")/lib.sh"
ks_start

for spec in "rsa --type rsa" "pss --type rsa-pss" "ec --type ec --curve P-384" "ed --type ed25519"; do
    set -- $spec
    k=$1; shift
    ks_ctl generate "$k" "$@" >/dev/null || fail "generate $k"
    ks_ctl pubkey "$k" > "$T/$k.pub"
    openssl req "${PROV[@]}" -new -x509 -key "keystore:$k" -subj "/CN=$k.example" -days 30 \
        -out "$T/$k.crt" || fail "req -x509 with keystore:$k"
    openssl verify -CAfile "$T/$k.crt" "$T/$k.crt" >/dev/null || fail "certificate for $k does not verify"
    # the certificate carries the key's public half
    openssl x509 -in "$T/$k.crt" -pubkey -noout | diff -q - "$T/$k.pub" >/dev/null \
        || fail "certificate public key for $k differs from the server's"
    pass "req -x509 $k"
done
