#!/usr/bin/env bash
# Attack: unauthenticated TCP peers must not take the service away from
# local clients (issue 13, part 3).  1,100 connections from 127.0.0.1 that
# never send a byte (reopened as the server closes them) while local clients
# sign over the Unix socket and an authorized client signs over [::1]: no
# failure allowed.  A first frame whose header announces anything but a
# handshake is refused as soon as the header arrives.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_remote.sh"
# Debian's python3 with python3-cryptography (tests/install-deps.sh), whatever python3 comes first
# on PATH; without OPENSSL_MODULES, which points at this build's provider directory and
# would stop cryptography's OpenSSL from loading its legacy provider.
ATTACK="env -u OPENSSL_MODULES /usr/bin/python3 $KS_SOURCE_ROOT/tests/tcp_attack.py"
ks_start_remote "frame_timeout = 10" "$(ks_acl_all)"
ks_ctl generate ec --type ec >/dev/null || fail "generate ec"
openssl dgst -sha256 -binary /etc/hostname > "$T/d"
PORT4=${TCP4##*:}

# 1. the flood, bounded: 1,100 connections for at most 60 s
$ATTACK flood 127.0.0.1 "$PORT4" 1100 60 "$T/flood.ready" > "$T/flood.out" & flooder=$!
for _ in $(seq 200); do [ -s "$T/flood.ready" ] && break; sleep 0.05; done
[ -s "$T/flood.ready" ] || fail "the flood did not start"
sleep 1
unix_fail=0 tcp_fail=0
for i in $(seq 20); do
    openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:ec -in "$T/d" -out "$T/s.$i" \
        -pkeyopt digest:sha256 2>>"$T/unix.err" || unix_fail=$((unix_fail + 1))
done
cnf=$(ks_write_tcp_cnf v6 "$TCP6" "$T/fe1.key")
for i in $(seq 5); do
    with_cnf "$cnf" openssl pkeyutl -sign -inkey keystore:ec -in "$T/d" -out "$T/t.$i" \
        -pkeyopt digest:sha256 2>>"$T/tcp.err" || tcp_fail=$((tcp_fail + 1))
done
kill $flooder 2>/dev/null || true; wait $flooder 2>/dev/null || true
note "$(cat "$T/flood.out" 2>/dev/null) unix failures=$unix_fail tcp [::1] failures=$tcp_fail"
[ "$unix_fail" = 0 ] || { head -3 "$T/unix.err"; fail "$unix_fail of 20 local signatures failed during the flood"; }
[ "$tcp_fail" = 0 ] || { head -3 "$T/tcp.err"; fail "$tcp_fail of 5 TCP signatures from ::1 failed during the flood"; }
grep -q "max_unauthenticated_per_address (16) reached" "$T/keystored.log" \
    || fail "the per-address limit was not logged"
kill -0 "$KS_PID" || fail "server died"
pass "1,100 idle TCP connections: 20 local and 5 remote (::1) signatures, no failure"

# 2. a first frame announcing 65,000 bytes: closed when its header arrives,
#    not after frame_timeout (10 s) with a 64 KiB buffer waiting
out=$($ATTACK bigheader 127.0.0.1 "$PORT4" 65000 8)
note "oversized first frame: $out"
case "$out" in "closed after 0."*) ;; *) fail "oversized first frame not refused at once: $out" ;; esac
grep -q "first frame announces 65000 bytes, not a keystore TCP handshake" "$T/keystored.log" \
    || fail "refusal of the oversized first frame not logged"
pass "a first frame of the wrong length is refused on its header"
