#!/usr/bin/env bash
# The server's own filter function, installed in forked children: forbidden
# calls die with SIGSYS (also from a thread that predates the filter), the
# calls keystored needs succeed.
. "$(dirname "$0")/lib.sh"
mkdir "$T/keydir"
# a real key file name: the catalogue agent's filter must keep it out of reach
printf x > "$T/keydir/k.key"
"$KS_BUILD_ROOT/tests/seccomp_test" "$T/keydir" || fail "seccomp filter"
