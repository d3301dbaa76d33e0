#!/usr/bin/env bash
# RSA decryption in the server, of data encrypted by the default provider.
. "$(dirname "$0")/lib.sh"
ks_start

ks_ctl generate rsa --type rsa --bits 2048 --usage decrypt >/dev/null || fail "generate"
ks_ctl pubkey rsa > "$T/rsa.pub"
printf 'attack at dawn %s' "$RANDOM" > "$T/msg"

roundtrip() {
    local what=$1; shift
    openssl pkeyutl -encrypt -pubin -inkey "$T/rsa.pub" -in "$T/msg" -out "$T/ct" "$@" \
        || fail "encrypt ($what)"
    rm -f "$T/pt"
    openssl pkeyutl "${PROV[@]}" -decrypt -inkey keystore:rsa -in "$T/ct" -out "$T/pt" "$@" \
        || fail "decrypt through keystore ($what)"
    cmp -s "$T/msg" "$T/pt" || fail "decrypted text differs ($what)"
    pass "decrypt $what"
}
roundtrip "PKCS#1 v1.5" -pkeyopt rsa_padding_mode:pkcs1
roundtrip "OAEP SHA-1" -pkeyopt rsa_padding_mode:oaep
roundtrip "OAEP SHA-256" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256
roundtrip "OAEP SHA-256/MGF1 SHA-1" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha1

# Local encryption through the keystore key object (public key only) also works.
openssl pkeyutl "${PROV[@]}" -encrypt -inkey keystore:rsa -in "$T/msg" -out "$T/ct2" \
    -pkeyopt rsa_padding_mode:oaep || fail "encrypt with the keystore key's public half"
openssl pkeyutl "${PROV[@]}" -decrypt -inkey keystore:rsa -in "$T/ct2" -out "$T/pt2" \
    -pkeyopt rsa_padding_mode:oaep || fail "decrypt of locally encrypted data"
cmp -s "$T/msg" "$T/pt2" || fail "encrypt/decrypt round trip through the key object"
pass "encrypt locally, decrypt in the server"

# Corrupted ciphertext: a clear, generic failure and no plaintext.
openssl pkeyutl -encrypt -pubin -inkey "$T/rsa.pub" -in "$T/msg" -out "$T/ct" -pkeyopt rsa_padding_mode:oaep
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[10] ^= 1; open(sys.argv[1], "wb").write(b)' "$T/ct"
expect_fail "decrypt" openssl pkeyutl "${PROV[@]}" -decrypt -inkey keystore:rsa -in "$T/ct" -out "$T/pt" \
    -pkeyopt rsa_padding_mode:oaep
pass "bad ciphertext refused"
