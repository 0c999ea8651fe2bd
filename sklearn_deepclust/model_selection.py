"""Hidden-class cross-validation: tune novel class discovery on known classes only.

The hyperparameters of a novel class discovery model cannot be chosen on the
novel classes: their labels are what nobody has. The tabular NCD paper [1]_
tunes them on the known classes instead. In each fold some known classes are
**hidden**: their samples are given to the model unlabelled, as if they were
novel, and the score is how well the model discovers them. The setting with
the best mean score over the folds is then used on the real novel classes.

Two pieces make this work inside scikit-learn's own
:class:`~sklearn.model_selection.GridSearchCV` and
:class:`~sklearn.model_selection.RandomizedSearchCV`:

- :class:`HiddenClassKFold`, a CV splitter: in fold ``i`` the training
  indices are the labelled samples of the visible known classes and the
  test indices are the samples of the hidden classes;
- :class:`TransductiveDiscovery`, a wrapper: ``fit`` keeps the labelled
  training samples, and ``predict(X)`` fits the wrapped estimator on them
  together with ``X`` **unlabelled** and returns the classes it found in
  ``X``. The hidden classes' labels therefore only ever reach the scorer.

Score with :data:`~sklearn_deepclust.metrics.cluster_accuracy_scorer` (the
novel-class accuracy of the hidden classes, as in the paper's figures) or
``"adjusted_rand_score"`` (what the paper's search maximises).

References
----------
.. [1] C. Troisemaine, A. Reiffers-Masson, S. Gosselin, V. Lemaire and
   S. Vaton, "A Practical Approach to Novel Class Discovery in Tabular
   Data", Data Mining and Knowledge Discovery, 2024.
"""

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.model_selection import BaseCrossValidator
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .discovery._base import UNLABELLED

__all__ = ["HiddenClassKFold", "TransductiveDiscovery"]


class HiddenClassKFold(BaseCrossValidator):
    """K-fold over the known classes: each fold hides some of them.

    The known classes (every label but ``-1``: samples labelled ``-1`` are
    left out of every fold; labels may be integers or strings, and among
    strings ``"-1"`` marks an unlabelled sample too) are shuffled
    and dealt into ``n_splits`` groups, or, with ``n_hidden_classes``, each
    fold hides that many classes drawn at random.
    Fold ``i`` trains on the labelled samples of the other classes and tests
    on the samples of its hidden classes.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds.
    n_hidden_classes : int or None, default=None
        Classes hidden in each fold. None deals the classes into
        ``n_splits`` disjoint groups (as k-fold does with samples); an int
        draws that many classes per fold (the paper hides 7 of letter's 19
        known classes and 2 of pendigits' 5, over 5 folds).
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling of the classes.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_deepclust.model_selection import HiddenClassKFold
    >>> y = np.array([0, 0, 1, 1, 2, 2, -1])
    >>> for train, test in HiddenClassKFold(n_splits=3, random_state=0).split(None, y):
    ...     print(np.unique(y[train]).tolist(), np.unique(y[test]).tolist())
    [0, 1] [2]
    [0, 2] [1]
    [1, 2] [0]
    """

    def __init__(self, n_splits=5, *, n_hidden_classes=None, random_state=None):
        self.n_splits = n_splits
        self.n_hidden_classes = n_hidden_classes
        self.random_state = random_state

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of folds.

        Parameters
        ----------
        X, y, groups : Ignored

        Returns
        -------
        n_splits : int
        """
        return self.n_splits

    def _hidden_groups(self, classes):
        if not isinstance(self.n_splits, Integral) or self.n_splits < 2:
            raise ValueError(f"n_splits must be an integer >= 2; got {self.n_splits!r}.")
        rng = check_random_state(self.random_state)
        if self.n_hidden_classes is None:
            if self.n_splits > len(classes):
                raise ValueError(
                    f"n_splits={self.n_splits} is larger than the {len(classes)} known "
                    "classes in y; each fold must hide at least one class."
                )
            return np.array_split(rng.permutation(classes), self.n_splits)
        if not 1 <= self.n_hidden_classes < len(classes):
            raise ValueError(
                f"n_hidden_classes must be between 1 and {len(classes) - 1} (y has "
                f"{len(classes)} known classes); got {self.n_hidden_classes!r}."
            )
        return [
            rng.choice(classes, self.n_hidden_classes, replace=False) for _ in range(self.n_splits)
        ]

    def split(self, X, y, groups=None):
        """Indices of the visible (train) and hidden (test) classes' samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or None
            Ignored except for its length.
        y : array-like of shape (n_samples,)
            Known class labels; ``-1`` samples are in no fold.
        groups : Ignored

        Yields
        ------
        train : ndarray
            Samples of the classes this fold keeps labelled.
        test : ndarray
            Samples of the classes this fold hides.
        """
        if y is None:
            raise ValueError("HiddenClassKFold needs y, the known classes' labels.")
        y = np.asarray(y)
        labelled = ~_unlabelled(y)
        classes = np.unique(y[labelled])
        if len(classes) < 2:
            raise ValueError(
                f"hidden-class CV needs at least 2 known classes in y; got {len(classes)}."
            )
        for hidden in self._hidden_groups(classes):
            is_hidden = np.isin(y, hidden)
            visible = labelled & ~is_hidden
            yield np.flatnonzero(visible), np.flatnonzero(is_hidden)

    def _iter_test_masks(self, X=None, y=None, groups=None):  # pragma: no cover
        raise NotImplementedError("split is implemented directly")


class TransductiveDiscovery(MetaEstimatorMixin, BaseEstimator):
    """Wrap a discovery estimator so that ``predict`` discovers the classes of ``X``.

    ``fit(X, y)`` only stores the labelled samples. ``predict(X_new)`` fits a
    clone of ``estimator`` on the stored samples plus ``X_new`` labelled
    ``-1``, and returns its labels for ``X_new``: the classes of ``X_new``
    are discovered without their labels, which is what a hidden-class fold
    scores (see :class:`HiddenClassKFold`). The wrapped estimator's
    parameters are searched as ``estimator__<name>``.

    So ``predict`` trains, and each call replaces ``estimator_``: it is a
    scoring device for the search, not a model to deploy. Fit the chosen
    estimator itself on your data afterwards.

    Parameters
    ----------
    estimator : estimator object
        A discovery estimator, fitted as ``fit(X, y)`` with ``-1`` for the
        unlabelled samples (e.g. :class:`~sklearn_deepclust.discovery.PBN`),
        or a :class:`~sklearn.pipeline.Pipeline` that ends in one (e.g. a
        scaler first).
    novel_only : bool, default=True
        Assign the rows of ``X`` among the discovered classes only
        (``predict_novel``), as novel class discovery is scored: in a
        hidden-class fold they are all of hidden classes. False returns the
        estimator's ``labels_`` for them (any class, known ones included),
        the generalised category discovery view; estimators without
        ``predict_novel`` always do.

    Attributes
    ----------
    X_, y_ : ndarray
        The samples and labels given to ``fit``.
    estimator_ : estimator object
        The clone fitted by the last ``predict``.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn_deepclust.discovery import NCDKMeans
    >>> from sklearn_deepclust.metrics import cluster_accuracy_scorer
    >>> from sklearn_deepclust.model_selection import (
    ...     HiddenClassKFold, TransductiveDiscovery)
    >>> X, y = make_blobs(300, centers=6, random_state=0)
    >>> search = GridSearchCV(
    ...     TransductiveDiscovery(NCDKMeans(random_state=0)),
    ...     {"estimator__n_init": [1, 10]},
    ...     cv=HiddenClassKFold(n_splits=3, random_state=0),
    ...     scoring=cluster_accuracy_scorer,
    ... ).fit(X, y)
    >>> sorted(search.best_params_)
    ['estimator__n_init']
    """

    def __init__(self, estimator, *, novel_only=True):
        self.estimator = estimator
        self.novel_only = novel_only

    def fit(self, X, y):
        """Store the labelled samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Labels (integers or strings), ``-1`` (or ``"-1"``) for samples
            without one.

        Returns
        -------
        self : object
        """
        self.X_, self.y_ = X, np.asarray(y)
        return self

    def predict(self, X):
        """Fit the estimator with ``X`` unlabelled and return its labels for ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The samples whose classes are to be discovered.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "X_")
        n_stored = len(self.y_)
        X_all = _concatenate(self.X_, X)
        y_all = np.concatenate([_integer_labels(self.y_), np.full(_n_rows(X), UNLABELLED)])
        self.estimator_ = clone(self.estimator).fit(X_all, y_all)
        # In a pipeline (a scaler, then the discoverer) the last step finds
        # the classes and the steps before it transform X on the way there.
        if isinstance(self.estimator_, Pipeline):
            discoverer, before = self.estimator_[-1], self.estimator_[:-1]
        else:
            discoverer, before = self.estimator_, None
        if self.novel_only and hasattr(discoverer, "predict_novel"):
            X_in = X if before is None else before.transform(X)
            return np.asarray(discoverer.predict_novel(X_in))
        return np.asarray(discoverer.labels_)[n_stored:]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


def _integer_labels(y):
    """``y`` as the integer labels the discovery estimators take, ``-1`` kept.

    Integer labels pass unchanged (as int64); other labels (strings, ...) are
    numbered in sorted order. The scorers match clusters to classes, so the
    numbers need not be the names.
    """
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer):
        return y.astype(np.int64)
    labelled = ~_unlabelled(y)
    codes = np.full(y.shape, UNLABELLED, dtype=np.int64)
    codes[labelled] = np.unique(y[labelled], return_inverse=True)[1]
    return codes


def _unlabelled(y):
    """The rows of ``y`` without a label: ``-1``, or ``"-1"`` among labels
    that are not numbers (as a column read from a text file holds them)."""
    if y.dtype.kind in "iuf":
        return y == UNLABELLED
    return np.char.strip(y.astype(str)) == str(UNLABELLED)


def _n_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _concatenate(first, second):
    """Row-wise concatenation that keeps pandas frames as frames."""
    if hasattr(first, "iloc") and hasattr(second, "iloc"):
        import pandas as pd

        return pd.concat([first, second], ignore_index=True)
    return np.concatenate([np.asarray(first), np.asarray(second)])
