#!/usr/bin/env bash
# The TCP channel is exactly Noise_IK_25519_ChaChaPoly_BLAKE2b as written in
# docs/protocol.md: tests/noise_client.py, written from that document and
# the Noise specification only (Python's BLAKE2b and HMAC, the
# 'cryptography' package's X25519 and ChaCha20-Poly1305, no code of proto/),
# signs through a real keystored.  Both sides rekey in lockstep, by frame
# count and by time, many times on one connection; a client that never
# confirms its keys is dropped at handshake_timeout; a client clock beyond
# tcp_max_clock_skew is refused with an authenticated status.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_remote.sh"
# Debian's python3 with python3-cryptography (tests/install-deps.sh), whatever python3 comes first
# on PATH; without OPENSSL_MODULES, which points at this build's provider directory and
# would stop cryptography's OpenSSL from loading its legacy provider.
NC="env -u OPENSSL_MODULES /usr/bin/python3 $KS_SOURCE_ROOT/tests/noise_client.py"
ks_start_remote "tcp_rekey_frames = 3" "handshake_timeout = 2" "$(ks_acl_all)"
ks_ctl generate ec --type ec >/dev/null || fail "generate ec"
ks_ctl pubkey ec > "$T/ec.pub"
openssl dgst -sha256 -binary /etc/hostname > "$T/d"
verify() {
    openssl pkeyutl -verify -pubin -inkey "$T/ec.pub" -in "$T/d" -sigfile "$1" \
        -pkeyopt digest:sha256 >/dev/null || fail "signature $1 does not verify"
}

# 1. the independent client, over IPv4 and IPv6
for addr in "$TCP4" "$TCP6"; do
    out=$($NC "$addr" "$SERVER_PUB" "$T/fe1.key" sign ec "$T/d" "$T/s1" 1) \
        || fail "independent client over $addr: $out"
    verify "$T/s1"
    case "$out" in *"max_frame 65519;"*) ;; *) fail "TCP max_frame is not capped at 65519: $out" ;; esac
done
grep -q "hello from 'noise_client.py' over TCP" "$T/keystored.log" || fail "server did not log the hello"
pass "an implementation written from docs/protocol.md and the Noise spec signs (max_frame 65519)"

# 2. rekeying: the client every 2 frames, the server every 3, 40 signatures
out=$($NC "$TCP4" "$SERVER_PUB" "$T/fe1.key" sign ec "$T/d" "$T/s2" 40 2) || fail "rekeying client: $out"
note "$out"
verify "$T/s2"
sent=$(echo "$out" | sed -n 's/.*rekeys sent \([0-9]*\) received \([0-9]*\).*/\1/p')
recv=$(echo "$out" | sed -n 's/.*rekeys sent \([0-9]*\) received \([0-9]*\).*/\2/p')
[ "${sent:-0}" -ge 19 ] && [ "${recv:-0}" -ge 12 ] || fail "too few rekeys: $out"
# the C client (proto/channel.c) rekeys too
out=$(KEYSTORE_REKEY_FRAMES=2 "$TCP_TAMPER" "$TCP6" "$SERVER_PUB" "$T/fe2.key" lists 30) \
    || fail "C client with rekeying: $out"
note "$out"
case "$out" in *"rekeys sent 15 received 10"*) ;; *) fail "C client rekey counts: $out" ;; esac
pass "both sides rekey in lockstep (by frames) and keep working"

# 3. rekeying by time: a server that rekeys every second
ks_stop
mv "$T/keystored.log" "$T/keystored.log.1"
ks_start "listen_tcp = tcp:127.0.0.1:0" "server_key = $T/server.key" \
    "authorized_clients = $T/authorized_clients" "audit_log = $T/audit.log" \
    "tcp_rekey_seconds = 1" "handshake_timeout = 2" "$(ks_acl_all)"
TCP4=$(grep -o 'listening on tcp:127\.0\.0\.1:[0-9]*' "$T/keystored.log" | sed 's/listening on //')
out=$($NC "$TCP4" "$SERVER_PUB" "$T/fe1.key" sign ec "$T/d" "$T/s3" 3 0 1.2) || fail "time rekey: $out"
note "$out"
verify "$T/s3"
case "$out" in *"received 2"|*"received 3") ;; *) fail "server did not rekey by time: $out" ;; esac
pass "the server rekeys by time (tcp_rekey_seconds)"

# 4. no key confirmation: message 1 and 2, then nothing
ok_before=$(grep -c "op=handshake key=- result=ok" "$T/audit.log" || true)
out=$($NC "$TCP4" "$SERVER_PUB" "$T/fe1.key" no-confirm 6)
note "unconfirmed client: $out"
case "$out" in "closed after "[12].*) ;; *) fail "unconfirmed client not closed after ~2 s: $out" ;; esac
[ "$(grep -c "op=handshake key=- result=ok" "$T/audit.log" || true)" = "$ok_before" ] \
    || fail "an unconfirmed handshake was audited ok"
grep -q "did not complete the handshake within 2 s" "$T/keystored.log" || fail "deadline not logged"
pass "a handshake without key confirmation is dropped at handshake_timeout, not audited ok"

# 5. a client clock 300 s behind: refused (authenticated status 4), logged
expect_fail "refused the handshake with status 4" \
    env NOISE_CLOCK_OFFSET=-300 $NC "$TCP4" "$SERVER_PUB" "$T/fe1.key" sign ec "$T/d" "$T/s4" 1
grep -q "beyond tcp_max_clock_skew (120 s)" "$T/keystored.log" || fail "clock skew not logged"
grep -q "op=handshake key=- result=refused-clock-skew" "$T/audit.log" || fail "clock skew not audited"
pass "a client clock beyond tcp_max_clock_skew is refused"
