"""Deterministic rearrangements of labelled tables for benchmarks.

:func:`make_long_tailed` draws the imbalanced versions of a balanced table
on which clustering for imbalanced data (P²OT [1]_) is evaluated, following
the exponential profile of the long-tailed CIFAR benchmarks [2]_.
:func:`make_ncd_split` hides the labels of chosen classes, the setting of
novel class discovery [3]_: ``fit(X, y_partial)`` with ``-1`` for the
unlabelled rows.

References
----------
.. [1] C. Zhang, H. Ren and X. He, "P²OT: Progressive Partial Optimal
   Transport for Deep Imbalanced Clustering", ICLR 2024.
.. [2] Y. Cui, M. Jia, T.-Y. Lin, Y. Song and S. Belongie, "Class-Balanced
   Loss Based on Effective Number of Samples", CVPR 2019.
.. [3] C. Troisemaine, J. Flocon-Cholet, S. Gosselin, A. Reiffers-Masson,
   S. Vaton and V. Lemaire, "A Practical Approach to Novel Class Discovery
   in Tabular Data", 2023.
"""

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["long_tailed_sizes", "make_long_tailed", "make_ncd_split"]


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


def make_ncd_split(
    y, novel_classes=None, *, n_novel=None, labelled_fraction=1.0, random_state=None
):
    """Labels for novel class discovery: novel classes hidden, known ones (partly) labelled.

    Every row of a novel class gets ``-1``; each known class keeps the label
    of a random ``labelled_fraction`` of its rows (at least one) and ``-1``
    on the rest. With ``labelled_fraction=1`` this is the NCD protocol of the
    tabular NCD paper [1]_ (all known-class rows labelled, the unlabelled set
    is the novel classes); below 1 it is generalised category discovery,
    where the unlabelled set mixes known and novel classes.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Integer class labels, all ``>= 0``.
    novel_classes : array-like of int or None, default=None
        The classes to hide. None draws ``n_novel`` of them with
        ``random_state``.
    n_novel : int or None, default=None
        Number of novel classes to draw when ``novel_classes`` is None
        (at least 1, fewer than the number of classes).
    labelled_fraction : float in (0, 1], default=1.0
        Fraction of each known class's rows that keep their label.
    random_state : int, RandomState instance or None, default=None
        Seeds the draw of the novel classes and of the labelled rows.

    Returns
    -------
    y_partial : ndarray of int of shape (n_samples,)
        ``y`` with ``-1`` for the unlabelled rows.
    novel_classes : ndarray of int
        The hidden classes, sorted.

    References
    ----------
    .. [1] C. Troisemaine, A. Reiffers-Masson, S. Gosselin, V. Lemaire and
       S. Vaton, "A Practical Approach to Novel Class Discovery in Tabular
       Data", Data Mining and Knowledge Discovery, 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_deepclust.datasets import make_ncd_split
    >>> y = np.repeat([0, 1, 2, 3], 3)
    >>> y_partial, novel = make_ncd_split(y, [1, 3])
    >>> y_partial.tolist(), novel.tolist()
    ([0, 0, 0, -1, -1, -1, 2, 2, 2, -1, -1, -1], [1, 3])
    """
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be a 1-D array of integer labels; got dtype {y.dtype}.")
    if y.size and y.min() < 0:
        raise ValueError("y must hold class labels >= 0; -1 is the unlabelled marker.")
    if not 0 < labelled_fraction <= 1:
        raise ValueError(f"labelled_fraction must be in (0, 1]; got {labelled_fraction}.")
    classes = np.unique(y)
    rng = check_random_state(random_state)
    if novel_classes is None:
        if n_novel is None or not 1 <= n_novel < len(classes):
            raise ValueError(
                f"give novel_classes, or n_novel between 1 and {len(classes) - 1} "
                f"(y has {len(classes)} classes); got n_novel={n_novel}."
            )
        novel_classes = rng.choice(classes, size=n_novel, replace=False)
    novel_classes = np.unique(np.asarray(novel_classes))
    if novel_classes.size == 0:
        raise ValueError("novel_classes is empty: hide at least one class.")
    unknown = np.setdiff1d(novel_classes, classes)
    if unknown.size:
        raise ValueError(f"novel_classes {unknown.tolist()} do not occur in y.")
    if len(novel_classes) == len(classes):
        raise ValueError("at least one class must stay known (labelled).")
    # int64 first: -1 would wrap to the largest value of an unsigned dtype.
    y_partial = np.where(np.isin(y, novel_classes), -1, y.astype(np.int64))
    if labelled_fraction < 1:
        for known in np.setdiff1d(classes, novel_classes):
            rows = np.flatnonzero(y == known)
            n_labelled = max(1, int(round(labelled_fraction * len(rows))))
            hidden = rng.permutation(rows)[n_labelled:]
            y_partial[hidden] = -1
    return y_partial, novel_classes
