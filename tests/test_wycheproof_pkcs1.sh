#!/usr/bin/env bash
# Wycheproof RSAES-PKCS1-v1_5 decryption vectors (tests/data/wycheproof, see
# SOURCE.md) through openssl pkeyutl and a real keystored: valid cases give
# their message; bad-padding cases are NOT errors but the implicit-rejection
# message of tests/implicit_rejection_ref.py (tests/wycheproof_pkcs1.py).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wycheproof_lib.sh"
ks_start
wp_run wycheproof_pkcs1.py decrypt 33 "Wycheproof RSA PKCS#1 v1.5 decryption vectors"
