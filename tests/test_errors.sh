#!/usr/bin/env bash
# Every failure says what went wrong, distinctly, and names the server.
. "$(dirname "$0")/lib.sh"
ks_start

ks_ctl generate rsa --type rsa >/dev/null || fail "generate rsa"
ks_ctl generate ec --type ec >/dev/null || fail "generate ec"
openssl dgst -sha256 -binary /etc/hostname > "$T/d"

# unknown key name
expect_fail "no key named 'nosuch'" \
    openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:nosuch -in "$T/d" -out "$T/s"
e1=$(openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:nosuch -in "$T/d" -out "$T/s" 2>&1 || true)
pass "unknown key"

# malformed URI
expect_fail "malformed keystore URI" \
    openssl pkeyutl "${PROV[@]}" -sign -inkey 'keystore:../etc/passwd' -in "$T/d" -out "$T/s"
e2=$(openssl pkeyutl "${PROV[@]}" -sign -inkey 'keystore:../etc/passwd' -in "$T/d" -out "$T/s" 2>&1 || true)
pass "malformed URI"

# wrong key type for the operation: decrypt with an EC key
head -c 32 /dev/urandom > "$T/ct"
expect_fail "(key ?type|not supported)" \
    openssl pkeyutl "${PROV[@]}" -decrypt -inkey keystore:ec -in "$T/ct" -out "$T/pt"
e3=$(openssl pkeyutl "${PROV[@]}" -decrypt -inkey keystore:ec -in "$T/ct" -out "$T/pt" 2>&1 || true)
pass "wrong key type"

# raw RSA is never offered
expect_fail "raw RSA" \
    openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:rsa -in "$T/d" -out "$T/s" -pkeyopt rsa_padding_mode:none
pass "raw RSA refused"

[ "$e1" != "$e2" ] && [ "$e2" != "$e3" ] && [ "$e1" != "$e3" ] || fail "error messages are not distinct"

# an EdDSA message over the server's frame: the error gives the limit and the
# setting that raises it, and raising it lets the same message be signed
ks_ctl generate ed --type ed25519 >/dev/null || fail "generate ed"
head -c 100000 /dev/urandom > "$T/big"
expect_fail "message of 100000 bytes is too large to sign with Ed25519 key 'ed'.* accepts at most 65280 bytes \\(its max_frame setting in keystored.conf" \
    openssl pkeyutl "${PROV[@]}" -sign -rawin -inkey keystore:ed -in "$T/big" -out "$T/s"
ks_stop
ks_start "max_frame = 262144"
openssl pkeyutl "${PROV[@]}" -sign -rawin -inkey keystore:ed -in "$T/big" -out "$T/s" \
    || fail "a 100000-byte Ed25519 message is not signed with max_frame = 262144"
ks_ctl pubkey ed -o "$T/ed.pub" >/dev/null || fail "pubkey ed"
openssl pkeyutl -verify -rawin -pubin -inkey "$T/ed.pub" -in "$T/big" -sigfile "$T/s" >/dev/null \
    || fail "the Ed25519 signature of the large message does not verify"
pass "EdDSA message over max_frame: the error names the limit and max_frame; raised, it signs"

# only -provider keystore: the message says the default provider is needed
# (it used to blame the server: "sent an undecodable EC public key")
expect_fail "the default provider is not loaded; the keystore provider needs it" \
    openssl pkeyutl -provider keystore -sign -inkey keystore:ec -in "$T/d" -out "$T/s"
pass "keystore without the default provider: says to load the default provider"

# server log lines carry a UTC timestamp when systemd's journal is not the reader
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z keystored: ' \
    "$T/keystored.log" || { cat "$T/keystored.log"; fail "log lines carry no timestamp"; }
JOURNAL_STREAM=8:12345 "$KEYSTORED" --gen-master-key "$T/journal.key" 2>"$T/journal.log" >/dev/null
grep -q '^keystored: ' "$T/journal.log" || { cat "$T/journal.log"; fail "under the journal, lines should start with 'keystored:'"; }
pass "log lines: UTC timestamp, none under systemd's journal (JOURNAL_STREAM)"

# server down: the error names the socket and the reason
ks_stop
expect_fail "keystore server unreachable at unix:$T/ks.sock: (Connection refused|No such file or directory)" \
    openssl pkeyutl "${PROV[@]}" -sign -inkey keystore:rsa -in "$T/d" -out "$T/s"
pass "server down named with socket and reason"

# keystorectl: stable exit codes
set +e
"$KEYSTORECTL" -s "unix:$T/admin.sock" list >/dev/null 2>&1; rc=$?
set -e
[ $rc = 2 ] || fail "keystorectl with server down exited $rc, expected 2"
pass "keystorectl exit code 2 when the server is down"
