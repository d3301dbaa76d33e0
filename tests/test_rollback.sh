#!/usr/bin/env bash
# A key directory that cannot be rolled back (issue 12 part 4).  Whoever can
# write the key directory, without the master key, tries to bring back an
# old key file after delete + generate, a deleted key, an old certificate
# chain, and a whole old copy of the directory (manifest included).  The
# sealed manifest refuses every file it does not vouch for, and the rollback
# counter outside the directory refuses the old manifest.
. "$(dirname "$0")/lib.sh"
K=$T/keys
COUNTER=$T/keys.generation   # the default: beside key_dir, outside it

ks_start
cert() {   # cert KEY CN: a self-signed certificate for KEY in $T/CN.pem
    openssl req -new -x509 "${PROV[@]}" -key "keystore:$1" -subj "/CN=$2" -days 1 \
        -out "$T/$2.pem" 2>/dev/null || fail "req for $1"
}
restart() { ks_stop; mv "$T/keystored.log" "$T/keystored.log.$((++nstart))"; ks_start "$@"; }
nstart=0
ks_ctl generate web --type ec >/dev/null || fail "generate web"
ks_ctl generate keep --type ec >/dev/null || fail "generate keep"
ks_ctl generate gone --type ec >/dev/null || fail "generate gone"
ks_ctl pubkey web > "$T/old-web.pub"
cert keep keep-a
ks_ctl attach-cert keep "$T/keep-a.pem" >/dev/null || fail "attach keep-a"
ks_stop
cp -a "$K" "$T/snap"          # the attacker's copy of the old directory
ks_start

# Today's changes: web replaced, keep re-certified, gone deleted.
ks_ctl delete web >/dev/null && ks_ctl generate web --type ec >/dev/null || fail "replace web"
ks_ctl pubkey web > "$T/new-web.pub"
cmp -s "$T/old-web.pub" "$T/new-web.pub" && fail "generate made the same key twice?"
cert keep keep-b
ks_ctl attach-cert keep "$T/keep-b.pem" >/dev/null || fail "attach keep-b"
ks_ctl delete gone >/dev/null || fail "delete gone"

# 1. A clean restart loads every key, refuses nothing.
restart
grep -E "refusing|error" "$T/keystored.log" && fail "clean restart refused something"
[ "$(ks_ctl list | tail -n +2 | awk '{print $1}' | tr '\n' ' ')" = "keep web " ] || fail "keys after a clean restart"
ks_ctl pubkey web | cmp -s - "$T/new-web.pub" || fail "web changed over a restart"
pass "restart after a clean run: every key loads"

# 2. The old web.key copied back over the new one.
ks_stop
cp "$K/web.key" "$T/new-web.key"
cp "$T/snap/web.key" "$K/web.key"
restart
if ks_ctl pubkey web 2>/dev/null | cmp -s - "$T/old-web.pub"; then
    fail "the old key file of web was loaded: the key directory was rolled back"
fi
grep -q "error: refusing $K/web.key: the manifest (generation [0-9]*) does not vouch for it: it is not the current file of that key" \
    "$T/keystored.log" || { cat "$T/keystored.log"; fail "old web.key not refused loudly"; }
openssl dgst "${PROV[@]}" -sha256 -sign keystore:keep -out "$T/s" /etc/hostname || fail "keep no longer signs"
ks_stop
cp "$T/new-web.key" "$K/web.key"
restart
ks_ctl pubkey web | cmp -s - "$T/new-web.pub" || fail "the new web key does not serve once its file is back"
pass "old key file copied back after delete + generate: refused and logged; the new key serves"

# 3. A deleted key's file copied back.
ks_stop
cp "$T/snap/gone.key" "$K/gone.key"
restart
ks_ctl info gone >/dev/null 2>&1 && fail "the deleted key 'gone' came back"
grep -q "error: refusing $K/gone.key: .*no current key has that name" "$T/keystored.log" \
    || fail "deleted key file not refused loudly"
rm "$K/gone.key"
pass "deleted key copied back: refused"

# 4. The old certificate chain of keep copied back (it matches the key, so
#    only the manifest can tell), and a foreign one for a key without chain.
ks_stop
cp "$T/snap/keep.crt" "$K/keep.crt"
openssl x509 -in "$T/keep-a.pem" -outform DER -out "$K/web.crt"
restart
[ "$(ks_ctl --json info keep | python3 -c 'import json,sys; print(json.load(sys.stdin)["certs"])')" = 0 ] \
    || fail "the old certificate chain of keep is served"
grep -q "error: refusing $K/keep.crt: the manifest does not vouch for it" "$T/keystored.log" \
    || fail "old keep.crt not refused loudly"
grep -q "error: refusing $K/web.crt" "$T/keystored.log" || fail "foreign web.crt not refused"
ks_ctl attach-cert keep "$T/keep-b.pem" >/dev/null || fail "re-attach keep-b"
rm "$K/web.crt"
restart
[ "$(ks_ctl --json info keep | python3 -c 'import json,sys; print(json.load(sys.stdin)["certs"])')" = 1 ] \
    || fail "keep-b not served after attaching it again"
pass "old and foreign .crt files: refused"

# 5. The whole old directory, manifest and all: the counter says it is old.
ks_stop
mv "$K" "$T/current"
cp -a "$T/snap" "$K"
set +e
timeout 30 "$KEYSTORED" -c "$T/keystored.conf" >"$T/rollback.log" 2>&1
rc=$?
set -e
[ $rc = 1 ] || { cat "$T/rollback.log"; fail "keystored started on a rolled-back key directory (exit $rc)"; }
grep -q "error: the manifest $K/.manifest is generation [0-9]* but the rollback counter $COUNTER says [0-9]*: the key directory was rolled back" \
    "$T/rollback.log" || { cat "$T/rollback.log"; fail "rollback not explained"; }
# ... and without its manifest
rm "$K/.manifest"
set +e
timeout 30 "$KEYSTORED" -c "$T/keystored.conf" >"$T/rollback2.log" 2>&1
rc=$?
set -e
[ $rc = 1 ] && grep -q "$K/.manifest is missing but the rollback counter $COUNTER says generation" "$T/rollback2.log" \
    || { cat "$T/rollback2.log"; fail "a key directory without its manifest was accepted"; }
rm -rf "$K"; mv "$T/current" "$K"
restart
ks_ctl pubkey web | cmp -s - "$T/new-web.pub" || fail "current directory back: web"
pass "old manifest copied back with the old files: refused because of the counter"

# 6. A crash between the manifest and the counter leaves the counter one
#    generation behind: accepted, and caught up.
cp "$COUNTER" "$T/counter.before"
ks_ctl generate late --type ec >/dev/null || fail "generate late"
ks_stop
cp "$T/counter.before" "$COUNTER"
restart
ks_ctl info late >/dev/null || fail "key made just before the crash is lost"
grep -E "refusing|error" "$T/keystored.log" && fail "counter one behind was refused"
pass "counter one generation behind (crash before its write): accepted"

# 7. First start with keys and no manifest (an upgrade): manifest created.
ks_stop
rm "$K/.manifest" "$COUNTER"
restart
grep -q "created the manifest $K/.manifest (generation 1) for the 3 keys found" "$T/keystored.log" \
    || { cat "$T/keystored.log"; fail "upgrade: no manifest created"; }
[ -f "$COUNTER" ] || fail "no counter created"
[ "$(ks_ctl list | tail -n +2 | wc -l)" = 3 ] || fail "upgrade: keys lost"
pass "upgrade (keys, no manifest): manifest created from the directory and logged"
