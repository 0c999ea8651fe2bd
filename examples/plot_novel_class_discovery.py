"""
Novel class discovery: find the digits nobody labelled, and tune without them
=============================================================================

A team has labelled the digits 0 to 4 and holds unlabelled rows of digits it
has never named (5 to 9). :class:`~sklearn_deepclust.discovery.PBN` (Troisemaine
et al., 2024) learns an embedding that keeps what separates the known classes
and reconstructs every row, estimates how many novel classes there are, and
clusters the unlabelled rows by NCD k-means; ``predict`` answers a known
label or a new one (10, 11, ... after the largest known label).

Its hyperparameters cannot be tuned on the novel classes: their labels are
what nobody has. Hidden-class cross-validation tunes them on the known
classes instead: each fold hides some known classes (their rows are given
unlabelled) and scores how well they are rediscovered. It runs inside
scikit-learn's own :class:`~sklearn.model_selection.GridSearchCV`, with
:class:`~sklearn_deepclust.model_selection.HiddenClassKFold` as the splitter
and :class:`~sklearn_deepclust.model_selection.TransductiveDiscovery` as the
wrapper that keeps the hidden labels away from ``fit``. Runs in about a
minute on two CPU cores.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split

from sklearn_deepclust.datasets import make_ncd_split
from sklearn_deepclust.discovery import PBN
from sklearn_deepclust.metrics import cluster_accuracy, cluster_accuracy_scorer
from sklearn_deepclust.model_selection import HiddenClassKFold, TransductiveDiscovery

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
novel = [5, 6, 7, 8, 9]
y_partial, _ = make_ncd_split(y_train, novel)  # -1 on every row of 5-9
print(f"{np.sum(y_partial >= 0)} labelled rows of 0-4, {np.sum(y_partial < 0)} unlabelled rows")

# %%
# Tune the loss weight on the known classes only: 3 folds, each hiding 2 of
# the 5 known digits. The novel rows (y = -1) take part in no fold.
labelled = y_partial >= 0
search = GridSearchCV(
    TransductiveDiscovery(PBN(n_novel_clusters=2, random_state=0)),
    {"estimator__classification_weight": [0.05, 0.1, 0.5]},
    cv=HiddenClassKFold(3, n_hidden_classes=2, random_state=0),
    scoring=cluster_accuracy_scorer,
    refit=False,
).fit(X_train[labelled], y_partial[labelled])
for weight, score in zip(
    search.cv_results_["param_estimator__classification_weight"],
    search.cv_results_["mean_test_score"],
):
    print(f"classification_weight={weight}: hidden-class accuracy {score:.3f}")
weight = search.best_params_["estimator__classification_weight"]

# %%
# Fit with the chosen weight; the number of novel classes is estimated.
pbn = PBN(classification_weight=weight, random_state=0).fit(X_train, y_partial)
print(f"\nchosen weight {weight}; novel classes found: {pbn.n_novel_clusters_} (truth: 5)")
is_novel = np.isin(y_test, novel)
print(
    "novel-class accuracy on the test rows of 5-9: "
    f"{cluster_accuracy(y_test[is_novel], pbn.predict_novel(X_test[is_novel])):.3f}"
)
known = ~is_novel
known_accuracy = np.mean(pbn.predict(X_test)[known] == y_test[known])
print(f"known-class accuracy on the test rows of 0-4: {known_accuracy:.3f}")

# %%
# Left: what hidden-class CV saw for each weight. Right: how the number of
# novel classes was estimated, the silhouette of the unlabelled rows'
# clustering in PBN's embedding for each candidate count.
weights = search.cv_results_["param_estimator__classification_weight"]
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
left.bar([str(w) for w in weights], search.cv_results_["mean_test_score"])
left.set_xlabel("classification_weight")
left.set_ylabel("hidden-class accuracy (CV)")
counts = sorted(pbn.n_novel_scores_)
right.plot(counts, [pbn.n_novel_scores_[k] for k in counts], "o-")
right.axvline(pbn.n_novel_clusters_, color="k", linestyle="--", label="estimate")
right.axvline(len(novel), color="g", linestyle=":", label="truth")
right.set_xlabel("number of novel classes")
right.set_ylabel("silhouette")
right.legend()
fig.tight_layout()
