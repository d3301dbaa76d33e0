#!/usr/bin/env bash
# demo.sh, as README's first command runs it: each run in a directory of its
# own; rerun in the same KS_DEMO_DIR it stops its own earlier keystored, and
# never a process that a stale pid file names (attack: a pid file naming an
# unrelated process got that process killed).
. "$(dirname "$0")/lib.sh"
DEMO="$KS_SOURCE_ROOT/demo.sh"
decoy= started=()
stop_demos() {
    local p
    for p in "${started[@]}" $decoy; do kill "$p" 2>/dev/null || true; done
}
trap 'rc=$?; stop_demos; (exit $rc); cleanup' EXIT

# demo.sh [KS_DEMO_DIR]: run it, print the keystored pid it left running
run_demo() {
    local out pid
    out=$(KS_BUILD="$KS_BUILD_ROOT" KS_DEMO_DIR="${1:-}" "$DEMO" 2>&1) \
        || { echo "$out" >&2; fail "demo.sh ${1:+(KS_DEMO_DIR=$1) }failed"; }
    grep -q "TLS handshake with a keystore key: OK" <<<"$out" || { echo "$out" >&2; fail "demo.sh: no TLS"; }
    echo "$out" > "$T/demo.out"
    pid=$(sed -n 's/^keystored is still running (pid \([0-9]*\)).*/\1/p' <<<"$out")
    [ -n "$pid" ] && kill -0 "$pid" || fail "demo.sh left no keystored running"
    echo "$pid"
}

# Two runs without KS_DEMO_DIR: two directories, two servers, both alive.
a=$(run_demo); started+=("$a"); da=$(sed -n 's/.*sockets and sealed keys in \(.*\))$/\1/p' "$T/demo.out")
b=$(run_demo); started+=("$b"); db=$(sed -n 's/.*sockets and sealed keys in \(.*\))$/\1/p' "$T/demo.out")
[[ $da == /tmp/keystore-demo.* && $db == /tmp/keystore-demo.* && $da != "$db" ]] \
    || fail "each run should get its own directory: '$da' '$db'"
kill -0 "$a" && kill -0 "$b" || fail "a second run stopped the first run's keystored"
pass "each run has its own directory ($da, $db)"
kill "$a" "$b"; rm -rf "$da" "$db"

# Rerun in the same directory: the earlier keystored (really ours) is stopped.
c=$(run_demo "$T/demo"); started+=("$c")
d=$(run_demo "$T/demo"); started+=("$d")
for _ in $(seq 50); do kill -0 "$c" 2>/dev/null || break; sleep 0.1; done
kill -0 "$c" 2>/dev/null && fail "a rerun in the same KS_DEMO_DIR left the earlier keystored running"
pass "a rerun in the same directory stops the earlier keystored"

# A stale pid file naming someone else's process: that process survives.
kill "$d"; for _ in $(seq 50); do kill -0 "$d" 2>/dev/null || break; sleep 0.1; done
sleep 300 & decoy=$!
echo "$decoy" > "$T/demo/keystored.pid"
e=$(run_demo "$T/demo"); started+=("$e")
kill -0 "$decoy" 2>/dev/null || fail "demo.sh killed pid $decoy, which its stale pid file named"
grep -q "not stopping pid $decoy" "$T/demo.out" || fail "demo.sh should say why it left pid $decoy alone"
pass "a stale pid file does not get an unrelated process killed"
