#!/usr/bin/env python3
"""Living projects on banking77 (13,083 MiniLM vectors, 77 intents): `kbatch add` and `refit`.

Protocol: 15 of the 77 intents, picked at random (seed 0), are unseen. `create` clusters 90% of
the items of the other 62 intents (k = 62); `add` then brings the held-out 10% of the seen
intents and every item of the unseen intents; the same file is added again; then `refit` runs
10 epochs over everything. Inputs are JSONL with ids (the row of banking77), so the second add
can recognise its items. Per repetition (create seed 0, 1, ...) it prints:

- assigned: share of the held-out seen items that joined an existing cluster;
- pooled: share of the unseen items that went to new clusters;
- ARI after add and after refit, over all items, against the intents;
- second add: items it added (0 expected), and the share of the create's items whose cluster
  the add left unchanged (1.0 expected);
- add/create: `add`'s wall time per new item over `create`'s per item (whole processes).

With a Python that has numpy and scikit-learn, the same run also measures the stand-in the
issue describes (KMeans with k-means++, n_init=1, same seeds; thresholds at the 5% quantile of
the members' similarity, one global or one per cluster; the pool clustered with k by sqrt(n/2);
then 10 Lloyd epochs from the centroids) and, as the ceiling, one KMeans on all items.

    python3 scripts/bench_living.py [--reps 5] [-- MORE_ADD_FLAGS...]
    /path/to/venv-with-sklearn/bin/python scripts/bench_living.py --reps 5
"""

import argparse
import collections
import csv
import io
import json
import math
import os
import random
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data")
N_UNSEEN = 15
HELD_OUT = 0.10


def read_npy(path):
    """(shape, raw little-endian body) of a C-order .npy."""
    with open(path, "rb") as f:
        raw = f.read()
    header_len = struct.unpack("<H", raw[8:10])[0]
    header = raw[10:10 + header_len].decode("latin1")
    shape = tuple(int(x) for x in re.search(r"'shape': \(([^)]*)\)", header).group(1).split(",") if x.strip())
    return shape, raw[10 + header_len:]


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


def split():
    """(create rows, added rows, held-out seen rows, unseen rows, labels) of the protocol."""
    _, body = read_npy(os.path.join(DATA, "banking77_labels.npy"))
    labels = list(struct.unpack("<%di" % (len(body) // 4), body))
    rng = random.Random(0)
    unseen = set(rng.sample(range(77), N_UNSEEN))
    seen_rows = [i for i, l in enumerate(labels) if l not in unseen]
    unseen_rows = [i for i, l in enumerate(labels) if l in unseen]
    shuffled = seen_rows[:]
    rng.shuffle(shuffled)
    n_held = round(HELD_OUT * len(seen_rows))
    held = sorted(shuffled[:n_held])
    create = sorted(shuffled[n_held:])
    return create, held + unseen_rows, set(held), set(unseen_rows), labels


def write_jsonl(path, rows, vectors, dim):
    with open(path, "w") as out:
        for r in rows:
            v = struct.unpack_from("<%df" % dim, vectors, r * dim * 4)
            out.write(json.dumps({"id": "r%d" % r, "embedding": list(v)}) + "\n")


def kbatch(binary, db, *args):
    start = time.perf_counter()
    proc = subprocess.run([binary, "--db", db] + list(args), capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit("kbatch %s failed: %s" % (" ".join(args), proc.stderr))
    return proc, time.perf_counter() - start


def clusters_of(binary, db):
    out = subprocess.run([binary, "--db", db, "export", "--project", "b", "--raw"],
                         capture_output=True, text=True, check=True).stdout
    return {int(r["item_id"][1:]): int(r["cluster_id"]) for r in csv.DictReader(io.StringIO(out))}


def run_once(binary, workdir, seed, files, sets, add_flags):
    create_file, add_file = files
    create_rows, added_rows, held, unseen, labels = sets
    db = os.path.join(workdir, "living-%d.sqlite" % seed)
    _, create_wall = kbatch(binary, db, "create", "--project", "b", "--input", create_file,
                            "--clusters", "62", "--seed", str(seed), "--quiet")
    before = clusters_of(binary, db)
    _, add_wall = kbatch(binary, db, "add", "--project", "b", "--input", add_file, *add_flags)
    after = clusters_of(binary, db)
    proc, _ = kbatch(binary, db, "add", "--project", "b", "--input", add_file)
    again = int(re.search(r"already in the project.*?(nothing added|added (\d+))", proc.stderr).group(2) or 0)
    unchanged = sum(after[r] == c for r, c in before.items()) / len(before)
    kbatch(binary, db, "refit", "--project", "b", "--refine-epochs", "10", "--quiet")
    refit = clusters_of(binary, db)
    items = sorted(after)
    return dict(
        assigned=sum(after[r] < 62 for r in held) / len(held),
        pooled=sum(after[r] >= 62 for r in unseen) / len(unseen),
        ari_add=ari([after[r] for r in items], [labels[r] for r in items]),
        ari_refit=ari([refit[r] for r in items], [labels[r] for r in items]),
        second_add=again,
        unchanged=unchanged,
        add_per_create=(add_wall / len(added_rows)) / (create_wall / len(create_rows)),
    )


def reference(reps, sets, vectors, dim):
    """The scikit-learn stand-in of the issue, or None when it is not installed."""
    try:
        import numpy as np
        from sklearn.cluster import KMeans
    except ImportError:
        return None
    create_rows, added_rows, held, unseen, labels = sets
    x = np.frombuffer(vectors, dtype="<f4").reshape(-1, dim)
    y = np.array(labels)
    results = []
    for seed in range(reps):
        km = KMeans(62, n_init=1, random_state=seed).fit(x[create_rows])
        c = km.cluster_centers_ / np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True)
        own = km.labels_
        own_sim = (x[create_rows] * c[own]).sum(1)
        sims = x[added_rows] @ c.T
        nearest, best = sims.argmax(1), sims.max(1)
        row = {}
        for name, threshold in (
            ("global", np.full(62, np.quantile(own_sim, 0.05))),
            ("per-cluster", np.array([np.quantile(own_sim[own == k], 0.05) for k in range(62)])),
        ):
            joins = best >= threshold[nearest]
            pool = x[added_rows][~joins]
            k_pool = max(1, round(math.sqrt(len(pool) / 2)))
            pooled_labels = KMeans(k_pool, n_init=1, random_state=seed).fit(pool).labels_
            added = nearest.copy()
            added[~joins] = 62 + pooled_labels
            all_rows = np.concatenate([create_rows, added_rows])
            all_labels = np.concatenate([own, added])
            n_held = sum(1 for r in added_rows if r in held)
            row[name] = dict(assigned=joins[:n_held].mean(), pooled=(~joins[n_held:]).mean(),
                             ari=ari(all_labels.tolist(), y[all_rows].tolist()))
            if name == "per-cluster":
                centres = np.vstack([c, KMeans(k_pool, n_init=1, random_state=seed).fit(pool).cluster_centers_])
                refit = KMeans(len(centres), init=centres, n_init=1, max_iter=10).fit(x[all_rows])
                row["refit"] = ari(refit.labels_.tolist(), y[all_rows].tolist())
        row["one-shot"] = ari(KMeans(62 + k_pool, n_init=1, random_state=seed).fit(x).labels_.tolist(),
                              labels)
        results.append(row)
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-references", action="store_true", help="kbatch's figures only")
    parser.add_argument("add_flags", nargs="*", help="more `kbatch add` flags, after --")
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "kbatch")
    (_, dim), vectors = read_npy(os.path.join(DATA, "banking77_minilm.npy"))
    sets = split()
    create_rows, added_rows, held, unseen, _ = sets
    print("banking77: %d items to create (62 intents), %d to add (%d held out of seen intents, "
          "%d of %d unseen intents)" % (len(create_rows), len(added_rows), len(held), len(unseen),
                                        N_UNSEEN))
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        files = (os.path.join(workdir, "create.jsonl"), os.path.join(workdir, "add.jsonl"))
        write_jsonl(files[0], create_rows, vectors, dim)
        write_jsonl(files[1], added_rows, vectors, dim)
        for seed in range(args.reps):
            r = run_once(binary, workdir, seed, files, sets, args.add_flags)
            results.append(r)
            print("seed %d: " % seed + ", ".join("%s=%.3f" % kv for kv in r.items()), flush=True)
    print("kbatch, median of seeds 0..%d [min-max]:" % (args.reps - 1))
    for key in results[0]:
        values = [r[key] for r in results]
        print("  %-15s %.3f [%.3f-%.3f]" % (key, statistics.median(values), min(values), max(values)))
    if args.no_references:
        return
    refs = reference(args.reps, sets, vectors, dim)
    if refs is None:
        print("reference: numpy/scikit-learn not importable here; run with a Python that has them")
        return
    print("scikit-learn stand-in, same split, seeds 0..%d, medians [min-max]:" % (args.reps - 1))
    med = lambda values: "%.3f [%.3f-%.3f]" % (statistics.median(values), min(values), max(values))
    for name in ("global", "per-cluster"):
        print("  %-12s assigned %s, pooled %s, ARI %s" % (
            name, med([r[name]["assigned"] for r in refs]), med([r[name]["pooled"] for r in refs]),
            med([r[name]["ari"] for r in refs])))
    print("  after 10 Lloyd epochs from those centroids: ARI %s" % med([r["refit"] for r in refs]))
    print("  one KMeans on all items (k = 62 + pool k): ARI %s" % med([r["one-shot"] for r in refs]))


if __name__ == "__main__":
    sys.exit(main())
