#!/bin/bash
# A keystored with keys of its own joins a fleet (catalogue = etcd set on a
# key directory that has keys).  Its keys must not be lost nor taken over:
#  - a key whose name the fleet does not use is uploaded (the others sign
#    with it: c's public key verifies);
#  - a key whose name the fleet uses for another key stays c's own, unshared,
#    with an error naming it (before, etcd's record silently replaced it);
#  - a key whose name the fleet deleted (a tombstone) stays c's own, not
#    shared: it may be the very key the fleet deleted (before, the old
#    tombstone silently deleted it);
#  - the same key already in etcd (a backup restored on both) is adopted;
#  - a restart changes nothing; a key not shared is deleted on c only.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd_lib.sh"
cd "$T"

etcd_start
replica_start a
printf 'data\n' > data

replica_ctl a generate taken --type ec >/dev/null || fail "generate taken on a"
replica_ctl a pubkey taken -o taken.a.pub >/dev/null || fail "pubkey taken"
replica_ctl a generate dead --type ec >/dev/null || fail "generate dead on a"
replica_ctl a delete dead >/dev/null || fail "delete dead on a"

# c: a keystored of its own (no catalogue, a master key of its own)
mkdir -p c
T0=$T; T=$T0/c; KS_PID=
ks_start "allow_client_generate = no"
for k in mine taken dead; do
    ks_ctl generate "$k" --type ec >/dev/null || fail "generate $k on c"
    ks_ctl pubkey "$k" -o "$T0/$k.c.pub" >/dev/null || fail "pubkey $k on c"
done
ks_stop
cmp -s "$T/master.key" "$T0/master.key" && fail "c has the fleet's master key already"
# to join, c's files are re-sealed under the fleet's master key (docs/scaling.md)
"$KEYSTORED" --rotate-master-key "$T0/master.key" -c "$T/keystored.conf" >"$T0/rot.log" 2>&1 \
    || { cat "$T0/rot.log" >&2; fail "re-sealing c under the fleet's master key"; }
"$KEYSTORED" --backup "$T0/c.ksb" -c "$T/keystored.conf" >/dev/null 2>&1 || fail "backup of c"
T=$T0
cmp -s taken.a.pub taken.c.pub && fail "a and c made the same key"

# c joins the fleet
replica_start c
for i in $(seq 1 50); do grep -q "catalogue: in step with etcd" c/keystored.log && break; sleep 0.1; done
grep -q "catalogue: in step with etcd" c/keystored.log || { cat c/keystored.log >&2; fail "c never got in step with etcd"; }

sign_on c taken sig.c || { cat sign.err >&2; fail "c cannot sign with its key taken after joining"; }
sig_verifies taken.c.pub sig.c || fail "c's key taken was replaced by the fleet's key of that name when c joined"
grep -q "error: catalogue: key taken .*from before catalogue = etcd.*etcd has another key of that name" c/keystored.log \
    || { grep catalogue c/keystored.log >&2; fail "no error naming the conflicting key taken on c"; }
sign_on a taken sig.a || fail "a cannot sign with taken"
sig_verifies taken.a.pub sig.a || fail "a's key taken was replaced by c's"
pass "a key whose name the fleet uses for another key stays c's own (unshared, an error names it); a keeps the fleet's"

sign_on c dead sig.c || { cat sign.err >&2; fail "c lost its key dead: the fleet's old tombstone of that name deleted it"; }
sig_verifies dead.c.pub sig.c || fail "c's dead is not c's key"
grep -q "error: catalogue: key dead .*from before catalogue = etcd.*etcd deleted a key of that name" c/keystored.log \
    || { grep catalogue c/keystored.log >&2; fail "no error naming dead on c"; }
replica_ctl a info dead >/dev/null 2>&1 && fail "c's dead was put into the fleet over its deletion"
pass "a key whose name the fleet deleted stays c's own, not shared (it may be the deleted key)"

replica_wait_key a mine present 5 >/dev/null || { grep catalogue c/keystored.log >&2; fail "c's key mine was not uploaded to the fleet"; }
sign_on a mine sig.a || fail "a cannot sign with c's mine"
sig_verifies mine.c.pub sig.a || fail "a's mine is not c's key"
grep -q "catalogue: key mine (from before catalogue = etcd) uploaded" c/keystored.log || fail "no log line for mine's upload"
# uploaded in the same pass as mine would have been: a must not have it now
replica_ctl a info dead >/dev/null 2>&1 && fail "c's dead was put into the fleet over its deletion"
pass "c's key mine (a name the fleet does not use) is uploaded: a signs with it"
n=$(grep -c "error: catalogue: key taken " c/keystored.log || true)
[ "$n" = 1 ] || fail "c logged the unshared taken $n times at its start, not once"

# a restart: nothing uploaded again, taken still c's own
replica_stop c
mv c/keystored.log c/keystored.log.1
replica_start c
for i in $(seq 1 50); do grep -q "catalogue: in step with etcd" c/keystored.log && break; sleep 0.1; done
grep -q "uploaded to etcd" c/keystored.log && fail "c uploaded again after a restart: $(grep uploaded c/keystored.log)"
sign_on c taken sig.c && sig_verifies taken.c.pub sig.c || fail "after a restart c's taken is not c's own"
sign_on c mine sig.c && sig_verifies mine.c.pub sig.c || fail "after a restart c's mine is not c's"
grep -q "key dead (from before catalogue = etcd) uploaded" c/keystored.log.1 && fail "c uploaded dead over its deletion"
replica_ctl a info dead >/dev/null 2>&1 && fail "the fleet has c's dead"
pass "after a restart nothing is uploaded again and taken is still c's own"

# a change to the key not shared would publish it over the fleet's: refused, saying why
expect_fail "key 'taken' is from before catalogue = etcd and not shared" replica_ctl c rotate taken
sign_on a taken sig.a && sig_verifies taken.a.pub sig.a || fail "rotating c's unshared taken changed the fleet's"
pass "rotating the unshared taken on c is refused, saying it is not shared; the fleet's is untouched"

# the key not shared is deleted on c only; a restart then takes the fleet's
replica_ctl c delete taken >/dev/null || fail "delete taken on c"
sign_on a taken sig.a && sig_verifies taken.a.pub sig.a || fail "deleting c's unshared taken deleted the fleet's"
replica_stop c
replica_start c
replica_wait_key c taken present 5 >/dev/null || fail "c did not take the fleet's taken after its own was deleted"
sign_on c taken sig.c && sig_verifies taken.a.pub sig.c || fail "c's taken is not the fleet's after the restart"
pass "c's unshared taken is deleted on c only; after a restart c has the fleet's"

# d: c's backup restored on a keystored of its own, joining after c: mine
# is the key etcd has now (adopted, not uploaded, no error); taken is c's
# old one, which the fleet does not have (refused)
T=$T0/d; KS_PID=; mkdir -p "$T"; cp -p "$T0/master.key" "$T/master.key"
ks_start "allow_client_generate = no"
ks_stop
"$KEYSTORED" --restore "$T0/c.ksb" -c "$T/keystored.conf" --allow-rollback >/dev/null 2>&1 || fail "restore on d"
T=$T0
replica_start d
for i in $(seq 1 50); do grep -q "catalogue: in step with etcd" d/keystored.log && break; sleep 0.1; done
grep -q "uploaded to etcd" d/keystored.log && fail "d uploaded keys etcd already has: $(grep uploaded d/keystored.log)"
grep -q "error: catalogue: key mine " d/keystored.log && fail "d refused mine, the same key etcd has"
sign_on d mine sig.d && sig_verifies mine.c.pub sig.d || fail "d does not sign with mine"
grep -q "catalogue: key mine (from before catalogue = etcd) is the key etcd has: shared" d/keystored.log \
    || { grep catalogue d/keystored.log >&2; fail "no log line for mine's adoption on d"; }
grep -q "error: catalogue: key taken .*etcd has another key of that name" d/keystored.log \
    || fail "d did not refuse the fleet's taken over its own"
pass "a restored copy of c joining later adopts the key etcd has (mine) and keeps its own taken"

# kill -9 during the upload: the next start adopts what was uploaded (its own
# records, the same keys) and uploads the rest; nothing is left unshared
T=$T0/e; KS_PID=; mkdir -p "$T"; cp -p "$T0/master.key" "$T/master.key"
ks_start "allow_client_generate = no"
for i in $(seq 1 200); do ks_ctl generate "e$i" --type ed25519 >/dev/null || fail "generate e$i"; done
ks_stop
T=$T0
replica_start e
for i in $(seq 1 500); do grep -q "uploaded to etcd" e/keystored.log && break; sleep 0.01; done
replica_stop e KILL
up=$(grep -c "uploaded to etcd" e/keystored.log || true)
[ "$up" -gt 0 ] && [ "$up" -lt 200 ] || fail "the kill did not land during the upload ($up of 200 uploaded)"
mv e/keystored.log e/keystored.log.1
replica_start e
# (uploaded in the state's hash order, not by name: wait for each)
for i in $(seq 1 200); do
    replica_wait_key a "e$i" present 20 >/dev/null \
        || { grep catalogue e/keystored.log | tail -5 >&2; fail "e$i is not in the fleet after the restart"; }
done
grep "not shared" e/keystored.log && fail "e left keys unshared after a kill during the upload"
adopted=$(grep -c "is the key etcd has: shared" e/keystored.log || true)
[ "$adopted" -ge "$up" ] || fail "e adopted $adopted of the $up keys it had uploaded before the kill"
pass "kill -9 after $up of 200 uploads: the restart adopts those ($adopted) and uploads the rest; all 200 in the fleet"
