#!/bin/bash
# Attack test: a replica's applied catalogue state (KEY_DIR/.catalogue, which
# sequence of each key it has applied) rolled back by copying an old copy of
# the file into the key directory, so that an old record put back into etcd
# is applied again.  The attacker can write the key directory and etcd, but
# not the rollback counter outside the directory:
#  1. keep b's .catalogue from before key `gone` existed;
#  2. a makes `gone`, then deletes it (a tombstone in etcd);
#  3. with b stopped, put the old .catalogue back, and gone's old live
#     record back into etcd over the tombstone;
#  4. start b.
# b must refuse to start (the manifest vouches for the current .catalogue
# only) and say how to recover; with the right file back it starts and still
# refuses the record.  Then: a missing .catalogue is refused the same way, an
# empty start needs the counter removed too, kill -9 during catalogue writes
# never leaves a state the next start refuses, and a master-key rotation
# re-seals the file.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd_lib.sh"
cd "$T"

fleet_of_two

# try_start NAME LOG: start replica NAME's keystored with its config; 0 if it
# serves (its pid in TRY_PID), 1 if it exits (its status in TRY_RC)
try_start() {
    rm -f "$T/$1/ks.sock" "$T/$1/admin.sock"
    "$KEYSTORED" -c "$T/$1/keystored.conf" >"$2" 2>&1 &
    TRY_PID=$!
    local i
    for i in $(seq 1 200); do
        if [ -S "$T/$1/ks.sock" ] && [ -S "$T/$1/admin.sock" ]; then return 0; fi
        if ! kill -0 "$TRY_PID" 2>/dev/null; then
            TRY_RC=0; wait "$TRY_PID" || TRY_RC=$?
            return 1
        fi
        sleep 0.05
    done
    cat "$2" >&2
    fail "keystored $1 neither served nor exited within 10 s"
}

replica_ctl a generate keeper --type ec >/dev/null || fail "generate keeper"
replica_wait_key b keeper present 5 >/dev/null || fail "keeper not on b"
replica_stop b
[ -f b/keys/.catalogue ] || fail "b wrote no .catalogue after applying keeper"
cp b/keys/.catalogue old.cat
replica_start b

# 2. gone made and deleted; its live record kept
replica_ctl a generate gone --type ec >/dev/null || fail "generate gone"
replica_wait_key b gone present 5 >/dev/null || fail "gone not on b"
save_record gone live.rec
replica_ctl a delete gone >/dev/null || fail "delete gone"
replica_wait_key b gone gone 5 >/dev/null || fail "gone still on b"
replica_stop b
cp b/keys/.catalogue cur.cat

# 3. the rollback and the replay
cp old.cat b/keys/.catalogue
etcd_ctl put /kst/keys/gone < live.rec >/dev/null || fail "etcdctl put"

# 4. b must refuse to start on the old copy
if try_start b b-old.log; then
    for i in $(seq 1 30); do sign_on b gone 2>/dev/null && break; sleep 0.1; done
    if sign_on b gone; then
        kill "$TRY_PID"; wait "$TRY_PID" 2>/dev/null || true
        fail "b started with an old .catalogue copied back and signs with the deleted key gone (its old record replayed into etcd was accepted again)"
    fi
    kill "$TRY_PID"; wait "$TRY_PID" 2>/dev/null || true
    fail "b started with an old .catalogue copied back instead of refusing it"
fi
[ "$TRY_RC" = 1 ] || { cat b-old.log >&2; fail "b exited $TRY_RC on an old .catalogue, expected 1"; }
grep -q "refusing $T/b/keys/.catalogue: the manifest (generation [0-9]*) does not vouch for it (an old copy put back?)" b-old.log \
    || { cat b-old.log >&2; fail "no clear error naming the old .catalogue"; }
grep -q "restore the key directory and $T/b/keys.generation together from one backup" b-old.log \
    || { cat b-old.log >&2; fail "the error does not say how to recover"; }
pass "b refuses to start with an old .catalogue copied back (exit 1, the file named, the remedy given)"

# the right file back: b starts and still refuses the replayed record
cp cur.cat b/keys/.catalogue
replica_start b
grep -q "catalogue: applied state of [0-9]* keys loaded from $T/b/keys/.catalogue" b/keystored.log \
    || { cat b/keystored.log >&2; fail "b did not load its .catalogue"; }
for i in $(seq 1 20); do
    grep -q "catalogue: refusing the record of key gone" b/keystored.log && break
    sleep 0.1
done
grep -q "catalogue: refusing the record of key gone" b/keystored.log \
    || { grep catalogue b/keystored.log >&2; fail "b did not refuse gone's replayed record"; }
sign_on b gone && fail "b signs with the deleted key gone"
pass "with the current .catalogue back b starts and refuses gone's replayed record"

# a missing .catalogue is refused the same way; an empty start needs the counter gone too
replica_stop b
rm b/keys/.catalogue
try_start b b-missing.log && { kill "$TRY_PID"; wait "$TRY_PID" 2>/dev/null || true; \
    fail "b started with its .catalogue removed"; }
grep -q "$T/b/keys/.catalogue is missing but the manifest (generation [0-9]*) lists it" b-missing.log \
    || { cat b-missing.log >&2; fail "no clear error for a missing .catalogue"; }
rm b/keys.generation
replica_start b
grep -q "warning: .*starting with an empty catalogue state" b/keystored.log \
    || { cat b/keystored.log >&2; fail "no warning on an empty start"; }
replica_wait_key b keeper present 5 >/dev/null || fail "keeper not on b after the empty start"
pass "a missing .catalogue stops b; removed with the rollback counter, b starts empty with a warning"

# kill -9 while b applies records: every restart loads what the manifest vouches for
for round in 1 2 3 4 5 6; do
    replica_ctl a generate "k$round" --type ed25519 >/dev/null || fail "generate k$round"
    sleep "0.0$((RANDOM % 10))"
    replica_stop b KILL
    replica_start b
    if grep -E "refusing .*\.catalogue|catalogue state" b/keystored.log | grep -v "applied state of" >&2; then
        fail "round $round: b's start after kill -9 complained about its .catalogue"
    fi
    replica_wait_key b "k$round" present 5 >/dev/null || fail "round $round: k$round not on b"
done
grep -q "catalogue: applied state of" b/keystored.log || fail "b's last start loaded no state"
pass "6 kill -9 rounds while b applies new keys: every restart loads its vouched .catalogue"

# a master-key rotation re-seals .catalogue with the key files (a replica
# leaving the fleet: with catalogue = etcd rotation is refused, nothing changed)
replica_stop b
"$KEYSTORED" --gen-master-key new.key >/dev/null 2>&1 || fail "gen-master-key"
( cd b/keys && sha256sum .manifest .catalogue ) > before.sum
expect_fail "this keystored has catalogue = etcd: its fleet shares one master key.*Nothing was changed" \
    "$KEYSTORED" --rotate-master-key new.key -c b/keystored.conf
( cd b/keys && sha256sum -c --quiet "$T/before.sum" ) || fail "a refused rotation changed b's key directory"
cmp -s b/master.key master.key || fail "a refused rotation changed b's master key"
sed 's/^catalogue = etcd$/catalogue = embedded/' b/keystored.conf > b/embedded.conf
"$KEYSTORED" --rotate-master-key new.key -c b/embedded.conf >rot.log 2>&1 \
    || { cat rot.log >&2; fail "rotation"; }
try_start b b-rot.log || { cat b-rot.log >&2; fail "b did not start after its master key was rotated"; }
kill "$TRY_PID"; wait "$TRY_PID" 2>/dev/null || true
grep -q "catalogue: applied state of [0-9]* keys loaded" b-rot.log \
    || { cat b-rot.log >&2; fail "b's .catalogue was not re-sealed by the rotation"; }
pass "a master-key rotation re-seals .catalogue: b loads it under the new key"
