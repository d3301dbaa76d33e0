#!/usr/bin/env python3
"""An independent keystored TCP client, written only from docs/protocol.md,
the Noise specification (revision 34, noiseprotocol.org/noise.html) and
proto/keystore.proto: no code of proto/ is used.  Primitives come from
Python (hashlib.blake2b, hmac) and the 'cryptography' package (X25519,
ChaCha20-Poly1305; tests/install-deps.sh installs python3-cryptography).

  noise_client.py ADDR SERVER_PUB CLIENT_KEY sign KEY DIGEST_FILE OUT COUNT [REKEY_EVERY] [SLEEP]
      Hello, then COUNT SHA-256 signatures with KEY on one connection (the
      last one written to OUT), rekeying our sending key every REKEY_EVERY
      frames (0: never), sleeping SLEEP seconds between requests; prints
      how many rekeys were sent and received.
  noise_client.py ADDR SERVER_PUB CLIENT_KEY no-confirm WAIT
      message 1 and message 2 only, then no transport frame: prints after
      how many seconds the server closed.
"""
import base64
import hashlib
import hmac
import os
import socket
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

PROTOCOL_NAME = b"Noise_IK_25519_ChaChaPoly_BLAKE2b"
MAGIC = b"KSHS\x02\x00\x00\x00"          # sent first and used as the prologue
HASHLEN = 64
MAX_NONCE = 2**64 - 1


def raw_pub(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def dh(priv, pub_bytes):
    return priv.exchange(X25519PublicKey.from_public_bytes(pub_bytes))


def blake2b(data):
    return hashlib.blake2b(data, digest_size=64).digest()


def hkdf2(ck, ikm):
    temp = hmac.new(ck, ikm, hashlib.blake2b).digest()
    out1 = hmac.new(temp, b"\x01", hashlib.blake2b).digest()
    out2 = hmac.new(temp, out1 + b"\x02", hashlib.blake2b).digest()
    return out1, out2


class CipherState:
    def __init__(self, k=None):
        self.k, self.n = k, 0

    def _nonce(self, n):
        return b"\x00" * 4 + n.to_bytes(8, "little")

    def encrypt(self, ad, pt):
        if self.k is None:
            return pt
        ct = ChaCha20Poly1305(self.k).encrypt(self._nonce(self.n), pt, ad)
        self.n += 1
        return ct

    def decrypt(self, ad, ct):
        if self.k is None:
            return ct
        pt = ChaCha20Poly1305(self.k).decrypt(self._nonce(self.n), ct, ad)
        self.n += 1
        return pt

    def rekey(self):
        self.k = ChaCha20Poly1305(self.k).encrypt(self._nonce(MAX_NONCE), b"\x00" * 32, b"")[:32]


class Initiator:
    """HandshakeState for IK as the initiator (spec 5.2, 5.3, 7.5)."""

    def __init__(self, s, rs, prologue):
        self.h = PROTOCOL_NAME.ljust(HASHLEN, b"\x00")   # name <= HASHLEN: padded
        self.ck = self.h
        self.cs = CipherState()
        self.s, self.rs = s, rs
        self.mix_hash(prologue)
        self.mix_hash(rs)                                # pre-message <- s

    def mix_hash(self, data):
        self.h = blake2b(self.h + data)

    def mix_key(self, ikm):
        self.ck, temp_k = hkdf2(self.ck, ikm)
        self.cs = CipherState(temp_k[:32])

    def encrypt_and_hash(self, pt):
        ct = self.cs.encrypt(self.h, pt)
        self.mix_hash(ct)
        return ct

    def decrypt_and_hash(self, ct):
        pt = self.cs.decrypt(self.h, ct)
        self.mix_hash(ct)
        return pt

    def write_message_1(self, payload):
        self.e = X25519PrivateKey.generate()
        e_pub = raw_pub(self.e)
        self.mix_hash(e_pub)                             # e
        self.mix_key(dh(self.e, self.rs))                # es
        enc_s = self.encrypt_and_hash(raw_pub(self.s))   # s
        self.mix_key(dh(self.s, self.rs))                # ss
        return e_pub + enc_s + self.encrypt_and_hash(payload)

    def read_message_2(self, msg):
        re = msg[:32]
        self.mix_hash(re)                                # e
        self.mix_key(dh(self.e, re))                     # ee
        self.mix_key(dh(self.s, re))                     # se
        return self.decrypt_and_hash(msg[32:])

    def split(self):
        k1, k2 = hkdf2(self.ck, b"")
        return CipherState(k1[:32]), CipherState(k2[:32])


def tai64n_now():
    # NOISE_CLOCK_OFFSET (seconds) plays a client whose clock is off
    ns = time.time_ns() + int(float(os.environ.get("NOISE_CLOCK_OFFSET", "0")) * 10**9)
    return (2**62 + 10 + ns // 10**9).to_bytes(8, "big") + (ns % 10**9).to_bytes(4, "big")


# ---- protobuf, the few messages we need (proto/keystore.proto) ----------

def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def parse(buf):
    """{field number: [values]} for one message level."""
    out, i = {}, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = read_varint(buf, i)
        elif wire == 2:
            n, i = read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        else:
            raise ValueError("unexpected wire type %d" % wire)
        out.setdefault(num, []).append(v)
    return out


def read_varint(buf, i):
    v = shift = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def hello_request(rid):
    return field(1, 0, rid) + field(2, 2, field(1, 0, 1) + field(2, 2, b"noise_client.py"))


def sign_request(rid, key, digest):
    body = field(1, 2, key.encode()) + field(2, 2, b"SHA256") + field(6, 2, digest)
    return field(1, 0, rid) + field(4, 2, body)


# ---- the channel ----------------------------------------------------------

def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            raise ConnectionError("server closed the connection")
        buf += b
    return buf


def read_frame(s):
    n = int.from_bytes(recv_exact(s, 4), "big")
    return recv_exact(s, n)


def write_frame(s, body):
    s.sendall(len(body).to_bytes(4, "big") + body)


def load_client_key(path):
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#"):
            return X25519PrivateKey.from_private_bytes(base64.b64decode(line))
    raise ValueError("no key in " + path)


def connect(addr):
    host, port = addr[4:].rsplit(":", 1)
    host = host.strip("[]")
    s = socket.create_connection((host, int(port)), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def handshake(s, server_pub, client_key):
    hs = Initiator(client_key, server_pub, MAGIC)
    write_frame(s, MAGIC + hs.write_message_1(tai64n_now()))
    msg2 = read_frame(s)
    if len(msg2) == 1:
        sys.exit("server could not decrypt message 1 (status %d)" % msg2[0])
    payload = hs.read_message_2(msg2)     # raises if the server is not who we pinned
    if len(payload) != 13 or payload[0] != 0:
        sys.exit("server refused the handshake with status %d" % payload[0])
    return hs.split()


class Channel:
    def __init__(self, s, send, recv, rekey_every):
        self.s, self.send, self.recv = s, send, recv
        self.rekey_every, self.since = rekey_every, 0
        self.rekeys_sent = self.rekeys_received = 0

    def write(self, pt):
        if self.rekey_every and self.since >= self.rekey_every:
            write_frame(self.s, self.send.encrypt(b"", b""))   # the rekey marker
            self.send.rekey()
            self.since = 0
            self.rekeys_sent += 1
        write_frame(self.s, self.send.encrypt(b"", pt))
        self.since += 1

    def read(self):
        while True:
            pt = self.recv.decrypt(b"", read_frame(self.s))
            if pt:
                return pt
            self.recv.rekey()                                  # the server rekeyed
            self.rekeys_received += 1

    def call(self, req):
        self.write(req)
        return parse(self.read())


def main():
    a = sys.argv[1:]
    if len(a) < 4:
        sys.exit(__doc__)
    addr, server_pub, client_key, mode = a[0], base64.b64decode(a[1]), load_client_key(a[2]), a[3]
    s = connect(addr)
    if mode == "no-confirm":
        handshake(s, server_pub, client_key)
        t0 = time.monotonic()
        s.settimeout(float(a[4]))
        try:
            gone = s.recv(1) == b""
        except (socket.timeout, ConnectionResetError) as e:
            gone = isinstance(e, ConnectionResetError)
        print("closed after %.2f s" % (time.monotonic() - t0) if gone else "still open")
        return
    if mode != "sign":
        sys.exit(__doc__)
    key, digest, out, count = a[4], open(a[5], "rb").read(), a[6], int(a[7])
    rekey_every = int(a[8]) if len(a) > 8 else 0
    pause = float(a[9]) if len(a) > 9 else 0
    send, recv = handshake(s, server_pub, client_key)
    ch = Channel(s, send, recv, rekey_every)
    hello = ch.call(hello_request(1))
    if 3 not in hello:
        sys.exit("no HelloReply: %r" % hello)
    max_frame = parse(hello[3][0]).get(3, [0])[0]
    sig = None
    for i in range(count):
        r = ch.call(sign_request(2 + i, key, digest))
        if r.get(1, [0])[0] != 2 + i or 5 not in r:
            err = parse(r[2][0]) if 2 in r else {}
            sys.exit("sign %d failed: %r" % (i, err.get(2, [r])[0]))
        sig = parse(r[5][0])[1][0]
        if pause:
            time.sleep(pause)
    open(out, "wb").write(sig)
    print("signed %d times; max_frame %d; rekeys sent %d received %d"
          % (count, max_frame, ch.rekeys_sent, ch.rekeys_received))


if __name__ == "__main__":
    main()
