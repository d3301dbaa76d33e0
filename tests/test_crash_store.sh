#!/usr/bin/env bash
# A crash-safe key store: keystored is killed (-9) at random moments while
# keystorectl generates, imports, deletes keys, attaches certificates,
# rotates keys (a new version) and retires old versions.
# After each restart every key is either fully there or absent (never a
# damaged file), no key that keystorectl reported as stored is lost, no key
# it reported as deleted comes back, an acknowledged certificate is there,
# an acknowledged rotation is the current version, an acknowledged retired
# version is gone,
# and the manifest (test_rollback.sh) refuses nothing: the store always
# starts.  Then: a damaged key file is named and refused while the others
# load; a wrong master key is a clear start-up error.
. "$(dirname "$0")/lib.sh"
# list must fit one reply however many keys a fast machine creates
CONF="max_frame = 1048576"
ks_start "$CONF"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/import.pem" 2>/dev/null \
    || fail "openssl genpkey"

declare -A state    # name -> present | absent | unknown (op in flight at the crash)
declare -A cstate   # name -> yes | unknown: a certificate was attached
declare -A vstate   # name -> current version | unknown
declare -A rstate   # name:version -> yes | unknown: retired
# the keys (not their "  version N" lines) of keystorectl list
names() { ks_ctl list 2>/dev/null | awk 'NR>1 && !/^ / {print $1}'; }
ROUNDS=${CRASH_ROUNDS:-12}
n=0 nrot=0 nret=0

# One round: operations until the server dies under us; journal: "op name rc".
ops() {
    local j=$1 i=0 name rc
    set +e   # failures are recorded, not fatal
    while :; do
        i=$((i + 1))
        name="r${round}k$i"
        case $((RANDOM % 9)) in
            0|1) op=generate; ks_ctl generate "$name" --type $([ $((RANDOM % 2)) = 0 ] && echo ec || echo ed25519) >/dev/null 2>&1; rc=$? ;;
            2)   op=import; ks_ctl import "$name" "$T/import.pem" >/dev/null 2>&1; rc=$? ;;
            6)   op=cert
                 name=$(names | shuf -n 1)
                 [ -n "$name" ] || continue
                 # the request signs through the server: if it fails the server is gone
                 openssl req -new -x509 "${PROV[@]}" -key "keystore:$name" -subj "/CN=$name" \
                     -days 1 -out "$T/c.pem" >/dev/null 2>&1 || { echo "$op $name 2" >> "$j"; return 0; }
                 ks_ctl attach-cert "$name" "$T/c.pem" >/dev/null 2>&1; rc=$? ;;
            7)   op=rotate
                 name=$(names | shuf -n 1)
                 [ -n "$name" ] || continue
                 ks_ctl rotate "$name" >"$T/rot.out" 2>&1; rc=$?
                 [ $rc = 0 ] && name="$name:$(grep -o 'version [0-9]*$' "$T/rot.out" | cut -d' ' -f2)" ;;
            8)   op=retire   # the oldest version that is not the current one
                 name=$(names | shuf -n 1)
                 [ -n "$name" ] || continue
                 v=$(ks_ctl info "$name" 2>/dev/null | awk '/^  version [0-9]+: / && !/: retired/ && !/\(current\)$/ { sub(":", "", $2); print $2; exit }')
                 [ -n "$v" ] || continue
                 name="$name:$v"
                 ks_ctl retire "${name%:*}" --version "$v" >/dev/null 2>&1; rc=$? ;;
            *)   op=delete   # a third of the operations: keeps the key count bounded
                 name=$(names | shuf -n 1)
                 [ -n "$name" ] || continue
                 ks_ctl delete "$name" >/dev/null 2>&1; rc=$? ;;
        esac
        echo "$op $name $rc" >> "$j"
        [ $rc = 2 ] && return 0   # server unreachable: it was killed
        [ $rc = 0 ] || { echo "unexpected rc $rc for $op $name" >> "$j.err"; return 0; }
    done
}

for round in $(seq 1 "$ROUNDS"); do
    : > "$T/journal"
    ops "$T/journal" &
    opspid=$!
    # at least one acknowledged operation per round, however loaded the machine
    for i in $(seq 100); do [ -s "$T/journal" ] && break; sleep 0.1; done
    sleep "0.$(( (RANDOM % 6) + 1 ))$((RANDOM % 10))"
    kill -9 "$KS_PID"
    wait "$KS_PID" 2>/dev/null || true
    KS_PID=
    wait $opspid
    [ ! -s "$T/journal.err" ] || fail "round $round: $(cat "$T/journal.err")"
    # the model: acknowledged results are certain, the last (rc 2) is not
    while read -r op name rc; do
        n=$((n + 1))
        case $op in rotate) nrot=$((nrot + 1)) ;; retire) nret=$((nret + 1)) ;; esac
        if [ "$op" = cert ]; then
            [ "$rc" = 0 ] && cstate[$name]=yes || cstate[$name]=unknown
        elif [ "$op" = rotate ]; then
            # the new version has no certificate yet
            unset "cstate[${name%:*}]"
            [ "$rc" = 0 ] && vstate[${name%:*}]=${name#*:} || vstate[${name%:*}]=unknown
        elif [ "$op" = retire ]; then
            [ "$rc" = 0 ] && rstate[$name]=yes || rstate[$name]=unknown
        elif [ "$rc" = 0 ]; then
            [ "$op" = delete ] && state[$name]=absent || state[$name]=present
            unset "cstate[$name]"
            vstate[$name]=1
        else
            state[$name]=unknown
            unset "cstate[$name]"
            # a create in flight: if the key is there at all, it is version 1;
            # a delete in flight: if the key is still there, its version is unchanged
            [ "$op" = delete ] || vstate[$name]=1
        fi
    done < "$T/journal"
    mv "$T/keystored.log" "$T/keystored.log.$round"
    ks_start "$CONF"
    grep -E "skipping|error|refusing" "$T/keystored.log" && fail "round $round: a key file was damaged, unreadable or refused after the crash"
    ks_ctl list > "$T/list.raw" || fail "round $round: list"
    tail -n +2 "$T/list.raw" | { grep -v '^ ' || true; } > "$T/list"   # the keys, without the header
    for name in "${!state[@]}"; do
        if grep -q "^$name " "$T/list"; then have=present; else have=absent; fi
        case ${state[$name]} in
            unknown) state[$name]=$have ;;   # either is fine, now it is known
            "$have") ;;
            *) fail "round $round: key $name should be ${state[$name]} but is $have" ;;
        esac
    done
    for name in "${!cstate[@]}"; do
        [ "${state[$name]}" = present ] || continue
        if grep -Eq "^$name .* yes +[a-z,]+( |$)" "$T/list"; then have=yes; else have=no; fi
        case ${cstate[$name]} in
            unknown) ;;
            yes) [ $have = yes ] || fail "round $round: key $name lost its acknowledged certificate" ;;
        esac
    done
    # one listing of every version: "NAME CURRENT" and "NAME:N" per usable version, then the count
    ks_ctl --json list | python3 -c '
import json, sys
keys = json.load(sys.stdin)
for k in keys:
    print(k["name"], k["version"])
    for v in k["versions"]:
        if not v["retired"]:
            print("%s:%d usable" % (k["name"], v["version"]))
print("= %d" % sum(len([v for v in k["versions"] if not v["retired"]]) for k in keys))' > "$T/versions"
    for name in "${!vstate[@]}"; do
        [ "${state[$name]:-}" = present ] || continue
        have=$(awk -v n="$name" '$1 == n { print $2 }' "$T/versions")
        case ${vstate[$name]} in
            unknown) vstate[$name]=$have ;;
            "$have") ;;
            *) fail "round $round: key $name should be at version ${vstate[$name]} but is at $have" ;;
        esac
    done
    for nv in "${!rstate[@]}"; do
        [ "${state[${nv%:*}]:-}" = present ] && [ "${rstate[$nv]}" = yes ] || continue
        grep -q "^$nv usable$" "$T/versions" && fail "round $round: retired version ${nv#*:} of key ${nv%:*} is back"
    done
    # every listed key is whole: its public key exports; no temp files remain
    while read -r name _; do
        ks_ctl pubkey "$name" >/dev/null || fail "round $round: key $name is listed but unusable"
    done < "$T/list"
    files=$(find "$T/keys" -name '*.key' | wc -l)
    versions=$(awk '$1 == "=" { print $2 }' "$T/versions")
    [ "$files" = "$versions" ] || fail "round $round: $files key files but $versions key versions loaded"
    [ -z "$(find "$T/keys" -name '.*.tmp')" ] || fail "round $round: temporary files left after start-up"
done
present=0; for v in "${state[@]}"; do [ "$v" = present ] && present=$((present + 1)); done
[ "$n" -gt "$ROUNDS" ] || fail "too few operations ($n) to mean anything"
pass "$ROUNDS kill -9 rounds, $n keystorectl operations ($nrot rotate, $nret retire): no acknowledged key lost, no deleted key back, no damaged file ($present keys now)"

# a delete stopped between its two unlinks (key file gone, certificate
# left, the manifest still vouching for both): the next start finishes it,
# and the start after that has nothing to refuse (before, the certificate
# was forgotten by the manifest but left on disk, and refused at every
# later start)
ks_ctl generate halfdel --type ec >/dev/null || fail "generate halfdel"
openssl req -new -x509 "${PROV[@]}" -key keystore:halfdel -subj /CN=halfdel -days 2 \
    -out "$T/halfdel.pem" 2>/dev/null || fail "certificate for halfdel"
ks_ctl attach-cert halfdel "$T/halfdel.pem" >/dev/null || fail "attach-cert halfdel"
ks_stop
rm "$T/keys/halfdel.key"
mv "$T/keystored.log" "$T/keystored.log.halfdel"
ks_start "$CONF"
grep -q "removed $T/keys/halfdel.crt: its key file is gone" "$T/keystored.log" \
    || { cat "$T/keystored.log" >&2; fail "the interrupted delete's certificate was not removed"; }
ks_stop
ks_start "$CONF"
grep -E "refusing|error" "$T/keystored.log" && fail "the start after an interrupted delete refused a file"
[ -e "$T/keys/halfdel.crt" ] && fail "halfdel.crt still in the key directory"
pass "a delete interrupted between its unlinks is finished at the next start; nothing is refused later"

# a damaged file and a tampered header: named, skipped, the rest still load
ks_ctl generate keeper --type ed25519 >/dev/null || fail "generate keeper"   # >= 1 good key below
ks_ctl generate victim --type ec >/dev/null || fail "generate victim"
ks_ctl generate victim2 --type ec >/dev/null || fail "generate victim2"
before=$(names | wc -l)
ks_stop
size=$(stat -c %s "$T/keys/victim.key")
flip_byte "$T/keys/victim.key" $((size - 5))
flip_byte "$T/keys/victim2.key" 19   # "created" field
mv "$T/keystored.log" "$T/keystored.log.final"
ks_start "$CONF"
grep -q "refusing $T/keys/victim.key: the manifest (generation [0-9]*) does not vouch for it" "$T/keystored.log" \
    || { cat "$T/keystored.log" >&2; fail "damaged key file not reported by name"; }
grep -q "refusing $T/keys/victim2.key: the manifest" "$T/keystored.log" \
    || fail "tampered header not reported by name"
after=$(names | wc -l)
[ "$after" = $((before - 2)) ] || fail "expected $((before - 2)) keys after skipping two, got $after"
pass "damaged and tampered key files reported by name and skipped; $after others loaded"

# a wrong master key: clear error, exit 1
ks_stop
rm -f "$T/keys/victim.key" "$T/keys/victim2.key"
mv "$T/master.key" "$T/master.key.right"
"$KEYSTORED" --gen-master-key "$T/master.key" >/dev/null 2>&1 || fail "gen-master-key"
set +e
"$KEYSTORED" -c "$T/keystored.conf" --dev >"$T/wrong.log" 2>&1
rc=$?
set -e
[ $rc = 1 ] || fail "keystored with a wrong master key exited $rc, expected 1"
grep -q "cannot use the manifest $T/keys/.manifest: does not authenticate under the master key: wrong master key?" "$T/wrong.log" \
    || { cat "$T/wrong.log" >&2; fail "no clear wrong-master-key error"; }
pass "wrong master key: exit 1 with 'manifest ... does not authenticate under the master key: wrong master key?'"
