#!/usr/bin/env bash
# Prepared contexts (ops/prepared.c, issue 14): a worker keeps per key an
# initialised OpenSSL context and re-uses it.  No request's parameters may
# reach the next one: two clients at once, served by the one worker (so by
# the same cache), alternate PSS and PKCS#1 v1.5, salt lengths, MGF1 and
# signature digests on one RSA key, digests on one EC key, and Ed25519, and
# every signature must verify with exactly the parameters asked for.  A key
# deleted and made again under the same name must never sign with the old
# key's context.
. "$(dirname "$0")/lib.sh"

ks_start "workers = 1"
ks_ctl generate rsa --type rsa >/dev/null || fail "generate rsa"
ks_ctl generate ec --type ec >/dev/null || fail "generate ec"
ks_ctl generate ed --type ed25519 >/dev/null || fail "generate ed"
for k in rsa ec ed; do ks_ctl pubkey "$k" > "$T/$k.pub"; done
echo "what the prepared contexts sign" > "$T/data"

# sign_verify ID KEY DIGEST [SIGOPT...]: sign through the server, verify locally
sign_verify() {
    local id=$1 key=$2 dg=$3 opts=() o
    shift 3
    for o in "$@"; do opts+=(-sigopt "$o"); done
    openssl dgst "${PROV[@]}" "-$dg" -sign "keystore:$key" "${opts[@]}" -out "$T/sig.$id" \
        "$T/data" 2>"$T/err.$id" || { cat "$T/err.$id"; echo "$id: $key $dg $* did not sign"; return 1; }
    openssl dgst "-$dg" -verify "$T/$key.pub" "${opts[@]}" -signature "$T/sig.$id" "$T/data" \
        >/dev/null 2>&1 || { echo "$id: $key $dg $* does not verify with those parameters"; return 1; }
}

client() {   # client ID ROUNDS
    local id=$1 i
    for i in $(seq 1 "$2"); do
        sign_verify "$id" rsa sha256 rsa_padding_mode:pss rsa_pss_saltlen:222 &&
        sign_verify "$id" rsa sha384 &&
        sign_verify "$id" rsa sha256 rsa_padding_mode:pss rsa_pss_saltlen:0 rsa_mgf1_md:sha512 &&
        sign_verify "$id" rsa sha512 rsa_padding_mode:pss rsa_pss_saltlen:64 &&
        sign_verify "$id" rsa sha256 &&
        sign_verify "$id" ec sha384 &&
        sign_verify "$id" ec sha256 &&
        sign_verify "$id" ec sha512 || return 1
        openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:ed -rawin -in "$T/data" \
            -out "$T/sig.$id" 2>/dev/null &&
        openssl pkeyutl -verify -pubin -inkey "$T/ed.pub" -rawin -in "$T/data" \
            -sigfile "$T/sig.$id" >/dev/null || { echo "$id: ed25519 round $i"; return 1; }
    done
}
client a 6 > "$T/a.out" 2>&1 & pa=$!
client b 6 > "$T/b.out" 2>&1 & pb=$!
ra=0; rb=0
wait $pa || ra=$?
wait $pb || rb=$?
[ $ra = 0 ] && [ $rb = 0 ] || { cat "$T/a.out" "$T/b.out"; fail "a signature did not match its parameters"; }
pass "two clients alternating PSS/PKCS#1, salt lengths, MGF1 and digests on one key: every signature verifies"

# The cached context of ec is now warm in the worker; replace the key.
sign_verify warm ec sha256 || fail "ec before replacement"
ks_ctl delete ec >/dev/null && ks_ctl generate ec --type ec >/dev/null || fail "replace ec"
cp "$T/ec.pub" "$T/old-ec.pub"
ks_ctl pubkey ec > "$T/ec.pub"
cmp -s "$T/ec.pub" "$T/old-ec.pub" && fail "generate made the same key twice?"
for dg in sha256 sha384; do
    sign_verify new ec $dg || fail "the new key ec does not sign as itself with $dg"
    openssl dgst "-$dg" -verify "$T/old-ec.pub" -signature "$T/sig.new" "$T/data" >/dev/null 2>&1 &&
        fail "the replaced key ec still signs with the deleted key's context"
done
ks_ctl delete ed >/dev/null || fail "delete ed"
openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:ed -rawin -in "$T/data" -out "$T/sig.gone" \
    2>/dev/null && fail "a deleted key still signs"
pass "deleted and replaced keys: never signed with a context of the old key"
