"""Neighbour mining equals a brute-force search; purity counts shared classes."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
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
    # Continuous random points in 2+ dimensions: ties have probability zero (in one
    # dimension every cosine similarity is +-1).
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
    np.testing.assert_array_equal(np.sort(found, 1), np.sort(expected, 1))


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
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mine_neighbors(torch.randn(5, 2), **{"n_neighbors": 2, **kwargs})
