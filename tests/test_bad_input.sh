#!/usr/bin/env bash
# The bad-input matrix (tests/badinput.c): malformed frames and requests get a
# clear error or a closed connection, and another client keeps being served.
. "$(dirname "$0")/lib.sh"
ks_start

ks_ctl generate rsa --type rsa >/dev/null || fail "generate rsa"
ks_ctl generate ec --type ec >/dev/null || fail "generate ec"
ks_ctl generate ed --type ed25519 >/dev/null || fail "generate ed"

"$KS_BUILD_ROOT/tests/badinput" "unix:$T/ks.sock" || { tail -n 40 "$T/keystored.log" >&2; fail "bad-input matrix"; }
kill -0 "$KS_PID" 2>/dev/null || fail "keystored died during the bad-input matrix"

# The log says why connections were dropped (no reply was safe for these).
grep -q "frame of 65537 bytes exceeds limit of 65536" "$T/keystored.log" || fail "oversized frame not logged"
grep -q "empty frame (length 0)" "$T/keystored.log" || fail "empty frame not logged"
grep -q "peer closed in the middle of a frame" "$T/keystored.log" || fail "truncated frame not logged"
pass "keystored logged each dropped connection and kept running"

# and the real client still works end to end
openssl dgst -sha256 -binary /etc/hostname > "$T/d"
openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:rsa -in "$T/d" -out "$T/s" || fail "sign after the matrix"
pass "openssl signs after the matrix"
