#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz_server: the socket framing; fuzz_shm: the
# shared-memory ring consumer; fuzz_client: the provider's reply parsing) with
# clang + ASan/UBSan in their own build dir, replays every committed regression
# input, then fuzzes each target for FUZZ_SECONDS (default 60) from a fresh seed
# corpus.  Fails on any crash, leak or sanitizer report.  docs/fuzzing.md has the longer local runs.
#
#   tests/fuzz/run.sh            (or through meson test: the "fuzz" test)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${KS_FUZZ_BUILD:-${KS_BUILD_ROOT:-$src/build-tests}/fuzz-build}
secs=${FUZZ_SECONDS:-60}

if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" "$src" --werror -Dfuzzing=true \
        -Db_sanitize=address,undefined -Db_lundef=false >"$build.setup.log" 2>&1 \
        || { cat "$build.setup.log"; echo "FAIL: meson setup of the fuzz build"; exit 1; }
fi
meson compile -C "$build" fuzz_server fuzz_shm fuzz_client fuzz_seeds >"$build.compile.log" 2>&1 \
    || { cat "$build.compile.log"; echo "FAIL: building the fuzzers"; exit 1; }

work=$(mktemp -d /tmp/ksfuzz-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/server" "$work/client" "$work/shm"
"$build/tests/fuzz/fuzz_seeds" "$work/server" "$work/client" || { echo "FAIL: fuzz_seeds"; exit 1; }
# fuzz_shm's seeds: the same conversations as ring steps (format in fuzz_shm.c):
# a start index near the ring's end (frames wrap), each frame as op 0, then op 3
/usr/bin/python3 - "$work/server" "$work/shm" <<'PY' || { echo "FAIL: shm seeds"; exit 1; }
import os, struct, sys
src, dst = sys.argv[1:3]
for name in sorted(os.listdir(src)):
    b = open(os.path.join(src, name), 'rb').read()[1:]
    out, i = bytearray(struct.pack('<I', 128 * 1024 - 7)), 0
    while i + 4 <= len(b):
        n = struct.unpack('>I', b[i:i + 4])[0]
        if n == 0 or n > 0xffff or i + 4 + n > len(b):
            break
        out += bytes([0]) + struct.pack('>H', n) + b[i + 4:i + 4 + n]
        i += 4 + n
    out += bytes([3])
    open(os.path.join(dst, name), 'wb').write(out)
PY

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# The server logs every refused request; keep libFuzzer's own output only.
opts=(-close_fd_mask=2 -rss_limit_mb=2048 -timeout=20 -max_len=8192)

status=0
for target in server shm client; do
    bin="$build/tests/fuzz/fuzz_$target"
    reg="$src/tests/fuzz/regressions/$target"
    # 1. every input that once crashed must now run clean
    if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
        if ! "$bin" "${opts[@]}" "$reg"/* >"$work/$target.replay.log" 2>&1; then
            tail -n 60 "$work/$target.replay.log"
            echo "FAIL: fuzz_$target: a regression input fails again"
            status=1
            continue
        fi
        echo "ok: fuzz_$target: $(ls "$reg" | wc -l) regression inputs replayed"
    fi
    # 2. bounded fuzzing; new crash inputs land in $work/artifacts-$target
    mkdir -p "$work/artifacts-$target"
    if ! "$bin" "${opts[@]}" -max_total_time="$secs" -print_final_stats=1 \
            -artifact_prefix="$work/artifacts-$target/" "$work/$target" \
            >"$work/$target.log" 2>&1; then
        tail -n 80 "$work/$target.log"
        for a in "$work/artifacts-$target"/*; do
            [ -e "$a" ] && echo "crash input (base64): $(base64 -w0 "$a")"
        done
        echo "FAIL: fuzz_$target found a problem (add the input to tests/fuzz/regressions/$target/)"
        status=1
        continue
    fi
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$work/$target.log" | grep -Eo '[0-9]+$' || true)
    [ -n "$runs" ] && [ "$runs" -gt 0 ] || { tail -n 30 "$work/$target.log"; echo "FAIL: fuzz_$target ran no inputs"; status=1; continue; }
    cov=$(grep -Eo 'cov: [0-9]+' "$work/$target.log" | tail -1 || true)
    echo "ok: fuzz_$target: $runs executions in ${secs}s, $cov, corpus $(ls "$work/$target" | wc -l) files"
done
exit $status
