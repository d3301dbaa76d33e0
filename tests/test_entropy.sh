#!/usr/bin/env bash
# Randomness inside the jail: the confined server has no /dev at all, yet
# keeps making randomized signatures past OpenSSL's reseed intervals: 120,000
# ECDSA signatures (more than the 65,536 requests after which a thread's DRBG
# reseeds) with the time-based reseed cut to 1 s, so strace sees the primary
# DRBG reseed from getrandom inside the jail again and again.  All verify.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || fail "run as root: the jail needs chroot"
ks_start "rng_reseed_seconds = 1"
[ "$(readlink /proc/$KS_PID/root)" = "$T/jail" ] || fail "server is not in the jail"
[ ! -e "$T/jail/dev" ] || fail "the jail has a /dev"
ks_ctl generate ec --type ec --curve P-256 >/dev/null || fail "generate"
export OPENSSL_CONF=$(ks_write_cnf)

strace -f -qq -e trace=getrandom -o "$T/strace.log" -p "$KS_PID" &
tracer=$!
sleep 1
"$KS_BUILD_ROOT/tests/forkstress" keystore:ec 0 4 30000 || fail "signatures failed in the jail"
kill -INT $tracer; wait $tracer 2>/dev/null || true
n=$(grep -c "getrandom(" "$T/strace.log" || true)
[ "$n" -ge 1 ] || fail "the server never reseeded from getrandom during 120,000 signatures"
kill -0 "$KS_PID" || fail "server died"
grep -qi "malloc failure" "$T/keystored.log" && fail "malloc failure in the server log"
pass "120,000 ECDSA signatures verified from a jail without /dev; $n getrandom reseeds seen"
