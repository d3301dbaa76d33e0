#!/usr/bin/python3
"""Wycheproof RSAES-PKCS1-v1_5 decryption vectors against a real keystored,
with implicit rejection (tests/implicit_rejection_ref.py is the model).

  wycheproof_pkcs1.py keys DIR     write each group's key to DIR/pkN.pem and
                                   print "pkN DIR/pkN.pem"
  wycheproof_pkcs1.py run DIR      decrypt every case with openssl pkeyutl

Expected, because keystore never answers "bad padding":
  valid                     -> the case's message;
  invalid, bad padding      -> success, and exactly the synthetic message the
                               model derives from the key and ciphertext (an
                               error here would be Bleichenbacher's oracle);
  invalid, ciphertext format (c >= n, not the modulus' length, empty)
                            -> an error (public facts) or the model's answer.
Python 3 stdlib only.
"""
import json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import implicit_rejection_ref as ref  # noqa: E402
import wycheproof_common as wp  # noqa: E402

DATA = os.path.join(HERE, "data", "wycheproof", "rsa_pkcs1_2048_test.json")


def groups():
    j = json.load(open(DATA))
    assert j["algorithm"] == "RSAES-PKCS1-v1_5"
    for i, g in enumerate(j["testGroups"]):
        yield "pk%d" % i, g


def one(d, name, t):
    tag = "tcId %d (%s)" % (t["tcId"], t["comment"] or ",".join(t["flags"]))
    ct = bytes.fromhex(t["ct"])
    base = os.path.join(d, "%s-%d" % (name, t["tcId"]))
    with open(base + ".ct", "wb") as fh:
        fh.write(ct)
    if os.path.exists(base + ".pt"):
        os.unlink(base + ".pt")
    r = subprocess.run(["openssl", "pkeyutl", "-provider", "default", "-provider", "keystore",
                        "-decrypt", "-inkey", "keystore:" + name,
                        "-pkeyopt", "rsa_padding_mode:pkcs1",
                        "-in", base + ".ct", "-out", base + ".pt"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    got = None
    if r.returncode == 0:
        got = open(base + ".pt", "rb").read() if os.path.exists(base + ".pt") else b""
    n, _, dd = ref.load_rsa_private_key(os.path.join(d, name + ".pem"))
    try:
        want, _ = ref.decrypt_ir(n, dd, ct)
    except ValueError:
        want = None            # a public fact: the model refuses it too
    flags = t["flags"]
    if t["result"] == "valid":
        ok, expect = got == bytes.fromhex(t["msg"]), "the message"
    elif "InvalidPkcs1Padding" in flags:
        ok, expect = got is not None and got == want, "the model's synthetic message"
    else:   # malformed ciphertext: its length or c >= n are public, an error is fine
        ok, expect = got is None or got == want, "an error or the model's answer"
    why = "" if ok else "expected %s, got %s; openssl: %s" % (
        expect, "an error" if got is None else got.hex()[:64],
        r.stdout.decode(errors="replace").strip()[-300:])
    return ok, tag, why, t["result"] == "invalid" and "InvalidPkcs1Padding" in flags and ok


def main():
    mode, d = sys.argv[1], sys.argv[2]
    if mode == "keys":
        wp.write_pem_keys(d, groups())
        return 0
    jobs = [(d, name, t) for name, g in groups() for t in g["tests"]]
    passed, failed, synthetic = wp.check_all(jobs, one)
    print("-- %d vectors: %d passed (%d bad-padding cases answered with the model's synthetic "
          "message, none with an error), %d failed" % (len(jobs), passed, sum(synthetic), failed))
    return 1 if failed or not jobs else 0


if __name__ == "__main__":
    sys.exit(main())
