"""GMMGCD: generalised category discovery with a semi-supervised Gaussian mixture (GPC)."""

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval
from torch import nn
from torch.nn import functional as F

from .._base import DeepClusterer
from .._engine import batched_forward
from ..augment import TabularView
from ..pretext import ContrastiveNetwork, RandomViews, info_nce_loss, supervised_contrastive_loss
from ._base import (
    DeepDiscoverer,
    _squared_distances,
    class_means,
    ncd_kmeans,
)
from ._mixture import (
    _log_gaussian,
    initial_state,
    known_class_split_evidence,
    semi_supervised_em,
    split_and_merge,
)

__all__ = ["GMMGCD"]


class _GCDContrastiveLoss(nn.Module):
    """``(1 - lambda)`` InfoNCE over all rows + ``lambda`` SupCon over labelled rows (GCD)."""

    def __init__(self, codes, supervised_weight, temperature, supervised_temperature):
        super().__init__()
        self.codes = codes
        self.supervised_weight = supervised_weight
        self.temperature = temperature
        self.supervised_temperature = supervised_temperature

    def forward(self, output, index, x):
        z_a, z_b = output.chunk(2)
        codes = self.codes[index]
        unsupervised = info_nce_loss(z_a, z_b, self.temperature)
        supervised = supervised_contrastive_loss(
            output, torch.cat([codes, codes]), self.supervised_temperature
        )
        weight = self.supervised_weight
        return (1 - weight) * unsupervised + weight * supervised


class GMMGCD(DeepDiscoverer):
    """Generalised category discovery by a semi-supervised Gaussian mixture.

    A tabular version of GPC (Zhao, Wen and Han [1]_). The unlabelled samples
    may belong to known or novel classes, and the number of classes may be
    unknown:

    1. **representation**: an encoder is trained on two random tabular views
       of every sample (SCARF feature corruption) with GCD's loss,
       ``(1 - lambda)`` times the self-supervised InfoNCE over all samples
       plus ``lambda`` times the supervised contrastive loss over the
       labelled ones;
    2. **mixture**: a diagonal Gaussian mixture is fitted to the normalised
       embedding by EM in which each labelled sample belongs to its class's
       component for good (the known components are anchored) and the
       unlabelled samples are soft; the novel components start from NCD
       k-means;
    3. **number of classes** (``n_clusters=None``): a first estimate of the
       number of novel classes is the silhouette's choice among NCD k-means
       partitions of the unlabelled samples (known centroids fixed, see
       :func:`estimate_n_novel_clusters`); then rounds of **split and
       merge** change the novel components, each followed by EM, until a
       round changes nothing. A move is judged by DeepDPM's Hastings ratio
       under a Dirichlet-process mixture with a normal-inverse-gamma prior,
       as in GPC, measured along the line between the two parts and
       calibrated on the known classes: a component is split only when its
       evidence for two modes (per sample) exceeds that of every known
       class's labelled samples cut in two, and two components are merged
       when theirs falls below that of every known class and its nearest
       known class.
       Known components are never merged with each other; one may shed a
       part that holds almost none of its labelled samples (a novel class
       the mixture had hidden in it), which becomes a novel component.

    ``predict`` is the most probable component; ``predict_proba`` its
    posterior probabilities, in the order of ``classes_``.

    Parameters
    ----------
    n_clusters : int or None, default=None
        Total number of classes, known and novel (at least the number of
        known classes). None estimates it (step 3).
    supervised_weight : float in [0, 1], default=0.35
        ``lambda``, the weight of the supervised contrastive loss (GCD's).
    temperature : float, default=0.5
        Temperature of the self-supervised InfoNCE.
    supervised_temperature : float, default=0.07
        Temperature of the supervised contrastive loss (SupCon's).
    corruption_rate : float, default=0.3
        Fraction of features replaced in each view (SCARF corruption). GCD's
        supervised term needs views that keep a sample's class: on the GCD
        splits of pendigits, optdigits and letter, 0.3 gave 0.89/0.89/0.64
        all-accuracy (K known) where the package's pretext default 0.6
        gave 0.76 on pendigits.
    hidden_dims : sequence of int, default=(256, 256)
        Hidden layers of the default MLP encoder.
    embedding_dim : int, default=32
        Width of the embedding the mixture lives in.
    projection_dim : int, default=128
        Width of the contrastive projection head.
    module : torch.nn.Module or None, default=None
        A custom encoder instead of the MLP.
    max_novel_clusters : int, default=30
        Largest number of novel classes: the starting estimate considers up
        to it, and split moves stop there (the strongest splits are made).
    split_merge_rounds : int, default=10
        Most rounds of split and merge when ``n_clusters=None``.
    concentration : float, default=1.0
        The Dirichlet process's ``alpha`` in the split and merge ratios
        (GPC's value); larger values favour more classes.
    em_max_iter : int, default=100
        EM iterations per fit of the mixture.
    tol : float, default=1e-3
        EM stops when the mean log-likelihood changes by less.
    reg_covar : float, default=1e-5
        Added to every variance of the mixture.
    batch_size : int, default=256
        Mini-batch size of the representation training, at least 2.
    max_epochs : int, default=100
        Epochs of the representation training.
    lr : float, default=1e-3
        Learning rate.
    optimizer : type, default=torch.optim.Adam
        A ``torch.optim.Optimizer`` subclass.
    device : str or torch.device, default="cpu"
        Where training and inference run.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, views, batches and the k-means seedings.
    verbose : int, default=0
        0 silent, 1 one line per epoch, 2 also a progress bar.

    Attributes
    ----------
    classes_ : ndarray of shape (`n_clusters_`,)
        Label of each component: known labels, then new ones.
    known_classes_ : ndarray
        Labels of the known classes.
    n_clusters_ : int
        Components of the fitted mixture.
    n_novel_clusters_ : int
        Novel components (``n_clusters_ - len(known_classes_)``).
    means_, variances_ : ndarray of shape (`n_clusters_`, embedding_dim)
        The mixture's components in the embedding.
    weights_ : ndarray of shape (`n_clusters_`,)
        Mixing weights.
    n_novel_scores_ : dict
        Silhouette per number of novel classes of the first estimate (when
        ``n_clusters=None``).
    split_thresholds_ : (float, float)
        The calibration of the moves on the known classes (when
        ``n_clusters=None``): the per-sample evidence of two classes a split
        must exceed, and the one a merge must fall below.
    split_merge_history_ : list of dict
        One entry per mixture fit: ``n_clusters``, ``splits``, ``merges``
        (of the round before it) and the mean ``log_likelihood``.
    labels_ : ndarray of shape (n_samples,)
        ``predict`` on the training samples.
    encoder_module_ : torch.nn.Module
    history_ : dict of skorch.History
        ``"representation"``: the contrastive training.
    device_ : torch.device
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined when ``X`` has string column names.

    See Also
    --------
    PBN, NCDKMeans : When the unlabelled samples are of novel classes only.

    Notes
    -----
    Departures from GPC, for tabular data and a CPU budget:

    - the encoder is trained once, before the mixture, without GPC's
      prototype contrastive term that alternates with the mixture each
      epoch;
    - the components are diagonal Gaussians fitted by soft EM (GPC's code
      runs hard, k-means-like assignments with full covariances);
    - the number of classes starts from a silhouette estimate (GPC's code
      starts every epoch from the true number);
    - a move is accepted by a deterministic rule, so that a CPU fit is
      repeatable, measured along the line between its two parts, and
      calibrated on the known classes: with DeepDPM's plain "ratio above
      one" in all dimensions the moves kept splitting the non-Gaussian
      clusters of a learned embedding (pendigits' GCD split: 147
      components after 10 rounds for 10 classes; along the line: 21 to 26;
      calibrated: 9 to 11);
    - a known component may shed a novel part (GPC never splits them): a
      novel class that the first EM folded into a known class is otherwise
      never found.

    The paper reports All/Old/New accuracy on images (CIFAR-100
    75.4/84.6/60.1, ImageNet-100 75.3/93.4/66.7).

    References
    ----------
    .. [1] B. Zhao, X. Wen and K. Han, "Learning Semi-supervised Gaussian
       Mixture Models for Generalized Category Discovery", ICCV 2023.
    .. [2] S. Vaze, K. Han, A. Vedaldi and A. Zisserman, "Generalized
       Category Discovery", CVPR 2022.
    .. [3] M. Ronen, S. E. Finder and O. Freifeld, "DeepDPM: Deep Clustering
       With an Unknown Number of Clusters", CVPR 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn_deepclust.discovery import GMMGCD
    >>> X, y = make_blobs(300, n_features=8, centers=5, random_state=0)
    >>> y_partial = np.where((y < 3) & (np.arange(300) % 2 == 0), y, -1)
    >>> model = GMMGCD(n_clusters=5, hidden_dims=(32,), embedding_dim=8,
    ...                max_epochs=10, random_state=0).fit(X, y_partial)
    >>> model.classes_.tolist()
    [0, 1, 2, 3, 4]
    """

    _parameter_constraints: dict = {
        **DeepClusterer._parameter_constraints,
        "n_clusters": [None, Interval(Integral, 1, None, closed="left")],
        "supervised_weight": [Interval(Real, 0, 1, closed="both")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "supervised_temperature": [Interval(Real, 0, None, closed="neither")],
        "corruption_rate": [Interval(Real, 0, 1, closed="both")],
        "projection_dim": [Interval(Integral, 1, None, closed="left")],
        "max_novel_clusters": [Interval(Integral, 1, None, closed="left")],
        "split_merge_rounds": [Interval(Integral, 0, None, closed="left")],
        "concentration": [Interval(Real, 0, None, closed="neither")],
        "em_max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "reg_covar": [Interval(Real, 0, None, closed="left")],
    }
    _fitted_tensors = ("_mixture",)

    def __init__(
        self,
        n_clusters=None,
        *,
        supervised_weight=0.35,
        temperature=0.5,
        supervised_temperature=0.07,
        corruption_rate=0.3,
        hidden_dims=(256, 256),
        embedding_dim=32,
        projection_dim=128,
        module=None,
        max_novel_clusters=30,
        split_merge_rounds=10,
        concentration=1.0,
        em_max_iter=100,
        tol=1e-3,
        reg_covar=1e-5,
        batch_size=256,
        max_epochs=100,
        lr=1e-3,
        optimizer=torch.optim.Adam,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.n_clusters = n_clusters
        self.supervised_weight = supervised_weight
        self.temperature = temperature
        self.supervised_temperature = supervised_temperature
        self.corruption_rate = corruption_rate
        self.hidden_dims = hidden_dims
        self.embedding_dim = embedding_dim
        self.projection_dim = projection_dim
        self.module = module
        self.max_novel_clusters = max_novel_clusters
        self.split_merge_rounds = split_merge_rounds
        self.concentration = concentration
        self.em_max_iter = em_max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.lr = lr
        self.optimizer = optimizer
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _n_novel_to_start(self, n_known, n_unlabelled):
        if self.n_clusters is None:
            return None  # estimated in the embedding
        if self.n_clusters < n_known:
            raise ValueError(
                f"n_clusters={self.n_clusters} is smaller than the {n_known} known "
                f"classes in y; use n_clusters >= {n_known}, or None to estimate it."
            )
        n_novel = self.n_clusters - n_known
        if n_novel > n_unlabelled:
            raise ValueError(
                f"n_clusters={self.n_clusters} asks for {n_novel} novel classes but "
                f"only {n_unlabelled} samples are unlabelled; use n_clusters <= "
                f"{n_known + n_unlabelled}."
            )
        return n_novel

    def _fit(self, X, codes, *, seed, device):
        n_known = len(self.known_classes_)
        n_novel = self._n_novel_to_start(n_known, int((codes < 0).sum()))
        codes = torch.from_numpy(codes).to(device)
        self.encoder_module_ = self._build_encoder(X.shape[1], device)
        network = ContrastiveNetwork(
            self.encoder_module_, self._n_features_out, self.projection_dim
        ).to(device)
        view = TabularView(corruption_rate=self.corruption_rate).fit(X)
        loss = _GCDContrastiveLoss(
            codes, self.supervised_weight, self.temperature, self.supervised_temperature
        )
        self.history_ = {
            "representation": self._train_phase(
                "representation",
                network,
                loss,
                X,
                max_epochs=self.max_epochs,
                seed=seed,
                batch_inputs=RandomViews(view, 2, seed, device),
            )
        }
        self.encoder_module_.eval()
        # The mixture is fitted in float64: small variances on a normalised
        # embedding make the expanded quadratic of float32 lose digits.
        embedding = batched_forward(self._embed, X, self.batch_size).double()
        generator = torch.Generator(device=device).manual_seed(seed)
        self._mixture = self._fit_mixture(embedding, codes, n_known, n_novel, generator)
        self._set_n_novel_clusters(self._mixture.n_components - n_known)
        for name in ("means", "variances", "weights"):
            setattr(self, f"{name}_", getattr(self._mixture, name).cpu().numpy())

    def _fit_mixture(self, Z, codes, n_known, n_novel, generator):
        """Step 2 (EM from NCD k-means) and step 3 (split and merge rounds)."""
        unlabelled = codes < 0
        known = class_means(Z, codes, n_known)
        if n_novel is None:
            seed = int(torch.randint(2**31 - 1, (1,), generator=generator, device=Z.device))
            n_novel = self._novel_count(
                Z[unlabelled], seed, X_known=Z[~unlabelled], y_known=codes[~unlabelled]
            )
        centroids, _, _ = ncd_kmeans(Z[unlabelled], known, n_novel, n_init=3, generator=generator)
        nearest = _squared_distances(Z, centroids).argmin(1)
        assignment = torch.where(unlabelled, nearest, codes)
        n_components = n_known + n_novel
        moves = {"splits": 0, "merges": 0}
        self.split_merge_history_ = []
        rounds = self.split_merge_rounds if self.n_clusters is None else 0
        if rounds:
            self.split_thresholds_ = known_class_split_evidence(
                Z, codes, n_known, generator=generator, concentration=self.concentration
            )
        for round_ in range(rounds + 1):
            state = initial_state(Z, assignment, n_components, self.reg_covar)
            state, log_resp, log_likelihood, _ = semi_supervised_em(
                Z,
                codes,
                state,
                max_iter=self.em_max_iter,
                tol=self.tol,
                reg_covar=self.reg_covar,
            )
            self.split_merge_history_.append(
                {"n_clusters": n_components, **moves, "log_likelihood": log_likelihood}
            )
            if round_ == rounds:
                break
            assignment, n_components, moves = split_and_merge(
                Z,
                codes,
                log_resp,
                n_known,
                generator=generator,
                concentration=self.concentration,
                thresholds=self.split_thresholds_,
                max_components=n_known + self.max_novel_clusters,
            )
            if moves["splits"] == moves["merges"] == 0:
                break
        return state

    def _embed(self, X):
        return F.normalize(self.encoder_module_(X), dim=1)

    def _weighted_log_density(self, X):
        embedding = self._embed(X).double()
        return _log_gaussian(embedding, self._mixture) + torch.log(self._mixture.weights)

    def _cluster_log_proba(self, X):
        return torch.log_softmax(self._weighted_log_density(X), dim=1).float()

    def _objective(self, X):
        """Minus the mean log-likelihood of the mixture in the embedding."""
        log_density = batched_forward(self._weighted_log_density, X, self.batch_size)
        return -torch.logsumexp(log_density, dim=1).mean()
