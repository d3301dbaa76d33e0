#!/usr/bin/env bash
# A C program loads the provider from openssl.cnf (no -provider flags, no
# KEYSTORE_SERVER) and uses OSSL_STORE_open.
. "$(dirname "$0")/lib.sh"
ks_start
for spec in "rsa --type rsa" "ec --type ec --curve P-256" "ed --type ed25519"; do
    set -- $spec; k=$1; shift
    ks_ctl generate "$k" "$@" >/dev/null || fail "generate $k"
done

ks_write_cnf >/dev/null
server=$KEYSTORE_SERVER
unset KEYSTORE_SERVER
for k in rsa ec ed; do
    OPENSSL_CONF="$T/openssl.cnf" "$KS_BUILD_ROOT/tests/store_api" "keystore:$k" || fail "store_api keystore:$k"
    pass "OSSL_STORE_open keystore:$k through openssl.cnf"
done

# the openssl CLI with the same config and no -provider flags
openssl dgst -sha256 -binary /etc/hostname > "$T/d"
OPENSSL_CONF="$T/openssl.cnf" openssl pkeyutl -sign -inkey keystore:ec -in "$T/d" -out "$T/s" \
    || fail "pkeyutl with provider from openssl.cnf"
pass "openssl CLI with the provider from openssl.cnf"

# the environment overrides the config's server
KEYSTORE_SERVER=unix:/nonexistent/ks.sock OPENSSL_CONF="$T/openssl.cnf" \
    "$KS_BUILD_ROOT/tests/store_api" keystore:ec >"$T/out" 2>&1 && fail "KEYSTORE_SERVER did not override"
grep -q "unix:/nonexistent/ks.sock" "$T/out" || { cat "$T/out"; fail "error does not name the overriding address"; }
pass "KEYSTORE_SERVER overrides the config"
