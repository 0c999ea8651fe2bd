"""Hidden-class cross-validation inside scikit-learn's own searches."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

from sklearn_deepclust.discovery import NCDKMeans
from sklearn_deepclust.metrics import cluster_accuracy_scorer
from sklearn_deepclust.model_selection import HiddenClassKFold, TransductiveDiscovery


@pytest.fixture
def known_blobs():
    """Eight labelled classes (well separated) and a few unlabelled rows."""
    X, y = make_blobs(800, n_features=4, centers=8, cluster_std=0.6, random_state=2)
    y = y.copy()
    y[:20] = -1
    return X, y


def test_folds_hide_disjoint_groups_of_known_classes(known_blobs):
    X, y = known_blobs
    hidden_sets = []
    for train, test in HiddenClassKFold(n_splits=4, random_state=0).split(X, y):
        train_classes, test_classes = set(y[train]), set(y[test])
        assert not train_classes & test_classes
        assert -1 not in train_classes | test_classes
        assert train_classes | test_classes == set(range(8))
        assert len(test_classes) == 2
        hidden_sets.append(frozenset(test_classes))
    assert len(set(hidden_sets)) == 4 and frozenset().union(*hidden_sets) == set(range(8))


def test_fixed_number_of_hidden_classes_per_fold(known_blobs):
    X, y = known_blobs
    cv = HiddenClassKFold(n_splits=5, n_hidden_classes=3, random_state=1)
    assert cv.get_n_splits() == 5
    assert all(len(set(y[test])) == 3 for _, test in cv.split(X, y))


@pytest.mark.parametrize(
    ("cv", "message"),
    [
        (HiddenClassKFold(n_splits=9), "larger than the 8 known classes"),
        (HiddenClassKFold(n_splits=2, n_hidden_classes=8), "between 1 and 7"),
        (HiddenClassKFold(n_splits=1), "n_splits must be an integer >= 2"),
    ],
)
def test_impossible_folds_are_rejected(known_blobs, cv, message):
    X, y = known_blobs
    with pytest.raises(ValueError, match=message):
        list(cv.split(X, y))


class _Spy(ClusterMixin, BaseEstimator):
    """Records every y it is fitted on; clusters by nearest labelled-class mean."""

    seen = []

    def __init__(self, n_novel_clusters=2):
        self.n_novel_clusters = n_novel_clusters

    def fit(self, X, y):
        type(self).seen.append(np.asarray(y).copy())
        self.labels_ = NCDKMeans(self.n_novel_clusters, random_state=0).fit(X, y).labels_
        return self


@pytest.mark.parametrize("search", ["grid", "randomized"])
def test_no_hidden_class_label_reaches_fit(known_blobs, search):
    X, y = known_blobs
    _Spy.seen = []
    cv = HiddenClassKFold(n_splits=4, random_state=0)
    folds = list(cv.split(X, y))
    params = {"estimator__n_novel_clusters": [2, 3]}
    if search == "grid":
        searcher = GridSearchCV(TransductiveDiscovery(_Spy()), params, cv=cv, refit=False)
    else:
        searcher = RandomizedSearchCV(
            TransductiveDiscovery(_Spy()), params, n_iter=2, cv=cv, refit=False, random_state=0
        )
    searcher.set_params(scoring=cluster_accuracy_scorer).fit(X, y)
    assert len(_Spy.seen) == 2 * len(folds)
    for y_seen in _Spy.seen:
        # Which fold was this? The visible classes say.
        visible = set(y_seen[y_seen >= 0])
        hidden = set(range(8)) - visible
        assert len(hidden) == 2
        # The hidden classes' labels never appear; their rows are all -1.
        assert not hidden & set(y_seen)
        n_hidden_rows = sum(np.sum(y == c) for c in hidden)
        assert np.sum(y_seen == -1) == n_hidden_rows
    # The genuinely unlabelled rows take part in no fold.
    assert searcher.best_score_ >= 0.95


def test_search_picks_the_setting_that_discovers_hidden_classes(known_blobs):
    X, y = known_blobs
    search = GridSearchCV(
        TransductiveDiscovery(NCDKMeans(random_state=0)),
        {"estimator__n_novel_clusters": [1, 2, 4]},
        cv=HiddenClassKFold(n_splits=4, random_state=0),
        scoring=cluster_accuracy_scorer,
    ).fit(X, y)
    assert search.best_params_ == {"estimator__n_novel_clusters": 2}
    scores = search.cv_results_["mean_test_score"]
    assert scores[1] >= 0.95 and scores[1] > max(scores[0], scores[2])


def test_transductive_discovery_keeps_pandas_frames(known_blobs):
    X, y = known_blobs
    frame = pd.DataFrame(X, columns=list("abcd"))
    wrapper = TransductiveDiscovery(NCDKMeans(2, random_state=0))
    visible = np.isin(y, range(6))
    labels = wrapper.fit(frame[visible], y[visible]).predict(frame[np.isin(y, [6, 7])])
    assert set(labels) <= {6, 7}
    assert list(wrapper.estimator_.feature_names_in_) == list("abcd")


def test_novel_only_assigns_hidden_rows_among_discovered_classes(known_blobs):
    X, y = known_blobs
    visible, hidden = np.isin(y, range(6)), np.isin(y, [6, 7])
    for novel_only, allowed in ((True, {6, 7}), (False, set(range(8)))):
        wrapper = TransductiveDiscovery(NCDKMeans(2, random_state=0), novel_only=novel_only)
        labels = wrapper.fit(X[visible], y[visible]).predict(X[hidden])
        assert set(labels) <= allowed
        np.testing.assert_array_equal(
            labels,
            wrapper.estimator_.predict_novel(X[hidden])
            if novel_only
            else wrapper.estimator_.labels_[visible.sum() :],
        )


@pytest.mark.parametrize("novel_only", [True, False])
def test_hidden_class_cv_of_a_scaled_pipeline(known_blobs, novel_only):
    # Scaling belongs inside the wrapped estimator; the pipeline's last step
    # is the discoverer whose labels and novel-class assignment are scored.
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = known_blobs
    X = X * [1, 10, 100, 1000]  # scales that need the scaler
    wrapper = TransductiveDiscovery(
        make_pipeline(StandardScaler(), NCDKMeans(random_state=0)), novel_only=novel_only
    )
    cv = HiddenClassKFold(n_splits=4, random_state=0)
    scores = cross_val_score(
        wrapper, X, y, cv=cv, scoring=cluster_accuracy_scorer, error_score="raise"
    )
    assert scores.min() >= 0.95


def test_hidden_class_cv_with_string_labels(known_blobs):
    X, y = known_blobs
    names = np.array([f"class {c}" for c in "abcdefgh"])
    y_named = names[np.maximum(y, 0)].astype(object)
    y_named[y < 0] = -1  # an object array: names, and -1 for the unlabelled rows
    search = GridSearchCV(
        TransductiveDiscovery(NCDKMeans(random_state=0)),
        {"estimator__n_novel_clusters": [1, 2, 4]},
        cv=HiddenClassKFold(n_splits=4, random_state=0),
        scoring=cluster_accuracy_scorer,
        error_score="raise",
    ).fit(X, y_named)
    assert search.best_params_ == {"estimator__n_novel_clusters": 2}


@pytest.mark.parametrize("unlabelled", ["-1", " -1", -1])
def test_string_labels_read_from_a_file_keep_minus_one_unlabelled(known_blobs, unlabelled):
    """A label column read as text holds "-1" for the unlabelled rows: in no fold,
    and -1 (not a class) when TransductiveDiscovery passes it on."""
    from sklearn_deepclust.model_selection import _integer_labels

    X, y = known_blobs
    y_text = np.array([str(c) for c in y], dtype=object)
    y_text[y < 0] = unlabelled
    for train, test in HiddenClassKFold(n_splits=4, random_state=0).split(X, y_text):
        assert not np.any(y[train] < 0) and not np.any(y[test] < 0)
    codes = _integer_labels(y_text)
    np.testing.assert_array_equal(codes < 0, y < 0)
    assert len(np.unique(codes[codes >= 0])) == 8


def test_folds_repeat_with_a_seed_and_change_with_another(known_blobs):
    X, y = known_blobs

    def hidden(seed):
        cv = HiddenClassKFold(n_splits=4, random_state=seed)
        return [tuple(sorted(set(y[test]))) for _, test in cv.split(X, y)]

    assert hidden(0) == hidden(0)
    assert len({tuple(hidden(seed)) for seed in range(5)}) > 1
