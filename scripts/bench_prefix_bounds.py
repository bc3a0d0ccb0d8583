"""How tight exact prefix bounds are on embeddings: for a sample of items and k centroids, the
centroids that survive the bound ‖c‖² − 2(x′·c′ + ‖x″‖‖c″‖) < the best exact value, with x′
the first m coordinates in the centroids' principal basis (README, "Dimension pruning").

    python scripts/bench_prefix_bounds.py DATA.npy [K]     # needs numpy and faiss-cpu
"""
import sys

import faiss
import numpy as np


def main():
    x = np.load(sys.argv[1], mmap_mode="r")
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    rng = np.random.default_rng(1)
    train = np.ascontiguousarray(x[rng.choice(len(x), min(len(x), 100 * k), replace=False)])
    queries = np.ascontiguousarray(x[rng.choice(len(x), min(len(x), 20_000), replace=False)])
    for label, niter in (("after 1 Lloyd iteration", 1), ("after 10", 10)):
        km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=1)
        km.train(train)
        c = km.centroids
        # The principal basis of the centroids' second moment, largest directions first.
        w, basis = np.linalg.eigh(c.T @ c)
        basis, w = basis[:, ::-1], w[::-1]
        c_sq = (c ** 2).sum(1)
        exact = c_sq[None, :] - 2 * queries @ c.T
        best = exact.min(1)
        xr, cr = queries @ basis, c @ basis
        for m in (32, 64, 96, 128):
            x_rest = np.sqrt(np.maximum((xr[:, m:] ** 2).sum(1), 0))
            c_rest = np.sqrt(np.maximum((cr[:, m:] ** 2).sum(1), 0))
            bound = c_sq[None, :] - 2 * (xr[:, :m] @ cr[:, :m].T + x_rest[:, None] * c_rest[None, :])
            survivors = (bound <= best[:, None]).sum(1)
            print("%s, m = %d (%.0f%% of the centroids' energy): survivors mean %.1f, median %d, p90 %d"
                  % (label, m, 100 * w[:m].sum() / w.sum(), survivors.mean(), np.median(survivors),
                     np.percentile(survivors, 90)))


if __name__ == "__main__":
    main()
