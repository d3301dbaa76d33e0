#!/usr/bin/env bash
# A replica whose etcd member freezes must not go on serving a key the rest
# of the fleet deleted.  The attack: replica b watches member m1 (its first
# endpoint); m1 is frozen (SIGSTOP: the kernel keeps its connections up and
# answers TCP keepalives, as for a member hung or cut off behind a
# middlebox); a deletes key `revoked` through m2 and m3, which go on as a
# majority.  Before the watch probe b kept signing with `revoked` for as long
# as m1 stayed frozen, and its status said it was in step.  Now b's catalogue
# agent probes the member its watch is on with a quorum read every 2 s, ends
# the watch after two failures in a row and reads the catalogue from another
# member: `revoked` is gone from b, b's status says why it left m1 and that it
# is in step again, and keys made meanwhile arrive.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd_lib.sh"
cd "$T"

fleet_of_two

replica_ctl a generate revoked --type ec >/dev/null || fail "generate revoked"
replica_wait_key b revoked present 5 >/dev/null || fail "revoked not on b"
sign_on b revoked || fail "b cannot sign with revoked"

kill -STOP "${ETCD_PIDS[1]}"
note "froze etcd member m1 (b's watch is on its first endpoint, m1)"
start=$(date +%s%N)
until replica_ctl a delete revoked >del.out 2>&1; do
    [ $(( ($(date +%s%N) - start) / 1000000000 )) -lt 30 ] || { cat del.out; fail "a could not delete revoked through m2 and m3 within 30 s"; }
    sleep 0.5
done
replica_ctl a generate after --type ec >/dev/null || fail "generate after (m1 frozen)"
ms=$(replica_wait_key b revoked gone 40) || {
    sign_on b revoked && note "b still signs with revoked"
    replica_ctl b status | grep '^catalogue' >&2
    fail "b still has the deleted key revoked 40 s after its delete, its etcd member frozen"
}
sign_on b revoked && fail "b signs with revoked after its delete"
replica_wait_key b after present 10 >/dev/null || fail "the key made while m1 was frozen did not reach b"
grep -q "did not answer a quorum read 2 times in a row" b/keystored.log \
    || { cat b/keystored.log >&2; fail "b's log does not say why it left m1"; }
catalogue_status b "etcd, in step since" 10 || fail "b's status does not say it is in step again"
pass "m1 frozen: b dropped the deleted key ${ms} ms after its delete (watch probe), and is in step on another member"

kill -CONT "${ETCD_PIDS[1]}"
etcd_wait_healthy
replica_ctl b generate back --type ec >/dev/null || fail "generate on b after m1 is back"
replica_wait_key a back present 10 >/dev/null || fail "back did not reach a"
pass "m1 thawed: the fleet goes on"
