#!/usr/bin/env bash
# Wycheproof RSASSA-PKCS1-v1_5 signature-generation vectors (tests/data/
# wycheproof, see SOURCE.md): every signature made in a real keystored through
# openssl dgst -sign equals the file's (deterministic padding), SHA-1 may be
# refused (weak digest policy) (tests/wycheproof_rsa_sign.py).
. "$(dirname "$0")/lib.sh"
ks_start
PY="$KS_SOURCE_ROOT/tests/wycheproof_rsa_sign.py"
mkdir -p "$T/wp"
/usr/bin/python3 "$PY" keys "$T/wp" > "$T/wp/keys" || fail "writing the Wycheproof keys"
n=0
while read -r name file; do
    ks_ctl import "$name" "$file" --usage sign >/dev/null || fail "import $name ($file)"
    n=$((n + 1))
done < "$T/wp/keys"
[ "$n" -ge 8 ] || fail "expected 8 Wycheproof keys, got $n"
note "$n Wycheproof keys imported"
/usr/bin/python3 "$PY" run "$T/wp" || fail "Wycheproof RSA PKCS#1 v1.5 signature vectors (see above)"
pass "Wycheproof RSA PKCS#1 v1.5 signature vectors"
