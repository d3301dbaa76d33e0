#!/usr/bin/env bash
# The admin CLI: generate, import (plain and encrypted), list, pubkey, delete,
# attach-cert, exit codes; keys survive a restart; the admin socket is the only
# way to manage keys.
. "$(dirname "$0")/lib.sh"
ks_start

rc_of() { set +e; "$@" >/dev/null 2>&1; local rc=$?; set -e; echo $rc; }

ks_ctl generate a-rsa --type rsa --bits 3072 >/dev/null || fail "generate rsa 3072"
ks_ctl generate b-ec --type ec --curve P-521 >/dev/null || fail "generate ec P-521"
ks_ctl generate c-ed --type ed448 >/dev/null || fail "generate ed448"
[ "$(rc_of ks_ctl generate a-rsa --type rsa)" = 3 ] || fail "duplicate name must exit 3"
[ "$(rc_of ks_ctl generate bad/name --type rsa)" != 0 ] || fail "bad name accepted"
[ "$(rc_of ks_ctl generate x --type dsa)" = 1 ] || fail "unknown type must be a usage error (1)"

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/plain.pem"
openssl pkey -in "$T/plain.pem" -aes256 -passout pass:s3cret -out "$T/enc.pem"
ks_ctl import d-plain "$T/plain.pem" >/dev/null || fail "import plain PEM"
ks_ctl import e-enc "$T/enc.pem" --passin pass:s3cret >/dev/null || fail "import encrypted PEM"
[ "$(rc_of ks_ctl import f-bad "$T/enc.pem" --passin pass:wrong)" = 4 ] || fail "wrong passphrase must exit 4"
[ "$(rc_of ks_ctl import f-bad /nonexistent.pem)" = 4 ] || fail "missing file must exit 4"

# the imported key's public half is the file's
openssl pkey -in "$T/plain.pem" -pubout > "$T/plain.pub"
ks_ctl pubkey d-plain | diff -q - "$T/plain.pub" >/dev/null || fail "pubkey of imported key differs"
ks_ctl pubkey e-enc > "$T/enc.pub"
openssl pkey -in "$T/plain.pem" -pubout | diff -q - "$T/enc.pub" >/dev/null || fail "encrypted import differs"

list=$(ks_ctl list)
for k in a-rsa b-ec c-ed d-plain e-enc; do grep -q "^$k " <<<"$list" || { echo "$list"; fail "list lacks $k"; }; done
grep -q "f-bad" <<<"$list" && fail "failed import left a key behind"
pass "generate/import/list"

# keys persist across a restart (sealed at rest) and the files hold no PEM/DER key
ks_stop
ks_start
list2=$(ks_ctl list)
for k in a-rsa b-ec c-ed d-plain e-enc; do grep -q "^$k " <<<"$list2" || fail "$k lost across restart"; done
priv_der=$(openssl pkey -in "$T/plain.pem" -outform DER | od -An -tx1 | tr -d ' \n')
for f in "$T"/keys/*; do
    grep -q "BEGIN" "$f" && fail "key file $f holds PEM text"
    od -An -tx1 "$f" | tr -d ' \n' | grep -q "${priv_der:40:64}" && fail "key file $f holds the private key in clear"
done
pass "keys sealed at rest and reloaded after restart"

ks_ctl delete c-ed >/dev/null || fail "delete"
[ "$(rc_of ks_ctl delete c-ed)" = 3 ] || fail "deleting a missing key must exit 3"
ks_ctl list | grep -q "^c-ed " && fail "deleted key still listed"
pass "delete"

# admin operations are refused on the client socket
[ "$(rc_of "$KEYSTORECTL" -s "$KEYSTORE_SERVER" generate z --type ec)" = 3 ] \
    || fail "generate on the client socket must be refused"
out=$("$KEYSTORECTL" -s "$KEYSTORE_SERVER" generate z --type ec 2>&1 || true)
grep -qi "admin" <<<"$out" || { echo "$out"; fail "refusal on the client socket does not mention the admin socket"; }
pass "admin operations only on the admin socket"

# certificates: a matching one is stored, a mismatching one refused
openssl req -new -x509 -key "$T/plain.pem" -subj /CN=d -days 2 -out "$T/d.crt"
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/other.pem" \
    -subj /CN=other -days 2 -out "$T/other.crt" 2>/dev/null
ks_ctl attach-cert d-plain "$T/d.crt" >/dev/null || fail "attach matching cert"
out=$("$KEYSTORECTL" attach-cert d-plain "$T/other.crt" 2>&1) && fail "mismatched certificate accepted"
grep -qi "match" <<<"$out" || { echo "$out"; fail "mismatch refusal does not say so"; }
pass "attach-cert"

ks_ctl --help >/dev/null || fail "--help"
ks_ctl generate --help >/dev/null || fail "generate --help"
ks_ctl --version | grep -Eq '^keystorectl [0-9]+\.[0-9]+\.[0-9]+$' || fail "--version"
pass "--help, --version"

# delete asks on a terminal (script(1) gives keystorectl a pty); --yes does not
ks_ctl generate asked --type ec >/dev/null || fail "generate asked"
echo n | script -qec "$KEYSTORECTL delete asked" /dev/null > "$T/ask.out" 2>&1 || true
grep -q "delete key 'asked' and its certificates from the server?" "$T/ask.out" \
    || { cat "$T/ask.out"; fail "delete on a terminal did not ask"; }
ks_ctl info asked >/dev/null || fail "answering n deleted the key"
echo y | script -qec "$KEYSTORECTL delete asked" /dev/null > "$T/ask.out" 2>&1 || true
ks_ctl info asked >/dev/null 2>&1 && { cat "$T/ask.out"; fail "answering y did not delete the key"; }
ks_ctl generate asked --type ec >/dev/null || fail "generate asked again"
script -qec "$KEYSTORECTL delete asked --yes" /dev/null </dev/null > "$T/ask.out" 2>&1 || true
ks_ctl info asked >/dev/null 2>&1 && { cat "$T/ask.out"; fail "delete --yes on a terminal did not delete"; }
pass "delete asks on a terminal; --yes and scripts do not"

# KEYSTORE_SERVER=tcp:... is the provider's setting: keystorectl says which server it lists
out=$(env -u KEYSTORE_ADMIN KEYSTORE_SERVER=tcp:127.0.0.1:9 "$KEYSTORECTL" list 2>&1 || true)
grep -q "note: using the admin socket unix:/run/keystored/admin.sock; KEYSTORE_SERVER (tcp:127.0.0.1:9) is the provider's setting" <<<"$out" \
    || { echo "$out"; fail "keystorectl did not say that KEYSTORE_SERVER is not its server"; }
pass "KEYSTORE_SERVER=tcp:... keystorectl list names the server it really asks"
