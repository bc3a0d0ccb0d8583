"""kbatch against SuperKMeans at large k (called by scripts/bench-large-k), 2 threads each.

Every tool runs as a child process of its own, so its wall and peak RSS are its alone (read
with wait4); the objective is bench_peers.objective on the labels each tool gives.

    python scripts/bench_large_k.py KBATCH DATA.npy K
"""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_peers  # noqa: E402


def child(cmd):
    """Runs `cmd`; its wall seconds and peak RSS in MiB."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=bench_peers.ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit("%s failed with %d" % (cmd[0], proc.returncode))
    return wall, usage.ru_maxrss / 1024


def superkmeans(npy, k, out):
    from superkmeans import SuperKMeans

    x = np.load(npy)
    km = SuperKMeans(n_clusters=k, dimensionality=x.shape[1], n_threads=bench_peers.THREADS,
                     seed=0)
    np.save(out, np.asarray(km.assign(x, km.train(x))))


def main():
    if sys.argv[1] == "--superkmeans":
        superkmeans(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    binary, npy, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    x = np.load(npy)
    n, d = x.shape
    print("%d × %d, k = %d, %d threads; load average %s" % (
        n, d, k, bench_peers.THREADS, open("/proc/loadavg").read().split()[0]))
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        db = os.path.join(workdir, "bench.sqlite")
        for name, extra in (("kbatch default", []),
                            ("kbatch --refine-epochs 0", ["--refine-epochs", "0"])):
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(db + suffix):
                    os.remove(db + suffix)
            wall, rss = child([binary, "--db", db, "create", "--project", "p", "--input", npy,
                               "--clusters", str(k), "--seed", "0", "--quiet"] + extra)
            labels, status = bench_peers.kbatch_results(binary, db, npy, workdir)
            rows.append((name, wall, rss, labels))
            batches = status["batches"]
            print("%s: batch 0 %.1f s, %d mini-batches %.1f s; passes (compute, skipped): %s" % (
                name, batches[0]["processing_time_ms"] / 1000,
                sum(b["phase"] == "cluster" for b in batches[1:]),
                sum(b["processing_time_ms"] for b in batches[1:] if b["phase"] == "cluster") / 1000,
                ", ".join("%s %.1f s %.2f%%" % (p, ms / 1000, 100 * s)
                          for p, ms, s in bench_peers.epochs(status))), flush=True)
        out = os.path.join(workdir, "skm.npy")
        wall, rss = child([sys.executable, os.path.abspath(__file__), "--superkmeans", npy,
                           str(k), out])
        rows.append(("superkmeans", wall, rss, np.load(out)))
    base = bench_peers.objective(x, rows[0][3])
    print("\n| %d × %d, k = %s | wall | peak RSS | objective | empty clusters |" % (
        n, d, format(k, ",")))
    print("| --- | --- | --- | --- | --- |")
    for name, wall, rss, labels in rows:
        obj = bench_peers.objective(x, labels)
        print("| %s | %.1f s | %.0f MiB | %.3f | %d |" % (
            name, wall, rss, obj / base, k - len(np.unique(labels))))


if __name__ == "__main__":
    main()
