#!/usr/bin/env bash
# The whole job end to end: install, build, start keystored, create keys inside
# it, sign, verify, decrypt, and serve TLS with a key the web server never sees.
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
build=${KS_BUILD:-$src/build}
# Each run gets its own directory unless KS_DEMO_DIR names one to reuse.
demo=${KS_DEMO_DIR:-}
step() { printf '\n== %s\n' "$*"; }

step "installing packages and building"
"$src/tests/install-deps.sh"
[ -f "$build/build.ninja" ] || meson setup "$build" "$src" >/dev/null
meson compile -C "$build" >/dev/null
export OPENSSL_MODULES="$build/provider" OPENSSL_CONF=/dev/null
ctl="$build/keystore-server/keystorectl"

# Stop the keystored of an earlier run in $1 -- only if the pid still names it
# (a keystored started with this directory's config), never whatever the pid
# file says: the process may be long gone and the pid reused.
stop_previous() {
    local pid args
    pid=$(cat "$1/keystored.pid" 2>/dev/null) || return 0
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    args=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 0
    case "$args" in
    *keystored" -c $1/keystored.conf "*) ;;
    *) echo "not stopping pid $pid from $1/keystored.pid: it is not this demo's keystored"; return 0 ;;
    esac
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    echo "keystored (pid $pid) did not stop" >&2; exit 1
}
if [ -z "$demo" ]; then
    demo=$(mktemp -d /tmp/keystore-demo.XXXXXX)
elif [ -e "$demo" ]; then
    [ -f "$demo/keystored.conf" ] || { echo "$demo exists and is not a demo directory" >&2; exit 1; }
    stop_previous "$demo"
    rm -rf "$demo"
fi
step "starting keystored (sockets and sealed keys in $demo)"
mkdir -p "$demo/keys"; chmod 700 "$demo"
"$build/keystore-server/keystored" --gen-master-key "$demo/master.key"
# Closed until granted: the client socket is 0660 for one group (keystore,
# made by install-deps.sh; not root: a group of ours), and the access list
# grants every key to the user running this demo only.
group=keystore; [ "$(id -u)" = 0 ] || group=$(id -gn)
echo "*  sign,decrypt  uid:$(id -u)" > "$demo/acl"
cat > "$demo/keystored.conf" <<CONF
socket = unix:$demo/keystored.sock
socket_group = $group
admin_socket = unix:$demo/admin.sock
key_dir = $demo/keys
master_key = $demo/master.key
acl = $demo/acl
CONF
dev=; [ "$(id -u)" = 0 ] || dev=--dev   # mlockall needs root or a large RLIMIT_MEMLOCK
"$build/keystore-server/keystored" -c "$demo/keystored.conf" $dev >"$demo/keystored.log" 2>&1 &
echo $! > "$demo/keystored.pid"
for _ in $(seq 100); do [ -S "$demo/admin.sock" ] && break; sleep 0.1; done
[ -S "$demo/admin.sock" ] || { cat "$demo/keystored.log"; exit 1; }
export KEYSTORE_SERVER="unix:$demo/keystored.sock" KEYSTORE_ADMIN="unix:$demo/admin.sock"
P=(-provider default -provider keystore)

step "generating keys inside the server"
"$ctl" generate web --type ec --curve P-256
"$ctl" generate vault --type rsa --bits 2048 --usage decrypt
"$ctl" list

step "signing with keystore:web, verifying with its public key only"
echo "release 1.0 tarball" > "$demo/release.txt"
openssl dgst "${P[@]}" -sha256 -sign keystore:web -out "$demo/release.sig" "$demo/release.txt"
"$ctl" pubkey web > "$demo/web.pub"
openssl dgst -sha256 -verify "$demo/web.pub" -signature "$demo/release.sig" "$demo/release.txt"

step "decrypting with keystore:vault (RSA-OAEP, SHA-256)"
"$ctl" pubkey vault > "$demo/vault.pub"
echo "the launch code is 0000" > "$demo/secret.txt"
openssl pkeyutl -encrypt -pubin -inkey "$demo/vault.pub" -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt rsa_oaep_md:sha256 -in "$demo/secret.txt" -out "$demo/secret.enc"
openssl pkeyutl "${P[@]}" -decrypt -inkey keystore:vault -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt rsa_oaep_md:sha256 -in "$demo/secret.enc"

step "serving TLS 1.3 with keystore:web"
openssl req "${P[@]}" -new -x509 -key keystore:web -subj /CN=localhost -days 30 -out "$demo/web.crt"
port=$(( 20000 + RANDOM % 20000 ))
openssl s_server "${P[@]}" -accept "127.0.0.1:$port" -key keystore:web -cert "$demo/web.crt" \
    -naccept 1 -www >"$demo/s_server.log" 2>&1 &
srv=$!
for _ in $(seq 100); do grep -q ACCEPT "$demo/s_server.log" && break; sleep 0.1; done
out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client -connect "127.0.0.1:$port" \
    -CAfile "$demo/web.crt" -verify_return_error -ign_eof 2>&1) || { echo "$out"; exit 1; }
wait $srv 2>/dev/null || true
grep -E "^(New, |Verify return code|HTTP/)" <<<"$out"
grep -q "Verify return code: 0" <<<"$out"
echo "TLS handshake with a keystore key: OK (certificate verified)"

step "done"
echo "keystored is still running (pid $(cat "$demo/keystored.pid")); try:"
echo "  export OPENSSL_MODULES=$build/provider KEYSTORE_SERVER=$KEYSTORE_SERVER KEYSTORE_ADMIN=$KEYSTORE_ADMIN"
echo "  $ctl list"
echo "stop it with: kill \$(cat $demo/keystored.pid)"
