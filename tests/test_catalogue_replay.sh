#!/bin/bash
# Attack tests for catalogue = etcd: whoever can write to etcd (etcdctl, a
# stolen etcd credential) tries to bring keys back or swap them.  etcd only
# holds records sealed under the master key, each with a sequence number;
# every replica must refuse:
#  1. the record of a deleted key put back (an old, genuine record: etcd
#     gives it a new revision, its sealed sequence is old), also after the
#     replica restarts (the applied state is kept in KEY_DIR/.catalogue);
#  2. an old certificate record put back over a newer one;
#  3. one key's genuine record copied under another key's name;
#  4. a record that is not sealed under the master key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd_lib.sh"
cd "$T"

fleet_of_two

put_record() {   # NAME FILE
    etcd_ctl put "/kst/keys/$1" < "$2" >/dev/null || fail "etcdctl put $1"
}
refusals() { cat a/keystored.log b/keystored.log | grep -c "catalogue: refusing the record of key $1" || true; }
wait_refused() {   # NAME COUNT-BEFORE
    local i
    for i in $(seq 1 50); do
        [ "$(refusals "$1")" -ge $(( $2 + 2 )) ] && return 0
        sleep 0.05
    done
    grep catalogue a/keystored.log b/keystored.log >&2
    fail "the replicas did not both refuse the record put back for $1"
}

# 1. a deleted key put back
replica_ctl a generate gone --type ec >/dev/null || fail "generate"
replica_wait_key b gone present 2 >/dev/null || fail "gone not on b"
save_record gone old.rec
replica_ctl b delete gone >/dev/null || fail "delete"
replica_wait_key a gone gone 2 >/dev/null || fail "gone still on a"
before=$(refusals gone)
put_record gone old.rec
wait_refused gone "$before"
sleep 0.3
for r in a b; do
    sign_on "$r" gone && fail "replica $r signs with the deleted key put back into etcd"
    replica_ctl "$r" info gone >/dev/null 2>&1 && fail "replica $r lists the deleted key again"
done
grep -q "catalogue: refusing the record of key gone .*older than" a/keystored.log ||
    fail "a's log does not say why: $(grep refusing a/keystored.log)"
pass "a deleted key's old record put back into etcd is refused by both replicas"

replica_stop a
replica_start a
sleep 0.5
grep -q "catalogue: in step with etcd" a/keystored.log || sleep 1
sign_on a gone && fail "restarted replica a signs with the deleted key"
replica_ctl a info gone >/dev/null 2>&1 && fail "restarted replica a lists the deleted key"
pass "still refused after replica a restarts (its applied state survived)"

# 2. an old certificate record over a newer one
replica_ctl a generate web --type ec >/dev/null || fail "generate web"
replica_wait_key b web present 2 >/dev/null || fail "web not on b"
KEYSTORE_SERVER="unix:$T/a/ks.sock" openssl req "${PROV[@]}" -new -x509 -key keystore:web \
    -subj /CN=first -days 2 -out first.crt 2>/dev/null || fail "cert 1"
KEYSTORE_SERVER="unix:$T/a/ks.sock" openssl req "${PROV[@]}" -new -x509 -key keystore:web \
    -subj /CN=second -days 2 -out second.crt 2>/dev/null || fail "cert 2"
replica_ctl a attach-cert web first.crt >/dev/null || fail "attach first"
sleep 0.3
save_record web first.rec
replica_ctl a attach-cert web second.crt >/dev/null || fail "attach second"
sleep 0.5
before=$(refusals web)
put_record web first.rec
wait_refused web "$before"
sleep 0.2
KEYSTORE_SERVER="unix:$T/b/ks.sock" openssl storeutl "${PROV[@]}" -certs -noout -text keystore:web 2>/dev/null |
    grep -q 'CN *= *second' || fail "b no longer serves the newer certificate"
pass "an old certificate record put back is refused; the newer chain stays"

# 3. a genuine record under another name
replica_ctl a generate victim --type ec >/dev/null || fail "generate victim"
replica_wait_key b victim present 2 >/dev/null || fail "victim not on b"
replica_ctl a pubkey victim -o victim.pub >/dev/null
save_record web web.rec
before=$(refusals victim)
put_record victim web.rec
wait_refused victim "$before"
grep -q "key victim .*does not authenticate" a/keystored.log || fail "a does not say why"
replica_ctl b pubkey victim -o victim-b.pub >/dev/null
cmp -s victim.pub victim-b.pub || fail "b's key victim changed to the copied record's key"
pass "a record copied under another key's name does not authenticate"

# 4. not sealed under our master key
head -c 300 /dev/urandom > junk.rec
before=$(refusals victim)
put_record victim junk.rec
wait_refused victim "$before"
sign_on b victim || fail "b cannot sign with victim after the junk record"
pass "a record not sealed under the master key is refused; the key keeps working"

# 5. a record deleted in etcd without a tombstone
etcd_ctl del /kst/keys/victim >/dev/null || fail "etcdctl del"
for i in $(seq 1 50); do
    grep -q "record of key victim was deleted in etcd" b/keystored.log && break
    sleep 0.05
done
grep -q "record of key victim was deleted in etcd" b/keystored.log || fail "b did not notice the delete"
sign_on b victim || fail "b lost key victim to a delete in etcd without a tombstone"
pass "a delete in etcd without a sealed tombstone is ignored (the key stays)"
