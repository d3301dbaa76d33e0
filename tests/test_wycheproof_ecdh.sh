#!/usr/bin/env bash
# Wycheproof key-agreement vectors (tests/data/wycheproof, see SOURCE.md):
# ECDH on P-256 (peer keys as DER, including invalid encodings, other curves,
# points off the curve: invalid-curve attacks), X25519 and X448 (low-order
# and twist points; of the pure arithmetic cases every tenth).  Each distinct private key is imported with usage derive;
# each case is sent by derive_raw, which skips OpenSSL's decoding of the peer
# key, so the server's own checks decide (tests/wycheproof_ecdh.py).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wycheproof_lib.sh"
ks_start
wp_run wycheproof_ecdh.py derive 280 "Wycheproof ECDH/X25519/X448 vectors" "$KS_BUILD_ROOT/tests/derive_raw" "$KEYSTORE_SERVER"
