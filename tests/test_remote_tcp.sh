#!/usr/bin/env bash
# keystored over TCP on 127.0.0.1 and ::1: the provider signs and decrypts
# through the encrypted, mutually authenticated channel; unknown client keys
# and a wrong pinned server key are refused with clear errors; altered and
# replayed frames close the connection without a reply; the per-client
# connection limit holds; key files must be private; the audit log records
# every case and no secret.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_remote.sh"
# TCP clients use no key unless the access list grants it (test_safe_defaults.sh)
echo "*  sign,decrypt  tcp:fe*" > "$T/acl"
ks_start_remote "max_connections_per_client = 3" "acl = $T/acl"

ks_ctl generate web --type rsa --bits 2048 --usage sign,decrypt >/dev/null || fail "generate web"
ks_ctl generate ec --type ec >/dev/null || fail "generate ec"
ks_ctl pubkey web > "$T/web.pub"
ks_ctl pubkey ec > "$T/ec.pub"
PLAIN="remote secret $RANDOM$RANDOM"
printf '%s' "$PLAIN" > "$T/msg"
openssl dgst -sha256 -binary "$T/msg" > "$T/d"

# 1. an authorized client signs and decrypts, over IPv4 and IPv6
for addr in "$TCP4" "$TCP6"; do
    cnf=$(ks_write_tcp_cnf fe1 "$addr" "$T/fe1.key")
    for key in web ec; do
        rm -f "$T/s"
        with_cnf "$cnf" openssl pkeyutl -sign -inkey keystore:$key -in "$T/d" -out "$T/s" \
            -pkeyopt digest:sha256 || fail "sign with $key over $addr"
        openssl pkeyutl -verify -pubin -inkey "$T/$key.pub" -in "$T/d" -sigfile "$T/s" \
            -pkeyopt digest:sha256 >/dev/null \
            || fail "signature by $key over $addr does not verify"
        cp "$T/s" "$T/sig.$key"
    done
    openssl pkeyutl -encrypt -pubin -inkey "$T/web.pub" -in "$T/msg" -out "$T/ct" \
        -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256
    rm -f "$T/pt"
    with_cnf "$cnf" openssl pkeyutl -decrypt -inkey keystore:web -in "$T/ct" -out "$T/pt" \
        -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 || fail "decrypt over $addr"
    cmp -s "$T/msg" "$T/pt" || fail "decrypted text differs over $addr"
    pass "sign (RSA, ECDSA) and decrypt over $addr through openssl.cnf"
done

# the environment variables work as well as openssl.cnf
KEYSTORE_SERVER=$TCP4 KEYSTORE_SERVER_PUBKEY=$SERVER_PUB KEYSTORE_CLIENT_KEY=$T/fe1.key \
    openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:ec -in "$T/d" -out "$T/s2" \
    || fail "sign with KEYSTORE_SERVER/KEYSTORE_SERVER_PUBKEY/KEYSTORE_CLIENT_KEY"
pass "environment configuration"

# 2. a client key the server does not know: refused in the handshake
cnf=$(ks_write_tcp_cnf stranger "$TCP4" "$T/stranger.key")
expect_fail "refused this client: its public key .* is not in the server's authorized clients file; add a line" \
    with_cnf "$cnf" openssl pkeyutl -sign -inkey keystore:web -in "$T/d" -out "$T/s"
# labelled as a refusal, not as "unreachable" (the server answered)
out=$(with_cnf "$cnf" openssl pkeyutl -sign -inkey keystore:web -in "$T/d" -out "$T/s" 2>&1 || true)
grep -q "keystore server refused this client" <<<"$out" || { echo "$out"; fail "refusal not labelled as one"; }
grep -q "unreachable" <<<"$out" && { echo "$out"; fail "a refusal is labelled unreachable"; }
grep -q "client key .* is not in $T/authorized_clients" "$T/keystored.log" || fail "server log does not name the unknown key"
pass "unknown client key refused during the handshake"

# 3. the client pinned another server's key: it refuses to go on
OTHER_PUB=$("$KEYSTORED" --gen-server-key "$T/other.key" 2>/dev/null)
cnf=$(ks_write_tcp_cnf wrongpin "$TCP6" "$T/fe1.key" "$OTHER_PUB")
expect_fail "pinned server public key is not this server's" \
    with_cnf "$cnf" openssl pkeyutl -sign -inkey keystore:web -in "$T/d" -out "$T/s"
expect_fail "keystore server is not the one whose key is pinned" \
    with_cnf "$cnf" openssl pkeyutl -sign -inkey keystore:web -in "$T/d" -out "$T/s"
cnf=$(ks_write_tcp_cnf badpin "$TCP6" "$T/fe1.key" "not-a-key")
expect_fail "pinned keystore server public key 'not-a-key' is not 44 base64 or 64 hex" \
    with_cnf "$cnf" openssl pkeyutl -sign -inkey keystore:web -in "$T/d" -out "$T/s"
pass "wrong pinned server key refused by the client"

# 4. a flipped bit and a replayed frame: closed without a reply
for addr in "$TCP4" "$TCP6"; do
    "$TCP_TAMPER" "$addr" "$SERVER_PUB" "$T/fe1.key" flip || fail "flipped frame over $addr"
    "$TCP_TAMPER" "$addr" "$SERVER_PUB" "$T/fe1.key" replay || fail "replayed frame over $addr"
done
n=$(grep -c "a frame failed authentication (altered, replayed or reordered in transit); closing without a reply" "$T/keystored.log" || true)
[ "$n" = 4 ] || fail "expected 4 authentication failures in the server log, found $n"
kill -0 "$KS_PID" || fail "server died"
pass "altered and replayed frames close the connection without a reply"

# 5. max_connections_per_client = 3
holds=()
for i in 1 2 3; do
    "$TCP_TAMPER" "$TCP4" "$SERVER_PUB" "$T/fe1.key" hold 4 > "$T/hold.$i" 2>&1 &
    holds+=($!)
done
for _ in $(seq 100); do
    [ "$(cat "$T"/hold.* | grep -c connected)" = 3 ] && break
    sleep 0.05
done
[ "$(cat "$T"/hold.* | grep -c connected)" = 3 ] || fail "three held connections did not come up"
expect_fail "already has max_connections_per_client connections open" \
    "$TCP_TAMPER" "$TCP4" "$SERVER_PUB" "$T/fe1.key" hold 0
"$TCP_TAMPER" "$TCP4" "$SERVER_PUB" "$T/fe2.key" hold 0 >/dev/null || fail "another client was limited too"
wait "${holds[@]}"
"$TCP_TAMPER" "$TCP4" "$SERVER_PUB" "$T/fe1.key" hold 0 >/dev/null || fail "limit not released after the connections closed"
pass "max_connections_per_client refuses the 4th connection of one client only"

# 6. private key files must be private; keys are never overwritten
cp "$T/fe1.key" "$T/loose.key"; chmod 0640 "$T/loose.key"
cnf=$(ks_write_tcp_cnf loose "$TCP4" "$T/loose.key")
expect_fail "loose.key has mode 0640: group and others must have no access \(chmod 600" \
    with_cnf "$cnf" openssl pkeyutl -sign -inkey keystore:web -in "$T/d" -out "$T/s"
out=$(with_cnf "$cnf" openssl pkeyutl -sign -inkey keystore:web -in "$T/d" -out "$T/s" 2>&1 || true)
grep -q "keystore provider setting is wrong" <<<"$out" && ! grep -q unreachable <<<"$out" \
    || { echo "$out"; fail "a loose client key file is not labelled as a setting problem"; }
expect_fail "refusing to overwrite" ks_ctl client-keygen fe1 -o "$T/fe1.key"
[ "$(ks_ctl server-pubkey "$T/server.key")" = "$SERVER_PUB" ] || fail "keystorectl server-pubkey"
pass "group-readable key file refused, no overwrite, server-pubkey"

# 7. the audit log: every case, and no secret
A=$T/audit.log
grep -q "id=tcp:fe1 peer=127\.0\.0\.1:[0-9]* op=sign key=web result=ok latency_us=[0-9]*$" "$A" || fail "audit: sign over IPv4"
grep -q "id=tcp:fe1 peer=\[::1\]:[0-9]* op=decrypt key=web result=ok" "$A" || fail "audit: decrypt over IPv6"
grep -q "id=tcp:- peer=127\.0\.0\.1:[0-9]* op=handshake key=- result=refused-unknown-client-key" "$A" || fail "audit: unknown client"
grep -q "op=handshake key=- result=refused-wrong-server-key" "$A" || fail "audit: wrong server key"
[ "$(grep -c "op=frame key=- result=refused-bad-authentication" "$A")" = 4 ] || fail "audit: tampered frames"
grep -q "id=tcp:- .* op=handshake key=- result=refused-too-many-connections" "$A" || fail "audit: connection limit"
python3 - "$A" "$T/keystored.log" "$PLAIN" "$T/sig.web" "$T/sig.ec" "$T/d" "$T"/fe1.key "$T/server.key" <<'PY' || fail "a secret is in the audit or server log"
import base64, sys
logs = [open(p, "rb").read() for p in sys.argv[1:3]]
needles = [sys.argv[3].encode()]
for p in sys.argv[4:7]:
    b = open(p, "rb").read()
    needles += [b, b[:16], b.hex().encode(), b.hex().upper().encode(), base64.b64encode(b)[:24]]
for p in sys.argv[7:9]:   # private keys: the base64 line
    needles += [l for l in open(p, "rb").read().split(b"\n") if l and not l.startswith(b"#")]
for log in logs:
    for n in needles:
        if n in log:
            print("found", n[:40]); sys.exit(1)
PY
pass "audit log records each case and holds no plaintext, signature, digest or private key"

# 8. the server refuses a server key that group or others can read
ks_stop
chmod 0644 "$T/server.key"
"$KEYSTORED" -c "$T/keystored.conf" > "$T/loose.log" 2>&1 && fail "keystored started with a world-readable server key"
grep -q "server_key: key file $T/server.key has mode 0644: group and others must have no access (chmod 600" "$T/loose.log" \
    || { cat "$T/loose.log"; fail "loose server key message"; }
pass "keystored refuses a group/other-readable server key"
