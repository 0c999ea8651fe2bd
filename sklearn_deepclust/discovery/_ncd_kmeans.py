"""NCD k-means: k-means that keeps the known classes and finds the novel ones."""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from .._base import repeatable_on, resolve_device, seeded_torch, to_tensor, validated_tensor
from ._base import (
    DiscoveryMixin,
    _squared_distances,
    class_means,
    ncd_kmeans,
)

__all__ = ["NCDKMeans"]


class NCDKMeans(DiscoveryMixin, ClusterMixin, TransformerMixin, BaseEstimator):
    """k-means for novel class discovery: known centroids fixed, novel ones found.

    The NCD k-means of Troisemaine et al. [1]_. Each known class's centroid
    is the mean of its labelled samples and never moves; ``n_novel_clusters``
    new centroids are seeded among the unlabelled samples by k-means++
    (away from the known centroids) and refined by Lloyd iterations in which
    an unlabelled sample may join a known centroid or a novel one, but only
    the novel centroids are updated. It works in the input space or, placed
    after a fitted encoder in a :class:`~sklearn.pipeline.Pipeline` (e.g.
    :class:`~sklearn_deepclust.discovery.PBN`), in its embedding.

    Parameters
    ----------
    n_novel_clusters : int or None, default=None
        Number of novel classes. None estimates it from the unlabelled
        samples with :func:`estimate_n_novel_clusters` (silhouette of
        k-means for 2 to ``max_novel_clusters`` clusters, so at least two);
        with fewer than three unlabelled samples no novel cluster is made.
    max_novel_clusters : int, default=30
        Largest number of novel classes the estimate considers.
    n_init : int, default=10
        Number of k-means++ seedings; the one of lowest inertia is kept.
    max_iter : int, default=300
        Lloyd iterations per seeding at most.
    tol : float, default=1e-4
        Convergence tolerance on the movement of the novel centroids,
        relative to the mean feature variance (as in
        :class:`~sklearn.cluster.KMeans`).
    device : str or torch.device, default="cpu"
        Where the iterations run (``"cuda"`` for a GPU).
    random_state : int, RandomState instance or None, default=None
        Seeds the seedings and the estimate of the number of classes.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (`n_clusters_`, n_features)
        The known classes' centroids (in the order of ``known_classes_``),
        then the novel ones.
    classes_ : ndarray of shape (`n_clusters_`,)
        The label ``predict`` gives to each centroid: the known classes'
        own labels, then new integers after the largest known label.
    known_classes_ : ndarray
        The labels of the known classes.
    n_clusters_ : int
        Known plus novel clusters.
    n_novel_clusters_ : int
        Novel clusters used (given or estimated).
    labels_ : ndarray of shape (n_samples,)
        ``predict`` on the training samples (labelled ones included).
    inertia_ : float
        Sum of squared distances of the unlabelled samples to their centroid.
    n_iter_ : int
        Lloyd iterations of the kept seeding.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined when ``X`` has string column names.

    See Also
    --------
    PBN : Learns an embedding where this clustering works better.
    GMMGCD : Semi-supervised Gaussian mixture that estimates the number of classes.

    References
    ----------
    .. [1] C. Troisemaine, A. Reiffers-Masson, S. Gosselin, V. Lemaire and
       S. Vaton, "A Practical Approach to Novel Class Discovery in Tabular
       Data", Data Mining and Knowledge Discovery, 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn_deepclust.discovery import NCDKMeans
    >>> X, y = make_blobs(200, centers=4, cluster_std=0.5, random_state=0)
    >>> y_partial = np.where(y < 2, y, -1)   # classes 2 and 3 are unknown
    >>> model = NCDKMeans(n_novel_clusters=2, random_state=0).fit(X, y_partial)
    >>> model.classes_.tolist()
    [0, 1, 2, 3]
    >>> model.n_clusters_
    4
    """

    _parameter_constraints: dict = {
        "n_novel_clusters": [None, Interval(Integral, 0, None, closed="left")],
        "max_novel_clusters": [Interval(Integral, 2, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
    }
    _fitted_tensors = ("_centroids", "_offset")

    def __init__(
        self,
        n_novel_clusters=None,
        *,
        max_novel_clusters=30,
        n_init=10,
        max_iter=300,
        tol=1e-4,
        device="cpu",
        random_state=None,
    ):
        self.n_novel_clusters = n_novel_clusters
        self.max_novel_clusters = max_novel_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.device = device
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Place the known centroids and find the novel ones.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Labelled and unlabelled samples.
        y : array-like of shape (n_samples,)
            Class labels of the known classes, ``-1`` for unlabelled samples.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X = validate_data(self, X, dtype=[np.float32, np.float64], ensure_min_samples=2)
        codes = self._set_known_classes(y, X.shape[0])
        unlabelled = codes < 0
        self._check_n_novel_clusters(int(unlabelled.sum()))
        rng = check_random_state(self.random_state)
        n_novel = self._novel_count(
            X[unlabelled], rng.randint(2**31 - 1), given=self.n_novel_clusters
        )
        self._set_n_novel_clusters(n_novel)
        device = resolve_device(self.device)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        # Distances are computed as |x|^2 + |c|^2 - 2 x.c in float32, which
        # cancels catastrophically far from the origin: centre the data on its
        # mean first (as scikit-learn's KMeans does) and keep centroids centred.
        mean = X.mean(axis=0, dtype=np.float64)
        self._offset = torch.from_numpy(mean).float().to(device)
        with seeded_torch(seed, device):
            X_tensor = to_tensor(X, device, self._offset)
            codes_tensor = torch.from_numpy(codes).to(device)
            known = class_means(X_tensor, codes_tensor, len(self.known_classes_))
            generator = torch.Generator(device=device).manual_seed(seed)
            unlabelled_rows = X_tensor[torch.from_numpy(unlabelled).to(device)]
            centroids, self.inertia_, self.n_iter_ = ncd_kmeans(
                unlabelled_rows,
                known,
                n_novel,
                n_init=self.n_init,
                max_iter=self.max_iter,
                tol=self.tol,
                generator=generator,
            )
        self.device_ = device
        self._centroids = centroids
        self.cluster_centers_ = (centroids.cpu().double().numpy() + mean).astype(np.float32)
        self.labels_ = self._predict_tensor(X_tensor)
        return self

    def _cluster_scores(self, X_tensor):
        return -_squared_distances(X_tensor, self._centroids)

    def _predict_tensor(self, X_tensor):
        return self._output_labels(self._cluster_scores(X_tensor).argmax(1))

    def _validated_tensor(self, X):
        # A model pickled before centring has no offset: its centroids are raw.
        return validated_tensor(self, X, getattr(self, "_offset", None))

    def predict(self, X):
        """The label of the nearest centroid: a known class or a novel one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Known classes' labels, or new labels after the largest known one.
        """
        return self._predict_tensor(self._validated_tensor(X))

    def transform(self, X):
        """Euclidean distance of each sample to every centroid (as ``KMeans``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data.

        Returns
        -------
        distances : ndarray of shape (n_samples, `n_clusters_`)
            Columns in the order of ``classes_``.
        """
        X_tensor = self._validated_tensor(X)
        return _squared_distances(X_tensor, self._centroids).sqrt().cpu().numpy()

    def score(self, X, y=None):
        """Minus the sum of squared distances to the nearest centroid (as ``KMeans``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        score : float
        """
        X_tensor = self._validated_tensor(X)
        return -float(_squared_distances(X_tensor, self._centroids).min(1).values.sum())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = not repeatable_on(self.device)
        return tags

    def get_feature_names_out(self, input_features=None):
        """One output name per centroid: ``ncdkmeans0``, ``ncdkmeans1``, ...

        Parameters
        ----------
        input_features : Ignored

        Returns
        -------
        feature_names_out : ndarray of str
        """
        check_is_fitted(self)
        return np.asarray([f"ncdkmeans{i}" for i in range(self.n_clusters_)], dtype=object)
