#!/usr/bin/env bash
# The provider's `timeout` is a deadline for the whole operation, retries
# included.  Attack on the old behaviour: a server that hangs after the key
# was loaded (here a real keystored frozen with SIGSTOP) made each receive
# wait `timeout`, then the provider retried on a fresh connection and waited
# again: twice the timeout (nginx's handshake took 8.1 s with timeout = 4).
. "$(dirname "$0")/lib.sh"
ks_start
ks_ctl generate ec --type ec >/dev/null || fail "generate ec"

run_frozen() {   # run_frozen ENV...: sign with the server frozen; prints the result lines
    local out="$T/deadline.out" fifo="$T/deadline.in" pid i
    rm -f "$fifo"; mkfifo "$fifo"
    env "$@" "$KS_BUILD_ROOT/tests/deadline" keystore:ec <"$fifo" >"$out" 2>&1 &
    pid=$!
    exec 8>"$fifo"
    for i in $(seq 1 200); do grep -q '^ready$' "$out" && break; sleep 0.05; done
    grep -q '^ready$' "$out" || { cat "$out" >&2; fail "deadline helper did not start"; }
    kill -STOP "$KS_PID"
    # SIGSTOP takes effect asynchronously: wait until every thread is stopped
    for i in $(seq 1 200); do
        ! grep -qv '^State:\s*T' <(grep -h '^State:' /proc/"$KS_PID"/task/*/status) && break
        sleep 0.01
    done
    echo go >&8
    wait "$pid" || true
    exec 8>&-
    kill -CONT "$KS_PID"
    cat "$out"
}

cnf=$(ks_write_cnf)   # the helper loads the provider from openssl.cnf
for t in 2 3; do
    out=$(run_frozen OPENSSL_CONF="$cnf" KEYSTORE_TIMEOUT=$t)
    echo "$out"
    grep -q "result=failed" <<<"$out" || fail "signing with a frozen server did not fail"
    grep -q "timed out waiting for the server" <<<"$out" || fail "the error does not say it timed out"
    ms=$(sed -n 's/.*elapsed_ms=\([0-9]*\).*/\1/p' <<<"$out")
    # the deadline, plus scheduling slack; never a second round of waiting
    [ "$ms" -ge $((t * 1000 - 100)) ] || fail "timeout = $t: gave up after ${ms} ms, before its deadline"
    [ "$ms" -le $((t * 1000 + 700)) ] || fail "timeout = $t: the operation took ${ms} ms, more than its deadline"
    pass "timeout = $t: a frozen server fails the operation in ${ms} ms"
done

# after the server thaws the same process signs again (fresh connection)
ks_ctl list >/dev/null || fail "server did not come back from SIGCONT"
openssl dgst -sha256 -binary /etc/hostname > "$T/d"
openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:ec -in "$T/d" -out "$T/s" || fail "sign after thaw"
pass "the thawed server serves again"
