"""Benchmark data rearrangements: the long-tailed subsampler and the NCD split."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_deepclust.datasets import long_tailed_sizes, make_long_tailed, make_ncd_split


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


@settings(deadline=None, max_examples=40)
@given(
    st.lists(st.integers(2, 12), min_size=3, max_size=6),
    st.floats(0.05, 1.0),
    st.integers(0, 10_000),
)
def test_ncd_split_hides_novel_classes_and_keeps_known_labels_true(counts, fraction, seed):
    y = np.repeat(np.arange(len(counts)), counts)
    y_partial, novel = make_ncd_split(y, n_novel=1, labelled_fraction=fraction, random_state=seed)
    assert len(novel) == 1
    assert np.all(y_partial[np.isin(y, novel)] == -1)  # no novel label leaks
    labelled = y_partial != -1
    np.testing.assert_array_equal(y_partial[labelled], y[labelled])  # never a wrong label
    for known in np.setdiff1d(np.unique(y), novel):
        n_rows = np.sum(y == known)
        expected = max(1, int(round(fraction * n_rows)))
        assert np.sum(y_partial == known) == expected


def test_ncd_split_is_repeatable_and_follows_the_given_classes():
    y = np.repeat(np.arange(6), 10)
    first = make_ncd_split(y, n_novel=2, labelled_fraction=0.5, random_state=3)
    second = make_ncd_split(y, n_novel=2, labelled_fraction=0.5, random_state=3)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    y_partial, novel = make_ncd_split(y, novel_classes=[4, 1])
    assert novel.tolist() == [1, 4]
    assert sorted(np.unique(y_partial).tolist()) == [-1, 0, 2, 3, 5]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(novel_classes=[7]), "do not occur in y"),
        (dict(novel_classes=[0, 1, 2]), "at least one class must stay known"),
        (dict(), "give novel_classes, or n_novel"),
        (dict(n_novel=3), "give novel_classes, or n_novel"),
        (dict(novel_classes=[0], labelled_fraction=0.0), "labelled_fraction"),
        (dict(novel_classes=[]), "novel_classes is empty"),
    ],
)
def test_ncd_split_bad_input_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_ncd_split(np.repeat([0, 1, 2], 4), **kwargs)


def test_ncd_split_rejects_labels_that_are_not_integers_or_negative():
    with pytest.raises(ValueError, match="integer labels"):
        make_ncd_split(np.array(["a", "b"]), novel_classes=["a"])
    with pytest.raises(ValueError, match="-1 is the unlabelled marker"):
        make_ncd_split(np.array([-1, 0, 1]), novel_classes=[1])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint64, np.int8, np.int32])
def test_ncd_split_marks_unlabelled_rows_minus_one_for_any_integer_dtype(dtype):
    # In an unsigned dtype -1 would wrap to 255 (or 2**64 - 1): a known class.
    y = np.repeat(np.arange(4, dtype=dtype), 3)
    y_partial, novel = make_ncd_split(y, [1, 3])
    assert y_partial.dtype == np.int64
    assert y_partial.tolist() == [0, 0, 0, -1, -1, -1, 2, 2, 2, -1, -1, -1]
