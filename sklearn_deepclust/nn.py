"""Network builders: MLP encoders and decoders, and checks for user modules.

The default networks are the fully connected autoencoders of DEC [1]_; the
optional input dropout makes the denoising autoencoder of [2]_.

References
----------
.. [1] J. Xie, R. Girshick and A. Farhadi, "Unsupervised Deep Embedding for
   Clustering Analysis", ICML 2016.
.. [2] P. Vincent, H. Larochelle, Y. Bengio and P.-A. Manzagol, "Extracting
   and Composing Robust Features with Denoising Autoencoders", ICML 2008."""

import copy

import torch
from torch import nn

__all__ = [
    "Autoencoder",
    "ReconstructionLoss",
    "check_decoder",
    "check_encoder",
    "make_decoder",
    "make_encoder",
    "mlp",
]


def mlp(layer_sizes, activation=nn.ReLU, batch_norm=False):
    """A fully connected network with ``activation`` between layers.

    The last layer is linear: an embedding or a reconstruction, as in DEC.

    Parameters
    ----------
    layer_sizes : sequence of int
        Widths from input to output, e.g. ``(64, 500, 500, 2000, 10)``.
    activation : type, default=torch.nn.ReLU
        Module class inserted after every layer but the last.
    batch_norm : bool, default=False
        Insert a ``BatchNorm1d`` after each activation, as the tabular NCD
        networks of Troisemaine et al. do.

    Returns
    -------
    torch.nn.Sequential

    Examples
    --------
    >>> from sklearn_deepclust.nn import mlp
    >>> mlp((4, 8, 2))
    Sequential(
      (0): Linear(in_features=4, out_features=8, bias=True)
      (1): ReLU()
      (2): Linear(in_features=8, out_features=2, bias=True)
    )
    """
    layer_sizes = [int(size) for size in layer_sizes]
    if len(layer_sizes) < 2:
        raise ValueError(f"An MLP needs at least two layer sizes, got {layer_sizes}.")
    layers = []
    for i, (n_in, n_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(layer_sizes) - 2:
            layers.append(activation())
            if batch_norm:
                layers.append(nn.BatchNorm1d(n_out))
    return nn.Sequential(*layers)


def make_encoder(n_features, hidden_dims, embedding_dim, batch_norm=False):
    """The default encoder ``n_features -> hidden_dims -> embedding_dim``.

    With ``hidden_dims=(500, 500, 2000)`` and ``embedding_dim=10`` this is
    the network of DEC [1]_; ``batch_norm`` normalises each hidden layer
    (see :func:`mlp`).

    References
    ----------
    .. [1] J. Xie, R. Girshick and A. Farhadi, "Unsupervised Deep Embedding
       for Clustering Analysis", ICML 2016.
    """
    return mlp((n_features, *hidden_dims, embedding_dim), batch_norm=batch_norm)


def make_decoder(n_features, hidden_dims, embedding_dim):
    """The mirror of :func:`make_encoder`, from ``embedding_dim`` to ``n_features``."""
    return mlp((embedding_dim, *reversed(tuple(hidden_dims)), n_features))


def _copy_and_probe(module, name, param, n_inputs, device):
    """Deep-copy ``module`` to ``device`` and run it on a zero batch of width ``n_inputs``."""
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"`{param}` must be a torch.nn.Module instance, got {type(module).__name__}."
        )
    copied = copy.deepcopy(module).to(device)
    was_training = copied.training
    copied.eval()
    try:
        with torch.no_grad():
            out = copied(torch.zeros(2, n_inputs, device=device))
    except Exception as exc:  # noqa: BLE001 - re-raised with advice
        raise ValueError(
            f"The {name} passed as `{param}` failed on a float32 batch of shape "
            f"(batch, {n_inputs}): {exc}. It must accept float32 input with "
            f"{n_inputs} inputs per row."
        ) from exc
    copied.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out)
        raise ValueError(
            f"The {name} passed as `{param}` must return a tensor of shape "
            f"(batch, width); on a batch of 2 it returned {shape}."
        )
    return copied, int(out.shape[1])


def check_decoder(module, embedding_dim, n_features, device):
    """Copy a user-supplied decoder to ``device`` and check its widths.

    Parameters
    ----------
    module : torch.nn.Module
        Maps ``(batch, embedding_dim)`` to ``(batch, n_features)``.
    embedding_dim : int
        Width of the encoder's output.
    n_features : int
        Number of features of the data.
    device : torch.device

    Returns
    -------
    decoder : torch.nn.Module
        A copy of ``module`` on ``device``.
    """
    decoder, width = _copy_and_probe(module, "decoder", "decoder", embedding_dim, device)
    if width != n_features:
        raise ValueError(
            f"The decoder passed as `decoder` returns {width} features, but X has "
            f"{n_features}; it must reconstruct every feature."
        )
    return decoder


def check_encoder(module, n_features, device):
    """Copy a user-supplied encoder to ``device`` and find its output width.

    The module must map a float32 tensor of shape ``(batch, n_features)`` to a
    tensor of shape ``(batch, embedding_dim)``.

    Parameters
    ----------
    module : torch.nn.Module
        The user's encoder; it is deep-copied, never modified.
    n_features : int
        Number of input features of the data.
    device : torch.device

    Returns
    -------
    encoder : torch.nn.Module
        A copy of ``module`` on ``device``.
    embedding_dim : int
        The width of its output.

    Raises
    ------
    TypeError
        If ``module`` is not a ``torch.nn.Module``.
    ValueError
        If the module fails on, or returns the wrong shape for, a batch with
        ``n_features`` columns.
    """
    return _copy_and_probe(module, "encoder", "module", n_features, device)


class Autoencoder(nn.Module):
    """An encoder and a decoder; ``forward`` returns the reconstruction.

    With ``input_dropout > 0`` it is a denoising autoencoder: in training mode
    a random fraction of the input features is zeroed (and the rest rescaled)
    before encoding, while the loss still compares with the clean input, as
    in DEC's pretraining (20 % corruption, Xie et al., 2016, Sec. 3.2).
    """

    def __init__(self, encoder, decoder, input_dropout=0.0):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.input_dropout = input_dropout

    def forward(self, x):
        x = nn.functional.dropout(x, self.input_dropout, training=self.training)
        return self.decoder(self.encoder(x))


class ReconstructionLoss(nn.Module):
    """Mean squared reconstruction error, called as ``loss(output, index, x)``."""

    def forward(self, reconstruction, index, x):
        return nn.functional.mse_loss(reconstruction, x)
