"""Shared by the tests/wycheproof_*.py runners (Python 3 stdlib only)."""
import concurrent.futures
import os


def write_pem_keys(d, named_groups):
    """Writes each (name, group)'s privateKeyPem to D/NAME.pem and prints
    "NAME PATH" for tests/wycheproof_lib.sh, which imports them."""
    for name, g in named_groups:
        p = os.path.join(d, name + ".pem")
        with open(p, "w") as fh:
            fh.write(g["privateKeyPem"])
        print(name, p)


def check_all(jobs, one):
    """Runs one(*job) for every job on 4 threads (each starts an openssl or
    derive_raw process).  one returns (ok, tag, why, extra).  Prints every
    failure; returns (passed, failed, [extra of every job, in order])."""
    passed = failed = 0
    extras = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
        for ok, tag, why, extra in ex.map(lambda a: one(*a), jobs):
            extras.append(extra)
            if ok:
                passed += 1
            else:
                failed += 1
                print("FAIL: %s: %s" % (tag, why))
    return passed, failed, extras
