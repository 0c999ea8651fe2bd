"""What the optimal-transport clusterers share: prototypes, views, queue, swapped prediction.

:class:`~sklearn_deepclust.cluster.SwAVClustering` and
:class:`~sklearn_deepclust.cluster.P2OT` train the same network the same way
and differ only in how a batch's scores become target codes: balanced
Sinkhorn for SwAV, progressive partial transport for P²OT. This module holds
everything else, so that each method's module is its docstring, its
parameters and its :meth:`_OTClusterer._codes`.

The network is an encoder, a projection head and ``n_clusters`` prototypes;
the score of a row for a cluster is the cosine between its projection and
the prototype. Training shows the network ``n_views`` random tabular views of
each row; the codes of one view are the targets of the softmax (temperature
``temperature``) of the others, the swapped prediction of Caron et al.
(``codes_from="views"``), or the codes of the clean row are the targets of
every view (``codes_from="clean"``).

References
----------
.. [1] M. Caron, I. Misra, J. Mairal, P. Goyal, P. Bojanowski and A. Joulin,
   "Unsupervised Learning of Visual Features by Contrasting Cluster
   Assignments", NeurIPS 2020.
.. [2] C. Zhang, H. Ren and X. He, "P²OT: Progressive Partial Optimal
   Transport for Deep Imbalanced Clustering", ICLR 2024.
"""

import math
from abc import abstractmethod
from numbers import Integral, Real

import torch
from sklearn.cluster import KMeans
from sklearn.utils._param_validation import Interval, StrOptions
from skorch.callbacks import Callback
from torch import nn
from torch.nn import functional as F

from .._base import EPOCHS_OR_AUTO, DeepClusterer
from .._distributed import sum_over_processes, world_size
from .._engine import StepBudget, batched_forward, n_batches
from ..augment import TabularView
from ..nn import mlp
from ..pretext import PRETEXT_TASKS, RandomViews

# Rows per cluster the codes are computed over, below which the queue is used.
_ROWS_PER_CLUSTER = 16


class _PrototypeNetwork(nn.Module):
    """Encoder, projection head and normalised prototypes; outputs cosine scores.

    ``forward`` returns ``(scores, projection)``: the cosines between each
    row's normalised projection and each normalised prototype, and the
    normalised projection itself (what the queue keeps). While
    ``prototypes_frozen`` is set, the scores do not propagate gradients to
    the prototypes.
    """

    def __init__(self, encoder, embedding_dim, projection_dim, n_clusters):
        super().__init__()
        self.encoder = encoder
        self.projector = mlp((embedding_dim, embedding_dim, projection_dim))
        self.prototypes = nn.Parameter(F.normalize(torch.randn(n_clusters, projection_dim), dim=1))
        self.prototypes_frozen = False

    def normalized_prototypes(self):
        prototypes = self.prototypes.detach() if self.prototypes_frozen else self.prototypes
        return F.normalize(prototypes, dim=1)

    def project(self, embedding):
        return F.normalize(self.projector(embedding), dim=1)

    def forward(self, x):
        projection = self.project(self.encoder(x))
        return projection @ self.normalized_prototypes().T, projection


class _FreezePrototypes(Callback):
    """Keep the prototypes fixed during the first ``n_epochs`` epochs (SwAV)."""

    def __init__(self, n_epochs):
        self.n_epochs = n_epochs

    def on_epoch_begin(self, net, **kwargs):
        # skorch has already opened this epoch's history row.
        net.module_.prototypes_frozen = len(net.history) <= self.n_epochs

    def on_train_end(self, net, **kwargs):
        net.module_.prototypes_frozen = False


class _FeatureQueue:
    """The last ``length`` projections of each code source, scored with the current prototypes.

    Codes solve a transport problem over the batch; with few rows per
    cluster, equipartition over a batch is a poor constraint, so SwAV adds
    the projections of recent batches (which have no gradient) to the
    problem. The queue is only used once it is full.
    """

    def __init__(self, length, n_sources, dim, device):
        self.length = length
        self.features = torch.zeros(n_sources, length, dim, device=device)
        self.n_stored = 0

    @property
    def ready(self):
        return self.length > 0 and self.n_stored >= self.length

    def push(self, projections):
        """Store ``projections`` of shape (n_sources, batch, dim), newest first."""
        if self.length == 0:
            return
        kept = self.features[:, : max(self.length - projections.shape[1], 0)]
        self.features = torch.cat([projections.detach(), kept], dim=1)[:, : self.length]
        self.n_stored += projections.shape[1]


class _SwappedPredictionLoss(nn.Module):
    """Cross-entropy of each view's prediction against codes it did not see.

    The network's output holds ``n_chunks`` stacked copies of the batch: the
    random views, preceded by the clean rows when ``codes_from="clean"``.
    With ``"views"`` (SwAV) every view's codes are the targets of the other
    views; with ``"clean"`` the codes of the clean rows are the targets of
    every view, as SCAN's self-labelling and FixMatch take targets from a
    weaker augmentation than the one they train on.

    ``codes(scores, progress)`` is the estimator's code function; ``progress``
    is the fraction of the phase's training steps done, counted here without
    any host round trip.
    """

    def __init__(self, network, codes, temperature, n_views, codes_from, total_steps, queue):
        super().__init__()
        self.network = network
        self.codes = codes
        self.temperature = temperature
        self.total_steps = max(total_steps, 1)
        self.queue = queue
        self.steps_done = 0
        if codes_from == "clean":
            self.n_chunks, self.sources = n_views + 1, [0]
            self.pairs = [(view, 0) for view in range(1, n_views + 1)]
        else:
            self.n_chunks, self.sources = n_views, list(range(n_views))
            self.pairs = [(a, b) for a in range(n_views) for b in range(n_views) if a != b]

    def forward(self, output, index, x):
        scores, projections = output
        scores = scores.unflatten(0, (self.n_chunks, -1))  # (chunks, batch, K)
        batch = scores.shape[1]
        progress = min(self.steps_done / self.total_steps, 1.0)
        with torch.no_grad():
            codes = []
            for slot, chunk in enumerate(self.sources):
                problem = scores[chunk].detach()
                if self.queue.ready:
                    queued = self.queue.features[slot] @ self.network.normalized_prototypes().T
                    problem = torch.cat([problem, queued])
                codes.append(self.codes(problem, progress)[:batch])
            codes = torch.stack(codes)
        sources = projections.detach().unflatten(0, (self.n_chunks, -1))[self.sources]
        self.queue.push(sources)
        self.steps_done += 1
        return swapped_prediction_loss(scores, codes, self.temperature, self.pairs)


def swapped_prediction_loss(scores, codes, temperature, pairs=None):
    """Mass-weighted cross-entropy between predictions and the codes of other views.

    For each pair ``(a, b)``, the softmax of ``scores[a] / temperature`` is
    compared with the codes ``codes[b]`` (soft targets); the cross-entropies
    are summed with each row weighted by the mass its codes carry (one for
    balanced codes, the transported fraction for partial ones), and divided
    by the total mass, so that rows the transport leaves out do not teach the
    network (P²OT) and the loss keeps its scale as the mass grows.

    Parameters
    ----------
    scores : torch.Tensor of shape (n_views, batch, n_clusters)
        Cosine scores of each view.
    codes : torch.Tensor of shape (n_codes, batch, n_clusters)
        Target codes; a row sums to the mass it carries (1 for balanced
        codes, at most 1 for partial ones).
    temperature : float
        Softmax temperature of the predictions.
    pairs : sequence of (int, int) or None, default=None
        ``(prediction index in scores, target index in codes)``. None is
        SwAV's swap: every ordered pair of distinct views, with ``codes``
        indexed like ``scores``.

    Returns
    -------
    loss : torch.Tensor (scalar)
    """
    if pairs is None:
        n_views = scores.shape[0]
        pairs = [(a, b) for a in range(n_views) for b in range(n_views) if a != b]
    log_proba = F.log_softmax(scores / temperature, dim=-1)
    total = sum(-(codes[b] * log_proba[a]).sum() for a, b in pairs)
    weight = sum(codes[b].sum() for _, b in pairs)
    # Under torch.distributed: divided by the mean weight per process, so that
    # the gradients the engine averages over the processes are those of the
    # whole batch's loss (the codes are targets: no gradient flows here).
    weight = sum_over_processes(weight.detach()) / world_size()
    return total / weight.clamp_min(1e-12)


def sigmoid_rampup(progress):
    """``exp(-5 (1 - progress)^2)``: 0.0067 at the start, 1 at the end (Laine & Aila, 2017)."""
    progress = min(max(progress, 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - progress) ** 2)


class _OTClusterer(DeepClusterer):
    """Base of the estimators that learn prototypes from transport codes.

    Subclasses define :meth:`_codes` and their parameters; ``_fit`` runs the
    optional pretext phase, then the swapped-prediction phase.
    """

    _auto_budgets = {
        # 0.6 of the earlier (50, 200, 600) and (100, 200, 1200) on tables
        # under 4,865 rows, the same steps above: the same mean ACC on the
        # balanced development suite at 1.6 times less cost, P2OT 1 point
        # lower at long-tail ratio 0.1 and 1 higher at 0.02 (benchmarks/README).
        "pretext_epochs": StepBudget(30, 120, 600),
        "max_epochs": StepBudget(60, 120, 1200),
    }

    _parameter_constraints: dict = {
        **DeepClusterer._parameter_constraints,
        "max_epochs": EPOCHS_OR_AUTO,
        "projection_dim": [Interval(Integral, 1, None, closed="left")],
        "pretext": [StrOptions(set(PRETEXT_TASKS))],
        "pretext_epochs": EPOCHS_OR_AUTO,
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "sinkhorn_iters": [Interval(Integral, 1, None, closed="left")],
        "n_views": [Interval(Integral, 1, None, closed="left")],
        "codes_from": [StrOptions({"views", "clean"})],
        "corruption_rate": [Interval(Real, 0, 1, closed="both")],
        "queue_length": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "freeze_prototypes_epochs": [Interval(Integral, 0, None, closed="left")],
        "prototype_init": [StrOptions({"kmeans", "random"})],
    }

    @abstractmethod
    def _codes(self, scores, progress):
        """Target codes of a (batch x clusters) score matrix, without gradient.

        ``progress`` in [0, 1] is the fraction of training done (the
        evaluation of :meth:`score` uses 1). Rows sum to at most one.
        """

    def _check_views(self):
        if self.codes_from == "views" and self.n_views < 2:
            raise ValueError(
                f"codes_from='views' swaps codes between views and needs n_views >= 2; "
                f"got n_views={self.n_views}. Use n_views=2 or codes_from='clean'."
            )

    def _queue_length(self, n_samples):
        if self.queue_length != "auto":
            return self.queue_length
        batch = min(self.batch_size, n_samples)
        length = max(_ROWS_PER_CLUSTER * self.n_clusters - batch, 0)
        # No longer than the rest of an epoch: older rows would repeat this one's.
        return min(length, n_samples - batch)

    def _fit(self, X, y, *, seed, device):
        self._check_views()
        n_samples = X.shape[0]
        encoder, features = self._pretrained_encoder(X, seed)

        network = _PrototypeNetwork(
            encoder, self._n_features_out, self.projection_dim, self.n_clusters
        ).to(device)
        if self.prototype_init == "kmeans":
            self._init_prototypes_by_kmeans(network, X, features, seed)
        n_sources = 1 if self.codes_from == "clean" else self.n_views
        queue = _FeatureQueue(self._queue_length(n_samples), n_sources, self.projection_dim, device)
        steps_per_epoch = n_batches(n_samples, self.batch_size)
        max_epochs = self._epochs("max_epochs", n_samples)
        loss = _SwappedPredictionLoss(
            network,
            self._codes,
            self.temperature,
            self.n_views,
            self.codes_from,
            total_steps=max_epochs * steps_per_epoch,
            queue=queue,
        )
        view = TabularView(corruption_rate=self.corruption_rate).fit(X)
        self.history_["cluster"] = self._train_phase(
            "cluster",
            network,
            loss,
            X,
            max_epochs=max_epochs,
            seed=seed + 1,
            callbacks=[_FreezePrototypes(self.freeze_prototypes_epochs)],
            batch_inputs=RandomViews(
                view, self.n_views, seed + 1, device, with_clean=self.codes_from == "clean"
            ),
        )
        self.module_ = network
        self.n_iter_ = len(self.history_["cluster"])

    def _init_prototypes_by_kmeans(self, network, X, features, seed):
        """Start each prototype at the mean projection of one k-means cluster.

        k-means (``n_init=3``) runs on the pretext features (the inputs
        without a pretext); a prototype is the normalised mean of the
        projections of its cluster's rows, so that the first codes are
        k-means's partition rather than that of random directions.
        """
        kmeans = KMeans(self.n_clusters, n_init=3, random_state=seed)
        labels = kmeans.fit_predict(features.detach().cpu().numpy())
        labels = torch.as_tensor(labels, device=X.device)
        with torch.no_grad():
            projections = batched_forward(
                lambda x: network.project(network.encoder(x)), X, self.batch_size
            )
            sums = torch.zeros(self.n_clusters, projections.shape[1], device=X.device)
            sums.index_add_(0, labels, projections)
            network.prototypes.copy_(F.normalize(sums, dim=1))

    def _embed(self, X):
        return self.module_.encoder(X)

    def _cluster_log_proba(self, X):
        scores, _ = self.module_(X)
        return F.log_softmax(scores / self.temperature, dim=1)

    def _objective(self, X):
        scores = batched_forward(lambda x: self.module_(x)[0], X, self.batch_size)
        codes = self._codes(scores, 1.0)
        log_proba = F.log_softmax(scores / self.temperature, dim=1)
        return -(codes * log_proba).sum() / codes.sum()
