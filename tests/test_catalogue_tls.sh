#!/bin/bash
# catalogue = etcd over TLS with etcd authentication (issue 15's options
# catalogue_cacert, catalogue_cert, catalogue_key, catalogue_user,
# catalogue_password_file): three etcd members of the test's own serving
# HTTPS on loopback and requiring client certificates (made here with
# openssl req/x509), etcd auth enabled with etcdctl.
#  - two replicas work through TLS + client certificate + password: a key
#    generated on a signs through b;
#  - a replica trusting another CA is refused: the admin write fails and the
#    log warns, both naming etcd and the endpoint;
#  - a wrong password likewise;
#  - the password file's content never appears in any log or in
#    keystorectl status --json;
#  - the agent read the certificate, key and password before confinement:
#    after the three files are deleted and every etcd member restarted (new
#    TLS connections, new authentication), a still works.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd_lib.sh"
[ "$(id -u)" = 0 ] || fail "the files must be unreadable to the agent's unprivileged user: run as root (CI does)"
cd "$T"

# --- certificates: a CA, etcd's server certificate (also its gateway's
# client certificate: etcd's JSON gateway dials its own gRPC port with it),
# keystored's client certificate, and a CA nobody uses
mkdir -m 0700 pki
cd pki
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=kst-ca \
    -keyout ca.key -out ca.crt 2>/dev/null || fail "CA"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other-ca \
    -keyout other-ca.key -out other-ca.crt 2>/dev/null || fail "other CA"
cert() {   # NAME CN EXTENSIONS
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "$([ -n "$2" ] && echo "/CN=$2" || echo /O=keystore)" \
        -keyout "$1.key" -out "$1.csr" 2>/dev/null &&
    printf '%s\n' "$3" > "$1.ext" &&
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null || fail "certificate $1"
}
cert etcd etcd-server "subjectAltName = IP:127.0.0.1, DNS:etcd.test
extendedKeyUsage = serverAuth, clientAuth"
# no CommonName: etcd 3.4's JSON gateway refuses (HTTP 400) every request
# from a client certificate with one while auth is on (docs/scaling.md)
cert keystore "" "extendedKeyUsage = clientAuth"
cert keystore-cn keystore "extendedKeyUsage = clientAuth"
chmod 0600 ./*.key
cd "$T"

ETCD_SCHEME=https
ETCD_MEMBER_ARGS=(--cert-file "$T/pki/etcd.crt" --key-file "$T/pki/etcd.key"
                  --trusted-ca-file "$T/pki/ca.crt" --client-cert-auth)
ETCD_CTL_ARGS=(--cacert "$T/pki/ca.crt" --cert "$T/pki/etcd.crt" --key "$T/pki/etcd.key")
etcd_start

# --- etcd authentication: root, and a user that may use /kst/ only
etcd_ctl user add root:root-pw-4711 >/dev/null || fail "etcdctl user add root"
etcd_ctl user grant-role root root >/dev/null || fail "etcdctl user grant-role root root"
etcd_ctl user add keystore:Ks-Secret-Pw-93f1 >/dev/null || fail "etcdctl user add keystore"
etcd_ctl role add keystore >/dev/null || fail "role add"
etcd_ctl role grant-permission keystore --prefix=true readwrite /kst/ >/dev/null || fail "grant"
etcd_ctl user grant-role keystore keystore >/dev/null || fail "grant-role"
etcd_ctl auth enable >/dev/null || fail "etcdctl auth enable"
ETCD_CTL_ARGS+=(--user root:root-pw-4711)
out=$(ETCDCTL_API=3 etcdctl --endpoints="https://127.0.0.1:$ETCD_C1" --cacert "$T/pki/ca.crt" \
    --cert "$T/pki/etcd.crt" --key "$T/pki/etcd.key" put /kst/keys/x y 2>&1) &&
    fail "etcd accepted a write without a password: auth is not on ($out)"

printf 'Ks-Secret-Pw-93f1\n' > pw
printf 'Wrong-Pw-0000\n' > badpw
chmod 0600 pw badpw
TLS=("catalogue_cacert = $T/pki/ca.crt" "catalogue_cert = $T/pki/keystore.crt"
     "catalogue_key = $T/pki/keystore.key" "catalogue_user = keystore")
replica_start a "${TLS[@]}" "catalogue_password_file = $T/pw"
replica_start b "${TLS[@]}" "catalogue_password_file = $T/pw"
printf 'data\n' > data
# 1. through TLS, client certificate and etcd password
replica_ctl a generate web --type ec >gen.out 2>&1 || { cat gen.out; tail -5 a/keystored.log; fail "generate on a through TLS + auth"; }
ms=$(replica_wait_key b web present 2) || fail "the key generated on a is not on b within 2 s"
sign_on b web || fail "b lists web but cannot sign with it"
etcd_ctl get --prefix --keys-only /kst/keys/ | grep -x /kst/keys/web >/dev/null ||
    fail "etcd does not hold /kst/keys/web"
pass "TLS with a client certificate and etcd auth: generated on a, on b after $ms ms, signed through b"

# 2. a replica that trusts another CA
replica_start c "catalogue_cacert = $T/pki/other-ca.crt" "catalogue_cert = $T/pki/keystore.crt" \
    "catalogue_key = $T/pki/keystore.key" "catalogue_user = keystore" "catalogue_password_file = $T/pw"
out=$(replica_ctl c generate c1 --type ec 2>&1) && fail "c generated a key through a TLS server its CA did not sign"
echo "$out" | grep -q ERROR_CATALOGUE_UNAVAILABLE || fail "wrong CA: wrong error: $out"
echo "$out" | grep -q etcd && echo "$out" | grep -q "https://127.0.0.1:$ETCD_C1" ||
    fail "wrong CA: the error does not name etcd and the endpoint: $out"
echo "$out" | grep -qi 'certificate' || fail "wrong CA: the error does not say certificate: $out"
grep -q "warning: catalogue: etcd unreachable (.*https://127.0.0.1:$ETCD_C1" c/keystored.log ||
    { tail -5 c/keystored.log; fail "wrong CA: no warning naming etcd and the endpoint in the log"; }
pass "wrong CA refused: $(echo "$out" | head -c 220)"
replica_stop c

# 3. a wrong password
replica_start d "${TLS[@]}" "catalogue_password_file = $T/badpw"
out=$(replica_ctl d generate d1 --type ec 2>&1) && fail "d generated a key with a wrong etcd password"
echo "$out" | grep -q ERROR_CATALOGUE_UNAVAILABLE || fail "wrong password: wrong error: $out"
echo "$out" | grep -q etcd && echo "$out" | grep -q "https://127.0.0.1:$ETCD_C1" ||
    fail "wrong password: the error does not name etcd and the endpoint: $out"
echo "$out" | grep -qi 'password' || fail "wrong password: the error does not say so: $out"
pass "wrong password refused: $(echo "$out" | head -c 220)"
replica_stop d

# 4. endpoints by host name, resolved once before confinement (the confined
# agent reads no /etc/hosts); TLS checks etcd's certificate against the name.
# (Not localhost: libcurl answers that one itself.)  The name is in an
# /etc/hosts of h's own, bind-mounted in a mount namespace of its own.
printf '127.0.0.1 etcd.test\n' > hosts
cat > keystored-names <<SH
#!/bin/sh
exec unshare -m --propagation private sh -c 'mount --bind "\$0" /etc/hosts && exec "\$@"' \
    "$T/hosts" "$KEYSTORED" "\$@"
SH
chmod +x keystored-names
KEYSTORED=$T/keystored-names \
    ETCD_ENDPOINTS="https://etcd.test:$ETCD_C1 https://etcd.test:$ETCD_C2 https://etcd.test:$ETCD_C3" \
    replica_start h "${TLS[@]}" "catalogue_password_file = $T/pw"
getent hosts etcd.test >/dev/null && fail "etcd.test resolves outside h's namespace: the test proves nothing"
grep -q "etcd host resolved once, at start: etcd.test:$ETCD_C1:127.0.0.1" h/keystored.log ||
    { grep catalogue h/keystored.log; fail "h did not say it resolved etcd.test at start"; }
replica_ctl h generate byname --type ec >gen.out 2>&1 ||
    { cat gen.out; grep catalogue h/keystored.log; fail "generate on h (endpoints https://etcd.test:PORT)"; }
replica_wait_key a byname present 2 >/dev/null || fail "the key generated on h is not on a"
replica_ctl h info web >/dev/null || fail "h did not read the catalogue (web) through etcd.test"
pass "endpoints https://etcd.test:PORT: resolved once at start, TLS checked the name, h wrote and read"
replica_stop h
cat > nocacert.conf <<CONF
key_dir = $T/nocacert-keys
master_key = $T/master.key
catalogue = etcd
catalogue_endpoints = https://127.0.0.1:$ETCD_C1
CONF
out=$("$KEYSTORED" -c nocacert.conf 2>&1) && fail "keystored started with https endpoints and no catalogue_cacert"
echo "$out" | grep -q "https etcd endpoints need catalogue_cacert" || fail "https without catalogue_cacert: $out"
pass "https endpoints without catalogue_cacert refused at start: $(echo "$out" | grep -o 'error: .*' | head -c 200)"

# 5. a client certificate with a CommonName: etcd's gateway says why in plain text
replica_start e "catalogue_cacert = $T/pki/ca.crt" "catalogue_cert = $T/pki/keystore-cn.crt" \
    "catalogue_key = $T/pki/keystore-cn.key" "catalogue_user = keystore" "catalogue_password_file = $T/pw"
out=$(replica_ctl e generate e1 --type ec 2>&1) && fail "e wrote through the gateway with a CommonName certificate"
echo "$out" | grep -q "https://127.0.0.1:$ETCD_C1: HTTP 400, not a JSON object (\"CommonName of client" ||
    fail "a certificate with a CommonName: etcd's reason is not in the error: $out"
pass "a client certificate with a CommonName: $(echo "$out" | head -c 260)"
replica_stop e

# 6. the passwords appear nowhere
for n in a b; do
    replica_ctl "$n" status --json > "status-$n.json" || fail "status --json on $n"
done
for secret in Ks-Secret-Pw-93f1 Wrong-Pw-0000; do
    if grep -l -- "$secret" ./*/keystored.log status-*.json; then
        fail "the etcd password from the password file appears in the files above"
    fi
done
pass "the password files' contents are in no log and in no status --json"

# 7. read before confinement: the files gone, every member restarted, a
# still connects (TLS handshake with its client certificate) and logs in
rm -f pw pki/keystore.key pki/keystore.crt
mv pki/ca.crt pki/ca.crt.moved
ETCD_MEMBER_ARGS[5]=$T/pki/ca.crt.moved   # --trusted-ca-file
ETCD_CTL_ARGS[1]=$T/pki/ca.crt.moved
etcd_stop_all
for i in 1 2 3; do etcd_member_start "$i" existing; done
etcd_wait_healthy
start=$(date +%s%N)
until replica_ctl a generate web2 --type ec >gen.out 2>&1; do
    [ $(( ($(date +%s%N) - start) / 1000000000 )) -lt 20 ] ||
        { cat gen.out; tail -5 a/keystored.log; fail "a cannot write after the files were deleted and etcd restarted"; }
    sleep 0.2
done
replica_wait_key b web2 present 3 >/dev/null || fail "web2 not on b"
grep -q "etcd reachable again" a/keystored.log || fail "a's agent never lost etcd: the restart proved nothing"
pass "certificate, key, CA and password deleted, etcd restarted: a reconnected and wrote (read before confinement)"
