"""Issue 20's cost check: every default fit of a 10,000 x 50 synthetic table.

Run ``.venv/bin/python benchmarks/tables_cost.py [N_ROWS] [METHOD ...]`` on
an otherwise idle machine: fit seconds (2 torch threads) and accuracy of
KMeans(n_init=10) and of each deep clusterer at its defaults on standardised
blobs (10 centres, 50 features, 10,000 rows unless N_ROWS is given).
"""

import sys
import time

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.preprocessing import StandardScaler

import sklearn_deepclust as sd
from sklearn_deepclust.metrics import cluster_accuracy


def main(n_rows=10_000, methods=None):
    torch.set_num_threads(2)
    X, y = make_blobs(n_samples=n_rows, n_features=50, centers=10, cluster_std=4.0, random_state=0)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    contenders = {
        "KMeans": KMeans(10, n_init=10, random_state=0),
        "DEC": sd.DEC(10, random_state=0),
        "IDEC": sd.DEC(10, reconstruction_weight=10.0, random_state=0),
        "SCAN": sd.SCAN(10, random_state=0),
        "SwAVClustering": sd.SwAVClustering(10, random_state=0),
        "P2OT": sd.P2OT(10, random_state=0),
    }
    for name, estimator in contenders.items():
        if methods and name not in methods:
            continue
        start = time.perf_counter()
        labels = estimator.fit_predict(X)
        seconds = time.perf_counter() - start
        print(f"{name:16s} {seconds:6.1f} s  ACC {cluster_accuracy(y, labels):.3f}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000, sys.argv[2:])
