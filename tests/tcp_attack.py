#!/usr/bin/env python3
"""Hostile TCP peers for keystored's listener, independent of the channel's
cryptography (they only frame bytes: 4-byte big-endian length + body), so
the same attacks run against any version of the handshake.

  tcp_attack.py proxy LISTEN_PORT_FILE SERVER_HOST SERVER_PORT CAPTURE_FILE
      a transparent relay for one real client; writes the client's first
      frame (handshake message 1) to CAPTURE_FILE
  tcp_attack.py replay HOST PORT CAPTURE_FILE COUNT HOLD_SECONDS
      sends the captured message 1 from COUNT new connections and keeps
      them open; prints how many got a reply and how many are still open
  tcp_attack.py flood HOST PORT COUNT SECONDS READY_FILE
      keeps COUNT connections that never send a byte open for SECONDS,
      reopening those the server closes (at most every 20 ms); prints stats
  tcp_attack.py silent HOST PORT WAIT
      connects, sends nothing, prints after how many seconds the server closed
  tcp_attack.py bigheader HOST PORT LENGTH WAIT
      sends only a frame header claiming LENGTH bytes; prints after how many
      seconds the server closed
"""
import os
import resource
import select
import signal
import selectors
import socket
import sys
import threading
import time


def connect(host, port, timeout=5):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, int(port)))
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            return None
        buf += b
    return buf


def read_frame(s):
    hdr = recv_exact(s, 4)
    if hdr is None:
        return None
    body = recv_exact(s, int.from_bytes(hdr, "big"))
    return None if body is None else hdr + body


def closed_after(s, wait):
    """Seconds until the server closes s (EOF or reset), or None within wait."""
    t0 = time.monotonic()
    s.settimeout(wait)
    try:
        while True:
            if not s.recv(4096):
                return time.monotonic() - t0
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - t0
    except socket.timeout:
        return None


def proxy(port_file, host, port, capture):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    c, _ = ls.accept()
    s = connect(host, port)
    c.settimeout(10)
    first = read_frame(c)
    if first is None:
        sys.exit("proxy: the client sent no complete first frame")
    with open(capture, "wb") as f:
        f.write(first)
    s.sendall(first)
    c.setblocking(False)
    s.setblocking(False)
    peers = {c: s, s: c}
    while True:
        r, _, _ = select.select([c, s], [], [], 10)
        if not r:
            return
        for x in r:
            try:
                data = x.recv(65536)
            except (ConnectionResetError, BlockingIOError):
                data = b""
            if not data:
                return
            peers[x].setblocking(True)
            peers[x].sendall(data)
            peers[x].setblocking(False)


def replay(host, port, capture, count, hold):
    msg1 = open(capture, "rb").read()
    conns, replied = [], 0
    for _ in range(int(count)):
        s = connect(host, port)
        s.sendall(msg1)
        s.settimeout(3)
        try:
            if read_frame(s) is not None:
                replied += 1
        except (socket.timeout, ConnectionResetError):
            pass
        conns.append(s)
    time.sleep(0.3)
    still = 0
    for s in conns:
        s.setblocking(False)
        try:
            still += 1 if s.recv(1) != b"" else 0
        except BlockingIOError:
            still += 1      # nothing to read and not closed: still held
        except ConnectionResetError:
            pass
    print("replays=%s replied=%d held_open=%d" % (count, replied, still), flush=True)
    time.sleep(float(hold))


def flood(host, port, count, seconds, ready_file):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = int(count) + 64
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    sel = selectors.DefaultSelector()   # epoll: select() stops at fd 1024
    conns, opened, closed_by_server = set(), 0, 0
    deadline = time.monotonic() + float(seconds)
    ready = False
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))   # print the stats when killed
    while time.monotonic() < deadline and not stop:
        while len(conns) < int(count):
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect((host, int(port)))
            except BlockingIOError:
                pass
            conns.add(s)
            sel.register(s, selectors.EVENT_READ)
            opened += 1
        if not ready:
            open(ready_file, "w").write("%d\n" % len(conns))
            ready = True
        for key, _ in sel.select(0.02):
            s = key.fileobj
            try:
                gone = s.recv(1) == b""
            except BlockingIOError:
                gone = False
            except OSError:
                gone = True
            if gone:
                sel.unregister(s)
                conns.discard(s)
                s.close()
                closed_by_server += 1
        time.sleep(0.02)
    print("flood: opened=%d closed_by_server=%d open_at_end=%d"
          % (opened, closed_by_server, len(conns)), flush=True)


def main():
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    cmd = a[0]
    if cmd == "proxy":
        proxy(*a[1:5])
    elif cmd == "replay":
        replay(*a[1:6])
    elif cmd == "flood":
        flood(*a[1:6])
    elif cmd == "silent":
        s = connect(a[1], a[2])
        t = closed_after(s, float(a[3]))
        print("closed after %.2f s" % t if t is not None else "still open after %s s" % a[3])
    elif cmd == "bigheader":
        s = connect(a[1], a[2])
        s.sendall(int(a[3]).to_bytes(4, "big"))
        t = closed_after(s, float(a[4]))
        print("closed after %.2f s" % t if t is not None else "still open after %s s" % a[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
