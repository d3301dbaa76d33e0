#!/usr/bin/env bash
# Every signature and decryption parameter reaches the server and is honoured
# there, checked against the default provider: PSS salt lengths (digest, max,
# auto, explicit) and MGF1 digests, restricted RSA-PSS keys, OAEP digests,
# MGF1 digests and labels, PKCS#1 v1.5, ECDSA with every SHA-2 digest on
# P-256/384/521, and deterministic signatures identical to the default provider's.
. "$(dirname "$0")/lib.sh"
ks_start

# Settable/gettable names and values through the generic params API (params_api.c).
ks_ctl generate pss --type rsa-pss >/dev/null || fail "generate pss"
ks_ctl generate ec --type ec >/dev/null || fail "generate ec"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/rsa.pem" 2>/dev/null
ks_ctl import rsa "$T/rsa.pem" --usage sign,decrypt >/dev/null || fail "import rsa"
openssl pkey -in "$T/rsa.pem" -pubout -out "$T/rsa.pub"
head -c 3000 /dev/urandom >"$T/data"
for md in sha224 sha256 sha384 sha512 sha512-224 sha512-256; do
    openssl dgst "-$md" -binary "$T/data" >"$T/data.$md"
done

# ---- RSA-PSS salt lengths and MGF1 ------------------------------------
# pss_sign NAME SIGN-OPTS... -- sign a SHA-256 digest with keystore:rsa
pss_sign() {
    local out=$1; shift
    openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:rsa -in "$T/data.sha256" -out "$T/$out" \
        -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss "$@" || fail "PSS sign $*"
}
# pss_verify SIG VERIFY-OPTS...: the default provider, public key only
pss_verify() {
    local sig=$1; shift
    openssl pkeyutl -verify -pubin -inkey "$T/rsa.pub" -in "$T/data.sha256" -sigfile "$T/$sig" \
        -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss "$@" >/dev/null 2>&1
}
# 2048-bit key, SHA-256: maximum salt = 256 - 32 - 2 = 222 bytes
pss_sign s-digest -pkeyopt rsa_pss_saltlen:digest
pss_verify s-digest -pkeyopt rsa_pss_saltlen:32 || fail "saltlen digest did not give 32 bytes"
pss_verify s-digest -pkeyopt rsa_pss_saltlen:222 && fail "saltlen digest verified as 222 bytes"
pss_sign s-max -pkeyopt rsa_pss_saltlen:max
pss_verify s-max -pkeyopt rsa_pss_saltlen:222 || fail "saltlen max did not give 222 bytes"
pss_verify s-max -pkeyopt rsa_pss_saltlen:auto || fail "saltlen max does not verify with auto"
pss_sign s-auto -pkeyopt rsa_pss_saltlen:auto
# OpenSSL 3.0 signs "auto" with the maximum salt, as the default provider does
pss_verify s-auto -pkeyopt rsa_pss_saltlen:222 || fail "saltlen auto did not sign with the maximum"
openssl pkeyutl -sign -inkey "$T/rsa.pem" -in "$T/data.sha256" -out "$T/s-auto-default" \
    -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:auto
pss_verify s-auto-default -pkeyopt rsa_pss_saltlen:222 || fail "default provider's auto is not max either"
for n in 0 10 100; do
    pss_sign "s-$n" -pkeyopt "rsa_pss_saltlen:$n"
    pss_verify "s-$n" -pkeyopt "rsa_pss_saltlen:$n" || fail "explicit salt $n"
    pss_verify "s-$n" -pkeyopt "rsa_pss_saltlen:$((n + 1))" && fail "salt $n verified as $((n + 1))"
done
expect_fail "too long|salt" openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:rsa -in "$T/data.sha256" \
    -out "$T/x" -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:223
pass "PSS salt lengths digest, max, auto and explicit are honoured by the server"

pss_sign m-sha512 -pkeyopt rsa_pss_saltlen:digest -pkeyopt rsa_mgf1_md:sha512
pss_verify m-sha512 -pkeyopt rsa_pss_saltlen:32 -pkeyopt rsa_mgf1_md:sha512 || fail "MGF1 SHA-512"
pss_verify m-sha512 -pkeyopt rsa_pss_saltlen:32 && fail "MGF1 SHA-512 signature verified with MGF1 SHA-256"
pss_sign m-sha1 -pkeyopt rsa_pss_saltlen:20 -pkeyopt rsa_mgf1_md:sha1
pss_verify m-sha1 -pkeyopt rsa_pss_saltlen:20 -pkeyopt rsa_mgf1_md:sha1 || fail "MGF1 SHA-1"
pass "PSS MGF1 digest is honoured by the server"

# dgst -sigopt (the digest-and-sign path) with every PSS option
echo "dgst path" >"$T/msg"
openssl dgst "${PROV[@]}" -sha384 -sign keystore:rsa -sigopt rsa_padding_mode:pss \
    -sigopt rsa_pss_saltlen:48 -sigopt rsa_mgf1_md:sha256 -out "$T/d.sig" "$T/msg" || fail "dgst -sigopt pss"
openssl dgst -sha384 -verify "$T/rsa.pub" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:48 \
    -sigopt rsa_mgf1_md:sha256 -signature "$T/d.sig" "$T/msg" >/dev/null || fail "dgst -sigopt pss verify"
pass "dgst -sigopt PSS options"

# ---- restricted RSA-PSS key -------------------------------------------
openssl genpkey -algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048 -pkeyopt rsa_pss_keygen_md:sha256 \
    -pkeyopt rsa_pss_keygen_mgf1_md:sha256 -pkeyopt rsa_pss_keygen_saltlen:32 -out "$T/rpss.pem" 2>/dev/null
ks_ctl import rpss "$T/rpss.pem" >/dev/null || fail "import restricted RSA-PSS key"
openssl pkey -in "$T/rpss.pem" -pubout -out "$T/rpss.pub"
ks_ctl pubkey rpss | cmp -s - "$T/rpss.pub" || fail "restricted key's public key (with its parameters) changed"
openssl dgst "${PROV[@]}" -sha256 -sign keystore:rpss -out "$T/r.sig" "$T/msg" || fail "restricted key, its own digest"
openssl dgst -sha256 -verify "$T/rpss.pub" -signature "$T/r.sig" "$T/msg" >/dev/null || fail "restricted signature"
# like the default provider, the key's minimum salt length is the default
openssl dgst -sha256 -verify "$T/rpss.pub" -sigopt rsa_pss_saltlen:32 -signature "$T/r.sig" "$T/msg" >/dev/null \
    || fail "restricted key did not default to its 32-byte salt"
expect_fail "rejects this digest.*digest not allowed" openssl dgst "${PROV[@]}" -sha384 -sign keystore:rpss \
    -out "$T/x" "$T/msg"
expect_fail "saltlen too small" openssl dgst "${PROV[@]}" -sha256 -sign keystore:rpss -sigopt rsa_pss_saltlen:16 -out "$T/x" "$T/msg"
expect_fail "pss padding|PSS" openssl dgst "${PROV[@]}" -sha256 -sign keystore:rpss \
    -sigopt rsa_padding_mode:pkcs1 -out "$T/x" "$T/msg"
# restricted to SHA-256 with the default MGF1 (SHA-1): the MGF1 restriction is honoured too
openssl genpkey -algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048 -pkeyopt rsa_pss_keygen_md:sha256 \
    -pkeyopt rsa_pss_keygen_saltlen:20 -out "$T/rpss1.pem" 2>/dev/null
ks_ctl import rpss1 "$T/rpss1.pem" >/dev/null || fail "import restricted RSA-PSS key (MGF1 SHA-1)"
openssl pkey -in "$T/rpss1.pem" -pubout -out "$T/rpss1.pub"
openssl dgst "${PROV[@]}" -sha256 -sign keystore:rpss1 -out "$T/r1.sig" "$T/msg" || fail "restricted key, default MGF1"
openssl dgst -sha256 -verify "$T/rpss1.pub" -sigopt rsa_mgf1_md:sha1 -sigopt rsa_pss_saltlen:20 \
    -signature "$T/r1.sig" "$T/msg" >/dev/null || fail "restricted key did not sign with MGF1 SHA-1 and 20-byte salt"
pass "restricted RSA-PSS key: its digest and salt by default, other digests, shorter salts and PKCS#1 refused"

# ---- RSA decryption: OAEP digests, MGF1, labels; PKCS#1 v1.5 ----------
echo "a secret of modest length" >"$T/pt"
# oaep MD MGF1 ENC-LABEL DEC-LABEL EXPECT(ok|fail)
oaep() {
    local md=$1 mgf1=$2 elabel=$3 dlabel=$4 expect=$5 opts=(-pkeyopt rsa_padding_mode:oaep) eo do
    [ "$md" = - ] || opts+=(-pkeyopt "rsa_oaep_md:$md")
    [ "$mgf1" = - ] || opts+=(-pkeyopt "rsa_mgf1_md:$mgf1")
    eo=("${opts[@]}"); do=("${opts[@]}")
    [ "$elabel" = - ] || eo+=(-pkeyopt "rsa_oaep_label:$elabel")
    [ "$dlabel" = - ] || do+=(-pkeyopt "rsa_oaep_label:$dlabel")
    openssl pkeyutl -encrypt -pubin -inkey "$T/rsa.pub" -in "$T/pt" -out "$T/ct" "${eo[@]}" || fail "encrypt"
    rm -f "$T/dec"
    if openssl pkeyutl "${PROV[@]}" -decrypt -inkey keystore:rsa -in "$T/ct" -out "$T/dec" "${do[@]}" \
            2>"$T/dec.err"; then
        [ "$expect" = ok ] || fail "OAEP $md/$mgf1 label $elabel decrypted with label $dlabel"
        cmp -s "$T/pt" "$T/dec" || fail "OAEP $md/$mgf1 label $elabel: wrong plaintext"
    else
        [ "$expect" = fail ] || { cat "$T/dec.err"; fail "OAEP $md/$mgf1 label $elabel/$dlabel"; }
        grep -q "decryption failed" "$T/dec.err" || { cat "$T/dec.err"; fail "OAEP failure not reported"; }
    fi
}
for pair in "- -" "sha256 -" "sha384 sha1" "sha512 sha256" "sha224 sha512" "sha512-256 -"; do
    read -r md mgf1 <<<"$pair"
    oaep "$md" "$mgf1" - - ok
    oaep "$md" "$mgf1" 0a1b2c3d 0a1b2c3d ok
    oaep "$md" "$mgf1" 0a1b2c3d 0a1b2c3e fail
    oaep "$md" "$mgf1" 0a1b2c3d - fail
    oaep "$md" "$mgf1" - 00 fail
done
# the wrong digest or MGF1 fails too
openssl pkeyutl -encrypt -pubin -inkey "$T/rsa.pub" -in "$T/pt" -out "$T/ct" -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt rsa_oaep_md:sha256
expect_fail "decryption failed" openssl pkeyutl "${PROV[@]}" -decrypt -inkey keystore:rsa -in "$T/ct" \
    -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha1
pass "OAEP digests, MGF1 digests and labels (no label, label, mismatch) decrypt like the default provider"

openssl pkeyutl -encrypt -pubin -inkey "$T/rsa.pub" -in "$T/pt" -out "$T/ct1" -pkeyopt rsa_padding_mode:pkcs1
openssl pkeyutl "${PROV[@]}" -decrypt -inkey keystore:rsa -in "$T/ct1" -out "$T/dec1" \
    -pkeyopt rsa_padding_mode:pkcs1 || fail "PKCS#1 v1.5 decrypt"
cmp -s "$T/pt" "$T/dec1" || fail "PKCS#1 v1.5 plaintext"
openssl pkeyutl "${PROV[@]}" -decrypt -inkey keystore:rsa -in "$T/ct1" -out "$T/dec1b" || fail "PKCS#1 default padding"
cmp -s "$T/pt" "$T/dec1b" || fail "PKCS#1 (default padding) plaintext"
pass "PKCS#1 v1.5 decryption"

# ---- RSA PKCS#1 v1.5 and ECDSA with every SHA-2 digest ------------------
for md in sha224 sha256 sha384 sha512 sha512-224 sha512-256; do
    openssl dgst "${PROV[@]}" "-$md" -sign keystore:rsa -out "$T/rsa.$md.sig" "$T/data" || fail "RSA $md"
    openssl dgst "-$md" -sign "$T/rsa.pem" -out "$T/rsa.$md.ref" "$T/data"
    cmp -s "$T/rsa.$md.sig" "$T/rsa.$md.ref" || fail "RSA PKCS#1 $md signature differs from the default provider's"
done
pass "RSA PKCS#1 v1.5 with every SHA-2 digest: the default provider's exact bytes"
for curve in P-256 P-384 P-521; do
    k=ec${curve#P-}
    ks_ctl generate "$k" --type ec --curve "$curve" >/dev/null || fail "generate $k"
    ks_ctl pubkey "$k" >"$T/$k.pub"
    for md in sha224 sha256 sha384 sha512 sha512-224 sha512-256; do
        openssl dgst "${PROV[@]}" "-$md" -sign "keystore:$k" -out "$T/$k.$md.sig" "$T/data" \
            || fail "ECDSA $curve $md (dgst)"
        openssl dgst "-$md" -verify "$T/$k.pub" -signature "$T/$k.$md.sig" "$T/data" >/dev/null \
            || fail "ECDSA $curve $md (dgst) does not verify"
        openssl pkeyutl "${PROV[@]}" -sign -inkey "keystore:$k" -in "$T/data.$md" -pkeyopt "digest:$md" \
            -out "$T/$k.$md.psig" || fail "ECDSA $curve $md (pkeyutl)"
        openssl pkeyutl -verify -pubin -inkey "$T/$k.pub" -in "$T/data.$md" -pkeyopt "digest:$md" \
            -sigfile "$T/$k.$md.psig" >/dev/null || fail "ECDSA $curve $md (pkeyutl) does not verify"
    done
done
pass "ECDSA on P-256, P-384, P-521 with SHA-224/256/384/512 and SHA-512/224, SHA-512/256"

# ---- EdDSA: deterministic, so the bytes must equal the default provider's --
for alg in ED25519 ED448; do
    openssl genpkey -algorithm "$alg" -out "$T/$alg.pem"
    ks_ctl import "ed-$alg" "$T/$alg.pem" >/dev/null || fail "import $alg"
    openssl pkeyutl "${PROV[@]}" -sign -rawin -inkey "keystore:ed-$alg" -in "$T/data" -out "$T/$alg.ks" \
        || fail "$alg sign"
    openssl pkeyutl -sign -rawin -inkey "$T/$alg.pem" -in "$T/data" -out "$T/$alg.ref"
    cmp -s "$T/$alg.ks" "$T/$alg.ref" || fail "$alg signature differs from the default provider's"
done
pass "Ed25519 and Ed448 signatures are the default provider's exact bytes"

ks_write_cnf >/dev/null
rc=0
OPENSSL_CONF="$T/openssl.cnf" "$KS_BUILD_ROOT/tests/params_api" >"$T/api.out" 2>&1 || rc=$?
cat "$T/api.out"
[ $rc -eq 0 ] && ! grep -q FAIL "$T/api.out" || fail "params_api"
pass "operation contexts list and honour the default provider's parameters"
