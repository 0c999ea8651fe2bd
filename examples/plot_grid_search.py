"""
Tuning a deep clusterer with GridSearchCV
=========================================

Every estimator of the package is a scikit-learn estimator, so its
hyperparameters can be searched with :class:`~sklearn.model_selection.GridSearchCV`
like those of any other model. Here DEC (Xie et al., 2016) sits in a
``Pipeline`` behind a ``MinMaxScaler``, and the search tries two values of
``reconstruction_weight`` (0 is DEC, 10 is IDEC, Guo et al., 2017) and two
widths of the embedding.

A clusterer ignores the labels given to ``fit``. The search uses them only to
score the held-out fold: each fitted pipeline predicts clusters for the test
rows, and :data:`~sklearn_deepclust.metrics.cluster_accuracy_scorer` compares
them with the true digits after Hungarian matching. Runs in about 25 seconds on
two CPU cores.
"""

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from sklearn_deepclust import DEC
from sklearn_deepclust.metrics import cluster_accuracy, cluster_accuracy_scorer

X, y = load_digits(return_X_y=True)
X, y = X[:900], y[:900]

# A small network and short schedules keep each of the 13 fits to a second or two.
pipe = Pipeline(
    [
        ("scale", MinMaxScaler()),
        (
            "dec",
            DEC(
                n_clusters=10,
                hidden_dims=(256, 256),
                pretrain_epochs=60,
                max_epochs=30,
                update_interval=10,
                n_init=5,
                random_state=0,
            ),
        ),
    ]
)
grid = {"dec__reconstruction_weight": [0.0, 10.0], "dec__embedding_dim": [5, 10]}
search = GridSearchCV(
    pipe,
    grid,
    scoring={"ACC": cluster_accuracy_scorer, "NMI": "normalized_mutual_info_score"},
    refit="ACC",
    cv=KFold(3, shuffle=True, random_state=0),
)
search.fit(X, y)

# %%
# ``cv_results_`` holds one row per setting; the mean over the three test
# folds is what the search ranks by.
results = pd.DataFrame(search.cv_results_)
columns = ["param_dec__reconstruction_weight", "param_dec__embedding_dim"]
table = results[columns + ["mean_test_ACC", "std_test_ACC", "mean_test_NMI", "mean_fit_time"]]
print(table.round(3).to_string(index=False))
print(f"\nbest setting: {search.best_params_}, held-out ACC {search.best_score_:.3f}")
print(f"refitted on all rows: ACC {cluster_accuracy(y, search.predict(X)):.3f}")

# %%
# The estimators also have a ``score`` method: minus the training objective,
# which is what ``GridSearchCV`` maximises when ``scoring`` is left out. It
# needs no labels, but DEC's objective includes the weighted reconstruction
# error, so it cannot rank settings with different ``reconstruction_weight``.
print(f"score (minus the objective) of the refitted model: {search.best_estimator_.score(X):.4f}")
print(f"search.score(X, y) uses the ACC scorer instead: {search.score(X, y):.3f}")

# %%
# Held-out accuracy of each setting, with one standard deviation over the folds.
fig, ax = plt.subplots(figsize=(5, 3.5))
for weight, rows in results.groupby("param_dec__reconstruction_weight"):
    name = "DEC" if weight == 0 else f"IDEC (weight {weight:g})"
    ax.errorbar(
        rows["param_dec__embedding_dim"].astype(int),
        rows["mean_test_ACC"],
        yerr=rows["std_test_ACC"],
        marker="o",
        capsize=4,
        label=name,
    )
ax.set_xticks(grid["dec__embedding_dim"])
ax.set_xlabel("embedding_dim")
ax.set_ylabel("held-out cluster accuracy")
ax.legend()
fig.tight_layout()
plt.show()
