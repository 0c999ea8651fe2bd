"""The long-tailed subsampler: exact sizes, seeded, rows kept intact."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_deepclust.datasets import long_tailed_sizes, make_long_tailed


def test_sizes_follow_the_exponential_profile():
    sizes = long_tailed_sizes(500, 10, 0.01)
    expected = np.floor(500 * 0.01 ** (np.arange(10) / 9) + 1e-9)
    np.testing.assert_array_equal(sizes, expected)
    assert sizes[0] == 500 and sizes[-1] == 5
    assert np.all(np.diff(sizes) <= 0)
    np.testing.assert_array_equal(long_tailed_sizes(50, 4, 1.0), [50] * 4)


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(5, 60), min_size=2, max_size=8),
    ratio=st.sampled_from([1.0, 0.5, 0.1, 0.01]),
    seed=st.integers(0, 1000),
)
def test_subsample_has_the_sizes_and_keeps_rows_intact(counts, ratio, seed):
    y = np.repeat(np.arange(len(counts)) * 3 + 1, counts)  # labels need not be 0..K-1
    X = np.column_stack([np.arange(len(y)), y])  # each row remembers its position and label
    X_lt, y_lt, indices = make_long_tailed(X, y, ratio, random_state=seed)
    assert sorted(np.bincount(y_lt)[np.unique(y_lt)].tolist(), reverse=True) == sorted(
        long_tailed_sizes(min(counts), len(counts), ratio).tolist(), reverse=True
    )
    np.testing.assert_array_equal(X_lt[:, 0], indices)
    np.testing.assert_array_equal(X_lt[:, 1], y_lt)
    assert len(np.unique(indices)) == len(indices)
    assert np.all(np.diff(indices) > 0)


def test_same_seed_same_subsample_and_the_order_of_classes_is_drawn():
    y = np.repeat(np.arange(5), 40)
    X = np.arange(200)[:, None]
    first = make_long_tailed(X, y, 0.1, random_state=7)[2]
    np.testing.assert_array_equal(first, make_long_tailed(X, y, 0.1, random_state=7)[2])
    largest = {
        int(np.bincount(y[make_long_tailed(X, y, 0.1, random_state=s)[2]]).argmax())
        for s in range(20)
    }
    assert len(largest) > 1


@pytest.mark.parametrize(
    ("y", "ratio", "message"),
    [
        (np.zeros(10), 0.1, "at least two classes"),
        (np.repeat([0, 1], 5), 0.0, r"imbalance_ratio must be in \(0, 1\]"),
        (np.repeat([0, 1], 4), 0.5, "X has 10 rows but y has 8 labels"),
    ],
)
def test_bad_input_is_rejected(y, ratio, message):
    with pytest.raises(ValueError, match=message):
        make_long_tailed(np.zeros((10, 2)), y, ratio)
