"""CUDA-only checks; skipped where no GPU is present (run them on a lent device).

They cover what the CPU suite cannot: the on-device shuffling generator, the
seeded fork of the CUDA RNG, no host synchronisation during training (torch's
sync debug mode turns any into an error), and a model pickled on the GPU that
loads on a machine without one.
"""

import pickle
import subprocess
import sys

import _helpers
import numpy as np
import pytest
import torch

from sklearn_deepclust.metrics import cluster_accuracy

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def small_dec(**params):
    return _helpers.small_dec(
        **{"pretrain_epochs": 60, "max_epochs": 30, "device": "cuda", **params}
    )


def test_dec_on_gpu_recovers_blobs_and_keeps_the_model_there(blobs):
    X, y = blobs
    dec = small_dec(reconstruction_weight=10.0).fit(X)
    assert cluster_accuracy(y, dec.labels_) >= 0.99
    assert next(dec.module_.parameters()).is_cuda
    assert dec.device_.type == "cuda"


def test_host_synchronisations_do_not_grow_with_the_number_of_batches(blobs):
    import warnings

    from sklearn_deepclust._engine import train_phase
    from sklearn_deepclust.nn import Autoencoder, ReconstructionLoss, mlp

    X = torch.from_numpy(blobs[0]).cuda()

    def synchronisations(batch_size):
        autoencoder = Autoencoder(mlp((5, 16, 2)), mlp((2, 16, 5))).cuda()
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                train_phase(
                    autoencoder,
                    ReconstructionLoss(),
                    X,
                    max_epochs=2,
                    batch_size=batch_size,
                    optimizer=torch.optim.SGD,
                    lr=0.01,
                    device=X.device,
                    seed=0,
                )
        finally:
            torch.cuda.set_sync_debug_mode(0)
        return sum("synchroniz" in str(w.message) for w in caught)

    assert synchronisations(200) == synchronisations(8)  # 2 vs 50 batches per epoch


def _assert_loads_on_the_cpu(model, X, tmp_path):
    """Pickle a GPU model; a process without CUDA loads it and predicts the same."""
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "labels.npy", model.predict(X))
    script = (
        "import pickle, warnings, numpy as np, torch; assert not torch.cuda.is_available();"
        f"model = pickle.loads(open({str(path)!r}, 'rb').read());"
        f"X = np.load({str(tmp_path / 'X.npy')!r});"
        f"expected = np.load({str(tmp_path / 'labels.npy')!r});"
        "assert model.device_.type == 'cpu';"
        "assert (model.predict(X) == expected).mean() > 0.99"
    )
    env = {"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "loaded on the CPU" in result.stderr


def test_gpu_model_unpickles_on_a_machine_without_gpu(blobs, tmp_path):
    X, _ = blobs
    _assert_loads_on_the_cpu(small_dec(pretrain_epochs=5, max_epochs=2).fit(X), X, tmp_path)


def test_gpu_model_with_a_gpu_module_parameter_unpickles_without_gpu(blobs, tmp_path):
    X, _ = blobs
    encoder = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 8), torch.nn.ReLU()).cuda()
    model = small_dec(module=encoder, pretrain_epochs=5, max_epochs=2).fit(X)
    _assert_loads_on_the_cpu(model, X, tmp_path)


def _synchronisations_during_fit(model, X, y=None):
    """Number of host synchronisations torch's sync debug mode reports during ``fit``."""
    import warnings

    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(X) if y is None else model.fit(X, y)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def test_scan_on_gpu_recovers_blobs_without_per_batch_synchronisation(blobs):
    X, y = blobs
    scan = _helpers.small_scan(device="cuda")
    synchronisations = _synchronisations_during_fit(scan, X)
    # Per epoch: one loss read; per fit: mining, head choice, thresholds.
    n_epochs = sum(len(h) for h in scan.history_.values())
    assert synchronisations < n_epochs + 40
    assert cluster_accuracy(y, scan.labels_) >= 0.95
    assert next(scan.module_.parameters()).is_cuda


@pytest.mark.parametrize("make", ["small_swav", "small_p2ot"])
def test_ot_clusterers_on_gpu_without_per_batch_synchronisation(blobs, make):
    X, y = blobs
    model = getattr(_helpers, make)(device="cuda", batch_size=32)  # 13 batches per epoch
    synchronisations = _synchronisations_during_fit(model, X)
    n_epochs = sum(len(h) for h in model.history_.values())
    assert synchronisations < n_epochs + 20  # one loss read per epoch, a few per fit
    # At least three of the four blobs (P2OT's soft sizes may merge two; GPU
    # reductions are not bit-identical to the CPU runs the seeds were checked on).
    assert cluster_accuracy(y, model.labels_) >= 0.7
    assert model.module_.prototypes.is_cuda


def _discovery_model(make, **params):
    """A small PBN or GMMGCD on the GPU, told that two of the four blobs are novel."""
    n_novel = {"n_clusters": 4} if make == "small_gmmgcd" else {"n_novel_clusters": 2}
    return getattr(_helpers, make)(device="cuda", **n_novel, **params)


@pytest.mark.parametrize("make", ["small_pbn", "small_gmmgcd"])
def test_discovery_on_gpu_without_per_batch_synchronisation(blobs, make):
    X, y = blobs
    y_partial = np.where(y < 2, y, -1)
    counts = {}
    for epochs in (20, 40):  # 7 batches of 64 per epoch
        model = _discovery_model(make, max_epochs=epochs)
        counts[epochs] = _synchronisations_during_fit(model, X, y_partial)
    # Twenty more epochs add one loss read each (k-means and EM after
    # training read once per iteration, whatever the number of epochs);
    # a read per batch would add 140.
    assert counts[40] - counts[20] <= 20 + 10
    known = y < 2
    assert np.mean(model.labels_[known] == y[known]) >= 0.95
    assert cluster_accuracy(y[~known], model.predict_novel(X[~known])) >= 0.9
    assert model.device_.type == "cuda"


@pytest.mark.parametrize("make", ["small_pbn", "small_gmmgcd"])
def test_discovery_model_fitted_on_gpu_unpickles_on_the_cpu(blobs, make, tmp_path):
    X, y = blobs
    model = _discovery_model(make).fit(X, np.where(y < 2, y, -1))
    _assert_loads_on_the_cpu(model, X, tmp_path)
