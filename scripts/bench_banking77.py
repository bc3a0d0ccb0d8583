#!/usr/bin/env python3
"""End-to-end benchmark of `kbatch create` on all of banking77 (13,083 x 384, k = 77).

Prints, per repetition and as medians: total wall time, time to the first committed batch,
the share of wall time spent in commits, peak RSS, and ARI / NMI against the intent labels.
Data: ../shared/data (banking77, Casanueva et al. 2020, CC BY 4.0). Standard library only.

    python3 scripts/bench_banking77.py [--reps 3] [--batch-size 500]
"""

import argparse
import collections
import csv
import math
import os
import re
import statistics
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data")


def read_npy_labels(path):
    with open(path, "rb") as f:
        raw = f.read()
    header_len = struct.unpack("<H", raw[8:10])[0]
    body = raw[10 + header_len:]
    return list(struct.unpack("<%di" % (len(body) // 4), body))


def comb2(n):
    return n * (n - 1) / 2.0


def ari(a, b):
    joint = collections.Counter(zip(a, b))
    rows, cols = collections.Counter(a), collections.Counter(b)
    index = sum(comb2(n) for n in joint.values())
    sr = sum(comb2(n) for n in rows.values())
    sc = sum(comb2(n) for n in cols.values())
    expected = sr * sc / comb2(len(a))
    return (index - expected) / ((sr + sc) / 2.0 - expected)


def nmi(a, b):
    """Normalised mutual information, arithmetic mean normalisation (scikit-learn's default)."""
    n = float(len(a))
    joint = collections.Counter(zip(a, b))
    pa, pb = collections.Counter(a), collections.Counter(b)
    mi = sum(c / n * math.log(c * n / (pa[x] * pb[y])) for (x, y), c in joint.items())
    ha = -sum(c / n * math.log(c / n) for c in pa.values())
    hb = -sum(c / n * math.log(c / n) for c in pb.values())
    return mi / ((ha + hb) / 2.0)


def run_once(binary, workdir, rep, batch_size):
    db = os.path.join(workdir, "bench-%d.sqlite" % rep)
    cmd = ["/usr/bin/time", "-f", "peak_rss_kb=%M", binary, "--db", db, "create", "--project", "b77",
           "--input", os.path.join(DATA, "banking77_minilm.npy"), "--clusters", "77",
           "--batch-size", str(batch_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    summary = [l for l in proc.stderr.splitlines() if l.startswith("project b77:")][-1]
    wall = float(re.search(r"committed in ([0-9.]+) s", summary).group(1))
    first = float(re.search(r"first batch committed after ([0-9.]+) s", summary).group(1))
    commit_share = float(re.search(r"= ([0-9.]+)% of wall", summary).group(1))
    rss_mb = int(re.search(r"peak_rss_kb=(\d+)", proc.stderr).group(1)) / 1024.0
    export = subprocess.run([binary, "--db", db, "export", "--project", "b77"],
                            capture_output=True, text=True, check=True).stdout
    rows = list(csv.DictReader(export.splitlines()))
    labels = read_npy_labels(os.path.join(DATA, "banking77_labels.npy"))
    predicted = [int(r["cluster_id"]) for r in rows]
    truth = [labels[int(r["item_id"])] for r in rows]
    return dict(wall_s=wall, first_commit_s=first, commit_share_pct=commit_share,
                peak_rss_mb=rss_mb, ari=ari(predicted, truth), nmi=nmi(predicted, truth))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "kbatch")
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for rep in range(args.reps):
            r = run_once(binary, workdir, rep, args.batch_size)
            results.append(r)
            print("rep %d: " % rep + ", ".join("%s=%.3f" % kv for kv in r.items()), flush=True)
    print("median of %d (banking77 13,083 x 384, k=77, batch %d, %d threads available):"
          % (args.reps, args.batch_size, os.cpu_count()))
    for key in results[0]:
        values = [r[key] for r in results]
        print("  %-17s %.3f (min %.3f, max %.3f)" % (key, statistics.median(values), min(values), max(values)))


if __name__ == "__main__":
    sys.exit(main())
