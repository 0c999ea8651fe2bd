"""Nearest-neighbour mining in an embedding, in chunks, on the device.

SCAN [1]_ trains its clustering head to agree with each sample's nearest
neighbours in a pretext embedding. Mining them exactly needs every pairwise
similarity, but never all at once: the queries are processed ``chunk_size``
rows at a time, so memory is O(chunk_size * n_samples + n_samples * k). Above
50,000 samples the search is approximate by default: each sample looks for its
neighbours in a few k-means cells near its own, which makes time and memory
linear in the number of samples.

References
----------
.. [1] W. Van Gansbeke, S. Vandenhende, S. Georgoulis, M. Proesmans and
   L. Van Gool, "SCAN: Learning to Classify Images without Labels", ECCV 2020.
"""

import numpy as np
import torch

__all__ = ["mine_neighbors", "neighbor_purity"]


def mine_neighbors(
    embedding,
    n_neighbors=20,
    *,
    metric="cosine",
    algorithm="auto",
    chunk_size=64,
    cell_size=1024,
    n_probe=8,
    random_state=None,
):
    """Indices of each sample's ``n_neighbors`` nearest other samples.

    Parameters
    ----------
    embedding : torch.Tensor of shape (n_samples, dim)
        Stays on its device; the result is on the same device.
    n_neighbors : int, default=20
        Neighbours per sample (SCAN's default), the sample itself excluded.
    metric : {"cosine", "euclidean"}, default="cosine"
        Cosine similarity (SCAN) or Euclidean distance.
    algorithm : {"auto", "brute", "partition"}, default="auto"
        ``"brute"`` compares every pair: exact, O(n_samples**2) time.
        ``"partition"`` is approximate and linear in ``n_samples`` for a fixed
        ``cell_size``: k-means splits the samples into cells of about
        ``cell_size`` rows, and a sample's neighbours are searched among the
        members of the ``n_probe`` cells whose centres are nearest to its own
        cell's centre (an inverted file, as in Jégou et al. [1]_); fewer than
        ``2 * cell_size`` samples are searched exactly. ``"auto"`` is
        ``"brute"`` up to 50,000 samples and ``"partition"`` above.
    chunk_size : int, default=64
        Query rows per step; bounds the similarity block at
        ``chunk_size x n_samples`` (``"brute"``) or ``chunk_size x`` the
        candidates of a cell (``"partition"``). On CPU, 64 was as fast as or
        faster than 128 and 256 from 10,000 to 50,000 samples (the block
        stays in cache).
    cell_size : int, default=1024
        ``"partition"`` only: the mean number of samples per cell.
    n_probe : int, default=8
        ``"partition"`` only: cells searched per sample, its own included.
        More cells find more of the exact neighbours, at proportional cost.
    random_state : int or None, default=None
        ``"partition"`` only: seeds the k-means of the cells.

    Returns
    -------
    neighbors : torch.LongTensor of shape (n_samples, n_neighbors)
        Row ``i`` lists the neighbours of sample ``i``, nearest first.

    References
    ----------
    .. [1] H. Jégou, M. Douze and C. Schmid, "Product Quantization for Nearest
       Neighbor Search", IEEE TPAMI 33(1), 2011.

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
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"metric must be 'cosine' or 'euclidean'; got {metric!r}.")
    if algorithm not in ("auto", "brute", "partition"):
        raise ValueError(f"algorithm must be 'auto', 'brute' or 'partition'; got {algorithm!r}.")
    for name, value in (("chunk_size", chunk_size), ("cell_size", cell_size), ("n_probe", n_probe)):
        if value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value}.")
    if metric == "cosine":
        keys = torch.nn.functional.normalize(embedding, dim=1)
    else:  # centred: |k|^2 - 2 q.k in float32 cancels far from the origin
        keys = embedding - embedding.mean(dim=0, dtype=torch.float64).to(embedding.dtype)
    # Higher is nearer: cosine similarity, or minus the squared distance up to
    # the query's own norm.
    key_norms = None if metric == "cosine" else keys.square().sum(dim=1)
    if algorithm == "auto":
        algorithm = "brute" if n_samples <= AUTO_BRUTE_MAX_SAMPLES else "partition"
    if algorithm == "partition" and n_samples >= 2 * cell_size:
        return _partition_neighbors(
            keys, key_norms, n_neighbors, chunk_size, cell_size, n_probe, random_state
        )
    everyone = torch.arange(n_samples, device=embedding.device)
    return _nearest_among(keys, key_norms, everyone, n_samples, n_neighbors, chunk_size)


AUTO_BRUTE_MAX_SAMPLES = 50_000


def _nearest_among(keys, key_norms, candidates, n_queries, n_neighbors, chunk_size):
    """The ``n_neighbors`` best ``candidates`` for each of the first ``n_queries``.

    ``keys`` and ``key_norms`` (None for cosine) are those of the candidates,
    row ``j`` for ``candidates[j]``; the queries come first among them, so
    that query ``i`` is candidate ``i`` and is masked out by position.
    """
    neighbors = torch.empty(n_queries, n_neighbors, dtype=torch.long, device=keys.device)
    for start in range(0, n_queries, chunk_size):
        stop = min(start + chunk_size, n_queries)
        score = keys[start:stop] @ keys.T
        if key_norms is not None:
            score.mul_(2).sub_(key_norms)
        rows = torch.arange(stop - start, device=keys.device)
        score[rows, rows + start] = -torch.inf  # a sample is not its own neighbour
        neighbors[start:stop] = candidates[score.topk(n_neighbors, dim=1).indices]
    return neighbors


def _partition_neighbors(keys, key_norms, n_neighbors, chunk_size, cell_size, n_probe, seed):
    """Approximate neighbours searched in the nearest k-means cells (an inverted file)."""
    n_samples = keys.shape[0]
    n_cells = n_samples // cell_size
    generator = torch.Generator().manual_seed(
        int(torch.randint(2**31 - 1, ())) if seed is None else seed
    )
    centres = _cell_centres(keys, n_cells, generator)
    cells = _nearest_centres(keys, centres, 1).ravel()
    members = torch.argsort(cells, stable=True)
    # The cells nearest to each cell, its own first (argsort by distance could
    # put a duplicate centre before it). A few more than n_probe are kept in
    # case the nearest ones hold too few samples.
    n_kept = min(n_cells, n_probe + 16)
    nearest = _nearest_centres(centres, centres, n_kept)
    own = torch.arange(n_cells, device=keys.device)[:, None]
    nearest = torch.cat([own, nearest.masked_fill(nearest == own, -1)], dim=1)
    # One transfer of per-cell bookkeeping to the host before the loop over cells.
    counts = torch.bincount(cells, minlength=n_cells).cpu().numpy()
    offsets = np.concatenate([[0], np.cumsum(counts)])
    nearest = nearest.cpu().numpy()
    neighbors = torch.empty(n_samples, n_neighbors, dtype=torch.long, device=keys.device)
    for cell in np.flatnonzero(counts):
        order = nearest[cell][nearest[cell] >= 0]
        enough = np.searchsorted(np.cumsum(counts[order]), n_neighbors + 1) + 1
        if enough > len(order):  # rare: tiny cells; rank every cell
            ranked = _nearest_centres(centres[cell : cell + 1], centres, n_cells)[0].cpu().numpy()
            order = np.concatenate([[cell], ranked[ranked != cell]])
            enough = np.searchsorted(np.cumsum(counts[order]), n_neighbors + 1) + 1
        searched = order[: max(n_probe, int(enough))]
        candidates = torch.cat([members[offsets[c] : offsets[c + 1]] for c in searched])
        n_queries = int(counts[cell])
        neighbors[candidates[:n_queries]] = _nearest_among(
            keys[candidates],
            None if key_norms is None else key_norms[candidates],
            candidates,
            n_queries,
            n_neighbors,
            chunk_size,
        )
    return neighbors


def _nearest_centres(points, centres, k, chunk_size=4096):
    """Indices of the ``k`` nearest ``centres`` of each point, nearest first, in chunks."""
    return torch.cat(
        [
            torch.cdist(points[start : start + chunk_size], centres).topk(k, largest=False).indices
            for start in range(0, points.shape[0], chunk_size)
        ]
    )


def _cell_centres(keys, n_cells, generator, n_iter=10, sample_per_cell=32):
    """Lloyd's k-means on a random sample of the rows: ``n_cells`` centres."""
    n_samples = keys.shape[0]
    sample_size = min(n_samples, n_cells * sample_per_cell)
    sample = keys[torch.randperm(n_samples, generator=generator)[:sample_size].to(keys.device)]
    centres = sample[:n_cells].clone()
    for _ in range(n_iter):
        assignment = _nearest_centres(sample, centres, 1).ravel()
        sums = torch.zeros_like(centres).index_add_(0, assignment, sample)
        sizes = torch.bincount(assignment, minlength=n_cells)
        # An empty cell keeps its centre.
        centres = torch.where(sizes[:, None] > 0, sums / sizes.clamp(min=1)[:, None], centres)
    return centres


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
