"""Entropic optimal transport in torch, in the log domain, on the device.

The optimal-transport clustering methods (SwAV-style codes [1]_, SeLa's
equipartitioned pseudo-labels [2]_) turn a score matrix ``S`` (samples x
clusters) into a transport plan

``Q = argmax <Q, S> + epsilon * H(Q)  s.t.  Q 1 = a,  Q^T 1 = b``,

by Sinkhorn-Knopp's alternating scalings. The plain iterations multiply
``exp(S / epsilon)``, which overflows float32 once ``S / epsilon`` exceeds
about 88 (``epsilon = 0.01`` with cosine scores near 1 is enough); here the
scalings are kept as log-potentials and every normalisation is a
``logsumexp``, so the result stays finite for any ``epsilon``.

When ``torch.distributed`` is initialised, the sums over samples are
all-reduced, so each process holds its rows of the plan of the global batch.

References
----------
.. [1] M. Caron, I. Misra, J. Mairal, P. Goyal, P. Bojanowski and A. Joulin,
   "Unsupervised Learning of Visual Features by Contrasting Cluster
   Assignments", NeurIPS 2020.
.. [2] Y. M. Asano, C. Rupprecht and A. Vedaldi, "Self-labelling via
   simultaneous clustering and representation learning", ICLR 2020.
.. [3] M. Cuturi, "Sinkhorn Distances: Lightspeed Computation of Optimal
   Transport", NeurIPS 2013.
"""

import math

import torch

from ._distributed import max_over_processes, sum_over_processes, world_size

__all__ = ["relaxed_partial_sinkhorn_log", "sinkhorn_log"]


def _logsumexp_over_samples(log_values, distributed):
    """``logsumexp`` over axis 0, across all processes when ``distributed``."""
    if not distributed:
        return torch.logsumexp(log_values, dim=0)
    if log_values.shape[0]:
        peak = log_values.detach().amax(dim=0)
    else:  # a process without rows contributes nothing
        peak = log_values.new_full(log_values.shape[1:], -math.inf)
    peak = max_over_processes(peak, distributed=True)
    peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
    total = (log_values - peak).exp().sum(dim=0)
    total = sum_over_processes(total, distributed=True)
    return total.log() + peak


def n_samples_over_processes(scores, distributed=None):
    """The number of rows of ``scores`` over all processes, a 0-d tensor on its device."""
    # Filled on the device: a tensor built on the host and copied to a GPU
    # would synchronise the stream once per batch.
    return sum_over_processes(scores.new_full((), float(scores.shape[0])), distributed)


def _log_uniform_sample_mass(scores, distributed):
    """``log(1 / n)``, ``n`` the number of samples over all processes."""
    return -n_samples_over_processes(scores, distributed).log()


def _check_problem(scores, epsilon, distributed):
    """Validate the shared inputs; resolve ``distributed=None``."""
    if scores.ndim != 2:
        raise ValueError(
            f"scores must be 2-D (samples x clusters); got shape {tuple(scores.shape)}."
        )
    if epsilon <= 0:
        raise ValueError(f"epsilon must be > 0; got {epsilon}.")
    return world_size() > 1 if distributed is None else distributed


@torch.no_grad()
def sinkhorn_log(
    scores,
    epsilon=0.05,
    n_iters=3,
    *,
    sample_weights=None,
    cluster_weights=None,
    tol=None,
    distributed=None,
):
    """Entropic OT plan between samples and clusters, by log-domain Sinkhorn.

    Solves ``max_Q <Q, scores> + epsilon * H(Q)`` subject to row sums
    ``sample_weights`` and column sums ``cluster_weights``: the problem POT
    solves as ``ot.sinkhorn(a, b, M=-scores, reg=epsilon)``. Each iteration
    first fits the cluster marginal, then the sample marginal, so the sample
    marginal is met exactly on return (SwAV's order).

    Parameters
    ----------
    scores : torch.Tensor of shape (n_samples, n_clusters)
        Similarities (higher = more likely). Any float dtype; the iterations
        run in the dtype of ``scores``.
    epsilon : float, default=0.05
        Entropic regularisation (SwAV's 0.05).
    n_iters : int, default=3
        Maximum number of iterations (SwAV uses 3 per batch).
    sample_weights : torch.Tensor of shape (n_samples,) or None
        Row marginal; None is uniform ``1 / n_samples`` (over the global
        batch when distributed). Positive, summing to the same total as
        ``cluster_weights``.
    cluster_weights : torch.Tensor of shape (n_clusters,) or None
        Column marginal; None is uniform ``1 / n_clusters`` (equipartition).
    tol : float or None, default=None
        Stop early once the largest absolute error of the cluster marginal
        is below ``tol`` (checked each iteration: one host read per
        iteration). None runs exactly ``n_iters`` iterations, with no host
        synchronisation.
    distributed : bool or None, default=None
        All-reduce the sums over samples across processes; None does so
        when ``torch.distributed`` is initialised with more than one process.

    Returns
    -------
    log_plan : torch.Tensor of shape (n_samples, n_clusters)
        Log of the transport plan (``-inf`` never occurs for finite scores).
        ``log_plan.exp() * n_samples`` are SwAV's codes (rows summing to 1
        for uniform sample weights).

    Examples
    --------
    >>> import torch
    >>> from sklearn_deepclust.ot import sinkhorn_log
    >>> scores = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.2, 0.8]])
    >>> plan = sinkhorn_log(scores, epsilon=0.1, n_iters=50).exp()
    >>> [round(v, 3) for v in plan.sum(dim=0).tolist()]
    [0.5, 0.5]
    >>> plan.argmax(dim=1).tolist()
    [0, 0, 1, 1]
    """
    distributed = _check_problem(scores, epsilon, distributed)
    n_samples, n_clusters = scores.shape
    dtype, device = scores.dtype, scores.device
    if sample_weights is None:
        log_a = _log_uniform_sample_mass(scores, distributed).expand(n_samples)
    else:
        log_a = sample_weights.to(device=device, dtype=dtype).log()
    if cluster_weights is None:
        log_b = torch.full((n_clusters,), -math.log(n_clusters), dtype=dtype, device=device)
    else:
        log_b = cluster_weights.to(device=device, dtype=dtype).log()

    log_kernel = scores / epsilon
    log_u = torch.zeros(n_samples, dtype=dtype, device=device)
    log_v = torch.zeros(n_clusters, dtype=dtype, device=device)
    for _ in range(n_iters):
        log_v = log_b - _logsumexp_over_samples(log_kernel + log_u[:, None], distributed)
        log_u = log_a - torch.logsumexp(log_kernel + log_v[None, :], dim=1)
        if tol is not None:
            column_sums = _logsumexp_over_samples(
                log_kernel + log_u[:, None] + log_v[None, :], distributed
            ).exp()
            if float((column_sums - log_b.exp()).abs().max()) < tol:
                break
    return log_kernel + log_u[:, None] + log_v[None, :]


@torch.no_grad()
def relaxed_partial_sinkhorn_log(
    scores,
    mass=1.0,
    epsilon=0.1,
    kl_weight=1.0,
    n_iters=100,
    *,
    tol=None,
    distributed=None,
):
    """Partial transport with a KL-relaxed cluster marginal (P²OT's pseudo-labels).

    Solves, for ``n`` samples of mass ``1 / n`` each and ``K`` clusters,
    ``max_Q <Q, scores> + epsilon * H(Q) - kl_weight * KL(Q^T 1 || (mass / K) 1)``
    subject to ``Q 1 <= 1 / n`` and a total transported mass ``1^T Q 1 = mass``
    (Zhang et al., ICLR 2024, Eq. 5). As in the paper, the inequality becomes
    an equality by adding a virtual cluster of score 0 that must receive
    exactly ``1 - mass``: it takes the mass of the samples whose scores are
    lowest, so only the most confident ``mass`` is transported to the real
    clusters. The real clusters' sizes are held to ``mass / K`` only softly
    (``kl_weight``), so they may follow an imbalanced data set. The scaling
    iterations are those of unbalanced Sinkhorn (Chizat et al., 2018): the
    sample and virtual marginals are fitted exactly, the real cluster
    marginal by the power ``kl_weight / (kl_weight + epsilon)``.

    Parameters
    ----------
    scores : torch.Tensor of shape (n_samples, n_clusters)
        Log-probabilities of the model (P²OT) or any similarity, at most 0 for
        the virtual cluster's score to be the highest possible.
    mass : float in (0, 1], default=1.0
        Total mass transported to the real clusters (P²OT's ``rho``, grown
        from about 0.1 to 1 during training).
    epsilon : float, default=0.1
        Entropic regularisation.
    kl_weight : float, default=1.0
        Weight of the KL relaxation of the cluster marginal; ``inf`` holds
        the sizes at exactly ``mass / K``.
    n_iters : int, default=100
        Maximum number of iterations.
    tol : float or None, default=None
        Stop once the sample marginal's largest error, checked before the last
        row scaling, is below ``tol`` (one host read per iteration).
    distributed : bool or None, default=None
        As in :func:`sinkhorn_log`.

    Returns
    -------
    log_plan : torch.Tensor of shape (n_samples, n_clusters)
        Log of the plan restricted to the real clusters; row ``i`` sums to
        the mass of sample ``i`` that is transported (at most ``1 / n``).

    References
    ----------
    .. [1] C. Zhang, H. Ren and X. He, "P²OT: Progressive Partial Optimal
       Transport for Deep Imbalanced Clustering", ICLR 2024.
    .. [2] L. Chizat, G. Peyré, B. Schmitzer and F.-X. Vialard, "Scaling
       algorithms for unbalanced optimal transport problems", Mathematics of
       Computation, 2018.
    """
    distributed = _check_problem(scores, epsilon, distributed)
    if not 0 < mass <= 1:
        raise ValueError(f"mass must be in (0, 1]; got {mass}.")
    if kl_weight <= 0:
        raise ValueError(f"kl_weight must be > 0; got {kl_weight}.")
    n_samples, n_clusters = scores.shape
    dtype, device = scores.dtype, scores.device
    log_a = _log_uniform_sample_mass(scores, distributed)
    partial = mass < 1
    log_kernel = scores / epsilon
    if partial:  # the virtual cluster, of score 0
        log_kernel = torch.cat([log_kernel, log_kernel.new_zeros(n_samples, 1)], dim=1)
    log_b = torch.full((n_clusters,), math.log(mass / n_clusters), dtype=dtype, device=device)
    power = 1.0 if math.isinf(kl_weight) else kl_weight / (kl_weight + epsilon)
    log_u = torch.zeros(n_samples, dtype=dtype, device=device)
    log_v = torch.zeros(log_kernel.shape[1], dtype=dtype, device=device)
    for _ in range(n_iters):
        column_sums = _logsumexp_over_samples(log_kernel + log_u[:, None], distributed)
        real = power * (log_b - column_sums[:n_clusters])
        if partial:
            virtual = math.log(1 - mass) - column_sums[n_clusters:]
            log_v = torch.cat([real, virtual])
        else:
            log_v = real
        previous_log_u = log_u
        log_u = log_a - torch.logsumexp(log_kernel + log_v[None, :], dim=1)
        # The row scaling's relative change is the sample marginal's error
        # before it; across processes the largest, so that all stop together.
        if tol is not None:
            change = (previous_log_u - log_u).exp().sub(1).abs()
            error = change.amax() if change.numel() else change.new_zeros(())
            if float(max_over_processes(error, distributed)) < tol:
                break
    return (log_kernel + log_u[:, None] + log_v[None, :])[:, :n_clusters]
