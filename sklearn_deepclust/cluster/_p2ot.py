"""P²OT: progressive partial optimal transport pseudo-labels for imbalanced clusters.

References
----------
.. [1] C. Zhang, H. Ren and X. He, "P²OT: Progressive Partial Optimal
   Transport for Deep Imbalanced Clustering", ICLR 2024."""

from numbers import Real

import torch
from sklearn.utils._param_validation import Interval
from torch.nn import functional as F

from ..ot import n_samples_over_processes, relaxed_partial_sinkhorn_log
from ._prototypes import _OTClusterer, sigmoid_rampup

__all__ = ["P2OT", "progressive_mass"]


def progressive_mass(progress, initial_mass=0.1):
    """P²OT's transported mass after a fraction ``progress`` of training.

    ``initial_mass + (1 - initial_mass) * exp(-5 (1 - progress)^2)``: it stays
    near ``initial_mass`` for the first third of training, then rises to 1
    (the sigmoid ramp-up of the official implementation).

    Parameters
    ----------
    progress : float in [0, 1]
        Fraction of the training steps done.
    initial_mass : float in (0, 1], default=0.1
        Mass transported at the start.

    Returns
    -------
    mass : float in [initial_mass, 1]

    Examples
    --------
    >>> from sklearn_deepclust.cluster import progressive_mass
    >>> round(progressive_mass(0.0), 3), round(progressive_mass(0.5), 3), progressive_mass(1.0)
    (0.106, 0.358, 1.0)
    """
    return initial_mass + (1.0 - initial_mass) * sigmoid_rampup(progress)


class P2OT(_OTClusterer):
    """Progressive Partial Optimal Transport clustering, for imbalanced clusters.

    Zhang et al. [1]_ generate pseudo-labels by a transport that is partial
    and size-adaptive: of the batch's total mass only a fraction ``m`` (grown
    from ``initial_mass`` to 1 over training, :func:`progressive_mass`) is
    transported to the clusters, taken from the rows the model is most
    confident about, and the cluster sizes are held to uniform only through
    a KL penalty of weight ``kl_weight``, so that they can follow a
    long-tailed data set where the equipartition of SwAV/SeLa splits large
    classes and merges small ones. The transport (cost: minus the model's log
    probabilities, regularisation ``epsilon``) is solved by
    :func:`~sklearn_deepclust.ot.relaxed_partial_sinkhorn_log`, a virtual
    cluster absorbing the untransported mass. The network (encoder, projection
    head, cosine prototypes at ``temperature``) is trained by cross-entropy
    towards these pseudo-labels, computed on the clean rows and predicted
    from two corrupted tabular views (the paper swaps them between two image
    augmentations; ``codes_from="views"``), and weighted by the mass each row
    received, so rows left out of the transport do not teach it. As in the
    paper, which starts from a self-supervised backbone, the encoder is first
    pretrained (contrastive by default).

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    hidden_dims : sequence of int, default=(256, 256)
        Widths of the encoder's hidden layers.
    embedding_dim : int, default=64
        Width of the encoder's output (what ``transform`` returns). Ignored
        when ``module`` is given.
    projection_dim : int, default=64
        Width of the projection head's output, where the prototypes live.
    pretext : {"contrastive", "autoencoder", "none"}, default="contrastive"
        Pretraining of the encoder before the clustering phase (see
        :func:`~sklearn_deepclust.pretext.train_pretext`).
    pretext_epochs : int or "auto", default="auto"
        Epochs of the pretext phase; ``"auto"`` is 30 epochs kept within 120
        to 600 optimisation steps.
    temperature : float, default=0.1
        Softmax temperature of the cosine scores (the official cosine head's
        scale of 10).
    epsilon : float, default=0.1
        Entropic regularisation of the transport.
    kl_weight : float, default=1.0
        Weight of the KL relaxation of the cluster sizes (the paper's
        lambda); larger holds the sizes closer to uniform.
    final_kl_weight : float or None, default=0.1
        The KL weight falls linearly from ``kl_weight`` at the start of the
        clustering phase to ``final_kl_weight`` at its end (a schedule left
        commented out in the official implementation); None keeps it
        constant, as the paper does. While the network is unsure, a constant
        weight holds the codes near uniform and the network learns the
        uniform sizes back (on the long-tailed penbased its clusters came
        out within 476 to 174 rows for classes of 1055 to 10); a falling
        weight lets the sizes follow the data once it is confident. On the
        long-tailed tables of the benchmarks (rho = 0.01) it raised mean
        ACC by 1.7 to 2.4 points; on balanced tables it can cost accuracy
        (see ``benchmarks/README.md``) and, on a few dozen rows, merge two
        clusters and leave one empty: for clusters of similar sizes prefer
        :class:`SwAVClustering`, or set None with a larger ``kl_weight``.
    initial_mass : float in (0, 1], default=0.1
        Fraction of the mass transported at the start of training.
    sinkhorn_iters : int, default=15
        Scaling iterations of the transport per batch (a fixed number: no
        host synchronisation to test convergence). The unbalanced iterations
        converge slowly at small masses: on 200 random rows and 4 clusters at
        ``epsilon=0.1``, the mass transported at ``m = 0.106`` (the start of
        the schedule) overshoots by 35 %, 20 % and 7 % after 50, 100 and 200
        iterations, at ``m = 0.5`` by 2.3 %, 0.2 % and 0; the schedule only
        needs it roughly. 30 iterations (100 before) nearly halved the fit of
        a 10,000 x 50 table (40 s to 22 s on 2 cores) at the same accuracy on
        the long-tailed development tables; 15 (30 before) cut a quarter of
        the fit on the long-tailed suite with the same mean ACC and macro-F1
        within half a point (``benchmarks/README.md``).
    n_views : int, default=2
        Random views of each row per batch (at least 2 with
        ``codes_from="views"``).
    codes_from : {"clean", "views"}, default="clean"
        Where the pseudo-labels come from: ``"clean"`` solves the transport
        on the uncorrupted rows and trains every view to predict the result,
        as SCAN's self-labelling takes its targets from the clean image;
        ``"views"`` swaps the codes between views, as the paper does with
        image augmentations. Tabular corruption is no weak augmentation: on
        the long-tailed optdigits (rho = 0.01, seeds 0 and 1) clean targets
        raised ACC from 0.47 and 0.53 to 0.57 and 0.61.
    corruption_rate : float, default=0.3
        Fraction of cells of a view replaced by draws from their feature's
        marginal (also the pretext's views).
    queue_length : int or "auto", default=0
        Projections of past batches added to the transport problem of each
        batch (the official implementation's memory of past logits).
        ``"auto"`` keeps ``16 * n_clusters - batch_size`` of them when the
        batch has fewer than 16 rows per cluster, none otherwise. Off by
        default: a queue of 1024 rows behind batches of 256 made the relaxed
        transport send nearly all the mass to one cluster within a few epochs
        in our runs (the queued projections are stale, and unlike SwAV's
        equipartition nothing holds the sizes firmly); with many clusters,
        raise ``batch_size`` instead.
    freeze_prototypes_epochs : int, default=1
        Epochs at the start of the clustering phase during which the
        prototypes are not updated.
    prototype_init : {"kmeans", "random"}, default="kmeans"
        Where the prototypes start. ``"kmeans"`` runs k-means (``n_init=3``)
        on the pretext features (the inputs when ``pretext="none"``) and
        starts each prototype at the normalised mean projection of one
        cluster's rows, so that the first codes are a k-means partition;
        ``"random"`` draws them uniformly on the sphere, as the paper does.
        Under ``torch.distributed`` each process clusters its own shard and
        training starts from process 0's prototypes, as DEC's centroids.
        On the long-tailed development tables (seed 0) k-means prototypes
        raised mean ACC from 0.516 to 0.524 and macro-F1 from 0.438 to 0.462
        at rho = 0.1, and cut the worst loss to k-means at rho = 0.02 from
        27 to 11 points. (For :class:`SwAVClustering`, whose equipartition
        already balances the clusters, they lowered mean ACC on the balanced
        tables, so it keeps random prototypes.)
    max_epochs : int or "auto", default="auto"
        Epochs of the clustering phase; the mass schedule spans them.
        ``"auto"`` is 60 epochs kept within 120 to 1,200 optimisation
        steps (120 on 150 rows, 480 on 1,797, 1,200 from 4,865 rows).
    batch_size : int, default=256
        Mini-batch size, at least 2.
    lr : float, default=1e-3
        Learning rate.
    optimizer : type, default=torch.optim.Adam
        Optimiser class.
    module : torch.nn.Module or None, default=None
        A custom encoder mapping ``(batch, n_features)`` to
        ``(batch, embedding_dim)``; it is copied, never modified.
    device : str or torch.device, default="cpu"
        Where training and inference run, e.g. ``"cuda"``.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, views and batch order. An int makes a CPU fit
        repeatable.
    verbose : int, default=0
        0 silent, 1 one line per epoch, 2 also a progress bar.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training sample: its nearest prototype.
    module_ : torch.nn.Module
        The trained network: ``encoder``, ``projector`` and ``prototypes``.
    device_ : torch.device
        Device of the fitted network.
    history_ : dict of skorch.History
        ``"pretext"`` (when it ran) and ``"cluster"`` phases, one row per
        epoch with ``train_loss`` and ``dur``.
    n_iter_ : int
        Epochs of the clustering phase.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    SwAVClustering : The same network with balanced codes.
    sklearn_deepclust.datasets.make_long_tailed : Imbalanced versions of a
        labelled table, to evaluate on.

    Notes
    -----
    ``predict_proba`` is the softmax of the cosine scores at ``temperature``.
    ``score`` is minus the mass-weighted cross-entropy of the clean rows of
    ``X`` against the full-mass (``m = 1``) relaxed transport over all of
    ``X``.

    References
    ----------
    .. [1] C. Zhang, H. Ren and X. He, "P²OT: Progressive Partial Optimal
       Transport for Deep Imbalanced Clustering", ICLR 2024.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn_deepclust import P2OT
    >>> X, _ = make_blobs(n_samples=[150, 40, 10], random_state=0)
    >>> p2ot = P2OT(n_clusters=3, hidden_dims=(32,), embedding_dim=8,
    ...             pretext_epochs=5, max_epochs=5, random_state=0).fit(X)
    >>> p2ot.predict(X).shape
    (200,)
    """

    _parameter_constraints: dict = {
        **_OTClusterer._parameter_constraints,
        "kl_weight": [Interval(Real, 0, None, closed="neither")],
        "final_kl_weight": [None, Interval(Real, 0, None, closed="neither")],
        "initial_mass": [Interval(Real, 0, 1, closed="right")],
    }

    def __init__(
        self,
        n_clusters=8,
        *,
        hidden_dims=(256, 256),
        embedding_dim=64,
        projection_dim=64,
        pretext="contrastive",
        pretext_epochs="auto",
        temperature=0.1,
        epsilon=0.1,
        kl_weight=1.0,
        final_kl_weight=0.1,
        initial_mass=0.1,
        sinkhorn_iters=15,
        n_views=2,
        codes_from="clean",
        corruption_rate=0.3,
        queue_length=0,
        freeze_prototypes_epochs=1,
        prototype_init="kmeans",
        max_epochs="auto",
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
        self.projection_dim = projection_dim
        self.pretext = pretext
        self.pretext_epochs = pretext_epochs
        self.temperature = temperature
        self.epsilon = epsilon
        self.kl_weight = kl_weight
        self.final_kl_weight = final_kl_weight
        self.initial_mass = initial_mass
        self.sinkhorn_iters = sinkhorn_iters
        self.n_views = n_views
        self.codes_from = codes_from
        self.corruption_rate = corruption_rate
        self.queue_length = queue_length
        self.freeze_prototypes_epochs = freeze_prototypes_epochs
        self.prototype_init = prototype_init
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.module = module
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _codes(self, scores, progress):
        log_proba = F.log_softmax(scores / self.temperature, dim=1)
        log_plan = relaxed_partial_sinkhorn_log(
            log_proba,
            mass=progressive_mass(progress, self.initial_mass),
            epsilon=self.epsilon,
            kl_weight=self._kl_weight_at(progress),
            n_iters=self.sinkhorn_iters,
        )
        return log_plan.exp() * n_samples_over_processes(scores)

    def _kl_weight_at(self, progress):
        if self.final_kl_weight is None:
            return self.kl_weight
        return self.kl_weight + (self.final_kl_weight - self.kl_weight) * progress
