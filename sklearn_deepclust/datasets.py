"""Deterministic rearrangements of labelled tables for benchmarks.

:func:`make_long_tailed` draws the imbalanced versions of a balanced table
on which clustering for imbalanced data (P²OT [1]_) is evaluated, following
the exponential profile of the long-tailed CIFAR benchmarks [2]_.

References
----------
.. [1] C. Zhang, H. Ren and X. He, "P²OT: Progressive Partial Optimal
   Transport for Deep Imbalanced Clustering", ICLR 2024.
.. [2] Y. Cui, M. Jia, T.-Y. Lin, Y. Song and S. Belongie, "Class-Balanced
   Loss Based on Effective Number of Samples", CVPR 2019.
"""

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["long_tailed_sizes", "make_long_tailed"]


def long_tailed_sizes(n_max, n_classes, imbalance_ratio):
    """Class sizes ``n_max * imbalance_ratio ** (i / (n_classes - 1))``, largest first.

    Parameters
    ----------
    n_max : int
        Size of the largest class.
    n_classes : int
        Number of classes (at least 2).
    imbalance_ratio : float in (0, 1]
        Size of the smallest class relative to the largest (0.01 is the
        "imbalance factor 100" of the long-tailed benchmarks).

    Returns
    -------
    sizes : ndarray of int of shape (n_classes,)
        Non-increasing, each at least 1.

    Examples
    --------
    >>> from sklearn_deepclust.datasets import long_tailed_sizes
    >>> long_tailed_sizes(1000, 3, 0.01).tolist()
    [1000, 100, 10]
    """
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2; got {n_classes}.")
    if not 0 < imbalance_ratio <= 1:
        raise ValueError(f"imbalance_ratio must be in (0, 1]; got {imbalance_ratio}.")
    exponents = np.arange(n_classes) / (n_classes - 1)
    return np.maximum(1, np.floor(n_max * imbalance_ratio**exponents + 1e-9)).astype(int)


def make_long_tailed(X, y, imbalance_ratio, *, random_state=None):
    """A long-tailed subsample of a labelled table.

    The classes are put in a random order (seeded); the ``i``-th gets
    ``n_max * imbalance_ratio ** (i / (K - 1))`` rows, ``n_max`` being the
    smallest class size of the input so that every class can supply its
    share, and the rows of each class are drawn without replacement.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Class labels (at least two classes).
    imbalance_ratio : float in (0, 1]
        Smallest class size over largest (e.g. 0.1 or 0.01).
    random_state : int, RandomState instance or None, default=None
        Seeds the class order and the rows drawn; an int gives the same
        subsample every time.

    Returns
    -------
    X_subset : ndarray of shape (n_kept, n_features)
    y_subset : ndarray of shape (n_kept,)
        Rows in their original order.
    indices : ndarray of int of shape (n_kept,)
        Positions of the kept rows in ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_deepclust.datasets import make_long_tailed
    >>> X, y = np.arange(300).reshape(-1, 1), np.repeat([0, 1, 2], 100)
    >>> _, y_lt, _ = make_long_tailed(X, y, 0.1, random_state=0)
    >>> sorted(np.bincount(y_lt).tolist())
    [10, 31, 100]
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} labels.")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError("y must hold at least two classes.")
    rng = check_random_state(random_state)
    order = rng.permutation(len(classes))
    sizes = long_tailed_sizes(counts.min(), len(classes), imbalance_ratio)
    kept = []
    for rank, class_index in enumerate(order):
        rows = np.flatnonzero(y == classes[class_index])
        kept.append(rng.choice(rows, size=sizes[rank], replace=False))
    indices = np.sort(np.concatenate(kept))
    return X[indices], y[indices], indices
