#!/usr/bin/env python3
"""Run a program as systemd's Type=notify does and check what it says.

usage: sd_notify_listen.py SOCKET_TO_PROBE WATCHDOG_USEC -- COMMAND [ARGS...]

Binds a datagram socket, starts COMMAND with NOTIFY_SOCKET (and
WATCHDOG_USEC, WATCHDOG_PID) set, and records every message.  Checks:
READY=1 arrives, and when it does, SOCKET_TO_PROBE already accepts a
connection; WATCHDOG=1 keeps arriving (at least 4 in the next 2.5 watchdog
intervals, none more than one interval apart); SIGHUP yields RELOADING=1
then READY=1; SIGTERM yields STOPPING=1 and exit status 0.  Prints every
message with its time, then "ok" or the failure (exit 1).
"""
import os
import socket
import subprocess
import sys
import tempfile
import time


def main(argv):
    probe, wd_usec = argv[1], int(argv[2])
    cmd = argv[argv.index("--") + 1:]
    d = tempfile.mkdtemp(prefix="ksnotify.")
    path = os.path.join(d, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.chmod(d, 0o755)
    os.chmod(path, 0o777)   # the server sends after dropping root
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC=str(wd_usec))
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, preexec_fn=lambda: os.environ.update(WATCHDOG_PID=str(os.getpid())) or None)
    msgs = []

    def recv(timeout):
        sock.settimeout(timeout)
        try:
            m = sock.recv(4096).decode()
        except socket.timeout:
            return None
        msgs.append((time.monotonic() - t0, m))
        print(f"{msgs[-1][0]:7.3f} {m!r}", flush=True)
        return m

    def wait_for(word, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = recv(end - time.monotonic())
            if m is not None and word in m.split("\n"):
                return m
        return None

    def fail(why):
        print("FAIL:", why)
        proc.kill()
        sys.exit(1)

    m = wait_for("READY=1", 20)
    if m is None:
        fail("no READY=1")
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        c.connect(probe)
    except OSError as e:
        fail(f"READY=1 arrived but {probe} does not accept connections: {e}")
    c.close()
    if not any(l.startswith("STATUS=") for l in m.split("\n")):
        fail("READY=1 without STATUS=")
    interval = wd_usec / 1e6
    pings, last = [], time.monotonic()
    end = time.monotonic() + 2.5 * interval
    while time.monotonic() < end:
        m = recv(end - time.monotonic())
        if m is not None and "WATCHDOG=1" in m.split("\n"):
            now = time.monotonic()
            if now - last > interval:
                fail(f"{now - last:.3f} s between watchdog pings (interval {interval} s)")
            pings.append(now)
            last = now
    if len(pings) < 4:
        fail(f"only {len(pings)} WATCHDOG=1 in {2.5 * interval} s")
    proc.send_signal(1)   # SIGHUP
    if wait_for("RELOADING=1", 10) is None:
        fail("no RELOADING=1 after SIGHUP")
    if wait_for("READY=1", 10) is None:
        fail("no READY=1 after the reload")
    proc.terminate()
    if wait_for("STOPPING=1", 10) is None:
        fail("no STOPPING=1 after SIGTERM")
    rc = proc.wait(20)
    if rc != 0:
        fail(f"exit status {rc}")
    print("ok")


if __name__ == "__main__":
    main(sys.argv)
