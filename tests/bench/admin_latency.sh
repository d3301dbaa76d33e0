#!/usr/bin/env bash
# Admin write latency with catalogue = etcd: on one replica (three etcd
# members of its own on loopback, as the catalogue tests start them) with 200
# keys, N generate then N delete through keystorectl; median, min and max.
# Usage: tests/bench/admin_latency.sh [BUILD_DIR] [N=30]
# Give two builds in turn (three runs each, interleaved) to compare them:
# docs/scaling.md ("Limits") has the figures for the .catalogue write.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
export KS_BUILD_ROOT=$(cd "${1:-$src/build}" && pwd) KS_SOURCE_ROOT=$src
n=${2:-30}
. "$src/tests/lib.sh"
. "$src/tests/etcd_lib.sh"
cd "$T"
etcd_start
replica_start a
for i in $(seq 1 200); do replica_ctl a generate "pre$i" --type ed25519 >/dev/null; done
us() { local s e; s=$(date +%s%N); "$@" >/dev/null || fail "$*"; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
g=(); d=()
for i in $(seq 1 "$n"); do g+=("$(us replica_ctl a generate "k$i" --type ec)"); done
for i in $(seq 1 "$n"); do d+=("$(us replica_ctl a delete "k$i" --yes)"); done
med() {
    printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 }
        END { printf "median %.1f ms (min %.1f, max %.1f)", a[int((NR + 1) / 2)] / 1000, a[1] / 1000, a[NR] / 1000 }'
}
echo "generate: $(med "${g[@]}")"
echo "delete:   $(med "${d[@]}")"
