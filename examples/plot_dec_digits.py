"""
DEC and IDEC in a scikit-learn pipeline
=======================================

Cluster scikit-learn's handwritten digits with k-means, DEC and IDEC, each
inside a ``Pipeline`` that scales the pixels first, and compare the clusters
with the true digits (accuracy after Hungarian matching, NMI, ARI).

DEC (Xie et al., 2016) learns an embedding in which the clusters are compact;
IDEC (Guo et al., 2017) keeps a reconstruction term so that the embedding stays
faithful to the data. As in the IDEC paper, both start from one pretrained
autoencoder: a fit with ``max_epochs=0`` trains it (and runs k-means in its
embedding), and its ``module_.encoder`` / ``module_.decoder`` seed the others.
Runs in under a minute on two CPU cores.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from sklearn_deepclust import DEC
from sklearn_deepclust.metrics import clustering_scores

X, y = load_digits(return_X_y=True)

# The paper's network (64-500-500-2000-10), pretrained for 40 epochs.
autoencoder = make_pipeline(
    MinMaxScaler(),
    DEC(
        n_clusters=10, reconstruction_weight=10.0, pretrain_epochs=40, max_epochs=0, random_state=0
    ),
).fit(X)
pretrained = autoencoder[-1].module_
start = dict(
    module=pretrained.encoder,
    decoder=pretrained.decoder,
    pretrain_epochs=0,
    max_epochs=20,
    update_interval=10,
    random_state=0,
)

models = {
    "k-means": make_pipeline(MinMaxScaler(), KMeans(n_clusters=10, n_init=20, random_state=0)),
    "AE + k-means": autoencoder,
    "DEC": make_pipeline(MinMaxScaler(), DEC(n_clusters=10, **start)),
    "IDEC": make_pipeline(MinMaxScaler(), DEC(n_clusters=10, reconstruction_weight=10.0, **start)),
}
results = {}
for name, model in models.items():
    labels = model.predict(X) if name == "AE + k-means" else model.fit_predict(X)
    results[name] = clustering_scores(y, labels)
    print(f"{name:13s} " + "  ".join(f"{k} {v:.3f}" for k, v in results[name].items()))

# %%
# The same scores side by side.
metrics = list(next(iter(results.values())))
width = 0.8 / len(results)
fig, ax = plt.subplots(figsize=(7, 3.5))
for i, (name, scores) in enumerate(results.items()):
    positions = np.arange(len(metrics)) + i * width
    ax.bar(positions, [scores[m] for m in metrics], width, label=name)
ax.set_xticks(np.arange(len(metrics)) + width * (len(results) - 1) / 2, metrics)
ax.set_ylim(0, 1)
ax.set_ylabel("score against the true digits")
ax.legend(loc="lower right", fontsize="small")
fig.tight_layout()

# %%
# A fitted DEC is also a transformer: ``transform`` gives the learned
# 10-dimensional embedding, with feature names for ``set_output``.
dec = models["DEC"]
dec[-1].set_output(transform="pandas")  # the scaler keeps returning arrays
print(dec.transform(X[:5]).round(2))
