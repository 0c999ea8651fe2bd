"""SwAVClustering and P2OT: their loss, codes, schedule, queue, and clusters recovered."""

import math

import numpy as np
import pytest
import torch
from _helpers import small_p2ot, small_swav
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import make_blobs
from sklearn.preprocessing import StandardScaler

from sklearn_deepclust.cluster import P2OT, progressive_mass, swapped_prediction_loss
from sklearn_deepclust.cluster._prototypes import (
    _FeatureQueue,
    _PrototypeNetwork,
    _SwappedPredictionLoss,
)
from sklearn_deepclust.metrics import cluster_accuracy
from sklearn_deepclust.nn import make_encoder
from sklearn_deepclust.ot import sinkhorn_log

BOTH = pytest.mark.parametrize("make", [small_swav, small_p2ot], ids=["SwAV", "P2OT"])


def _imbalanced_blobs(seed):
    X, y = make_blobs(
        n_samples=[300, 100, 40, 15], n_features=5, cluster_std=0.6, random_state=seed
    )
    return StandardScaler().fit_transform(X).astype(np.float32), y


def test_swapped_prediction_loss_equals_a_hand_computed_value():
    scores = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.5, 0.5], [0.2, 0.8]]])
    codes = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.7, 0.3], [0.0, 0.0]]])
    log_p = torch.log_softmax(scores / 0.5, dim=-1)
    # View 0 predicts view 1's codes (its second row carries no mass) and back.
    expected = -((codes[1] * log_p[0]).sum() + (codes[0] * log_p[1]).sum()) / (1.0 + 2.0)
    loss = swapped_prediction_loss(scores, codes, temperature=0.5)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_rows_without_transported_mass_do_not_teach_the_network():
    scores = torch.randn(2, 4, 3, requires_grad=True)
    codes = torch.softmax(torch.randn(2, 4, 3), dim=-1)
    codes[:, 2] = 0.0  # row 2 left out of the transport in both views
    swapped_prediction_loss(scores, codes, temperature=0.1).backward()
    assert torch.all(scores.grad[:, 2] == 0)
    assert torch.all(scores.grad[:, [0, 1, 3]].abs().sum(dim=-1) > 0)


@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.01, 1.0))
def test_progressive_mass_grows_from_the_initial_mass_to_one(t1, t2, initial):
    low, high = sorted((t1, t2))
    assert initial <= progressive_mass(low, initial) <= progressive_mass(high, initial) <= 1.0
    assert progressive_mass(1.0, initial) == pytest.approx(1.0)
    assert progressive_mass(0.0, initial) == pytest.approx(
        initial + (1 - initial) * math.exp(-5), rel=1e-9
    )


def test_queue_keeps_the_newest_rows_and_is_used_only_when_full():
    queue = _FeatureQueue(length=5, n_sources=2, dim=3, device="cpu")
    batches = [torch.full((2, 2, 3), float(i)) for i in range(3)]
    queue.push(batches[0])
    queue.push(batches[1])
    assert not queue.ready
    queue.push(batches[2])
    assert queue.ready
    assert queue.features[0, :, 0].tolist() == [2.0, 2.0, 1.0, 1.0, 0.0]
    empty = _FeatureQueue(length=0, n_sources=2, dim=3, device="cpu")
    empty.push(batches[0])
    assert not empty.ready


def _recording_loss(codes_from, queue_length):
    torch.manual_seed(0)
    network = _PrototypeNetwork(make_encoder(4, (8,), 6), 6, 5, n_clusters=3)
    n_sources = 1 if codes_from == "clean" else 2
    queue = _FeatureQueue(length=queue_length, n_sources=n_sources, dim=5, device="cpu")
    calls = []

    def codes(scores, progress):
        calls.append((scores.shape[0], progress))
        return torch.softmax(scores, dim=1)

    loss = _SwappedPredictionLoss(network, codes, 0.1, 2, codes_from, total_steps=4, queue=queue)
    return network, loss, calls


def test_codes_are_solved_over_the_batch_and_the_queue():
    network, loss, calls = _recording_loss("views", queue_length=10)
    for _ in range(3):
        x = torch.randn(8, 4)
        loss(network(torch.cat([x, x + 0.1])), None, x)
    # 8 rows per step and view: the queue of 10 is full after two steps.
    assert [size for size, _ in calls] == [8, 8, 8, 8, 18, 18]
    assert [progress for _, progress in calls] == [0, 0, 0.25, 0.25, 0.5, 0.5]


def test_clean_codes_are_the_targets_of_every_view():
    network, loss, calls = _recording_loss("clean", queue_length=0)
    x = torch.randn(8, 4)
    scores, projections = network(torch.cat([x, x + 0.1, x - 0.1]))
    value = loss((scores, projections), None, x)
    assert [size for size, _ in calls] == [8]  # one transport, on the clean rows
    chunks = scores.unflatten(0, (3, 8))
    codes = torch.softmax(chunks[0], dim=1).detach()[None]
    expected = swapped_prediction_loss(chunks, codes, 0.1, pairs=[(1, 0), (2, 0)])
    torch.testing.assert_close(value, expected)


def test_swapping_codes_needs_two_views(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="needs n_views >= 2"):
        small_swav(n_views=1, codes_from="views").fit(X)
    assert small_p2ot(n_views=1, max_epochs=2).fit(X).labels_.shape == (len(X),)


def test_queue_length_auto_follows_the_rows_per_cluster():
    assert small_swav(n_clusters=30, batch_size=256)._queue_length(10_000) == 16 * 30 - 256
    assert small_swav(n_clusters=10, batch_size=256)._queue_length(10_000) == 0
    assert small_swav(n_clusters=30, queue_length=7)._queue_length(10_000) == 7
    # Small data: the batch is the data set's size at most, the queue the rest of an epoch.
    assert small_swav(n_clusters=30, batch_size=256)._queue_length(300) == 300 - 256
    assert small_swav(n_clusters=30, batch_size=256)._queue_length(100) == 0


def test_swav_codes_are_balanced_sinkhorn_codes():
    torch.manual_seed(0)
    scores = torch.nn.functional.normalize(torch.randn(64, 4), dim=1)
    swav = small_swav(epsilon=0.05, sinkhorn_iters=3)
    codes = swav._codes(scores, 0.3)
    torch.testing.assert_close(codes, sinkhorn_log(scores, 0.05, 3).exp() * 64)
    torch.testing.assert_close(codes.sum(dim=1), torch.ones(64))


def test_p2ot_codes_transport_the_scheduled_mass():
    torch.manual_seed(0)
    scores = torch.nn.functional.normalize(torch.randn(200, 4), dim=1)
    p2ot = small_p2ot(initial_mass=0.2, sinkhorn_iters=1000)  # converged
    for progress in (0.0, 0.5, 1.0):
        codes = p2ot._codes(scores, progress)
        mass = progressive_mass(progress, 0.2)
        assert codes.sum().item() / 200 == pytest.approx(mass, rel=1e-3)
        assert torch.all(codes.sum(dim=1) <= 1 + 1e-5)


def test_prototypes_are_frozen_in_the_first_epochs(blobs):
    X, _ = blobs
    start = small_swav(max_epochs=0).fit(X).module_.prototypes.detach()
    frozen = small_swav(max_epochs=1, freeze_prototypes_epochs=1).fit(X)
    moved = small_swav(max_epochs=1, freeze_prototypes_epochs=0).fit(X)
    torch.testing.assert_close(frozen.module_.prototypes.detach(), start)
    assert not torch.allclose(moved.module_.prototypes.detach(), start)
    assert not frozen.module_.prototypes_frozen  # released for inference and refits


@BOTH
def test_kmeans_prototypes_start_at_the_mean_projection_of_kmeans_clusters(make, blobs):
    from sklearn.cluster import KMeans

    X, y = blobs
    model = make(pretext="none", prototype_init="kmeans", max_epochs=0, random_state=0).fit(X)
    network = model.module_
    with torch.no_grad():
        projections = network.project(network.encoder(torch.as_tensor(X))).numpy()
    prototypes = network.prototypes.detach().numpy()
    np.testing.assert_allclose(np.linalg.norm(prototypes, axis=1), 1.0, rtol=1e-5)
    # Each prototype is the normalised mean projection of one k-means cluster of the inputs.
    labels = KMeans(4, n_init=3, random_state=0).fit_predict(X)
    for k in range(4):
        mean = projections[labels == k].mean(axis=0)
        assert np.max(prototypes @ mean / np.linalg.norm(mean)) == pytest.approx(1.0, abs=1e-5)
    # Without any training the clusters are already those of the blobs (up to
    # a border row or two: the projector is still random).
    assert cluster_accuracy(y, model.predict(X)) >= 0.99


def test_swav_recovers_separated_blobs(blobs):
    X, y = blobs
    assert cluster_accuracy(y, small_swav().fit(X).labels_) >= 0.95


def test_p2ot_recovers_imbalanced_blobs():
    """Blobs of 300, 100, 40 and 15 rows: the sizes follow the data.

    (On balanced blobs its soft sizes let it merge two blobs for some seeds;
    the user guide says so.)
    """
    for seed in range(3):
        X, y = _imbalanced_blobs(seed)
        p2ot = small_p2ot(random_state=seed, corruption_rate=0.3).fit(X)
        assert cluster_accuracy(y, p2ot.labels_) >= 0.95, seed


def test_p2ot_beats_swav_on_imbalanced_blobs():
    """Equipartition splits the large blob; P2OT's relaxed sizes follow it."""
    p2ot, swav = [], []
    for seed in range(3):
        X, y = _imbalanced_blobs(seed)
        p2ot.append(cluster_accuracy(y, small_p2ot(random_state=seed).fit(X).labels_))
        swav.append(cluster_accuracy(y, small_swav(random_state=seed).fit(X).labels_))
    assert np.mean(p2ot) >= np.mean(swav) + 0.05, (p2ot, swav)


@BOTH
def test_fitted_attributes_and_outputs(blobs, make):
    X, _ = blobs
    model = make(max_epochs=3, n_views=3).fit(X)
    assert model.labels_.shape == (len(X),)
    assert model.transform(X).shape == (len(X), 8)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(axis=1), model.predict(X))
    assert model.n_iter_ == 3 == len(model.history_["cluster"])
    assert math.isfinite(model.score(X))


@BOTH
def test_same_seed_same_labels_on_cpu(blobs, make):
    X, _ = blobs
    first = make(max_epochs=5, random_state=3).fit(X)
    second = make(max_epochs=5, random_state=3).fit(X)
    np.testing.assert_array_equal(first.labels_, second.labels_)


@BOTH
def test_training_does_not_read_the_device_once_per_batch(blobs, make, host_reads):
    X, _ = blobs

    def count_reads(batch_size):
        for name in host_reads:
            host_reads[name] = 0
        make(
            pretext_epochs=2,
            max_epochs=3,
            batch_size=batch_size,
            queue_length=16,
            optimizer=torch.optim.SGD,  # Adam reads its CPU step counter
        ).fit(X)
        return dict(host_reads)

    few, many = count_reads(200), count_reads(8)  # 2 vs 50 batches per epoch
    assert few == many


@pytest.mark.parametrize("n_samples, batch_size", [(9, 8), (16, 8), (17, 8)])
def test_mass_schedule_spans_the_steps_the_batches_make(monkeypatch, n_samples, batch_size):
    # 9 rows in batches of 8 make one step per epoch, not two: a lone last
    # row joins the batch before it. Counted as two, the schedule would stop
    # at half way and the mass would never reach 1.
    seen = []
    codes = P2OT._codes

    def recording(self, scores, progress):
        seen.append(progress)
        return codes(self, scores, progress)

    monkeypatch.setattr(P2OT, "_codes", recording)
    X = np.random.default_rng(0).normal(size=(n_samples, 3)).astype(np.float32)
    small_p2ot(n_clusters=2, pretext="none", max_epochs=4, batch_size=batch_size).fit(X)
    steps = 4 * -(-(n_samples - 1) // batch_size)  # ceil((n - 1) / batch) steps per epoch
    assert seen == pytest.approx([step / steps for step in range(steps)])


def test_kl_weight_falls_linearly_to_its_final_value(monkeypatch):
    import sklearn_deepclust.cluster._p2ot as p2ot_module

    weights = []
    solve = p2ot_module.relaxed_partial_sinkhorn_log

    def recording(*args, kl_weight, **kwargs):
        weights.append(kl_weight)
        return solve(*args, kl_weight=kl_weight, **kwargs)

    monkeypatch.setattr(p2ot_module, "relaxed_partial_sinkhorn_log", recording)
    X = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    options = dict(n_clusters=2, pretext="none", max_epochs=4, batch_size=32, kl_weight=2.0)
    small_p2ot(**options, final_kl_weight=0.5).fit(X)
    assert weights == pytest.approx([2.0, 1.625, 1.25, 0.875])  # progress 0, 1/4, 2/4, 3/4
    weights.clear()
    small_p2ot(**options, final_kl_weight=None).fit(X)
    assert weights == [2.0] * 4
