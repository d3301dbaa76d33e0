#!/usr/bin/env bash
# A fresh keystored lets no one but root use a key until an operator grants
# it.  Attacks from a local uid (nobody) and from an authorized TCP client:
# connect to the client socket; sign with a key nobody granted; enumerate
# keys, public keys and certificates (ListKeys, GetKey); tell a hidden key
# from a missing one.  Then what a grant opens, and the start-up summary
# of who may use each key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_remote.sh"
[ "$(id -u)" = 0 ] || fail "this test runs clients as uid nobody (setpriv): run it as root (CI does)"
ks_ensure_accounts
KSGID=$(getent group keystore | cut -d: -f3)
NOBODY=$(id -u nobody)
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
as_nobody_ks() { setpriv --reuid=nobody --regid=nogroup --groups="$KSGID" "$@"; }
# nobody as a local client: read-only list/info on the client socket
ctl_client() { "$KEYSTORECTL" -s "unix:$T/ks.sock" "$@"; }

# --- no configuration of access at all: the defaults
ks_start_remote
# both usages, so the start-up summary names both operations
for k in codesign web; do ks_ctl generate $k --type rsa --usage sign,decrypt >/dev/null || fail "generate $k"; done
openssl req "${PROV[@]}" -new -x509 -key keystore:web -subj /CN=web -days 1 -out "$T/web.crt" \
    || fail "certificate for web"
ks_ctl attach-cert web "$T/web.crt" >/dev/null || fail "attach-cert web"
chmod 711 "$T"
mkdir -m 0777 "$T/pub"
echo "release 1.0" > "$T/pub/msg"; chmod 644 "$T/pub/msg"

expect_fail "ermission denied" \
    as_nobody openssl dgst "${PROV[@]}" -sha256 -sign keystore:codesign -out "$T/pub/s0" "$T/pub/msg"
[ "$(stat -c '%a %G' "$T/ks.sock")" = "660 keystore" ] \
    || fail "client socket is $(stat -c '%a %U:%G' "$T/ks.sock"), expected 0660 group keystore"
grep -q "listening on unix:$T/ks.sock (client socket, mode 0660, group keystore)" "$T/keystored.log" \
    || fail "no log line for the client socket's mode and group"
pass "uid nobody outside the keystore group cannot reach the client socket (0660, group keystore)"

# The second lock: a member of the socket group, with no access list, still
# may not use, list or look up any key.
expect_fail "no key named 'codesign' that uid $NOBODY may use" \
    as_nobody_ks openssl dgst "${PROV[@]}" -sha256 -sign keystore:codesign -out "$T/pub/s1" "$T/pub/msg"
[ ! -s "$T/pub/s1" ] || fail "a signature was written"
out=$(as_nobody_ks "$KEYSTORECTL" -s "unix:$T/ks.sock" list) || fail "list as nobody"
[ "$(sed 1d <<<"$out")" = "" ] || { echo "$out"; fail "nobody enumerates keys it may not use"; }
as_nobody_ks "$KEYSTORECTL" -s "unix:$T/ks.sock" info web > "$T/hidden.out" 2>&1 && fail "info web as nobody"
as_nobody_ks "$KEYSTORECTL" -s "unix:$T/ks.sock" info wex > "$T/missing.out" 2>&1 && fail "info wex as nobody"
sed 's/wex/web/g' "$T/missing.out" | cmp -s - "$T/hidden.out" \
    || { cat "$T/hidden.out" "$T/missing.out"; fail "a hidden key and a missing key get different answers"; }
grep -q "ERROR_NO_SUCH_KEY: no key named 'web' that uid $NOBODY may use" "$T/hidden.out" \
    || { cat "$T/hidden.out"; fail "hidden key: message"; }
pass "a member of the socket group without a grant: no signature, empty list, hidden key = missing key"

openssl dgst "${PROV[@]}" -sha256 -sign keystore:codesign -out "$T/s" "$T/pub/msg" || fail "root signs"
ks_ctl pubkey codesign > "$T/codesign.pub"
openssl dgst -sha256 -verify "$T/codesign.pub" -signature "$T/s" "$T/pub/msg" >/dev/null || fail "verify"
ctl_client list | grep -q '^codesign ' || fail "root lists keys on the client socket"
pass "root (uid 0) uses keys by default"

# TCP: an authorized client (channel authenticated) gets nothing by default
cnf1=$(ks_write_tcp_cnf fe1 "$TCP4" "$T/fe1.key")
expect_fail "no key named 'codesign' that tcp client 'fe1' may use" \
    with_cnf "$cnf1" openssl dgst -sha256 -sign keystore:codesign -out "$T/s2" "$T/pub/msg"
tcpctl() { env KEYSTORE_SERVER_PUBKEY="$SERVER_PUB" KEYSTORE_CLIENT_KEY="$T/$1.key" "$KEYSTORECTL" -s "$TCP4" "${@:2}"; }
out=$(tcpctl fe1 list) || fail "list over TCP"
[ "$(sed 1d <<<"$out")" = "" ] || { echo "$out"; fail "a TCP client enumerates keys by default"; }
expect_fail "ERROR_NO_SUCH_KEY: no key named 'web' that tcp client 'fe1' may use" tcpctl fe1 pubkey web
pass "a TCP client without a grant: no signature, empty list, no public key"

grep -q "no access list (acl) in the configuration: only uid 0 may use keys" "$T/keystored.log" \
    || fail "the default is not logged"
ks_stop
ks_start_remote
grep -q "key 'codesign': sign by uid:0; decrypt by uid:0$" "$T/keystored.log" \
    || { cat "$T/keystored.log"; fail "start-up summary for codesign"; }
pass "start-up log: who may use each key (default: uid:0)"

# --- an operator's grant: exactly what it says becomes visible and usable
cat > "$T/acl" <<ACL
codesign  sign     uid:nobody tcp:fe1 uid:0
codesign  sign     gid:www-data
web       decrypt  uid:0
ACL
ks_stop
ks_start_remote "acl = $T/acl"
grep -q "key 'codesign': sign by uid:nobody, tcp:fe1, uid:0, gid:www-data; decrypt by nobody$" "$T/keystored.log" \
    || { cat "$T/keystored.log"; fail "start-up summary for codesign with an acl"; }
grep -q "key 'web': sign by nobody; decrypt by uid:0$" "$T/keystored.log" || fail "summary for web"
as_nobody_ks openssl dgst "${PROV[@]}" -sha256 -sign keystore:codesign -out "$T/pub/s3" "$T/pub/msg" \
    || fail "nobody may sign with codesign once granted"
openssl dgst -sha256 -verify "$T/codesign.pub" -signature "$T/pub/s3" "$T/pub/msg" >/dev/null || fail "verify"
out=$(as_nobody_ks "$KEYSTORECTL" -s "unix:$T/ks.sock" list | awk 'NR > 1 { print $1 }')
[ "$out" = codesign ] || { echo "$out"; fail "nobody should list exactly codesign"; }
as_nobody_ks "$KEYSTORECTL" -s "unix:$T/ks.sock" info web > "$T/hidden.out" 2>&1 && fail "info web as nobody"
grep -q "ERROR_NO_SUCH_KEY: no key named 'web' that uid $NOBODY may use" "$T/hidden.out" || fail "web hidden"
out=$(tcpctl fe1 list | awk 'NR > 1 { print $1 }')
[ "$out" = codesign ] || { echo "$out"; fail "fe1 should list exactly codesign"; }
out=$(tcpctl fe2 list | awk 'NR > 1 { print $1 }')
[ -z "$out" ] || { echo "$out"; fail "fe2 has no grant and lists $out"; }
expect_fail "no key named 'web' that tcp client 'fe1' may use" tcpctl fe1 pubkey web
cnf1=$(ks_write_tcp_cnf fe1 "$TCP4" "$T/fe1.key")
with_cnf "$cnf1" openssl dgst -sha256 -sign keystore:codesign -out "$T/s4" "$T/pub/msg" || fail "fe1 signs"
out=$(ks_ctl list | awk 'NR > 1 { print $1 }' | tr '\n' ' ')
[ "$out" = "codesign web " ] || fail "the admin socket sees every key: $out"
pass "a grant opens exactly its key and operation to its identities; the admin socket sees all"
