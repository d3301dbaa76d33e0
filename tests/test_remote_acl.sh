#!/usr/bin/env bash
# The per-key access list: Unix peers by uid/gid and TCP clients by name get
# exactly the operations listed; a denial names the identity, the operation
# and the key, is logged, and is in the audit log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_remote.sh"
[ "$(id -u)" = 0 ] || fail "this test runs a client as another uid (setpriv): run it as root (CI does)"
id -u kstest >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin kstest
getent group kstestgrp >/dev/null || groupadd --system kstestgrp
KSTEST_UID=$(id -u kstest)

cat > "$T/acl" <<ACL
# key     ops           identities
web       sign,decrypt  uid:0 tcp:fe1
web       sign          gid:kstestgrp
shared    sign          *
other     sign          uid:kstest
enc-*     decrypt       tcp:fe*
ACL
ks_start_remote "acl = $T/acl"
grep -q "access list $T/acl: 5 rules; anything not listed is denied" "$T/keystored.log" || fail "access list not loaded"
for k in web shared other enc-1; do ks_ctl generate $k --type rsa --usage sign,decrypt >/dev/null || fail "generate $k"; done

# files the other uid can read; its output goes to a directory it can write
chmod 711 "$T"
mkdir -m 0777 "$T/pub"
printf 'to be signed %s' "$RANDOM" > "$T/pub/msg"
openssl dgst -sha256 -binary "$T/pub/msg" > "$T/pub/d"
chmod 644 "$T/pub/d"
# both are in the client socket's group (keystore): the access list decides
ks_ensure_accounts
KSGID=$(getent group keystore | cut -d: -f3)
as_kstest() { setpriv --reuid=kstest --regid=kstest --groups="$KSGID" "$@"; }
as_kstest_grp() { setpriv --reuid=kstest --regid=kstest --groups="$KSGID,$(getent group kstestgrp | cut -d: -f3)" "$@"; }

# Unix peers
openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:web -in "$T/pub/d" -out "$T/s" || fail "uid 0 may sign with web"
# a key the peer may not use at all is hidden: the same answer as a missing key
expect_fail "no key named 'web' in the keystore at unix:$T/ks.sock \(keystore server: no key named 'web' that uid $KSTEST_UID may use" \
    as_kstest openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:web -in "$T/pub/d" -out "$T/pub/s"
grep -q "GetKey refused: ERROR_NO_SUCH_KEY: no key named 'web' that uid $KSTEST_UID may use" "$T/keystored.log" \
    || fail "denial not in the server log"
pass "uid $KSTEST_UID denied sign with web (web is hidden from it), uid 0 allowed"
as_kstest openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:other -in "$T/pub/d" -out "$T/pub/s1" \
    || fail "uid kstest may sign with other"
as_kstest openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:shared -in "$T/pub/d" -out "$T/pub/s2" \
    || fail "anyone may sign with shared"
as_kstest_grp openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:web -in "$T/pub/d" -out "$T/pub/s3" \
    || fail "a member of kstestgrp (supplementary group) may sign with web"
pass "uid:kstest, '*' and gid:kstestgrp (supplementary group) rules allow"
ks_ctl pubkey web > "$T/pub/web.pub"
openssl pkeyutl -encrypt -pubin -inkey "$T/pub/web.pub" -in "$T/pub/msg" -out "$T/pub/ct"
chmod 644 "$T/pub/ct"
expect_fail "uid $KSTEST_UID may not decrypt with key 'web'" \
    as_kstest_grp openssl pkeyutl "${PROV[@]}" -decrypt -inkey keystore:web -in "$T/pub/ct" -out "$T/pub/pt"
pass "operations are separate: gid member may sign but not decrypt with web"

# TCP clients by name
cnf1=$(ks_write_tcp_cnf fe1 "$TCP4" "$T/fe1.key")
cnf2=$(ks_write_tcp_cnf fe2 "$TCP6" "$T/fe2.key")
with_cnf "$cnf1" openssl pkeyutl -sign -inkey keystore:web -in "$T/pub/d" -out "$T/s" || fail "tcp:fe1 may sign with web"
expect_fail "no key named 'web' that tcp client 'fe2' may use" \
    with_cnf "$cnf2" openssl pkeyutl -sign -inkey keystore:web -in "$T/pub/d" -out "$T/s"
grep -q "no key named 'web' that tcp client 'fe2' may use" "$T/keystored.log" || fail "tcp denial not in the server log"
with_cnf "$cnf2" openssl pkeyutl -sign -inkey keystore:shared -in "$T/pub/d" -out "$T/s" || fail "tcp:fe2 may sign with shared"
ks_ctl pubkey enc-1 > "$T/enc.pub"
openssl pkeyutl -encrypt -pubin -inkey "$T/enc.pub" -in "$T/pub/msg" -out "$T/ct1"
with_cnf "$cnf2" openssl pkeyutl -decrypt -inkey keystore:enc-1 -in "$T/ct1" -out "$T/pt1" || fail "tcp:fe* may decrypt with enc-*"
cmp -s "$T/pub/msg" "$T/pt1" || fail "decrypt enc-1"
expect_fail "tcp client 'fe2' may not sign with key 'enc-1'" \
    with_cnf "$cnf2" openssl pkeyutl -sign -inkey keystore:enc-1 -in "$T/pub/d" -out "$T/s"
pass "tcp:fe1 allowed, tcp:fe2 denied on web, key and client name patterns work"

# the admin socket is not subject to the list; admin operations stay admin-only over TCP
ks_ctl info web >/dev/null || fail "admin info"
expect_fail "ERROR_PERMISSION_DENIED: GenerateKey is an admin operation" \
    env KEYSTORE_SERVER_PUBKEY="$SERVER_PUB" KEYSTORE_CLIENT_KEY="$T/fe1.key" "$KEYSTORECTL" -s "$TCP4" generate x --type ec
pass "admin operations refused over TCP"

A=$T/audit.log
grep -q "id=uid:$KSTEST_UID peer=local op=get_key key=web result=ERROR_NO_SUCH_KEY" "$A" || fail "audit: uid denial"
grep -q "id=uid:$KSTEST_UID peer=local op=sign key=other result=ok" "$A" || fail "audit: uid allowed"
grep -q "id=tcp:fe2 peer=\[::1\]:[0-9]* op=get_key key=web result=ERROR_NO_SUCH_KEY" "$A" || fail "audit: tcp denial"
grep -q "id=tcp:fe2 peer=\[::1\]:[0-9]* op=sign key=enc-1 result=ERROR_PERMISSION_DENIED" "$A" || fail "audit: tcp sign denial"
grep -q "id=tcp:fe1 peer=127\.0\.0\.1:[0-9]* op=sign key=web result=ok" "$A" || fail "audit: tcp allowed"
grep -q "id=tcp:fe2 .* op=decrypt key=enc-1 result=ok" "$A" || fail "audit: tcp decrypt"
if grep -aq "$(cat "$T/pub/msg")" "$A" "$T/keystored.log"; then fail "plaintext in a log"; fi
pass "audit log shows allowed and denied requests by uid and TCP name"

# a broken access list stops the server at start-up with FILE:LINE
ks_stop
echo "web sign uid:no-such-user-here" > "$T/acl"
"$KEYSTORED" -c "$T/keystored.conf" > "$T/bad.log" 2>&1 && fail "server started with a bad access list"
grep -q "$T/acl:1: 'uid:no-such-user-here': unknown user" "$T/bad.log" || { cat "$T/bad.log"; fail "bad access list message"; }
pass "unknown user in the access list: start-up error names FILE:LINE"
