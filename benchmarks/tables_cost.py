"""Issue 20's cost check: every default fit of a 10,000 x 50 synthetic table (2 threads).

Run: ``.venv/bin/python benchmarks/tables_cost.py``. Prints fit seconds and ACC per estimator.
"""

import time

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.preprocessing import StandardScaler

import sklearn_deepclust as sd

torch.set_num_threads(2)
X, y = make_blobs(n_samples=10_000, n_features=50, centers=10, cluster_std=4.0, random_state=0)
X = StandardScaler().fit_transform(X).astype(np.float32)
from sklearn_deepclust.metrics import cluster_accuracy

for name, est in [
    ("KMeans", KMeans(10, n_init=10, random_state=0)),
    ("DEC", sd.DEC(10, random_state=0)),
    ("IDEC", sd.DEC(10, reconstruction_weight=10.0, random_state=0)),
    ("SCAN", sd.SCAN(10, random_state=0)),
    ("SwAVClustering", sd.SwAVClustering(10, random_state=0)),
    ("P2OT", sd.P2OT(10, random_state=0)),
]:
    t = time.perf_counter()
    lab = est.fit_predict(X)
    dt = time.perf_counter() - t
    print(f"{name:16s} {dt:6.1f} s  ACC {cluster_accuracy(y, lab):.3f}", flush=True)
