#!/usr/bin/env bash
# Certificates and curves (issue 17, parts 2-6):
#  - more curves: secp256k1 and brainpoolP256r1/384r1/512r1 generate, import,
#    sign and verify; weaker or binary curves are refused naming the list;
#  - ATTACK: attach-cert with a chain that does not belong to the leaf (an
#    unrelated CA, a CA with the right name but another key, a wrong link
#    further up) is refused naming the first link that does not fit;
#    --no-chain-check stores it anyway;
#  - list / info show subject, issuer and not-after; list --expiring;
#  - s_server -cert_chain 'keystore:NAME?chain' works for a self-signed and
#    a leaf-only key, and a key without a certificate gets an actionable error;
#  - openssl storeutl keystore: lists every key and certificate.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
ks_start
cd "$T"
echo "data to sign" >data

# ---- more curves ----------------------------------------------------------
for c in secp256k1 brainpoolP256r1 brainpoolP384r1 brainpoolP512r1; do
    ks_ctl generate "c-$c" --type ec --curve "$c" >gen.out || fail "generate --curve $c"
    grep -q "EC $c," gen.out || { cat gen.out; fail "generate $c: curve not reported"; }
    ks_ctl pubkey "c-$c" -o "c-$c.pub"
    openssl dgst "${PROV[@]}" -sha256 -sign "keystore:c-$c" -out sig data || fail "sign with $c"
    openssl dgst -sha256 -verify "c-$c.pub" -signature sig data >/dev/null || fail "verify $c"
done
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:brainpoolP384r1 -out bp.pem 2>/dev/null
openssl pkey -in bp.pem -pubout -out bp.pub
ks_ctl import bp bp.pem >/dev/null || fail "import brainpoolP384r1"
openssl dgst "${PROV[@]}" -sha384 -sign keystore:bp -out sig data || fail "sign with imported brainpool"
openssl dgst -sha384 -verify bp.pub -signature sig data >/dev/null || fail "verify imported brainpool"
expect_fail "EC curve 'secp224r1' is not supported: use P-256, P-384, P-521, secp256k1, brainpoolP256r1, brainpoolP384r1 or brainpoolP512r1" \
    "$KEYSTORECTL" generate weak --type ec --curve secp224r1
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:sect283k1 -out binary.pem 2>/dev/null
expect_fail "EC curve sect283k1 is not supported; use P-256" "$KEYSTORECTL" import binary binary.pem
pass "secp256k1 and brainpool curves generate, import, sign and verify; others are refused"

# ---- attach-cert checks the chain (ATTACK: an unrelated chain) -------------
cat >ext.cnf <<'CNF'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectAltName = DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
mkca() {   # mkca NAME SUBJECT [ISSUER]: a CA key and certificate
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.pem" 2>/dev/null
    if [ -z "${3:-}" ]; then
        openssl req -new -x509 -key "$1.pem" -subj "$2" -days 30 -addext basicConstraints=critical,CA:TRUE \
            -addext keyUsage=critical,keyCertSign -out "$1.crt" || fail "CA $1"
    else
        openssl req -new -key "$1.pem" -subj "$2" -out "$1.csr"
        openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.pem" -CAcreateserial -days 30 \
            -extfile ext.cnf -extensions ca -out "$1.crt" 2>/dev/null || fail "CA $1"
    fi
}
leaf() {   # leaf KEY ISSUER DAYS: a certificate for keystore key KEY
    openssl req "${PROV[@]}" -new -key "keystore:$1" -subj "/CN=$1" -out "$1.csr" || fail "CSR $1"
    openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.pem" -CAcreateserial -days "$3" \
        -extfile ext.cnf -extensions leaf -out "$1.crt" 2>/dev/null || fail "leaf $1"
}
mkca root "/CN=Test Root"
mkca inter "/CN=Test Inter" root
mkca other "/CN=Other CA"
mkca fakeinter "/CN=Test Inter"      # the right name, another key
mkca otherroot "/CN=Other Root"
ks_ctl generate web --type ec >/dev/null
leaf web inter 20
refuse_chain() {   # refuse_chain PATTERN FILES...
    local out rc=0
    out=$("$KEYSTORECTL" attach-cert web "$@" 2>&1) || rc=$?
    [ "$rc" = 3 ] || { echo "$out"; fail "attach-cert $*: accepted (exit $rc)"; }
    grep -Eq -- "$PATTERN" <<<"$out" || { echo "$out"; fail "attach-cert $*: unclear refusal"; }
}
PATTERN="ERROR_CERT_MISMATCH: certificate 1 \(CN=web\) was not issued by certificate 2 \(CN=Other CA\): .*its issuer is CN=Test Inter"
refuse_chain web.crt other.crt
PATTERN="certificate 1 \(CN=web\) was not issued by certificate 2 \(CN=Test Inter\)"
refuse_chain web.crt fakeinter.crt
PATTERN="certificate 2 \(CN=Test Inter\) was not issued by certificate 3 \(CN=Other Root\).*--no-chain-check"
refuse_chain web.crt <(cat inter.crt otherroot.crt)
[ "$(ks_ctl --json info web | python3 -c 'import json,sys; print(json.load(sys.stdin)["certs"])')" = 0 ] \
    || fail "a refused chain was stored"
ks_ctl attach-cert web web.crt other.crt --no-chain-check >/dev/null || fail "--no-chain-check"
ks_ctl attach-cert web web.crt <(cat inter.crt root.crt) >/dev/null || fail "attach the right chain"
pass "attach-cert refuses a chain whose certificates do not issue each other; --no-chain-check overrides"

# ---- list / info: subject, issuer, not-after; --expiring --------------------
ks_ctl info web >info.out
grep -q "certificate 1: subject CN=web, issuer CN=Test Inter, not after 20" info.out || { cat info.out; fail "info"; }
grep -q "certificate 3: subject CN=Test Root, issuer CN=Test Root" info.out || { cat info.out; fail "info chain"; }
want=$(date -u -d "$(openssl x509 -in web.crt -noout -enddate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ)
[ "$(ks_ctl --json info web | python3 -c 'import json,sys; c=json.load(sys.stdin)["certificates"][0]; print(c["subject"], c["issuer"], c["not_after_iso"])')" \
    = "CN=web CN=Test Inter $want" ] || fail "info --json certificates"
ks_ctl list | grep -Eq "^web +EC +P-256 +[0-9TZ:-]+ +yes +sign +$want +CN=web +CN=Test Inter$" || { ks_ctl list; fail "list columns"; }
ks_ctl generate longlived --type ec >/dev/null
leaf longlived root 400
ks_ctl attach-cert longlived longlived.crt root.crt >/dev/null
expiring() { ks_ctl list --expiring "$1" | awk 'NR > 1 { print $1 }' | tr '\n' ' '; }
[ "$(expiring 30d)" = "web " ] || fail "--expiring 30d: $(expiring 30d)"
[ "$(expiring 90d)" = "web " ] || fail "--expiring 90d"
[ "$(expiring 500d)" = "longlived web " ] || fail "--expiring 500d: $(expiring 500d)"
rc=0; ks_ctl list --expiring 12h >/dev/null || rc=$?
[ "$rc" = 5 ] || fail "--expiring 12h with nothing expiring: exit $rc, not 5"
[ "$(ks_ctl --json list --expiring 30d | python3 -c 'import json,sys; print([k["name"] for k in json.load(sys.stdin)])')" = "['web']" ] \
    || fail "--json list --expiring"
expect_fail "duration such as 30d" "$KEYSTORECTL" list --expiring 30x
pass "list/info show subject, issuer and not-after; list --expiring 30d|90d|500d|12h"

# ---- -cert_chain 'keystore:NAME?chain' for every key -----------------------
ks_ctl generate self --type ec >/dev/null
selfsigned self
ks_ctl attach-cert self self.crt >/dev/null
tls_serve s1.log -key keystore:self -cert keystore:self -cert_chain 'keystore:self?chain'
tls_get c1.log -CAfile self.crt
ks_ctl generate leafonly --type ec >/dev/null
leaf leafonly root 5
ks_ctl attach-cert leafonly leafonly.crt >/dev/null
tls_serve s2.log -key keystore:leafonly -cert keystore:leafonly -cert_chain 'keystore:leafonly?chain'
tls_get c2.log -CAfile root.crt
tls_serve s3.log -key keystore:web -cert keystore:web -cert_chain 'keystore:web?chain'
tls_get c3.log -CAfile root.crt -showcerts
expect_line c3.log "1 s:CN = Test Inter" "intermediate sent after the leaf"
ks_ctl generate nocert --type ec >/dev/null
ks_ctl attach-cert nocert self.crt --no-chain-check >/dev/null 2>&1 && fail "a foreign leaf was attached"
expect_fail "key 'nocert' has no certificate in the keystore: attach one with 'keystorectl attach-cert nocert" \
    timeout 20 openssl s_server "${PROV[@]}" -accept 127.0.0.1:0 -naccept 1 -key keystore:nocert \
    -cert self.crt -cert_chain 'keystore:nocert?chain'
pass "s_server -cert_chain 'keystore:NAME?chain' serves self-signed, leaf-only and chained keys"

# ---- storeutl keystore: lists what the client may see ----------------------
nkeys=$(ks_ctl --json list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
ncerts=$(ks_ctl --json list | python3 -c 'import json,sys; print(sum(k["certs"] for k in json.load(sys.stdin)))')
openssl storeutl "${PROV[@]}" -keys keystore: >keys.out || fail "storeutl -keys keystore:"
grep -q "Total found: $nkeys$" keys.out || { tail -1 keys.out; fail "storeutl -keys keystore: != $nkeys keys"; }
openssl storeutl "${PROV[@]}" -certs keystore: >certs.out || fail "storeutl -certs keystore:"
grep -q "Total found: $ncerts$" certs.out || { tail -1 certs.out; fail "storeutl -certs keystore: != $ncerts"; }
openssl storeutl "${PROV[@]}" -text keystore: >all.out || fail "storeutl keystore:"
grep -q "Total found: $((nkeys + ncerts))$" all.out || fail "storeutl keystore: total"
for k in web self nocert c-secp256k1; do
    grep -q "keystore key: keystore:$k " all.out || fail "storeutl keystore: does not name $k"
done
expect_fail "'\?chain' needs a key name" openssl storeutl "${PROV[@]}" 'keystore:?chain'
pass "openssl storeutl keystore: lists every key ($nkeys) and certificate ($ncerts)"
