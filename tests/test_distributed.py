"""Training on several processes: two gloo workers make the model of one.

Each worker fits the estimator on its own half of the rows, inside an
initialised ``torch.distributed`` process group (what ``torchrun`` sets up on
several devices or hosts). The engine averages the gradients over the
workers at every step and the optimal-transport codes reduce their marginals
over them, so that two workers with batches of B rows take the steps of one
process with batches of 2 B rows: the same model, to float tolerance.
"""

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from _helpers import free_port, join_gloo_group
from sklearn.datasets import make_blobs

from sklearn_deepclust import DEC, P2OT, SwAVClustering
from sklearn_deepclust.pretext import RandomViews

N_ROWS = 120


def _data():
    X, _ = make_blobs(n_samples=N_ROWS, centers=3, n_features=6, random_state=0)
    return X.astype(np.float32)


# One batch per epoch holds every row (the whole shard on a worker), so the
# order of the rows inside a batch is all that can differ between the runs.
# Views without corruption: random corruption of a row would draw different
# random numbers on a worker than in the single process.
OT_SETTINGS = dict(
    hidden_dims=(16,),
    embedding_dim=8,
    projection_dim=8,
    pretext="none",
    corruption_rate=0.0,
    queue_length=0,
    max_epochs=8,
    random_state=0,
)
ESTIMATORS = {
    "swav": lambda batch_size: SwAVClustering(3, batch_size=batch_size, **OT_SETTINGS),
    # Random prototypes: k-means prototypes come from each process's own
    # shard (test below), which one process on all rows cannot reproduce.
    "p2ot": lambda batch_size: P2OT(
        3, batch_size=batch_size, prototype_init="random", **OT_SETTINGS
    ),
    # DEC's autoencoder pretraining: a plain mean-over-rows loss.
    "dec-pretraining": lambda batch_size: DEC(
        3,
        hidden_dims=(16,),
        embedding_dim=2,
        pretrain_epochs=8,
        max_epochs=0,
        batch_size=batch_size,
        random_state=0,
    ),
}
# Initialised from each process's shard; process 0's start is broadcast.
SHARD_INITIALISED = {
    "p2ot-kmeans": lambda batch_size: P2OT(
        3, batch_size=batch_size, prototype_init="kmeans", **OT_SETTINGS
    ),
}
# DEC through its clustering phase, whose stopping rule ends it early.
SYNCED_DEC = dict(
    hidden_dims=(16,),
    embedding_dim=2,
    pretrain_epochs=5,
    max_epochs=20,
    tol=0.01,
    update_interval=1,
    batch_size=20,
    random_state=0,
)


def _losses(model):
    """Epoch losses of the last phase that trained."""
    trained = [h for h in model.history_.values() if len(h)]
    return trained[-1][:, "train_loss"]


def _shorter(name):
    """The same estimator stopped after one epoch."""
    epochs = {"pretrain_epochs": 1} if name.startswith("dec") else {"max_epochs": 1}
    return ESTIMATORS[name](N_ROWS).set_params(**epochs)


def _worker(rank, world_size, port, name, out):
    """Fit ``name`` on this process's shard; leave its weights (and more) in ``out``."""
    join_gloo_group(rank, world_size, port)
    try:
        shard = np.array_split(_data(), world_size)[rank]
        if name == "dec":
            model = DEC(3, **SYNCED_DEC).fit(shard)
            out[f"epochs{rank}"] = len(model.history_["cluster"])
        else:
            model = {**ESTIMATORS, **SHARD_INITIALISED}[name](len(shard)).fit(shard)
            out[f"loss{rank}"] = _losses(model)
        out[rank] = {k: v.clone() for k, v in model.module_.state_dict().items()}
    finally:
        torch.distributed.destroy_process_group()


def _fit_on_two_workers(name):
    """What :func:`_worker` leaves after fitting ``name`` on two ``gloo`` processes."""
    out = mp.Manager().dict()
    mp.spawn(_worker, args=(2, free_port(), name, out), nprocs=2, join=True)
    return out


def _assert_workers_hold_the_same_weights(out):
    for key, value in out[0].items():
        torch.testing.assert_close(out[1][key], value, rtol=1e-5, atol=1e-6, msg=key)


def test_dec_workers_start_from_the_same_centroids_and_stop_together():
    """k-means runs on each shard; the clustering phase starts from process
    0's centroids, and the stopping rule counts the label changes of all
    shards, so that no process waits for another that stopped."""
    out = _fit_on_two_workers("dec")
    assert out["epochs0"] == out["epochs1"] < 20  # stopped early, together
    _assert_workers_hold_the_same_weights(out)


def test_p2ot_workers_start_from_the_kmeans_prototypes_of_process_zero():
    """Each process runs k-means on its own shard; training starts from
    process 0's prototypes, so that the workers end with the same model."""
    _assert_workers_hold_the_same_weights(_fit_on_two_workers("p2ot-kmeans"))


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_two_gloo_workers_train_the_model_of_one_process(name):
    out = _fit_on_two_workers(name)
    single = ESTIMATORS[name](N_ROWS).fit(_data())
    expected = single.module_.state_dict()
    if name.startswith("dec"):
        # k-means in the embedding after pretraining runs on each shard.
        expected = {k: v for k, v in expected.items() if k != "centroids"}
    assert set(expected) <= set(out[0])
    for key, value in expected.items():
        torch.testing.assert_close(out[0][key], value, rtol=1e-4, atol=1e-5, msg=key)
        torch.testing.assert_close(out[1][key], value, rtol=1e-4, atol=1e-5, msg=key)
    # Both workers record the loss over all rows: the single process's loss.
    losses = _losses(single)
    np.testing.assert_allclose(out["loss0"], losses, rtol=1e-4)
    np.testing.assert_allclose(out["loss1"], losses, rtol=1e-4)
    # The weights moved over the epochs: not two identical initialisations.
    early = _shorter(name).fit(_data()).module_.state_dict()
    assert any(not torch.allclose(early[key], value) for key, value in expected.items())


def _views_worker(rank, world_size, port, out):
    """Draw the first views of a batch of zeros on this process."""
    join_gloo_group(rank, world_size, port)
    try:
        out[rank] = _first_views()
    finally:
        torch.distributed.destroy_process_group()


def _first_views():
    def noise(x, generator):
        return x + torch.rand(x.shape, generator=generator)

    return RandomViews(noise, 2, seed=0, device="cpu")(torch.zeros(4, 3), torch.arange(4))


def test_each_worker_draws_its_own_views():
    """Workers seeded alike draw independent views (as one process draws
    different views for different rows); the first draws what one process
    draws, so that a single process is unchanged."""
    out = mp.Manager().dict()
    mp.spawn(_views_worker, args=(2, free_port(), out), nprocs=2, join=True)
    torch.testing.assert_close(out[0], _first_views())
    assert not torch.allclose(out[1], out[0])
    assert out[1].min() >= 0 and out[1].max() < 1  # still the view's own distribution
