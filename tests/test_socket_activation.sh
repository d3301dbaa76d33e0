#!/usr/bin/env bash
# Socket activation: keystored takes listening sockets passed the way systemd
# passes them (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES, descriptors from 3),
# created by tests/sd_launch.py, and serves signing and admin requests on them.
. "$(dirname "$0")/lib.sh"
LAUNCH="$KS_SOURCE_ROOT/tests/sd_launch.py"

# Config and master key as ks_start writes them (socket paths given as arguments).
write_conf() {
    mkdir -p "$T/keys"
    [ -f "$T/master.key" ] || "$KEYSTORED" --gen-master-key "$T/master.key" >/dev/null
    {
        echo "socket = unix:$1"
        echo "admin_socket = unix:$2"
        echo "key_dir = $T/keys"
        echo "master_key = $T/master.key"
        echo "workers = 2"
    } > "$T/keystored.conf"
    if [ "$(id -u)" = 0 ]; then
        ks_ensure_accounts
        mkdir -p -m 0555 "$T/jail"
        echo "jail = $T/jail" >> "$T/keystored.conf"
    fi
}
dev=; [ "$(id -u)" = 0 ] || dev=--dev

# launch LAUNCHER-ARGS...: start keystored under the launcher, wait until it serves
launch() {
    : > "$T/keystored.log"
    "$LAUNCH" "$@" -- "$KEYSTORED" -c "$T/keystored.conf" $dev >"$T/keystored.log" 2>&1 &
    KS_PID=$!
    for _ in $(seq 200); do
        grep -q "seccomp filter installed" "$T/keystored.log" && return 0
        kill -0 "$KS_PID" 2>/dev/null || { cat "$T/keystored.log" >&2; fail "keystored exited: $*"; }
        sleep 0.05
    done
    cat "$T/keystored.log" >&2
    fail "keystored did not start under the launcher"
}

# launch_fails PATTERN LAUNCHER-ARGS...: keystored must exit 1 with PATTERN in its log
launch_fails() {
    local pattern=$1 rc=0; shift
    "$LAUNCH" "$@" -- "$KEYSTORED" -c "$T/keystored.conf" $dev >"$T/fail.log" 2>&1 || rc=$?
    [ "$rc" = 1 ] || { cat "$T/fail.log" >&2; fail "expected exit 1, got $rc: $*"; }
    grep -Eq -- "$pattern" "$T/fail.log" || { cat "$T/fail.log" >&2; fail "log does not match /$pattern/"; }
}

# 1. Named sockets at paths the configuration does not mention: the names decide.
write_conf "$T/conf-client.sock" "$T/conf-admin.sock"
launch "client=$T/sd-client.sock:0666" "admin=$T/sd-admin.sock:0600"
grep -q "socket activation: received $T/sd-client.sock named client on descriptor 3" "$T/keystored.log" \
    || { cat "$T/keystored.log"; fail "no log line for the client socket"; }
grep -q "listening on unix:$T/sd-admin.sock (admin socket from socket activation, mode 0600)" \
    "$T/keystored.log" || { cat "$T/keystored.log"; fail "no log line for the admin socket"; }
grep -q "warning: socket activation: client socket is $T/sd-client.sock, the configuration says" \
    "$T/keystored.log" || fail "no warning that the configured path differs"
[ ! -e "$T/conf-client.sock" ] && [ ! -e "$T/conf-admin.sock" ] \
    || fail "keystored bound the configured paths although sockets were passed"
export KEYSTORE_SERVER="unix:$T/sd-client.sock" KEYSTORE_ADMIN="unix:$T/sd-admin.sock"
ks_ctl generate web --type ec >/dev/null || fail "generate over the passed admin socket"
ks_ctl generate vault --type rsa --usage decrypt >/dev/null || fail "generate rsa over the passed admin socket"
echo "socket activated" > "$T/data"
openssl dgst "${PROV[@]}" -sha256 -sign keystore:web -out "$T/sig" "$T/data" \
    || fail "sign over the passed client socket"
ks_ctl pubkey web > "$T/web.pub"
openssl dgst -sha256 -verify "$T/web.pub" -signature "$T/sig" "$T/data" >/dev/null \
    || fail "signature made over the passed socket does not verify"
ks_ctl pubkey vault > "$T/vault.pub"
openssl pkeyutl -encrypt -pubin -inkey "$T/vault.pub" -pkeyopt rsa_padding_mode:oaep \
    -in "$T/data" -out "$T/enc"
openssl pkeyutl "${PROV[@]}" -decrypt -inkey keystore:vault -pkeyopt rsa_padding_mode:oaep \
    -in "$T/enc" -out "$T/dec" || fail "decrypt over the passed client socket"
cmp -s "$T/data" "$T/dec" || fail "decrypted text differs"
# the roles are not mixed up: admin operations are refused on the client socket
expect_fail "admin operation" ks_ctl -s "unix:$T/sd-client.sock" generate nope --type ec
ks_stop
pass "named sockets (client, admin) are adopted: sign, decrypt, generate; roles kept apart"

# 2. Without LISTEN_FDNAMES, sockets are matched to the configuration by path.
write_conf "$T/c.sock" "$T/a.sock"
launch --no-names "$T/a.sock:0600" "$T/c.sock:0640"
grep -q "listening on unix:$T/c.sock (client socket from socket activation, mode 0640)" \
    "$T/keystored.log" || { cat "$T/keystored.log"; fail "unnamed client socket not matched by path"; }
grep -q "note: client socket $T/c.sock has mode 0640 from systemd" "$T/keystored.log" \
    || fail "no note that socket_mode is not applied to a passed socket"
grep -q "note: client socket $T/c.sock has group 0 from systemd (SocketGroup=), socket_group keystore is not applied" \
    "$T/keystored.log" || fail "no note that socket_group is not applied to a passed socket"
KEYSTORE_SERVER="unix:$T/c.sock" openssl dgst "${PROV[@]}" -sha256 -sign keystore:web \
    -out "$T/sig2" "$T/data" || fail "sign over the unnamed passed socket"
ks_ctl -s "unix:$T/a.sock" list | grep -q '^web ' || fail "list over the unnamed admin socket"
ks_stop
pass "unnamed sockets are matched to socket/admin_socket by path"

# 3. LISTEN_PID of another process: not ours, keystored binds its own sockets.
rm -f "$T/c.sock" "$T/a.sock"
write_conf "$T/c.sock" "$T/a.sock"
launch --wrong-pid "client=$T/other.sock:0666"
grep -q "ignoring LISTEN_FDS: LISTEN_PID=" "$T/keystored.log" || fail "no log line for a foreign LISTEN_PID"
grep -q "listening on unix:$T/c.sock (client socket, mode 0660, group keystore)" "$T/keystored.log" \
    || { cat "$T/keystored.log"; fail "did not bind the configured socket"; }
ks_ctl -s "unix:$T/a.sock" list >/dev/null || fail "list after ignoring LISTEN_FDS"
ks_stop
pass "LISTEN_PID of another process is ignored"

# 4. Mistakes are refused at start-up with a message saying what to fix.
launch_fails "admin socket $T/x-admin.sock has mode 0666; it must be 0600" \
    "client=$T/x-client.sock:0666" "admin=$T/x-admin.sock:0666"
launch_fails "nothing in the configuration uses $T/x-extra.sock named metrics \\(descriptor 5\\)" \
    "client=$T/x-client.sock" "admin=$T/x-admin.sock:0600" "metrics=$T/x-extra.sock"
launch_fails "nothing in the configuration uses $T/x-stray.sock \\(descriptor 3\\)" \
    --no-names "$T/x-stray.sock"
pass "an admin socket open to others and unclaimed sockets are refused"

# 5. Sockets passed in belong to whoever created them (systemd keeps them
# across restarts): keystored must not remove them when it stops.  Run as an
# unprivileged user so there is no chroot that would hide the files anyway.
U="$T/user"
mkdir -p "$U/keys"
cp "$T/master.key" "$U/master.key"
cat > "$U/keystored.conf" <<CONF
socket = unix:$U/c.sock
admin_socket = unix:$U/a.sock
key_dir = $U/keys
master_key = $U/master.key
CONF
chown -R keystored: "$U"; chmod 711 "$T"
setpriv --reuid=keystored --regid=keystored --clear-groups --inh-caps=-all \
    "$LAUNCH" "client=$U/c.sock" "admin=$U/a.sock:0600" -- \
    "$KEYSTORED" -c "$U/keystored.conf" --dev >"$U/log" 2>&1 &
KS_PID=$!
for _ in $(seq 200); do grep -q "seccomp filter installed" "$U/log" && break; sleep 0.05; done
grep -q "admin socket from socket activation" "$U/log" || { cat "$U/log"; fail "unprivileged start"; }
ks_ctl -s "unix:$U/a.sock" list >/dev/null || fail "list as an unprivileged socket-activated server"
ks_stop
grep -q "keystored: stopped" "$U/log" || { cat "$U/log"; fail "no clean stop"; }
[ -S "$U/c.sock" ] && [ -S "$U/a.sock" ] || fail "keystored removed sockets it was given"
pass "passed sockets are left in place at exit"
