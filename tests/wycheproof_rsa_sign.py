#!/usr/bin/python3
"""Wycheproof RSASSA-PKCS1-v1_5 signature-generation vectors against a real
keystored.  PKCS#1 v1.5 signatures are deterministic, so each signature made
in the server must equal the file's byte for byte.

  wycheproof_rsa_sign.py keys DIR   write each group's key to DIR/rsN.pem,
                                    print "rsN DIR/rsN.pem"
  wycheproof_rsa_sign.py run DIR    sign every case with openssl dgst -sign

"valid": the same signature; "acceptable" (SHA-1, which the server refuses
by default as a weak digest; small public exponents): the same signature or
a refusal.  Python 3 stdlib only.
"""
import json, os, subprocess, sys

import wycheproof_common as wp

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "wycheproof",
                    "rsa_pkcs1_2048_sig_gen_test.json")
MD = {"SHA-1": "sha1", "SHA-224": "sha224", "SHA-256": "sha256", "SHA-384": "sha384",
      "SHA-512": "sha512"}


def groups():
    j = json.load(open(DATA))
    assert j["algorithm"] == "RSASSA-PKCS1-v1_5"
    for i, g in enumerate(j["testGroups"]):
        yield "rs%d" % i, g


def one(d, name, g, t):
    tag = "%s tcId %d (%s)" % (g["sha"], t["tcId"], t["comment"] or ",".join(t["flags"]))
    base = os.path.join(d, "%s-%d" % (name, t["tcId"]))
    with open(base + ".msg", "wb") as fh:
        fh.write(bytes.fromhex(t["msg"]))
    r = subprocess.run(["openssl", "dgst", "-provider", "default", "-provider", "keystore",
                        "-" + MD[g["sha"]], "-sign", "keystore:" + name,
                        "-out", base + ".sig", base + ".msg"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    got = open(base + ".sig", "rb").read() if r.returncode == 0 else None
    want = bytes.fromhex(t["sig"])
    ok = got == want or (t["result"] == "acceptable" and got is None)
    why = "" if ok else "expected %s, got %s; openssl: %s" % (
        t["sig"][:32], "an error" if got is None else got.hex()[:32],
        r.stdout.decode(errors="replace").strip()[-300:])
    return ok, tag, why, got == want


def main():
    mode, d = sys.argv[1], sys.argv[2]
    if mode == "keys":
        wp.write_pem_keys(d, groups())
        return 0
    jobs = [(d, name, g, t) for name, g in groups() for t in g["tests"]]
    passed, failed, equal = wp.check_all(jobs, one)
    print("-- %d vectors: %d passed (%d signatures byte-identical), %d failed"
          % (len(jobs), passed, sum(equal), failed))
    return 1 if failed or not jobs or sum(equal) < 32 else 0


if __name__ == "__main__":
    sys.exit(main())
