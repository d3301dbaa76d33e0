#!/usr/bin/env bash
# A client that loads a key and then forks (as nginx or Apache do) never shares
# a server connection between processes or interleaves frames between threads:
# 17 processes x 9 threads (one of them the thread whose connection was made
# before the fork) x 300 unique signatures, all verified.
. "$(dirname "$0")/lib.sh"
ks_start
ks_ctl generate ec --type ec --curve P-256 >/dev/null || fail "generate ec"
ks_ctl generate ed --type ed25519 >/dev/null || fail "generate ed"
export OPENSSL_CONF=$(ks_write_cnf)   # forkstress loads the provider from openssl.cnf
"$KS_BUILD_ROOT/tests/forkstress" keystore:ec 16 8 300 || fail "ECDSA signatures failed under fork + threads"
pass "ECDSA: 16 forked children + parent, 8 threads + the pre-fork one each, 300 signatures each"
# A fork that runs no atfork handler (glibc's _Fork, or a raw clone) must be
# noticed too: the provider caches its pid without asking the kernel per
# operation, and a child that believed the parent's pid would use the
# parent's connection and rings.
FORKSTRESS_NO_ATFORK=1 "$KS_BUILD_ROOT/tests/forkstress" keystore:ec 8 4 200 \
    || fail "ECDSA signatures failed in children made by _Fork (no atfork handlers)"
pass "ECDSA: 8 children made by _Fork() (no atfork handlers) + parent, 4 threads + the pre-fork one, 200 each"
"$KS_BUILD_ROOT/tests/forkstress" keystore:ed 4 4 200 || fail "Ed25519 signatures failed under fork + threads"
pass "Ed25519 under fork + threads"
