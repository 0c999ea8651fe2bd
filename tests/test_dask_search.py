"""Hyperparameter search across machines: GridSearchCV on joblib's dask backend.

The test starts a local dask cluster of two worker processes (what a
scheduler on several hosts looks like to joblib) and checks that the search
runs its fits there and finds what the same search finds in this process.
"""

import distributed
import numpy as np
import pytest
from joblib import parallel_backend
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_deepclust import DEC
from sklearn_deepclust.metrics import cluster_accuracy_scorer


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


def _search():
    estimator = DEC(
        4, hidden_dims=(16,), embedding_dim=2, pretrain_epochs=20, max_epochs=5, random_state=0
    )
    return GridSearchCV(
        estimator,
        {"reconstruction_weight": [0.0, 10.0], "alpha": [1.0, 5.0]},
        cv=KFold(2, shuffle=True, random_state=0),
        scoring=cluster_accuracy_scorer,
        n_jobs=-1,
    )


def test_grid_search_runs_on_the_dask_workers_and_matches_a_local_search(client):
    X, y = make_blobs(n_samples=200, centers=4, n_features=5, cluster_std=0.5, random_state=0)
    X = X.astype(np.float32)
    local = _search().set_params(n_jobs=1).fit(X, y)
    with distributed.get_task_stream(client) as tasks, parallel_backend("dask"):
        remote = _search().fit(X, y)
    workers = {task["worker"] for task in tasks.data}
    assert workers == set(client.scheduler_info()["workers"])  # both workers fitted
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert remote.best_params_ == local.best_params_
    assert remote.best_score_ > 0.9  # four blobs are found
