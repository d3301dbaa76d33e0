#!/usr/bin/env python3
"""Strict checker for the Prometheus text exposition format (version 0.0.4).

usage: prom_check.py FILE   (exit 0 and print "ok: N samples" if valid)

Checks what a scraper or node_exporter's textfile collector relies on:
metric and label names, quoted label values with only \\\\, \\" and \\n
escapes, numeric values, one TYPE (and at most one HELP) per family before
its samples, families not interleaved, no duplicate series, counters named
*_total, and histograms: _bucket series with le ascending, cumulative
counts, a +Inf bucket equal to _count, and a _sum.
"""
import math
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def die(lineno, msg):
    sys.exit(f"line {lineno}: {msg}")


def parse_labels(s, lineno):
    labels, i = [], 0
    while i < len(s):
        m = re.match(LABEL, s[i:])
        if not m:
            die(lineno, f"bad label name at {s[i:]!r}")
        name = m.group(0)
        i += len(name)
        if s[i:i + 2] != '="':
            die(lineno, f"label {name} has no =\"value\"")
        i += 2
        val = []
        while True:
            if i >= len(s):
                die(lineno, "unterminated label value")
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    die(lineno, f"bad escape \\{nxt} in a label value")
                val.append({"n": "\n"}.get(nxt, nxt))
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                die(lineno, "raw newline in a label value")
            else:
                val.append(c)
                i += 1
        if name in (n for n, _ in labels):
            die(lineno, f"label {name} given twice")
        labels.append((name, "".join(val)))
        if i < len(s):
            if s[i] != ",":
                die(lineno, f"expected ',' between labels at {s[i:]!r}")
            i += 1
    return labels


def value(s, lineno):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s):
        die(lineno, f"bad value {s!r}")
    return float(s)


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) in ("histogram", "summary"):
            return name[: -len(suffix)]
    return name


def main(path):
    text = open(path, encoding="utf-8").read()
    if text and not text.endswith("\n"):
        sys.exit("the text does not end with a newline")
    types, helps, done, series = {}, set(), set(), set()
    current = None
    hist = {}   # (family, labels without le) -> list of (le, count); plus sums/counts
    sums, counts = {}, {}
    nsamples = 0
    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("#"):
            m = re.fullmatch(r"# (HELP|TYPE) (" + NAME + r") (.*)", line)
            if not m:
                if line.startswith("# HELP") or line.startswith("# TYPE"):
                    die(lineno, f"malformed {line!r}")
                continue   # a comment
            kind, name, rest = m.groups()
            if name in done:
                die(lineno, f"{kind} for family {name} after its samples ended")
            if kind == "TYPE":
                if name in types:
                    die(lineno, f"second TYPE for {name}")
                if rest not in TYPES:
                    die(lineno, f"unknown type {rest!r}")
                if rest == "counter" and not name.endswith("_total"):
                    die(lineno, f"counter {name} is not named *_total")
                types[name] = rest
            else:
                if name in helps:
                    die(lineno, f"second HELP for {name}")
                helps.add(name)
            if current is not None and current != name:
                done.add(current)
            current = name
            continue
        if line.strip() == "":
            die(lineno, "blank line")
        m = re.fullmatch(r"(" + NAME + r")(\{(.*)\})? (\S+)( -?\d+)?", line)
        if not m:
            die(lineno, f"malformed sample {line!r}")
        name, _, lab, val, _ts = m.groups()
        labels = parse_labels(lab, lineno) if lab else []
        v = value(val, lineno)
        fam = family_of(name, types)
        if fam not in types:
            die(lineno, f"sample of {name} before any TYPE line for its family")
        if fam in done:
            die(lineno, f"family {fam} is interleaved with another")
        if current != fam:
            if current is not None:
                done.add(current)
            current = fam
        key = (name, tuple(sorted(labels)))
        if key in series:
            die(lineno, f"duplicate series {line!r}")
        series.add(key)
        nsamples += 1
        t = types[fam]
        if t == "counter" and (v < 0 or math.isnan(v)):
            die(lineno, "a counter is negative")
        if t == "histogram":
            rest = tuple(sorted((k, x) for k, x in labels if k != "le"))
            if name == fam + "_bucket":
                le = dict(labels).get("le")
                if le is None:
                    die(lineno, "a _bucket sample has no le label")
                hist.setdefault((fam, rest), []).append((value(le, lineno), v, lineno))
            elif name == fam + "_sum":
                sums[(fam, rest)] = v
            elif name == fam + "_count":
                counts[(fam, rest)] = v
            else:
                die(lineno, f"{name} is not a histogram series of {fam}")
    for k, buckets in hist.items():
        les = [le for le, _, _ in buckets]
        if les != sorted(les) or len(set(les)) != len(les):
            die(buckets[0][2], f"{k}: le values are not strictly ascending")
        if les[-1] != math.inf:
            die(buckets[-1][2], f"{k}: no +Inf bucket")
        cs = [c for _, c, _ in buckets]
        if any(b < a for a, b in zip(cs, cs[1:])):
            die(buckets[0][2], f"{k}: bucket counts are not cumulative")
        if k not in counts or counts[k] != cs[-1]:
            die(buckets[-1][2], f"{k}: _count missing or not equal to the +Inf bucket")
        if k not in sums:
            die(buckets[-1][2], f"{k}: _sum missing")
    print(f"ok: {nsamples} samples")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
