"""Neighbour mining equals a brute-force search; purity counts shared classes."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import NearestNeighbors

from sklearn_deepclust.neighbors import mine_neighbors, neighbor_purity


@settings(max_examples=30, deadline=None)
@given(
    st.integers(5, 60),
    st.integers(2, 6),
    st.integers(1, 4),
    st.integers(1, 17),
    st.sampled_from(["cosine", "euclidean"]),
    st.integers(0, 10_000),
)
def test_mining_equals_brute_force(n_samples, dim, n_neighbors, chunk_size, metric, seed):
    n_neighbors = min(n_neighbors, n_samples - 1)
    # Continuous random points in 2+ dimensions: exact ties have probability
    # zero (in one dimension every cosine similarity is +-1).
    X = np.random.default_rng(seed).normal(size=(n_samples, dim))
    found = mine_neighbors(
        torch.from_numpy(X).float(), n_neighbors, metric=metric, chunk_size=chunk_size
    ).numpy()
    reference = NearestNeighbors(n_neighbors=n_neighbors + 1, metric=metric).fit(X)
    expected = reference.kneighbors(X, return_distance=False)
    # Drop each point itself from scikit-learn's answer.
    expected = np.array(
        [[j for j in row if j != i][:n_neighbors] for i, row in enumerate(expected)]
    )
    assert not np.any(found == np.arange(n_samples)[:, None])
    assert all(len(set(row)) == n_neighbors for row in found.tolist())
    _assert_same_neighbours(X, found, expected, metric)


def _assert_same_neighbours(X, found, expected, metric):
    """The same neighbours, but for near-ties that float32 cannot order (two
    candidates within its rounding of each other): then the distances agree."""
    differ = np.any(np.sort(found, 1) != np.sort(expected, 1), axis=1)
    assert differ.mean() <= 0.1
    for i in np.flatnonzero(differ):
        distance = pairwise_distances(X[i : i + 1], X, metric=metric)[0]
        np.testing.assert_allclose(
            np.sort(distance[found[i]]), np.sort(distance[expected[i]]), rtol=1e-5, atol=1e-6
        )


@settings(max_examples=20, deadline=None)
@given(
    st.integers(40, 120),
    st.integers(2, 5),
    st.integers(1, 6),
    st.sampled_from(["cosine", "euclidean"]),
    st.integers(0, 10_000),
)
def test_partition_probing_every_cell_is_exact(n_samples, dim, n_neighbors, metric, seed):
    # With as many probes as cells, every sample is a candidate: the inverted
    # file must then return the brute-force answer.
    X = torch.from_numpy(np.random.default_rng(seed).normal(size=(n_samples, dim))).float()
    exact = mine_neighbors(X, n_neighbors, metric=metric, algorithm="brute")
    found = mine_neighbors(
        X, n_neighbors, metric=metric, algorithm="partition", cell_size=8, n_probe=n_samples
    )
    # The blocks of candidates differ from brute force's, so float32 rounding
    # may order a near-tie differently.
    _assert_same_neighbours(X.double().numpy(), found.numpy(), exact.numpy(), metric)


def _blobs(n_samples, dim, n_centers, seed):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=5.0, size=(n_centers, dim))
    labels = rng.integers(n_centers, size=n_samples)
    return torch.from_numpy(centers[labels] + rng.normal(size=(n_samples, dim))).float()


def test_partition_recalls_most_exact_neighbours_on_clustered_data():
    X = _blobs(6000, 8, 12, seed=0)
    exact = mine_neighbors(X, 10, algorithm="brute").numpy()
    found = mine_neighbors(X, 10, algorithm="partition", cell_size=200, random_state=0).numpy()
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, found)])
    assert recall >= 0.95
    # A single probed cell (of 30) finds clearly fewer: the probes matter.
    one_cell = mine_neighbors(
        X, 10, algorithm="partition", cell_size=200, n_probe=1, random_state=0
    ).numpy()
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, one_cell)]) < recall


def test_partition_probes_more_cells_when_they_hold_too_few_samples():
    # Cells of about two samples: the search widens until it has enough
    # candidates, past the 17 nearest cells ranked up front.
    X = _blobs(300, 3, 4, seed=1)
    found = mine_neighbors(
        X, 40, algorithm="partition", cell_size=2, n_probe=1, random_state=0
    ).numpy()
    assert not np.any(found == np.arange(300)[:, None])
    assert all(len(set(row)) == 40 for row in found)


def test_partition_is_repeatable_and_auto_picks_it_above_the_threshold(monkeypatch):
    # One probe per sample: approximate enough to tell the two algorithms apart.
    X = _blobs(3000, 4, 5, seed=2)
    options = {"cell_size": 100, "n_probe": 1, "random_state": 3}
    first = mine_neighbors(X, 5, algorithm="partition", **options)
    again = mine_neighbors(X, 5, algorithm="partition", **options)
    torch.testing.assert_close(first, again)
    brute = mine_neighbors(X, 5, algorithm="brute")
    assert (first != brute).any()
    torch.testing.assert_close(mine_neighbors(X, 5, algorithm="auto", **options), brute)
    monkeypatch.setattr("sklearn_deepclust.neighbors.AUTO_BRUTE_MAX_SAMPLES", 2999)
    torch.testing.assert_close(mine_neighbors(X, 5, algorithm="auto", **options), first)


def test_neighbours_come_nearest_first_and_never_include_self():
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    neighbors = mine_neighbors(points, n_neighbors=3, metric="euclidean", chunk_size=2)
    assert neighbors.tolist() == [[1, 2, 3], [0, 2, 3], [1, 0, 3], [2, 1, 0]]


def test_memory_is_bounded_by_the_chunk(monkeypatch):
    # Every similarity block has chunk_size rows, never n_samples.
    shapes = []
    original = torch.Tensor.topk

    def recording(self, *args, **kwargs):
        shapes.append(tuple(self.shape))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "topk", recording)
    mine_neighbors(torch.randn(1000, 4), n_neighbors=5, chunk_size=128)
    assert max(rows for rows, _ in shapes) == 128


def test_purity_on_a_hand_worked_example():
    # Anchors 0 and 1 (class 0) point at each other: pure. Anchor 2 (class 1)
    # points at 0 (class 0): impure. Anchor 3 (class 1) points at 2: pure.
    assert neighbor_purity(torch.tensor([[1], [0], [0], [2]]), [0, 0, 1, 1]) == 0.75


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_neighbors": 5}, "n_neighbors=5 must be between 1 and n_samples - 1 = 4"),
        ({"metric": "manhattan"}, "metric must be 'cosine' or 'euclidean'"),
        ({"algorithm": "kd_tree"}, "algorithm must be 'auto', 'brute' or 'partition'"),
        ({"n_probe": 0}, "n_probe must be a positive integer; got 0"),
        ({"cell_size": 0}, "cell_size must be a positive integer; got 0"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mine_neighbors(torch.randn(5, 2), **{"n_neighbors": 2, **kwargs})


@pytest.mark.parametrize("algorithm", ["brute", "partition"])
def test_euclidean_neighbours_do_not_move_with_the_data(algorithm):
    # In float32, |k|^2 - 2 q.k far from the origin cancels to noise; the
    # neighbours of shifted data must stay those of the data.
    X = torch.from_numpy(np.random.default_rng(0).normal(size=(400, 3)).astype(np.float32))
    options = dict(metric="euclidean", algorithm=algorithm, cell_size=50, random_state=0)
    near_origin = mine_neighbors(X, 3, **options)
    for offset in (1e3, 1e4):
        shifted = mine_neighbors(X + offset, 3, **options)
        agree = (shifted.sort(1).values == near_origin.sort(1).values).all(1).float().mean()
        assert agree >= 0.97, (offset, float(agree))
