"""
Looking at a learned embedding in two dimensions
================================================

A fitted deep clusterer is also a transformer: ``transform(X)`` returns the
output of its trained encoder. Projecting that embedding to two dimensions
shows what the network has learned, and whether its clusters are the
separated groups one hopes for or cut through them.

This example fits SCAN (Van Gansbeke et al., 2020) on 1000 of scikit-learn's
digits, then draws t-SNE maps of the scaled pixels and of SCAN's 64-d
embedding, coloured by the true digit and by SCAN's cluster. It also counts
how often a sample's ten nearest neighbours (cosine) share its digit in
either space. Runs in about 20 seconds on two CPU cores.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.manifold import TSNE
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import MinMaxScaler

from sklearn_deepclust import SCAN
from sklearn_deepclust.metrics import cluster_accuracy
from sklearn_deepclust.neighbors import neighbor_purity

X, y = load_digits(return_X_y=True)
X, y = MinMaxScaler().fit_transform(X[:1000]), y[:1000]

scan = SCAN(
    n_clusters=10,
    hidden_dims=(256,),
    embedding_dim=64,
    pretext_epochs=60,
    max_epochs=60,
    self_label_epochs=20,
    n_heads=3,
    random_state=0,
).fit(X)
embedding = scan.transform(X)
print(f"SCAN cluster accuracy: {cluster_accuracy(y, scan.labels_):.3f}")

# %%
# Neighbour purity (the first neighbour returned is the sample itself and is
# dropped). SCAN mines its neighbours after the pretext phase; the clustering
# and self-labelling phases then train the encoder to make neighbours agree on
# a cluster, not to keep the digits' neighbourhoods, so the final embedding
# need not beat the pixels here, on data where pixel neighbours are already good.
spaces = {"scaled pixels (64-d)": X, "SCAN embedding (64-d)": embedding}
for name, Z in spaces.items():
    neighbors = NearestNeighbors(n_neighbors=11, metric="cosine").fit(Z).kneighbors(Z)[1]
    print(f"10-NN purity in the {name}: {neighbor_purity(neighbors[:, 1:], y):.3f}")

# %%
# Each row is one t-SNE map, coloured twice: by the true digit on the left,
# by SCAN's cluster on the right. A group with one colour on the right and two
# on the left is a cluster that merged two digits; one digit split over two
# colours on the right is a digit that SCAN cut in two.
fig, axes = plt.subplots(2, 2, figsize=(8, 8))
for row, (name, Z) in zip(axes, spaces.items()):
    Z2 = TSNE(random_state=0).fit_transform(Z)
    for ax, colour, label in zip(row, (y, scan.labels_), ("true digit", "SCAN cluster")):
        ax.scatter(Z2[:, 0], Z2[:, 1], c=colour, cmap="tab10", s=6)
        ax.set_title(f"{name}\ncoloured by {label}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
fig.tight_layout()
plt.show()
