# Helpers for the catalogue (catalogue = etcd) tests: a three-member etcd
# cluster of its own on loopback ports with data in $T (never Debian's
# packaged service on 2379/2380), and keystored replicas sharing one master
# key, each in its own directory $T/NAME.  Source after lib.sh.

ETCD_PIDS=()
# TLS on the client URLs (test_catalogue_tls.sh): ETCD_SCHEME=https, the
# members' certificate flags in ETCD_MEMBER_ARGS, etcdctl's (and --user once
# auth is on) in ETCD_CTL_ARGS.
ETCD_SCHEME=${ETCD_SCHEME:-http}
ETCD_MEMBER_ARGS=()
ETCD_CTL_ARGS=()
# etcd_start: three members m1..m3; ETCD_ENDPOINTS lists their client URLs.
etcd_start() {
    free_ports ETCD_C1 ETCD_C2 ETCD_C3 ETCD_P1 ETCD_P2 ETCD_P3
    ETCD_CLUSTER="m1=http://127.0.0.1:$ETCD_P1,m2=http://127.0.0.1:$ETCD_P2,m3=http://127.0.0.1:$ETCD_P3"
    ETCD_ENDPOINTS="$ETCD_SCHEME://127.0.0.1:$ETCD_C1 $ETCD_SCHEME://127.0.0.1:$ETCD_C2 $ETCD_SCHEME://127.0.0.1:$ETCD_C3"
    local i
    for i in 1 2 3; do etcd_member_start "$i" new; done
    etcd_wait_healthy
}

etcd_member_start() {   # N new|existing
    local i=$1 c p
    c=ETCD_C$i; p=ETCD_P$i
    etcd --name "m$i" --data-dir "$T/etcd-m$i" \
        --listen-client-urls "$ETCD_SCHEME://127.0.0.1:${!c}" \
        --advertise-client-urls "$ETCD_SCHEME://127.0.0.1:${!c}" "${ETCD_MEMBER_ARGS[@]}" \
        --listen-peer-urls "http://127.0.0.1:${!p}" --initial-advertise-peer-urls "http://127.0.0.1:${!p}" \
        --initial-cluster "$ETCD_CLUSTER" --initial-cluster-token "kst-$$" \
        --initial-cluster-state "$2" >"$T/etcd-m$i.log" 2>&1 &
    ETCD_PIDS[$i]=$!
}

etcd_ctl() { ETCDCTL_API=3 etcdctl --endpoints="${ETCD_ENDPOINTS// /,}" "${ETCD_CTL_ARGS[@]}" "$@"; }

etcd_wait_healthy() {
    local i
    for i in $(seq 1 100); do
        if etcd_ctl endpoint health >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    tail -5 "$T"/etcd-m*.log >&2
    fail "the etcd cluster did not become healthy within 20 s"
}

# The member number (1..3) that is the leader now.
etcd_leader() {
    local i c st
    for i in 1 2 3; do
        c=ETCD_C$i
        st=$(ETCDCTL_API=3 etcdctl --endpoints="$ETCD_SCHEME://127.0.0.1:${!c}" "${ETCD_CTL_ARGS[@]}" \
            endpoint status -w json 2>/dev/null) || continue
        if echo "$st" | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)[0]["Status"]
sys.exit(0 if s["header"]["member_id"] == s["leader"] else 1)'; then
            echo "$i"; return 0
        fi
    done
    return 1
}

etcd_stop_all() {
    local i
    for i in 1 2 3; do
        if [ -n "${ETCD_PIDS[$i]:-}" ]; then kill -9 "${ETCD_PIDS[$i]}" 2>/dev/null || true; fi
    done
    for i in 1 2 3; do
        if [ -n "${ETCD_PIDS[$i]:-}" ]; then wait "${ETCD_PIDS[$i]}" 2>/dev/null || true; fi
        ETCD_PIDS[$i]=
    done
}

# fleet_of_two: what most catalogue tests start from: the etcd cluster,
# replicas a and b, and ./data for sign_on.
fleet_of_two() {
    etcd_start
    replica_start a
    replica_start b
    printf 'data\n' > data
}

declare -A REPLICA_PID=()
# replica_start NAME [CONFIG LINE...]: keystored in $T/NAME with the shared
# master key $T/master.key and catalogue = etcd on the cluster.
replica_start() {
    local name=$1 base=$T
    shift
    mkdir -p "$base/$name"
    [ -f "$base/master.key" ] || "$KEYSTORED" --gen-master-key "$base/master.key" >/dev/null
    cp -p "$base/master.key" "$base/$name/master.key"
    T=$base/$name
    KS_PID=
    ks_start "catalogue = etcd" "catalogue_endpoints = $ETCD_ENDPOINTS" \
        "catalogue_prefix = /kst/" "allow_client_generate = no" "$@"
    REPLICA_PID[$name]=$KS_PID
    KS_PID=
    T=$base
}

replica_stop() {   # NAME [SIGNAL]
    local pid=${REPLICA_PID[$1]:-}
    if [ -n "$pid" ]; then
        kill "-${2:-TERM}" "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    REPLICA_PID[$1]=
}

replica_ctl() {   # NAME keystorectl-args...
    local name=$1
    shift
    KEYSTORE_ADMIN="unix:$T/$name/admin.sock" "$KEYSTORECTL" "$@"
}

# catalogue_status REPLICA PATTERN [SECONDS]: within SECONDS (15) the
# catalogue line of its keystorectl status (kept in ./status.REPLICA)
# matches the ERE PATTERN
catalogue_status() {
    local i
    for i in $(seq 1 $(( ${3:-15} * 10 ))); do
        replica_ctl "$1" status > "status.$1" 2>&1 || true
        grep -Eq "^catalogue: +$2" "status.$1" && return 0
        sleep 0.1
    done
    cat "status.$1" >&2
    return 1
}

# Wait until keystorectl on NAME says key KEY is there (or, with "gone",
# that it is not), at most SECONDS; prints the time it took in ms.
replica_wait_key() {   # NAME KEY present|gone SECONDS
    local start now
    start=$(date +%s%N)
    while :; do
        if replica_ctl "$1" info "$2" >/dev/null 2>&1; then
            [ "$3" = present ] && break
        else
            [ "$3" = gone ] && break
        fi
        now=$(date +%s%N)
        if [ $(( (now - start) / 1000000 )) -gt $(( $4 * 1000 )) ]; then
            return 1
        fi
        sleep 0.02
    done
    now=$(date +%s%N)
    echo $(( (now - start) / 1000000 ))
}

# sign_on REPLICA KEY|URI [OUT]: sign the file ./data through REPLICA's
# socket with key KEY (keystore:KEY) or a keystore: URI (a version, say);
# the signature goes to OUT (default sig.REPLICA) and openssl's errors are
# appended to ./sign.err, for the caller to show when a signature it needs
# fails.  It only signs: callers that need the signature to be the key's
# check it with sig_verifies (a refused key must make this fail, so it
# does not fetch a public key of its own).
sign_on() {
    local uri=$2
    case $uri in keystore:*) ;; *) uri=keystore:$uri ;; esac
    KEYSTORE_SERVER="unix:$T/$1/ks.sock" openssl dgst "${PROV[@]}" -sha256 -sign "$uri" \
        -out "${3:-sig.$1}" data 2>>sign.err
}
# save_record NAME FILE: etcd's value of key NAME's record (under /kst/), as
# a file (binary), to put back later with etcd_ctl put (a replay).
save_record() {
    etcd_ctl get "/kst/keys/$1" -w json | /usr/bin/python3 -c '
import base64, json, sys
kvs = json.load(sys.stdin).get("kvs", [])
sys.stdout.buffer.write(base64.b64decode(kvs[0]["value"]) if kvs else b"")' > "$2"
    [ -s "$2" ] || fail "no record for $1 in etcd"
}
# sig_verifies PUB SIG: SIG is a signature of ./data by PUB's private key.
sig_verifies() { openssl dgst -sha256 -verify "$1" -signature "$2" data >/dev/null 2>&1; }

catalogue_cleanup() {
    local rc=$? n
    for n in "${!REPLICA_PID[@]}"; do replica_stop "$n" || true; done
    etcd_stop_all || true
    if [ "${KS_KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
    exit $rc
}
trap catalogue_cleanup EXIT
