#!/usr/bin/env bash
# Wycheproof key-agreement vectors (tests/data/wycheproof, see SOURCE.md):
# ECDH on P-256 (peer keys as DER, including invalid encodings, other curves,
# points off the curve: invalid-curve attacks), X25519 and X448 (low-order
# and twist points).  Each distinct private key is imported with usage derive;
# each case is sent by derive_raw, which skips OpenSSL's decoding of the peer
# key, so the server's own checks decide (tests/wycheproof_ecdh.py).
. "$(dirname "$0")/lib.sh"
ks_start
PY="$KS_SOURCE_ROOT/tests/wycheproof_ecdh.py"
mkdir -p "$T/wp"
env -u OPENSSL_CONF -u OPENSSL_MODULES /usr/bin/python3 "$PY" keys "$T/wp" > "$T/wp/keys" || fail "writing the Wycheproof keys"
n=0
while read -r name file; do
    ks_ctl import "$name" "$file" --usage derive >/dev/null || fail "import $name ($file)"
    n=$((n + 1))
done < "$T/wp/keys"
[ "$n" -ge 1000 ] || fail "expected about 1016 distinct keys, got $n"
note "$n Wycheproof keys imported"
env -u OPENSSL_CONF -u OPENSSL_MODULES /usr/bin/python3 "$PY" run "$T/wp" "$KS_BUILD_ROOT/tests/derive_raw" "$KEYSTORE_SERVER" \
    || fail "Wycheproof ECDH/X25519/X448 vectors (see above)"
pass "Wycheproof ECDH/X25519/X448 vectors"
