#!/usr/bin/env bash
# Reload without restart (SIGHUP and keystorectl reload): a changed access
# list, authorized clients file or certificate file applies to the running
# server, connections that stay allowed keep working, and a new
# configuration with an error is refused whole, the old one staying in
# force, with FILE:LINE in the log and in keystorectl's message.
#
# Attacks (they succeed against a keystored without reload, which ignores
# SIGHUP): revoking a uid in the access list, or a TCP client in
# authorized_clients, must take effect without a restart, including for the
# revoked client's connection that is already open; a broken list whose
# first line grants everything must not be half-applied.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_remote.sh"
[ "$(id -u)" = 0 ] || fail "this test runs a client as another uid (setpriv): run it as root (CI does)"
id -u kstest >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin kstest
KSTEST_UID=$(id -u kstest)

# (stranger is granted too: it becomes an authorized client by a reload below,
# and a TCP client sees only keys the list grants it)
echo "web sign uid:0 tcp:fe1 tcp:fe2 tcp:stranger" > "$T/acl"
ks_start_remote "acl = $T/acl"
PID0=$KS_PID
ks_ctl generate web --type ec >/dev/null || fail "generate web"

chmod 711 "$T"
mkdir -m 0777 "$T/pub"
printf 'to be signed %s' "$RANDOM" > "$T/pub/msg"
openssl dgst -sha256 -binary "$T/pub/msg" > "$T/pub/d"
chmod 644 "$T/pub/d"
# kstest may open the client socket (group keystore); the access list decides
ks_ensure_accounts
KSGID=$(getent group keystore | cut -d: -f3)
as_kstest() { setpriv --reuid=kstest --regid=kstest --groups="$KSGID" "$@"; }
kstest_sign() { as_kstest openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:web -in "$T/pub/d" -out "$T/pub/s"; }
# SIGHUP and wait for the reload's log line (the signal is asynchronous)
hup() {
    local n i
    n=$(grep -c 'reload (SIGHUP)' "$T/keystored.log" || true)
    kill -HUP "$KS_PID"
    for i in $(seq 200); do
        [ "$(grep -c 'reload (SIGHUP)' "$T/keystored.log" || true)" -gt "$n" ] && return 0
        sleep 0.05
    done
    cat "$T/keystored.log" >&2; fail "no log line for a SIGHUP reload"
}

# long-lived clients that must never notice a reload: uid 0 over Unix, fe2 over TCP
export KEYSTORE_TIMEOUT=5
OPENSSL_CONF=$(ks_write_cnf) "$KS_BUILD_ROOT/tests/sigloop" keystore:web "$T/stop" 120 > "$T/loop-unix" 2>&1 &
LOOP_UNIX=$!
cnf_fe1=$(ks_write_tcp_cnf fe1 "$TCP4" "$T/fe1.key")
cnf_fe2=$(ks_write_tcp_cnf fe2 "$TCP4" "$T/fe2.key")
with_cnf "$cnf_fe2" "$KS_BUILD_ROOT/tests/sigloop" keystore:web "$T/stop" 120 > "$T/loop-fe2" 2>&1 &
LOOP_FE2=$!
with_cnf "$cnf_fe1" "$KS_BUILD_ROOT/tests/sigloop" keystore:web "$T/stop-fe1" 120 > "$T/loop-fe1" 2>&1 &
LOOP_FE1=$!
sleep 0.5

# 1. grant by SIGHUP: uid kstest is denied, then allowed without a restart
expect_fail "no key named 'web' that uid $KSTEST_UID may use" kstest_sign
echo "web sign uid:0 uid:kstest tcp:fe1 tcp:fe2 tcp:stranger" > "$T/acl"
hup
kstest_sign || { tail "$T/keystored.log"; fail "uid kstest not allowed after the SIGHUP reload"; }
grep -q "reload (SIGHUP): access list $T/acl: 1 rule" "$T/keystored.log" || fail "SIGHUP reload not logged"
pass "SIGHUP: a new access-list rule applies without a restart"

# 2. revoke by keystorectl reload (attack: the revoked uid keeps signing)
echo "web sign uid:0 tcp:fe1 tcp:fe2 tcp:stranger" > "$T/acl"
out=$(ks_ctl reload) || fail "keystorectl reload: $out"
grep -q "^reloaded: access list $T/acl: 1 rule; 2 authorized TCP clients in $T/authorized_clients; 0 certificate chains changed$" <<<"$out" \
    || fail "keystorectl reload prints: $out"
expect_fail "no key named 'web' that uid $KSTEST_UID may use" kstest_sign
pass "keystorectl reload: a revoked uid is denied at once"

# 3. a broken list is refused whole: line 1 would allow everyone, line 2 is wrong
printf 'web sign *\nweb sign uid:no-such-user-here\n' > "$T/acl"
set +e; out=$(ks_ctl reload 2>&1); rc=$?; set -e
[ $rc = 3 ] || fail "keystorectl reload of a broken list exits $rc, not 3: $out"
grep -q "keystorectl: ERROR_RELOAD_REFUSED: $T/acl:2: 'uid:no-such-user-here': unknown user; the previous configuration stays in force" <<<"$out" \
    || fail "refusal message: $out"
grep -q "error: reload (keystorectl reload) refused: $T/acl:2: 'uid:no-such-user-here': unknown user" "$T/keystored.log" \
    || fail "refusal not logged with FILE:LINE"
expect_fail "no key named 'web' that uid $KSTEST_UID may use" kstest_sign
hup
grep -q "reload (SIGHUP) refused: $T/acl:2:" "$T/keystored.log" || fail "SIGHUP refusal not logged"
expect_fail "no key named 'web' that uid $KSTEST_UID may use" kstest_sign
ks_ctl status | grep -q "^last reload: .* REFUSED: $T/acl:2: 'uid:no-such-user-here': unknown user (2 accepted, 2 refused)$" \
    || { ks_ctl status; fail "status does not show the refused reload"; }
# a missing file is refused too, naming it
mv "$T/acl" "$T/acl.moved"
expect_fail "ERROR_RELOAD_REFUSED: access list: cannot open $T/acl: No such file or directory" ks_ctl reload
mv "$T/acl.moved" "$T/acl"
echo "web sign uid:0 tcp:fe1 tcp:fe2 tcp:stranger" > "$T/acl"
ks_ctl reload >/dev/null || fail "reload of the repaired list"
pass "a broken or missing access list is refused whole (exit 3, FILE:LINE logged); the old rules stay"

# 4. authorized clients: add the stranger, remove fe1 (whose connection is open)
stranger_pub=$(ks_ctl server-pubkey "$T/stranger.key")
tcp_list() { env KEYSTORE_SERVER_PUBKEY="$SERVER_PUB" KEYSTORE_CLIENT_KEY="$T/$1.key" "$KEYSTORECTL" -s "$TCP4" list; }
expect_fail "is not in the server's authorized clients file" tcp_list stranger
tcp_list fe1 | grep -q '^web ' || fail "fe1 lists keys"
grep -v '^fe1 ' "$T/authorized_clients" > "$T/ac.new"
echo "stranger $stranger_pub" >> "$T/ac.new"
cp "$T/ac.new" "$T/authorized_clients"
hup
tcp_list stranger | grep -q '^web ' || fail "a client added by reload is refused"
expect_fail "is not in the server's authorized clients file" tcp_list fe1
for _ in $(seq 100); do grep -q "tcp client 'fe1' from .* is no longer in $T/authorized_clients (reloaded); closing" "$T/keystored.log" && break; sleep 0.05; done
grep -q "tcp client 'fe1' from .* is no longer in $T/authorized_clients (reloaded); closing" "$T/keystored.log" \
    || fail "fe1's open connection was not closed after its removal"
touch "$T/stop-fe1"; kill "$LOOP_FE1" 2>/dev/null || true; wait "$LOOP_FE1" 2>/dev/null || true
# a broken clients file: refused, the stranger keeps access
echo "stranger not-a-key" >> "$T/authorized_clients"
expect_fail "ERROR_RELOAD_REFUSED: $T/authorized_clients:3: 'not-a-key' is not a public key" ks_ctl reload
tcp_list stranger | grep -q '^web ' || fail "the stranger lost access through a refused reload"
cp "$T/ac.new" "$T/authorized_clients"
pass "authorized_clients reload adds a client and removes one (its open connection too); a broken file is refused"

# 5. certificates: the chain files are checked again; one written behind the
# server's back (not vouched for by the manifest) is refused, never attached
OPENSSL_CONF=$(ks_write_cnf) openssl req -new -x509 -key keystore:web -subj /CN=web -days 1 \
    -out "$T/web.pem" || fail "self-signed certificate for web"
openssl x509 -in "$T/web.pem" -outform DER -out "$T/web.der"
ks_ctl attach-cert web "$T/web.pem" >/dev/null || fail "attach-cert"
out=$(ks_ctl reload) || fail "reload with an attached certificate: $out"
grep -q "0 certificate chains changed$" <<<"$out" || fail "reload output: $out"
ks_ctl info web | grep -q ", 1 certificate, " || fail "the attached certificate is gone after reload"
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/stray.key" \
    -subj /CN=other -days 1 -outform DER -out "$T/other.der" 2>/dev/null || fail "a certificate of another key"
cp "$T/keys/web.crt" "$T/web.crt.saved"
install -m 0644 "$T/other.der" "$T/keys/web.crt"
expect_fail "ERROR_RELOAD_REFUSED: $T/keys/web.crt: " ks_ctl reload
ks_ctl info web | grep -q ", 1 certificate, " || fail "web's chain changed through a refused reload"
cp "$T/web.crt.saved" "$T/keys/web.crt"
ks_ctl reload >/dev/null || fail "reload with the original chain file"
pass "certificates: re-checked on reload; a chain file changed behind the server's back is refused, the attached chain stays"

# 6. the clients that stayed allowed never saw an error, and the server never restarted
touch "$T/stop"
wait "$LOOP_UNIX" || fail "unix client: $(cat "$T/loop-unix")"
wait "$LOOP_FE2" || fail "tcp client fe2: $(cat "$T/loop-fe2")"
for f in loop-unix loop-fe2; do
    grep -Eq "^signed=[1-9][0-9]* retries=0 after_failure=0 bad=0$" "$T/$f" || fail "$f: $(cat "$T/$f")"
done
[ "$KS_PID" = "$PID0" ] && kill -0 "$KS_PID" || fail "keystored restarted"
grep -q "keystored-conf" /proc/*/comm 2>/dev/null || fail "no configuration reader process"
pass "existing connections kept working through every reload: $(cat "$T/loop-unix") / $(cat "$T/loop-fe2")"

# 7. a Reload on the client socket is refused (admin only) and changes nothing
echo "web sign *" > "$T/acl"
expect_fail "ERROR_PERMISSION_DENIED: Reload is an admin operation: use the admin socket" \
    "$KEYSTORECTL" -s "$KEYSTORE_SERVER" reload
expect_fail "no key named 'web' that uid $KSTEST_UID may use" kstest_sign
pass "Reload over the client socket refused"
