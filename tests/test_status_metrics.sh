#!/usr/bin/env bash
# keystorectl status / metrics: counts match a known number of operations,
# p50/p99 are there, the metrics parse as strict Prometheus text, and both
# are admin-only.  Attack: requests naming hostile "keys" (quotes,
# newlines, a fake sample) or thousands of made-up names must neither
# inject lines into the metrics nor grow them without bound.
. "$(dirname "$0")/lib.sh"
ks_start
ks_ctl generate web --type ec >/dev/null || fail "generate web"
N_OK=25 N_MISSING=600
"$KS_BUILD_ROOT/tests/statsflood" "$KEYSTORE_SERVER" web $N_OK $N_MISSING || fail "statsflood"
# one client connection held open (not even a Hello)
python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(60)' "$T/ks.sock" &
HOLD=$!
for _ in $(seq 100); do
    ks_ctl --json status > "$T/st.json"
    grep -q '"client": {"open": 1' "$T/st.json" && break
    sleep 0.05
done

python3 - "$T/st.json" $N_OK $N_MISSING <<'PY' || { cat "$T/st.json"; fail "status --json does not match the operations made"; }
import json, sys
st = json.load(open(sys.argv[1]))
n_ok, n_missing = int(sys.argv[2]), int(sys.argv[3])
ops = st["operations"]
def count(**kw):
    return sum(o["count"] for o in ops if all(o[k] == v for k, v in kw.items()))
assert count(op="sign", key="web", result="ok") == n_ok, "sign ok"
assert count(op="sign", result="ERROR_NO_SUCH_KEY") == n_missing, "sign no such key"
assert count(op="sign", result="ERROR_BAD_REQUEST") == 3, "hostile names"
assert count(op="generate", key="web", result="ok") == 1, "generate"
# made-up names are bounded: the overflow is counted under _other
labels = {o["key"] for o in ops}
assert "_other" in labels and len(ops) < n_missing, ("unbounded labels", len(ops))
# the hostile names never became labels (they count under "" or, with the map full, _other)
assert all(all(c.isalnum() or c in "._-" for c in k) for k in labels), labels
assert not any(o["key"] not in ("", "_other") and o["result"] == "ERROR_BAD_REQUEST" for o in ops)
lat = {l["op"]: l for l in st["latency"]}
s = lat["sign"]
assert s["count"] == n_ok + n_missing + 3, s["count"]
assert 0 < s["p50_us"] <= s["p99_us"], s
assert s["buckets"][-1]["count"] <= s["count"]
assert st["keys"] == 1 and st["workers"] == 2
c = st["connections"]
assert c["client"]["open"] == 1 and c["client"]["accepted"] >= 2, c
assert c["admin"]["open"] == 1, c          # this status request's own connection
assert st["errors"] >= n_missing + 3, st["errors"]
assert st["last_reload"] is None and st["reloads"] == 0
assert st["uptime_seconds"] >= 0 and st["start_time"] > 1700000000
assert st["catalogue"] == {"mode": "embedded"}, st["catalogue"]
PY
pass "status --json: $N_OK signatures, $N_MISSING unknown keys (bounded labels), 3 hostile names, p50/p99, open connections by kind"

ks_ctl status > "$T/st.txt"
grep -q "^keys:        1$" "$T/st.txt" || fail "status text: keys"
grep -q "^connections: 2 open (client 1, admin 1, tcp 0)" "$T/st.txt" || { cat "$T/st.txt"; fail "status text: connections"; }
grep -Eq "^sign +web +ok +$N_OK$" "$T/st.txt" || { cat "$T/st.txt"; fail "status text: operations"; }
grep -Eq "^sign +$((N_OK + N_MISSING + 3)) +[0-9]+ +[0-9]+ +[0-9]+$" "$T/st.txt" || { cat "$T/st.txt"; fail "status text: latency"; }
grep -q "^last reload: never (0 accepted, 0 refused)$" "$T/st.txt" || fail "status text: last reload"
grep -q "^catalogue:   embedded (this server's key directory only)$" "$T/st.txt" || fail "status text: catalogue"
pass "status text"

ks_ctl reload >/dev/null || fail "reload"
ks_ctl metrics > "$T/metrics" || fail "metrics"
python3 "$KS_SOURCE_ROOT/tests/prom_check.py" "$T/metrics" || { cat "$T/metrics"; fail "metrics are not valid Prometheus text"; }
for line in 'keystore_up 1' 'keystore_keys 1' 'keystore_connections{kind="client"} 1' \
    "keystore_operations_total{key=\"web\",op=\"sign\",result=\"ok\"} $N_OK" \
    "keystore_operation_latency_seconds_count{op=\"sign\"} $((N_OK + N_MISSING + 3))" \
    "keystore_operation_latency_seconds_bucket{op=\"sign\",le=\"+Inf\"} $((N_OK + N_MISSING + 3))" \
    'keystore_reloads_total{result="ok"} 1' 'keystore_last_reload_success 1'; do
    grep -qxF "$line" "$T/metrics" || fail "metrics lack: $line"
done
grep -q "keystore_up 0" "$T/metrics" && fail "a hostile key name injected a sample"
grep -q "^keystore_catalogue" "$T/metrics" && fail "catalogue metrics with catalogue = embedded"
pass "metrics: valid Prometheus text (strict checker), counts and histogram match"

# admin only
expect_fail "ERROR_PERMISSION_DENIED: Status is an admin operation: use the admin socket" \
    "$KEYSTORECTL" -s "$KEYSTORE_SERVER" status
pass "status refused on the client socket"

# a scrape of a stopped server still yields valid text, keystore_up 0, exit 2
kill "$HOLD" 2>/dev/null || true
ks_stop
set +e; ks_ctl metrics > "$T/down" 2>/dev/null; rc=$?; set -e
[ $rc = 2 ] || fail "metrics of a stopped server exits $rc"
python3 "$KS_SOURCE_ROOT/tests/prom_check.py" "$T/down" >/dev/null || fail "down metrics invalid"
grep -qx "keystore_up 0" "$T/down" || fail "no keystore_up 0"
pass "metrics of a stopped server: keystore_up 0, exit 2"
