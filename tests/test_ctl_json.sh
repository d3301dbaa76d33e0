#!/usr/bin/env bash
# keystorectl for scripts and for people: every command takes --help, and
# every command's --json output is one valid JSON value with the fields the
# man page promises (checked with Python's json module).
. "$(dirname "$0")/lib.sh"
ks_start

for c in generate import list info pubkey delete attach-cert gen-master-key; do
    out=$(ks_ctl "$c" --help) || fail "keystorectl $c --help exits non-zero"
    grep -q "^usage: keystorectl $c" <<<"$out" || fail "keystorectl $c --help: $out"
done
ks_ctl --help | grep -q "^Commands" || fail "keystorectl --help"
pass "--help on every command"

# json FIELDS... < output: parse, and print the named fields of the object
# (or of the first array element) space-separated
json() {
    python3 -c '
import json, sys
v = json.load(sys.stdin)
o = v[0] if isinstance(v, list) else v
print(" ".join(str(o[k]) for k in sys.argv[1:]))' "$@"
}
[ "$(ks_ctl --json generate web --type ec --curve P-384 | json name type group bits certs)" = \
  "web EC P-384 384 0" ] || fail "generate --json"
[ "$(ks_ctl generate rsa1 --type rsa --json | json name type bits usage)" = "rsa1 RSA 2048 ['sign']" ] \
    || fail "generate --json after the command"
openssl genpkey -algorithm ed25519 -out "$T/ed.pem" 2>/dev/null
[ "$(ks_ctl --json import ed "$T/ed.pem" | json name type)" = "ed ED25519" ] || fail "import --json"
[ "$(ks_ctl --json info web | json name created_iso)" = \
  "web $(ks_ctl --json list | python3 -c 'import json,sys; print([k for k in json.load(sys.stdin) if k["name"]=="web"][0]["created_iso"])')" ] \
    || fail "info --json"
n=$(ks_ctl --json list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 3 ] || fail "list --json has $n entries, expected 3"
ks_ctl --json pubkey web | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["name"] == "web", d
assert d["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----\n"), d
open(sys.argv[1], "w").write(d["public_key_pem"])' "$T/web.pub" || fail "pubkey --json"
openssl pkey -pubin -in "$T/web.pub" -noout || fail "the PEM in pubkey --json is not a public key"
[ "$(ks_ctl --json pubkey web -o "$T/w2.pub" | json name file)" = "web $T/w2.pub" ] || fail "pubkey -o --json"
cmp -s "$T/web.pub" "$T/w2.pub" || fail "pubkey -o wrote something else"
openssl req -new -x509 "${PROV[@]}" -key keystore:web -subj /CN=json -days 1 -out "$T/web.crt" \
    || fail "req for attach-cert"
[ "$(ks_ctl --json attach-cert web "$T/web.crt" | json name certs)" = "web 1" ] || fail "attach-cert --json"
[ "$(ks_ctl --json delete ed | json deleted)" = "ed" ] || fail "delete --json"
[ "$(ks_ctl --json gen-master-key "$T/mk2" | json master_key)" = "$T/mk2" ] || fail "gen-master-key --json"
pass "--json on generate, import, list, info, pubkey, attach-cert, delete, gen-master-key"

# errors keep stdout clean (nothing a JSON parser would choke on) and the exit code
rc=0; out=$(ks_ctl --json info nope 2>/dev/null) || rc=$?
[ "$rc" = 3 ] && [ -z "$out" ] || fail "info of a missing key under --json: rc $rc, stdout '$out'"

# the table for people: aligned columns under the header
ks_ctl list > "$T/list"
head -1 "$T/list" | grep -q '^NAME  *TYPE  *BITS/CURVE  *CREATED  *CERT  *USAGE  *EXPIRES  *SUBJECT  *ISSUER$' || fail "list header: $(head -1 "$T/list")"
col=$(head -1 "$T/list" | awk '{ print index($0, "TYPE") }')
while read -r line; do
    [ "${line:$((col - 1)):1}" != " " ] || fail "TYPE column misaligned: '$line'"
    [ "${line:$((col - 2)):1}" = " " ] || fail "TYPE column misaligned: '$line'"
done < <(tail -n +2 "$T/list")
pass "errors under --json leave stdout empty; list is an aligned table"
