"""Nearest-neighbour mining in an embedding, in chunks, on the device.

SCAN [1]_ trains its clustering head to agree with each sample's nearest
neighbours in a pretext embedding. Mining them exactly needs every pairwise
similarity, but never all at once: the queries are processed ``chunk_size``
rows at a time, so memory is O(chunk_size * n_samples + n_samples * k).

References
----------
.. [1] W. Van Gansbeke, S. Vandenhende, S. Georgoulis, M. Proesmans and
   L. Van Gool, "SCAN: Learning to Classify Images without Labels", ECCV 2020.
"""

import numpy as np
import torch

__all__ = ["mine_neighbors", "neighbor_purity"]


def mine_neighbors(embedding, n_neighbors=20, *, metric="cosine", chunk_size=1024):
    """Indices of each sample's ``n_neighbors`` nearest other samples.

    Parameters
    ----------
    embedding : torch.Tensor of shape (n_samples, dim)
        Stays on its device; the result is on the same device.
    n_neighbors : int, default=20
        Neighbours per sample (SCAN's default), the sample itself excluded.
    metric : {"cosine", "euclidean"}, default="cosine"
        Cosine similarity (SCAN) or Euclidean distance.
    chunk_size : int, default=1024
        Query rows per step; bounds the similarity block at
        ``chunk_size x n_samples``.

    Returns
    -------
    neighbors : torch.LongTensor of shape (n_samples, n_neighbors)
        Row ``i`` lists the neighbours of sample ``i``, nearest first.

    Examples
    --------
    >>> import torch
    >>> from sklearn_deepclust.neighbors import mine_neighbors
    >>> points = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
    >>> mine_neighbors(points, n_neighbors=1, metric="euclidean").ravel().tolist()
    [1, 0, 3, 2]
    """
    n_samples = embedding.shape[0]
    if not 1 <= n_neighbors < n_samples:
        raise ValueError(
            f"n_neighbors={n_neighbors} must be between 1 and n_samples - 1 = {n_samples - 1}."
        )
    if metric == "cosine":
        keys = torch.nn.functional.normalize(embedding, dim=1)
    elif metric == "euclidean":
        keys = embedding
        squared_norms = keys.square().sum(dim=1)
    else:
        raise ValueError(f"metric must be 'cosine' or 'euclidean'; got {metric!r}.")
    neighbors = torch.empty(n_samples, n_neighbors, dtype=torch.long, device=embedding.device)
    for start in range(0, n_samples, chunk_size):
        stop = min(start + chunk_size, n_samples)
        queries = keys[start:stop]
        if metric == "cosine":
            score = queries @ keys.T  # higher is nearer
        else:  # minus squared distance, up to the query's own norm
            score = 2 * queries @ keys.T - squared_norms
        rows = torch.arange(stop - start, device=embedding.device)
        score[rows, rows + start] = -torch.inf  # a sample is not its own neighbour
        neighbors[start:stop] = score.topk(n_neighbors, dim=1).indices
    return neighbors


def neighbor_purity(neighbors, y):
    """Fraction of mined neighbours that share their anchor's class.

    SCAN's diagnostic for a pretext embedding: the clustering step can only be
    as good as the neighbours it learns from.

    Parameters
    ----------
    neighbors : array-like or torch.Tensor of shape (n_samples, n_neighbors)
    y : array-like of shape (n_samples,)
        True classes.

    Returns
    -------
    purity : float in [0, 1]

    Examples
    --------
    >>> from sklearn_deepclust.neighbors import neighbor_purity
    >>> neighbor_purity([[1], [0], [3], [0]], [0, 0, 1, 1])
    0.75
    """
    if isinstance(neighbors, torch.Tensor):
        neighbors = neighbors.cpu().numpy()
    neighbors = np.asarray(neighbors)
    y = np.asarray(y)
    if neighbors.shape[0] != y.shape[0]:
        raise ValueError(f"neighbors has {neighbors.shape[0]} rows but y has {y.shape[0]} labels.")
    return float(np.mean(y[neighbors] == y[:, None]))
