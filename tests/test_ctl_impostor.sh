#!/usr/bin/env bash
# keystorectl sends private keys (import) only to an admin socket served by
# root, by the server's user (keystored) or by the caller itself.  Attack: an
# unprivileged local user who can create the admin socket path first (say
# after a reboot, before keystored starts, in a directory it may write)
# would otherwise receive the imported key in clear.
# (/usr/bin/python3: the impostor runs as nobody, who cannot use root's pyenv.)
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || fail "this test runs as root (it starts the impostor as nobody)"
mkdir -p -m 0777 "$T/pub"      # a directory an unprivileged user may write
chmod 0755 "$T"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/victim.pem" 2>/dev/null
openssl pkey -in "$T/victim.pem" -outform DER -out "$T/victim.der"
touch "$T/pub/captured"; chmod 0666 "$T/pub/captured"

setpriv --reuid nobody --regid nogroup --clear-groups \
    /usr/bin/python3 "$KS_SOURCE_ROOT/tests/fake_admin.py" "$T/pub/admin.sock" "$T/pub/captured" \
    > "$T/impostor.log" 2>&1 &
imp=$!
trap 'kill $imp 2>/dev/null; cleanup' EXIT
for i in $(seq 1 100); do [ -S "$T/pub/admin.sock" ] && break; sleep 0.05; done
[ -S "$T/pub/admin.sock" ] || { cat "$T/impostor.log"; fail "impostor did not start"; }

expect_fail "refusing to talk to the admin socket at unix:$T/pub/admin.sock: it is served by uid [0-9]+ \(nobody\)" \
    "$KEYSTORECTL" -s "unix:$T/pub/admin.sock" import victim "$T/victim.pem"
python3 - "$T/pub/captured" "$T/victim.der" <<'PY' || fail "the impostor received the private key"
import sys
got = open(sys.argv[1], 'rb').read()
der = open(sys.argv[2], 'rb').read()
sys.exit(1 if der[-32:] in got or len(got) > 0 else 0)
PY
pass "keystorectl refuses an admin socket served by nobody; nothing was sent"

# the real server (root, dropping to keystored) is accepted
ks_start
ks_ctl import victim "$T/victim.pem" >/dev/null || fail "import into the real server"
pass "the real keystored's admin socket is accepted"
