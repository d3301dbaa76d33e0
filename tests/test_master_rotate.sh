#!/usr/bin/env bash
# Master-key rotation (keystored --rotate-master-key NEW -c CONFIG, server
# stopped) is crash-safe: it is killed (-9) at random moments across its
# whole run, many rounds.  After each kill the next keystored start finishes
# or undoes it, and then the store opens with exactly one of the two keys
# (the master_key file is the old or the new key, the other one does not
# authenticate the manifest), every key is there with its original public
# key and signs, its certificate too, and nothing of the rotation is left
# (KEY_DIR.rotate, master.key.old).  Also: refused while a keystored runs;
# refused with the current key; old key files are unreadable afterwards.
. "$(dirname "$0")/lib.sh"
ks_start
names=()
for i in $(seq 1 6); do ks_ctl generate "e$i" --type ec >/dev/null || fail "generate e$i"; names+=("e$i"); done
for i in $(seq 1 3); do ks_ctl generate "d$i" --type ed25519 >/dev/null || fail "generate d$i"; names+=("d$i"); done
ks_ctl generate r1 --type rsa --usage sign,decrypt >/dev/null || fail "generate r1"; names+=(r1)
openssl req -new -x509 "${PROV[@]}" -key keystore:e1 -subj /CN=e1 -days 2 -out "$T/e1.pem" 2>/dev/null || fail "req"
ks_ctl attach-cert e1 "$T/e1.pem" >/dev/null || fail "attach-cert"
for n in "${names[@]}"; do ks_ctl pubkey "$n" -o "$T/$n.pub" >/dev/null || fail "pubkey $n"; done
head -c 32 /dev/urandom > "$T/d"

# every key is there with its public key from before; the keys named after
# the label (default: all) sign, and the signature verifies under it
check_keys() {
    local label=$1 n raw
    shift
    ks_ctl list > "$T/list" || fail "$label: list"
    [ "$(tail -n +2 "$T/list" | wc -l)" = "${#names[@]}" ] || { cat "$T/list" >&2; fail "$label: not every key is there"; }
    grep -Eq '^e1 .* yes ' "$T/list" || fail "$label: e1 lost its certificate"
    for n in "${names[@]}"; do
        ks_ctl pubkey "$n" | cmp -s - "$T/$n.pub" || fail "$label: key $n has another public key"
    done
    [ $# -gt 0 ] || set -- "${names[@]}"
    for n in "$@"; do
        raw="-pkeyopt digest:sha256"; case $n in d*) raw=-rawin ;; esac
        openssl pkeyutl "${PROV[@]}" -sign $raw -inkey "keystore:$n" -in "$T/d" -out "$T/s" 2>"$T/err" \
            || { cat "$T/err" >&2; fail "$label: key $n does not sign"; }
        openssl pkeyutl -verify $raw -pubin -inkey "$T/$n.pub" -in "$T/d" -sigfile "$T/s" >/dev/null \
            || fail "$label: key $n's signature does not verify under its original public key"
    done
}

# a running server holds the store: refused, nothing changed
"$KEYSTORED" --gen-master-key "$T/k0" >/dev/null 2>&1
expect_fail "locked by another process: a keystored .* is using this key directory; stop it first" \
    "$KEYSTORED" --rotate-master-key "$T/k0" -c "$T/keystored.conf"
ks_stop
expect_fail "is the current master key" "$KEYSTORED" --rotate-master-key "$T/master.key" -c "$T/keystored.conf"
pass "refused while keystored runs, and with the current key"

# one whole rotation: how long it takes sets the range of the kill delays
cp "$T/keys/e2.key" "$T/e2.key.before"
start=$(date +%s%N)
"$KEYSTORED" --rotate-master-key "$T/k0" -c "$T/keystored.conf" > "$T/rot.log" 2>&1 || { cat "$T/rot.log" >&2; fail "rotation"; }
ms=$(( ($(date +%s%N) - start) / 1000000 ))
cmp -s "$T/master.key" "$T/k0" || fail "master_key is not the new key after a rotation"
[ ! -e "$T/keys.rotate" ] && [ ! -e "$T/master.key.old" ] || fail "rotation left files behind"
cmp -s "$T/keys/e2.key" "$T/e2.key.before" && fail "e2.key was not re-sealed"
ks_start
check_keys "after one rotation"
pass "one rotation ($ms ms): ${#names[@]} keys re-sealed, same public keys, all sign"

# The delays are spread evenly over the measured run and a little after it,
# with jitter.  One run under load can take longer than the first: while one
# outcome is missing after ROUNDS, more rounds follow (up to 3 x ROUNDS) with
# the range stretched (no new key yet) or shrunk (no old key yet).
ROUNDS=${ROTATE_ROUNDS:-12}
old=0 new=0 finished=0 undone=0 round=0
hi=$(( ms * 12 / 10 + 2 ))
while :; do
    round=$((round + 1))
    if [ "$round" -gt "$ROUNDS" ]; then
        [ "$old" -gt 0 ] && [ "$new" -gt 0 ] && break
        [ "$round" -gt $((3 * ROUNDS)) ] && break
        if [ "$new" -eq 0 ]; then hi=$(( hi * 3 / 2 + 1 )); else hi=$(( hi * 2 / 3 + 1 )); fi
        delay=$(( hi / 2 + RANDOM % (hi / 2 + 1) ))
        [ "$old" -eq 0 ] && delay=$(( RANDOM % (hi / 2 + 1) ))
    else
        delay=$(( (round - 1) * hi / ROUNDS + RANDOM % (hi / ROUNDS + 1) ))
    fi
    ks_stop
    cp "$T/master.key" "$T/old.key"
    rm -f "$T/new.key"
    "$KEYSTORED" --gen-master-key "$T/new.key" >/dev/null 2>&1
    "$KEYSTORED" --rotate-master-key "$T/new.key" -c "$T/keystored.conf" >"$T/rot.log" 2>&1 &
    rpid=$!
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    kill -9 "$rpid" 2>/dev/null || true
    wait "$rpid" 2>/dev/null || true
    if cmp -s "$T/master.key" "$T/new.key"; then cur=new other=old.key; new=$((new + 1))
    elif cmp -s "$T/master.key" "$T/old.key"; then cur=old other=new.key; old=$((old + 1))
    else fail "round $round: master_key is neither the old nor the new key"; fi
    mv "$T/keystored.log" "$T/keystored.log.$round"
    ks_start
    grep -q "finishing it" "$T/keystored.log" && finished=$((finished + 1))
    grep -q "rolling it back" "$T/keystored.log" && undone=$((undone + 1))
    grep -E "error|refusing|skipping" "$T/keystored.log" && fail "round $round: start-up after the kill complained"
    cmp -s "$T/master.key" "$T/$cur.key" || fail "round $round: start-up changed master_key"
    [ ! -e "$T/keys.rotate" ] && [ ! -e "$T/master.key.old" ] || fail "round $round: rotation files left after start-up"
    # two keys sign each round, in turn, and the RSA key
    check_keys "round $round (killed after ${delay} ms, $cur key)" \
        "${names[$(( (2 * round) % ${#names[@]} ))]}" "${names[$(( (2 * round + 1) % ${#names[@]} ))]}" r1
    # the other key does not open this store
    sed "s|^master_key = .*|master_key = $T/$other|" "$T/keystored.conf" > "$T/other.conf"
    rm -f "$T/probe"
    expect_fail "does not authenticate under the master key" \
        "$KEYSTORED" --backup "$T/probe" -c "$T/other.conf"
done
[ "$old" -gt 0 ] && [ "$new" -gt 0 ] || fail "the kills did not cover both outcomes (old $old, new $new)"
check_keys "after the rounds"
pass "$((round - 1)) rotations killed at random (old key $old, new key $new; the start finished $finished and undid $undone): the store opened with exactly one key every time, every key there with its public key and signing"

# key files sealed under a previous master key no longer open
ks_stop
cp "$T/keys/e2.key" "$T/e2.key.now"
cp "$T/e2.key.before" "$T/keys/e2.key"
mv "$T/keystored.log" "$T/keystored.log.final"
ks_start
grep -q "refusing $T/keys/e2.key" "$T/keystored.log" || { cat "$T/keystored.log" >&2; fail "a key file of the first master key was not refused"; }
pass "a key file sealed under the first master key is refused after the rotations"
