#!/usr/bin/env bash
# Wycheproof RSA-OAEP decryption vectors (tests/data/wycheproof, see SOURCE.md):
# each group's key imported into a real keystored for decryption, every case
# decrypted through the provider with openssl pkeyutl (tests/wycheproof_oaep.py).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wycheproof_lib.sh"
ks_start
wp_run wycheproof_oaep.py decrypt 4 "Wycheproof RSA-OAEP vectors"
