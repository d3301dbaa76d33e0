#!/usr/bin/env bash
# Key versions (issue 16 part 1): keystorectl rotate / retire, keystore:NAME?version=N.
#  - a long-running client that loaded version 1 keeps signing through a
#    rotation with zero failures (sigloop verifies every signature with the
#    public key it loaded), and its signatures verify with version 1's key;
#  - a new openssl process gets version 2; ?version=1 still works;
#  - after retire, the old client is refused with "version 1 was retired on
#    ...: reload the application to use version 2";
#  - CSR signed by version 2 (openssl req -key 'keystore:web?version=2'), a
#    local CA (openssl x509 -req), attach-cert --version 2, s_server serves it;
#  - rotate --all; versions survive a restart (list/info, text and --json);
#  - ATTACK: a key named web.v2 (whose file would be version 2 of web) cannot
#    be generated, even by a client allowed to generate keys;
#  - ATTACK: a retired version's file put back, or one version's file copied
#    over another's, is refused at start-up and never signs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
ks_start "allow_client_generate = yes"
cd "$T"
CNF=$(ks_write_cnf)
echo "data to sign" >data

ks_ctl generate web --type ec >/dev/null || fail "generate web"
ks_ctl pubkey web -o v1.pub
ks_ctl info web | grep -q "usage sign$" || { ks_ctl info web; fail "info: a key of one version"; }

# ---- ATTACK: a key name that is a version file of another key ---------------
expect_fail "'web.v2' ends in .vN, which names key versions" "$KEYSTORECTL" generate web.v2 --type ec
# a client with generate rights (allow_client_generate) over the client socket
openssl genpkey "${PROV[@]}" -propquery provider=keystore -algorithm EC -pkeyopt group:P-256 -pkeyopt keystore-name:web.v3 \
    -out /dev/null >gen.out 2>&1 && { cat gen.out; fail "a client generated key web.v3"; }
grep -q "ends in .vN" gen.out || { cat gen.out; fail "generate web.v3: no reason given"; }
[ ! -e keys/web.v2.key ] && [ ! -e keys/web.v3.key ] || fail "a version file was written"
pass "ATTACK: keys named NAME.vN (version files of NAME) cannot be generated"

# ---- rotate under load ------------------------------------------------------
OPENSSL_CONF=$CNF "$KS_BUILD_ROOT/tests/sigloop" keystore:web stop-a 120 >loop-a 2>&1 &
LOOP_A=$!
OPENSSL_CONF=$CNF SIGLOOP_STOP_ON_ERROR=1 "$KS_BUILD_ROOT/tests/sigloop" keystore:web stop-b 120 \
    >loop-b 2>&1 &
LOOP_B=$!
sleep 1
ks_ctl rotate web >rot.out || fail "rotate web"
grep -q "^rotated key web: EC P-256, .*version 2$" rot.out || { cat rot.out; fail "rotate output"; }
[ -f keys/web.v2.key ] || fail "no keys/web.v2.key"
ks_ctl pubkey web -o v2.pub
ks_ctl pubkey web --version 1 -o v1-again.pub
cmp -s v1.pub v1-again.pub || fail "pubkey --version 1 is not version 1's key"
cmp -s v1.pub v2.pub && fail "version 2 has version 1's public key"
sleep 1
touch stop-a
wait $LOOP_A || { cat loop-a; fail "the client that loaded version 1 failed during the rotation"; }
grep -Eq "^signed=[1-9][0-9]* retries=0 after_failure=0 bad=0$" loop-a || { cat loop-a; fail "loop a"; }
kill -0 $LOOP_B 2>/dev/null || { cat loop-b; fail "loop b stopped"; }
pass "rotation under load: the running client kept signing with version 1 ($(cat loop-a))"

openssl dgst "${PROV[@]}" -sha256 -sign keystore:web -out sig2 data || fail "sign with keystore:web"
openssl dgst -sha256 -verify v2.pub -signature sig2 data >/dev/null || fail "a new process did not get version 2"
openssl dgst -sha256 -verify v1.pub -signature sig2 data >/dev/null 2>&1 && fail "a new process signed with version 1"
openssl dgst "${PROV[@]}" -sha256 -sign 'keystore:web?version=1' -out sig1 data || fail "sign with ?version=1"
openssl dgst -sha256 -verify v1.pub -signature sig1 data >/dev/null || fail "?version=1 is not version 1"
openssl pkey "${PROV[@]}" -in 'keystore:web?version=1' -pubout -out v1-prov.pub || fail "pkey ?version=1"
cmp -s v1.pub v1-prov.pub || fail "the provider's ?version=1 public key differs"
expect_fail "key 'web' has no version 3 \(its current version is 2\)" \
    openssl dgst "${PROV[@]}" -sha256 -sign 'keystore:web?version=3' -out /dev/null data
expect_fail "unknown query 'version=01'" \
    openssl dgst "${PROV[@]}" -sha256 -sign 'keystore:web?version=01' -out /dev/null data
pass "a new process gets version 2; ?version=1 signs with version 1; ?version=3 is refused"

ks_ctl info web >info.out
grep -q "version 1: EC P-256, created .*, 0 certificates, usage sign$" info.out || { cat info.out; fail "info: version 1"; }
grep -q "version 2: EC P-256, created .*, usage sign (current)$" info.out || { cat info.out; fail "info: version 2"; }
ks_ctl --json info web | python3 -c '
import json, sys
k = json.load(sys.stdin)
assert k["version"] == 2, k
assert [(v["version"], v["current"], v["retired"]) for v in k["versions"]] == [(1, False, 0), (2, True, 0)], k
' || fail "info --json versions"
pass "info shows both versions (text and --json)"

# ---- retire: the old client is told why -----------------------------------
ks_ctl retire web --version 1 >ret.out || fail "retire"
[ ! -e keys/web.key ] || fail "version 1's file still exists after retire"
for i in $(seq 1 100); do kill -0 $LOOP_B 2>/dev/null || break; sleep 0.1; done
rc=0; wait $LOOP_B || rc=$?
[ $rc = 3 ] || { cat loop-b; fail "the old client was not refused (exit $rc)"; }
grep -Eq "key 'web' version 1 was retired on 20[0-9-]+T[0-9:]+Z: reload the application to use version 2" loop-b \
    || { cat loop-b; fail "the old client's refusal does not say why"; }
grep -Eq "^signed=[1-9][0-9]* retries=0 after_failure=0 bad=0$" loop-b || { cat loop-b; fail "loop b before retire"; }
expect_fail "ERROR_KEY_RETIRED" openssl dgst "${PROV[@]}" -sha256 -sign 'keystore:web?version=1' -out /dev/null data
expect_fail "version 2 is the current version of key 'web': rotate first" "$KEYSTORECTL" retire web --version 2
expect_fail "has no version 1 to retire \(it was retired already" "$KEYSTORECTL" retire web --version 1
pass "after retire the old client is refused: $(grep -o "key 'web' version 1 was retired[^)]*" loop-b | head -1)"

# ---- CSR by version 2, a local CA, attach-cert --version, s_server -----------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -subj "/CN=Test CA" \
    -days 2 -out ca.pem 2>/dev/null || fail "CA"
openssl req "${PROV[@]}" -new -key 'keystore:web?version=2' -subj /CN=localhost -out web2.csr \
    || fail "CSR signed by version 2"
openssl req -in web2.csr -verify -noout 2>/dev/null || fail "the CSR's signature does not verify"
openssl req -in web2.csr -pubkey -noout | cmp -s - v2.pub || fail "the CSR does not hold version 2's key"
printf 'subjectAltName=DNS:localhost\n' >san.ext
openssl x509 -req -in web2.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext \
    -out web2.pem 2>/dev/null || fail "CA signs the CSR"
expect_fail "key .web. has no version 3" "$KEYSTORECTL" attach-cert web web2.pem ca.pem --version 3
ks_ctl attach-cert web web2.pem ca.pem --version 2 >att.out || fail "attach-cert --version 2"
openssl storeutl "${PROV[@]}" -certs 'keystore:web?version=2&chain' >chain.out 2>&1 || { cat chain.out; fail "storeutl ?version=2&chain"; }
grep -q "Total found: 1" chain.out && sed -n "/BEGIN/,/END/p" chain.out | cmp -s - ca.pem || { cat chain.out; fail "?version=2&chain is not version 2's chain"; }
tls_serve srv.log -key keystore:web -cert keystore:web -cert_chain 'keystore:web?chain'
tls_get cli.out -CAfile ca.pem
grep -q "CN *= *localhost" cli.out || { cat cli.out; fail "s_server did not serve the new certificate"; }
pass "CSR from 'keystore:web?version=2', signed by a local CA, attached with --version 2, served by s_server"

# ---- rotate --all; a restart keeps the versions --------------------------
ks_ctl generate vault --type rsa --usage decrypt >/dev/null || fail "generate vault"
ks_ctl rotate --all >all.out || { cat all.out; fail "rotate --all"; }
grep -q "^rotated key web: .*version 3$" all.out && grep -q "^rotated key vault: RSA 2048, .*usage decrypt, version 2$" all.out \
    || { cat all.out; fail "rotate --all output"; }
ks_ctl pubkey web --version 3 -o v3.pub
cp keys/web.v2.key saved-v2.key
ks_stop
ks_start "allow_client_generate = yes"
ks_ctl list >list.out
grep -Eq "^web +EC +P-256 " list.out || { cat list.out; fail "list after restart"; }
grep -q "^  version 1: retired$" list.out || { cat list.out; fail "list: version 1 retired"; }
grep -q "^  version 2: EC P-256, created .*, 2 certificates, usage sign$" list.out || { cat list.out; fail "list: version 2"; }
grep -q "^  version 3: .*(current)$" list.out || { cat list.out; fail "list: version 3"; }
openssl dgst "${PROV[@]}" -sha256 -sign keystore:web -out sig3 data || fail "sign after restart"
openssl dgst -sha256 -verify v3.pub -signature sig3 data >/dev/null || fail "keystore:web is not version 3 after restart"
openssl dgst "${PROV[@]}" -sha256 -sign 'keystore:web?version=2' -out sig2b data || fail "?version=2 after restart"
openssl dgst -sha256 -verify v2.pub -signature sig2b data >/dev/null || fail "?version=2 after restart is not version 2"
expect_fail "key 'web' version 1 was retired \(before the server last started\): reload the application to use version 3" \
    openssl dgst "${PROV[@]}" -sha256 -sign 'keystore:web?version=1' -out /dev/null data
pass "rotate --all made web version 3 and vault version 2; a restart keeps every version"

# ---- ATTACK: retired or swapped version files ------------------------------
ks_ctl retire web --version 2 >/dev/null || fail "retire version 2"
ks_stop
cp saved-v2.key keys/web.v2.key          # the retired version put back
ks_start "allow_client_generate = yes"
grep -q "error: refusing $T/keys/web.v2.key: the manifest" keystored.log || { cat keystored.log; fail "a retired version's file was not refused"; }
expect_fail "ERROR_KEY_RETIRED" openssl dgst "${PROV[@]}" -sha256 -sign 'keystore:web?version=2' -out /dev/null data
ks_stop
rm keys/web.v2.key
cp keys/vault.v2.key keys/web.v3.key     # one key's version over another's
ks_start "allow_client_generate = yes"
grep -q "refusing $T/keys/web.v3.key" keystored.log || { cat keystored.log; fail "a swapped version file was not refused"; }
expect_fail "no key named 'web'" openssl dgst "${PROV[@]}" -sha256 -sign keystore:web -out /dev/null data
pass "ATTACK: a retired version put back and a version file copied over another are refused"
