"""Deep Embedded Clustering (DEC) and Improved DEC (IDEC).

References
----------
.. [1] J. Xie, R. Girshick and A. Farhadi, "Unsupervised Deep Embedding for
   Clustering Analysis", ICML 2016.
.. [2] X. Guo, L. Gao, X. Liu and J. Yin, "Improved Deep Embedded Clustering
   with Local Structure Preservation", IJCAI 2017."""

import warnings
from numbers import Integral, Real

import torch
from sklearn.cluster import KMeans
from sklearn.utils._param_validation import Interval
from torch import nn
from torch.nn import functional as F

from .._base import EPOCHS_OR_AUTO, DeepClusterer
from .._distributed import sum_over_processes
from .._engine import ConvergenceReached, RefreshEveryNBatches, StepBudget, batched_forward
from ..nn import Autoencoder, ReconstructionLoss, check_decoder, make_decoder

__all__ = ["DEC", "soft_assignment", "target_distribution"]


def soft_assignment(embedding, centroids, alpha=1.0):
    """Log of DEC's Student's t soft assignment (Xie et al., 2016, Eq. 1).

    ``q_ij ∝ (1 + ||z_i - mu_j||² / alpha) ** (-(alpha + 1) / 2)``, normalised
    over the clusters ``j``. The log is returned because the KL loss needs it
    and because normalising in the log domain cannot overflow.

    Parameters
    ----------
    embedding : torch.Tensor of shape (n_samples, embedding_dim)
    centroids : torch.Tensor of shape (n_clusters, embedding_dim)
    alpha : float, default=1.0
        Degrees of freedom of the Student's t kernel.

    Returns
    -------
    log_q : torch.Tensor of shape (n_samples, n_clusters)
    """
    # Explicit differences: cdist's matrix-product shortcut loses precision
    # when embeddings are far from the origin but close to a centroid.
    squared_distance = (embedding[:, None, :] - centroids[None, :, :]).square().sum(-1)
    log_kernel = -(alpha + 1.0) / 2.0 * torch.log1p(squared_distance / alpha)
    return torch.log_softmax(log_kernel, dim=1)


def target_distribution(q):
    """DEC's sharpened target distribution (Xie et al., 2016).

    Eq. 3 of the paper: ``p_ij ∝ q_ij² / f_j``, where ``f_j = sum_i q_ij`` is
    the soft frequency of cluster ``j``; dividing by it keeps large clusters
    from swallowing the others. Under ``torch.distributed``, ``f`` is summed
    over the processes' shards.

    Parameters
    ----------
    q : torch.Tensor of shape (n_samples, n_clusters)
        Soft assignments of the whole data set.

    Returns
    -------
    p : torch.Tensor of shape (n_samples, n_clusters)
        Rows sum to one.
    """
    weight = q.square() / sum_over_processes(q.sum(dim=0))
    return weight / weight.sum(dim=1, keepdim=True)


class _DECNetwork(nn.Module):
    """Encoder, learnable centroids and (for IDEC) the decoder."""

    def __init__(self, encoder, centroids, alpha, decoder=None):
        super().__init__()
        self.encoder = encoder
        self.centroids = nn.Parameter(centroids)
        self.alpha = alpha
        self.decoder = decoder

    def forward(self, x):
        embedding = self.encoder(x)
        log_q = soft_assignment(embedding, self.centroids, self.alpha)
        reconstruction = None if self.decoder is None else self.decoder(embedding)
        return log_q, reconstruction

    def log_q(self, x):
        """Log soft assignment only: inference skips the decoder."""
        return soft_assignment(self.encoder(x), self.centroids, self.alpha)


class _DECLoss(nn.Module):
    """KL(P || Q) on the batch, plus the weighted reconstruction error (IDEC).

    ``target`` holds P for the whole data set, looked up by sample index and
    refreshed by :class:`_TargetRefresh`.
    """

    def __init__(self, reconstruction_weight):
        super().__init__()
        self.reconstruction_weight = reconstruction_weight
        self.target = None

    def forward(self, output, index, x):
        log_q, reconstruction = output
        loss = F.kl_div(log_q, self.target[index], reduction="batchmean")
        if reconstruction is not None:
            loss = loss + self.reconstruction_weight * F.mse_loss(reconstruction, x)
        return loss


class _TargetRefresh:
    """Recompute P over the whole data set; stop when few labels changed."""

    def __init__(self, X, loss, tol, batch_size):
        self.X = X
        self.loss = loss
        self.tol = tol
        self.batch_size = batch_size
        self.previous_labels = None

    def __call__(self, net):
        network = net.module_
        network.eval()
        log_q = batched_forward(network.log_q, self.X, self.batch_size)
        network.train()
        q = log_q.exp()
        self.loss.target = target_distribution(q)
        labels = q.argmax(dim=1)
        if self.previous_labels is not None:
            # Over every process's shard, so that all of them stop together.
            counts = torch.stack(
                [(labels != self.previous_labels).sum(), labels.new_tensor(labels.numel())]
            ).float()
            n_changed, n_rows = sum_over_processes(counts).tolist()
            changed = n_changed / n_rows
            net.history.record("label_change", changed)
            if changed < self.tol:
                raise ConvergenceReached
        self.previous_labels = labels


class DEC(DeepClusterer):
    """Deep Embedded Clustering, with IDEC's reconstruction term as an option.

    Three phases [1]_: (1) an autoencoder ``X -> hidden_dims -> embedding_dim
    -> X`` is pretrained on the reconstruction error; (2) k-means on the
    embedding gives the initial centroids; (3) the encoder and centroids are
    trained to minimise KL(P || Q) between the Student's t soft assignment Q
    and the sharpened target P, which is recomputed over the whole data every
    ``update_interval`` batches. Training stops when fewer than a fraction
    ``tol`` of the labels changed between two target updates, or after
    ``max_epochs``. With ``reconstruction_weight > 0`` the decoder is kept and
    its error is added to the loss, which is IDEC [2]_.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    hidden_dims : sequence of int, default=(256, 256)
        Widths of the encoder's hidden layers (mirrored in the decoder). The
        paper's ``(500, 500, 2000)`` was sized for MNIST; on the tables of the
        development suite the smaller network was as accurate at a tenth of
        the cost.
    embedding_dim : int, default=10
        Width of the embedding. Ignored when ``module`` is given.
    reconstruction_weight : float, default=0.0
        Weight of the reconstruction error in the clustering loss,
        ``KL(P || Q) + reconstruction_weight * MSE``. 0 is DEC. IDEC's loss
        ``MSE + gamma * KL`` with ``gamma = 0.1`` is, up to a constant factor,
        ``reconstruction_weight = 1 / gamma = 10``: ``DEC(reconstruction_weight=10)``
        is IDEC.
    alpha : float, default=1.0
        Degrees of freedom of the Student's t kernel.
    pretrain_epochs : int or "auto", default="auto"
        Epochs of autoencoder pretraining (0 skips it, e.g. for an already
        trained ``module``). ``"auto"`` is 100 epochs kept within 300 to
        2,000 optimisation steps: a fixed epoch count is 400 steps on 500
        rows and 39,000 on 50,000.
    pretrain_dropout : float, default=0.0
        Fraction of input features zeroed at random during pretraining: a
        denoising autoencoder, as in DEC's layer-wise pretraining (0.2 there).
        The default trains the plain end-to-end autoencoder of the IDEC
        reference implementation, with its optimiser (Adam, batch 256).
    max_epochs : int or "auto", default="auto"
        Upper bound on the epochs of the clustering phase; ``"auto"`` is 100
        epochs kept within 300 to 2,000 optimisation steps.
    update_interval : int, default=140
        Batches between two refreshes of the target distribution.
    tol : float, default=1e-3
        Stop when the fraction of labels changed between two refreshes is
        below ``tol``.
    n_init : int, default=20
        Number of k-means runs for the initial centroids.
    batch_size : int, default=256
        Mini-batch size of both phases, at least 2.
    lr : float, default=1e-3
        Learning rate of both phases.
    optimizer : type, default=torch.optim.Adam
        Optimiser class of both phases (the paper uses SGD with momentum on
        images; Adam is the robust choice for tables).
    module : torch.nn.Module or None, default=None
        A custom encoder mapping ``(batch, n_features)`` to
        ``(batch, embedding_dim)``; it is copied, never modified.
    decoder : torch.nn.Module or None, default=None
        A custom decoder mapping ``(batch, embedding_dim)`` back to
        ``(batch, n_features)``, used in pretraining and, for IDEC, in the
        clustering loss; copied, never modified. None builds an MLP mirroring
        ``hidden_dims``. With ``pretrain_epochs=0``, ``module`` and
        ``decoder`` from an earlier fit start DEC and IDEC from the same
        pretrained autoencoder, as the IDEC paper does: take them from
        ``module_.encoder`` and ``module_.decoder`` of a fit with
        ``max_epochs=0`` (the autoencoder untouched by clustering) and
        ``reconstruction_weight > 0`` (plain DEC keeps no decoder).
    device : str or torch.device, default="cpu"
        Where training and inference run, e.g. ``"cuda"``.
    random_state : int, RandomState instance or None, default=None
        Seeds network initialisation, batch order and k-means. An int makes a
        CPU fit repeatable.
    verbose : int, default=0
        0 silent, 1 one line per epoch, 2 also a progress bar.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training sample.
    cluster_centers_ : ndarray of shape (n_clusters, embedding_dim)
        Centroids in the embedding space (not in the input space).
    module_ : torch.nn.Module
        The trained network: ``encoder``, ``centroids`` and, for IDEC,
        ``decoder``.
    device_ : torch.device
        Device of the fitted network.
    history_ : dict of skorch.History
        ``"pretrain"`` and ``"cluster"`` phases: one row per epoch with
        ``train_loss``, ``dur`` and, for the clustering phase,
        ``label_change``.
    n_iter_ : int
        Number of epochs of the clustering phase.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    sklearn.cluster.KMeans : The clustering DEC starts from.

    References
    ----------
    .. [1] J. Xie, R. Girshick and A. Farhadi, "Unsupervised Deep Embedding
       for Clustering Analysis", ICML 2016.
    .. [2] X. Guo, L. Gao, X. Liu and J. Yin, "Improved Deep Embedded
       Clustering with Local Structure Preservation", IJCAI 2017.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn_deepclust import DEC
    >>> X, _ = make_blobs(n_samples=200, centers=3, random_state=0)
    >>> dec = DEC(n_clusters=3, hidden_dims=(32,), embedding_dim=2,
    ...           pretrain_epochs=20, max_epochs=10, random_state=0).fit(X)
    >>> dec.labels_.shape
    (200,)
    >>> dec.transform(X).shape
    (200, 2)
    """

    _auto_budgets = {
        "pretrain_epochs": StepBudget(100, 300, 2000),
        "max_epochs": StepBudget(100, 300, 2000),
    }

    _parameter_constraints: dict = {
        **DeepClusterer._parameter_constraints,
        "max_epochs": EPOCHS_OR_AUTO,
        "reconstruction_weight": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "pretrain_epochs": EPOCHS_OR_AUTO,
        "pretrain_dropout": [Interval(Real, 0, 1, closed="left")],
        "update_interval": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, 1, closed="both")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "decoder": [None, nn.Module],
    }

    def __init__(
        self,
        n_clusters=8,
        *,
        hidden_dims=(256, 256),
        embedding_dim=10,
        reconstruction_weight=0.0,
        alpha=1.0,
        pretrain_epochs="auto",
        pretrain_dropout=0.0,
        max_epochs="auto",
        update_interval=140,
        tol=1e-3,
        n_init=20,
        batch_size=256,
        lr=1e-3,
        optimizer=torch.optim.Adam,
        module=None,
        decoder=None,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.n_clusters = n_clusters
        self.hidden_dims = hidden_dims
        self.embedding_dim = embedding_dim
        self.reconstruction_weight = reconstruction_weight
        self.alpha = alpha
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_dropout = pretrain_dropout
        self.max_epochs = max_epochs
        self.update_interval = update_interval
        self.tol = tol
        self.n_init = n_init
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.module = module
        self.decoder = decoder
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, X, y, *, seed, device):
        n_features = X.shape[1]
        encoder = self._build_encoder(n_features, device)
        if self.decoder is None:
            starts_from_given_module = self.module is not None and self.pretrain_epochs == 0
            if starts_from_given_module and self.reconstruction_weight > 0:
                warnings.warn(
                    "IDEC (reconstruction_weight > 0) starts from the given module "
                    "without pretraining but with a new, untrained decoder: its "
                    "reconstruction term then pulls the encoder towards a random "
                    "decoder. Pass decoder= as well (module_.decoder of a fit with "
                    "reconstruction_weight > 0), or pretrain_epochs > 0.",
                    UserWarning,
                    stacklevel=3,
                )
            decoder = make_decoder(n_features, self.hidden_dims, self._n_features_out)
            decoder = decoder.to(device)
        else:
            decoder = check_decoder(self.decoder, self._n_features_out, n_features, device)
        self.history_ = {}
        pretrain_epochs = self._epochs("pretrain_epochs", X.shape[0])
        if pretrain_epochs > 0:
            self.history_["pretrain"] = self._train_phase(
                "pretrain",
                Autoencoder(encoder, decoder, self.pretrain_dropout),
                ReconstructionLoss(),
                X,
                max_epochs=pretrain_epochs,
                seed=seed,
            )

        encoder.eval()
        embedding = batched_forward(encoder, X, self.batch_size).cpu().numpy()
        kmeans = KMeans(self.n_clusters, n_init=self.n_init, random_state=seed)
        kmeans.fit(embedding)
        centroids = torch.as_tensor(kmeans.cluster_centers_, dtype=torch.float32)

        keep_decoder = self.reconstruction_weight > 0
        self.module_ = _DECNetwork(
            encoder,
            centroids.to(device),
            float(self.alpha),
            decoder if keep_decoder else None,
        )
        loss = _DECLoss(self.reconstruction_weight)
        refresh = _TargetRefresh(X, loss, self.tol, self.batch_size)
        self.history_["cluster"] = self._train_phase(
            "cluster",
            self.module_,
            loss,
            X,
            max_epochs=self._epochs("max_epochs", X.shape[0]),
            seed=seed + 1,
            callbacks=[RefreshEveryNBatches(refresh, self.update_interval)],
        )
        self.n_iter_ = len(self.history_["cluster"])
        self.cluster_centers_ = self.module_.centroids.detach().cpu().numpy()

    def _embed(self, X):
        return self.module_.encoder(X)

    def _cluster_log_proba(self, X):
        return self.module_.log_q(X)

    def _objective(self, X):
        # KL(P || Q) with P computed from X itself, plus the weighted mean
        # squared reconstruction error when the decoder is kept (IDEC).
        log_q = batched_forward(self.module_.log_q, X, self.batch_size)
        objective = F.kl_div(log_q, target_distribution(log_q.exp()), reduction="batchmean")
        if self.module_.decoder is not None:
            network = self.module_
            squared_error = batched_forward(
                lambda x: (network.decoder(network.encoder(x)) - x).square().mean(1),
                X,
                self.batch_size,
            )
            objective = objective + self.reconstruction_weight * squared_error.mean()
        return objective
