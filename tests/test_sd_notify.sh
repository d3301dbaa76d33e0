#!/usr/bin/env bash
# systemd readiness (Type=notify) with a real keystored, confined as
# always: READY=1 only once the sockets accept connections and the keys
# are loaded, STATUS= lines, WATCHDOG=1 at half of WATCHDOG_USEC from the
# worker loop (through the jail and the seccomp filter), RELOADING=1 and
# READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM.
. "$(dirname "$0")/lib.sh"
ks_start
ks_ctl generate web --type ec >/dev/null || fail "generate"
ks_stop
rm -f "$T/ks.sock" "$T/admin.sock"
python3 "$KS_SOURCE_ROOT/tests/sd_notify_listen.py" "$T/admin.sock" 1000000 -- \
    "$KEYSTORED" -c "$T/keystored.conf" > "$T/notify.out" 2> "$T/keystored.log" \
    || { cat "$T/notify.out" "$T/keystored.log"; fail "notify protocol"; }
grep -q "'READY=1\\\\nSTATUS=serving 1 keys with 2 workers'" "$T/notify.out" || { cat "$T/notify.out"; fail "READY/STATUS text"; }
grep -q "RELOADING=1\\\\nMONOTONIC_USEC=" "$T/notify.out" || fail "RELOADING=1 without MONOTONIC_USEC"
grep -q "systemd watchdog: pinging every 500 ms" "$T/keystored.log" || fail "watchdog not logged"
grep -q "seccomp filter installed" "$T/keystored.log" || [ -n "${KS_EXTRA_CONFIG:-}" ] || fail "not confined"
pass "READY=1 after the sockets accept, WATCHDOG=1 every 500 ms, RELOADING=1/READY=1 on SIGHUP, STOPPING=1: $(grep -c WATCHDOG "$T/notify.out") pings"
