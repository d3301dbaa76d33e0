#!/usr/bin/env bash
# A store with a few thousand keys (issue 14: one server, many keys).  The
# start-up path that loads them in bulk (store/keyload.c: one decoder per key
# type, public keys from a per-curve prefix, one unseal buffer) must load
# every key as the general path does, and the manifest must still refuse an
# old key file, a deleted key put back, a file sealed for another directory
# and a whole rolled-back directory among thousands of files.
. "$(dirname "$0")/lib.sh"
K=$T/keys
N=${KS_MANY_KEYS:-3000}
GEN="$KS_BUILD_ROOT/tests/ksgenkeys"
# ListKeys of all of them is ~120 bytes a key
conf="max_frame = 1048576"
restart() { ks_stop; mv "$T/keystored.log" "$T/keystored.log.$((++nstart))"; ks_start "$conf"; }
nstart=0

mkdir -p "$K"
"$KEYSTORED" --gen-master-key "$T/master.key" >/dev/null 2>&1
"$GEN" "$T/master.key" "$K" "$N" k ec || fail "ksgenkeys"
"$GEN" "$T/master.key" "$K" 200 e ed25519 || fail "ksgenkeys ed25519"
ks_start "$conf"
grep -q "created the manifest $K/.manifest (generation [0-9]*) for the $((N + 200)) keys found" \
    "$T/keystored.log" || { tail -5 "$T/keystored.log"; fail "first start did not take the $((N + 200)) files"; }

# Keys whose public halves openssl computes independently, one of each kind
# the bulk path encodes from a prefix, and RSA (encoded in full).
for spec in "p256:EC -pkeyopt ec_paramgen_curve:P-256" "p384:EC -pkeyopt ec_paramgen_curve:P-384" \
            "p521:EC -pkeyopt ec_paramgen_curve:P-521" "ed25519:ED25519" "ed448:ED448" \
            "x25519:X25519" "rsa:RSA -pkeyopt rsa_keygen_bits:2048"; do
    name=${spec%%:*}
    # shellcheck disable=SC2086
    openssl genpkey -algorithm ${spec#*:} -out "$T/$name.pem" 2>/dev/null || fail "genpkey $name"
    usage=sign; [ "$name" = x25519 ] && usage=derive
    ks_ctl import "i-$name" "$T/$name.pem" --usage $usage >/dev/null || fail "import $name"
    openssl pkey -in "$T/$name.pem" -pubout -out "$T/$name.pub"
done
restart
grep -q "loaded $((N + 207)) keys from $K (manifest generation" "$T/keystored.log" \
    || { grep loaded "$T/keystored.log"; fail "restart did not load all $((N + 207)) keys"; }
grep -E "refusing|error" "$T/keystored.log" && fail "a clean restart with $N keys refused something"
[ "$(ks_ctl list | tail -n +2 | wc -l)" = $((N + 207)) ] || fail "list does not show $((N + 207)) keys"
for name in p256 p384 p521 ed25519 ed448 x25519 rsa; do
    ks_ctl pubkey "i-$name" | cmp -s - "$T/$name.pub" \
        || fail "public key of i-$name after a bulk load differs from openssl's"
done
pass "$((N + 207)) keys load; public keys of every kind equal openssl's"

# Sampled keys sign, and verify against the public key the server gives.
echo "data to sign" > "$T/data"
for name in k1 k2 "k$N" "k$((N / 2))" $(shuf -i 3-"$N" -n 12 | sed 's/^/k/') e1 e200 e77 i-p256 i-rsa; do
    ks_ctl pubkey "$name" > "$T/pub.pem" || fail "pubkey $name"
    case $name in
    e*|i-ed*) openssl pkeyutl -sign "${PROV[@]}" -inkey "keystore:$name" -rawin -in "$T/data" \
                  -out "$T/sig" 2>"$T/err" || { cat "$T/err"; fail "$name does not sign"; }
              openssl pkeyutl -verify -pubin -inkey "$T/pub.pem" -rawin -in "$T/data" \
                  -sigfile "$T/sig" >/dev/null || fail "signature of $name does not verify" ;;
    *)        openssl dgst "${PROV[@]}" -sha256 -sign "keystore:$name" -out "$T/sig" "$T/data" \
                  2>"$T/err" || { cat "$T/err"; fail "$name does not sign"; }
              openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/sig" "$T/data" \
                  >/dev/null || fail "signature of $name does not verify" ;;
    esac
done
pass "sampled keys sign and verify"

# The manifest among thousands of files.
ks_stop
cp -a "$K" "$T/snap"
cp "$T/keys.generation" "$T/snap.generation"
ks_start "$conf"
ks_ctl pubkey k17 > "$T/old-k17.pub"
ks_ctl delete k17 >/dev/null && ks_ctl generate k17 --type ec >/dev/null || fail "replace k17"
ks_ctl pubkey k17 > "$T/new-k17.pub"
ks_ctl delete k18 >/dev/null || fail "delete k18"
ks_stop
cp "$K/k17.key" "$T/new-k17.key"
cp "$T/snap/k17.key" "$K/k17.key"      # old file of a current key
cp "$T/snap/k18.key" "$K/k18.key"      # a deleted key put back
mkdir "$T/other"                       # same master key, another directory
"$GEN" "$T/master.key" "$T/other" 3 k ec || fail "ksgenkeys other"
cp "$T/other/k2.key" "$K/stranger.key"
restart
grep -q "error: refusing $K/k17.key: the manifest (generation [0-9]*) does not vouch for it: it is not the current file of that key" \
    "$T/keystored.log" || fail "old k17.key not refused"
grep -q "error: refusing $K/k18.key: .*no current key has that name" "$T/keystored.log" \
    || fail "deleted k18 put back not refused"
grep -q "error: refusing $K/stranger.key: .*no current key has that name" "$T/keystored.log" \
    || fail "a key file from another directory not refused"
ks_ctl info k18 >/dev/null 2>&1 && fail "deleted key k18 came back"
ks_ctl info stranger >/dev/null 2>&1 && fail "a foreign key file was loaded"
ks_ctl pubkey k17 2>/dev/null | cmp -s - "$T/old-k17.pub" && fail "the old file of k17 was loaded"
grep -q "loaded $((N + 205)) keys from $K" "$T/keystored.log" \
    || { grep loaded "$T/keystored.log"; fail "the other keys did not all load"; }
ks_stop
cp "$T/new-k17.key" "$K/k17.key"
restart
ks_ctl pubkey k17 | cmp -s - "$T/new-k17.pub" || fail "k17 does not serve once its file is back"
pass "old, deleted and foreign key files among $N: refused, the rest loads"

# The whole old directory with its manifest: the counter refuses it.
ks_stop
mv "$K" "$T/current"
cp -a "$T/snap" "$K"
set +e
timeout 60 "$KEYSTORED" -c "$T/keystored.conf" >"$T/rollback.log" 2>&1
rc=$?
set -e
[ $rc = 1 ] && grep -q "the key directory was rolled back" "$T/rollback.log" \
    || { tail -3 "$T/rollback.log"; fail "a rolled-back directory of $N keys was accepted (exit $rc)"; }
pass "rolled-back directory of $N keys: refused"
