#!/usr/bin/env bash
# Connections cannot hold a worker: idle and half-frame clients are dropped
# after idle_timeout / frame_timeout, max_connections is enforced, and 1,000
# concurrent connections are each served.
. "$(dirname "$0")/lib.sh"

# raw socket helper: python3 is a test dependency (tests/install-deps.sh)
raw() { python3 - "$T/ks.sock" "$@"; }

ks_start "idle_timeout = 1" "frame_timeout = 1" "max_connections = 6" "workers = 1"
ks_ctl generate ec --type ec >/dev/null || fail "generate ec"
openssl dgst -sha256 -binary /etc/hostname > "$T/d"

# 1. silent and half-frame clients are closed in about a second, while a
#    normal client is served meanwhile by the single worker
raw <<'PY' &
import socket, sys, time
def timed(send):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
    if send: s.sendall(send)
    t = time.monotonic(); s.settimeout(10)
    data = s.recv(1)
    return data, time.monotonic() - t
d, idle = timed(b"")
d2, half = timed(b"\x00\x00\x00\x20\x08\x01")   # 32-byte frame, 2 bytes of it
ok = d == b"" and d2 == b"" and 0.5 < idle < 3.5 and 0.5 < half < 3.5
print("idle %.2fs half %.2fs" % (idle, half))
sys.exit(0 if ok else 1)
PY
slow=$!
sleep 0.2
openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:ec -in "$T/d" -out "$T/s" \
    || fail "a normal client was not served while idle connections were open"
wait $slow || fail "idle or half-frame connections were not closed within the timeouts"
grep -q "no complete request for 1 s" "$T/keystored.log" || fail "idle timeout not logged"
grep -q "partial frame was not completed within 1 s" "$T/keystored.log" || fail "frame timeout not logged"
pass "idle and half-frame connections closed after ~1 s; others served meanwhile"

# 2. max_connections = 6: the 7th is closed at once, a slot frees up on close
raw <<'PY' || fail "max_connections not enforced"
import socket, sys, time
hello = b"\x00\x00\x00\x06\x08\x01\x12\x02\x08\x01"
def conn():
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(5); return s
def hello_ok(s):
    s.sendall(hello)
    hdr = s.recv(4)
    if len(hdr) < 4: return False
    body = b""
    n = int.from_bytes(hdr, "big")
    while len(body) < n:
        b = s.recv(n - len(body))
        if not b: return False
        body += b
    return b"\x1a" in body[:4]      # Response.hello (field 3)
held = [conn() for _ in range(6)]
assert all(hello_ok(s) for s in held), "the first 6 connections must be served"
extra = conn()
try:
    extra.sendall(hello); got = extra.recv(4)
except (BrokenPipeError, ConnectionResetError):
    got = b""
assert got == b"", "the 7th connection was served"
held.pop().close(); time.sleep(0.3)
again = conn()
assert hello_ok(again), "a connection after one closed was refused"
print("max_connections ok")
PY
grep -q "max_connections (6) reached" "$T/keystored.log" || fail "refusal not logged"
pass "max_connections: the 7th connection closed at once and logged; a freed slot is reused"
ks_stop

# 3. 1,000 concurrent connections, each Hello + a sign, all in flight at once
mv "$T/keystored.log" "$T/keystored.log.1"
ks_start "max_connections = 1100"
"$KS_BUILD_ROOT/tests/manyconns" "unix:$T/ks.sock" 1000 ec || { tail -n 20 "$T/keystored.log" >&2; fail "1000 connections"; }
pass "1,000 concurrent connections served"
