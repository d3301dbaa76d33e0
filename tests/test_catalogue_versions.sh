#!/bin/bash
# Key versions through the catalogue (catalogue = etcd, issue 15 with issue
# 16's versions): one record per key carries every live version.
#  - rotate on A: within 1 s keystore:web opened through B signs with
#    version 2's key, and a client on B that loaded version 1 before keeps
#    signing with version 1 (sigloop checks each signature with its key);
#  - retire version 1 on B: within 1 s a client on A holding version 1 is
#    told it was retired and A's info lists version 1 as retired;
#  - attach-cert --version 2 on A shows on B; rotate --all on B reaches A;
#  - a replica that was down during rotate + retire catches up at start;
#  - incarnations: key inc at version 3 deleted and generated again on A
#    while B is down: within 1 s of its start B serves the new key (version
#    1, A's public key) and the old versions are gone from its disk;
#  - ATTACK: the deleted inc's record put back into etcd, as it was
#    (sequence) or re-sealed with a newer sequence (incarnation): refused;
#  - ATTACK: the key's record from before the rotations put back into etcd
#    is refused (sequence); another fleet's record of a key of that name
#    (same master key, its own prefix, newer sequence and incarnation) does
#    not authenticate here (bound to its etcd key); records forged with the
#    master key (newer sequence, same incarnation): a lower current
#    version, one version's sealed file in place of another's (each unseals
#    only under its own stem, NAME.vN), a retired version back: refused
#    (versions never go back); the family stays as it was;
#  - etcd down: rotate and delete are refused and change nothing (delete
#    publishes its tombstone before it removes any version's files).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd_lib.sh"
cd "$T"

fleet_of_two
CNF_A=$(ks_write_cnf a "unix:$T/a/ks.sock")
CNF_B=$(ks_write_cnf b "unix:$T/b/ks.sock")

# Wait until REPLICA's info of KEY matches the extended regex, at most 1 s
# unless told; prints the time it took in ms.
wait_info() {   # REPLICA KEY REGEX [SECONDS]
    local start now
    start=$(date +%s%N)
    until replica_ctl "$1" info "$2" 2>/dev/null | grep -Eq "$3"; do
        now=$(date +%s%N)
        if [ $(( (now - start) / 1000000 )) -gt $(( ${4:-1} * 1000 )) ]; then
            replica_ctl "$1" info "$2" >&2
            return 1
        fi
        sleep 0.02
    done
    echo $(( ($(date +%s%N) - start) / 1000000 ))
}
save_record() {   # PREFIX NAME FILE
    etcd_ctl get "$1keys/$2" -w json | /usr/bin/python3 -c '
import base64, json, sys
kvs = json.load(sys.stdin).get("kvs", [])
sys.stdout.buffer.write(base64.b64decode(kvs[0]["value"]) if kvs else b"")' > "$3"
    [ -s "$3" ] || fail "no record for $2 under $1 in etcd"
}
refusals() {   # WHY-REGEX [KEY]
    cat a/keystored.log b/keystored.log |
        grep -c "catalogue: refusing the record of key ${2:-web} .*$1" || true
}
put_refused() {   # FILE WHY-REGEX [KEY]: put FILE as KEY's (web's) record; both replicas must refuse it
    local before i
    before=$(refusals "$2" "${3:-web}")
    etcd_ctl put "/kst/keys/${3:-web}" < "$1" >/dev/null || fail "etcdctl put"
    for i in $(seq 1 50); do
        [ "$(refusals "$2" "${3:-web}")" -ge $(( before + 2 )) ] && return 0
        sleep 0.05
    done
    grep catalogue a/keystored.log b/keystored.log >&2
    fail "the replicas did not both refuse $1 ($2)"
}

# ---- rotate on A --------------------------------------------------------------
replica_ctl a generate web --type ec >/dev/null || fail "generate web on a"
replica_ctl a generate e2 --type ec >/dev/null || fail "generate e2 on a"
replica_wait_key b web present 2 >/dev/null && replica_wait_key b e2 present 2 >/dev/null ||
    fail "web, e2 not on b"
replica_ctl a pubkey web -o v1.pub >/dev/null
save_record /kst/ web before-rotation.rec
OPENSSL_CONF=$CNF_B "$KS_BUILD_ROOT/tests/sigloop" keystore:web stop-b 120 >loop-b 2>&1 &
LOOP_B=$!
OPENSSL_CONF=$CNF_A SIGLOOP_STOP_ON_ERROR=1 "$KS_BUILD_ROOT/tests/sigloop" keystore:web stop-a 120 \
    >loop-a 2>&1 &
LOOP_A=$!
sleep 1
replica_ctl a rotate web >rot.out || { cat rot.out; fail "rotate web on a"; }
grep -q "^rotated key web: .*version 2$" rot.out || { cat rot.out; fail "rotate output"; }
ms=$(wait_info b web "version 2: .*\(current\)$") || fail "version 2 rotated on a is not current on b within 1 s"
replica_ctl a pubkey web -o v2.pub >/dev/null
sign_on b keystore:web sig2 || { tail -5 sign.err; fail "sign through b after the rotation"; }
sig_verifies v2.pub sig2 || fail "keystore:web opened through b does not sign with version 2"
[ -f b/keys/web.v2.key ] || fail "b has no web.v2.key"
sleep 0.5
touch stop-b
wait $LOOP_B || { cat loop-b; fail "the client on b that loaded version 1 failed during the rotation"; }
grep -Eq "^signed=[1-9][0-9]* retries=0 after_failure=0 bad=0$" loop-b || { cat loop-b; fail "loop b"; }
pass "rotated on a, version 2 current on b after $ms ms and signs through b; b's client of version 1 went on ($(cat loop-b))"

# ---- retire version 1 on B ----------------------------------------------------
kill -0 $LOOP_A 2>/dev/null || { cat loop-a; fail "the client on a stopped before the retire"; }
replica_ctl b retire web --version 1 >/dev/null || fail "retire web version 1 on b"
start=$(date +%s%N)
while kill -0 $LOOP_A 2>/dev/null; do
    [ $(( ($(date +%s%N) - start) / 1000000 )) -le 1000 ] || { cat loop-a; fail "a's client of version 1 still signs 1 s after the retire on b"; }
    sleep 0.01
done
ms=$(( ($(date +%s%N) - start) / 1000000 ))
rc=0; wait $LOOP_A || rc=$?
[ $rc = 3 ] || { cat loop-a; fail "a's client of version 1 was not refused (exit $rc)"; }
grep -Eq "key 'web' version 1 was retired on 20[0-9-]+T[0-9:]+Z: reload the application to use version 2" loop-a ||
    { cat loop-a; fail "a's refusal does not say why"; }
wait_info a web "^  version 1: retired " >/dev/null || fail "a's info does not list version 1 as retired"
replica_ctl a info web | grep -E "^  version [0-9]+: " >info-a.out
[ "$(grep -vc ': retired' info-a.out)" = 1 ] && grep -q "^  version 2: .*(current)$" info-a.out ||
    { cat info-a.out; fail "a's info should list only version 2 as usable"; }
[ ! -e a/keys/web.key ] && [ ! -e b/keys/web.key ] || fail "version 1's file is still on a replica"
KEYSTORE_SERVER="unix:$T/a/ks.sock" expect_fail "ERROR_KEY_RETIRED" \
    openssl dgst "${PROV[@]}" -sha256 -sign 'keystore:web?version=1' -out /dev/null data
pass "retired on b: a's client of version 1 refused after $ms ms ($(grep -o "version 1 was retired[^)]*" loop-a | head -1)); a lists version 2 only"

# ---- attach-cert --version 2 on A; rotate --all on B -----------------------------
KEYSTORE_SERVER="unix:$T/a/ks.sock" openssl req "${PROV[@]}" -new -x509 -key 'keystore:web?version=2' \
    -subj /CN=web-v2 -days 2 -out web2.crt 2>/dev/null || fail "self-signed cert of version 2"
replica_ctl a attach-cert web web2.crt --version 2 >/dev/null || fail "attach-cert --version 2 on a"
ms=$(wait_info b web "version 2: .*, 1 certificate, .*\(current\)$") || fail "the certificate of version 2 is not on b within 1 s"
KEYSTORE_SERVER="unix:$T/b/ks.sock" openssl storeutl "${PROV[@]}" -certs -noout -text 'keystore:web?version=2' 2>/dev/null |
    grep -q 'CN *= *web-v2' || fail "b does not serve version 2's certificate"
pass "attach-cert --version 2 on a, on b after $ms ms"

replica_ctl b rotate --all >all.out || { cat all.out; fail "rotate --all on b"; }
grep -q "^rotated key web: .*version 3$" all.out && grep -q "^rotated key e2: .*version 2$" all.out ||
    { cat all.out; fail "rotate --all output"; }
ms=$(wait_info a web "version 3: .*\(current\)$") && wait_info a e2 "version 2: .*\(current\)$" >/dev/null ||
    fail "rotate --all on b did not reach a within 1 s"
wait_info a web "version 2: .*, 1 certificate, " >/dev/null || fail "a lost version 2's certificate"
pass "rotate --all on b: web version 3 and e2 version 2 on a after $ms ms"

# ---- a replica down during rotate + retire catches up ------------------------
replica_stop a
replica_ctl b rotate web >/dev/null || fail "rotate web on b while a is down"
save_record /kst/ web versions-2-3-4.rec
replica_ctl b retire web --version 2 >/dev/null || fail "retire version 2 on b while a is down"
replica_ctl b pubkey web -o v4.pub >/dev/null
replica_start a
wait_info a web "version 4: .*\(current\)$" 3 >/dev/null || fail "a did not catch up with version 4 at its start"
wait_info a web "^  version 2: retired" 3 >/dev/null || fail "a did not catch up with the retire of version 2"
[ ! -e a/keys/web.v2.key ] && [ -e a/keys/web.v3.key ] && [ -e a/keys/web.v4.key ] ||
    { ls a/keys; fail "a's key directory is not web's versions 3 and 4"; }
sign_on a keystore:web sig4 && sig_verifies v4.pub sig4 || fail "a does not sign with version 4 after catching up"
sign_on a 'keystore:web?version=3' sig3 || fail "a cannot sign with version 3"
pass "a, down during rotate and retire on b, caught up at start: versions 3 and 4, version 2 retired"

# ---- deleted and made again while a replica was down (incarnations) ----------
# b saw key inc at version 3; while b is down, inc is deleted and generated
# again on a (version 1, the tombstone overwritten in etcd): at its start b
# must take the new key, even though its version is lower, and drop the old.
replica_ctl a generate inc --type ec >/dev/null || fail "generate inc on a"
replica_ctl a rotate inc >/dev/null && replica_ctl a rotate inc >/dev/null || fail "rotate inc on a"
wait_info b inc "version 3: .*\(current\)$" 2 >/dev/null || fail "inc version 3 not on b"
replica_ctl b pubkey inc -o inc-old.pub >/dev/null || fail "pubkey inc on b"
save_record /kst/ inc inc-old.rec
replica_stop b
replica_ctl a delete inc >/dev/null || fail "delete inc on a"
replica_ctl a generate inc --type ec >/dev/null || fail "generate inc again on a"
replica_ctl a pubkey inc -o inc-new.pub >/dev/null || fail "pubkey of the new inc on a"
cmp -s inc-old.pub inc-new.pub && fail "the new inc has the old key's public key"
replica_start b
start=$(date +%s%N)
until replica_ctl b pubkey inc -o inc-b.pub >/dev/null 2>&1 && cmp -s inc-b.pub inc-new.pub; do
    [ $(( ($(date +%s%N) - start) / 1000000 )) -le 1000 ] ||
        { grep catalogue b/keystored.log | tail -3 >&2; fail "b, down while inc was deleted and made again, does not serve the new inc (its public key) within 1 s of its start"; }
    sleep 0.02
done
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ ! -e b/keys/inc.v2.key ] && [ ! -e b/keys/inc.v3.key ] || { ls b/keys; fail "the old inc's versions 2 and 3 are still on b's disk"; }
if replica_ctl b info inc | grep -q '^  version '; then replica_ctl b info inc; fail "b lists more than the new inc's version 1"; fi
sign_on b keystore:inc sig && sig_verifies inc-new.pub sig ||
    fail "keystore:inc through b does not sign with the new key"
KEYSTORE_SERVER="unix:$T/b/ks.sock" expect_fail "has no version 3" \
    openssl dgst "${PROV[@]}" -sha256 -sign 'keystore:inc?version=3' -out /dev/null data
pass "inc (version 3) deleted and made again on a while b was down: b serves the new key (version 1, same public key as a's) $ms ms after its start, the old versions are gone from its disk"

# ATTACK: the old incarnation's record put back: its sequence is older (and
# one re-sealed with a newer sequence is of an older incarnation): refused.
inc_same() {
    sleep 0.3
    for r in a b; do
        replica_ctl $r pubkey inc -o inc-now.pub >/dev/null && cmp -s inc-now.pub inc-new.pub ||
            fail "$1: $r no longer serves the new inc"
        if replica_ctl $r info inc | grep -q '^  version '; then fail "$1: $r has other versions of inc"; fi
    done
}
put_refused inc-old.rec "older than" inc
inc_same "the old inc's record put back"
"$KS_BUILD_ROOT/tests/catforge" master.key /kst/keys/inc inc-old.rec inc-old-newer.rec 999999980 ||
    fail "catforge"
put_refused inc-old-newer.rec "its incarnation [0-9]* is older than this replica's" inc
inc_same "the old inc's record with a newer sequence"
pass "ATTACK: the deleted inc's record put back into etcd, as it was or re-sealed with a newer sequence: refused on a and b (sequence, incarnation); both serve the new inc"

# ---- ATTACK: records that would take the versions back ------------------------
save_record /kst/ web family.rec
replica_ctl a info web >family-a.before
replica_ctl b info web >family-b.before
family_same() {   # what the attack must not change, on both replicas
    sleep 0.3
    replica_ctl a info web | cmp -s - family-a.before && replica_ctl b info web | cmp -s - family-b.before ||
        { replica_ctl a info web; fail "$1: the family of web changed"; }
    sign_on b keystore:web sig && sig_verifies v4.pub sig || fail "$1: b no longer signs with version 4"
    sign_on a 'keystore:web?version=3' sig || fail "$1: a lost version 3"
}
put_refused before-rotation.rec "older than"
family_same "the record from before the rotations"
pass "ATTACK: web's record from before the rotations put back into etcd: refused (sequence), family unchanged"

# Genuine records of another fleet (its own prefix in the same etcd, the
# same master key) that has a key named web: each record is bound to its
# etcd key (prefix and name), so they do not authenticate here, whatever
# their sequence or incarnation (a new key made there would otherwise pass
# for web deleted and made again here).
base=$T; mkdir -p c; cp -p master.key c/master.key; T=$base/c; KS_PID=
ks_start "catalogue = etcd" "catalogue_endpoints = $ETCD_ENDPOINTS" "catalogue_prefix = /other/" \
    "allow_client_generate = no"
REPLICA_PID[c]=$KS_PID; KS_PID=; T=$base
for step in generate delete generate; do
    replica_ctl c $step web $([ $step = generate ] && echo --type ec) >/dev/null || fail "$step web on c"
done
save_record /other/ web other-fleet.rec
put_refused other-fleet.rec "does not authenticate under the master key"
family_same "another fleet's record of web"
pass "ATTACK: another fleet's record of a key named web (same master key, newer sequence and incarnation): does not authenticate under this prefix, family unchanged"

# Forged with the master key (tests/catforge): the family's own record with
# a newer sequence, version 4 dropped (a lower current version), or version
# 3's sealed file in place of version 4's (sealed under its stem web.v3).
"$KS_BUILD_ROOT/tests/catforge" master.key /kst/keys/web family.rec forged-lower.rec 999999990 web.v4.key= ||
    fail "catforge"
put_refused forged-lower.rec "would make version 3 current, below this replica's current version 4"
family_same "a forged record without version 4"
"$KS_BUILD_ROOT/tests/catforge" master.key /kst/keys/web family.rec forged-swap.rec 999999991 web.v4.key= \
    web.v3.key=web.v4.key || fail "catforge"
put_refused forged-swap.rec "its web.v4.key does not unseal"
family_same "version 3's file as version 4's"
"$KS_BUILD_ROOT/tests/catforge" master.key /kst/keys/web versions-2-3-4.rec forged-retired.rec 999999992 ||
    fail "catforge"
put_refused forged-retired.rec "would bring back version 2, retired here"
family_same "a record of versions 2 to 4"
pass "ATTACK: forged records (newer sequence, same incarnation): without version 4, version 3's file as version 4's, or with retired version 2: refused, family unchanged"
grep -h "catalogue: refusing the record of key web" a/keystored.log | tail -2 | sed 's/^/   /'

# ---- etcd away: writes of versions change nothing ----------------------------
replica_stop c
etcd_stop_all
out=$(replica_ctl b rotate web 2>&1) && fail "rotate succeeded with every etcd member down"
echo "$out" | grep -q ERROR_CATALOGUE_UNAVAILABLE || fail "rotate: wrong error: $out"
[ ! -e b/keys/web.v5.key ] || fail "the refused rotate left web.v5.key on b"
out=$(replica_ctl b delete web 2>&1) && fail "delete succeeded with every etcd member down"
echo "$out" | grep -q ERROR_CATALOGUE_UNAVAILABLE || fail "delete: wrong error: $out"
[ -e b/keys/web.v3.key ] && [ -e b/keys/web.v4.key ] || { ls b/keys; fail "the refused delete removed versions of web from b"; }
replica_stop b
replica_start b
sign_on b 'keystore:web?version=3' sig || fail "b lost version 3 to a delete etcd refused"
sign_on b keystore:web sig && sig_verifies v4.pub sig || fail "b lost version 4 to a delete etcd refused"
pass "etcd down: rotate and delete refused, every version of web still on b (also after a restart)"
