#!/usr/bin/env bash
# The shell suite again with everything built under AddressSanitizer +
# UndefinedBehaviorSanitizer (gcc, -Db_sanitize=address,undefined), in its
# own build dir.  Called by tests/run.sh, which counts its results too.
#
# Covered: keystored, keystorectl, keystore.so and the C test programs, all
# instrumented.  The system openssl binary is not, so it runs through a
# wrapper that preloads libasan (an instrumented module must not be dlopen'ed
# into an uninstrumented process otherwise).
#
# keystored keeps its chroot and privilege drop but runs with "seccomp = no"
# (KS_EXTRA_CONFIG, read by tests/lib.sh): ASan's runtime makes calls the
# filter kills (sched_getaffinity, sigaltstack).  An ASan build also skips
# mlockall (sandbox/harden.c: the shadow memory cannot be locked).
#
# Left out: the 'sandbox' suite (seccomp, confinement, socket_activation,
# install: they run keystored with the filter on, or check the systemd unit's
# SystemCallFilter against strace), the 'memscan' suite (no_key_in_client:
# it would read ASan's terabytes of shadow memory), the 'webservers' suite
# (Debian's nginx, Apache and HAProxy are not linked with libasan, so cannot
# load an ASan-built provider) and the fuzz test (it has
# its own sanitizer build).  Leak checking is off: a confined keystored cannot
# run LeakSanitizer (it needs ptrace and /proc) and the openssl CLI frees
# little at exit; the fuzzers run LeakSanitizer on every input instead.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${KS_ASAN_BUILD:-$src/build-asan}

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$src" --werror -Db_sanitize=address,undefined -Db_lundef=false \
        >/dev/null || { echo "FAIL: meson setup of the sanitizer build"; exit 1; }
fi
meson compile -C "$build" >/dev/null || { echo "FAIL: building the sanitizer build"; exit 1; }

libasan=$(gcc -print-file-name=libasan.so)
[ -e "$libasan" ] || { echo "FAIL: libasan not found (gcc -print-file-name=libasan.so)"; exit 1; }
mkdir -p "$build/asan-bin"
cat > "$build/asan-bin/openssl" <<SH
#!/bin/sh
# openssl with ASan preloaded, so it can load the instrumented keystore.so
LD_PRELOAD="$libasan\${LD_PRELOAD:+ \$LD_PRELOAD}" exec /usr/bin/openssl "\$@"
SH
chmod +x "$build/asan-bin/openssl"

export PATH="$build/asan-bin:$PATH"
# abort on the first report so the test fails; stack traces in the test log
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export KS_EXTRA_CONFIG="seccomp = no"
meson test -C "$build" --print-errorlogs --num-processes 2 --no-suite fuzz --no-suite sandbox --no-suite memscan --no-suite webservers \
    --timeout-multiplier 3 "$@"
