#!/usr/bin/env python3
"""Reference model of RSAES-PKCS1-v1_5 decryption with implicit rejection.

An independent, deliberately simple (NOT constant time, NOT for production)
re-implementation of the implicit-rejection algorithm of
draft-irtf-cfrg-rsa-guidance (section "Implicit rejection"), as OpenSSL 3.2
ships it, plus keystore's deterministic TLS premaster substitute
(keystore-server/ops/rsa_implicit.h).  Python 3 standard library only.

  implicit_rejection_ref.py KEY.pem CIPHERTEXT_HEX
      prints the decryption (real message or synthetic one) in hex
  implicit_rejection_ref.py --tls CLIENT_VERSION [--alt ALT_VERSION] KEY.pem CIPHERTEXT_HEX
      prints the 48-byte TLS premaster (real or deterministic substitute)
  implicit_rejection_ref.py --selftest DIR
      checks every vector file (*.txt) in DIR; exit status 0 when all pass
  implicit_rejection_ref.py --make-tls-vectors KEY.pem [KEY.pem...]
      prints freshly generated TLS vectors (random padding) for --selftest

CIPHERTEXT_HEX may also be @FILE (raw bytes).  Versions accept 0x0303 or 771.

The algorithm, for a k-byte modulus n and private exponent d:
  c   = OS2IP(C); C shorter than k is left-padded with zeros; c >= n is an error
  EM  = I2OSP(c^d mod n, k)
  KDK = HMAC-SHA256(key = SHA-256(I2OSP(d, k)), msg = I2OSP(c, k))
  IRPRF(KDK, label, L) = first L bytes of
        HMAC-SHA256(KDK, I2OSP(i, 2) || label || I2OSP(8*L, 2)), i = 0, 1, ...
  CL  = IRPRF(KDK, "length", 256): 128 big-endian 16-bit candidates
  AM  = IRPRF(KDK, "message", k)
  AL  = the last candidate (masked to the bits of k-10, as OpenSSL 3.2 does)
        that is <= k-11; 0 if none is
  EM is valid iff EM[0] = 0, EM[1] = 2 and the first zero byte after index 1
  is at index >= 10; the result is then EM after that zero byte, otherwise the
  last AL bytes of AM.
TLS mode (RFC 5246 7.4.7.1's recommended construction, made deterministic
with keystore's own label): good = EM is a valid block whose message M is
exactly 48 bytes; the result is client_version || M[2..47] if good, else
client_version || S[2..47] with S = IRPRF(KDK, "tls premaster", 48).  M's own
version bytes are not checked, and alt_version is accepted and ignored.
"""

import base64
import glob
import hashlib
import hmac
import os
import secrets
import sys

TLS_LABEL = b"tls premaster"


# --- key parsing (PEM -> DER -> RSAPrivateKey INTEGERs), no dependencies ---

def _der_read(buf, pos):
    tag = buf[pos]
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        nbytes = length & 0x7F
        length = int.from_bytes(buf[pos:pos + nbytes], "big")
        pos += nbytes
    return tag, buf[pos:pos + length], pos + length


def _der_seq_items(body):
    items, pos = [], 0
    while pos < len(body):
        tag, value, pos = _der_read(body, pos)
        items.append((tag, value))
    return items


def load_rsa_private_key(path):
    """Returns (n, e, d) from a PEM file: PKCS#8 "PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY"."""
    text = open(path, encoding="ascii").read()
    for kind in ("PRIVATE KEY", "RSA PRIVATE KEY"):
        begin, end = "-----BEGIN %s-----" % kind, "-----END %s-----" % kind
        if begin in text:
            b64 = text.split(begin, 1)[1].split(end, 1)[0]
            der = base64.b64decode("".join(b64.split()))
            break
    else:
        raise ValueError("%s: no unencrypted PEM private key" % path)
    tag, body, _ = _der_read(der, 0)
    items = _der_seq_items(body)
    if kind == "PRIVATE KEY":
        # PrivateKeyInfo: version, AlgorithmIdentifier, OCTET STRING(RSAPrivateKey)
        if len(items) < 3 or items[2][0] != 0x04:
            raise ValueError("%s: not a PKCS#8 key" % path)
        if b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01" not in items[1][1]:
            raise ValueError("%s: not an rsaEncryption key" % path)
        tag, body, _ = _der_read(items[2][1], 0)
        items = _der_seq_items(body)
    ints = [int.from_bytes(v, "big") for t, v in items if t == 0x02]
    # RSAPrivateKey: version, n, e, d, p, q, dp, dq, qinv
    return ints[1], ints[2], ints[3]


# --- the algorithm ---

def i2osp(x, length):
    return x.to_bytes(length, "big")


def irprf(kdk, label, length):
    out = b""
    i = 0
    while len(out) < length:
        out += hmac.new(kdk, i2osp(i, 2) + label + i2osp(8 * length, 2), hashlib.sha256).digest()
        i += 1
    return out[:length]


def _prepare(n, d, ct):
    k = (n.bit_length() + 7) // 8
    if k < 11 or k > 8191:
        raise ValueError("unsupported modulus size")
    if len(ct) == 0 or len(ct) > k:
        raise ValueError("ciphertext is %d bytes, modulus %d" % (len(ct), k))
    c = int.from_bytes(ct, "big")
    if c >= n:
        raise ValueError("ciphertext representative out of range (c >= n)")
    em = i2osp(pow(c, d, n), k)
    dh = hashlib.sha256(i2osp(d, k)).digest()
    kdk = hmac.new(dh, i2osp(c, k), hashlib.sha256).digest()
    return k, em, kdk


def synthetic_length(kdk, k):
    cl = irprf(kdk, b"length", 256)
    max_len = k - 11
    mask = (1 << (k - 10).bit_length()) - 1
    al = 0
    for i in range(0, 256, 2):
        cand = int.from_bytes(cl[i:i + 2], "big") & mask
        if cand <= max_len:
            al = cand
    return al


def decrypt_ir(n, d, ct):
    """Returns (message, padding_was_valid)."""
    k, em, kdk = _prepare(n, d, ct)
    sep = em.find(b"\x00", 2)
    if em[0] == 0 and em[1] == 2 and sep >= 10:
        return em[sep + 1:], True
    al = synthetic_length(kdk, k)
    am = irprf(kdk, b"message", k)
    return am[k - al:], False


def tls_premaster(n, d, ct, client_version, alt_version=0):
    """Returns (premaster, was_real).  alt_version is range-checked, never used."""
    if not 0 < client_version <= 0xFFFF or not 0 <= alt_version <= 0xFFFF:
        raise ValueError("bad TLS version")
    k, em, kdk = _prepare(n, d, ct)
    if k < 11 + 48:
        raise ValueError("modulus too small for TLS")
    m = em[k - 48:]
    good = (em[0] == 0 and em[1] == 2 and 0 not in em[2:k - 49] and em[k - 49] == 0)
    if good:
        return i2osp(client_version, 2) + m[2:], True
    s = irprf(kdk, TLS_LABEL, 48)
    return i2osp(client_version, 2) + s[2:], False


# --- vector files ---

def read_vectors(path):
    blocks, cur = [], {}
    for line in open(path, encoding="ascii"):
        line = line.rstrip("\n")
        if line.startswith("#"):
            continue
        if not line.strip():
            if cur:
                blocks.append(cur)
                cur = {}
            continue
        key, _, value = line.partition("=")
        cur[key.strip()] = value.strip()
    if cur:
        blocks.append(cur)
    return blocks


def selftest(directory):
    keys, total, failed = {}, 0, 0
    for path in sorted(glob.glob(os.path.join(directory, "*.txt"))):
        count = 0
        for v in read_vectors(path):
            keyfile = os.path.join(directory, v["key"])
            if keyfile not in keys:
                keys[keyfile] = load_rsa_private_key(keyfile)
            n, _, d = keys[keyfile]
            ct = bytes.fromhex(v["ct"])
            want = bytes.fromhex(v["msg"])
            if "client_version" in v:
                got, _ = tls_premaster(n, d, ct, int(v["client_version"], 0),
                                       int(v.get("alt_version", "0"), 0))
            else:
                got, _ = decrypt_ir(n, d, ct)
            total += 1
            count += 1
            if got != want:
                failed += 1
                print("FAIL: %s: %s\n  want %s\n  got  %s" % (os.path.basename(path), v.get("title"),
                                                           want.hex(), got.hex()))
        print("%s: %d vectors" % (os.path.basename(path), count))
    print("%d vectors, %d passed, %d failed" % (total, total - failed, failed))
    return 0 if failed == 0 and total > 0 else 1


def _encrypt_block(n, e, em):
    return i2osp(pow(int.from_bytes(em, "big"), e, n), (n.bit_length() + 7) // 8)


def _nonzero(count):
    return bytes(secrets.choice(range(1, 256)) for _ in range(count))


def make_tls_vectors(paths):
    print("# TLS premaster vectors for keystore's ks_rsa_tls_premaster_decrypt, generated")
    print("# by tests/implicit_rejection_ref.py --make-tls-vectors (random padding); the")
    print("# substitutes are keystore's own construction, not from any external source.\n")
    for path in paths:
        n, e, d = load_rsa_private_key(path)
        k = (n.bit_length() + 7) // 8

        def block(msg, btype=2):
            return b"\x00" + bytes([btype]) + _nonzero(k - 3 - len(msg)) + b"\x00" + msg

        pm = b"\x03\x03" + secrets.token_bytes(46)
        old = b"\x03\x01" + secrets.token_bytes(46)
        cases = [
            ("valid premaster, version 0x0303", block(pm), 0x0303, 0),
            ("valid premaster, wrong version 0x0301 (replaced by the client version)",
             block(old), 0x0303, 0),
            ("valid premaster, version 0x0301, alt_version 0x0301 ignored", block(old), 0x0303, 0x0301),
            ("valid premaster, version 0x0303, alt_version 0x0301 set", block(pm), 0x0303, 0x0301),
            ("valid PKCS#1 block with a 47-byte message", block(pm[:47]), 0x0303, 0),
            ("valid PKCS#1 block with a 49-byte message", block(b"\x03" + pm), 0x0303, 0),
            ("block type 1 instead of 2", block(pm, 1), 0x0303, 0),
        ]
        bad = bytearray(block(pm))
        bad[0] = 1
        cases.append(("first byte 0x01 instead of 0x00", bytes(bad), 0x0303, 0))
        for title, em, cv, alt in cases:
            ct = _encrypt_block(n, e, em)
            out, real = tls_premaster(n, d, ct, cv, alt)
            print("title = %s (%s)" % (title, "real" if real else "substitute"))
            print("key = %s" % os.path.basename(path))
            print("ct = %s" % ct.hex())
            print("client_version = 0x%04x" % cv)
            print("alt_version = 0x%04x" % alt)
            print("msg = %s\n" % out.hex())
        ct = secrets.token_bytes(k)
        while int.from_bytes(ct, "big") >= n:
            ct = secrets.token_bytes(k)
        out, real = tls_premaster(n, d, ct, 0x0303, 0)
        print("title = random ciphertext (%s)" % ("real" if real else "substitute"))
        print("key = %s\nct = %s\nclient_version = 0x0303\nalt_version = 0x0000\nmsg = %s\n"
              % (os.path.basename(path), ct.hex(), out.hex()))


def main(argv):
    if len(argv) == 2 and argv[0] == "--selftest":
        return selftest(argv[1])
    if len(argv) >= 2 and argv[0] == "--make-tls-vectors":
        make_tls_vectors(argv[1:])
        return 0
    tls, alt = None, 0
    while argv and argv[0] in ("--tls", "--alt"):
        if len(argv) < 2:
            break
        if argv[0] == "--tls":
            tls = int(argv[1], 0)
        else:
            alt = int(argv[1], 0)
        argv = argv[2:]
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    n, _, d = load_rsa_private_key(argv[0])
    arg = argv[1]
    ct = open(arg[1:], "rb").read() if arg.startswith("@") else bytes.fromhex(arg)
    try:
        if tls is not None:
            out, _ = tls_premaster(n, d, ct, tls, alt)
        else:
            out, _ = decrypt_ir(n, d, ct)
    except ValueError as err:
        sys.stderr.write("error: %s\n" % err)
        return 1
    print(out.hex())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
