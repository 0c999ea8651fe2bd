"""SwAV-style clustering: swapped prediction of balanced optimal-transport codes."""

import torch

from ..ot import n_samples_over_processes, sinkhorn_log
from ._prototypes import _OTClusterer

__all__ = ["SwAVClustering"]


class SwAVClustering(_OTClusterer):
    """Clustering by swapping assignments between views, after SwAV.

    Caron et al. [1]_ learn a representation and ``K`` prototypes together:
    each row is seen under several random views, a view's cosine scores with
    the prototypes are turned into *codes* by an entropic optimal transport
    that spreads the batch equally over the prototypes (Sinkhorn-Knopp,
    ``sinkhorn_iters`` iterations at regularisation ``epsilon``, the SeLa
    equipartition of Asano et al. [2]_), and the network learns to predict
    the codes of one view from the other views (softmax with temperature
    ``temperature``). Here the prototypes are the clusters (``K =
    n_clusters``), the views are tabular (SCARF feature corruption [3]_),
    and two defaults depart from the paper for tables: the encoder is first
    pretrained contrastively, and the codes are computed on the clean rows
    and predicted from the corrupted views (``codes_from``); the paper's
    setting is ``pretext="none", codes_from="views"``.

    The equipartition suits clusters of similar sizes; for imbalanced data
    use :class:`P2OT`.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters (prototypes).
    hidden_dims : sequence of int, default=(256, 256)
        Widths of the encoder's hidden layers.
    embedding_dim : int, default=64
        Width of the encoder's output (what ``transform`` returns). Ignored
        when ``module`` is given.
    projection_dim : int, default=64
        Width of the projection head's output, where the prototypes live.
    pretext : {"contrastive", "autoencoder", "none"}, default="contrastive"
        Pretraining of the encoder before the clustering phase (see
        :func:`~sklearn_deepclust.pretext.train_pretext`). SwAV itself needs
        none on images; on tables a contrastive start is worth it (see
        ``codes_from``).
    pretext_epochs : int or "auto", default="auto"
        Epochs of the pretext phase; ``"auto"`` is 30 epochs kept within 120
        to 600 optimisation steps (ignored with ``pretext="none"``).
    temperature : float, default=0.1
        Softmax temperature of the predictions (the paper's tau).
    epsilon : float, default=0.05
        Entropic regularisation of the codes' transport.
    sinkhorn_iters : int, default=3
        Sinkhorn-Knopp iterations per batch.
    n_views : int, default=2
        Random views of each row per batch (at least 2 with
        ``codes_from="views"``).
    codes_from : {"clean", "views"}, default="clean"
        Where the targets come from: ``"clean"`` computes the codes on the
        uncorrupted rows and makes them the targets of every view;
        ``"views"`` is the paper's swap, the codes of each view are the
        targets of the other views. Tabular corruption is no mild image
        augmentation, and codes of corrupted rows are noisy targets: with
        the benchmark's budgets (seed 0), clean codes after a contrastive
        pretext reached ACC 0.863 / 0.803 / 0.849 / 0.368 on digits,
        optdigits, penbased and letter; the paper's setting (swapped views,
        no pretext) reached 0.812 / 0.709 / 0.210 on digits, optdigits and
        letter (``benchmarks/README.md``).
    corruption_rate : float, default=0.3
        Fraction of cells of a view replaced by draws from their feature's
        marginal (also the pretext's views).
    queue_length : int or "auto", default="auto"
        Projections of past batches added to the transport problem of each
        batch. ``"auto"`` keeps ``16 * n_clusters - batch_size`` of them when
        the batch has fewer than 16 rows per cluster, none otherwise.
    freeze_prototypes_epochs : int, default=1
        Epochs at the start of the clustering phase during which the
        prototypes are not updated.
    prototype_init : {"kmeans", "random"}, default="random"
        Where the prototypes start: uniformly on the sphere, as in the paper,
        or (``"kmeans"``) at the mean projections of a k-means partition of
        the pretext features, P2OT's default (see :class:`P2OT`). On the
        balanced development tables k-means prototypes made SwAV worse
        (17 tables, seed 0: 1.02 against 1.08 times k-means's mean ACC).
    max_epochs : int or "auto", default="auto"
        Epochs of the clustering phase; ``"auto"`` is 60 epochs kept within
        120 to 1,200 optimisation steps (120 on 150 rows, 480 on 1,797,
        1,200 from 4,865 rows).
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
    P2OT : The same network with partial, size-adaptive codes for
        imbalanced clusters.
    SCAN : Clustering by agreement with mined nearest neighbours.

    Notes
    -----
    ``predict_proba`` is the softmax of the cosine scores at ``temperature``.
    ``score`` is minus the swapped-prediction loss of the clean rows of ``X``
    against their own codes, computed over all of ``X``.

    References
    ----------
    .. [1] M. Caron, I. Misra, J. Mairal, P. Goyal, P. Bojanowski and
       A. Joulin, "Unsupervised Learning of Visual Features by Contrasting
       Cluster Assignments", NeurIPS 2020.
    .. [2] Y. M. Asano, C. Rupprecht and A. Vedaldi, "Self-labelling via
       simultaneous clustering and representation learning", ICLR 2020.
    .. [3] D. Bahri, H. Jiang, Y. Tay and D. Metzler, "SCARF: Self-Supervised
       Contrastive Learning using Random Feature Corruption", ICLR 2022.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn_deepclust import SwAVClustering
    >>> X, _ = make_blobs(n_samples=200, centers=3, random_state=0)
    >>> swav = SwAVClustering(n_clusters=3, hidden_dims=(32,), embedding_dim=8,
    ...                       pretext_epochs=5, max_epochs=5, random_state=0).fit(X)
    >>> swav.predict_proba(X).shape
    (200, 3)
    >>> swav.transform(X).shape
    (200, 8)
    """

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
        epsilon=0.05,
        sinkhorn_iters=3,
        n_views=2,
        codes_from="clean",
        corruption_rate=0.3,
        queue_length="auto",
        freeze_prototypes_epochs=1,
        prototype_init="random",
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
        log_plan = sinkhorn_log(scores, self.epsilon, self.sinkhorn_iters)
        return log_plan.exp() * n_samples_over_processes(scores)
