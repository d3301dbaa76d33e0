#!/usr/bin/env bash
# Wycheproof RSA-OAEP decryption vectors (tests/data/wycheproof, see SOURCE.md):
# each group's key imported into a real keystored for decryption, every case
# decrypted through the provider with openssl pkeyutl (tests/wycheproof_oaep.py).
. "$(dirname "$0")/lib.sh"
ks_start
PY="$KS_SOURCE_ROOT/tests/wycheproof_oaep.py"
mkdir -p "$T/wp"
/usr/bin/python3 "$PY" keys "$T/wp" > "$T/wp/keys"
n=0
while read -r name file; do
    ks_ctl import "$name" "$file" --usage decrypt >/dev/null || fail "import $name ($file)"
    n=$((n + 1))
done < "$T/wp/keys"
[ "$n" -ge 2 ] || fail "expected at least 2 key groups, got $n"
note "$n Wycheproof keys imported"
/usr/bin/python3 "$PY" run "$T/wp" || fail "Wycheproof RSA-OAEP vectors (see above)"
pass "Wycheproof RSA-OAEP vectors"
