# Shared by the tests/test_wycheproof_*.sh tests (source after lib.sh and
# ks_start).  wp_run RUNNER USAGE MIN_KEYS WHAT [ARG...]: RUNNER (a
# tests/wycheproof_*.py) writes the vectors' private keys into $T/wp ("keys"
# mode), each is imported into the test's keystored with USAGE, then
# "run $T/wp ARG..." checks every case; the test fails with WHAT.
wp_run() {
    local py="$KS_SOURCE_ROOT/tests/$1" usage=$2 min=$3 what=$4 n=0 name file
    shift 4
    mkdir -p "$T/wp"
    # Debian's python3-cryptography must not load the keystore provider
    env -u OPENSSL_CONF -u OPENSSL_MODULES /usr/bin/python3 "$py" keys "$T/wp" > "$T/wp/keys" \
        || fail "writing the Wycheproof keys ($py)"
    while read -r name file; do
        ks_ctl import "$name" "$file" --usage "$usage" >/dev/null || fail "import $name ($file)"
        n=$((n + 1))
    done < "$T/wp/keys"
    [ "$n" -ge "$min" ] || fail "expected at least $min Wycheproof keys, got $n"
    note "$n Wycheproof keys imported (usage $usage)"
    /usr/bin/python3 "$py" run "$T/wp" "$@" || fail "$what (see above)"
    pass "$what"
}
