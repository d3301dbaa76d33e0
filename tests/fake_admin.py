#!/usr/bin/env python3
"""fake_admin.py SOCKET CAPTURE: an impostor on an admin socket path.

Listens on SOCKET (as whatever user runs it), answers keystorectl's Hello
like keystored would (protobuf written by hand: Response{id, hello{version
1, server_version, max_frame}}), then stores every later request frame it
receives in CAPTURE (answering each with an ERROR_INTERNAL).  tests/test_ctl_impostor.sh runs it as `nobody` to
show what an impostor would learn from `keystorectl import`."""
import socket
import struct
import sys


def varint(n):
    out = b''
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wire, payload):
    key = varint((num << 3) | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def read_frame(c):
    hdr = b''
    while len(hdr) < 4:
        d = c.recv(4 - len(hdr))
        if not d:
            return None
        hdr += d
    n = struct.unpack('>I', hdr)[0]
    body = b''
    while len(body) < n:
        d = c.recv(n - len(body))
        if not d:
            return None
        body += d
    return body


def request_id(frame):
    # Request.id is field 1 (varint), written first by protobuf-c
    if not frame or frame[0] != 0x08:
        return 0
    n = shift = 0
    for b in frame[1:]:
        n |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            break
    return n


def main():
    path, capture = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    print('listening', flush=True)
    while True:
        c, _ = s.accept()
        hello = read_frame(c)
        if hello is None:
            c.close()
            continue
        reply = field(1, 0, request_id(hello)) + field(3, 2, field(1, 0, 1) +
                     field(2, 2, b'keystored 0.1.0') + field(3, 0, 65536))
        c.sendall(struct.pack('>I', len(reply)) + reply)
        while True:
            f = read_frame(c)
            if f is None:
                break
            with open(capture, 'ab') as out:
                out.write(f)
            err = field(2, 2, field(1, 0, 9) + field(2, 2, b'impostor'))
            reply = field(1, 0, request_id(f)) + err
            c.sendall(struct.pack('>I', len(reply)) + reply)
        c.close()


if __name__ == '__main__':
    main()
