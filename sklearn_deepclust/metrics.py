"""Clustering metrics that compare predicted clusters with true classes.

Cluster indices are arbitrary, so every metric here first finds the best
one-to-one map between clusters and classes with the Hungarian algorithm
(:func:`scipy.optimize.linear_sum_assignment`) on the contingency table.
NMI and ARI need no matching; use scikit-learn's
:func:`~sklearn.metrics.normalized_mutual_info_score` and
:func:`~sklearn.metrics.adjusted_rand_score` (scoring strings
``"normalized_mutual_info_score"`` and ``"adjusted_rand_score"``).

References
----------
.. [1] H. W. Kuhn, "The Hungarian Method for the Assignment Problem", Naval
   Research Logistics Quarterly, 1955.
.. [2] J. Xie, R. Girshick and A. Farhadi, "Unsupervised Deep Embedding for
   Clustering Analysis", ICML 2016 (clustering accuracy).
.. [3] S. Vaze, K. Han, A. Vedaldi and A. Zisserman, "Generalized Category
   Discovery", CVPR 2022 (all/old/new accuracy).
.. [4] C. Troisemaine, A. Reiffers-Masson, S. Gosselin, V. Lemaire and
   S. Vaton, "A Practical Approach to Novel Class Discovery in Tabular
   Data", Data Mining and Knowledge Discovery, 2024 (novel-class accuracy).
"""

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import (
    adjusted_rand_score,
    f1_score,
    make_scorer,
    normalized_mutual_info_score,
)
from sklearn.metrics.cluster import contingency_matrix
from sklearn.utils import check_consistent_length, column_or_1d

__all__ = [
    "cluster_accuracy",
    "cluster_accuracy_scorer",
    "clustering_scores",
    "gcd_accuracy",
    "match_clusters",
    "matched_f1_score",
    "novel_class_accuracy",
]


def _check_labels(y_true, y_pred):
    y_true = column_or_1d(y_true)
    y_pred = column_or_1d(y_pred)
    check_consistent_length(y_true, y_pred)
    if y_true.shape[0] == 0:
        raise ValueError("cluster metrics need at least one sample; got 0.")
    return y_true, y_pred


def _hungarian(y_true, y_pred):
    """Hungarian map on the contingency table.

    Returns each sample's class index, the class index its cluster is mapped
    to (-1 for an unmatched cluster), the classes and the ``{cluster: class}``
    map.
    """
    classes, class_index = np.unique(y_true, return_inverse=True)
    clusters, cluster_index = np.unique(y_pred, return_inverse=True)
    counts = contingency_matrix(cluster_index, class_index)  # clusters x classes
    rows, cols = linear_sum_assignment(counts, maximize=True)
    cluster_to_class = np.full(len(clusters), -1)
    cluster_to_class[rows] = cols
    mapping = dict(zip(clusters[rows].tolist(), classes[cols].tolist()))
    return class_index, cluster_to_class[cluster_index], classes, mapping


def _matched_correct(y_true, y_pred):
    """Which samples the Hungarian map gets right, and the map."""
    class_index, matched, _, mapping = _hungarian(y_true, y_pred)
    return matched == class_index, mapping


def match_clusters(y_true, y_pred):
    """Best one-to-one map from predicted clusters to true classes.

    The map maximises the number of samples whose cluster is mapped to their
    class (Hungarian algorithm on the contingency table). When there are more
    clusters than classes, the surplus clusters stay unmapped.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True class labels.
    y_pred : array-like of shape (n_samples,)
        Cluster labels.

    Returns
    -------
    mapping : dict
        ``{cluster: class}`` for every matched cluster.

    Examples
    --------
    >>> from sklearn_deepclust.metrics import match_clusters
    >>> match_clusters([0, 0, 1, 1], [5, 5, 3, 3])
    {3: 1, 5: 0}
    """
    return _matched_correct(*_check_labels(y_true, y_pred))[1]


def cluster_accuracy(y_true, y_pred):
    """Clustering accuracy (ACC) after the best one-to-one cluster-class map.

    ``ACC = max_m (1/n) sum_i 1[y_i = m(c_i)]`` over one-to-one maps ``m``
    from clusters to classes, as reported by DEC [1]_ and most deep
    clustering papers. Clusters left unmatched (more clusters than classes)
    count as errors.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True class labels.
    y_pred : array-like of shape (n_samples,)
        Cluster labels.

    Returns
    -------
    accuracy : float
        In ``[0, 1]``; 1 when the clusters equal the classes up to renaming.

    References
    ----------
    .. [1] J. Xie, R. Girshick and A. Farhadi, "Unsupervised Deep Embedding
       for Clustering Analysis", ICML 2016.

    Examples
    --------
    >>> from sklearn_deepclust.metrics import cluster_accuracy
    >>> cluster_accuracy([0, 0, 1, 1, 2], [1, 1, 0, 0, 0])
    0.8
    """
    correct, _ = _matched_correct(*_check_labels(y_true, y_pred))
    return float(correct.mean())


def matched_f1_score(y_true, y_pred):
    """Macro-averaged F1 after the best one-to-one cluster-class map.

    Clusters are renamed to the classes they are matched to (as for
    :func:`cluster_accuracy`), unmatched clusters to a label that is no
    class, then scikit-learn's :func:`~sklearn.metrics.f1_score` is averaged
    over the true classes with equal weight. On imbalanced data it shows what
    accuracy hides: a method that merges the small classes into large
    clusters keeps a high ACC but loses their F1 (the metric P²OT [1]_
    reports next to ACC and NMI).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True class labels.
    y_pred : array-like of shape (n_samples,)
        Cluster labels.

    Returns
    -------
    f1 : float
        In ``[0, 1]``.

    References
    ----------
    .. [1] C. Zhang, H. Ren and X. He, "P²OT: Progressive Partial Optimal
       Transport for Deep Imbalanced Clustering", ICLR 2024.

    Examples
    --------
    >>> from sklearn_deepclust.metrics import matched_f1_score
    >>> round(matched_f1_score([0, 0, 0, 0, 1], [0, 0, 0, 0, 0]), 3)
    0.444
    """
    class_index, matched, classes, _ = _hungarian(*_check_labels(y_true, y_pred))
    return float(
        f1_score(
            class_index,
            matched,
            labels=np.arange(len(classes)),
            average="macro",
            zero_division=0.0,
        )
    )


def novel_class_accuracy(y_true, y_pred, novel_classes):
    """Clustering accuracy on the rows of the novel classes alone (NCD).

    The rows whose true class is in ``novel_classes`` are kept and scored
    with :func:`cluster_accuracy` (their own Hungarian map), as novel class
    discovery papers report it; the rows of known classes play no part.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True class labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels or clusters.
    novel_classes : array-like
        The classes that had no labelled sample during training.

    Returns
    -------
    accuracy : float

    Examples
    --------
    >>> from sklearn_deepclust.metrics import novel_class_accuracy
    >>> novel_class_accuracy([0, 0, 1, 1, 2, 2], [0, 0, 7, 7, 5, 7], novel_classes=[1, 2])
    0.75
    """
    y_true, y_pred = _check_labels(y_true, y_pred)
    novel = np.isin(y_true, np.asarray(novel_classes))
    if not novel.any():
        raise ValueError("no row of y_true belongs to novel_classes.")
    return cluster_accuracy(y_true[novel], y_pred[novel])


def gcd_accuracy(y_true, y_pred, known_classes):
    """All/old/new accuracy of generalised category discovery.

    On the samples given (the unlabelled ones, in GCD's protocol), one
    Hungarian map is computed over all of them; the same map is then scored
    on the samples of known ("old") classes and of novel ("new") classes
    separately, as in Vaze et al. [1]_.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True class labels of the unlabelled samples.
    y_pred : array-like of shape (n_samples,)
        Predicted cluster labels of the same samples.
    known_classes : array-like
        The classes that had labelled samples during training.

    Returns
    -------
    scores : dict
        ``{"all": float, "old": float, "new": float}``; ``"old"`` or
        ``"new"`` is ``nan`` when no sample belongs to that group.

    References
    ----------
    .. [1] S. Vaze, K. Han, A. Vedaldi and A. Zisserman, "Generalized
       Category Discovery", CVPR 2022.

    Examples
    --------
    >>> from sklearn_deepclust.metrics import gcd_accuracy
    >>> gcd_accuracy([0, 0, 1, 1, 2, 2], [0, 0, 1, 2, 2, 2], known_classes=[0, 1])
    {'all': 0.8333333333333334, 'old': 0.75, 'new': 1.0}
    """
    y_true, y_pred = _check_labels(y_true, y_pred)
    correct, _ = _matched_correct(y_true, y_pred)
    is_old = np.isin(y_true, np.asarray(known_classes))
    return {
        "all": float(correct.mean()),
        "old": float(correct[is_old].mean()) if is_old.any() else float("nan"),
        "new": float(correct[~is_old].mean()) if (~is_old).any() else float("nan"),
    }


# Scorer for ``GridSearchCV(scoring=...)``: ACC of ``predict`` on the test
# fold. An unsupervised estimator ignores the labels given to ``fit``; the
# search uses them only here, to score the clusters of held-out samples.
cluster_accuracy_scorer = make_scorer(cluster_accuracy)


def clustering_scores(y_true, y_pred):
    """ACC, macro-F1 after matching, NMI and ARI of a clustering in one call.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True class labels.
    y_pred : array-like of shape (n_samples,)
        Cluster labels.

    Returns
    -------
    scores : dict
        ``{"ACC": float, "F1": float, "NMI": float, "ARI": float}``; F1 is
        :func:`matched_f1_score`.

    Examples
    --------
    >>> from sklearn_deepclust.metrics import clustering_scores
    >>> clustering_scores([0, 0, 1, 1], [1, 1, 0, 0])
    {'ACC': 1.0, 'F1': 1.0, 'NMI': 1.0, 'ARI': 1.0}
    """
    return {
        "ACC": cluster_accuracy(y_true, y_pred),
        "F1": matched_f1_score(y_true, y_pred),
        "NMI": float(normalized_mutual_info_score(y_true, y_pred)),
        "ARI": float(adjusted_rand_score(y_true, y_pred)),
    }
