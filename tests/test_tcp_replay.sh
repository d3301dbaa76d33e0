#!/usr/bin/env bash
# Attack: replaying a captured handshake message 1 (issue 13, part 2).  A
# relay records the first frame of client fe1's real connection; that frame
# is then sent again from five other connections.  The replays must take
# none of fe1's max_connections_per_client slots, be refused at once, never
# be logged or audited as fe1, and still be refused after a restart.  A peer
# that never completes the handshake is closed after handshake_timeout.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_remote.sh"
# Debian's python3 with python3-cryptography (tests/install-deps.sh), whatever python3 comes first
# on PATH; without OPENSSL_MODULES, which points at this build's provider directory and
# would stop cryptography's OpenSSL from loading its legacy provider.
ATTACK="env -u OPENSSL_MODULES /usr/bin/python3 $KS_SOURCE_ROOT/tests/tcp_attack.py"
ks_start_remote "max_connections_per_client = 2" "$(ks_acl_all)"
ks_ctl generate ec --type ec >/dev/null || fail "generate ec"
openssl dgst -sha256 -binary /etc/hostname > "$T/d"
PORT4=${TCP4##*:}

# 1. capture fe1's message 1 through a relay while it really signs
$ATTACK proxy "$T/proxy.port" 127.0.0.1 "$PORT4" "$T/msg1" & relay=$!
for _ in $(seq 100); do [ -s "$T/proxy.port" ] && break; sleep 0.05; done
cnf=$(ks_write_tcp_cnf relay "tcp:127.0.0.1:$(cat "$T/proxy.port")" "$T/fe1.key")
with_cnf "$cnf" openssl pkeyutl -sign -inkey keystore:ec -in "$T/d" -out "$T/s" \
    -pkeyopt digest:sha256 || fail "sign through the relay"
wait $relay || true
[ -s "$T/msg1" ] || fail "message 1 was not captured"
pass "captured fe1's handshake message 1 ($(stat -c %s "$T/msg1") bytes with its header)"

# 2. replay it five times and hold the connections
$ATTACK replay 127.0.0.1 "$PORT4" "$T/msg1" 5 30 > "$T/replay.out" & replayer=$!
for _ in $(seq 200); do [ -s "$T/replay.out" ] && break; sleep 0.05; done
note "$(cat "$T/replay.out")"
direct=$(ks_write_tcp_cnf direct "$TCP4" "$T/fe1.key")
with_cnf "$direct" openssl pkeyutl -sign -inkey keystore:ec -in "$T/d" -out "$T/s" \
    -pkeyopt digest:sha256 || fail "fe1 was locked out by the replayed message 1"
# both of fe1's slots are still its own
holds=()
for i in 1 2; do
    "$TCP_TAMPER" "$TCP4" "$SERVER_PUB" "$T/fe1.key" hold 2 > "$T/hold.$i" 2>&1 & holds+=($!)
done
wait "${holds[@]}" || fail "fe1 could not open its two connections while replays were held"
grep -q "held_open=0" "$T/replay.out" || fail "replayed connections were kept open: $(cat "$T/replay.out")"
kill $replayer 2>/dev/null || true; wait $replayer 2>/dev/null || true
grep -q "handshake timestamp .* was already used for tcp client 'fe1' (a replayed message 1)" \
    "$T/keystored.log" || fail "the replay is not named in the server log"
# 4 genuine connections: the relayed one, the direct one, two holds
n=$(grep -c "id=tcp:fe1 .* op=handshake key=- result=ok" "$T/audit.log" || true)
[ "$n" = 4 ] || fail "expected 4 audited handshakes of fe1 (the genuine ones), found $n"
n=$(grep -c "tcp client 'fe1' authenticated" "$T/keystored.log" || true)
[ "$n" = 4 ] || fail "expected 4 'authenticated' log lines for fe1, found $n"
grep -q "op=handshake key=- result=refused-replayed" "$T/audit.log" || fail "audit: replay not recorded"
pass "5 replays of message 1: refused at once, no slot taken, not audited as fe1"

# 3. a peer that connects and never completes the handshake: closed after
#    handshake_timeout (default 5 s), not idle_timeout (300 s)
out=$($ATTACK silent 127.0.0.1 "$PORT4" 9)
note "silent peer: $out"
case "$out" in "closed after "[4-6].*) ;; *) fail "silent peer not closed after ~5 s: $out" ;; esac
grep -q "did not complete the handshake within 5 s" "$T/keystored.log" || fail "handshake deadline not logged"
pass "handshake_timeout closes a silent peer after 5 s"

# 4. after a restart (no replay memory) the captured message is still refused
ks_stop
mv "$T/keystored.log" "$T/keystored.log.1"
ks_start "listen_tcp = tcp:127.0.0.1:0" "server_key = $T/server.key" \
    "authorized_clients = $T/authorized_clients" "audit_log = $T/audit.log" \
    "max_connections_per_client = 2" "$(ks_acl_all)"
TCP4=$(grep -o 'listening on tcp:127\.0\.0\.1:[0-9]*' "$T/keystored.log" | sed 's/listening on //')
$ATTACK replay 127.0.0.1 "${TCP4##*:}" "$T/msg1" 3 0 > "$T/replay2.out"
note "$(cat "$T/replay2.out")"
grep -q "held_open=0" "$T/replay2.out" || fail "replays after a restart were kept open"
grep -q "handshake timestamp .* is older than this server's start" "$T/keystored.log" \
    || fail "replay after restart not refused as older than the start"
with_cnf "$(ks_write_tcp_cnf direct2 "$TCP4" "$T/fe1.key")" openssl pkeyutl -sign -inkey keystore:ec \
    -in "$T/d" -out "$T/s" -pkeyopt digest:sha256 || fail "fe1 cannot sign after the restart"
pass "after a restart the old message 1 is refused and fe1 signs"
