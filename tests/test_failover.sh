#!/usr/bin/env bash
# Several servers in the provider's list (provider/servers.c): three
# keystored, two on Unix sockets and one on TCP, the same key imported into
# each.  Threads and forked processes sign through a provider whose
# `server =` lists all three: the operations spread over them; a kill -9 of
# one, then of another, mid-run costs no operation and every signature
# verifies; a restarted server gets traffic again.  A server whose key of
# the same name is a different key is never used for it: a clear error if
# it is the only one left, a failover to a right one otherwise.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_multi.sh"
FAILSTRESS="$KS_BUILD_ROOT/tests/failstress"

ms_start a
ms_start_tcp b
ms_start c
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/web.pem" 2>/dev/null
for s in a b c; do ms_ctl "$s" import web "$T/web.pem" >/dev/null || fail "import web into $s"; done
# openssl.cnf lists the three: commas and whitespace both separate, the
# TCP entry carries its server's pinned key
OPENSSL_CONF=$(ks_write_cnf multi "$(ms_addr a), ${MS_TCP[b]} $(ms_addr c)" \
    "client_key = $T/client.key" "timeout = 5")
export OPENSSL_CONF
unset KEYSTORE_SERVER

load_start() {   # load_start LONG SHORT THREADS: failstress in the background
    rm -f "$T/stop"
    "$FAILSTRESS" keystore:web "$T/stop" "$@" >"$T/load.out" 2>"$T/load.err" &
    LOAD_PID=$!
    local i
    for i in $(seq 1 200); do grep -q '^ready$' "$T/load.out" && return 0; sleep 0.05; done
    cat "$T/load.out" "$T/load.err" >&2
    fail "failstress did not start"
}
load_stop() {    # sets res to the result line; fails the test on any failed or bad operation
    touch "$T/stop"
    local rc=0
    wait "$LOAD_PID" || rc=$?
    res=$(tail -n 1 "$T/load.out")
    [ $rc = 0 ] || { cat "$T/load.out" "$T/load.err" >&2; fail "operations failed or did not verify"; }
}
signs() { ms_signs "$1" web; }
# within MS COMMAND...: COMMAND succeeds before MS milliseconds have passed
# (asked every 0.1 s): a bound on how long something may take, without
# waiting the whole bound when it happens sooner.
within() {
    local end=$(( $(date +%s%N) / 1000000 + $1 ))
    shift
    until "$@"; do
        [ $(( $(date +%s%N) / 1000000 )) -lt "$end" ] || return 1
        sleep 0.1
    done
}
signs_above() { [ "$(signs "$1")" -gt "$2" ]; }   # NAME N

# --- spread: with all three up each gets a share (each process's threads
# take the servers in turn from a random offset)
load_start 2 2 3
sleep 2
load_stop
na=$(signs a) nb=$(signs b) nc=$(signs c)
total=$((na + nb + nc))
note "spread: $res; a=$na b(tcp)=$nb c=$nc"
for n in $na $nb $nc; do
    [ $((n * 100)) -ge $((total * 5)) ] || fail "a server got less than 5% of $total signatures: a=$na b=$nb c=$nc"
done
pass "spread: a=$na, b (TCP)=$nb, c=$nc of $total signatures, from 2 long-lived and many short-lived processes"

# --- kill -9 under load, restart, traffic returns
load_start 2 2 3
sleep 1
ms_kill a
note "killed a (kill -9) under load"
sleep 1
b0=$(signs b) c0=$(signs c)
b_and_c_carry() { signs_above b "$b0" && signs_above c "$c0"; }
within 1000 b_and_c_carry || fail "b and c do not carry the load after a died"
ms_start a
start=$(date +%s%N)
within 2000 signs_above a 0 || fail "restarted a got no traffic in 2 s"
na=$(signs a)
note "restarted a: traffic within $(( ($(date +%s%N) - start) / 1000000 )) ms ($na signatures)"
ms_kill b
note "killed b (TCP, kill -9) under load"
sleep 1.5
ms_start_tcp b
within 2000 signs_above b 0 || fail "restarted b got no traffic in 2 s"
nb=$(signs b)
load_stop
pass "kill -9 of a and of b (TCP) under load, restarts: $res; restarted a served $na, restarted b $nb"

# --- a server holding a different key under the same name
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/other.pem" 2>/dev/null
fifo="$T/helper.in"
mkfifo "$fifo"
# the helper loads web while only a is up among a, d, c: its handle is a's key
ms_kill c
# (KEYSTORE_SERVER, which wins over openssl.cnf, takes a list too)
export KEYSTORE_SERVER="$(ms_addr a),$(ms_addr d),$(ms_addr c)"
"$KS_BUILD_ROOT/tests/deadline" keystore:web --repeat <"$fifo" >>"$T/helper.out" 2>&1 &
helper=$!
exec 8>"$fifo"
for i in $(seq 1 200); do grep -q '^ready$' "$T/helper.out" && break; sleep 0.05; done
grep -q '^ready$' "$T/helper.out" || { cat "$T/helper.out"; fail "helper did not start"; }
ms_start d 8>&-      # servers must not hold the helper's input open
ms_ctl d import web "$T/other.pem" >/dev/null || fail "import the other web into d"
ms_kill a
# only d is up, and its 'web' is not the key the handle was loaded with
echo go >&8
for i in $(seq 1 100); do [ "$(grep -c '^elapsed_ms' "$T/helper.out")" -ge 1 ] && break; sleep 0.05; done
grep -q 'result=failed' "$T/helper.out" || { cat "$T/helper.out"; fail "signing on a server with a different key did not fail"; }
grep -q "keystore servers hold different keys under this name:.*keystore server at $(ms_addr d) holds a different key named 'web' than the one loaded from $(ms_addr a)" "$T/helper.out" \
    || { cat "$T/helper.out"; fail "the error does not say that d's key differs"; }
[ "$(signs d)" = 0 ] || fail "d signed with its different key"
pass "a server whose 'web' is another key is refused: $(grep -o "keystore server at $(ms_addr d) holds[^(]*[^( ]" "$T/helper.out" | head -1)"
# with c (the right key) back, the handle fails over to c, still never to d
ms_start c 8>&-
sleep 0.3     # c's backoff (it was down when the helper loaded) runs out
: >"$T/helper.out"
for i in 1 2 3 4 5; do echo go >&8; done
for i in $(seq 1 100); do [ "$(grep -c '^elapsed_ms' "$T/helper.out")" -ge 5 ] && break; sleep 0.05; done
[ "$(grep -c 'result=ok' "$T/helper.out")" = 5 ] || { cat "$T/helper.out"; fail "no failover to c, which holds the right key"; }
[ "$(signs d)" = 0 ] || fail "d signed with its different key"
[ "$(signs c)" -ge 5 ] || fail "c did not make the signatures"
exec 8>&-
wait "$helper" || true
pass "with c back, the same handle signs on c (5 of 5), never on d"

# --- a hung server (SIGSTOP) costs an operation only its share of the
# timeout: with two servers and timeout = 4, 2 s on the hung one, then the other
ms_start a
a0=$(signs a) c0=$(signs c)
rm -f "$fifo"; mkfifo "$fifo"
: >"$T/helper.out"
KEYSTORE_SERVER="$(ms_addr a) $(ms_addr c)" KEYSTORE_TIMEOUT=4 \
    "$KS_BUILD_ROOT/tests/deadline" keystore:web --repeat <"$fifo" >>"$T/helper.out" 2>&1 &
helper=$!
exec 8>"$fifo"
for i in $(seq 1 200); do grep -q '^ready$' "$T/helper.out" && break; sleep 0.05; done
grep -q '^ready$' "$T/helper.out" || { cat "$T/helper.out"; fail "helper did not start"; }
# freeze the server the helper's connection goes to
if [ "$(signs a)" -gt "$a0" ]; then frozen=a; else frozen=c; fi
[ "$frozen" = a ] || [ "$(signs c)" -gt "$c0" ] || fail "the helper's first signature is on neither server"
pid=${MS_PID[$frozen]}
kill -STOP "$pid"
for i in $(seq 1 200); do
    ! grep -qv '^State:\s*T' <(grep -h '^State:' /proc/"$pid"/task/*/status) && break
    sleep 0.01
done
echo go >&8
for i in $(seq 1 200); do grep -q '^elapsed_ms' "$T/helper.out" && break; sleep 0.05; done
kill -CONT "$pid"
exec 8>&-
wait "$helper" || true
line=$(grep '^elapsed_ms' "$T/helper.out" || true)
[[ $line =~ ^elapsed_ms=([0-9]+)\ result=ok ]] || { cat "$T/helper.out"; fail "no failover from the hung server $frozen"; }
ms=${BASH_REMATCH[1]}
[ "$ms" -ge 1900 ] && [ "$ms" -le 3500 ] || fail "failover from a hung server took $ms ms (expected its 2 s share of timeout = 4)"
pass "server $frozen hung (SIGSTOP): the operation moved to the other after $ms ms, within timeout = 4"
