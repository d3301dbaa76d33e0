#!/bin/bash
# catalogue = etcd (issue 15 part 2): three etcd members of the test's own,
# two keystored replicas sharing one master key.
#  - a key generated on A signs through B within 1 s (watch), and its
#    signature verifies with A's public key;
#  - a certificate attached on A is on B within 1 s;
#  - a key deleted on B is refused by A within 1 s;
#  - two replicas creating the same name at once: exactly one winner, the
#    other gets ERROR_KEY_EXISTS, and both end up with the winner's key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd_lib.sh"
cd "$T"

fleet_of_two

# 1. generate on A, sign through B
# visibility is timed with keystorectl (a small C program; openssl's start-up
# on a loaded machine would dominate), then the key must sign at once
replica_ctl a generate web --type ec >/dev/null || fail "generate on a"
ms=$(replica_wait_key b web present 1) || fail "key generated on a not on b within 1 s"
sign_on b web sig.tmp || fail "b lists web but cannot sign with it"
replica_ctl a pubkey web -o web.pub >/dev/null
sig_verifies web.pub sig.tmp || fail "b's signature does not verify with a's public key"
pass "generated on a, on b after $ms ms, signed through b"

replica_ctl b generate rsa1 --type rsa --usage sign,decrypt >/dev/null || fail "generate rsa on b"
ms=$(replica_wait_key a rsa1 present 1) || fail "rsa key from b not on a within 1 s"
sign_on a rsa1 sig.tmp || fail "a lists rsa1 but cannot sign with it"
replica_ctl b pubkey rsa1 -o rsa1.pub >/dev/null || fail "pubkey rsa1 on b"
sig_verifies rsa1.pub sig.tmp || fail "a's RSA signature does not verify with b's public key"
pass "RSA key generated on b, on a after $ms ms, signed through a"

# 2. attach-cert on A propagates
KEYSTORE_SERVER="unix:$T/a/ks.sock" openssl req "${PROV[@]}" -new -x509 -key keystore:web \
    -subj /CN=web -days 2 -out web.crt 2>/dev/null || fail "self-signed cert for web"
replica_ctl a attach-cert web web.crt >/dev/null || fail "attach-cert on a"
start=$(date +%s%N)
until replica_ctl b info web | grep -q ' 1 certificate'; do
    [ $(( ($(date +%s%N) - start) / 1000000 )) -le 1000 ] || {
        replica_ctl b info web; fail "certificate attached on a not on b within 1 s"; }
    sleep 0.02
done
pass "attach-cert on a visible on b after $(( ($(date +%s%N) - start) / 1000000 )) ms"
grep -q "refusing" a/keystored.log b/keystored.log && fail "a replica refused a record: $(grep refusing ./*/keystored.log)"

# 3. delete on B, A refuses
replica_ctl b delete web >/dev/null || fail "delete on b"
ms=$(replica_wait_key a web gone 1) || fail "key deleted on b still on a after 1 s"
sign_on a web sig.tmp && fail "a no longer lists web but still signs with it"
pass "deleted on b, gone from a after $ms ms, refused by a"

# 4. same-name creates at once: one winner
for round in 1 2 3; do
    name=race$round
    replica_ctl a generate "$name" --type ec >ra.out 2>&1 & pa=$!
    replica_ctl b generate "$name" --type ec >rb.out 2>&1 & pb=$!
    ra=0; rb=0
    wait "$pa" || ra=$?
    wait "$pb" || rb=$?
    if [ "$ra" = 0 ] && [ "$rb" = 3 ]; then loser=rb.out
    elif [ "$ra" = 3 ] && [ "$rb" = 0 ]; then loser=ra.out
    else cat ra.out rb.out; fail "race $round: exits $ra and $rb, want one 0 and one 3"; fi
    grep -q 'ERROR_KEY_EXISTS' "$loser" || { cat "$loser"; fail "race $round: loser's message"; }
    replica_wait_key a "$name" present 2 >/dev/null && replica_wait_key b "$name" present 2 >/dev/null ||
        fail "race $round: the winner's key is not on both replicas"
    sleep 0.3
    replica_ctl a pubkey "$name" -o pa.pem >/dev/null
    replica_ctl b pubkey "$name" -o pb.pem >/dev/null
    cmp -s pa.pem pb.pem || fail "race $round: the replicas hold different keys named $name"
done
pass "same-name races: exactly one winner each time ($(cat "$loser" | head -1))"

# 5. the default stays embedded: a server without catalogue opens no agent
grep -q 'catalogue agent' a/keystored.log || fail "no agent line in a's log"
pass "catalogue: generate/attach-cert/delete propagate within 1 s; one winner per name"
