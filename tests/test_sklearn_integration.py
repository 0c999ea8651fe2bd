"""The package inside scikit-learn: clone, Pipeline, search, pickle, pandas, bad input."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from _helpers import small_dec, small_p2ot, small_scan, small_swav
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_deepclust import DEC
from sklearn_deepclust.metrics import cluster_accuracy, cluster_accuracy_scorer


def test_clone_keeps_parameters_and_drops_fitted_state(blobs):
    X, _ = blobs
    dec = small_dec(pretrain_epochs=2, max_epochs=2).fit(X)
    twin = clone(dec)
    assert twin.get_params() == dec.get_params()
    assert not hasattr(twin, "labels_")


ESTIMATORS = pytest.mark.parametrize(
    "make",
    [small_dec, small_scan, small_swav, small_p2ot],
    ids=["DEC", "SCAN", "SwAV", "P2OT"],
)


@ESTIMATORS
def test_pipeline_with_standard_scaler(blobs, make):
    X, y = blobs
    pipe = make_pipeline(StandardScaler(), make())
    labels = pipe.fit_predict(X * 50 + 3)
    assert cluster_accuracy(y, labels) >= 0.99
    assert pipe.transform(X).shape == (len(X), pipe[-1].embedding_dim)


@pytest.mark.parametrize(
    ("make", "grid"),
    [
        (small_dec, {"embedding_dim": [2, 4], "reconstruction_weight": [0.0, 10.0]}),
        (small_scan, {"n_neighbors": [5, 10], "self_label": [True, False]}),
        (small_swav, {"temperature": [0.1, 0.2], "n_views": [2, 3]}),
        (small_p2ot, {"kl_weight": [1.0, 2.0], "initial_mass": [0.1, 0.3]}),
    ],
    ids=["DEC", "SCAN", "SwAV", "P2OT"],
)
def test_grid_search_over_two_hyperparameters_in_parallel(blobs, make, grid):
    X, y = blobs
    search = GridSearchCV(make(), grid, scoring=cluster_accuracy_scorer, cv=2, n_jobs=2)
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_score_ >= 0.95
    assert cluster_accuracy(y, search.predict(X)) >= 0.95


@ESTIMATORS
def test_pickle_round_trip_then_predict(blobs, make):
    X, _ = blobs
    dec = make(max_epochs=3).fit(X)
    restored = pickle.loads(pickle.dumps(dec))
    np.testing.assert_array_equal(restored.predict(X), dec.predict(X))
    np.testing.assert_allclose(restored.transform(X), dec.transform(X))
    assert restored.device_ == torch.device("cpu")


def test_model_fitted_on_a_missing_gpu_loads_on_the_cpu(blobs):
    X, _ = blobs
    dec = small_dec(pretrain_epochs=2, max_epochs=2).fit(X)
    state = dec.__getstate__()
    state["device_"] = torch.device("cuda", 0)  # as if pickled on a GPU machine
    restored = DEC.__new__(DEC)
    if torch.cuda.is_available():
        pytest.skip("a GPU is present; the fallback is not exercised")
    with pytest.warns(UserWarning, match="loaded on the CPU"):
        restored.__setstate__(state)
    assert restored.device_ == torch.device("cpu")
    np.testing.assert_array_equal(restored.predict(X), dec.predict(X))


def test_a_gpu_module_parameter_unpickles_without_a_gpu(blobs, monkeypatch):
    """The user's ``module`` (e.g. ``module_.encoder`` of a GPU fit, as DEC's
    docstring suggests) is pickled with the estimator; where its device is
    absent it loads on the CPU instead of failing in torch.load."""
    import torch.serialization

    if torch.cuda.is_available():
        pytest.skip("a GPU is present; the fallback is not exercised")
    X, _ = blobs
    encoder = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 8), torch.nn.ReLU())
    dec = small_dec(module=encoder, pretrain_epochs=2, max_epochs=1).fit(X)
    with monkeypatch.context() as patch:  # every storage recorded as CUDA's
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        pickled = pickle.dumps(dec)
    restored = pickle.loads(pickled)
    assert next(restored.module.parameters()).device == torch.device("cpu")
    for before, after in zip(encoder.parameters(), restored.module.parameters()):
        torch.testing.assert_close(after, before)
    np.testing.assert_array_equal(restored.predict(X), dec.predict(X))


@ESTIMATORS
def test_pandas_in_pandas_out(blobs, make):
    X, _ = blobs
    frame = pd.DataFrame(X, columns=[f"feature_{i}" for i in range(X.shape[1])])
    dec = make(max_epochs=2).set_output(transform="pandas")
    embedding = dec.fit(frame).transform(frame)
    assert isinstance(embedding, pd.DataFrame)
    prefix = type(dec).__name__.lower()
    assert list(embedding.columns) == [f"{prefix}{i}" for i in range(dec.embedding_dim)]
    assert embedding.index.equals(frame.index)
    assert list(dec.feature_names_in_) == list(frame.columns)
    assert isinstance(dec.fit_transform(frame), pd.DataFrame)
    with pytest.warns(UserWarning, match="feature names"):
        dec.predict(X)


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 4.0]]), "Input X contains NaN"),
        (np.array([[0.0, np.inf], [1.0, 2.0], [3.0, 4.0]]), "Input X contains infinity"),
        (np.array([["a", "b"], ["c", "d"], ["e", "f"]]), "could not convert string to float"),
        (np.array([[1.0, 2.0]]), r"Found array with 1 sample\(s\)"),
        (np.ones((3, 2)), "n_clusters=4 is larger than the 3 samples given; use n_clusters <= 3"),
        (np.ones(5), "Expected 2D array, got 1D array"),
        (np.array([[0.0, 1e39], *np.ones((5, 2))]), "too large for float32"),
    ],
    ids=["nan", "inf", "strings", "one-sample", "too-many-clusters", "1d", "float32-overflow"],
)
@ESTIMATORS
def test_bad_input_is_rejected_with_a_clear_error(X, message, make):
    with pytest.raises(ValueError, match=message):
        make().fit(X)


def test_custom_module_with_wrong_input_width_is_rejected(blobs):
    X, _ = blobs
    wrong = torch.nn.Linear(7, 2)
    with pytest.raises(
        ValueError,
        match=r"encoder passed as `module` failed on a float32 batch of "
        r"shape \(batch, 5\).*with 5 inputs per row",
    ):
        small_dec(module=wrong).fit(X)


def test_custom_decoder_with_wrong_output_width_is_rejected(blobs):
    X, _ = blobs
    with pytest.raises(
        ValueError, match="decoder passed as `decoder` returns 3 features, but X has 5"
    ):
        small_dec(decoder=torch.nn.Linear(4, 3)).fit(X)


def test_predict_with_wrong_number_of_features_is_rejected(blobs):
    X, _ = blobs
    dec = small_dec(pretrain_epochs=1, max_epochs=1).fit(X)
    with pytest.raises(ValueError, match="X has 3 features, but DEC is expecting 5"):
        dec.predict(X[:, :3])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_clusters": 0}, "'n_clusters' parameter of DEC must be an int in the range"),
        ({"hidden_dims": (32, -1)}, "hidden_dims must be a sequence of positive integers"),
        ({"device": "nonsense"}, "device='nonsense' is not a torch device"),
        ({"lr": -1.0}, "'lr' parameter of DEC must be a float in the range"),
        ({"optimizer": int}, "optimizer must be a torch.optim.Optimizer subclass"),
    ],
)
def test_bad_parameters_are_rejected_at_fit(blobs, params, message):
    X, _ = blobs
    with pytest.raises(ValueError, match=message):
        small_dec(**params).fit(X)


def test_unavailable_gpu_is_rejected(blobs):
    X, _ = blobs
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last device
    with pytest.raises(ValueError, match=f"device='{missing}' was requested but this machine"):
        small_dec(device=missing).fit(X)


@ESTIMATORS
def test_batches_of_one_row_are_rejected(blobs, make):
    # Batch normalisation and in-batch contrasts need two rows per step.
    with pytest.raises(ValueError, match="'batch_size' parameter .* range \\[2, inf\\)"):
        make(batch_size=1).fit(blobs[0])
