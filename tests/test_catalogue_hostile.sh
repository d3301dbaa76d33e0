#!/bin/bash
# Attack test: a hostile etcd (tests/fake_etcd.py: a compromised member, or
# anyone on the path of plain http) sends the catalogue agent JSON that real
# etcd never sends: a null token, a null watch event type.  Each once
# crashed the agent (strcmp/strlen of NULL; tests/fuzz/regressions/etcd/),
# after which the replica no longer saw any change from etcd until
# restarted.  Now the agent stays up, says what it got, and passes the
# event on to the key process, which refuses its record.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd_lib.sh"
cd "$T"

agent_alive() {   # KEYSTORED-PID: its catalogue agent child still runs (not a zombie)
    ps -o stat=,comm= --ppid "$1" | grep -v '^Z' | grep -q ' keystored-cat$'
}

run_mode() {   # MODE NAME [CONFIG...]
    local mode=$1 name=$2 port fpid
    shift 2
    free_ports port
    (cd "$T" && exec /usr/bin/python3 "$KS_SOURCE_ROOT/tests/fake_etcd.py" "$port" "$mode") &
    fpid=$!
    for i in $(seq 1 100); do
        ss -ltnH "sport = :$port" 2>/dev/null | grep -q . && break
        sleep 0.05
    done
    ETCD_ENDPOINTS="http://127.0.0.1:$port" replica_start "$name" "$@"
    # the agent's back-off: 100 ms doubling; 2 s is several tries
    sleep 2
    kill "$fpid"; wait "$fpid" 2>/dev/null || true
    [ -s "$port.requests" ] || fail "$mode: the agent never asked the fake etcd"
    agent_alive "${REPLICA_PID[$name]}" ||
        { tail -5 "$name/keystored.log"; fail "$mode: the catalogue agent died on the hostile reply"; }
    grep -q 'the agent process is gone' "$name/keystored.log" &&
        fail "$mode: the key process lost its agent"
    FAKE_PORT=$port
}

printf 'pw\n' > pw
chmod 0600 pw
run_mode null-token t "catalogue_user = keystore" "catalogue_password_file = $T/pw"
grep -q "etcd unreachable (http://127.0.0.1:$FAKE_PORT: no token in the authentication reply)" t/keystored.log ||
    { grep catalogue t/keystored.log; fail "null token: the log does not say what etcd sent"; }
n=$(grep -c '^/v3/auth/authenticate$' "$FAKE_PORT.requests")
[ "$n" -ge 2 ] || fail "null token: the agent asked only $n times (it should keep retrying)"
pass "a null token: the agent stayed up, retried $n times, logged 'no token in the authentication reply'"
replica_stop t

run_mode null-type w
grep -q '^/v3/watch$' "$FAKE_PORT.requests" || fail "null type: the agent never watched"
grep -q 'refusing the record of key hostile from etcd (revision 6): not a catalogue record' w/keystored.log ||
    { grep catalogue w/keystored.log; fail "null type: the event did not reach the key process"; }
pass "a watch event with a null type: the agent stayed up and passed it on; the key process refused its record"
