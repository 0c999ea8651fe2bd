"""What every discovery estimator shares: partial labels, label maps, NCD k-means.

A discovery estimator is fitted on ``y`` with the known classes' labels and
``-1`` on the unlabelled rows (scikit-learn's semi-supervised convention).
Inside, the known classes are the clusters ``0 .. n_known - 1`` (in the order
of :attr:`known_classes_`) and the discovered ones follow; outside, a known
cluster is reported with its class label and a discovered one with a new
integer after the largest known label.

References
----------
.. [1] C. Troisemaine, A. Reiffers-Masson, S. Gosselin, V. Lemaire and
   S. Vaton, "A Practical Approach to Novel Class Discovery in Tabular
   Data", Data Mining and Knowledge Discovery, 2024.
"""

import dataclasses
from numbers import Integral

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target

from .._base import DeepClusterer, loadable_device
from .._engine import batched_forward

__all__ = ["UNLABELLED", "DeepDiscoverer", "estimate_n_novel_clusters", "ncd_kmeans"]

UNLABELLED = -1


def check_partial_labels(y, n_samples):
    """Validate semi-supervised labels: integers, ``-1`` for unlabelled rows.

    Returns
    -------
    known_classes : ndarray of int
        The sorted labels of the known classes.
    codes : ndarray of int64
        Each row's index in ``known_classes``, ``-1`` for unlabelled rows.
    """
    if y is None:
        raise ValueError(
            "This estimator requires y to be passed, but the target y is None: give "
            "the known classes' labels, with -1 for the unlabelled samples (e.g. "
            "from sklearn_deepclust.datasets.make_ncd_split)."
        )
    y = np.asarray(y)
    if y.ndim != 1:
        y = np.ravel(y) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or y.shape[0] != n_samples:
        raise ValueError(
            f"y must be a 1d array with one label per sample ({n_samples}); got shape {y.shape}."
        )
    if y.dtype.kind not in "iuf" or type_of_target(y) not in ("binary", "multiclass"):
        try:
            kind = f"{type_of_target(y, input_name='y')} targets"
        except (TypeError, ValueError):  # e.g. strings mixed with None
            kind = "labels"
        raise ValueError(
            "Unknown label type: y must hold integer class labels, with -1 for the "
            f"unlabelled samples; got {kind} of dtype {y.dtype}."
        )
    y = y.astype(np.int64)
    if np.any(y < UNLABELLED):
        raise ValueError(
            "y must hold class labels >= 0 and -1 for unlabelled samples; "
            f"got {np.unique(y[y < UNLABELLED])[:5].tolist()}."
        )
    labelled = y != UNLABELLED
    if not labelled.any():
        raise ValueError(
            "y has no labelled sample (every label is -1); novel class discovery "
            "needs labelled samples of the known classes. Use an unsupervised "
            "clusterer (e.g. sklearn_deepclust.SCAN) when no label is known."
        )
    known_classes, codes = np.unique(y[labelled], return_inverse=True)
    all_codes = np.full(n_samples, UNLABELLED, dtype=np.int64)
    all_codes[labelled] = codes
    return known_classes, all_codes


class DiscoveryMixin:
    """Label bookkeeping of the discovery estimators.

    Fitted attributes set by :meth:`_set_known_classes` and
    :meth:`_set_n_novel_clusters`: ``known_classes_``, ``classes_`` (the
    label of each cluster, in the order of ``predict_proba``'s columns),
    ``n_clusters_`` and ``n_novel_clusters_``.
    """

    # Fitted attributes that only some fits set: cleared by every fit.
    _optional_fitted = ("n_novel_scores_", "split_thresholds_")

    def _set_known_classes(self, y, n_samples):
        for name in self._optional_fitted:
            self.__dict__.pop(name, None)
        self.known_classes_, codes = check_partial_labels(y, n_samples)
        return codes

    def _set_n_novel_clusters(self, n_novel):
        n_known = len(self.known_classes_)
        self.n_novel_clusters_ = int(n_novel)
        self.n_clusters_ = n_known + int(n_novel)
        first_new = int(self.known_classes_.max()) + 1
        self.classes_ = np.concatenate(
            [self.known_classes_, np.arange(first_new, first_new + int(n_novel))]
        ).astype(np.int64)

    def _output_labels(self, clusters):
        """Cluster indices (numpy or torch) to the labels ``predict`` returns."""
        if isinstance(clusters, torch.Tensor):
            clusters = clusters.cpu().numpy()
        return self.classes_[clusters]

    def _novel_count(self, unlabelled_rows, seed, *, given=None, X_known=None, y_known=None):
        """``given``, or the estimate of :func:`estimate_n_novel_clusters`.

        Without ``X_known`` this is the tabular NCD paper's estimate, which
        clusters the unlabelled rows alone and so finds at least two novel
        classes: with one, say so (``n_novel_clusters=1``). Sets
        ``n_novel_scores_`` when it estimates; with fewer than three
        unlabelled rows there is nothing to estimate from and no novel
        cluster is made.
        """
        if given is not None:
            return given
        if unlabelled_rows.shape[0] < 3:
            return 0
        n_novel, self.n_novel_scores_ = estimate_n_novel_clusters(
            _numpy(unlabelled_rows),
            X_known=None if X_known is None else _numpy(X_known),
            y_known=None if y_known is None else _numpy(y_known),
            max_clusters=self.max_novel_clusters,
            random_state=seed,
        )
        return n_novel

    def _check_n_novel_clusters(self, n_unlabelled):
        n_novel = self.n_novel_clusters
        if n_novel is not None and n_novel > n_unlabelled:
            raise ValueError(
                f"n_novel_clusters={n_novel} is larger than the {n_unlabelled} "
                "unlabelled samples given; use n_novel_clusters <= "
                f"{n_unlabelled}, or None to estimate it."
            )

    def predict_novel(self, X):
        """The novel class of samples known to be novel (the NCD setting).

        Novel class discovery papers score a model on test samples of the
        novel classes, choosing only among the discovered classes; this is
        that prediction. ``predict`` chooses among all classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples of novel classes.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Labels of discovered classes only (after the largest known label).
        """
        X_tensor = self._validated_tensor(X)
        if self.n_novel_clusters_ == 0:
            raise ValueError(
                "This model has no novel cluster (n_novel_clusters_=0): fit it with "
                "unlabelled samples, or ask for novel clusters explicitly."
            )
        n_known = len(self.known_classes_)
        scores = self._cluster_scores(X_tensor)[:, n_known:]
        return self._output_labels(n_known + scores.argmax(1))

    def fit_predict(self, X, y, **kwargs):
        """Fit on ``X`` with the partial labels ``y`` and return ``labels_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Known classes' labels, ``-1`` for unlabelled samples.
        **kwargs : dict
            Passed to ``fit``.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self.fit(X, y, **kwargs).labels_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    # Fitted tensors (not modules) that live on ``device_``; pickled from the CPU.
    _fitted_tensors = ()

    def __getstate__(self):
        state = super().__getstate__()
        for name in self._fitted_tensors:
            if name in state:
                state[name] = _move(state[name], "cpu")
        return state

    def __setstate__(self, state):
        device = loadable_device(state)
        super().__setstate__(state)
        for name in self._fitted_tensors:
            if name in state:
                setattr(self, name, _move(state[name], device))


def _numpy(rows):
    return rows.cpu().numpy() if isinstance(rows, torch.Tensor) else rows


def _move(value, device):
    """A tensor, or a dataclass of tensors, on ``device``."""
    if dataclasses.is_dataclass(value):
        fields = {f.name: _move(getattr(value, f.name), device) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **fields)
    return value.to(device)


# ----------------------------------------------------------------- k-means
def _row_norms(X):
    """Squared norm of each row, from a reduction (no ``X * X`` temporary)."""
    return torch.linalg.vector_norm(X, dim=1).square_()


def _squared_distances(X, centroids, row_norms=None):
    """Squared Euclidean distances, ``row_norms`` of ``X`` reused when given.

    Nothing of the size of ``X`` is allocated: on a million rows a fresh
    temporary per call costs more in page faults than the arithmetic.
    """
    row_norms = _row_norms(X) if row_norms is None else row_norms
    offsets = row_norms[:, None] + centroids.square().sum(1)
    return torch.addmm(offsets, X, centroids.T, alpha=-2).clamp_min_(0)


def _kmeans_plus_plus(X, fixed, n_new, generator, row_norms=None):
    """k-means++ seeding of ``n_new`` centroids, given the ``fixed`` ones."""
    centroids = fixed
    for _ in range(n_new):
        if centroids.shape[0] == 0:
            weights = torch.ones(X.shape[0], device=X.device)
        else:
            weights = _squared_distances(X, centroids, row_norms).min(1).values
            # All rows on a centroid already: draw uniformly among them.
            weights = torch.where(weights.sum() > 0, weights, torch.ones_like(weights))
        pick = torch.multinomial(weights, 1, generator=generator)
        centroids = torch.cat([centroids, X[pick]])
    return centroids[fixed.shape[0] :]


def _group_sums(X, groups, n_groups):
    """Sum and count of the rows of each group; rows of group ``< 0`` are left out.

    The left-out rows go to an extra group that is dropped, so that no
    masked ``n_samples x n_features`` copy of ``X`` is made.
    """
    bucket = torch.where(groups >= 0, groups, n_groups)
    sums = X.new_zeros(n_groups + 1, X.shape[1]).index_add_(0, bucket, X)
    counts = torch.bincount(bucket, minlength=n_groups + 1).to(X.dtype)
    return sums[:n_groups], counts[:n_groups]


def _mean_variance(X, chunk_size=16384):
    """Mean over features of the (unbiased) variance of ``X``, chunk by chunk.

    Each chunk is centred on its own mean and the chunks are combined as in
    Chan, Golub and LeVeque's pairwise update: as exact as ``X.var(0)``, and
    twice as fast on a million rows, where one pass over ``X`` in cache-sized
    chunks beats a strided reduction over the whole column.
    """
    mean = X.new_zeros(X.shape[1])
    sum_of_squares = X.new_zeros(X.shape[1])
    count = 0
    for start in range(0, X.shape[0], chunk_size):
        chunk = X[start : start + chunk_size]
        size = chunk.shape[0]
        chunk_variance, chunk_mean = torch.var_mean(chunk, dim=0, correction=0)
        delta = chunk_mean - mean
        total = count + size
        mean = mean + delta * (size / total)
        sum_of_squares += chunk_variance * size + delta.square() * (count * size / total)
        count = total
    return (sum_of_squares / (count - 1)).mean()


def _update_novel(X, assignment, novel, n_known):
    """Means of the rows assigned to each novel centroid (empty ones stay put)."""
    sums, counts = _group_sums(X, assignment - n_known, novel.shape[0])
    return torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], novel)


def ncd_kmeans(X, known_centroids, n_novel, *, n_init=10, max_iter=300, tol=1e-4, generator=None):
    """k-means whose known centroids are fixed: only the novel ones move.

    NCD k-means of [1]_: the known classes' centroids come from their
    labelled samples and stay fixed; ``n_novel`` new centroids are seeded
    by k-means++ (each draw proportional to the squared distance to the
    nearest centroid, known ones included) and refined by Lloyd iterations in
    which every row goes to its nearest centroid, known or novel, and only
    the novel centroids are recomputed. The best of ``n_init`` runs (lowest
    inertia) is kept. Runs on the device of ``X``.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        The unlabelled rows.
    known_centroids : torch.Tensor of shape (n_known, n_features)
        One centroid per known class (may have zero rows).
    n_novel : int
        Number of novel centroids; 0 returns the known centroids alone.
    n_init : int, default=10
        Number of seedings.
    max_iter : int, default=300
        Lloyd iterations per seeding at most.
    tol : float, default=1e-4
        Stop when the novel centroids move less than ``tol`` times the mean
        feature variance of ``X`` (squared Frobenius norm), as
        :class:`sklearn.cluster.KMeans` does.
    generator : torch.Generator or None
        Seeds the k-means++ draws (on the device of ``X``).

    Returns
    -------
    centroids : torch.Tensor of shape (n_known + n_novel, n_features)
        The known centroids, then the novel ones.
    inertia : float
        Sum of squared distances of the rows to their nearest centroid.
    n_iter : int
        Lloyd iterations of the kept seeding.

    References
    ----------
    .. [1] C. Troisemaine et al., "A Practical Approach to Novel Class
       Discovery in Tabular Data", Data Mining and Knowledge Discovery, 2024.
    """
    n_known = known_centroids.shape[0]
    if n_novel == 0:
        if known_centroids.shape[0] == 0 or X.shape[0] == 0:
            return known_centroids, 0.0, 1
        inertia = _squared_distances(X, known_centroids).min(1).values.sum()
        return known_centroids, float(inertia), 1  # one assignment pass
    threshold = float(tol * _mean_variance(X)) if X.shape[0] > 1 else 0.0
    best_centroids, best_inertia, best_n_iter = None, np.inf, 0
    row_norms = _row_norms(X)  # shared by every distance computation below
    for _ in range(n_init):
        novel = _kmeans_plus_plus(X, known_centroids, n_novel, generator, row_norms)
        for n_iter in range(1, max_iter + 1):  # noqa: B007 (read after the loop)
            centroids = torch.cat([known_centroids, novel])
            assignment = _squared_distances(X, centroids, row_norms).argmin(1)
            updated = _update_novel(X, assignment, novel, n_known)
            shift = float(((updated - novel) ** 2).sum())  # one sync per Lloyd step
            novel = updated
            if shift <= threshold:
                break
        centroids = torch.cat([known_centroids, novel])
        inertia = float(_squared_distances(X, centroids, row_norms).min(1).values.sum())
        if inertia < best_inertia:
            best_centroids, best_inertia, best_n_iter = centroids, inertia, n_iter
    if best_centroids is None:
        raise ValueError(
            "every k-means seeding gave a non-finite inertia: the squared distances "
            "overflow float32. Scale the features first (e.g. StandardScaler)."
        )
    return best_centroids, best_inertia, best_n_iter


def class_means(X, codes, n_classes):
    """Mean of the labelled rows of each known class (``codes`` in 0..n_classes-1, -1 skipped)."""
    sums, counts = _group_sums(X, codes, n_classes)
    return sums / counts.clamp_min(1)[:, None]


# ------------------------------------------------------- number of classes
def estimate_n_novel_clusters(
    X,
    *,
    X_known=None,
    y_known=None,
    max_clusters=30,
    min_clusters=None,
    n_init=3,
    sample_size=3000,
    random_state=None,
):
    """Estimate the number of novel classes among unlabelled samples.

    The procedure of the tabular NCD paper [1]_: cluster the unlabelled
    samples (best in a learned latent space) by k-means for every ``k`` from
    ``min_clusters`` to ``max_clusters`` and keep the ``k`` of the highest
    silhouette coefficient. Alone, the unlabelled samples need two clusters
    for a silhouette: the answer is at least 2. A flat curve of ``scores``
    means that the estimate is a guess.

    When the unlabelled samples may also hold known classes (generalised
    category discovery), pass the labelled samples too: each ``k`` is then
    clustered by :func:`ncd_kmeans` with the known classes' centroids fixed,
    and the silhouette scores the labelled and unlabelled samples together
    (labelled ones in their class), so that a novel class hidden inside a
    known cluster costs as much as two classes in one novel cluster.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The unlabelled samples, or their embedding (e.g. ``PBN().transform``).
    X_known : array-like of shape (n_labelled, n_features) or None
        The labelled samples in the same space, or None (NCD: the unlabelled
        samples are all novel and are clustered alone).
    y_known : array-like of shape (n_labelled,) or None
        Their class labels.
    max_clusters : int, default=30
        Largest number of novel classes considered (capped at
        ``n_samples - 1``).
    min_clusters : int or None, default=None
        Smallest number considered: 2 without labelled samples (the
        silhouette needs two clusters), else 1.
    n_init : int, default=3
        k-means restarts for each ``k``.
    sample_size : int or None, default=3000
        Rows drawn to compute each silhouette (it is quadratic in the rows);
        None uses them all.
    random_state : int, RandomState instance or None, default=None
        Seeds k-means and the silhouette's sample.

    Returns
    -------
    n_clusters : int
        The estimate.
    scores : dict
        ``{k: silhouette}`` for every ``k`` tried.

    References
    ----------
    .. [1] C. Troisemaine et al., "A Practical Approach to Novel Class
       Discovery in Tabular Data", Data Mining and Knowledge Discovery, 2024
       (section 5, Table 10).

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn_deepclust.discovery import estimate_n_novel_clusters
    >>> X, _ = make_blobs(300, centers=4, cluster_std=0.5, random_state=0)
    >>> estimate_n_novel_clusters(X, max_clusters=8, random_state=0)[0]
    4
    """
    X = np.asarray(X, dtype=np.float64)
    n_samples = X.shape[0]
    smallest = 2 if X_known is None else 1
    min_clusters = smallest if min_clusters is None else min_clusters
    for name, value in (("min_clusters", min_clusters), ("max_clusters", max_clusters)):
        if not isinstance(value, Integral) or value < smallest:
            raise ValueError(f"{name} must be an integer >= {smallest}; got {value!r}.")
    if n_samples < 3:
        raise ValueError(
            f"estimating the number of classes needs at least 3 samples; got {n_samples}."
        )
    max_clusters = min(max_clusters, n_samples - 1)
    if min_clusters > max_clusters:
        raise ValueError(
            f"min_clusters={min_clusters} exceeds the largest number of clusters "
            f"possible here ({max_clusters})."
        )
    rng = check_random_state(random_state)
    known = None
    if X_known is not None:
        X_known = np.asarray(X_known, dtype=np.float64)
        classes, codes = np.unique(np.asarray(y_known), return_inverse=True)
        known = (
            X_known,
            codes,
            np.stack([X_known[codes == c].mean(0) for c in range(len(classes))]),
        )
    scores = {}
    for k in range(min_clusters, max_clusters + 1):
        rows, labels = _cluster_for_estimate(X, known, k, n_init, rng.randint(2**31 - 1))
        if len(np.unique(labels)) < 2:
            scores[k] = -1.0
            continue
        sample = None if sample_size is None or sample_size >= len(rows) else sample_size
        seed = rng.randint(2**31 - 1)
        scores[k] = float(silhouette_score(rows, labels, sample_size=sample, random_state=seed))
    return max(scores, key=scores.get), scores


def _cluster_for_estimate(X, known, k, n_init, seed):
    """The rows the silhouette scores and their labels, for ``k`` novel clusters."""
    if known is None:
        return X, KMeans(k, n_init=n_init, random_state=seed).fit_predict(X)
    X_known, codes, centres = known
    X_tensor = torch.from_numpy(X)
    generator = torch.Generator().manual_seed(int(seed))
    centroids, _, _ = ncd_kmeans(
        X_tensor, torch.from_numpy(centres), k, n_init=n_init, generator=generator
    )
    labels = _squared_distances(X_tensor, centroids).argmin(1).numpy()
    return np.concatenate([X, X_known]), np.concatenate([labels, codes])


class DeepDiscoverer(DiscoveryMixin, DeepClusterer):
    """A :class:`~sklearn_deepclust.DeepClusterer` fitted on partial labels.

    ``fit`` requires ``y``; ``_fit`` receives the known-class codes (row
    indices into ``known_classes_``, ``-1`` for unlabelled rows) as a numpy
    array, and ``predict`` maps cluster indices to labels.
    """

    def fit(self, X, y):
        """Train on the labelled and unlabelled samples and find the novel classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Labelled and unlabelled samples (numeric; converted to float32).
        y : array-like of shape (n_samples,)
            Class labels of the known classes, ``-1`` for unlabelled samples.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return super().fit(X, y)

    def _check_fit_targets(self, X, y):
        return self._set_known_classes(y, X.shape[0])

    def _check_n_clusters(self, n_samples):
        """Checked against the labels in ``_fit``."""

    def _predict_tensor(self, X_tensor):
        return self._output_labels(super()._predict_tensor(X_tensor))

    def _cluster_scores(self, X_tensor):
        return batched_forward(self._cluster_log_proba, X_tensor, self.batch_size)
