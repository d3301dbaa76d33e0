#!/usr/bin/env bash
# Keys have a usage fixed when generated or imported (sign, decrypt or
# both), sealed with the key and enforced by keystored before the access
# list: a decrypt grant is never a sign grant, and a signing key is never
# a decryption oracle.  Attack test of issue 12 part 2.
. "$(dirname "$0")/lib.sh"

cat > "$T/acl" <<ACL
# root may decrypt with kx and web, and only sign with both
kx          decrypt        uid:0
web         decrypt        uid:0
both        sign,decrypt   uid:0
gen-*       sign,decrypt   uid:0
imp-*       sign,decrypt   uid:0
ec          sign,decrypt   uid:0
ACL
ks_start "acl = $T/acl" "allow_client_generate = yes"

printf 'attack at dawn %s' "$RANDOM" > "$T/msg"
openssl dgst -sha256 -binary "$T/msg" > "$T/dgst"

enc() {   # enc KEY: encrypt $T/msg to $T/ct.KEY with the key's public half
    ks_ctl pubkey "$1" -o "$T/$1.pub" >/dev/null || fail "pubkey $1"
    openssl pkeyutl -encrypt -pubin -inkey "$T/$1.pub" -in "$T/msg" -out "$T/ct.$1" \
        -pkeyopt rsa_padding_mode:oaep || fail "encrypt to $1"
}
dec() { openssl pkeyutl "${PROV[@]}" -decrypt -inkey "keystore:$1" -in "$T/ct.$1" -out "$T/pt.$1" \
            -pkeyopt rsa_padding_mode:oaep; }
sig() { openssl pkeyutl "${PROV[@]}" -sign -inkey "keystore:$1" -in "$T/dgst" -out "$T/sig.$1" \
            -pkeyopt digest:sha256; }

# 1. An RSA key made without --usage signs only: the access list allows
#    decrypt with 'web', but the key itself refuses to be a decryption oracle.
ks_ctl generate web --type rsa >/dev/null || fail "generate web"
enc web
expect_fail "key 'web' is for sign only: it may not decrypt \(its usage is fixed when generated or imported\)" dec web
pass "default RSA key (sign) refuses decrypt, though the access list allows it"

# 2. A decrypt-only key never signs, whatever a client asks for.
ks_ctl generate kx --type rsa --usage decrypt >/dev/null || fail "generate kx --usage decrypt"
expect_fail "key 'kx' is for decrypt only: it may not sign" sig kx
enc kx
dec kx || fail "decrypt with a decrypt-usage key"
cmp -s "$T/msg" "$T/pt.kx" || fail "kx decrypted text differs"
pass "decrypt-only key decrypts and refuses to sign"

# 3. The usage is checked before the access list: the refusal names the usage
#    even where the access list alone would also refuse.
expect_fail "key 'kx' is for decrypt only" \
    openssl dgst "${PROV[@]}" -sha256 -sign keystore:kx -out "$T/s2" "$T/msg"
grep -q "Sign refused: ERROR_WRONG_USAGE: key 'kx' is for decrypt only" "$T/keystored.log" \
    || fail "usage refusal not logged"
pass "usage enforced before the access list"

# 4. sign,decrypt when asked for (TLS 1.2 RSA key exchange needs it).
ks_ctl generate both --type rsa --usage sign,decrypt >/dev/null || fail "generate both"
sig both || fail "sign with sign,decrypt key"
enc both
dec both || fail "decrypt with sign,decrypt key"
pass "sign,decrypt key does both"

# 5. Usages a key type cannot have are refused when the key is made.
expect_fail "ERROR_BAD_PARAMETER: .*EC keys .*sign" ks_ctl generate ec --type ec --usage decrypt
expect_fail "ERROR_BAD_PARAMETER: .*RSA-PSS keys .*sign" ks_ctl generate pss --type rsa-pss --usage sign,decrypt
expect_fail "unknown usage 'encrypt'" ks_ctl generate x --type rsa --usage encrypt
ks_ctl generate ec --type ec >/dev/null || fail "generate ec"
pass "impossible usages refused at generation"

# 6. list/info show it, text and JSON.
ks_ctl info kx | grep -q "usage decrypt" || fail "info does not show usage"
ks_ctl list | grep -Eq "^both +RSA +2048 +[0-9TZ:-]+ +no +sign,decrypt( |$)" || { ks_ctl list; fail "list does not show usage"; }
ks_ctl --json info web | grep -q '"usage": \["sign"\]' || fail "json info usage"
ks_ctl --json list | grep -q '"name": "both".*"usage": \["sign", "decrypt"\]' || fail "json list usage"
pass "list and info show the usage"

# 7. Import takes --usage too (default sign).
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/imp.pem" 2>/dev/null
ks_ctl import imp-s "$T/imp.pem" >/dev/null || fail "import"
ks_ctl import imp-d "$T/imp.pem" --usage decrypt >/dev/null || fail "import --usage decrypt"
ks_ctl info imp-s | grep -q "usage sign$" || fail "imported key default usage"
enc imp-d
dec imp-d || fail "decrypt with imported decrypt key"
cp "$T/ct.imp-d" "$T/ct.imp-s"
expect_fail "key 'imp-s' is for sign only" dec imp-s
pass "import --usage"

# 8. openssl genpkey: -pkeyopt keystore-usage (default sign).
openssl genpkey "${PROV[@]}" -propquery '?provider=keystore' -algorithm RSA \
    -pkeyopt keystore-name:gen-kx -pkeyopt keystore-usage:sign,decrypt -out "$T/gen-kx.ref" \
    || fail "genpkey with keystore-usage"
ks_ctl info gen-kx | grep -q "usage sign,decrypt" || fail "genpkey usage not stored"
openssl genpkey "${PROV[@]}" -propquery '?provider=keystore' -algorithm RSA \
    -pkeyopt keystore-name:gen-s -out "$T/gen-s.ref" || fail "genpkey default"
ks_ctl info gen-s | grep -q "usage sign$" || fail "genpkey default usage is not sign"
expect_fail "keystore-usage.*'frobnicate'" openssl genpkey "${PROV[@]}" -propquery '?provider=keystore' \
    -algorithm RSA -pkeyopt keystore-name:gen-x -pkeyopt keystore-usage:frobnicate -out "$T/x.ref"
pass "genpkey -pkeyopt keystore-usage"

# 9. The usage is sealed: editing it in the file fails authentication, and a
#    restart keeps every usage.
ks_stop
ks_start "acl = $T/acl" "allow_client_generate = yes"
ks_ctl info kx | grep -q "usage decrypt$" || fail "usage lost over a restart"
ks_ctl info both | grep -q "usage sign,decrypt$" || fail "usage lost over a restart (both)"
ks_stop
cp "$T/keys/web.key" "$T/web.key.orig"
python3 - "$T/keys/web.key" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
assert b[8:12] == b"\0\0\0\2", "not a version 2 key file"
b[51] |= 2          # usage sign -> sign|decrypt
open(p, "wb").write(b)
PY
# without the manifest and counter (test_rollback.sh) the AEAD alone must catch it
rm -f "$T/keys/.manifest" "$T/keys.generation"
ks_start "acl = $T/acl" "allow_client_generate = yes"
grep -q "skipping key web: .*does not authenticate" "$T/keystored.log" \
    || { cat "$T/keystored.log"; fail "edited usage was not refused"; }
expect_fail "no key named 'web'" dec web
pass "usage is authenticated with the key"
ks_stop

# 10. Keys sealed before usages existed (version 1 files) keep what they
#     could do (RSA sign,decrypt; others sign), with a warning per key.
rm -rf "$T/keys" "$T/keys.generation"; mkdir -m 0700 "$T/keys"
cp "$KS_SOURCE_ROOT/tests/data/keyfile-v1/oldrsa.key" "$KS_SOURCE_ROOT/tests/data/keyfile-v1/oldec.key" "$T/keys/"
install -m 0600 "$KS_SOURCE_ROOT/tests/data/keyfile-v1/master.key" "$T/master.key"
cat > "$T/acl" <<ACL
old*        sign,decrypt   uid:0
ACL
ks_start "acl = $T/acl"
grep -q "warning: key oldrsa was sealed before key usages existed (key file version 1): it keeps sign,decrypt" \
    "$T/keystored.log" || { cat "$T/keystored.log"; fail "no warning for a version 1 key"; }
grep -q "warning: key oldec was sealed before key usages existed (key file version 1): it keeps sign;" \
    "$T/keystored.log" || fail "no warning for a version 1 EC key"
ks_ctl info oldrsa | grep -q "usage sign,decrypt$" || fail "v1 RSA usage"
ks_ctl info oldec | grep -q "usage sign$" || fail "v1 EC usage"
cp "$KS_SOURCE_ROOT/tests/data/keyfile-v1/oldrsa.pub" "$T/oldrsa.pub"
openssl pkeyutl -encrypt -pubin -inkey "$T/oldrsa.pub" -in "$T/msg" -out "$T/ct.oldrsa" \
    -pkeyopt rsa_padding_mode:oaep
dec oldrsa || fail "decrypt with a version 1 RSA key"
sig oldrsa || fail "sign with a version 1 RSA key"
pass "version 1 key files load with their old usage and a warning"
