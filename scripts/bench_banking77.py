#!/usr/bin/env python3
"""End-to-end benchmark of `kbatch create` on all of banking77 (13,083 x 384, k = 77).

Prints, per repetition and as medians: total wall time, time to the first committed batch,
the share of wall time spent in commits, peak RSS, and ARI / NMI against the intent labels.
When the interpreter has numpy and scikit-learn, the same run also measures the references
(KMeans n_init=1 and MiniBatchKMeans with the same batch size, fit time, 2 threads) and prints
kbatch's figures as ratios to them. Data: ../shared/data (banking77, Casanueva et al. 2020,
CC BY 4.0). kbatch's own figures need the standard library only.

    python3 scripts/bench_banking77.py [--reps 3] [--batch-size 500] [-- KBATCH_CREATE_FLAGS...]
    python3 scripts/bench_banking77.py --texts -- --embedder minilm   # texts in, model in process
    /path/to/venv-with-sklearn/bin/python scripts/bench_banking77.py   # with references
"""

import argparse
import collections
import csv
import io
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


def write_texts(workdir):
    """banking77's texts as a keyword list (newlines inside texts become spaces), and the label
    of each text by its lowercased form, as kbatch merges duplicates case-insensitively."""
    path = os.path.join(workdir, "banking77_texts.txt")
    labels = read_npy_labels(os.path.join(DATA, "banking77_labels.npy"))
    label_of = {}
    with open(os.path.join(DATA, "banking77.csv"), newline="", encoding="utf-8") as f, \
            open(path, "w", encoding="utf-8") as out:
        for i, row in enumerate(csv.DictReader(f)):
            text = " ".join(row["text"].split())
            out.write(text + "\n")
            label_of.setdefault(text.lower(), labels[i])
    return path, label_of


def run_once(binary, workdir, rep, batch_size, extra, texts):
    db = os.path.join(workdir, "bench-%d.sqlite" % rep)
    source = texts[0] if texts else os.path.join(DATA, "banking77_minilm.npy")
    cmd = ["/usr/bin/time", "-f", "peak_rss_kb=%M", binary, "--db", db, "create", "--project", "b77",
           "--input", source, "--clusters", "77",
           "--batch-size", str(batch_size), "--seed", str(rep)] + extra
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    summary = [l for l in proc.stderr.splitlines() if l.startswith("project b77:")][-1]
    wall = float(re.search(r"committed in ([0-9.]+) s", summary).group(1))
    first = float(re.search(r"first batch committed after ([0-9.]+) s", summary).group(1))
    commit_share = float(re.search(r"= ([0-9.]+)% of wall", summary).group(1))
    rss_mb = int(re.search(r"peak_rss_kb=(\d+)", proc.stderr).group(1)) / 1024.0
    export = subprocess.run([binary, "--db", db, "export", "--project", "b77"],
                            capture_output=True, text=True, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(export)))
    predicted = [int(r["cluster_id"]) for r in rows]
    if texts:
        truth = [texts[1][r["keyword"].lower()] for r in rows]
    else:
        labels = read_npy_labels(os.path.join(DATA, "banking77_labels.npy"))
        truth = [labels[int(r["item_id"])] for r in rows]
    return dict(wall_s=wall, first_commit_s=first, commit_share_pct=commit_share,
                peak_rss_mb=rss_mb, ari=ari(predicted, truth), nmi=nmi(predicted, truth))


def reference_runs(reps, batch_size):
    """scikit-learn on the same vectors, or None when it is not installed."""
    try:
        import time
        import numpy as np
        from sklearn.cluster import KMeans, MiniBatchKMeans
    except ImportError:
        return None
    x = np.load(os.path.join(DATA, "banking77_minilm.npy"))
    labels = read_npy_labels(os.path.join(DATA, "banking77_labels.npy"))
    models = {
        "sklearn KMeans": lambda seed: KMeans(77, n_init=1, random_state=seed),
        "sklearn MiniBatchKMeans": lambda seed: MiniBatchKMeans(77, batch_size=batch_size, random_state=seed),
    }
    results = {}
    for name, make in models.items():
        runs = []
        for seed in range(reps):
            start = time.perf_counter()
            predicted = make(seed).fit(x).labels_.tolist()
            wall = time.perf_counter() - start
            runs.append(dict(wall_s=wall, ari=ari(predicted, labels), nmi=nmi(predicted, labels)))
        results[name] = runs
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--no-references", action="store_true", help="kbatch's figures only")
    parser.add_argument("--texts", action="store_true",
                        help="cluster the texts as keywords (pass --embedder after --) instead of "
                             "the precomputed vectors; implies --no-references")
    parser.add_argument("kbatch_args", nargs="*", help="more `kbatch create` flags, after --")
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "kbatch")
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        texts = write_texts(workdir) if args.texts else None
        for rep in range(args.reps):
            r = run_once(binary, workdir, rep, args.batch_size, args.kbatch_args, texts)
            results.append(r)
            print("rep %d: " % rep + ", ".join("%s=%.3f" % kv for kv in r.items()), flush=True)
    print("median of %d, seeds 0..%d (banking77 13,083 x 384, k=77, batch %d, %d threads available):"
          % (args.reps, args.reps - 1, args.batch_size, os.cpu_count()))
    for key in results[0]:
        values = [r[key] for r in results]
        print("  %-17s %.3f (min %.3f, max %.3f)" % (key, statistics.median(values), min(values), max(values)))
    if args.no_references or args.texts:
        return
    references = reference_runs(args.reps, args.batch_size)
    if references is None:
        print("references: numpy/scikit-learn not importable here; run with a Python that has them")
        return
    ours = {key: statistics.median(r[key] for r in results) for key in ("wall_s", "ari", "nmi")}
    for name, runs in references.items():
        ref = {key: statistics.median(r[key] for r in runs) for key in ("wall_s", "ari", "nmi")}
        print("%s (seeds 0..%d, fit only): wall %.3f s, ARI %.3f, NMI %.3f; kbatch/ref: wall %.2fx, ARI %.2fx, NMI %.2fx"
              % (name, args.reps - 1, ref["wall_s"], ref["ari"], ref["nmi"],
                 ours["wall_s"] / ref["wall_s"], ours["ari"] / ref["ari"], ours["nmi"] / ref["nmi"]))


if __name__ == "__main__":
    sys.exit(main())
