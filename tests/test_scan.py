"""SCAN: its loss against hand computation, its phases, and blobs recovered."""

import math
from functools import partial

import numpy as np
import pytest
import torch
from _helpers import seeded_module, small_scan
from sklearn.datasets import make_blobs
from torch import nn

from sklearn_deepclust import SCAN
from sklearn_deepclust.cluster import scan_loss, self_label_thresholds
from sklearn_deepclust.cluster._scan import _dataset_scan_loss, _SelfLabelLoss
from sklearn_deepclust.metrics import cluster_accuracy
from sklearn_deepclust.neighbors import mine_neighbors, neighbor_purity


def test_scan_loss_equals_a_hand_computed_value():
    anchors = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    neighbors = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    softmax = lambda row: np.exp(row) / np.exp(row).sum()  # noqa: E731
    p = [softmax(np.array(r)) for r in anchors.tolist()]
    q = [softmax(np.array(r)) for r in neighbors.tolist()]
    consistency = -(math.log(p[0] @ q[0]) + math.log(p[1] @ q[1])) / 2
    mean = (p[0] + p[1]) / 2
    entropy = -(mean * np.log(mean)).sum()
    expected = consistency - 5.0 * entropy
    assert scan_loss(anchors, neighbors).item() == pytest.approx(expected, rel=1e-6)
    assert scan_loss(anchors, neighbors, entropy_weight=0).item() == pytest.approx(
        consistency, rel=1e-6
    )


def test_scan_loss_is_computed_per_head_and_stays_finite_when_heads_disagree():
    torch.manual_seed(0)
    anchors, neighbors = torch.randn(3, 16, 5), torch.randn(3, 16, 5)
    per_head = scan_loss(anchors, neighbors)
    assert per_head.shape == (3,)
    for h in range(3):
        torch.testing.assert_close(per_head[h], scan_loss(anchors[h], neighbors[h]))
    sure = torch.tensor([[200.0, -200.0]])
    assert torch.isfinite(scan_loss(sure, sure.flip(1)))  # probabilities ~0 overlap


def test_dataset_loss_averages_over_every_neighbour_pair():
    torch.manual_seed(0)
    log_proba = torch.log_softmax(torch.randn(2, 30, 4), dim=-1)
    neighbors = torch.randint(30, (30, 5))
    expected = []
    for head in log_proba:
        pairs = [(i, int(j)) for i in range(30) for j in neighbors[i]]
        logits_a = head[[i for i, _ in pairs]]
        logits_n = head[[j for _, j in pairs]]
        consistency = scan_loss(logits_a, logits_n, entropy_weight=0)
        mean = head.exp().mean(0)
        expected.append(consistency + 5.0 * (mean * mean.log()).sum())
    torch.testing.assert_close(
        _dataset_scan_loss(log_proba, neighbors, 5.0, chunk_size=7), torch.stack(expected)
    )


def test_self_label_loss_weights_confident_rows_by_inverse_class_frequency():
    clean = torch.tensor([[9.0, 0.0], [9.0, 0.0], [9.0, 0.0], [0.0, 9.0], [0.1, 0.0]])
    strong = torch.randn(5, 2)
    loss = _SelfLabelLoss(torch.tensor([0.99, 0.99]))
    output = torch.cat([clean, strong])[None]
    per_row = torch.nn.functional.cross_entropy(
        strong, torch.tensor([0, 0, 0, 1, 0]), reduction="none"
    )
    # Four confident rows: class 0 thrice (weight 4/3 each), class 1 once (4).
    weight = torch.tensor([4 / 3, 4 / 3, 4 / 3, 4.0, 0.0])
    expected = (weight * per_row).sum() / weight.sum()
    torch.testing.assert_close(loss(output, torch.arange(5), clean), expected)
    unsure = torch.zeros(5, 2)
    assert loss(torch.cat([unsure, strong])[None], torch.arange(5), clean).item() == 0.0
    # A per-cluster threshold: class 0 rows now need more than 0.9999.
    strict = _SelfLabelLoss(torch.tensor([0.9999, 0.99]))
    only_class_1 = torch.nn.functional.cross_entropy(strong[3:4], torch.tensor([1]))
    torch.testing.assert_close(strict(output, torch.arange(5), clean), only_class_1)


def test_thresholds_drop_to_the_median_only_where_few_rows_are_confident():
    proba = torch.tensor(
        [
            [0.995, 0.005, 0.0],
            [0.999, 0.001, 0.0],
            [0.2, 0.8, 0.0],
            [0.3, 0.7, 0.0],
            [0.1, 0.9, 0.0],
        ]
    )
    torch.testing.assert_close(self_label_thresholds(proba, 0.99), torch.tensor([0.99, 0.8, 0.99]))


@pytest.mark.parametrize("pretext", ["contrastive", "autoencoder", "none"])
def test_recovers_separated_blobs(blobs, pretext):
    X, y = blobs
    scan = small_scan(pretext=pretext).fit(X)
    assert cluster_accuracy(y, scan.labels_) >= 0.95
    assert neighbor_purity(scan.neighbors_, y) >= 0.95
    assert ("pretext" in scan.history_) == (pretext != "none")


def test_partition_mining_recovers_blobs_with_the_neighbours_of_brute_force(blobs, monkeypatch):
    X, y = blobs
    brute = small_scan(pretext="none", neighbor_algorithm="brute", random_state=0).fit(X)
    # Cells of about 32 rows, so that the approximate search runs on 400 rows.
    monkeypatch.setattr(
        "sklearn_deepclust.cluster._scan.mine_neighbors", partial(mine_neighbors, cell_size=32)
    )
    partition = small_scan(pretext="none", neighbor_algorithm="partition", random_state=0).fit(X)
    assert cluster_accuracy(y, partition.labels_) >= 0.95
    shared = [len(set(a) & set(b)) for a, b in zip(brute.neighbors_, partition.neighbors_)]
    assert np.mean(shared) / brute.neighbors_.shape[1] >= 0.9


def test_the_kept_head_has_the_lowest_scan_loss_recomputed_with_numpy(blobs):
    """``head_losses_`` are SCAN's loss over all mined pairs (Eq. 2): recomputed
    here from the kept head's probabilities, with numpy, it is the smallest."""
    X, _ = blobs
    scan = small_scan(self_label=False, n_heads=4).fit(X)
    p = scan.predict_proba(X).astype(np.float64)
    agreement = np.einsum("ic,ikc->ik", p, p[scan.neighbors_])
    mean = p.mean(0)
    loss = -np.log(agreement).mean() + scan.entropy_weight * (mean * np.log(mean)).sum()
    assert scan.head_losses_[scan.best_head_] == pytest.approx(loss, rel=1e-4, abs=1e-5)
    assert scan.head_losses_[scan.best_head_] == scan.head_losses_.min()
    assert np.ptp(scan.head_losses_) > 0  # the heads did differ


def test_fitted_attributes_and_outputs(blobs):
    X, _ = blobs
    scan = small_scan().fit(X)
    assert scan.neighbors_.shape == (400, 10)
    assert not np.any(scan.neighbors_ == np.arange(400)[:, None])  # never itself
    assert scan.head_losses_.shape == (3,)
    assert scan.best_head_ == int(np.argmin(scan.head_losses_))
    assert len(scan.module_.heads) == 1
    assert set(scan.history_) == {"pretext", "cluster", "self_label"}
    assert scan.n_iter_ == 60 + 10
    assert 0 < scan.confident_fraction_ <= 1
    proba = scan.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(axis=1), scan.labels_)
    assert scan.transform(X).shape == (400, 8)
    assert np.isfinite(scan.score(X))


def test_self_labelling_can_be_switched_off(blobs):
    X, _ = blobs
    scan = small_scan().fit(X)
    assert scan.self_label_thresholds_.shape == (4,)
    scan.set_params(self_label=False).fit(X)
    assert scan.self_label_thresholds_ is None
    assert "self_label" not in scan.history_
    assert scan.n_iter_ == 60


def test_same_seed_same_labels_on_cpu(blobs):
    X, _ = blobs
    first = small_scan(random_state=3).fit(X)
    second = small_scan(random_state=3).fit(X)
    np.testing.assert_array_equal(first.labels_, second.labels_)
    np.testing.assert_array_equal(first.neighbors_, second.neighbors_)


def test_self_labelling_keeps_a_cluster_that_has_no_confident_sample(blobs):
    # After 30 epochs some of the four (correct) clusters have no row above
    # 0.9; with that single threshold self-labelling empties one of them.
    X, y = blobs
    scan = small_scan(pretext="none", max_epochs=30).fit(X)
    assert scan.confident_fraction_ < 1
    assert np.any(scan.self_label_thresholds_ < 0.9)
    assert "self_label" in scan.history_
    assert cluster_accuracy(y, scan.labels_) == 1.0


def test_too_many_neighbours_is_a_clear_error():
    X = np.random.RandomState(0).rand(10, 3)
    with pytest.raises(ValueError, match="n_neighbors=20 must be smaller than the 10 samples"):
        SCAN(n_clusters=2, n_neighbors=20).fit(X)


def test_user_encoder_is_trained_as_a_copy(blobs):
    X, y = blobs
    encoder = seeded_module(lambda: nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 6)))
    before = [p.detach().clone() for p in encoder.parameters()]
    scan = small_scan(module=encoder).fit(X)
    assert scan.transform(X).shape == (400, 6)
    assert cluster_accuracy(y, scan.labels_) >= 0.95
    for old, new in zip(before, encoder.parameters()):
        assert torch.equal(old, new)


def test_precomputed_embedding_without_pretext():
    # Clusters that are only separable along two of ten features.
    X, y = make_blobs(n_samples=300, centers=3, n_features=2, cluster_std=0.4, random_state=1)
    noise = np.random.RandomState(1).normal(scale=0.1, size=(300, 8))
    X = np.hstack([X, noise]).astype(np.float32)
    # Two informative features of ten: views that corrupt 30 % of the cells
    # often swap the informative ones, so a gentler corruption is used.
    scan = small_scan(n_clusters=3, pretext="none", corruption_rate=0.1).fit(X)
    assert cluster_accuracy(y, scan.labels_) >= 0.95


def test_training_does_not_read_the_device_once_per_batch(blobs, host_reads):
    X, _ = blobs

    def count_reads(batch_size):
        for name in host_reads:
            host_reads[name] = 0
        small_scan(
            pretext_epochs=2,
            max_epochs=3,
            self_label_epochs=2,
            self_label_threshold=0.3,
            batch_size=batch_size,
            optimizer=torch.optim.SGD,  # Adam reads its CPU step counter
        ).fit(X)
        return dict(host_reads)

    few, many = count_reads(200), count_reads(8)  # 2 vs 50 batches per epoch
    assert few == many


def test_defaults_mine_input_neighbours_and_size_the_budget_from_the_table():
    """At its defaults SCAN mines euclidean neighbours in the input itself
    (exactly scikit-learn's), runs the "auto" step budgets (200 clustering and
    100 self-labelling steps on 150 rows, one batch each) and recovers blobs."""
    from sklearn.datasets import make_blobs
    from sklearn.metrics import adjusted_rand_score
    from sklearn.neighbors import NearestNeighbors

    # Eight features: on two, a view with 30 % of cells redrawn from their
    # marginals lands in another blob and self-labelling merges two of them
    # (corruption_rate=0 then recovers all three).
    X, y = make_blobs(n_samples=150, centers=3, n_features=8, random_state=0)
    scan = SCAN(n_clusters=3, random_state=0).fit(X)
    assert "pretext" not in scan.history_
    assert len(scan.history_["cluster"]) == 200
    assert len(scan.history_["self_label"]) == 100
    expected = NearestNeighbors(n_neighbors=21).fit(X).kneighbors(X)[1][:, 1:]
    shared = [len(set(a) & set(b)) for a, b in zip(scan.neighbors_, expected)]
    assert np.mean(shared) / 20 >= 0.99  # float32 ties aside, the same sets
    assert adjusted_rand_score(y, scan.labels_) == pytest.approx(1.0)
