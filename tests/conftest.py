import numpy as np
import pytest
import torch
from hypothesis import settings

# Two CPU cores are shared by the pytest-xdist workers: one torch thread each.
torch.set_num_threads(1)

# No per-example time limit: on shared machines hypothesis's 200 ms deadline
# fails tests for the load of others, not for anything the code does.
settings.register_profile("shared-machine", deadline=None)
settings.load_profile("shared-machine")


@pytest.fixture
def blobs():
    """Four well-separated, standardised gaussian blobs in 5 dimensions."""
    from sklearn.datasets import make_blobs
    from sklearn.preprocessing import StandardScaler

    X, y = make_blobs(n_samples=400, n_features=5, centers=4, cluster_std=0.6, random_state=0)
    return StandardScaler().fit_transform(X).astype(np.float32), y


@pytest.fixture
def host_reads(monkeypatch):
    """Counts of the tensor methods that copy device data to the host."""
    reads = {"item": 0, "cpu": 0, "tolist": 0, "numpy": 0, "__float__": 0}
    for name in reads:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            reads[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return reads
