#!/usr/bin/env bash
# A client that loads a key and then forks (as nginx or Apache do) never shares
# a server connection between processes or interleaves frames between threads:
# 17 processes x 8 threads x 500 unique signatures, all verified.
. "$(dirname "$0")/lib.sh"
ks_start
ks_ctl generate ec --type ec --curve P-256 >/dev/null || fail "generate ec"
ks_ctl generate ed --type ed25519 >/dev/null || fail "generate ed"
export OPENSSL_CONF=$(ks_write_cnf)   # forkstress loads the provider from openssl.cnf
"$KS_BUILD_ROOT/tests/forkstress" keystore:ec 16 8 500 || fail "ECDSA signatures failed under fork + threads"
pass "ECDSA: 16 forked children + parent, 8 threads each, 500 signatures each"
"$KS_BUILD_ROOT/tests/forkstress" keystore:ed 4 4 200 || fail "Ed25519 signatures failed under fork + threads"
pass "Ed25519 under fork + threads"
