#!/usr/bin/env bash
# Bleichenbacher: PKCS#1 v1.5 decryption must not tell a conformant block
# from a non-conformant one (implicit rejection, draft-irtf-cfrg-rsa-guidance;
# the TLS mode's substitute deterministic).  An attacker with only a decrypt
# grant talks to the client socket (tests/ir_oracle.c); every answer must be
# the one the Python reference model computes from the private key.
. "$(dirname "$0")/lib.sh"
ks_start
REF="$KS_SOURCE_ROOT/tests/implicit_rejection_ref.py"
# Each part runs even if an earlier one failed, so that one run shows them all.
failed=()
check_fail() { echo "FAIL: $*" >&2; failed+=("$*"); }

# A key whose private half the test knows, imported into the server.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/victim.pem" 2>/dev/null
openssl pkey -in "$T/victim.pem" -pubout -out "$T/victim.pub"
ks_ctl import victim "$T/victim.pem" --usage decrypt >/dev/null || fail "import victim"

rc=0
"$KS_BUILD_ROOT/tests/ir_oracle" "$KEYSTORE_SERVER" victim "$T/victim.pub" "$T/answers" \
    >"$T/oracle.log" 2>&1 || rc=$?
cat "$T/oracle.log"
if [ $rc -eq 0 ]; then pass "no error, the same answer twice, conformant blocks decrypt; TLS: 48 bytes, deterministic, independent of the version asked for"
else check_fail "the server's PKCS#1 v1.5 decryption is an oracle (see above)"; fi

# Every answer (conformant, non-conformant, random; both modes) is exactly
# the reference model's: the synthetic message and its length for bad blocks.
if python3 - "$REF" "$T/victim.pem" "$T/answers" <<'PY'; then
import functools, importlib.util, sys
spec = importlib.util.spec_from_file_location("ref", sys.argv[1])
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
ref._prepare = functools.lru_cache(maxsize=None)(ref._prepare)  # one c^d per ciphertext
n, _, d = ref.load_rsa_private_key(sys.argv[2])
seen, bad, synth_lens, wrong = set(), 0, set(), 0
for line in open(sys.argv[3]):
    f = line.split()
    if f[0] == "pkcs1":
        ct, ans = bytes.fromhex(f[1]), f[2]
        want, real = ref.decrypt_ir(n, d, ct)
        if not real:
            bad += 1
            synth_lens.add(len(want))
    else:
        ct, ans = bytes.fromhex(f[2]), f[3]
        want, real = ref.tls_premaster(n, d, ct, int(f[1], 16))
    got = None if ans == "ERROR" else (b"" if ans == "-" else bytes.fromhex(ans))
    if got != want:
        wrong += 1
        if wrong <= 5:
            print("FAIL: %s answer %s, reference %s" % (f[0], ans[:64], want.hex()[:64]))
print("-- %d answers compared, %d non-conformant PKCS#1 blocks, %d distinct synthetic lengths"
      % (sum(1 for _ in open(sys.argv[3])), bad, len(synth_lens)))
sys.exit(1 if wrong or bad < 200 or len(synth_lens) < 20 else 0)
PY
    pass "every answer equals the reference model's (synthetic messages and lengths)"
else check_fail "answers differ from the reference model"; fi

# Through the provider, as openssl pkeyutl would be used by an attacker.
head -c 32 /dev/urandom >"$T/msg"
openssl pkeyutl -encrypt -pubin -inkey "$T/victim.pub" -in "$T/msg" -out "$T/good.ct" \
    -pkeyopt rsa_padding_mode:pkcs1
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[100] ^= 1; open(sys.argv[2], "wb").write(b)' \
    "$T/good.ct" "$T/bad.ct"
openssl pkeyutl "${PROV[@]}" -decrypt -inkey keystore:victim -pkeyopt rsa_padding_mode:pkcs1 \
    -in "$T/good.ct" -out "$T/good.pt" || fail "decrypt a good PKCS#1 ciphertext"
cmp -s "$T/msg" "$T/good.pt" || fail "good ciphertext: wrong plaintext"
want=$(python3 "$REF" "$T/victim.pem" @"$T/bad.ct")
if ! openssl pkeyutl "${PROV[@]}" -decrypt -inkey keystore:victim -pkeyopt rsa_padding_mode:pkcs1 \
    -in "$T/bad.ct" -out "$T/bad.pt"; then
    check_fail "openssl pkeyutl: a bad PKCS#1 ciphertext gives an error (the oracle)"
elif [ "$(od -An -v -tx1 "$T/bad.pt" | tr -d ' \n')" != "$want" ]; then
    check_fail "bad ciphertext through the provider: not the reference's synthetic message $want"
else
    pass "openssl pkeyutl: a bad PKCS#1 ciphertext gives the reference's synthetic message, exit 0"
fi

# Explicit rejection would be the oracle again: the provider refuses
# "implicit-rejection" = 0 (OpenSSL 3.2's parameter) with a reason.  OpenSSL
# 3.0's pkeyutl does not know "-pkeyopt rsa_pkcs1_implicit_rejection" and
# refuses it before the provider is asked.
ks_write_cnf >/dev/null
if OPENSSL_CONF="$T/openssl.cnf" "$KS_BUILD_ROOT/tests/ir_param" keystore:victim; then
    pass "implicit-rejection = 0 refused with a reason, 1 accepted"
else check_fail "the provider accepts implicit-rejection = 0 or refuses 1"; fi
if openssl pkeyutl "${PROV[@]}" -decrypt -inkey keystore:victim -pkeyopt rsa_padding_mode:pkcs1 \
        -pkeyopt rsa_pkcs1_implicit_rejection:0 -in "$T/bad.ct" -out "$T/x.pt" 2>/dev/null; then
    check_fail "-pkeyopt rsa_pkcs1_implicit_rejection:0 accepted"
else pass "-pkeyopt rsa_pkcs1_implicit_rejection:0 refused"; fi

[ ${#failed[@]} -eq 0 ] || fail "${#failed[@]} part(s) failed: ${failed[*]}"
