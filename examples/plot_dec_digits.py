"""
DEC and IDEC in a scikit-learn pipeline
=======================================

Cluster scikit-learn's handwritten digits with k-means, DEC and IDEC, each
inside a ``Pipeline`` that scales the pixels first, and compare the clusters
with the true digits (accuracy after Hungarian matching, NMI, ARI).
DEC (Xie et al., 2016) learns an embedding in which the clusters are compact;
IDEC (Guo et al., 2017) keeps a reconstruction term so the embedding stays
faithful to the data.
"""

from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from sklearn_deepclust import DEC
from sklearn_deepclust.metrics import clustering_scores

X, y = load_digits(return_X_y=True)

# Short training so that the example runs in about a minute on a CPU; the
# paper's defaults (200 pretraining epochs) do a little better.
deep = dict(
    hidden_dims=(256, 256, 512),
    pretrain_epochs=60,
    max_epochs=30,
    update_interval=20,
    random_state=0,
)
models = {
    "k-means": KMeans(n_clusters=10, n_init=20, random_state=0),
    "DEC": DEC(n_clusters=10, **deep),
    "IDEC": DEC(n_clusters=10, reconstruction_weight=10.0, **deep),
}
for name, model in models.items():
    pipeline = make_pipeline(MinMaxScaler(), model)
    labels = pipeline.fit_predict(X)
    scores = clustering_scores(y, labels)
    print(f"{name:8s} " + "  ".join(f"{k} {v:.3f}" for k, v in scores.items()))

# %%
# The fitted DEC is also a transformer: its ``transform`` is the learned
# 10-dimensional embedding, with feature names for ``set_output``.
dec = make_pipeline(MinMaxScaler(), models["DEC"]).set_output(transform="pandas")
print(dec.transform(X[:5]))
