#!/usr/bin/env bash
# Backups that match the manifest: keystored --backup FILE while the server
# signs under load and keys are created and deleted; a key deleted after the
# backup comes back with keystored --restore FILE --allow-rollback, with its
# public key and certificate, and signs.  Before that: a tampered archive is
# refused and nothing in the key directory changes; the archive without
# --allow-rollback is refused with a message naming the flag; a restore
# under a running server is refused.
. "$(dirname "$0")/lib.sh"
ks_start
ks_ctl generate a --type ec >/dev/null || fail "generate a"
ks_ctl generate b --type rsa --usage sign,decrypt >/dev/null || fail "generate b"
ks_ctl generate c --type ed25519 >/dev/null || fail "generate c"
openssl req -new -x509 "${PROV[@]}" -key keystore:a -subj /CN=a -days 2 -out "$T/a.pem" 2>/dev/null || fail "req"
ks_ctl attach-cert a "$T/a.pem" >/dev/null || fail "attach-cert"
for n in a b c; do ks_ctl pubkey "$n" -o "$T/$n.pub" >/dev/null || fail "pubkey $n"; done
head -c 32 /dev/urandom > "$T/d"

# load: signing with a and b, and keys coming and going, during the backup
load() {
    local i=0 p=$1
    set +e
    while [ ! -e "$T/stop" ]; do
        i=$((i + 1))
        openssl pkeyutl "${PROV[@]}" -sign -pkeyopt digest:sha256 -inkey keystore:a -in "$T/d" -out "$T/sa" 2>/dev/null || echo "sign a failed" >> "$T/load.err"
        ks_ctl generate "$p$i" --type ec >/dev/null 2>&1 || echo "generate $p$i failed" >> "$T/load.err"
        ks_ctl delete "$p$((i - 1))" >/dev/null 2>&1
    done
    return 0
}
load x & lpid=$!
load y & lpid2=$!
sleep 0.5
"$KEYSTORED" --backup "$T/b1" -c "$T/keystored.conf" > "$T/backup.log" 2>&1 || { cat "$T/backup.log" >&2; fail "backup under load"; }
touch "$T/stop"; wait $lpid $lpid2
[ ! -s "$T/load.err" ] || fail "the load failed during the backup: $(head -3 "$T/load.err")"
grep -q "wrote backup $T/b1: [0-9]* files (manifest included), manifest generation" "$T/backup.log" || fail "backup log: $(cat "$T/backup.log")"
[ "$(stat -c %a "$T/b1")" = 600 ] || fail "the archive is not mode 0600"
expect_fail "File exists \(a backup never overwrites a file\)" "$KEYSTORED" --backup "$T/b1" -c "$T/keystored.conf"
pass "backup while signing and creating/deleting keys: $(grep -o '[0-9]* files' "$T/backup.log"), mode 0600, never overwrites"

ks_ctl delete c >/dev/null || fail "delete c"
expect_fail "locked by another process" "$KEYSTORED" --restore "$T/b1" -c "$T/keystored.conf" --allow-rollback
ks_stop
snap() { (cd "$T/keys" && sha256sum .manifest ./*; sha256sum "$T/keys.generation") ; }
snap > "$T/before"

# a tampered archive: refused whole, nothing replaced
cp "$T/b1" "$T/bad"
size=$(stat -c %s "$T/bad")
flip_byte "$T/bad" $((size / 2))
expect_fail "does not authenticate under the master key .*nothing was restored" \
    "$KEYSTORED" --restore "$T/bad" -c "$T/keystored.conf" --allow-rollback
head -c $((size - 100)) "$T/b1" > "$T/short"
expect_fail "does not authenticate under the master key" \
    "$KEYSTORED" --restore "$T/short" -c "$T/keystored.conf" --allow-rollback
snap | cmp -s - "$T/before" || fail "a refused archive changed the key directory"
pass "a tampered or truncated archive is refused and nothing in the key directory changes"

# an older archive is a rollback: refused without --allow-rollback
expect_fail "is generation [0-9]+ but the key directory .* is at generation [0-9]+: restoring it is a rollback.*--allow-rollback" \
    "$KEYSTORED" --restore "$T/b1" -c "$T/keystored.conf"
snap | cmp -s - "$T/before" || fail "a refused restore changed the key directory"
pass "restore of an older archive without --allow-rollback: refused, with the flag named"

gen_before=$(grep -o 'manifest generation [0-9]*' "$T/keystored.log" | tail -1 | grep -o '[0-9]*$')
"$KEYSTORED" --restore "$T/b1" -c "$T/keystored.conf" --allow-rollback > "$T/restore.log" 2>&1 \
    || { cat "$T/restore.log" >&2; fail "restore --allow-rollback"; }
mv "$T/keystored.log" "$T/keystored.log.1"
ks_start
grep -E "error|refusing|skipping" "$T/keystored.log" && fail "start-up after the restore complained"
gen_after=$(grep -o 'manifest generation [0-9]*' "$T/keystored.log" | tail -1 | grep -o '[0-9]*$')
[ "$gen_after" -gt "$gen_before" ] || fail "the generation went from $gen_before to $gen_after: the counter must only go up"
for n in a b c; do
    ks_ctl pubkey "$n" | cmp -s - "$T/$n.pub" || fail "key $n is not back with its public key"
done
openssl pkeyutl "${PROV[@]}" -sign -rawin -inkey keystore:c -in "$T/d" -out "$T/sc" || fail "restored key c does not sign"
openssl pkeyutl -verify -rawin -pubin -inkey "$T/c.pub" -in "$T/d" -sigfile "$T/sc" >/dev/null || fail "c's signature does not verify"
openssl pkeyutl "${PROV[@]}" -sign -pkeyopt digest:sha256 -inkey keystore:b -in "$T/d" -out "$T/sb" || fail "b does not sign"
ks_ctl list | grep -Eq '^a .* yes ' || fail "a lost its certificate"
pass "restore --allow-rollback: deleted key c back and signing, a's certificate kept, generation $gen_before -> $gen_after (counter advanced)"
