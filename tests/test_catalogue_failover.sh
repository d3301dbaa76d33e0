#!/bin/bash
# A fleet as issue 15 describes it: three etcd members, three keystored
# replicas sharing one catalogue, and a provider whose server list names all
# three.  A key generated on one replica reaches the others through etcd;
# long-lived and forked processes with threads sign through the list while
# a replica is killed with kill -9 and later restarted: zero failed
# operations, every signature verifies (tests/failstress.c), and the
# restarted replica, which serves its local cache, gets traffic again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd_lib.sh"
FAILSTRESS="$KS_BUILD_ROOT/tests/failstress"
cd "$T"

etcd_start
for r in a b c; do replica_start "$r"; done
replica_ctl a generate web --type ec >/dev/null || fail "generate web on a"
for r in b c; do replica_wait_key "$r" web present 2 >/dev/null || fail "web not on $r within 2 s"; done

OPENSSL_CONF=$(ks_write_cnf fleet "unix:$T/a/ks.sock, unix:$T/b/ks.sock, unix:$T/c/ks.sock" "timeout = 5")
export OPENSSL_CONF
unset KEYSTORE_SERVER

signs() {   # signatures replica $1 made with web since it started
    replica_ctl "$1" --json status | /usr/bin/python3 -c '
import json, sys
st = json.load(sys.stdin)
print(sum(o.get("count", 0) for o in st.get("operations", [])
          if o.get("op") == "sign" and o.get("key") == "web" and o.get("result") == "ok"))'
}

rm -f stop
"$FAILSTRESS" keystore:web "$T/stop" 2 2 3 > load.out 2> load.err &
load=$!
for i in $(seq 1 200); do grep -q '^ready$' load.out && break; sleep 0.05; done
grep -q '^ready$' load.out || { cat load.out load.err; fail "failstress did not start"; }
sleep 1.5
replica_stop a KILL
note "replica a killed (kill -9) under load"
sleep 1.5
b0=$(signs b) c0=$(signs c)
sleep 1
[ "$(signs b)" -gt "$b0" ] && [ "$(signs c)" -gt "$c0" ] || fail "b and c do not carry the load after a died"
replica_start a
sleep 2
na=$(signs a)
replica_stop b KILL
note "replica b killed (kill -9) under load"
sleep 1.5
touch stop
rc=0
wait "$load" || rc=$?
res=$(tail -n 1 load.out)
[ "$rc" = 0 ] || { cat load.out load.err; fail "operations failed or did not verify while replicas died: $res"; }
[ "$na" -gt 0 ] || fail "restarted replica a got no traffic in 2 s"
pass "kill -9 of replica a, restart, kill -9 of replica b, under load through the provider's list: $res; restarted a served $na signatures in 2 s"
