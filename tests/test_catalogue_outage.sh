#!/bin/bash
# catalogue = etcd when etcd fails (issue 15 part 2):
#  - the etcd leader is killed: signing through both replicas never fails,
#    admin writes succeed again after the election;
#  - a replica that was down while keys were added catches up when it starts;
#  - every etcd member down: both replicas keep signing, an admin write fails
#    with ERROR_CATALOGUE_UNAVAILABLE naming etcd and the endpoints, and a
#    replica restarted during the outage serves its cache;
#  - etcd back: admin writes work again and reach the other replica.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd_lib.sh"
cd "$T"

fleet_of_two

# Sign through both replicas until the file STOP exists; count failures.
sign_loop() {
    local n=0 bad=0
    while [ ! -e STOP ]; do
        sign_on a e1 || bad=$((bad + 1))
        sign_on b e1 || bad=$((bad + 1))
        n=$((n + 2))
    done
    echo "$n $bad" > loop.out
}

replica_ctl a generate e1 --type ec >/dev/null || fail "generate e1"
replica_wait_key b e1 present 2 >/dev/null || fail "e1 not on b"
catalogue_status b "etcd, in step since [0-9T:-]+Z, revision [1-9][0-9]*, [1-9][0-9]* records applied" \
    || fail "b's status does not say it is in step with etcd, with e1's record applied"
replica_ctl a --json status > status.json || fail "status --json"
/usr/bin/python3 -c '
import json, sys
c = json.load(open("status.json"))["catalogue"]
assert c["mode"] == "etcd" and c["in_step"] is True and c["revision"] > 0 and c["problem"] == "", c
' || fail "a's status --json has no in-step catalogue: $(cat status.json)"
rev_before=$(sed -n 's/.*revision \([0-9]*\),.*/\1/p' status.b)
pass "status: both replicas in step with etcd (b at revision $rev_before)"

# 1. kill -9 the etcd leader under signing load
leader=$(etcd_leader) || fail "no etcd leader"
rm -f STOP; sign_loop & loop=$!
sleep 0.5
kill -9 "${ETCD_PIDS[$leader]}"; wait "${ETCD_PIDS[$leader]}" 2>/dev/null || true
note "killed etcd member m$leader (the leader)"
start=$(date +%s%N); tries=0
until replica_ctl a generate e2 --type ec >gen.out 2>&1; do
    tries=$((tries + 1))
    [ $(( ($(date +%s%N) - start) / 1000000000 )) -lt 20 ] || { cat gen.out; fail "no admin write within 20 s of the leader's death"; }
    sleep 0.2
done
ms=$(( ($(date +%s%N) - start) / 1000000 ))
replica_wait_key b e2 present 2 >/dev/null || fail "e2 (written after the election) not on b"
sleep 0.5
touch STOP; wait "$loop"
read -r n bad < loop.out
[ "$bad" = 0 ] || { cat sign.err; fail "$bad of $n signatures failed while the etcd leader died"; }
pass "leader m$leader killed: $n signatures, 0 failed; admin write succeeded after $ms ms ($tries refused), reached b"
etcd_member_start "$leader" existing
etcd_wait_healthy

# 2. a replica that was down while keys were added catches up
replica_stop b
replica_ctl a generate e3 --type ec >/dev/null || fail "generate e3 while b is down"
replica_ctl a delete e2 >/dev/null || fail "delete e2 while b is down"
replica_start b
replica_wait_key b e3 present 3 >/dev/null || fail "b did not catch up with e3 after its start"
replica_wait_key b e2 gone 3 >/dev/null || fail "b did not catch up with the delete of e2"
sign_on b e3 || fail "b cannot sign with e3"
pass "replica b, down while e3 was added and e2 deleted, caught up when it started"

# 3. every etcd member down
etcd_stop_all
n=0
for i in $(seq 1 10); do
    sign_on a e1 && sign_on b e3 || fail "signing failed with etcd down"
    n=$((n + 2))
done
out=$(replica_ctl a generate e4 --type ec 2>&1) && fail "generate succeeded with every etcd member down"
echo "$out" | grep -q 'ERROR_CATALOGUE_UNAVAILABLE' || fail "wrong error: $out"
echo "$out" | grep -q 'etcd' && echo "$out" | grep -q "127.0.0.1:$ETCD_C1" ||
    fail "the error does not name etcd and the endpoint: $out"
replica_ctl a info e4 >/dev/null 2>&1 && fail "the refused generate left key e4 on a"
out=$(replica_ctl b delete e1 2>&1) && fail "delete succeeded with etcd down"
echo "$out" | grep -q 'ERROR_CATALOGUE_UNAVAILABLE' || fail "delete: wrong error: $out"
sign_on b e1 || fail "the refused delete removed e1 from b"
pass "etcd down: $n signatures through a and b worked; admin writes refused: $(echo "$out" | head -c 200)"
catalogue_status a "etcd, NOT IN STEP since [0-9T:-]+Z: (etcd unreachable|the etcd watch stopped) \\(.*127\\.0\\.0\\.1" \
    || fail "a's status does not say that etcd is out of reach, naming it"
replica_ctl a metrics | grep -qx "keystore_catalogue_in_step 0" || fail "metrics: keystore_catalogue_in_step is not 0 with etcd down"
pass "status and metrics say a is not in step, and why: $(sed -n 's/^catalogue: *//p' status.a | head -c 200)"

replica_stop b
replica_start b
sign_on b e1 && sign_on b e3 || fail "b restarted during the outage does not serve its cache"
pass "replica b restarted during the outage serves its cached keys"

# 4. etcd back
for i in 1 2 3; do etcd_member_start "$i" existing; done
etcd_wait_healthy
start=$(date +%s%N)
until replica_ctl a generate e5 --type ec >gen.out 2>&1; do
    [ $(( ($(date +%s%N) - start) / 1000000000 )) -lt 20 ] || { cat gen.out; fail "no admin write within 20 s of etcd's return"; }
    sleep 0.2
done
replica_wait_key b e5 present 3 >/dev/null || fail "e5 (after etcd's return) not on b"
catalogue_status b "etcd, in step since" || fail "b's status does not say it is in step again"
rev_after=$(sed -n 's/.*revision \([0-9]*\),.*/\1/p' status.b)
[ "$rev_after" -gt "$rev_before" ] || fail "b's catalogue revision did not advance ($rev_before, then $rev_after)"
replica_ctl b metrics > metrics.b || fail "metrics of b"
/usr/bin/python3 "$KS_SOURCE_ROOT/tests/prom_check.py" metrics.b || { cat metrics.b; fail "b's metrics are not valid Prometheus text"; }
grep -qx "keystore_catalogue_in_step 1" metrics.b || fail "metrics: b not in step after etcd's return"
grep -qx "keystore_catalogue_revision $rev_after" metrics.b || fail "metrics: b's revision is not $rev_after"
pass "etcd back: admin writes work again and reach b; b in step again at revision $rev_after"
