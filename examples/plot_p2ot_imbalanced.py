"""
Imbalanced clusters: equal shares (SwAV) against sizes that follow the data (P²OT)
==================================================================================

Optimal-transport clustering turns each batch's scores into targets by a
transport. SwAV's transport gives every cluster the same share of the batch,
which is right when the classes have similar sizes and wrong when a few
dominate: the large classes are split and the small ones merged. P²OT
(Zhang et al., ICLR 2024) transports only the part of the batch the model is
surest about, a part that grows during training, and holds the cluster sizes
to equal only through a KL penalty, so that they can follow the data.

This example draws a long-tailed version of scikit-learn's digits (the
largest class 20 times the smallest) with
:func:`~sklearn_deepclust.datasets.make_long_tailed`, clusters it with
k-means, :class:`~sklearn_deepclust.SwAVClustering` and
:class:`~sklearn_deepclust.P2OT`, and prints accuracy and macro-F1 after
Hungarian matching (macro-F1 weighs every class equally, so it shows the
small classes that accuracy hides) and the cluster sizes next to the class
sizes. Runs in about a minute on two CPU cores.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.preprocessing import MinMaxScaler

from sklearn_deepclust import P2OT, SwAVClustering
from sklearn_deepclust.datasets import make_long_tailed
from sklearn_deepclust.metrics import cluster_accuracy, matched_f1_score

X, y = load_digits(return_X_y=True)
X = MinMaxScaler().fit_transform(X)
X, y, _ = make_long_tailed(X, y, imbalance_ratio=0.05, random_state=0)
print(f"{len(y)} rows; class sizes {sorted(np.bincount(y).tolist(), reverse=True)}\n")

models = {
    "KMeans": KMeans(10, n_init=20, random_state=0),
    "SwAVClustering": SwAVClustering(10, pretext_epochs=50, max_epochs=100, random_state=0),
    "P2OT": P2OT(10, pretext_epochs=50, max_epochs=100, random_state=0),
}
print(f"{'method':<15} {'ACC':>6} {'macro-F1':>9}  cluster sizes")
cluster_sizes = {"true classes": sorted(np.bincount(y).tolist(), reverse=True)}
for name, model in models.items():
    labels = model.fit_predict(X)
    sizes = cluster_sizes[name] = sorted(np.bincount(labels, minlength=10).tolist(), reverse=True)
    print(
        f"{name:<15} {cluster_accuracy(y, labels):6.3f} {matched_f1_score(y, labels):9.3f}  {sizes}"
    )

# %%
# Cluster sizes, largest first, against the class sizes: equal shares show
# as a flat profile, sizes that follow the data as the long tail.
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, sizes in cluster_sizes.items():
    style = "k--" if name == "true classes" else "o-"
    ax.plot(range(1, 11), sizes, style, label=name)
ax.set_yscale("log")
ax.set_xlabel("cluster (or class), by size")
ax.set_ylabel("rows")
ax.legend()
fig.tight_layout()
