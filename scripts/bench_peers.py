#!/usr/bin/env python3
"""kbatch against SuperKMeans and faiss on real embeddings, in one run, 2 threads each.

Called by scripts/bench-peers (which makes the venv and the data); needs numpy, superkmeans,
faiss and scikit-learn. Every tool's labels are scored the same way: the objective is the sum
of squared distances of every item to the mean of its own cluster (float64), printed relative
to kbatch's default run; ARI is against banking77's intent labels. Wall times are whole
commands: kbatch's process (reading the .npy and every SQLite commit included), the peers'
np.load + train + assignment. Medians over the seeds.

    bench_peers.py KBATCH BANKING77.npy LABELS.npy BIG.npy [--seeds 10] [--big-seeds 1]
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn.metrics import adjusted_rand_score

THREADS = 2
ENV = dict(os.environ, RAYON_NUM_THREADS=str(THREADS), OMP_NUM_THREADS=str(THREADS))
# Where set, these slow a current numpy and faiss.
for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    ENV.pop(var, None)


def objective(x, labels):
    """Sum of squared distances to the mean of each item's own cluster, in float64."""
    _, labels = np.unique(labels, return_inverse=True)
    k = labels.max() + 1
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, labels, x.astype(np.float64))
    means = sums / counts[:, None]
    return float(((x - means[labels]) ** 2).sum())


def kbatch(binary, npy, k, seed, extra, workdir):
    """One `kbatch create` (wall of the whole process), its labels and its status JSON."""
    db = os.path.join(workdir, "bench.sqlite")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    cmd = [binary, "--db", db, "create", "--project", "p", "--input", npy,
           "--clusters", str(k), "--seed", str(seed), "--quiet"] + extra
    start = time.monotonic()
    subprocess.run(cmd, check=True, env=ENV)
    wall = time.monotonic() - start
    return (wall,) + kbatch_results(binary, db, npy, workdir)


def kbatch_results(binary, db, npy, workdir):
    """A finished run's labels (from its export) and its status JSON."""
    out = os.path.join(workdir, "export.csv")
    subprocess.run([binary, "--db", db, "export", "--project", "p", "--output", out], check=True)
    n = np.load(npy, mmap_mode="r").shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    with open(out, newline="") as f:
        for r in csv.DictReader(f):
            labels[int(r["item_id"])] = int(r["cluster_id"])
    status = json.loads(subprocess.run(
        [binary, "--db", db, "status", "--project", "p", "--show-batches", "--json"],
        check=True, capture_output=True, text=True).stdout)
    return labels, status


def run_superkmeans(npy, k, seed):
    from superkmeans import SuperKMeans

    start = time.monotonic()
    x = np.load(npy)
    km = SuperKMeans(n_clusters=k, dimensionality=x.shape[1], n_threads=THREADS, seed=seed)
    centroids = km.train(x)
    labels = km.assign(x, centroids)
    return time.monotonic() - start, np.asarray(labels)


def run_faiss(npy, k, seed):
    import faiss

    faiss.omp_set_num_threads(THREADS)
    start = time.monotonic()
    x = np.load(npy)
    n, d = x.shape
    # All rows, as the other tools use (faiss subsamples 256 per centroid by default).
    km = faiss.Kmeans(d, k, niter=20, seed=seed, max_points_per_centroid=-(-n // k),
                      verbose=False)
    km.train(x)
    _, labels = km.index.search(x, 1)
    return time.monotonic() - start, labels[:, 0]


def epochs(status):
    """Per refinement epoch and the final pass: (name, ms, mean share of distances skipped)."""
    rows = {}
    for b in status["batches"]:
        if b["phase"] == "cluster" or b["status"] != "completed":
            continue
        name = "final pass" if b["phase"] == "final" else "epoch %d" % (b["epoch"] + 1)
        ms, skipped, items = rows.get(name, (0, 0.0, 0))
        n = b["items_processed"]
        rows[name] = (ms + b["processing_time_ms"], skipped + (b["distances_skipped"] or 0.0) * n,
                      items + n)
    return [(name, ms, skipped / max(items, 1)) for name, (ms, skipped, items) in rows.items()]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("kbatch")
    parser.add_argument("banking77")
    parser.add_argument("labels")
    parser.add_argument("big")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--big-seeds", type=int, default=1)
    args = parser.parse_args()
    import faiss
    import sklearn
    import superkmeans as skm

    print("numpy %s, superkmeans %s, faiss %s, scikit-learn %s; %d threads; load average %s" % (
        np.__version__, skm.__version__, faiss.__version__, sklearn.__version__,
        THREADS, open("/proc/loadavg").read().split()[0]))
    table = []
    with tempfile.TemporaryDirectory() as workdir:
        # banking77, k = 77: seeds 0..seeds-1 for every tool.
        x = np.load(args.banking77)
        truth = np.load(args.labels)
        runs = {"kbatch": [], "superkmeans": [], "faiss": []}
        for seed in range(args.seeds):
            wall, labels, _ = kbatch(args.kbatch, args.banking77, 77, seed, [], workdir)
            runs["kbatch"].append((wall, labels))
            runs["superkmeans"].append(run_superkmeans(args.banking77, 77, seed))
            runs["faiss"].append(run_faiss(args.banking77, 77, seed))
        scores = {}
        for tool, results in runs.items():
            walls = [w for w, _ in results]
            objs = [objective(x, l) for _, l in results]
            aris = [adjusted_rand_score(truth, l) for _, l in results]
            scores[tool] = (statistics.median(walls), statistics.median(objs),
                            statistics.median(aris), min(aris), max(aris))
            print("banking77 %-12s wall %.3f s, objective %.2f, ARI %.3f [%.3f-%.3f]" % (
                (tool,) + scores[tool]))
        base = scores["kbatch"][1]
        table.append("| banking77 13,083 × 384, k = 77, seeds 0–%d | %s |" % (args.seeds - 1, " | ".join(
            "%.2f s, obj %.3f, ARI %.3f" % (w, o / base, a) for w, o, a, _, _ in
            (scores[t] for t in ("kbatch", "superkmeans", "faiss")))))

        # The 450k set, k = 1,000.
        x = np.load(args.big)
        n = x.shape[0]
        results = {}
        status_default = None
        variants = [("kbatch default", []), ("kbatch --refine-epochs 0", ["--refine-epochs", "0"]),
                    ("kbatch --refine-epochs 1", ["--refine-epochs", "1"]),
                    ("kbatch --refine-epochs 3", ["--refine-epochs", "3"]),
                    # The default batch size before it grew with k·d.
                    ("kbatch --batch-size 500", ["--batch-size", "500"])]
        for seed in range(args.big_seeds):
            for name, extra in variants:
                wall, labels, status = kbatch(args.kbatch, args.big, 1000, seed, extra, workdir)
                results.setdefault(name, []).append((wall, objective(x, labels)))
                if name == "kbatch default" and seed == 0:
                    status_default = status
                print("%s, seed %d: %.2f s" % (name, seed, wall), flush=True)
            for name, run in (("superkmeans", run_superkmeans), ("faiss", run_faiss)):
                wall, labels = run(args.big, 1000, seed)
                results.setdefault(name, []).append((wall, objective(x, labels)))
                print("%s, seed %d: %.2f s" % (name, seed, wall), flush=True)
        med = {name: (statistics.median(w for w, _ in r), statistics.median(o for _, o in r))
               for name, r in results.items()}
        base = med["kbatch default"][1]
        for name, (wall, obj) in med.items():
            print("%d × 384, k = 1000: %-26s wall %.2f s, objective %.1f (%.4f)" % (
                n, name, wall, obj, obj / base))
        cell = lambda name: "%.2f s, obj %.3f" % (med[name][0], med[name][1] / base)
        label = "%s × 384 (banking77 ×35 with noise), k = 1,000" % format(n, ",")
        table.append("| %s | %s | %s | %s |" % (label, cell("kbatch default"), cell("superkmeans"),
                                               cell("faiss")))
        table.append("| same, kbatch `--refine-epochs 0 / 1 / 3` | %s | | |" % " / ".join(
            cell("kbatch --refine-epochs %d" % e) for e in (0, 1, 3)))
        table.append("| same, kbatch `--batch-size 500` | %s | | |" % cell("kbatch --batch-size 500"))
        skm_wall, skm_obj = med["superkmeans"]
        print()
        print("kbatch default / SuperKMeans: wall %.2f× (target ≤ 1.5), objective %.3f× (target ≤ 0.97)"
              % (med["kbatch default"][0] / skm_wall, med["kbatch default"][1] / skm_obj))
        fast = "kbatch --refine-epochs 0"
        print("kbatch --refine-epochs 0 / SuperKMeans: wall %.2f× (target ≤ 1.0), objective %.3f× (target < 1)"
              % (med[fast][0] / skm_wall, med[fast][1] / skm_obj))
        kb = scores["kbatch"]
        print("banking77: kbatch ARI median %.3f (target ≥ 0.485); wall %.3f s vs SuperKMeans %.3f s + 0.1 s"
              % (kb[2], kb[0], scores["superkmeans"][0]))

        units = status_default["batches"]
        print("\nDefault 450k run (seed 0), compute by phase: batch 0 %.2f s, %d mini-batches %.2f s"
              % (units[0]["processing_time_ms"] / 1000,
                 sum(b["phase"] == "cluster" for b in units[1:]),
                 sum(b["processing_time_ms"] for b in units[1:] if b["phase"] == "cluster") / 1000))
        print("\nRefinement epochs of the default 450k run (seed 0): epoch 1 has no bounds yet")
        print("| pass | compute | vs epoch 1 | distances skipped |")
        print("| --- | --- | --- | --- |")
        passes = epochs(status_default)
        first = passes[0][1] if passes else 1
        for name, ms, skipped in passes:
            print("| %s | %.2f s | %.2f× | %.1f%% |" % (name, ms / 1000, ms / max(first, 1),
                                                      100 * skipped))

    print("\n| data | kbatch default | SuperKMeans 0.2.0 default | faiss niter 20 |")
    print("| --- | --- | --- | --- |")
    print("\n".join(table))


if __name__ == "__main__":
    sys.exit(main())
