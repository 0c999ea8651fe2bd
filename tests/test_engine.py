"""The training engine: batching on the device, per-sample state, stopping, syncs."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from sklearn_deepclust._engine import (
    ConvergenceReached,
    DeviceBatchIterator,
    IndexedTensorDataset,
    RefreshEveryNBatches,
    StepBudget,
    batched_forward,
    n_batches,
    train_phase,
)
from sklearn_deepclust.nn import Autoencoder, ReconstructionLoss, mlp


def test_batches_cover_every_sample_once_in_a_seeded_order():
    dataset = IndexedTensorDataset(torch.arange(23.0).reshape(23, 1))

    def epoch(seed):
        generator = torch.Generator().manual_seed(seed)
        batches = list(
            DeviceBatchIterator(dataset, batch_size=5, shuffle=True, generator=generator)
        )
        return batches

    batches = epoch(0)
    assert [len(index) for _, index in batches] == [5, 5, 5, 5, 3]
    order = torch.cat([index for _, index in batches])
    assert sorted(order.tolist()) == list(range(23))
    assert order.tolist() != list(range(23))
    for x, index in batches:  # each batch carries the rows of its indices
        torch.testing.assert_close(x[:, 0], index.float())
    assert torch.equal(order, torch.cat([i for _, i in epoch(0)]))
    assert len(DeviceBatchIterator(dataset, batch_size=5)) == 5


@pytest.mark.parametrize(
    "n_samples, sizes", [(21, [5, 5, 5, 6]), (1, [1]), (6, [6]), (5, [5]), (11, [5, 6])]
)
def test_a_lone_last_row_joins_the_batch_before_it(n_samples, sizes):
    # Batch normalisation cannot train on one row: no batch has one unless
    # the data set does.
    dataset = IndexedTensorDataset(torch.arange(float(n_samples)).reshape(n_samples, 1))
    iterator = DeviceBatchIterator(dataset, batch_size=5)
    batches = [index.tolist() for _, index in iterator]
    assert [len(batch) for batch in batches] == sizes == [len(b) for b in batches]
    assert len(iterator) == len(sizes)
    assert sum(batches, []) == list(range(n_samples))


def test_batched_forward_equals_one_big_forward():
    net = mlp((4, 8, 3))
    X = torch.randn(50, 4)
    torch.testing.assert_close(batched_forward(net, X, batch_size=7), net(X).detach())


def _train(module, loss, X, **kwargs):
    """``train_phase`` with small defaults, overridable one by one."""
    defaults = dict(
        max_epochs=4,
        batch_size=8,
        optimizer=torch.optim.Adam,
        lr=1e-2,
        device=torch.device("cpu"),
        seed=0,
    )
    return train_phase(module, loss, X, **{**defaults, **kwargs})


def _autoencoder_phase(X, **kwargs):
    autoencoder = Autoencoder(mlp((3, 8, 2)), mlp((2, 8, 3)))
    return _train(autoencoder, ReconstructionLoss(), X, **kwargs)


def test_one_loss_per_epoch_and_no_batch_records():
    history = _autoencoder_phase(torch.randn(40, 3))
    assert len(history) == 4
    # skorch opens an empty record per batch; nothing is written into it.
    assert all(batch == {} for row in history for batch in row["batches"])
    assert np.isfinite(history[:, "train_loss"]).all()


def test_refresh_runs_at_start_and_every_n_batches():
    calls = []
    refresh = RefreshEveryNBatches(lambda net: calls.append(len(net.history)), n_batches=3)
    _autoencoder_phase(torch.randn(40, 3), callbacks=[refresh])  # 5 batches x 4 epochs
    # Before training, then before batches 4, 7, ..., 19: 1 + 6 calls.
    assert len(calls) == 7


def test_convergence_reached_ends_the_phase_cleanly():
    def stop_on_second_call(net, seen=[]):  # noqa: B006 - call counter
        seen.append(1)
        if len(seen) == 2:
            raise ConvergenceReached

    history = _autoencoder_phase(
        torch.randn(40, 3),
        max_epochs=50,
        callbacks=[RefreshEveryNBatches(stop_on_second_call, n_batches=5)],
    )
    assert len(history) == 1  # stopped as epoch 2 began: its empty row is dropped


def test_training_loop_synchronises_once_per_epoch_not_per_batch(host_reads):
    # SGD: Adam reads its step counter with .item(), a CPU scalar that never
    # waits for an accelerator; the engine itself must not read anything.
    _autoencoder_phase(
        torch.randn(64, 3),
        max_epochs=3,
        batch_size=4,  # 48 batches
        optimizer=torch.optim.SGD,
    )
    assert host_reads == {"item": 3, "cpu": 0, "tolist": 0, "numpy": 0, "__float__": 0}


class _Exploding(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float("inf")))

    def forward(self, x):
        return x * self.scale


def test_non_finite_loss_raises_with_advice():
    with pytest.raises(
        ValueError,
        match=r"loss became (nan|inf) at epoch 1 of the "
        r"'pretrain' phase. Scale the input",
    ):
        _train(
            _Exploding(),
            ReconstructionLoss(),
            torch.randn(10, 3),
            max_epochs=2,
            batch_size=4,
            optimizer=torch.optim.SGD,
            lr=0.1,
            phase="pretrain",
        )


def test_host_reads_do_not_grow_with_the_number_of_batches(blobs, host_reads):
    """A whole DEC fit reads from the device per epoch and per refresh, never per batch."""
    from sklearn_deepclust import DEC

    X, _ = blobs
    reads = host_reads

    def count_reads(batch_size):
        for name in reads:
            reads[name] = 0
        n_batches = -(-len(X) // batch_size)
        DEC(
            n_clusters=4,
            hidden_dims=(16,),
            embedding_dim=3,
            pretrain_epochs=2,
            max_epochs=3,
            tol=0.0,
            update_interval=n_batches,  # one refresh per epoch in both runs
            batch_size=batch_size,
            optimizer=torch.optim.SGD,  # Adam reads its CPU step counter
            random_state=0,
        ).fit(X)
        return dict(reads)

    few, many = count_reads(200), count_reads(8)  # 2 vs 50 batches per epoch
    assert few == many
    assert sum(many.values()) < 20


def test_batch_inputs_build_the_module_input_from_batch_and_indices():
    X = torch.arange(12.0).reshape(12, 1)
    seen = []

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(1))

        def forward(self, inputs):
            seen.append(inputs.detach().clone())
            return inputs * self.weight

    class Loss(nn.Module):
        def forward(self, output, index, x):
            assert output.shape[0] == 2 * x.shape[0]
            return output.square().mean()

    def pair_with_index(x, index):
        return torch.cat([x, index.float()[:, None] + 100])

    _train(Recorder(), Loss(), X, max_epochs=1, batch_size=5, lr=0.0, batch_inputs=pair_with_index)
    assert len(seen) == 3
    for inputs in seen:
        half = inputs.shape[0] // 2
        torch.testing.assert_close(inputs[half:], inputs[:half] + 100)


@given(
    n_samples=st.integers(2, 200_000),
    batch_size=st.integers(2, 1024),
    epochs=st.integers(1, 300),
    min_steps=st.integers(1, 1000),
    extra_steps=st.integers(0, 5000),
)
def test_step_budget_runs_its_epochs_within_the_step_bounds(
    n_samples, batch_size, epochs, min_steps, extra_steps
):
    budget = StepBudget(epochs, min_steps, min_steps + extra_steps)
    n_epochs = budget.n_epochs(n_samples, batch_size)
    steps = n_epochs * n_batches(n_samples, batch_size)
    batches = n_batches(n_samples, batch_size)
    wanted = min(max(epochs * batches, budget.min_steps), budget.max_steps)
    # Whole epochs: the fewest that reach the wanted steps, at least one.
    assert n_epochs >= 1
    assert steps >= wanted or n_epochs == 1 and batches >= wanted
    assert (n_epochs - 1) * batches < wanted or n_epochs == 1


def test_step_budget_examples_from_the_docstrings():
    # SCAN's clustering budget: 300 steps on 150 rows, 100 epochs on 1,797
    # rows (8 batches), capped at 2,000 steps on 20,000 rows.
    budget = StepBudget(100, 300, 2000)
    assert budget.n_epochs(150, 256) == 300
    assert budget.n_epochs(1797, 256) == 100
    assert budget.n_epochs(20_000, 256) == 26  # 79 batches: 2,054 steps


def test_auto_epochs_only_where_a_budget_defines_them():
    """ "auto" is accepted by the estimators with step budgets and refused, in
    scikit-learn's words, by those without (PBN's and GMMGCD's max_epochs)."""
    from sklearn.utils._param_validation import InvalidParameterError

    from sklearn_deepclust import DEC, P2OT, SCAN, SwAVClustering
    from sklearn_deepclust.discovery import GMMGCD, PBN

    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.r_[np.zeros(5, int), np.ones(5, int), -np.ones(10, int)]
    for estimator in (DEC, SCAN, SwAVClustering, P2OT):
        assert estimator().get_params()["max_epochs"] == "auto"
    for estimator in (PBN, GMMGCD):
        with pytest.raises(InvalidParameterError, match="max_epochs"):
            estimator(max_epochs="auto").fit(X, y)
