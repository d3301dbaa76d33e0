#!/usr/bin/env bash
# Wycheproof RSAES-PKCS1-v1_5 decryption vectors (tests/data/wycheproof, see
# SOURCE.md) through openssl pkeyutl and a real keystored: valid cases give
# their message; bad-padding cases are NOT errors but the implicit-rejection
# message of tests/implicit_rejection_ref.py (tests/wycheproof_pkcs1.py).
. "$(dirname "$0")/lib.sh"
ks_start
PY="$KS_SOURCE_ROOT/tests/wycheproof_pkcs1.py"
mkdir -p "$T/wp"
/usr/bin/python3 "$PY" keys "$T/wp" > "$T/wp/keys" || fail "writing the Wycheproof keys"
n=0
while read -r name file; do
    ks_ctl import "$name" "$file" --usage decrypt >/dev/null || fail "import $name ($file)"
    n=$((n + 1))
done < "$T/wp/keys"
[ "$n" -ge 30 ] || fail "expected 33 Wycheproof keys, got $n"
note "$n Wycheproof keys imported"
/usr/bin/python3 "$PY" run "$T/wp" || fail "Wycheproof RSA PKCS#1 v1.5 decryption vectors (see above)"
pass "Wycheproof RSA PKCS#1 v1.5 decryption vectors"
