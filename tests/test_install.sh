#!/usr/bin/env bash
# `meson install` into a temporary root, then the demo flow from the installed
# files only: the installed keystored (under the capability bounding set of
# the installed systemd unit) and keystorectl, and the installed provider
# loaded through nothing but an openssl.cnf naming it (no -provider flags, no
# OPENSSL_MODULES).  Also: man pages and units are installed and valid.
. "$(dirname "$0")/lib.sh"
unset OPENSSL_MODULES KEYSTORE_SERVER KEYSTORE_ADMIN
# KS_PID may be strace (see start_installed): stop the keystored it traces too
ks_stop() {
    if [ -n "$KS_PID" ] && kill -0 "$KS_PID" 2>/dev/null; then
        local kids; kids=$(pgrep -P "$KS_PID" || true)
        kill $kids "$KS_PID" 2>/dev/null || true
        wait "$KS_PID" 2>/dev/null || true
    fi
    KS_PID=
}
D="$T/root"

meson install -C "$KS_BUILD_ROOT" --destdir "$D" --no-rebuild --quiet >"$T/install.log" 2>&1 \
    || { cat "$T/install.log"; fail "meson install --destdir"; }
meson introspect "$KS_BUILD_ROOT" --installed > "$T/installed.json"
# where NAME was installed (absolute path inside the real system)
where() {
    python3 - "$T/installed.json" "$1" <<'PY'
import json, os, sys
hits = [v for v in json.load(open(sys.argv[1])).values() if os.path.basename(v) == sys.argv[2]]
print(hits[0] if len(hits) == 1 else "")
PY
}
installed() {   # installed NAME DIR-PATTERN: print $D-path, fail unless in such a directory
    local p; p=$(where "$1")
    [ -n "$p" ] || fail "$1 is not installed"
    [[ $(dirname "$p") =~ $2 ]] || fail "$1 installed in $(dirname "$p"), expected /$2/"
    [ -f "$D$p" ] || fail "$D$p missing after install"
    echo "$D$p"
}
KSD=$(installed keystored '/sbin$')
CTL=$(installed keystorectl '/bin$')
modulesdir=$(pkg-config --variable=modulesdir libcrypto)
MOD=$(installed keystore.so "^$modulesdir\$")
SAMPLE=$(installed keystored.conf.sample '/etc/keystored$')
ACL_SAMPLE=$(installed acl.sample '/etc/keystored$')
unitdir=$(pkg-config systemd --variable=systemdsystemunitdir 2>/dev/null || echo '/lib/systemd/system$')
SERVICE=$(installed keystored.service "^$unitdir\$")
installed keystored.socket "^$unitdir\$" >/dev/null
installed keystored-admin.socket "^$unitdir\$" >/dev/null
MAN8=$(installed keystored.8 '/share/man/man8$')
MAN1=$(installed keystorectl.1 '/share/man/man1$')
MAN7=$(installed keystore.7 '/share/man/man7$')
SYSUSERS=$(python3 - "$T/installed.json" <<'PY'
import json, sys
print([v for v in json.load(open(sys.argv[1])).values() if "/sysusers.d/" in v][0])
PY
)
TMPFILES=$(python3 - "$T/installed.json" <<'PY'
import json, sys
print([v for v in json.load(open(sys.argv[1])).values() if "/tmpfiles.d/" in v][0])
PY
)
# the installed programs must not depend on the build tree
for f in "$KSD" "$CTL" "$MOD"; do
    readelf -d "$f" | grep -Eq 'R(UN)?PATH' && fail "$f keeps an rpath: $(readelf -d "$f" | grep PATH)"
done
pass "installed: keystored in sbin, keystorectl in bin, keystore.so in $modulesdir, sample config, units, man pages"

# --- man pages render without warnings
for m in "$MAN8" "$MAN1" "$MAN7"; do
    w=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$m" 2>&1) || fail "groff failed on $m"
    [ -z "$w" ] || fail "groff warnings in $m: $w"
    out=$(MANWIDTH=80 man -l "$m" 2>&1) || fail "man -l $m"
    grep -q '^NAME' <<<"$out" && grep -q '^SYNOPSIS\|^DESCRIPTION' <<<"$out" || fail "$m has no NAME/DESCRIPTION"
done
MANWIDTH=80 man -l "$MAN8" | grep -q "keystored - " || fail "keystored(8) NAME line"
pass "man pages render (groff -ww silent, man -l)"

# --- units: systemd-analyze verify (ExecStart pointed at the installed binary)
mkdir -p "$T/units"
cp "$(dirname "$SERVICE")"/keystored*.s* "$T/units/"
grep -q "^ExecStart=$(where keystored) -c " "$T/units/keystored.service" \
    || fail "ExecStart does not run the installed keystored: $(grep ExecStart "$T/units/keystored.service")"
sed -i "s|^ExecStart=$(where keystored)|ExecStart=$KSD|" "$T/units/keystored.service"
v=$(systemd-analyze verify --man=no "$T"/units/* 2>&1) || fail "systemd-analyze verify: $v"
[ -z "$v" ] || fail "systemd-analyze verify complains: $v"
grep -q '^FileDescriptorName=client$' "$T/units/keystored.socket" || fail "client socket unnamed"
grep -q '^FileDescriptorName=admin$' "$T/units/keystored-admin.socket" || fail "admin socket unnamed"
grep -q '^SocketMode=0600$' "$T/units/keystored-admin.socket" || fail "admin socket not 0600"
grep -q '^SocketMode=0660$' "$T/units/keystored.socket" && grep -q '^SocketGroup=keystore$' \
    "$T/units/keystored.socket" || fail "client socket unit is not 0660 group keystore"
# sysusers and tmpfiles snippets, applied to a scratch root
mkdir -p "$T/sysroot/etc"
systemd-sysusers --root="$T/sysroot" "$D$SYSUSERS" >/dev/null 2>&1 || fail "systemd-sysusers"
grep -q '^keystored:' "$T/sysroot/etc/passwd" || fail "sysusers snippet creates no keystored user"
grep -q '^keystore:' "$T/sysroot/etc/group" || fail "sysusers snippet creates no keystore group"
systemd-tmpfiles --root="$T/sysroot" --create "$D$TMPFILES" 2>"$T/tmpfiles.err" \
    || { cat "$T/tmpfiles.err"; fail "systemd-tmpfiles"; }
[ "$(stat -c %a "$T/sysroot/var/lib/keystored/keys")" = 700 ] || fail "keys dir not 0700"
[ "$(stat -c %a "$T/sysroot/var/empty/keystored")" = 555 ] || fail "jail not 0555"
[ -d "$T/sysroot/run/keystored" ] || fail "no /run/keystored"
pass "units verify; sysusers creates keystored; tmpfiles creates /run/keystored, keys (0700), jail (0555)"

# --- start the installed keystored from the installed sample config,
# confined from outside as the unit does: its capability bounding set and
# no_new_privs (run twice: the second start reads key files that belong to
# the keystored user by then)
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$SERVICE" | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
[ -n "$caps" ] || fail "the unit sets no CapabilityBoundingSet"
grep -q '^LimitMEMLOCK=infinity$' "$SERVICE" || fail "the unit does not set LimitMEMLOCK=infinity"
mkdir -p "$T/keys" "$T/jail"; chmod 0555 "$T/jail"
"$KSD" --gen-master-key "$T/master.key" 2>/dev/null || fail "installed keystored --gen-master-key"
sed -e "s|^socket = .*|socket = unix:$T/ks.sock|" \
    -e "s|^admin_socket = .*|admin_socket = unix:$T/admin.sock|" \
    -e "s|^key_dir = .*|key_dir = $T/keys|" \
    -e "s|^master_key = .*|master_key = $T/master.key|" \
    -e "s|^jail = .*|jail = $T/jail|" \
    -e "s|^#workers = .*|workers = 2|" \
    -e "s|^#audit_log = .*|audit_log = $T/audit.log|" \
    -e "s|^#acl = .*|acl = $T/acl|" "$SAMPLE" > "$T/keystored.conf"
grep -q "^audit_log = $T/audit.log" "$T/keystored.conf" || fail "the sample config has no audit_log line"
grep -q "^acl = $T/acl" "$T/keystored.conf" || fail "the sample config has no acl line"
grep -q "^socket_mode = 0660$" "$T/keystored.conf" && grep -q "^socket_group = keystore$" \
    "$T/keystored.conf" || fail "the sample config does not ship socket_mode 0660, group keystore"
# the shipped access list as it is, and with every example rule uncommented
# ("#RULE": a '#' directly before a pattern; prose has "# ")
cp "$ACL_SAMPLE" "$T/acl"
sed -E 's/^#([^ #])/\1/' "$ACL_SAMPLE" > "$T/acl.all"
ks_ensure_accounts
start_installed() {   # start_installed [strace]: the second start is traced
    local tracer=()
    [ "${1:-}" = strace ] && tracer=(strace -f -qq -o "$T/strace.txt")
    rm -f "$T/ks.sock" "$T/admin.sock"
    # keystored reads openssl.cnf once at start-up; the test's own must not matter
    # (LimitMEMLOCK=infinity is not reproduced: a container may lack
    # CAP_SYS_RESOURCE to raise it; CAP_IPC_LOCK in the set lets mlockall
    # ignore the limit, which this start proves)
    OPENSSL_CONF=/dev/null "${tracer[@]}" setpriv --bounding-set "-all,$caps" --no-new-privs \
        "$KSD" -c "$T/keystored.conf" >"$T/keystored.log" 2>&1 &
    KS_PID=$!
    for _ in $(seq 200); do
        grep -q "seccomp filter installed" "$T/keystored.log" && return 0
        kill -0 "$KS_PID" 2>/dev/null || { cat "$T/keystored.log" >&2; fail "installed keystored exited"; }
        sleep 0.05
    done
    cat "$T/keystored.log" >&2; fail "installed keystored did not start"
}
# every example of acl.sample parses (user and group names are Debian's)
id -u builder >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin builder
sed "s|^acl = .*|acl = $T/acl.all|" "$T/keystored.conf" > "$T/all.conf"
rm -f "$T/ks.sock" "$T/admin.sock"
"$KSD" -c "$T/all.conf" >"$T/all.log" 2>&1 &
all_pid=$!
for _ in $(seq 200); do grep -q "seccomp filter installed" "$T/all.log" && break; sleep 0.05; done
kill "$all_pid"; wait "$all_pid" 2>/dev/null || true
grep -q "access list $T/acl.all: 4 rules" "$T/all.log" || { cat "$T/all.log"; fail "acl.sample examples"; }
start_installed
grep -q "confined: chroot $T/jail, running as keystored" "$T/keystored.log" || fail "not confined"
grep -q "access list $T/acl: 1 rule;" "$T/keystored.log" || fail "the shipped acl.sample does not load"
"$CTL" -s "unix:$T/admin.sock" generate web --type ec --curve P-256 >/dev/null || fail "installed keystorectl generate"
"$CTL" -s "unix:$T/admin.sock" generate vault --type rsa --bits 2048 --usage decrypt >/dev/null || fail "generate rsa"
ks_stop
start_installed strace
"$CTL" -s "unix:$T/admin.sock" list > "$T/list" || fail "list after restart"
grep -q '^web ' "$T/list" && grep -q '^vault ' "$T/list" || { cat "$T/list"; fail "keys lost on restart"; }
grep -q "loaded 2 keys" "$T/keystored.log" || { cat "$T/keystored.log"; fail "restart did not load the keys"; }
grep -q "key 'vault': decrypt by uid:0$" "$T/keystored.log" || fail "no summary of who may use vault"
[ "$(stat -c '%a %G' "$T/ks.sock")" = "660 keystore" ] || fail "client socket is not 0660 group keystore"
pass "installed keystored starts twice under the unit's bounding set ($caps), confined"

# --- openssl, with the provider loaded only through openssl.cnf
cat > "$T/openssl.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
keystore = keystore_sect
[default_sect]
activate = 1
[keystore_sect]
module = $MOD
server = unix:$T/ks.sock
activate = 1
CNF
export OPENSSL_CONF="$T/openssl.cnf"
openssl list -providers | grep -q keystore || fail "openssl.cnf does not load the installed provider"
echo "installed release" > "$T/data"
openssl dgst -sha256 -sign keystore:web -out "$T/sig" "$T/data" || fail "sign via openssl.cnf"
"$CTL" -s "unix:$T/admin.sock" pubkey web > "$T/web.pub"
OPENSSL_CONF=/dev/null openssl dgst -sha256 -verify "$T/web.pub" -signature "$T/sig" "$T/data" >/dev/null \
    || fail "signature does not verify with the public key alone"
"$CTL" -s "unix:$T/admin.sock" pubkey vault > "$T/vault.pub"
OPENSSL_CONF=/dev/null openssl pkeyutl -encrypt -pubin -inkey "$T/vault.pub" \
    -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -in "$T/data" -out "$T/enc"
openssl pkeyutl -decrypt -inkey keystore:vault -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt rsa_oaep_md:sha256 -in "$T/enc" -out "$T/dec" || fail "decrypt via openssl.cnf"
cmp -s "$T/data" "$T/dec" || fail "decrypted text differs"
pass "sign, verify and decrypt with the installed provider, loaded by openssl.cnf alone"

openssl req -new -x509 -key keystore:web -subj /CN=localhost -days 1 -out "$T/web.crt" \
    || fail "req -x509 via openssl.cnf"
free_ports port
openssl s_server -accept "127.0.0.1:$port" -key keystore:web -cert "$T/web.crt" -naccept 1 -www \
    >"$T/s_server.log" 2>&1 &
srv=$!
for _ in $(seq 100); do grep -q ACCEPT "$T/s_server.log" && break; sleep 0.1; done
out=$(printf 'GET / HTTP/1.0\r\n\r\n' | OPENSSL_CONF=/dev/null timeout 20 openssl s_client \
    -connect "127.0.0.1:$port" -CAfile "$T/web.crt" -verify_return_error -ign_eof 2>&1) \
    || { echo "$out"; cat "$T/s_server.log"; fail "TLS handshake"; }
wait $srv 2>/dev/null || true
grep -q "Verify return code: 0" <<<"$out" || { echo "$out"; fail "certificate not verified"; }
grep -q "^HTTP/1.0 200" <<<"$out" || { echo "$out"; fail "no HTTP reply over TLS"; }
pass "TLS handshake served by s_server with keystore:web from the installed provider"

# --- every system call the installed keystored made (start-up, admin
# operations, signing, decryption, TLS) is allowed by the unit's
# SystemCallFilter, expanded by systemd-analyze itself
"$CTL" -s "unix:$T/admin.sock" delete web >/dev/null || fail "delete"
# KS_PID is strace: stop keystored, its traced child, and let strace finish
kill "$(pgrep -P "$KS_PID")" || fail "no keystored under strace"
wait "$KS_PID" 2>/dev/null || true
KS_PID=
grep -q "keystored: stopped" "$T/keystored.log" || fail "keystored did not stop cleanly"
grep -q "op=sign key=web result=ok" "$T/audit.log" || fail "no audit line for the signature"
filter=$(sed -n 's/^SystemCallFilter=//p' "$SERVICE")
[ -n "$filter" ] || fail "the unit sets no SystemCallFilter"
systemd-analyze syscall-filter > "$T/groups.txt" 2>/dev/null
python3 - "$T/groups.txt" "$T/strace.txt" $filter <<'PY' || fail "keystored uses system calls the unit forbids"
import re, sys
groups, cur = {}, None
for line in open(sys.argv[1]):
    if line.startswith("@"):
        cur = line.split()[0]
        groups[cur] = []
    elif cur and line.strip() and not line.strip().startswith("#"):
        groups[cur].append(line.strip())
def expand(item):
    if not item.startswith("@"):
        return {item}
    return set().union(*(expand(m) for m in groups[item])) if groups[item] else set()
allowed = set().union(*(expand(i) for i in sys.argv[3:]))
used = set()
for line in open(sys.argv[2]):
    m = re.match(r"\d+\s+([a-z0-9_]+)\(", line)
    if m:
        used.add(m.group(1))
# (setpriv's calls before it execs keystored are included: they pass too)
missing = sorted(used - allowed)
if len(used) < 30 or missing:
    print("used:", sorted(used), "\nnot allowed by the unit:", missing)
    sys.exit(1)
PY
pass "every system call keystored made is allowed by the unit's SystemCallFilter ($filter)"
