#!/usr/bin/env python3
"""prom_check.py: a strict checker of the Prometheus text exposition format 0.0.4.

Reads an exposition on stdin (or from the file named as the one argument) and
exits 0 when it holds, else prints each problem and exits 1. Checked: every
line is a HELP, a TYPE or a sample; names and label names have the allowed
characters; label values are quoted with only \\\\, \\" and \\n escaped; every
sample belongs to a family whose TYPE came first (one TYPE and at most one
HELP per family, a family's lines together); counters are named *_total and
never negative; no series twice; a histogram's series have _bucket lines with
an le label, le bounds increasing and ending at +Inf, cumulative counts
non-decreasing, and _count equal to the +Inf bucket; values are floats. With
--json it prints the samples as JSON lines ({"name", "labels", "value"}) on
stdout, for the test to compute deltas from.
"""
import json
import math
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(
    r"^(" + NAME + r")(?:\{((?:" + LABEL + r"=" + VALUE + r")(?:," + LABEL + r"=" + VALUE
    + r")*,?)?\})? (\S+)(?: (-?\d+))?$")
PAIR = re.compile(r"(" + LABEL + r")=(" + VALUE + r")")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_value(s):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s):
        raise ValueError(s)
    return float(s)


def family_of(name, types):
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) in ("histogram", "summary"):
            return name[: -len(suffix)]
    return None


def check(lines):
    errs = []
    types, helps, seen, order = {}, set(), set(), []
    samples = []
    for n, line in enumerate(lines, 1):
        if line == "":
            errs.append(f"line {n}: empty line")
            continue
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) (" + NAME + r") (.*)$", line)
            if m is None:
                if re.match(r"^# (HELP|TYPE)", line):
                    errs.append(f"line {n}: malformed {line!r}")
                continue
            kind, name, rest = m.groups()
            if kind == "TYPE":
                if name in types:
                    errs.append(f"line {n}: second TYPE for {name}")
                if rest not in TYPES:
                    errs.append(f"line {n}: unknown type {rest!r}")
                if rest == "counter" and not name.endswith("_total"):
                    errs.append(f"line {n}: counter {name} not named *_total")
                types[name] = rest
            else:
                if name in helps:
                    errs.append(f"line {n}: second HELP for {name}")
                helps.add(name)
            if not order or order[-1] != name:
                if name in order:
                    errs.append(f"line {n}: {name}'s lines are not together")
                order.append(name)
            continue
        m = SAMPLE.match(line)
        if m is None:
            errs.append(f"line {n}: not a sample: {line!r}")
            continue
        name, labels_text, value_text, _ts = m.groups()
        fam = family_of(name, types)
        if fam is None:
            errs.append(f"line {n}: {name} has no TYPE before it")
            continue
        if order and order[-1] != fam:
            errs.append(f"line {n}: {name} is not with its family {fam}")
        labels = {}
        for k, v in PAIR.findall(labels_text or ""):
            if k in labels:
                errs.append(f"line {n}: label {k} twice")
            labels[k] = v[1:-1].replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        try:
            value = parse_value(value_text)
        except ValueError:
            errs.append(f"line {n}: bad value {value_text!r}")
            continue
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            errs.append(f"line {n}: series {name}{labels} twice")
        seen.add(key)
        if types[fam] == "counter" and (value < 0 or math.isnan(value)):
            errs.append(f"line {n}: counter {name} is {value}")
        samples.append((fam, name, labels, value, n))
    errs += check_histograms(types, samples)
    return errs, samples


def check_histograms(types, samples):
    errs = []
    series = {}
    for fam, name, labels, value, n in samples:
        if types[fam] != "histogram":
            continue
        base = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault((fam, base), {"buckets": [], "count": None, "sum": None})
        if name == fam + "_bucket":
            if "le" not in labels:
                errs.append(f"line {n}: bucket without le")
                continue
            try:
                le = parse_value(labels["le"])
            except ValueError:
                errs.append(f"line {n}: bad le {labels['le']!r}")
                continue
            s["buckets"].append((le, value, n))
        elif name == fam + "_count":
            s["count"] = value
        elif name == fam + "_sum":
            s["sum"] = value
        else:
            errs.append(f"line {n}: {name} in histogram {fam}")
    for (fam, base), s in series.items():
        b = s["buckets"]
        where = f"{fam}{dict(base)}"
        if not b or b[-1][0] != math.inf:
            errs.append(f"{where}: no +Inf bucket last")
            continue
        for (le0, v0, _), (le1, v1, n1) in zip(b, b[1:]):
            if not le1 > le0:
                errs.append(f"line {n1}: {where}: le not increasing")
            if v1 < v0:
                errs.append(f"line {n1}: {where}: buckets not cumulative")
        if s["count"] is None or s["sum"] is None:
            errs.append(f"{where}: _count or _sum missing")
        elif s["count"] != b[-1][1]:
            errs.append(f"{where}: _count {s['count']} != +Inf bucket {b[-1][1]}")
    return errs


def main():
    args = [a for a in sys.argv[1:] if a != "--json"]
    text = open(args[0]).read() if args else sys.stdin.read()
    if not text.endswith("\n"):
        print("exposition does not end with a newline")
        return 1
    errs, samples = check(text[:-1].split("\n"))
    for e in errs:
        print(e, file=sys.stderr)
    if "--json" in sys.argv:
        for _fam, name, labels, value, _n in samples:
            print(json.dumps({"name": name, "labels": labels, "value": value}))
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
