"""Cluster-class matching metrics: hand-worked examples and properties."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV

from sklearn_deepclust.metrics import (
    cluster_accuracy,
    cluster_accuracy_scorer,
    gcd_accuracy,
    match_clusters,
    matched_f1_score,
    novel_class_accuracy,
)

labels = st.lists(st.integers(0, 4), min_size=1, max_size=40)


def brute_force_accuracy(y_true, y_pred):
    """Best accuracy over every injective map of clusters to classes."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes, clusters = np.unique(y_true), np.unique(y_pred)
    best = 0
    # Pad the classes with "no class" so that surplus clusters can stay unmatched.
    targets = list(classes) + [None] * len(clusters)
    for image in itertools.permutations(targets, len(clusters)):
        mapping = dict(zip(clusters, image))
        hits = sum(mapping[c] is not None and mapping[c] == t for c, t in zip(y_pred, y_true))
        best = max(best, hits)
    return best / len(y_true)


def test_cluster_accuracy_hand_worked_example():
    # Clusters 1 -> class 0 (2 hits), 0 -> class 1 (2 hits); the sample of class 2
    # shares cluster 0 with class 1, so it is lost: 4 / 5.
    assert cluster_accuracy([0, 0, 1, 1, 2], [1, 1, 0, 0, 0]) == pytest.approx(0.8)


def test_cluster_accuracy_counts_surplus_clusters_as_errors():
    # Three clusters, two classes: the best map matches two clusters; the third
    # cluster's single sample is wrong whatever its class.
    assert cluster_accuracy([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(0.75)


def test_match_clusters_returns_the_renaming():
    assert match_clusters(["a", "a", "b"], [7, 7, 3]) == {7: "a", 3: "b"}


def test_cluster_accuracy_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        cluster_accuracy([0, 1, 1], [0, 1])


@given(labels, st.permutations(range(5)))
def test_accuracy_is_one_on_relabelled_truth(y, permutation):
    relabelled = np.asarray(permutation)[np.asarray(y)]
    assert cluster_accuracy(y, relabelled) == 1.0


@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=30),
    st.permutations(range(4)),
)
def test_accuracy_is_invariant_to_renaming_clusters(pairs, permutation):
    y_true, y_pred = map(np.asarray, zip(*pairs))
    renamed = np.asarray(permutation)[y_pred]
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(cluster_accuracy(y_true, renamed))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=25))
def test_accuracy_agrees_with_brute_force_search(pairs):
    y_true, y_pred = map(np.asarray, zip(*pairs))
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(brute_force_accuracy(y_true, y_pred))


def test_gcd_accuracy_hand_worked_example():
    # One map over all samples: 0->0, 1->1, 2->2. Old classes {0, 1}: 3 of 4
    # right; new class 2: 2 of 2 right; all: 5 of 6.
    scores = gcd_accuracy([0, 0, 1, 1, 2, 2], [0, 0, 1, 2, 2, 2], known_classes=[0, 1])
    assert scores == pytest.approx({"all": 5 / 6, "old": 0.75, "new": 1.0})


def test_gcd_accuracy_uses_one_map_for_old_and_new():
    # Scored separately, "new" would map cluster 0 to class 2 and get 1.0; with one
    # global map cluster 0 belongs to class 0 (4 samples), so class 2 scores 0.
    y_true = [0, 0, 0, 0, 2]
    y_pred = [0, 0, 0, 0, 0]
    scores = gcd_accuracy(y_true, y_pred, known_classes=[0])
    assert scores["old"] == 1.0 and scores["new"] == 0.0


def test_gcd_accuracy_is_nan_for_an_absent_group():
    assert np.isnan(gcd_accuracy([0, 1], [1, 0], known_classes=[0, 1])["new"])


def test_scorer_works_in_grid_search_for_a_clusterer():
    X, y = make_blobs(n_samples=150, centers=3, cluster_std=0.5, random_state=0)
    search = GridSearchCV(
        KMeans(n_init=3, random_state=0),
        {"n_clusters": [2, 3]},
        scoring=cluster_accuracy_scorer,
        cv=3,
    ).fit(X, y)
    assert search.best_params_ == {"n_clusters": 3}
    assert search.best_score_ > 0.95


def test_matched_f1_hand_worked_example():
    # Cluster 7 -> class 0 (3 of its 5 rows), cluster 9 -> class 1; class 2 is never
    # predicted (F1 0). Class 0: precision 3/5, recall 1 -> 3/4; class 1: 1/1, 1/2 -> 2/3.
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [7, 7, 7, 9, 7, 7]
    expected = (3 / 4 + 2 / 3 + 0.0) / 3
    assert matched_f1_score(y_true, y_pred) == pytest.approx(expected)


def test_matched_f1_sees_the_small_class_that_accuracy_hides():
    y_true = [0] * 95 + [1] * 5
    merged = [0] * 100
    assert cluster_accuracy(y_true, merged) == 0.95
    assert matched_f1_score(y_true, merged) < 0.5


@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5)), min_size=1, max_size=30),
    st.permutations(range(6)),
)
def test_matched_f1_equals_scikit_learn_after_the_hungarian_renaming(pairs, permutation):
    y_true, y_pred = map(np.asarray, zip(*pairs))
    renamed = np.asarray(permutation)[y_pred]
    mapping = match_clusters(y_true, renamed)
    mapped = np.array([mapping.get(c, -1) for c in renamed])
    expected = f1_score(
        y_true, mapped, labels=np.unique(y_true), average="macro", zero_division=0.0
    )
    # (Unlike ACC, F1 can differ between maps that tie on the number of matched rows.)
    assert matched_f1_score(y_true, renamed) == pytest.approx(expected)


def test_novel_class_accuracy_scores_only_the_novel_rows():
    y_true = [0, 0, 1, 1, 2, 2]
    # Known rows are all wrong, which must not matter; novel rows: one of four wrong.
    y_pred = [5, 6, 7, 7, 3, 7]
    assert novel_class_accuracy(y_true, y_pred, novel_classes=[1, 2]) == 0.75
    with pytest.raises(ValueError, match="no row of y_true belongs"):
        novel_class_accuracy(y_true, y_pred, novel_classes=[9])


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=30))
def test_novel_class_accuracy_equals_accuracy_on_the_novel_subset(pairs):
    y_true, y_pred = map(np.asarray, zip(*pairs))
    novel = np.array([3, 4])
    mask = np.isin(y_true, novel)
    if not mask.any():
        return
    assert novel_class_accuracy(y_true, y_pred, novel) == cluster_accuracy(
        y_true[mask], y_pred[mask]
    )


@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 5)), min_size=1, max_size=30),
    st.sets(st.integers(0, 4), max_size=4),
)
def test_gcd_accuracy_splits_one_map_into_old_and_new(pairs, known):
    """ "all" is the plain clustering accuracy, and old and new score the same
    map on two parts of the samples, so their weighted mean is "all"."""
    y_true, y_pred = map(np.asarray, zip(*pairs))
    scores = gcd_accuracy(y_true, y_pred, known_classes=sorted(known))
    assert scores["all"] == pytest.approx(cluster_accuracy(y_true, y_pred))
    is_old = np.isin(y_true, sorted(known))
    parts = [(is_old.sum(), scores["old"]), ((~is_old).sum(), scores["new"])]
    assert all(np.isnan(score) == (n == 0) for n, score in parts)
    weighted = sum(n * score for n, score in parts if n) / len(y_true)
    assert weighted == pytest.approx(scores["all"])
