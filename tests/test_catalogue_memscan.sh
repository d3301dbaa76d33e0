#!/bin/bash
# catalogue = etcd: the agent process that talks to etcd never holds key
# material.  Two replicas; an RSA and an EC key imported on A (so the test
# knows their private components), loaded by B from etcd, used for signing
# on both; then tests/memscan reads every mapping of both agents and finds
# none of the private components, in either byte order.  The same scan of
# A's key process finds them (the scan works).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd_lib.sh"
MEMSCAN="$KS_BUILD_ROOT/tests/memscan"
cd "$T"

fleet_of_two
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem
replica_ctl a import m-rsa rsa.pem >/dev/null || fail "import rsa"
replica_ctl a import m-ec ec.pem >/dev/null || fail "import ec"
replica_ctl a generate m-gen --type ec >/dev/null || fail "generate"
for k in m-rsa m-ec m-gen; do replica_wait_key b "$k" present 3 >/dev/null || fail "$k not on b"; done
for r in a b; do
    for k in m-rsa m-ec; do
        KEYSTORE_SERVER="unix:$T/$r/ks.sock" openssl dgst "${PROV[@]}" -sha256 -sign "keystore:$k" \
            -out sig data || fail "sign with $k on $r"
    done
done

agent_of() {   # REPLICA: pid of its catalogue agent
    local p
    p=$(pgrep -P "${REPLICA_PID[$1]}" -x keystored-cat) || fail "no catalogue agent under replica $1"
    echo "$p"
}
for r in a b; do
    pid=$(agent_of "$r")
    for key in rsa.pem ec.pem; do
        "$MEMSCAN" "$pid" "$key" || fail "the agent of replica $r holds private components of $key"
    done
done
pass "neither agent holds a private component of the imported RSA and EC keys (both byte orders)"
"$MEMSCAN" "${REPLICA_PID[a]}" rsa.pem --expect-found >/dev/null ||
    fail "the scan does not find the RSA key in a's key process: the scan does not work"
pass "the same scan finds the RSA key in replica a's key process"
