#!/usr/bin/env bash
# kill -9 of keystored under load, then a restart: clients reconnect by
# themselves, every signature is made exactly once and verifies against its
# own message (no lost operation, no reply to another request).
. "$(dirname "$0")/lib.sh"
ks_start
ks_ctl generate ec --type ec >/dev/null || fail "generate ec"
# each provider call gives up quickly while the server is down; sigloop retries
export KEYSTORE_TIMEOUT=2
OPENSSL_CONF=$(ks_write_cnf)
export OPENSSL_CONF

CLIENTS=8
pids=()
for i in $(seq 1 $CLIENTS); do
    "$KS_BUILD_ROOT/tests/sigloop" keystore:ec "$T/stop" 120 >"$T/client.$i" 2>&1 &
    pids+=($!)
done

# let them get going, then crash the server twice mid-stream
for round in 1 2; do
    sleep 0.8
    for p in "${pids[@]}"; do
        kill -0 "$p" 2>/dev/null || fail "client $p stopped before crash $round: $(cat "$T"/client.*)"
    done
    old=$KS_PID
    kill -9 "$old"
    wait "$old" 2>/dev/null || true
    KS_PID=
    note "killed keystored (round $round) with clients running"
    sleep 0.5
    mv "$T/keystored.log" "$T/keystored.log.$round"
    ks_start
done
sleep 1          # the clients carry on against the restarted server
touch "$T/stop"

rc=0
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        echo "client $((i + 1)): $(cat "$T/client.$((i + 1))")" >&2
        rc=1
    fi
done
[ $rc = 0 ] || fail "a client lost or mismatched a signature across the crashes"
total=0 retries=0
for i in $(seq 1 $CLIENTS); do
    line=$(cat "$T/client.$i")
    [[ $line =~ ^signed=([0-9]+)\ retries=([0-9]+)\ after_failure=([0-9]+)\ bad=0$ ]] \
        || fail "client $i: $line"
    [ "${BASH_REMATCH[2]}" -gt 0 ] || fail "client $i never saw the server die: $line"
    [ "${BASH_REMATCH[3]}" -gt 0 ] || fail "client $i did not sign again after the crash: $line"
    total=$((total + BASH_REMATCH[1]))
    retries=$((retries + BASH_REMATCH[2]))
done
pass "$CLIENTS clients, $total signatures across 2 kill -9 + restart: each made once and verified; every client reconnected by itself ($retries retried calls)"
