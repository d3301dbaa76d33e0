#!/usr/bin/python3
"""Wycheproof key-agreement vectors (ECDH P-256, X25519, X448) against a real
keystored, sent by tests/derive_raw (which skips OpenSSL's decoding of the
peer key, as a hostile client could), so the server's own peer-key checks
are what is tested.

  wycheproof_ecdh.py keys DIR          write each distinct private key to
                                       DIR/NAME.der (PKCS#8) and print
                                       "NAME DIR/NAME.der"
  wycheproof_ecdh.py run DIR DERIVE_RAW ADDR
                                       run every case

Expected: "valid" -> the server's secret equals "shared"; "invalid" -> an
error and no secret; "acceptable" -> either, but a secret must be the right
one.  Needs Debian's python3-cryptography (run with /usr/bin/python3).
"""
import json, os, subprocess, sys

import wycheproof_common as wp

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "wycheproof")
# file, key name prefix, kind of private key, how its public becomes SPKI DER
X25519_SPKI = bytes.fromhex("302a300506032b656e032100")
X448_SPKI = bytes.fromhex("3042300506032b656f033900")
FILES = [
    ("ecdh_secp256r1_test.json", "p256", "ec", bytes.fromhex),
    ("x25519_test.json", "x25519", "x25519", lambda h: X25519_SPKI + bytes.fromhex(h)),
    ("x448_test.json", "x448", "x448", lambda h: X448_SPKI + bytes.fromhex(h)),
]


# X25519/X448 cases with a different private key each: every case about the
# peer's key is kept; of the arithmetic ones (EdgeCaseMultiplication, Twist:
# OpenSSL's field arithmetic more than our checks) every tenth, so the test
# imports about 290 keys instead of 1,016.  Every P-256 case is kept.
PEER_FLAGS = {"LowOrderPublic", "SmallPublicKey", "ZeroSharedSecret", "NonCanonicalPublic",
              "PublicKeyTooLong", "SpecialPublicKey", "Ktv", "Normal", "EdgeCaseShared",
              "EdgeCasePrivateKey"}


def selected(fname, i, t):
    return fname.startswith("ecdh_") or PEER_FLAGS & set(t["flags"]) or i % 10 == 0


def cases():
    """(file, key name, private hex, peer SPKI or None, test) per test case."""
    for fname, tag, _, spki in FILES:
        j = json.load(open(os.path.join(DATA, fname)))
        names = {}
        for g in j["testGroups"]:
            for i, t in enumerate(g["tests"]):
                if not selected(fname, i, t):
                    continue
                name = names.setdefault(t["private"], "%s-%d" % (tag, len(names)))
                try:
                    peer = spki(t["public"])
                except ValueError:
                    peer = None
                yield fname, name, t["private"], peer, t


def private_key(kind, h):
    # imported here: "run" needs no python3-cryptography
    from cryptography.hazmat.primitives.asymmetric import ec, x25519, x448
    if kind == "ec":
        return ec.derive_private_key(int(h, 16), ec.SECP256R1())
    cls = x25519.X25519PrivateKey if kind == "x25519" else x448.X448PrivateKey
    return cls.from_private_bytes(bytes.fromhex(h))


def keys(d):
    from cryptography.hazmat.primitives import serialization
    seen = set()
    for fname, name, priv, _, _ in cases():
        if name in seen:
            continue
        seen.add(name)
        kind = next(f[2] for f in FILES if f[0] == fname)
        der = private_key(kind, priv).private_bytes(serialization.Encoding.DER,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
        p = os.path.join(d, name + ".der")
        with open(p, "wb") as fh:
            fh.write(der)
        print(name, p)


def one(d, derive_raw, addr, fname, name, peer, t):
    tag = "%s tcId %d (%s)" % (fname, t["tcId"], t["comment"] or ",".join(t["flags"]))
    if peer is None:   # not even hex of the right form: nothing to send
        return t["result"] != "valid", tag, "peer key not encodable", t["result"]
    p = os.path.join(d, "peer-%s-%d.der" % (name, t["tcId"]))
    with open(p, "wb") as fh:
        fh.write(peer)
    r = subprocess.run([derive_raw, addr, name, p], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode(errors="replace").strip()
    got = out[len("secret "):] if r.returncode == 0 and out.startswith("secret ") else None
    refused = r.returncode == 3 and out.startswith("error ")
    res = t["result"]
    if got is None and not refused:
        return False, tag, "derive_raw failed (exit %d): %s" % (r.returncode, out[-300:]), res
    if res == "valid":
        ok = got == t["shared"]
    elif res == "invalid":
        ok = got is None
    else:
        ok = got is None or got == t["shared"]
    why = "" if ok else "expected %s (%s), got %s" % (
        res, t["shared"][:32], out[:200])
    return ok, tag, why, res


def run(d, derive_raw, addr):
    jobs = [(d, derive_raw, addr, fname, name, peer, t) for fname, name, _, peer, t in cases()]
    passed, failed, results = wp.check_all(jobs, one)
    counts = {}
    for res in results:
        counts[res] = counts.get(res, 0) + 1
    print("-- %d files, %d vectors (%s): %d passed, %d failed" % (
        len(FILES), len(jobs), ", ".join("%d %s" % (v, k) for k, v in sorted(counts.items())),
        passed, failed))
    return 1 if failed or not jobs else 0


if __name__ == "__main__":
    if sys.argv[1] == "keys":
        keys(sys.argv[2])
        sys.exit(0)
    sys.exit(run(*sys.argv[2:5]))
