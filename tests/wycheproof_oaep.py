#!/usr/bin/python3
"""Wycheproof RSA-OAEP decryption vectors against a real keystored.

  wycheproof_oaep.py keys DIR     write each test group's private key to
                                  DIR/wpN.pem and print "wpN DIR/wpN.pem"
  wycheproof_oaep.py run DIR      decrypt every test case with
                                  openssl pkeyutl -inkey keystore:wpN

wpN numbers the groups of all files in tests/data/wycheproof in name order.
Expected: "valid" -> exit 0 and the plaintext equals msg; "invalid" -> the
command fails; "acceptable" -> either.  Every case flagged
InvalidOaepPadding must also fail with one and the same error text: a message
that differed by the check that failed would be Manger's oracle.  Python 3
stdlib only.
"""
import glob, json, os, re, subprocess, sys

import wycheproof_common as wp

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "wycheproof")
FILES = sorted(glob.glob(os.path.join(DATA, "rsa_oaep_*_test.json")))
MD = {"SHA-1": "SHA1", "SHA-224": "SHA224", "SHA-256": "SHA256",
      "SHA-384": "SHA384", "SHA-512": "SHA512"}


def groups():
    n = 0
    for f in FILES:
        j = json.load(open(f))
        assert j["algorithm"] == "RSAES-OAEP", f
        for g in j["testGroups"]:
            assert g["type"] == "RsaesOaepDecrypt" and g["mgf"] == "MGF1", f
            yield "wp%d" % n, os.path.basename(f), g
            n += 1


def one(d, name, fname, g, t):
    tag = "%s tcId %d (%s)" % (fname, t["tcId"], t["comment"] or ",".join(t["flags"]))
    base = os.path.join(d, "%s-%d" % (name, t["tcId"]))
    with open(base + ".ct", "wb") as fh:
        fh.write(bytes.fromhex(t["ct"]))
    if os.path.exists(base + ".pt"):
        os.unlink(base + ".pt")
    cmd = ["openssl", "pkeyutl", "-provider", "default", "-provider", "keystore",
           "-decrypt", "-inkey", "keystore:" + name,
           "-pkeyopt", "rsa_padding_mode:oaep",
           "-pkeyopt", "rsa_oaep_md:" + MD[g["sha"]],
           "-pkeyopt", "rsa_mgf1_md:" + MD[g["mgfSha"]]]
    if t["label"]:
        cmd += ["-pkeyopt", "rsa_oaep_label:" + t["label"]]
    cmd += ["-in", base + ".ct", "-out", base + ".pt"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    got = None
    if r.returncode == 0:
        got = open(base + ".pt", "rb").read() if os.path.exists(base + ".pt") else b""
    res = t["result"]
    if res == "valid":
        ok = got == bytes.fromhex(t["msg"])
    elif res == "invalid":
        ok = got is None
    else:
        ok = got is None or got == bytes.fromhex(t["msg"])
    why = ""
    if not ok:
        why = "expected %s, got %s; openssl: %s" % (
            res, "failure" if got is None else "plaintext " + got.hex()[:80],
            r.stdout.decode(errors="replace").strip()[-300:])
    return ok, tag, why, (res, t["flags"], server_error(r.stdout) if got is None else None)


def server_error(out):
    """The provider's error reason from openssl's output, without the parts
    that differ between processes (pids, addresses, file names)."""
    lines = [l for l in out.decode(errors="replace").splitlines() if ":error:" in l]
    if not lines:
        return "(no error line)"
    # OpenSSL 3 error line: PID:error:CODE:library:function:reason:file:line:data
    f = lines[0].split(":", 8)
    reason = f[5] if len(f) > 5 else lines[0]
    data = f[8] if len(f) > 8 else ""
    return re.sub(r"\d+", "N", reason + " | " + data)


def main():
    mode, d = sys.argv[1], sys.argv[2]
    if mode == "keys":
        wp.write_pem_keys(d, ((name, g) for name, _, g in groups()))
        return 0
    jobs = [(d, name, fname, g, t) for name, fname, g in groups() for t in g["tests"]]
    passed, failed, extras = wp.check_all(jobs, one)
    counts = {}
    padding_errors = {}
    for (res, flags, err), (_, _, fname, _, t) in zip(extras, jobs):
        counts[res] = counts.get(res, 0) + 1
        if "InvalidOaepPadding" in flags and err is not None:
            padding_errors.setdefault(err, []).append("%s tcId %d" % (fname, t["tcId"]))
    if len(padding_errors) != 1:
        failed += 1
        print("FAIL: bad OAEP padding gave %d different errors (an oracle):" % len(padding_errors))
        for err, tags in padding_errors.items():
            print("   %r: %d cases, e.g. %s" % (err, len(tags), tags[0]))
    else:
        (err, tags), = padding_errors.items()
        print("-- all %d bad-padding cases failed alike: %r" % (len(tags), err))
    print("-- %d files, %d vectors (%s): %d passed, %d failed" % (
        len(FILES), len(jobs), ", ".join("%d %s" % (v, k) for k, v in sorted(counts.items())),
        passed, failed))
    return 1 if failed or not jobs else 0


if __name__ == "__main__":
    sys.exit(main())
