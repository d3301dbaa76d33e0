#!/usr/bin/env bash
# Builds keystore and runs the whole test suite; ends with "N passed, N failed".
# Two passes: the normal build (every test, including the fuzzers, which
# build themselves with clang), then the same shell tests built with
# ASan + UBSan (tests/run-sanitizers.sh; it says which tests it leaves out).
# KS_NO_SANITIZERS=1 skips the second pass for a quick local run.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${KS_TEST_BUILD:-$src/build-tests}
asan=${KS_ASAN_BUILD:-$src/build-asan}

"$src/tests/install-deps.sh" || { echo "0 passed, 1 failed"; exit 1; }
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$src" --werror || { echo "0 passed, 1 failed"; exit 1; }
fi
meson compile -C "$build" || { echo "0 passed, 1 failed"; exit 1; }

# count LOG: "passed failed" from meson's JSON log; a skipped test counts as
# failed (tests never skip)
count() {
    python3 - "$1" <<'PY'
import json, sys
p = f = 0
try:
    for line in open(sys.argv[1]):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            p += 1
        else:
            f += 1
except OSError:
    f = 1
print(p, f)
PY
}

meson test -C "$build" --print-errorlogs --num-processes 2 "$@"
rc=$?
read -r passed failed < <(count "$build/meson-logs/testlog.json")
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "normal build: $passed passed, $failed failed"

if [ "${KS_NO_SANITIZERS:-0}" != 1 ]; then
    rm -f "$asan/meson-logs/testlog.json"
    KS_ASAN_BUILD=$asan "$src/tests/run-sanitizers.sh" "$@"
    arc=$?
    read -r ap af < <(count "$asan/meson-logs/testlog.json")
    if [ "$arc" -ne 0 ] && [ "$af" -eq 0 ]; then af=1; fi
    echo "sanitizer build (ASan+UBSan): $ap passed, $af failed"
    passed=$((passed + ap))
    failed=$((failed + af))
    [ "$arc" -eq 0 ] || rc=1
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$rc" -eq 0 ]
