#!/usr/bin/env bash
# Key agreement with keystore keys (issue 17, part 1): `pkeyutl -derive`
# with keystore:NAME gives the default provider's result on the same key
# (ECDH on every supported curve, X25519, X448), keys generated in the
# server agree with their peers, CMS decrypts to an EC recipient with
# -inkey keystore:NAME, and the ACL has the operation `derive`.
#
# ATTACK: a client that skips the provider (derive_raw) sends invalid peer
# keys straight to keystored: an EC point off the curve, the point at
# infinity, a point of another curve, small-order X25519/X448 points.  Each
# must get ERROR_BAD_PEER_KEY with a clear message and no secret.
. "$(dirname "$0")/lib.sh"
DERIVE_RAW="$KS_BUILD_ROOT/tests/derive_raw"
ks_start "allow_client_generate = yes" "audit_log = $T/audit.log"
cd "$T"

# the same private key in a file (default provider) and in the keystore
gen() {   # gen NAME ALG [CURVE]
    if [ -n "${3:-}" ]; then
        openssl genpkey -algorithm "$2" -pkeyopt "ec_paramgen_curve:$3" -out "$1.pem" 2>/dev/null
    else
        openssl genpkey -algorithm "$2" -out "$1.pem" 2>/dev/null
    fi || fail "genpkey $2 ${3:-}"
    openssl pkey -in "$1.pem" -pubout -out "$1.pub" || fail "pubout $1"
}

n=0
for spec in "EC P-256" "EC P-384" "EC P-521" "EC secp256k1" "EC brainpoolP256r1" \
            "EC brainpoolP384r1" "EC brainpoolP512r1" "X25519" "X448"; do
    n=$((n + 1))
    set -- $spec
    gen "k$n" "$@"
    gen "p$n" "$@"
    ks_ctl import "k$n" "k$n.pem" --usage derive >/dev/null || fail "import $spec"
    openssl pkeyutl -derive -inkey "k$n.pem" -peerkey "p$n.pub" -out "ref$n.bin" || fail "reference $spec"
    openssl pkeyutl "${PROV[@]}" -derive -inkey "keystore:k$n" -peerkey "p$n.pub" -out "ks$n.bin" \
        || fail "keystore derive $spec"
    cmp -s "ref$n.bin" "ks$n.bin" || fail "$spec: keystore secret differs from the default provider's"
    [ -s "ks$n.bin" ] || fail "$spec: empty secret"
done
[ "$(grep -c 'op=derive key=k[0-9] .*result=ok' audit.log)" = "$n" ] \
    || { cat audit.log; fail "derives did not go through keystored"; }
pass "pkeyutl -derive with keystore:NAME equals the default provider on $n key types/curves"

# keys made inside the server: its side and the peer's side agree
for spec in "x25519 X25519" "x448 X448" "ec EC"; do
    set -- $spec
    u=(); [ "$1" = ec ] && u=(--usage derive)   # X25519/X448 derive by default; EC keys sign unless made to derive
    ks_ctl generate "g$1" --type "$1" "${u[@]}" >/dev/null || fail "generate --type $1"
    ks_ctl pubkey "g$1" -o "g$1.pub" || fail "pubkey g$1"
    if [ "$2" = EC ]; then gen "q$1" EC P-256; else gen "q$1" "$2"; fi
    openssl pkeyutl "${PROV[@]}" -derive -inkey "keystore:g$1" -peerkey "q$1.pub" -out "a$1.bin" \
        || fail "derive with generated $1"
    openssl pkeyutl -derive -inkey "q$1.pem" -peerkey "g$1.pub" -out "b$1.bin" || fail "peer side $1"
    cmp -s "a$1.bin" "b$1.bin" || fail "generated $1 key: the two sides disagree"
done
ks_ctl list | grep -Eq '^gx25519 +X25519 ' || { ks_ctl list; fail "list does not show X25519"; }
openssl genpkey "${PROV[@]}" -propquery provider=keystore -algorithm X25519 \
    -pkeyopt keystore-name:viagenpkey -out viagenpkey.pem || fail "genpkey X25519 in the keystore"
openssl pkeyutl "${PROV[@]}" -derive -inkey viagenpkey.pem -peerkey qx25519.pub -out c.bin \
    || fail "derive with a genpkey'd reference file"
ks_ctl pubkey viagenpkey -o viagenpkey.pub
openssl pkeyutl -derive -inkey qx25519.pem -peerkey viagenpkey.pub -out d.bin
cmp -s c.bin d.bin || fail "genpkey X25519 key disagrees with its peer"
pass "generate --type x25519|x448|ec and genpkey -algorithm X25519 keys agree with their peers"

# CMS to EC recipients: encrypt with the certificate, decrypt with the keystore key
gen ca EC P-256
openssl req -new -x509 -key ca.pem -subj /CN=ca -days 2 -out ca.crt
echo "to the keystore recipient" >msg.txt
for spec in "cmsa P-256 -" "cmsb P-384 ecdh_kdf_md:sha256"; do
    set -- $spec
    ks_ctl generate "$1" --type ec --curve "$2" --usage derive >/dev/null
    ks_ctl pubkey "$1" -o "$1.pub"
    openssl req -new -key ca.pem -subj "/CN=$1" -out "$1.csr"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.pem -CAcreateserial -days 2 \
        -force_pubkey "$1.pub" -out "$1.crt" 2>/dev/null || fail "certificate for $1"
    opt=(); [ "$3" = - ] || opt=(-keyopt "$3")
    openssl cms -encrypt -binary -aes-256-cbc -recip "$1.crt" "${opt[@]}" -in msg.txt -out "$1.cms" \
        || fail "cms -encrypt to $2"
    openssl cms "${PROV[@]}" -decrypt -binary -inkey "keystore:$1" -recip "$1.crt" -in "$1.cms" -out "$1.out" \
        || fail "cms -decrypt with keystore:$1"
    cmp -s msg.txt "$1.out" || fail "CMS $2 plaintext differs"
    openssl cms "${PROV[@]}" -decrypt -binary -inkey "keystore:$1" -in "$1.cms" -out "$1.out2" \
        || fail "cms -decrypt without -recip"
    cmp -s msg.txt "$1.out2" || fail "CMS $2 plaintext differs (no -recip)"
done
pass "CMS encrypted to EC recipient certificates decrypts with -inkey keystore:NAME"

# X25519 recipients: OpenSSL 3.0's CMS has no X25519 key agreement (RFC
# 8418; openssl/openssl#22388), with or without the keystore.  Should a
# newer OpenSSL support it, the keystore key must decrypt too.
openssl req -new -key ca.pem -subj /CN=x -out x.csr
openssl x509 -req -in x.csr -CA ca.crt -CAkey ca.pem -CAcreateserial -days 2 \
    -force_pubkey gx25519.pub -out x.crt 2>/dev/null || fail "X25519 certificate"
if openssl cms -encrypt -binary -aes-256-cbc -recip x.crt -in msg.txt -out x.cms 2>x.err; then
    openssl cms "${PROV[@]}" -decrypt -binary -inkey keystore:gx25519 -recip x.crt -in x.cms -out x.out \
        || fail "cms -decrypt X25519 with keystore:gx25519"
    cmp -s msg.txt x.out || fail "CMS X25519 plaintext differs"
    pass "CMS to an X25519 recipient decrypts with keystore:NAME"
else
    grep -q "operation not supported for this keytype" x.err || { cat x.err; fail "X25519 CMS: unexpected error"; }
    note "this OpenSSL cannot encrypt CMS to X25519 recipients (documented); skipped that decrypt"
fi

# ---- ATTACK: invalid peer keys sent straight to the server ---------------
hex2der() { python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$1" >"$2"; }
refused() {   # refused WHAT KEY DERFILE PATTERN
    local out rc=0
    out=$("$DERIVE_RAW" "$KEYSTORE_SERVER" "$2" "$3") || rc=$?
    [ "$rc" = 3 ] || { echo "$out"; fail "$1: the server did not refuse (exit $rc)"; }
    grep -q "^secret" <<<"$out" && fail "$1: a secret came back"
    grep -Eq -- "$4" <<<"$out" || { echo "$out"; fail "$1: unclear error"; }
}
# control: the raw client gets the same secret for a valid peer key
openssl pkey -pubin -in p1.pub -outform DER -out p1.der
"$DERIVE_RAW" "$KEYSTORE_SERVER" k1 p1.der >raw.out || fail "raw derive of a valid key"
[ "$(cut -d' ' -f2 raw.out)" = "$(xxd -p -c 256 ref1.bin)" ] || fail "raw derive differs"
# P-256 point with its y coordinate changed: off the curve
python3 - p1.der off.der <<'PY'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
d[-1] ^= 1
open(sys.argv[2], 'wb').write(d)
PY
refused "off-curve P-256 point" k1 off.der "ERROR_BAD_PEER_KEY: key k1 \(EC P-256\) refuses the peer's public key: .*on the key's curve.*no secret"
# the point at infinity (a single 00 octet)
hex2der 3019301306072a8648ce3d020106082a8648ce3d030107030200 inf.der
printf '\0' >>inf.der
refused "P-256 point at infinity" k1 inf.der "ERROR_BAD_PEER_KEY: .*(infinity|curve)"
# a valid point of another curve
openssl pkey -pubin -in p2.pub -outform DER -out p384.der
refused "P-384 point for a P-256 key" k1 p384.der "ERROR_BAD_PEER_KEY: .*not on curve P-256"
refused "X25519 key for an EC key" k1 <(openssl pkey -pubin -in p8.pub -outform DER) \
    "ERROR_BAD_PEER_KEY: .*X25519 key, not EC"
head -c 200 /dev/urandom >junk.der
refused "junk bytes" k1 junk.der "ERROR_BAD_PEER_KEY: .*not a valid DER SubjectPublicKeyInfo"
head -c 5000 /dev/zero >big.der
refused "5000-byte peer key" k1 big.der "ERROR_BAD_PARAMETER: peer_public_key_der is 5000 bytes"
# small-order X25519 points: 0, 1, the two points of order 8, p-1, p, p+1
for u in 0000000000000000000000000000000000000000000000000000000000000000 \
         0100000000000000000000000000000000000000000000000000000000000000 \
         e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800 \
         5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157 \
         ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f \
         edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f \
         eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f; do
    hex2der "302a300506032b656e032100$u" small.der
    refused "X25519 small-order point $u" k8 small.der \
        "ERROR_BAD_PEER_KEY: key k8 \(X25519\) refuses the peer's public key: it is a small-order point.*no secret"
done
p448m1=fefffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffffffffffffffffffffffffffffffffffffffffffffffffff
for u in "$(printf '%0112d' 0)" "01$(printf '%0110d' 0)" "$p448m1"; do
    hex2der "3042300506032b656f033900$u" small.der
    refused "X448 small-order point" k9 small.der "ERROR_BAD_PEER_KEY: .*small-order point"
done
pass "off-curve, infinity, other-curve, junk and small-order peer keys are refused without a secret"

# the same refusal reaches an openssl user through the provider
hex2der "302a300506032b656e0321000000000000000000000000000000000000000000000000000000000000000000" zero.der
openssl pkey -pubin -inform DER -in zero.der -out zero.pub
rm -f z.bin
expect_fail "small-order point" openssl pkeyutl "${PROV[@]}" -derive -inkey keystore:k8 -peerkey zero.pub -out z.bin
[ ! -s z.bin ] || fail "pkeyutl wrote a secret for a small-order peer"
# RSA keys do not derive
ks_ctl generate rsa --type rsa >/dev/null
refused "derive with an RSA key" rsa p1.der "ERROR_WRONG_KEY_TYPE: key rsa is RSA: only EC, X25519 and X448"
pass "pkeyutl -derive reports the small-order refusal; RSA keys cannot derive"

# the access list: derive is its own operation
cat >acl <<'ACL'
k1 sign,decrypt *
k2 derive *
ACL
ks_stop
ks_start "acl = $T/acl"
expect_fail "may not derive with key 'k1'" \
    openssl pkeyutl "${PROV[@]}" -derive -inkey keystore:k1 -peerkey p1.pub -out denied.bin
openssl pkeyutl "${PROV[@]}" -derive -inkey keystore:k2 -peerkey p2.pub -out allowed.bin \
    || fail "derive allowed by the access list"
cmp -s allowed.bin ref2.bin || fail "derive under the access list differs"
pass "the access list grants derive on its own (sign,decrypt does not include it)"

# usage: an EC key made for signing (the default) never derives, whatever the
# access list says; one made with --usage derive does not sign
ks_ctl generate ecsign --type ec >/dev/null || fail "generate ecsign"
ks_ctl generate ecderive --type ec --usage derive >/dev/null || fail "generate ecderive"
cat >acl <<'ACL'
ec* sign,decrypt,derive *
k2 derive *
ACL
ks_stop
ks_start "acl = $T/acl"
expect_fail "key 'ecsign' is for sign only: it may not derive" \
    openssl pkeyutl "${PROV[@]}" -derive -inkey keystore:ecsign -peerkey p1.pub -out u.bin
openssl pkeyutl "${PROV[@]}" -derive -inkey keystore:ecderive -peerkey p1.pub -out u.bin \
    || fail "a derive-usage EC key should derive"
openssl dgst -sha256 -binary /etc/hostname > dg
expect_fail "key 'ecderive' is for derive only: it may not sign" \
    openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:ecderive -in dg -out s.bin
pass "usage: a sign-only EC key never derives, a derive-only one never signs"

# a peer without any grant on a key learns nothing from its usage: a Derive
# with a sign-only key answers exactly like one with a key that does not exist
cat >acl <<'ACL'
k2 derive *
ACL
ks_stop
ks_start "acl = $T/acl"
a=$("$DERIVE_RAW" "$KEYSTORE_SERVER" ecsign p1.der 2>&1 || true)
b=$("$DERIVE_RAW" "$KEYSTORE_SERVER" ecnone p1.der 2>&1 || true)
[ "$a" = "${b//ecnone/ecsign}" ] || { echo "$a"; echo "$b"; fail "a sign-only key answers differently from a missing one"; }
grep -q "ERROR_PERMISSION_DENIED" <<<"$a" || { echo "$a"; fail "expected the access list's refusal"; }
pass "no grant: a key whose usage does not fit answers like a missing key"
