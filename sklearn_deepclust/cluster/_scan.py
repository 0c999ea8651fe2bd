"""SCAN: clustering by agreeing with mined nearest neighbours, then self-labelling.

References
----------
.. [1] W. Van Gansbeke, S. Vandenhende, S. Georgoulis, M. Proesmans and
   L. Van Gool, "SCAN: Learning to Classify Images without Labels", ECCV 2020."""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn
from torch.nn import functional as F

from .._base import EPOCHS_OR_AUTO, DeepClusterer
from .._engine import StepBudget, batched_forward
from ..augment import TabularView
from ..neighbors import mine_neighbors
from ..pretext import PRETEXT_TASKS, RandomViews

__all__ = ["SCAN", "scan_loss", "self_label_thresholds"]


def _mean_entropy(log_proba):
    """Entropy of the mean assignment over the batch axis (second to last)."""
    mean = log_proba.exp().mean(dim=-2)
    return -(mean * torch.log(mean.clamp_min(1e-8))).sum(dim=-1)


def scan_loss(anchor_logits, neighbor_logits, entropy_weight=5.0):
    """The SCAN loss of Van Gansbeke et al. (2020), Eq. 2, per head.

    ``-mean_i log <p_i, p_n(i)> - entropy_weight * H(mean_i p_i)``: each
    sample must agree with its neighbour, and the entropy of the mean
    assignment keeps all samples from falling into one cluster.

    Parameters
    ----------
    anchor_logits : torch.Tensor of shape (..., batch, n_clusters)
        Cluster logits of the samples (a leading axis may index heads).
    neighbor_logits : torch.Tensor of the same shape
        Logits of one mined neighbour of each sample.
    entropy_weight : float, default=5.0
        Weight of the entropy term (the paper's lambda).

    Returns
    -------
    loss : torch.Tensor of shape (...)
        One loss per head (a scalar for 2-D input).

    Examples
    --------
    >>> import torch
    >>> from sklearn_deepclust.cluster import scan_loss
    >>> agree = torch.tensor([[9.0, 0.0], [0.0, 9.0]])
    >>> bool(scan_loss(agree, agree) < scan_loss(agree, agree.flip(0)))
    True
    """
    log_p_anchor = F.log_softmax(anchor_logits, dim=-1)
    log_p_neighbor = F.log_softmax(neighbor_logits, dim=-1)
    # log <p, q> computed as a logsumexp: finite even when p and q disagree.
    consistency = -torch.logsumexp(log_p_anchor + log_p_neighbor, dim=-1).mean(dim=-1)
    return consistency - entropy_weight * _mean_entropy(log_p_anchor)


class _LinearHeads(nn.Module):
    """``n_heads`` linear clustering heads computed as one matrix product.

    Equivalent to a list of ``nn.Linear(in_features, n_clusters)`` with the
    same initialisation, but one weight tensor: a step touches one parameter
    instead of ``2 * n_heads``, which is most of a small table's step time.
    """

    def __init__(self, in_features, n_clusters, n_heads):
        super().__init__()
        bound = in_features**-0.5
        self.weight = nn.Parameter(torch.empty(n_heads, n_clusters, in_features))
        self.bias = nn.Parameter(torch.empty(n_heads, n_clusters))
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def __len__(self):
        return self.weight.shape[0]

    def forward(self, embedding):
        n_heads, n_clusters, in_features = self.weight.shape
        logits = F.linear(embedding, self.weight.reshape(-1, in_features), self.bias.reshape(-1))
        return logits.view(-1, n_heads, n_clusters).transpose(0, 1)  # (heads, batch, K)

    def select(self, head):
        """A copy holding head ``head`` only."""
        kept = _LinearHeads(self.weight.shape[2], self.weight.shape[1], 1)
        with torch.no_grad():
            kept.weight.copy_(self.weight[head : head + 1])
            kept.bias.copy_(self.bias[head : head + 1])
        return kept.to(self.weight.device)


class _SCANNetwork(nn.Module):
    """An encoder and its linear clustering heads."""

    def __init__(self, encoder, heads):
        super().__init__()
        self.encoder = encoder
        self.heads = heads

    def forward(self, x):
        return self.heads(self.encoder(x))  # (heads, batch, K)

    def log_proba(self, x):
        """Log cluster probabilities of the first head."""
        return F.log_softmax(self.heads(self.encoder(x))[0], dim=-1)


class _NeighborPairs(RandomViews):
    """``batch_inputs``: a view of the batch, then a view of one random neighbour per row."""

    def __init__(self, X, neighbors, view, seed):
        super().__init__(view, 1, seed, X.device)
        self.X = X
        self.neighbors = neighbors

    def __call__(self, x, index):
        pick = torch.randint(
            self.neighbors.shape[1], index.shape, generator=self.generator, device=x.device
        )
        neighbor = self.X[self.neighbors[index, pick]]
        return torch.cat([super().__call__(x, index), super().__call__(neighbor, index)])


class _SCANLoss(nn.Module):
    """Sum over heads of :func:`scan_loss`, anchors in the first half of the output."""

    def __init__(self, entropy_weight):
        super().__init__()
        self.entropy_weight = entropy_weight

    def forward(self, output, index, x):
        anchors, neighbors = output.chunk(2, dim=1)
        return scan_loss(anchors, neighbors, self.entropy_weight).sum()


class _SelfLabelLoss(nn.Module):
    """Cross-entropy on a strong view towards the confident clean predictions.

    The output holds the clean batch first, its strong view second. A row
    whose clean probability exceeds its predicted cluster's threshold takes
    that cluster as target; each target is weighted by the inverse of its
    count among the batch's confident rows, so that large clusters do not
    dominate (Van Gansbeke et al., 2020, Sec. 3.3). With no confident row in
    a batch the loss is zero, without a host round trip.

    Parameters
    ----------
    thresholds : torch.Tensor of shape (n_clusters,)
        Confidence a row predicted in each cluster must exceed.
    """

    def __init__(self, thresholds):
        super().__init__()
        self.thresholds = thresholds

    def forward(self, output, index, x):
        clean, strong = output[0].chunk(2)
        with torch.no_grad():
            confidence, target = F.softmax(clean, dim=1).max(dim=1)
            confident = (confidence > self.thresholds[target]).float()
            counts = torch.zeros_like(self.thresholds).index_add_(0, target, confident)
            weight = confident * confident.sum() / counts.clamp_min(1.0)[target]
        per_row = F.cross_entropy(strong, target, reduction="none")
        return (weight * per_row).sum() / weight.sum().clamp_min(1e-12)


def self_label_thresholds(proba, threshold):
    """Per-cluster confidence thresholds for self-labelling.

    Each cluster keeps SCAN's ``threshold`` unless fewer than half of the
    samples predicted in it exceed it; its threshold is then lowered to the
    median confidence of those samples. A cluster that the clustering phase
    found but made no confident prediction for thus still gets pseudo-labels
    (its more confident half) instead of being learnt away, which a single
    global threshold does (a cluster with no pseudo-label only ever appears as
    a wrong class in the cross-entropy).

    Parameters
    ----------
    proba : torch.Tensor of shape (n_samples, n_clusters)
        Cluster probabilities after the clustering phase.
    threshold : float
        SCAN's confidence threshold (0.99 in the paper).

    Returns
    -------
    thresholds : torch.Tensor of shape (n_clusters,)

    Examples
    --------
    >>> import torch
    >>> from sklearn_deepclust.cluster import self_label_thresholds
    >>> proba = torch.tensor([[0.999, 0.001], [0.995, 0.005], [0.3, 0.7], [0.4, 0.6]])
    >>> self_label_thresholds(proba, 0.99).tolist()
    [0.9900000095367432, 0.6000000238418579]
    """
    confidence, labels = proba.max(dim=1)
    thresholds = torch.full((proba.shape[1],), float(threshold), device=proba.device)
    for cluster in labels.unique():
        median = confidence[labels == cluster].median()
        thresholds[cluster] = torch.minimum(thresholds[cluster], median)
    return thresholds


# 2 MiB of float32 per step: small beside the data from 10,000 rows up.
_LOSS_BLOCK_ELEMENTS = 2**19


def _dataset_scan_loss(log_proba, neighbors, entropy_weight, chunk_size=None):
    """:func:`scan_loss` over a whole data set with all mined neighbours, per head.

    Parameters
    ----------
    log_proba : torch.Tensor of shape (n_heads, n_samples, n_clusters)
    neighbors : torch.LongTensor of shape (n_samples, n_neighbors)
    chunk_size : int or None, default=None
        Samples per step; None keeps each step's block of pairs near
        ``_LOSS_BLOCK_ELEMENTS`` numbers, whatever the heads, neighbours and
        clusters.
    """
    n_heads, n_samples, n_clusters = log_proba.shape
    if chunk_size is None:
        pair_elements = n_heads * neighbors.shape[1] * n_clusters
        chunk_size = max(1, _LOSS_BLOCK_ELEMENTS // pair_elements)
    consistency = torch.zeros(n_heads, device=log_proba.device)
    for start in range(0, n_samples, chunk_size):
        anchor = log_proba[:, start : start + chunk_size, None, :]
        neighbor = log_proba[:, neighbors[start : start + chunk_size]]
        consistency -= torch.logsumexp(anchor + neighbor, dim=-1).sum(dim=(1, 2))
    consistency /= neighbors.numel()
    return consistency - entropy_weight * _mean_entropy(log_proba)


class SCAN(DeepClusterer):
    """Semantic Clustering by Adopting Nearest neighbours, for tables and embeddings.

    Four phases after Van Gansbeke et al. [1]_, with tabular views in place of
    image augmentations:

    1. **pretext**: none by default: on tables the scaled input itself is
       where neighbours are found (``pretext="none"``); or the encoder learns
       a representation without labels, contrastively between two
       SCARF-corrupted views of each row [2]_ (``"contrastive"``, the paper's
       choice for images) or as an autoencoder (``"autoencoder"``);
    2. **mining**: the ``n_neighbors`` nearest neighbours of each sample in
       the pretext features, exact and in chunks (euclidean in the input
       space, cosine in a learnt one);
    3. **clustering**: ``n_heads`` linear heads on the encoder are trained
       together with it to give each sample the same cluster as its
       neighbours, with an entropy term (weight ``entropy_weight``) against
       degenerate solutions; the head with the lowest loss over the data set
       is kept;
    4. **self-labelling** (``self_label=True``): samples predicted with
       probability above ``self_label_threshold`` become pseudo-labels, and
       the network learns to predict them from a strongly corrupted view,
       weighted against class imbalance. One departure from the paper: a
       cluster where fewer than half of the samples pass the threshold has
       its threshold lowered to their median confidence
       (:func:`self_label_thresholds`); with a single threshold, a cluster
       without confident samples is learnt away.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    hidden_dims : sequence of int, default=(256, 256)
        Widths of the encoder's hidden layers.
    embedding_dim : int, default=64
        Width of the embedding the heads read. Ignored when ``module`` is
        given.
    pretext : {"none", "contrastive", "autoencoder"}, default="none"
        The pretext task of phase 1. On the 23 tables of the development
        suite (``python -m benchmarks tables``) mining in the standardised
        input was as accurate as after the contrastive pretext at a fraction
        of its cost; the contrastive pretext was ahead on the two digit image
        tables.
    pretext_epochs : int or "auto", default="auto"
        Epochs of the pretext phase; ``"auto"`` is 100 epochs kept within
        300 to 2,000 optimisation steps.
    temperature : float, default=0.2
        Temperature of the contrastive loss.
    corruption_rate : float, default=0.3
        Fraction of cells replaced by draws from their feature's marginal in
        every view: the contrastive pairs, the anchors and neighbours of the
        clustering phase and the strong view of self-labelling. SCARF uses
        0.6; on the benchmark tables 0.3 mined purer neighbours (0.92 against
        0.86 on digits).
    n_neighbors : int, default=20
        Neighbours mined per sample (must be below the number of samples).
    neighbor_metric : {"auto", "euclidean", "cosine"}, default="auto"
        Distance of the mining; ``"auto"`` is euclidean with
        ``pretext="none"`` (the input's own geometry) and cosine in a learnt
        embedding.
    neighbor_algorithm : {"auto", "brute", "partition"}, default="auto"
        How the neighbours are mined (see
        :func:`~sklearn_deepclust.neighbors.mine_neighbors`): ``"brute"`` is
        exact and quadratic in the number of samples, ``"partition"`` searches
        the nearest k-means cells, approximate and linear; ``"auto"`` is exact
        up to 50,000 samples.
    entropy_weight : float, default=5.0
        Weight of the entropy term of the SCAN loss.
    n_heads : int, default=10
        Clustering heads trained together; the lowest-loss one is kept.
    max_epochs : int or "auto", default="auto"
        Epochs of the clustering phase; ``"auto"`` is 100 epochs kept within
        200 to 1,200 optimisation steps (200 steps on 150 rows, 800 on 1,797,
        1,200 from 3,000 rows up).
    self_label : bool, default=True
        Whether to run the self-labelling phase.
    self_label_threshold : float, default=0.99
        Confidence above which a prediction becomes a pseudo-label.
    self_label_epochs : int or "auto", default="auto"
        Epochs of the self-labelling phase; ``"auto"`` is 50 epochs kept
        within 100 to 600 optimisation steps.
    self_label_lr : float, default=1e-4
        Learning rate of the self-labelling phase (the paper's). It starts a
        fresh optimiser on a trained network, whose first steps at ``lr`` can
        move a cluster's samples into another one for good.
    batch_size : int, default=256
        Mini-batch size of every phase, at least 2.
    lr : float, default=1e-3
        Learning rate of the pretext and clustering phases.
    optimizer : type, default=torch.optim.Adam
        Optimiser class of every phase.
    module : torch.nn.Module or None, default=None
        A custom encoder mapping ``(batch, n_features)`` to
        ``(batch, embedding_dim)``; it is copied, never modified. With
        ``pretext_epochs=0`` a pretrained encoder is used as it is.
    device : str or torch.device, default="cpu"
        Where training and inference run, e.g. ``"cuda"``.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, views, neighbour draws and batch order. An int
        makes a CPU fit repeatable.
    verbose : int, default=0
        0 silent, 1 one line per epoch, 2 also a progress bar.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training sample.
    neighbors_ : ndarray of shape (n_samples, n_neighbors)
        Indices of the mined neighbours of each training sample, nearest
        first; :func:`~sklearn_deepclust.neighbors.neighbor_purity` of them
        against known classes is SCAN's diagnostic of the pretext phase.
    head_losses_ : ndarray of shape (n_heads,)
        SCAN loss of each head over the training set after phase 3.
    best_head_ : int
        Index of the head that was kept.
    confident_fraction_ : float
        Fraction of training samples above ``self_label_threshold`` after the
        clustering phase.
    self_label_thresholds_ : ndarray of shape (n_clusters,)
        Confidence threshold of each cluster in self-labelling:
        ``self_label_threshold``, or lower for a cluster where fewer than half
        of the samples exceed it (see :func:`self_label_thresholds`). None
        when self-labelling did not run.
    module_ : torch.nn.Module
        The trained ``encoder`` and the kept head (``heads[0]``).
    device_ : torch.device
        Device of the fitted network.
    history_ : dict of skorch.History
        ``"pretext"``, ``"cluster"`` and ``"self_label"`` phases (those that
        ran): one row per epoch with ``train_loss`` and ``dur``.
    n_iter_ : int
        Epochs of the clustering and self-labelling phases.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    DEC : Clusters in an autoencoder's embedding by self-training.

    Notes
    -----
    ``score`` is minus the SCAN loss of the kept head on ``X``, with each
    sample's neighbours mined among ``X`` in the trained embedding (at most
    ``len(X) - 1`` of them).

    References
    ----------
    .. [1] W. Van Gansbeke, S. Vandenhende, S. Georgoulis, M. Proesmans and
       L. Van Gool, "SCAN: Learning to Classify Images without Labels",
       ECCV 2020.
    .. [2] D. Bahri, H. Jiang, Y. Tay and D. Metzler, "SCARF: Self-Supervised
       Contrastive Learning using Random Feature Corruption", ICLR 2022.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn_deepclust import SCAN
    >>> X, _ = make_blobs(n_samples=200, centers=3, random_state=0)
    >>> scan = SCAN(n_clusters=3, hidden_dims=(32,), embedding_dim=8,
    ...             pretext_epochs=5, max_epochs=5, self_label_epochs=5,
    ...             random_state=0).fit(X)
    >>> scan.predict_proba(X).shape
    (200, 3)
    >>> scan.transform(X).shape
    (200, 8)
    """

    _auto_budgets = {
        "pretext_epochs": StepBudget(100, 300, 2000),
        "max_epochs": StepBudget(100, 200, 1200),
        "self_label_epochs": StepBudget(50, 100, 600),
    }

    _parameter_constraints: dict = {
        **DeepClusterer._parameter_constraints,
        "max_epochs": EPOCHS_OR_AUTO,
        "pretext": [StrOptions(set(PRETEXT_TASKS))],
        "pretext_epochs": EPOCHS_OR_AUTO,
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "corruption_rate": [Interval(Real, 0, 1, closed="both")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "neighbor_metric": [StrOptions({"auto", "euclidean", "cosine"})],
        "neighbor_algorithm": [StrOptions({"auto", "brute", "partition"})],
        "entropy_weight": [Interval(Real, 0, None, closed="left")],
        "n_heads": [Interval(Integral, 1, None, closed="left")],
        "self_label": ["boolean"],
        "self_label_threshold": [Interval(Real, 0, 1, closed="neither")],
        "self_label_epochs": EPOCHS_OR_AUTO,
        "self_label_lr": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        n_clusters=8,
        *,
        hidden_dims=(256, 256),
        embedding_dim=64,
        pretext="none",
        pretext_epochs="auto",
        temperature=0.2,
        corruption_rate=0.3,
        n_neighbors=20,
        neighbor_metric="auto",
        neighbor_algorithm="auto",
        entropy_weight=5.0,
        n_heads=10,
        max_epochs="auto",
        self_label=True,
        self_label_threshold=0.99,
        self_label_epochs="auto",
        self_label_lr=1e-4,
        batch_size=256,
        lr=1e-3,
        optimizer=torch.optim.Adam,
        module=None,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.n_clusters = n_clusters
        self.hidden_dims = hidden_dims
        self.embedding_dim = embedding_dim
        self.pretext = pretext
        self.pretext_epochs = pretext_epochs
        self.temperature = temperature
        self.corruption_rate = corruption_rate
        self.n_neighbors = n_neighbors
        self.neighbor_metric = neighbor_metric
        self.neighbor_algorithm = neighbor_algorithm
        self.entropy_weight = entropy_weight
        self.n_heads = n_heads
        self.max_epochs = max_epochs
        self.self_label = self_label
        self.self_label_threshold = self_label_threshold
        self.self_label_epochs = self_label_epochs
        self.self_label_lr = self_label_lr
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.module = module
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, X, y, *, seed, device):
        n_samples, n_features = X.shape
        if self.n_neighbors >= n_samples:
            raise ValueError(
                f"n_neighbors={self.n_neighbors} must be smaller than the "
                f"{n_samples} samples given; use n_neighbors <= {n_samples - 1}."
            )
        encoder, features = self._pretrained_encoder(X, seed, temperature=self.temperature)
        metric = self.neighbor_metric
        if metric == "auto":
            metric = "euclidean" if self.pretext == "none" else "cosine"
        neighbors = mine_neighbors(
            features,
            self.n_neighbors,
            metric=metric,
            algorithm=self.neighbor_algorithm,
            random_state=seed,
        )
        del features
        self.neighbors_ = neighbors.cpu().numpy()

        view = TabularView(corruption_rate=self.corruption_rate).fit(X)
        heads = _LinearHeads(self._n_features_out, self.n_clusters, self.n_heads)
        network = _SCANNetwork(encoder, heads).to(device)
        self.history_["cluster"] = self._train_phase(
            "cluster",
            network,
            _SCANLoss(self.entropy_weight),
            X,
            max_epochs=self._epochs("max_epochs", n_samples),
            seed=seed + 1,
            batch_inputs=_NeighborPairs(X, neighbors, view, seed + 1),
        )
        network.eval()
        log_proba = batched_forward(
            lambda x: F.log_softmax(network(x), dim=-1).transpose(0, 1), X, self.batch_size
        ).transpose(0, 1)
        head_losses = _dataset_scan_loss(log_proba, neighbors, self.entropy_weight)
        self.head_losses_ = head_losses.cpu().numpy()
        self.best_head_ = int(np.argmin(self.head_losses_))
        self.module_ = _SCANNetwork(encoder, network.heads.select(self.best_head_))
        self.n_iter_ = len(self.history_["cluster"])

        proba = log_proba[self.best_head_].exp()
        self.confident_fraction_ = float(
            (proba.max(dim=1).values > self.self_label_threshold).float().mean()
        )
        self.self_label_thresholds_ = None
        self_label_epochs = self._epochs("self_label_epochs", n_samples)
        if self.self_label and self_label_epochs > 0:
            thresholds = self_label_thresholds(proba, self.self_label_threshold)
            self.self_label_thresholds_ = thresholds.cpu().numpy()
            self._self_label(X, view, thresholds, self_label_epochs, seed + 2)

    def _self_label(self, X, view, thresholds, max_epochs, seed):
        self.module_.train()
        self.history_["self_label"] = self._train_phase(
            "self_label",
            self.module_,
            _SelfLabelLoss(thresholds),
            X,
            max_epochs=max_epochs,
            seed=seed,
            lr=self.self_label_lr,
            batch_inputs=RandomViews(view, 1, seed, X.device, with_clean=True),
        )
        self.n_iter_ += len(self.history_["self_label"])

    def _embed(self, X):
        return self.module_.encoder(X)

    def _cluster_log_proba(self, X):
        return self.module_.log_proba(X)

    def _objective(self, X):
        embedding = batched_forward(self._embed, X, self.batch_size)
        n_neighbors = min(self.n_neighbors, X.shape[0] - 1)
        if n_neighbors < 1:
            raise ValueError("score needs at least two samples.")
        neighbors = mine_neighbors(
            embedding, n_neighbors, algorithm=self.neighbor_algorithm, random_state=0
        )
        # The kept head reads the embedding already computed: no second encoder pass.
        log_proba = F.log_softmax(self.module_.heads(embedding), dim=-1)
        return _dataset_scan_loss(log_proba, neighbors, self.entropy_weight)[0]
