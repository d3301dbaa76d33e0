#!/usr/bin/env bash
# A server that is down or wedged gives a clear error within a bounded time
# (the provider's I/O timeout: `timeout` in openssl.cnf or KEYSTORE_TIMEOUT).
. "$(dirname "$0")/lib.sh"
ks_start
ks_ctl generate ec --type ec >/dev/null || fail "generate ec"
openssl dgst -sha256 -binary /etc/hostname > "$T/d"
ks_stop

# bash's own clock: a python3 start-up (seconds on a loaded machine) must not
# count against the operation being timed
start() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", b - a }'; }

# 1. nothing listens: immediate, named error
t0=$(start)
expect_fail "keystore server unreachable at unix:$T/ks.sock" \
    openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:ec -in "$T/d" -out "$T/s"
e=$(elapsed "$t0")
python3 -c "import sys; sys.exit(0 if $e < 5 else 1)" || fail "dead socket took ${e}s (the default timeout is 30 s: it must not wait)"
pass "dead socket: clear error in ${e}s"

# 2. a socket that accepts and never answers: fails after the timeout
rm -f "$T/ks.sock"   # a confined keystored cannot remove it at exit
python3 - "$T/ks.sock" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(16)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)      # read nothing, answer nothing
PY
wedged=$!
trap 'kill $wedged 2>/dev/null; cleanup' EXIT
for i in $(seq 1 100); do [ -S "$T/ks.sock" ] && break; sleep 0.05; done

t0=$(start)
KEYSTORE_TIMEOUT=2 expect_fail "keystore server at unix:$T/ks.sock: .*timed out waiting for the server" \
    openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:ec -in "$T/d" -out "$T/s"
e=$(elapsed "$t0")
python3 -c "import sys; sys.exit(0 if 1.5 <= $e < 3.5 else 1)" || fail "wedged server with KEYSTORE_TIMEOUT=2 took ${e}s"
pass "wedged server, KEYSTORE_TIMEOUT=2: timed out in ${e}s"

# the same through openssl.cnf's timeout setting
cnf=$(ks_write_cnf)
sed -i '/^server = /a timeout = 2' "$cnf"
grep -q '^timeout = 2$' "$cnf" || fail "could not write the timeout setting"
t0=$(start)
OPENSSL_CONF=$cnf expect_fail "timed out waiting for the server" \
    openssl pkeyutl -sign -inkey keystore:ec -in "$T/d" -out "$T/s"
e=$(elapsed "$t0")
python3 -c "import sys; sys.exit(0 if 1.5 <= $e < 3.5 else 1)" || fail "openssl.cnf timeout = 2 took ${e}s"
pass "wedged server, openssl.cnf timeout = 2: timed out in ${e}s"

# 3. a malformed timeout is a clear configuration error
KEYSTORE_TIMEOUT=soon expect_fail "KEYSTORE_TIMEOUT is 'soon': expected whole seconds from 1 to 3600" \
    openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:ec -in "$T/d" -out "$T/s"
pass "malformed KEYSTORE_TIMEOUT rejected with a clear message"
