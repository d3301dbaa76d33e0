#!/usr/bin/env bash
# Proves the confinement of a running keystored from the outside, through
# /proc: seccomp on, no new privileges, memory locked, chrooted into the empty
# jail, not root, only CAP_IPC_LOCK left, no core files, and its memory
# unreadable by another process of the same uid.  Then shows that it still
# works: generate (writes a key file through the key directory's descriptor),
# sign, delete.  Started as a normal user it applies what it can and says
# what it could not.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || fail "this test proves the root start-up path: run it as root (CI does)"
ks_start
st=/proc/$KS_PID/status
field() { awk -v f="$1:" '$1 == f { print $2 }' "$st"; }

[ "$(field Seccomp)" = 2 ] || fail "Seccomp is $(field Seccomp), expected 2 (filter mode)"
[ "$(field NoNewPrivs)" = 1 ] || fail "NoNewPrivs is $(field NoNewPrivs)"
uid=$(awk '$1 == "Uid:" { print $2 }' "$st")
[ "$uid" != 0 ] && [ "$uid" = "$(id -u keystored)" ] || fail "server runs as uid $uid, expected keystored's"
[ "$(awk '$1 == "Gid:" { print $2 }' "$st")" = "$(id -g keystored)" ] || fail "server gid is not keystored's"
[ -z "$(awk '$1 == "Groups:" { print $2 }' "$st")" ] || fail "supplementary groups were kept"
capeff=$(field CapEff)
[ "$capeff" = 0000000000004000 ] || fail "CapEff is $capeff, expected only CAP_IPC_LOCK (0x4000)"
root=$(readlink /proc/$KS_PID/root)
[ "$root" = "$T/jail" ] || fail "server root is $root, expected the jail $T/jail"
[ -z "$(ls -A "$T/jail")" ] || fail "the jail is not empty"
rss=$(field VmRSS); lck=$(field VmLck)
[ "$lck" -ge $((rss * 9 / 10)) ] || fail "VmLck $lck kB is not close to VmRSS $rss kB"
grep -q "^Max core file size *0 *0" /proc/$KS_PID/limits || fail "core files are not disabled"
pass "Seccomp 2, NoNewPrivs 1, uid $uid, CapEff $capeff, root $root, VmLck $lck kB of VmRSS $rss kB, no core"

# the key directory is held by the file helper alone (tests/jail_escape attacks it)
helper=$(pgrep -P "$KS_PID" -x keystored-files) || fail "no file helper process (keystored-files)"
hst=/proc/$helper/status
[ "$(awk '$1 == "Seccomp:" { print $2 }' "$hst")" = 2 ] || fail "the file helper has no seccomp filter"
[ "$(awk '$1 == "Uid:" { print $2 }' "$hst")" = "$(id -u keystored)" ] || fail "the file helper is not user keystored"
[ "$(awk '$1 == "CapEff:" { print $2 }' "$hst")" = 0000000000000000 ] || fail "the file helper kept capabilities"
[ "$(readlink /proc/$helper/root)" = "$T/keys" ] || fail "the file helper is not chrooted into the key directory"
for fd in /proc/$KS_PID/fd/*; do
    [ "$(readlink "$fd")" != "$T/keys" ] || fail "the server still holds the key directory ($fd)"
done
grep -q "Landlock: no file access, key directory in the file helper" "$T/keystored.log" ||
    fail "the log does not say Landlock and the file helper are in place"
pass "file helper $helper: Seccomp 2, uid keystored, no capabilities, root $T/keys; the server holds no key directory"

# same uid, no privileges: /proc/PID/mem must stay closed (non-dumpable)
if setpriv --reuid=keystored --regid=keystored --clear-groups --inh-caps=-all \
       dd if=/proc/$KS_PID/mem of=/dev/null bs=4096 count=1 skip=16 2>"$T/dd.err"; then
    fail "another process of uid keystored read the server's memory"
fi
grep -q "Permission denied" "$T/dd.err" || { cat "$T/dd.err"; fail "unexpected error reading /proc/PID/mem"; }
pass "/proc/$KS_PID/mem unreadable by another process of the same uid"

# the confined server still does its job, including writing key files
ks_ctl generate after --type ec >/dev/null || fail "generate under confinement"
[ -f "$T/keys/after.key" ] || fail "no key file written under confinement"
openssl dgst -sha256 -binary /etc/hostname > "$T/d"
openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:after -in "$T/d" -out "$T/s" || fail "sign under confinement"
ks_ctl pubkey after > "$T/after.pub"
openssl pkeyutl -verify -pubin -inkey "$T/after.pub" -in "$T/d" -sigfile "$T/s" >/dev/null || fail "verify"
ks_ctl delete after >/dev/null || fail "delete under confinement"
[ ! -e "$T/keys/after.key" ] || fail "key file not removed under confinement"
kill -0 "$KS_PID" || fail "server died"
grep -q "confined: chroot $T/jail, running as keystored" "$T/keystored.log" || fail "no confinement log line"
pass "generate, sign and delete work confined"
ks_stop
for _ in $(seq 50); do kill -0 "$helper" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$helper" 2>/dev/null || fail "the file helper outlived the server"

# started as a normal user: seccomp still applies, and it says what it could not do
U="$T/user"
mkdir -p "$U/keys"
cp "$T/master.key" "$U/master.key"
chown -R keystored: "$U"; chmod 711 "$T"
# not root: the client socket can only be given to one of its own groups
cat > "$U/keystored.conf" <<CONF
socket = unix:$U/ks.sock
socket_group = keystored
admin_socket = unix:$U/admin.sock
key_dir = $U/keys
master_key = $U/master.key
CONF
chown keystored: "$U/keystored.conf"
setpriv --reuid=keystored --regid=keystored --clear-groups --inh-caps=-all \
    "$KEYSTORED" -c "$U/keystored.conf" --dev >"$U/log" 2>&1 &
upid=$!
for _ in $(seq 100); do [ -S "$U/admin.sock" ] && break; sleep 0.05; done
[ -S "$U/admin.sock" ] || { cat "$U/log"; fail "unprivileged keystored did not start"; }
# the sockets exist before the filter is installed (start-up step 8 < 9): wait for it
for _ in $(seq 100); do grep -q "seccomp filter installed" "$U/log" && break; sleep 0.05; done
[ "$(awk '$1 == "Seccomp:" { print $2 }' /proc/$upid/status)" = 2 ] || fail "unprivileged server has no seccomp filter"
grep -q "not started as root" "$U/log" || { cat "$U/log"; fail "unprivileged start does not say what it could not apply"; }
kill $upid; wait $upid 2>/dev/null || true
# a clean stop: leaving the socket files is fine, dying on unlink(2) is not
grep -q "keystored: stopped" "$U/log" || { cat "$U/log"; fail "unprivileged confined server did not stop cleanly"; }
pass "unprivileged start: seccomp on, and the log says chroot and user switch were skipped"
