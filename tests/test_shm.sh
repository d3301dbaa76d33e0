#!/usr/bin/env bash
# The shared-memory fast path (docs/protocol.md "Shared-memory rings") under
# attack: hostile clients (tests/shm_attack.c) hand over descriptors the
# server must refuse, scribble on accepted rings, lie about indices, never
# read replies, claim to sleep and flood the doorbell.  The server must stay
# up, close only the offending connection, and keep serving a well-behaved
# client with its latency about unchanged.  Also: the switches that turn the
# fast path off (KEYSTORE_SHM=0, shm = no, shared_memory = no).
. "$(dirname "$0")/lib.sh"
ks_start
A="$KS_BUILD_ROOT/tests/shm_attack"
ks_ctl generate p256 --type ec --curve P-256 >/dev/null || fail "generate"
alive() { kill -0 "$KS_PID" 2>/dev/null || { cat "$T/keystored.log" >&2; fail "keystored died ($1)"; }; }

base=$("$A" legit "$KEYSTORE_SERVER" p256 300 1) || fail "legit client over the rings"
base=${base#p50_us }
pass "a well-behaved client signs over the rings (p50 ${base} us)"

for mode in noseal growonly wrongsize file notmemfd bigring manyfds; do
    "$A" "$mode" "$KEYSTORE_SERVER" p256 1 || { alive "$mode"; fail "$mode"; }
    alive "$mode"
    pass "$mode: refused (or only the first descriptor kept), server up"
done
grep -q "shared-memory rings refused: the memfd is not sealed" "$T/keystored.log" \
    || fail "no log line for the unsealed memfd"
grep -q "shared-memory rings refused: the descriptor is not a memfd" "$T/keystored.log" \
    || fail "no log line for the non-memfd descriptor"

for mode in scribble lie noread nowake flood; do
    "$A" "$mode" "$KEYSTORE_SERVER" p256 3 > "$T/$mode.out" 2>&1 &
    apid=$!
    sleep 0.3
    during=$("$A" legit "$KEYSTORE_SERVER" p256 200 1) || { cat "$T/$mode.out"; fail "legit client during $mode"; }
    during=${during#p50_us }
    wait $apid || { cat "$T/$mode.out"; fail "$mode: the server did not behave"; }
    alive "$mode"
    # a shared 2-core machine (and ASan) is noisy: catch a stall, not a few microseconds
    [ "$during" -le $(( base * 10 + 10000 )) ] || fail "$mode: p50 ${during} us vs ${base} us before"
    pass "$mode: $(cat "$T/$mode.out" | tail -1); others served (p50 ${during} us vs ${base} us)"
done

head -c 32 /dev/urandom > "$T/dgst"
# the provider itself takes the rings by default: one memfd, Hello is the only
# frame on the socket; after it only one-byte doorbells (the worker was asleep)
strace -f -qq -e trace=memfd_create,sendmsg,sendto,write -o "$T/strace" \
    openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:p256 -in "$T/dgst" -out "$T/sig" \
    || fail "sign through the provider"
grep -q 'memfd_create("keystore-rings"' "$T/strace" || { cat "$T/strace"; fail "the provider made no rings"; }
frames=$(grep -cE '^[0-9]+ +sendmsg\(' "$T/strace" || true)
other=$(grep -E '^[0-9]+ +sendto\(' "$T/strace" | grep -cvE 'sendto\([0-9]+, "\\0", 1,' || true)
[ "$frames" -eq 1 ] && [ "$other" -eq 0 ] \
    || { cat "$T/strace"; fail "the provider sent requests on the socket ($frames sendmsg, $other other sends)"; }
pass "the provider signs over the rings: one memfd, Hello the only frame on the socket, then doorbells"
KEYSTORE_SHM=0 strace -f -qq -e trace=memfd_create -o "$T/strace0" \
    openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:p256 -in "$T/dgst" -out "$T/sig" || fail "sign"
! grep -q memfd_create "$T/strace0" || fail "KEYSTORE_SHM=0 still made rings"
KEYSTORE_SHM=0 openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:p256 -in "$T/dgst" -out "$T/sig" \
    || fail "sign with KEYSTORE_SHM=0"
expect_fail "KEYSTORE_SHM is 'maybe'" env KEYSTORE_SHM=maybe openssl pkeyutl "${PROV[@]}" -sign \
    -inkey keystore:p256 -in "$T/dgst" -out "$T/sig"
cnf=$(ks_write_cnf noshm "$KEYSTORE_SERVER" "shm = no")
OPENSSL_CONF=$cnf openssl pkeyutl -sign -inkey keystore:p256 -in "$T/dgst" -out "$T/sig" \
    || fail "sign with shm = no"
pass "KEYSTORE_SHM=0 and shm = no keep the socket path; a bad value is an error"

ks_stop
ks_start "shared_memory = no"
"$A" legit "$KEYSTORE_SERVER" p256 20 0 >/dev/null || fail "shared_memory = no still mapped rings"
openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:p256 -in "$T/dgst" -out "$T/sig" \
    || fail "sign against shared_memory = no"
grep -q "shared_memory = no in this server's configuration" "$T/keystored.log" || fail "no refusal logged"
pass "shared_memory = no: the server refuses the rings, clients use the socket"
