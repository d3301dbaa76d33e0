#!/usr/bin/env bash
# Wycheproof RSASSA-PKCS1-v1_5 signature-generation vectors (tests/data/
# wycheproof, see SOURCE.md): every signature made in a real keystored through
# openssl dgst -sign equals the file's (deterministic padding), SHA-1 may be
# refused (weak digest policy) (tests/wycheproof_rsa_sign.py).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wycheproof_lib.sh"
ks_start
wp_run wycheproof_rsa_sign.py sign 8 "Wycheproof RSA PKCS#1 v1.5 signature vectors"
