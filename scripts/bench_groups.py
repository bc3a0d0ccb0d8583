#!/usr/bin/env python3
"""Page-level groups: quality on banking77 against the peers' all-pairs community detection,
and the grouping phase's share of the run at 1,000,000 keyword-like vectors.

1. Quality. banking77's texts go through `kbatch create` as a keyword list (the default
   embedder, all-MiniLM-L6-v2, and the default --group-similarity); the groups of the export
   are scored against the 77 intent labels: coverage (share of items in a group of two or
   more) and purity (share of grouped items whose group's majority label is theirs). The
   reference is sentence-transformers' `util.community_detection` (min_community_size=2) run
   over all pairs of the same items at the same threshold, re-implemented in numpy and run in
   this process on ../shared/data/banking77_minilm.npy (the vectors kbatch's embedder
   reproduces). A threshold sweep runs the same vectors as JSONL (no embedding) through
   `create --groups --group-similarity T`. Topics' ARI against the labels is printed too.
2. Scale. banking77's vectors replicated 77 times with Gaussian noise (sigma 0.025 per
   component, about cosine 0.9 to the original) and renormalised: 1,007,391 x 384 as .npy;
   `create --groups` on it; the share of the grouping units' processing time in the run's
   (from `status --json --show-batches`), and what all pairs would cost at the same rate.

    scripts/bench_groups.py [--skip-scale] [--skip-texts]

Needs numpy: it makes a throwaway venv with pip (KBATCH_BENCH_VENV=DIR reuses one). Data:
../shared/data (banking77, Casanueva et al. 2020, CC BY 4.0).
"""

import argparse
import collections
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data")
KBATCH = os.environ.get("KBATCH_BIN") or os.path.join(ROOT, "target", "release", "kbatch")


def ensure_numpy():
    try:
        import numpy  # noqa: F401
        return
    except ImportError:
        pass
    venv = os.environ.get("KBATCH_BENCH_VENV") or os.path.join(tempfile.gettempdir(), "kbatch-bench-groups-venv")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "numpy"], check=True)
    os.execv(python, [python] + sys.argv)


ensure_numpy()
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_banking77 import ari  # noqa: E402


def kbatch(*args, **kwargs):
    return subprocess.run([KBATCH, *args], check=True, capture_output=True, text=True, **kwargs)


def banking77():
    with open(os.path.join(DATA, "banking77.csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    vectors = np.load(os.path.join(DATA, "banking77_minilm.npy")).astype(np.float32)
    # kbatch merges keywords equal after trimming and case folding into the first: score the
    # same unique items on both sides.
    seen, keep = set(), []
    for i, row in enumerate(rows):
        key = row["text"].strip().lower()
        if key and key not in seen:
            seen.add(key)
            keep.append(i)
    texts = [rows[i]["text"].strip() for i in keep]
    labels = [rows[i]["label"] for i in keep]
    return texts, labels, vectors[keep]


def community_detection(vectors, threshold, min_size=2, block=1024):
    """sentence-transformers util.community_detection, all pairs, in numpy."""
    x = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    n = len(x)
    communities = []
    for start in range(0, n, block):
        sims = x[start:start + block] @ x.T
        for row in sims:
            members = np.nonzero(row >= threshold)[0]
            if len(members) >= min_size:
                communities.append(members)
    communities.sort(key=len, reverse=True)  # stable: ties keep item order, as torch's sort
    taken = np.zeros(n, bool)
    groups = []
    for members in communities:
        rest = members[~taken[members]]
        if len(rest) >= min_size:
            taken[rest] = True
            groups.append(rest)
    return groups


def score(groups, labels, n):
    grouped = sum(len(g) for g in groups)
    pure = sum(collections.Counter(labels[i] for i in g).most_common(1)[0][1] for g in groups)
    sizes = sorted(len(g) for g in groups)
    median = sizes[len(sizes) // 2] if sizes else 0
    return grouped / n, pure / max(grouped, 1), len(groups), median


def export_groups(db, project, key, keyword_layout):
    out = kbatch("--db", db, "export", "--project", project).stdout
    reader = csv.DictReader(io.StringIO(out, newline=""))
    groups, topics = collections.defaultdict(list), {}
    for row in reader:
        k = row["keyword"] if keyword_layout else row["text"]
        topics[k] = row["topic_id" if keyword_layout else "cluster_id"]
        if row.get("group_id"):
            groups[row["group_id"]].append(key[k])
    return list(groups.values()), topics


def quality(args, tmp):
    texts, labels, vectors = banking77()
    n = len(texts)
    index = {t: i for i, t in enumerate(texts)}
    print(f"banking77: {n} unique texts, 77 intents")
    print()
    print("| threshold | kbatch groups: coverage / purity / groups / median size | "
          "all-pairs community detection: coverage / purity / groups / median | time (peers) |")
    print("|---|---|---|---|")
    jsonl = os.path.join(tmp, "banking77.jsonl")
    with open(jsonl, "w", encoding="utf-8") as f:
        for t, v in zip(texts, vectors):
            f.write(json.dumps({"id": t, "text": t, "embedding": [float(x) for x in v]}) + "\n")
    for threshold in args.thresholds:
        db = os.path.join(tmp, f"sweep-{threshold}.sqlite")
        kbatch("--db", db, "create", "--project", "b", "--input", jsonl, "--groups",
               "--group-similarity", str(threshold), "--clusters", str(args.topics), "--quiet")
        groups, _ = export_groups(db, "b", index, keyword_layout=False)
        ours = score(groups, labels, n)
        start = time.perf_counter()
        peers = score(community_detection(vectors, threshold), labels, n)
        took = time.perf_counter() - start
        print(f"| {threshold} | {ours[0]:.3f} / **{ours[1]:.3f}** / {ours[2]} / {ours[3]} | "
              f"{peers[0]:.3f} / {peers[1]:.3f} / {peers[2]} / {peers[3]} | {took:.1f} s |")
    aris = []
    for seed in range(9):
        db = os.path.join(tmp, f"seed-{seed}.sqlite")
        kbatch("--db", db, "create", "--project", "b", "--input", jsonl, "--clusters", "77",
               "--seed", str(seed), "--quiet")
        _, topics = export_groups(db, "b", index, keyword_layout=False)
        aris.append(ari([topics[t] for t in texts], labels))
    aris.sort()
    print()
    print(f"topics ARI on the same vectors, k = 77, seeds 0-8: median **{aris[4]:.3f}** "
          f"({aris[0]:.3f}-{aris[-1]:.3f})")
    if args.skip_texts:
        return
    print()
    keywords = os.path.join(tmp, "banking77_texts.csv")
    with open(keywords, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["keyword"])
        w.writerows([t] for t in texts)
    db = os.path.join(tmp, "texts.sqlite")
    start = time.perf_counter()
    kbatch("--db", db, "create", "--project", "t", "--input", keywords, "--clusters", "77",
           "--quiet")
    wall = time.perf_counter() - start
    status = json.loads(kbatch("--db", db, "status", "--project", "t", "--json").stdout)
    threshold = status["config"]["groups"]["similarity"]
    groups, topics = export_groups(db, "t", index, keyword_layout=True)
    ours = score(groups, labels, n)
    peers = score(community_detection(vectors, threshold), labels, n)
    topic_ari = ari([topics[t] for t in texts], labels)
    print(f"banking77 texts, `create` with the default embedder ({status['config']['embedder']}) "
          f"and --group-similarity {threshold} (default), k = 77, {wall:.1f} s:")
    print(f"- kbatch groups: coverage {ours[0]:.3f}, purity {ours[1]:.3f}, "
          f"{ours[2]} groups, median size {ours[3]}")
    print(f"- all-pairs community detection, same threshold: coverage {peers[0]:.3f}, "
          f"purity {peers[1]:.3f}, {peers[2]} groups, median size {peers[3]}")
    print(f"- purity {ours[1] - peers[1]:+.3f}, coverage {ours[0] - peers[0]:+.3f} against the peers; "
          f"topics ARI {topic_ari:.3f} (seed 42)")


def scale(tmp):
    base = np.load(os.path.join(DATA, "banking77_minilm.npy")).astype(np.float32)
    copies = 77
    rng = np.random.default_rng(0)
    path = os.path.join(tmp, "keywordlike_1m.npy")
    n = len(base) * copies
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, base.shape[1]))
    for c in range(copies):
        block = base + rng.normal(0.0, 0.025, base.shape).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[c * len(base):(c + 1) * len(base)] = block
    out.flush()
    del out
    db = os.path.join(tmp, "scale.sqlite")
    start = time.perf_counter()
    kbatch("--db", db, "create", "--project", "s", "--input", path, "--groups", "--quiet",
           "--batch-size", "10000")
    wall = time.perf_counter() - start
    status = json.loads(kbatch("--db", db, "status", "--project", "s", "--json",
                               "--show-batches").stdout)
    by_phase = collections.Counter()
    for b in status["batches"]:
        by_phase[b["phase"]] += b["processing_time_ms"] or 0
    clustering = by_phase["cluster"] + by_phase["refine"] + by_phase["final"]
    grouping = by_phase["group"]
    k = status["n_clusters"]
    groups = sum(b["clusters_touched"] for b in status["batches"] if b["phase"] == "group")
    print()
    print(f"{n:,} x {base.shape[1]} keyword-like vectors, `create --groups --batch-size 10000` "
          f"(k = {k}, default similarity), {wall:.1f} s wall:")
    print(f"- clustering (batches, refinement, final pass): {clustering / 1000:.1f} s of processing; "
          f"grouping: {grouping / 1000:.1f} s = **{grouping / max(clustering, 1):.1%}** of clustering; "
          f"{groups:,} groups")
    # Inside topics the grouping computed sum(m_t^2)/2 similarities; all pairs would be n^2/2.
    export = kbatch("--db", db, "export", "--project", "s", "--clusters").stdout
    sizes = [int(r["size"]) for r in csv.DictReader(io.StringIO(export, newline=""))]
    inside = sum(m * m for m in sizes) / 2
    all_pairs = n * n / 2
    print(f"- pairs compared inside topics: {inside:.3g}; all pairs: {all_pairs:.3g} "
          f"({all_pairs / inside:.0f}x): at the grouping's own rate, "
          f"{grouping / 1000 * all_pairs / inside / 3600:.1f} h for the similarities alone, "
          f"and {n * n * 4 / 2**40:.1f} TiB were the matrix kept")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-texts", action="store_true")
    parser.add_argument("--thresholds", type=float, nargs="*", default=[0.7, 0.75, 0.8, 0.85])
    parser.add_argument("--topics", type=int, default=77,
                        help="k of the threshold sweep (fewer topics: larger ones)")
    args = parser.parse_args()
    if not os.path.exists(KBATCH):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        quality(args, tmp)
        if not args.skip_scale:
            scale(tmp)


if __name__ == "__main__":
    main()
