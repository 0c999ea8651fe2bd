"""Random views of tabular rows, made per batch on the device.

Images get their augmentations for free (crops, colour jitter); tables do not.
These are the tabular counterparts used by the contrastive and clustering
methods (SCAN, SwAV-style clustering): each function takes a batch tensor and
a ``torch.Generator`` and returns a new tensor of the same shape, dtype and
device, without touching the data set it came from.

References
----------
.. [1] D. Bahri, H. Jiang, Y. Tay and D. Metzler, "SCARF: Self-Supervised
   Contrastive Learning using Random Feature Corruption", ICLR 2022.
"""

import torch

__all__ = ["TabularView", "feature_corruption", "feature_masking", "gaussian_noise"]


def _check_rate(rate, name):
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{name} must be in [0, 1]; got {rate}.")


def gaussian_noise(x, scale, generator=None):
    """Add zero-mean gaussian noise with a standard deviation per feature.

    Parameters
    ----------
    x : torch.Tensor of shape (batch, n_features)
    scale : float or torch.Tensor of shape (n_features,)
        Standard deviation of the noise of each feature; pass
        ``sigma * feature_std`` so that the noise follows each feature's unit.
    generator : torch.Generator or None
        Source of randomness, on ``x``'s device.

    Returns
    -------
    torch.Tensor of the shape, dtype and device of ``x``
    """
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + noise * scale


def feature_masking(x, rate, generator=None):
    """Set a random fraction ``rate`` of the cells to zero (no rescaling).

    Parameters
    ----------
    x : torch.Tensor of shape (batch, n_features)
    rate : float in [0, 1]
        Probability that each cell is masked.
    generator : torch.Generator or None

    Returns
    -------
    torch.Tensor of the shape, dtype and device of ``x``
    """
    _check_rate(rate, "rate")
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= rate
    return x * keep


def feature_corruption(x, reference, rate, generator=None):
    """Replace a random fraction of cells by draws from each feature's marginal.

    SCARF's corruption [1]_: each cell is chosen with probability ``rate`` and
    replaced by the same feature's value in a uniformly drawn row of
    ``reference``, i.e. a draw from that feature's empirical marginal. Only the
    indices are drawn; ``reference`` is read, never copied.

    Parameters
    ----------
    x : torch.Tensor of shape (batch, n_features)
    reference : torch.Tensor of shape (n_samples, n_features)
        The rows whose marginals are sampled (usually the whole training set,
        already on the device).
    rate : float in [0, 1]
        Probability that each cell is corrupted (SCARF uses 0.6).
    generator : torch.Generator or None

    Returns
    -------
    torch.Tensor of the shape, dtype and device of ``x``

    References
    ----------
    .. [1] D. Bahri, H. Jiang, Y. Tay and D. Metzler, "SCARF: Self-Supervised
       Contrastive Learning using Random Feature Corruption", ICLR 2022.
    """
    _check_rate(rate, "rate")
    corrupt = torch.rand(x.shape, generator=generator, device=x.device) < rate
    rows = torch.randint(reference.shape[0], x.shape, generator=generator, device=x.device)
    columns = torch.arange(x.shape[1], device=x.device).expand_as(rows)
    return torch.where(corrupt, reference[rows, columns], x)


class TabularView:
    """A composition of the tabular views, applied in a fixed order.

    Corruption (SCARF), then masking, then gaussian noise; a view whose rate or
    scale is 0 is skipped.

    Parameters
    ----------
    corruption_rate : float, default=0.6
        Fraction of cells replaced by marginal draws (:func:`feature_corruption`).
    mask_rate : float, default=0.0
        Fraction of cells set to zero (:func:`feature_masking`).
    noise_scale : float, default=0.0
        Gaussian noise standard deviation, in units of each feature's standard
        deviation in ``reference`` (:func:`gaussian_noise`).

    Examples
    --------
    >>> import torch
    >>> from sklearn_deepclust.augment import TabularView
    >>> X = torch.arange(12.0).reshape(4, 3)
    >>> view = TabularView(corruption_rate=0.5, noise_scale=0.1).fit(X)
    >>> view(X[:2], torch.Generator().manual_seed(0)).shape
    torch.Size([2, 3])
    """

    def __init__(self, corruption_rate=0.6, mask_rate=0.0, noise_scale=0.0):
        self.corruption_rate = corruption_rate
        self.mask_rate = mask_rate
        self.noise_scale = noise_scale

    def fit(self, reference):
        """Remember the data whose marginals and scales the views use.

        Parameters
        ----------
        reference : torch.Tensor of shape (n_samples, n_features)
            Kept by reference, not copied.

        Returns
        -------
        self
        """
        _check_rate(self.corruption_rate, "corruption_rate")
        _check_rate(self.mask_rate, "mask_rate")
        if self.noise_scale < 0:
            raise ValueError(f"noise_scale must be >= 0; got {self.noise_scale}.")
        self.reference_ = reference
        self.feature_std_ = reference.std(dim=0, unbiased=False)
        return self

    def __call__(self, x, generator=None):
        if self.corruption_rate > 0:
            x = feature_corruption(x, self.reference_, self.corruption_rate, generator)
        if self.mask_rate > 0:
            x = feature_masking(x, self.mask_rate, generator)
        if self.noise_scale > 0:
            x = gaussian_noise(x, self.noise_scale * self.feature_std_, generator)
        return x
