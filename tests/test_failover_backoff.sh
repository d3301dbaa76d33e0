#!/usr/bin/env bash
# A dead server is tried again only on the backoff schedule (50 ms doubling
# to 5 s, per process, shared by its threads: provider/servers.c), not on
# every operation.  Attack on the old behaviour: while its only server was
# down a client failed about 53,000 times a second, and each failure was a
# connection attempt the server (or whatever listens in its place) had to
# take.  Here the dead server is a stub that accepts and closes at once and
# counts what it accepted.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_multi.sh"
FAILSTRESS="$KS_BUILD_ROOT/tests/failstress"

stub_start() {   # stub_start PATH: a "server" that accepts, counts, closes
    rm -f "$1" "$1.count"
    /usr/bin/python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(512)
while True:
    c, _ = s.accept(); c.close(); print("x", flush=True)' "$1" >"$1.count" &
    STUB_PID=$!
    local i
    for i in $(seq 1 100); do [ -S "$1" ] && return 0; sleep 0.05; done
    fail "stub did not start"
}
stub_count() { wc -l <"$1.count"; }
STUB_PID=
stub_stop() { [ -z "$STUB_PID" ] || { kill "$STUB_PID" 2>/dev/null; wait "$STUB_PID" 2>/dev/null; STUB_PID=; } || true; }
trap 'ms_rc=$?; stub_stop; ms_cleanup; (exit $ms_rc); cleanup' EXIT

# --- the only server is dead: every operation fails, fast, with the clear
# error, but the connection attempts follow the backoff schedule
stub_start "$T/dead.sock"
cnf=$(ks_write_cnf only "unix:$T/dead.sock")
out=$(OPENSSL_CONF=$cnf "$FAILSTRESS" --load-loop keystore:web 3 2)
attempts=$(stub_count "$T/dead.sock")
note "only server dead, 2 threads for 3 s: $out; connections to it: $attempts"
[[ $out =~ ^loads=([0-9]+)\ failed=([0-9]+)\ slowest_ms=([0-9]+)$ ]] || fail "load-loop: $out"
loads=${BASH_REMATCH[1]}
[ "${BASH_REMATCH[2]}" = "$loads" ] || fail "a load succeeded against a dead server: $out"
# no operation waits out the backoff (up to 5 s) or the timeout; one that is
# merely descheduled on a busy 2-core machine took 1.2 s once in CI, so the
# bound is 2.5 s, and the count of loads below catches a client that waits
[ "${BASH_REMATCH[3]}" -lt 2500 ] || fail "an operation waited ${BASH_REMATCH[3]} ms for a server known dead"
[ "$loads" -ge 100 ] || fail "only $loads loads in 3 s: the client waits instead of failing fast"
# per process: at most one attempt per delay (25, 50, 100 ... 2500 ms at the
# shortest with jitter: 8 in 3 s), plus one per thread racing at the start
[ "$attempts" -le 12 ] || fail "$attempts connection attempts to the dead server for $loads operations (backoff allows about 10)"
pass "only server dead: $loads operations failed fast (slowest ${BASH_REMATCH[3]} ms), $attempts connection attempts"
stub_stop

# the error names the server and what happened, and says it is backing off
rm -f "$T/dead.sock"
openssl dgst -sha256 -binary /etc/hostname > "$T/d"
KEYSTORE_SERVER="unix:$T/dead.sock" expect_fail \
    "keystore server unreachable at unix:$T/dead.sock: (No such file or directory|Connection refused)" \
    openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:web -in "$T/d" -out "$T/s"
pass "only server dead: a clear error"

# --- a live server and a dead one in the list: no operation fails, and
# the dead one is tried on the backoff schedule only
ms_start a
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/web.pem" 2>/dev/null
ms_ctl a import web "$T/web.pem" >/dev/null || fail "import web"
stub_start "$T/dead.sock"
OPENSSL_CONF=$(ks_write_cnf pair "unix:$T/dead.sock $(ms_addr a)")
export OPENSSL_CONF
unset KEYSTORE_SERVER
rm -f "$T/stop"
"$FAILSTRESS" keystore:web "$T/stop" 2 0 4 >"$T/load.out" 2>"$T/load.err" &
load=$!
for i in $(seq 1 200); do grep -q '^ready$' "$T/load.out" && break; sleep 0.05; done
sleep 3
touch "$T/stop"
wait "$load" || { cat "$T/load.out" "$T/load.err" >&2; fail "operations failed with one server of two up"; }
res=$(tail -n 1 "$T/load.out")
attempts=$(stub_count "$T/dead.sock")
ops=$(ms_signs a web)
note "dead + live server, 2 processes x 4 threads for 3 s: $res; connections to the dead one: $attempts"
# the loading parent and two processes, each on its own schedule
[ "$attempts" -le 36 ] || fail "$attempts connection attempts to the dead server for $ops operations"
[ "$ops" -ge 50 ] || fail "only $ops signatures in 3 s"
pass "dead + live: $ops signatures, none failed, $attempts connection attempts to the dead server"
stub_stop
