"""Self-supervised pretext training of a tabular encoder.

Methods that cluster in a learned representation (SCAN, and later the
discovery methods) first train their encoder without labels. Two pretext
tasks are offered:

- ``"contrastive"``: two random tabular views of each row (SCARF's feature
  corruption [2]_ by default) are pulled together and pushed away from the
  other rows of the batch by the InfoNCE / NT-Xent loss of SimCLR [1]_;
- ``"autoencoder"``: the reconstruction error of an autoencoder, as in DEC.

``"none"`` skips pretraining, for inputs that already are a good embedding
(e.g. features from a foundation model).

References
----------
.. [1] T. Chen, S. Kornblith, M. Norouzi and G. Hinton, "A Simple Framework
   for Contrastive Learning of Visual Representations", ICML 2020.
.. [2] D. Bahri, H. Jiang, Y. Tay and D. Metzler, "SCARF: Self-Supervised
   Contrastive Learning using Random Feature Corruption", ICLR 2022.
"""

import torch
from torch import nn
from torch.nn import functional as F

from ._distributed import process_seed
from ._engine import batched_forward
from .augment import TabularView
from .nn import Autoencoder, ReconstructionLoss, mlp

__all__ = [
    "PRETEXT_TASKS",
    "ContrastiveLoss",
    "ContrastiveNetwork",
    "RandomViews",
    "info_nce_loss",
    "supervised_contrastive_loss",
    "train_pretext",
]

PRETEXT_TASKS = ("contrastive", "autoencoder", "none")


def info_nce_loss(z_a, z_b, temperature=0.5):
    """SimCLR's NT-Xent loss between two views of the same batch.

    Row ``i`` of ``z_a`` and row ``i`` of ``z_b`` are a positive pair; the
    other ``2 * batch - 2`` rows of both views are its negatives. Similarities
    are cosines divided by ``temperature``.

    Parameters
    ----------
    z_a, z_b : torch.Tensor of shape (batch, dim)
        Projections of the two views (normalised here).
    temperature : float, default=0.5
        Softmax temperature.

    Returns
    -------
    loss : torch.Tensor (scalar)
        Mean cross-entropy of finding each row's positive among the batch.

    Examples
    --------
    >>> import torch
    >>> from sklearn_deepclust.pretext import info_nce_loss
    >>> z = torch.eye(3)
    >>> bool(info_nce_loss(z, z, temperature=0.1) < info_nce_loss(z, z.flip(0), 0.1))
    True
    """
    batch = z_a.shape[0]
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)
    # Scaled and masked in place: the product's backward needs only z, so the
    # (2 * batch)**2 similarities are held once rather than three times.
    similarity = (z @ z.T).div_(temperature)
    similarity.fill_diagonal_(-torch.inf)
    rows = torch.arange(batch, device=z.device)
    positives = torch.cat([rows + batch, rows])
    return F.cross_entropy(similarity, positives)


def supervised_contrastive_loss(z, labels, temperature=0.07):
    """SupCon loss of Khosla et al. [3]_ over the labelled rows of a batch.

    Every labelled row is an anchor whose positives are the other labelled
    rows of its class and whose contrast set is every other labelled row;
    rows with a negative label (unlabelled) take no part. Computed with
    masks on the device: no value is read back to the host.

    Parameters
    ----------
    z : torch.Tensor of shape (n_rows, dim)
        Projections (normalised here), e.g. two views of a batch stacked.
    labels : torch.Tensor of shape (n_rows,)
        Class index of each row, ``-1`` for unlabelled rows.
    temperature : float, default=0.07
        Softmax temperature (SupCon's).

    Returns
    -------
    loss : torch.Tensor (scalar)
        Mean over the anchors that have a positive; 0 when none has.

    References
    ----------
    .. [3] P. Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020.

    Examples
    --------
    >>> import torch
    >>> from sklearn_deepclust.pretext import supervised_contrastive_loss
    >>> z = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    >>> same = supervised_contrastive_loss(z, torch.tensor([0, 0, 1, 1]), 0.1)
    >>> crossed = supervised_contrastive_loss(z, torch.tensor([0, 1, 0, 1]), 0.1)
    >>> bool(same < crossed)
    True
    """
    z = F.normalize(z, dim=1)
    labelled = labels >= 0
    itself = torch.eye(z.shape[0], dtype=torch.bool, device=z.device)
    excluded = itself | ~labelled[None, :]
    # Scaled and masked in place (as in info_nce_loss); a large finite value
    # rather than -inf keeps unlabelled anchors' rows finite.
    similarity = (z @ z.T).div_(temperature).masked_fill_(excluded, -1e4)
    log_prob = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~excluded & labelled[:, None]
    n_positive = positive.sum(1)
    per_anchor = -(log_prob * positive).sum(1) / n_positive.clamp_min(1)
    has_positive = (n_positive > 0).to(z.dtype)
    return (per_anchor * has_positive).sum() / has_positive.sum().clamp_min(1)


class ContrastiveNetwork(nn.Module):
    """An encoder followed by SimCLR's projection head (one hidden layer).

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps ``(batch, n_features)`` to ``(batch, embedding_dim)``.
    embedding_dim : int
        Width of the encoder's output.
    projection_dim : int, default=128
        Width of the projection the contrastive loss compares.
    """

    def __init__(self, encoder, embedding_dim, projection_dim=128):
        super().__init__()
        self.encoder = encoder
        self.projector = mlp((embedding_dim, embedding_dim, projection_dim))

    def forward(self, x):
        return self.projector(self.encoder(x))


class ContrastiveLoss(nn.Module):
    """:func:`info_nce_loss` between the two halves of the network's output."""

    def __init__(self, temperature):
        super().__init__()
        self.temperature = temperature

    def forward(self, output, index, x):
        z_a, z_b = output.chunk(2)
        return info_nce_loss(z_a, z_b, self.temperature)


class RandomViews:
    """``batch_inputs`` for the engine: ``n_views`` random views, stacked.

    For a batch of ``B`` rows the module receives ``n_views * B`` rows: all
    first views, then all second views, and so on, preceded by the clean
    batch itself when ``with_clean`` (targets taken from the clean rows).

    Parameters
    ----------
    view : callable
        Called as ``view(x, generator)``, e.g. a fitted
        :class:`~sklearn_deepclust.augment.TabularView`.
    n_views : int
        Number of views of each row.
    seed : int
        Seeds the views' generator; under ``torch.distributed`` each process
        derives its own seed from it, so that the processes draw different
        views of their rows.
    device : torch.device
        Where the generator lives (the data's device).
    with_clean : bool, default=False
        Put the unmodified batch first.
    """

    def __init__(self, view, n_views, seed, device, with_clean=False):
        self.view = view
        self.n_views = n_views
        self.with_clean = with_clean
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(process_seed(seed))

    def __call__(self, x, index):
        views = [self.view(x, self.generator) for _ in range(self.n_views)]
        return torch.cat([x, *views] if self.with_clean else views)


def train_pretext(
    task,
    encoder,
    X,
    *,
    train_phase,
    max_epochs,
    seed,
    embedding_dim,
    decoder=None,
    corruption_rate=0.6,
    temperature=0.5,
    batch_size=256,
):
    """Pretrain ``encoder`` in place and return the features to mine neighbours in.

    Parameters
    ----------
    task : {"contrastive", "autoencoder", "none"}
        The pretext task (see the module docstring).
    encoder : torch.nn.Module
        Trained in place.
    X : torch.Tensor of shape (n_samples, n_features)
        Training data on the device.
    train_phase : callable
        An estimator's ``_train_phase`` (it supplies optimiser and batch size).
    max_epochs : int
        Epochs of pretraining; 0 leaves the encoder as it is.
    seed : int
        Seeds batch order and views.
    embedding_dim : int
        Width of the encoder's output.
    decoder : torch.nn.Module or None
        The decoder of the ``"autoencoder"`` task.
    corruption_rate : float, default=0.6
        SCARF corruption rate of the contrastive views.
    temperature : float, default=0.5
        Temperature of the contrastive loss.
    batch_size : int, default=256
        Batch size of the feature extraction.

    Returns
    -------
    history : skorch.History or None
        None when nothing was trained.
    features : torch.Tensor of shape (n_samples, dim)
        The projection head's output (contrastive, as SCAN mines), the
        encoder's embedding (autoencoder) or ``X`` itself (none).
    """
    if task not in PRETEXT_TASKS:
        raise ValueError(f"pretext must be one of {PRETEXT_TASKS}; got {task!r}.")
    if task == "none":
        return None, X
    if task == "contrastive":
        network = ContrastiveNetwork(encoder, embedding_dim).to(X.device)
        loss = ContrastiveLoss(temperature)
        view = TabularView(corruption_rate=corruption_rate).fit(X)
        batch_inputs = RandomViews(view, 2, seed, X.device)
    else:
        network = Autoencoder(encoder, decoder)
        loss, batch_inputs = ReconstructionLoss(), None
    history = None
    if max_epochs > 0:
        history = train_phase(
            "pretext",
            network,
            loss,
            X,
            max_epochs=max_epochs,
            seed=seed,
            batch_inputs=batch_inputs,
        )
    network.eval()
    feature_map = network if task == "contrastive" else encoder
    features = batched_forward(feature_map, X, batch_size)
    network.train()
    return history, features
