#!/usr/bin/env bash
# Attack test of the confinement (tests/jail_escape.c): injected code in a
# process confined by keystored's own code tries to leave the key directory,
# plant files, map executable memory and erase the audit log; then the file
# helper's Landlock ruleset alone faces the path attacks.  Then checks from
# the outside that nothing outside the key directory changed.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || fail "this test proves the root start-up path: run it as root (CI does)"
id -u keystored >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin keystored
mkdir -p -m 0555 "$T/jail"
mkdir -m 0700 "$T/keys" "$T/outside"
echo precious > "$T/outside/precious"
printf 'not a sealed key' > "$T/keys/victim.key"
ln -s ../../../../../../../etc/passwd "$T/keys/rel-link"
ln -s /etc/passwd "$T/keys/abs-link"
ln -s ../../../../../../../etc/passwd "$T/keys/rel.crt"
ln -s ../outside/precious "$T/keys/sym.key"
chown -R keystored: "$T/keys" "$T/outside"
"$KEYSTORED" --gen-master-key "$T/master.key" >/dev/null   # seals the manifest
chmod 0711 "$T"
cat > "$T/jail.conf" <<CONF
key_dir = $T/keys
master_key = $T/master.key
jail = $T/jail
audit_log = $T/audit.log
CONF
"$KS_BUILD_ROOT/tests/jail_escape" "$T/jail.conf" "$T/outside" || fail "the confinement can be escaped (see above)"
[ "$(ls -A "$T/outside")" = precious ] || { ls -la "$T/outside"; fail "files appeared outside the key directory"; }
[ "$(cat "$T/outside/precious")" = precious ] || fail "a file outside the key directory changed"
[ "$(head -n 1 "$T/audit.log")" = "first line" ] || { head -n 3 "$T/audit.log"; fail "the audit log was overwritten"; }
[ -z "$(ls -A "$T/jail")" ] || fail "the jail is not empty"
pass "outside the key directory nothing changed; the audit log kept its lines"
