# Shared helpers for the shell tests.  Each test sources this file, calls
# ks_start to get its own keystored on a private socket and key directory,
# and drives the real openssl binary against it.
#
# meson passes: KS_BUILD_ROOT (build dir), KS_SOURCE_ROOT (source dir).
set -euo pipefail

: "${KS_BUILD_ROOT:?run through meson test}"
: "${KS_SOURCE_ROOT:?run through meson test}"

KEYSTORED="$KS_BUILD_ROOT/keystore-server/keystored"
KEYSTORECTL="$KS_BUILD_ROOT/keystore-server/keystorectl"
export OPENSSL_MODULES="$KS_BUILD_ROOT/provider"
# Never let a system openssl.cnf of the machine change what a test sees.
export OPENSSL_CONF=/dev/null

T=$(mktemp -d /tmp/kst.XXXXXX)
KS_PID=
cleanup() {
    local rc=$?
    ks_stop || true
    if [ "${KS_KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
    exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
note() { echo "-- $*"; }

# The accounts an installed keystored has (dist/keystored.sysusers): the
# keystored user it drops to and the keystore group of the client socket.
ks_ensure_accounts() {
    [ "$(id -u)" = 0 ] || return 0
    id -u keystored >/dev/null 2>&1 || useradd --system --no-create-home \
        --shell /usr/sbin/nologin keystored
    getent group keystore >/dev/null || groupadd --system keystore
}

# Write a config and start keystored.  Extra config lines may be given as
# arguments ("allow_client_generate = yes").
ks_start() {
    mkdir -p "$T/keys"
    # a confined server cannot unlink its sockets at exit (they are outside its jail)
    rm -f "$T/ks.sock" "$T/admin.sock"
    [ -f "$T/master.key" ] || "$KEYSTORED" --gen-master-key "$T/master.key" >/dev/null
    {
        echo "socket = unix:$T/ks.sock"
        echo "admin_socket = unix:$T/admin.sock"
        echo "key_dir = $T/keys"
        echo "master_key = $T/master.key"
        # two workers unless the test sets its own
        case " $* " in *" workers = "*) ;; *) echo "workers = 2" ;; esac
        # not root: the client socket can only go to one of our own groups
        if [ "$(id -u)" != 0 ]; then
            case " $* " in *" socket_group = "*) ;; *) echo "socket_group = $(id -gn)" ;; esac
        fi
        for line in "$@"; do echo "$line"; done
        # set by tests/run-sanitizers.sh ("seccomp = no")
        [ -z "${KS_EXTRA_CONFIG:-}" ] || echo "$KS_EXTRA_CONFIG"
    } > "$T/keystored.conf"
    local dev=
    if [ "$(id -u)" = 0 ]; then
        # as root keystored chroots into an empty jail and drops to its user
        ks_ensure_accounts
        mkdir -p -m 0555 "$T/jail"
        grep -q '^jail' "$T/keystored.conf" || echo "jail = $T/jail" >> "$T/keystored.conf"
    else
        dev=--dev
    fi
    "$KEYSTORED" -c "$T/keystored.conf" $dev ${KS_EXTRA_FLAGS:-} >"$T/keystored.log" 2>&1 &
    KS_PID=$!
    export KEYSTORE_SERVER="unix:$T/ks.sock"
    export KEYSTORE_ADMIN="unix:$T/admin.sock"
    local i
    # keystored serves within about 50 ms (100 under ASan): poll finely
    for i in $(seq 1 1000); do
        if [ -S "$T/ks.sock" ] && [ -S "$T/admin.sock" ]; then return 0; fi
        if ! kill -0 "$KS_PID" 2>/dev/null; then
            cat "$T/keystored.log" >&2
            fail "keystored exited during start-up"
        fi
        sleep 0.01
    done
    cat "$T/keystored.log" >&2
    fail "keystored did not create its sockets within 10 s"
}

ks_stop() {
    if [ -n "$KS_PID" ] && kill -0 "$KS_PID" 2>/dev/null; then
        kill "$KS_PID" 2>/dev/null || true
        wait "$KS_PID" 2>/dev/null || true
    fi
    KS_PID=
}

ks_ctl() { "$KEYSTORECTL" "$@"; }

# An openssl.cnf that loads the default and keystore providers, as an
# operator would write it; prints its path.  With arguments:
# ks_write_cnf NAME SERVER [LINE...] writes $T/NAME.cnf for that server with
# extra lines in the keystore section.
ks_write_cnf() {
    local f="$T/${1:-openssl}.cnf" server=${2:-$KEYSTORE_SERVER} line
    shift $(( $# < 2 ? $# : 2 ))
    {
        cat <<CNF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
keystore = keystore_sect
[default_sect]
activate = 1
[keystore_sect]
module = $OPENSSL_MODULES/keystore.so
server = $server
CNF
        for line in "$@"; do echo "$line"; done
        echo "activate = 1"
    } > "$f"
    echo "$f"
}

# openssl with both providers loaded on the command line, as users do.
PROV=(-provider default -provider keystore)

# Assert that a command fails and that its output matches a pattern.
expect_fail() {
    local pattern=$1; shift
    local out
    if out=$("$@" 2>&1); then
        echo "$out" >&2
        fail "expected failure: $*"
    fi
    if ! grep -Eq -- "$pattern" <<<"$out"; then
        echo "$out" >&2
        fail "error output of '$*' does not match /$pattern/"
    fi
}

# Damage one byte of a file in place: invert it, so the byte always changes
# (writing a fixed value is a no-op 1 time in 256, when the byte already holds it).
flip_byte() {
    local file=$1 off=$2 b
    b=$(od -An -tu1 -j "$off" -N1 "$file" | tr -d ' ')
    [ -n "$b" ] || fail "flip_byte: $file has no byte at offset $off"
    printf "\\x$(printf %02x $((b ^ 0xff)))" | dd of="$file" bs=1 seek="$off" conv=notrunc 2>/dev/null
}

# Free loopback TCP ports, one per argument name: free_ports A B sets $A and
# $B.  The kernel picks them (all bound at once, so they differ) instead of a
# random guess that may hit a port in use.
free_ports() {
    local ports name
    ports=$(/usr/bin/python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$#") || fail "free_ports: no free loopback port"
    for name in "$@"; do
        printf -v "$name" '%s' "${ports%% *}"
        ports=${ports#* }
    done
}
