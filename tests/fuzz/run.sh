#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz_server: the socket framing; fuzz_shm: the
# shared-memory ring consumer; fuzz_client: the provider's reply parsing;
# fuzz_catalogue: what the key process reads from its catalogue agent;
# fuzz_etcd: what the agent reads from etcd) with
# clang + ASan/UBSan in their own build dir, replays every committed regression
# input, then fuzzes each target for FUZZ_SECONDS (default 30) from a fresh seed
# corpus.  Fails on any crash, leak or sanitizer report.  docs/fuzzing.md has the longer local runs.
#
#   tests/fuzz/run.sh            (or through meson test: the "fuzz" test)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${KS_FUZZ_BUILD:-${KS_BUILD_ROOT:-$src/build-tests}/fuzz-build}
secs=${FUZZ_SECONDS:-30}

if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" "$src" --werror -Dfuzzing=true \
        -Db_sanitize=address,undefined -Db_lundef=false >"$build.setup.log" 2>&1 \
        || { cat "$build.setup.log"; echo "FAIL: meson setup of the fuzz build"; exit 1; }
fi
meson compile -C "$build" fuzz_server fuzz_shm fuzz_client fuzz_catalogue fuzz_etcd fuzz_seeds >"$build.compile.log" 2>&1 \
    || { cat "$build.compile.log"; echo "FAIL: building the fuzzers"; exit 1; }

work=$(mktemp -d /tmp/ksfuzz-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/server" "$work/client" "$work/shm" "$work/catalogue" "$work/etcd"
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

# fuzz_catalogue's and fuzz_etcd's seeds (formats at the top of each harness):
# well-formed frames, record plaintexts (the harness seals them), a state
# file, and etcd gateway replies as etcd 3.4 writes them
/usr/bin/python3 - "$work/catalogue" "$work/etcd" <<'PY' || { echo "FAIL: catalogue seeds"; exit 1; }
import base64, json, os, struct, sys
cat, etcd = sys.argv[1:3]
def save(d, name, b):
    open(os.path.join(d, name), 'wb').write(b)
def frame(body):
    return struct.pack('>I', len(body)) + body
def named(t, name, rev, rec=None):
    b = t + bytes([len(name)]) + name + struct.pack('>Q', rev)
    return b if rec is None else b + struct.pack('>I', len(rec)) + rec
rec = b'KSCAT\0\0\1' + struct.pack('>IIQQ', 2, 1, 7, 5) + bytes(24) + bytes(40)
rec1 = b'KSCAT\0\0\1' + struct.pack('>IIQ', 1, 1, 7) + bytes(24) + bytes(40)
save(cat, 'wire', bytes([0]) + frame(named(b'T', b'web', 0, rec)) + frame(named(b'P', b'web', 12, rec))
     + frame(named(b'D', b'web', 13)) + frame(b'S' + struct.pack('>Q', 13))
     + frame(b'R' + bytes([1]) + struct.pack('>QH', 14, 5) + b'hello')
     + frame(b'E' + bytes([0]) + struct.pack('>QH', 0, 16) + b'etcd unreachable'))
files = b''.join(bytes([len(n)]) + n + struct.pack('>I', len(v)) + v
                 for n, v in ((b'a.key', b'KSKEY' + bytes(80)), (b'a.crt', bytes(64))))
save(cat, 'record-sealed', bytes([1, 0x21, 0, 0, 0]) + files)
save(cat, 'record-tombstone', bytes([1, 0x01, 0, 0, 0]))
save(cat, 'record-tampered', bytes([1, 0x21, 0, 60, 4]) + files)
save(cat, 'record-sealed-v1', bytes([1, 0x29, 0, 0, 0]) + files)
save(cat, 'record-raw', bytes([1, 0, 0, 0, 0]) + rec)
save(cat, 'record-raw-v1', bytes([1, 0, 0, 0, 0]) + rec1)
ents = b''.join(bytes([len(n)]) + n + struct.pack('>QQ', s, r) for n, s, r in ((b'web', 7, 9), (b'db', 3, 4)))
save(cat, 'state-sealed-v1', bytes([2, 1]) + struct.pack('>I', 2) + ents)
ents = b''.join(bytes([len(n)]) + n + struct.pack('>QQQ', s, r, i)
                for n, s, r, i in ((b'web', 7, 9, 5), (b'db', 3, 4, 3)))
save(cat, 'state-sealed', bytes([2, 3]) + struct.pack('>I', 2) + ents)
save(cat, 'state-raw', bytes([2, 0]) + b'KSCATST\1' + bytes(60))
b64 = lambda s: base64.b64encode(s).decode()
hdr = {"cluster_id": "14841639068965178418", "member_id": "10276657743932975437",
       "revision": "12", "raft_term": "2"}
kv = {"key": b64(b'/kst/keys/web'), "create_revision": "5", "mod_revision": "10", "version": "2",
      "value": b64(rec)}
other = dict(kv, key=b64(b'/other/keys/x'))
save(etcd, 'range', bytes([0, 0]) + json.dumps({"header": hdr, "kvs": [kv, other], "count": "2"}).encode())
save(etcd, 'range-empty', bytes([0, 0]) + json.dumps({"header": hdr}).encode())
save(etcd, 'txn', bytes([1, 0]) + json.dumps({"header": hdr, "succeeded": True, "responses": [
    {"response_put": {"header": hdr}}]}).encode())
save(etcd, 'txn-failed', bytes([1, 0]) + json.dumps({"header": hdr}).encode())
save(etcd, 'auth', bytes([2, 0]) + json.dumps({"header": hdr, "token": "VbNiGQlBUTGBzRkb.20"}).encode())
save(etcd, 'error', bytes([2, 0x91]) + json.dumps({"error": "etcdserver: authentication failed, invalid user ID or password",
    "code": 3, "message": "etcdserver: authentication failed, invalid user ID or password"}).encode())
watch = (json.dumps({"result": {"header": hdr, "created": True}}) + "\n"
         + json.dumps({"result": {"header": hdr, "events": [{"kv": kv},
                      {"type": "DELETE", "kv": {"key": kv["key"], "mod_revision": "15"}}]}}) + "\n"
         + json.dumps({"result": {"header": hdr, "canceled": True, "compact_revision": "9"}}) + "\n")
save(etcd, 'watch', bytes([3, 0]) + watch.encode())
save(etcd, 'watch-chunks', bytes([3, 7]) + watch.encode())
save(etcd, 'watch-error', bytes([3, 0]) + json.dumps({"error": {"grpc_code": 14, "http_code": 503,
    "message": "etcdserver: no leader", "http_status": "Service Unavailable"}}).encode() + b"\n")
PY

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# The server logs every refused request; keep libFuzzer's own output only.
opts=(-close_fd_mask=2 -rss_limit_mb=2048 -timeout=20 -max_len=8192)

status=0
for target in server shm client catalogue etcd; do
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
