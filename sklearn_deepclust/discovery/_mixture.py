"""A semi-supervised Gaussian mixture with split and merge, in torch.

Diagonal Gaussians fitted by EM in which labelled samples keep their class's
component (their responsibilities are fixed one-hot) and unlabelled samples
are soft; with no labelled sample this is exactly the EM of
:class:`sklearn.mixture.GaussianMixture` (``covariance_type="diag"``). The
number of components is changed by the split and merge moves of DeepDPM [1]_
as GPC [2]_ uses them: a component is split in two when the Hastings ratio of
the split, under a Dirichlet-process mixture with a normal-inverse-gamma
prior, exceeds one; two components are merged when the ratio of the merge
does (GPC's moves are those of DeepDPM). Here a move is measured along the
line between its two parts and calibrated on the known classes (see
:func:`known_class_split_evidence`). Known-class components are never merged
with each other; one may shed a part that holds almost none of its labelled
samples, which becomes a novel component.

References
----------
.. [1] M. Ronen, S. E. Finder and O. Freifeld, "DeepDPM: Deep Clustering
   With an Unknown Number of Clusters", CVPR 2022.
.. [2] B. Zhao, X. Wen and K. Han, "Learning Semi-supervised Gaussian Mixture
   Models for Generalized Category Discovery", ICCV 2023.
"""

import math
from dataclasses import dataclass

import torch

from ._base import _squared_distances, ncd_kmeans

__all__ = [
    "GaussianMixtureState",
    "known_class_split_evidence",
    "semi_supervised_em",
    "split_and_merge",
]

_LOG_2PI = math.log(2 * math.pi)


@dataclass
class GaussianMixtureState:
    """Parameters of a diagonal Gaussian mixture (tensors on one device)."""

    weights: torch.Tensor  # (K,)
    means: torch.Tensor  # (K, D)
    variances: torch.Tensor  # (K, D)

    @property
    def n_components(self):
        return self.weights.shape[0]


def _log_gaussian(X, state):
    """``log N(x | mean_k, diag(var_k))`` for every row and component, (N, K)."""
    precisions = 1.0 / state.variances
    squared = (
        (X * X) @ precisions.T
        - 2 * X @ (state.means * precisions).T
        + (state.means**2 * precisions).sum(1)
    )
    log_det = torch.log(state.variances).sum(1)
    return -0.5 * (X.shape[1] * _LOG_2PI + log_det + squared)


def _e_step(X, state, codes):
    """Log responsibilities (labelled rows fixed one-hot) and the mean log-likelihood."""
    weighted = _log_gaussian(X, state) + torch.log(state.weights)
    log_norm = torch.logsumexp(weighted, dim=1)
    log_resp = weighted - log_norm[:, None]
    labelled = codes >= 0
    fixed = torch.full_like(log_resp, -torch.inf)
    fixed.scatter_(1, codes.clamp_min(0)[:, None], 0.0)
    log_resp = torch.where(labelled[:, None], fixed, log_resp)
    # Labelled rows contribute log p(x, their class), the others log p(x).
    own = weighted.gather(1, codes.clamp_min(0)[:, None]).squeeze(1)
    log_likelihood = torch.where(labelled, own, log_norm)
    return log_resp, log_likelihood.mean()


def _m_step(X, log_resp, reg_covar):
    resp = log_resp.exp()
    counts = resp.sum(0) + 10 * torch.finfo(resp.dtype).eps
    means = resp.T @ X / counts[:, None]
    variances = resp.T @ (X * X) / counts[:, None] - means**2 + reg_covar
    return GaussianMixtureState(counts / X.shape[0], means, variances.clamp_min(reg_covar))


def semi_supervised_em(X, codes, state, *, max_iter=100, tol=1e-3, reg_covar=1e-6):
    """EM for a diagonal Gaussian mixture with some responsibilities fixed.

    Rows with ``codes >= 0`` belong to component ``codes`` for good; the
    others are assigned softly. The loop is scikit-learn's: E-step, M-step,
    stop when the mean log-likelihood changes by less than ``tol``.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
    codes : torch.Tensor of int64, shape (n_samples,)
        Component of each labelled row, ``-1`` for unlabelled rows.
    state : GaussianMixtureState
        The initial parameters.
    max_iter : int, default=100
    tol : float, default=1e-3
    reg_covar : float, default=1e-6
        Added to every variance.

    Returns
    -------
    state : GaussianMixtureState
        The fitted parameters.
    log_resp : torch.Tensor of shape (n_samples, n_components)
        Responsibilities of the last E-step, on the fitted parameters.
    log_likelihood : float
        Mean log-likelihood of the last iteration (``lower_bound_``).
    converged : bool
    """
    log_likelihood, converged = -math.inf, False
    for _ in range(max_iter):
        previous = log_likelihood
        log_resp, log_likelihood = _e_step(X, state, codes)
        state = _m_step(X, log_resp, reg_covar)
        log_likelihood = float(log_likelihood)  # one sync per EM iteration
        if abs(log_likelihood - previous) < tol:
            converged = True
            break
    log_resp, _ = _e_step(X, state, codes)
    return state, log_resp, log_likelihood, converged


def initial_state(X, assignment, n_components, reg_covar):
    """Mixture parameters from a hard assignment (empty components get the global stats)."""
    one_hot = torch.nn.functional.one_hot(assignment, n_components).to(X.dtype)
    state = _m_step(X, torch.log(one_hot), reg_covar)
    empty = one_hot.sum(0) == 0
    state.means[empty] = X.mean(0)
    state.variances[empty] = X.var(0) + reg_covar
    state.weights.clamp_min_(1.0 / X.shape[0])
    state.weights /= state.weights.sum()
    return state


# --------------------------------------------------------- split and merge
@dataclass
class _Prior:
    """Normal-inverse-gamma prior, independent per dimension (DeepDPM's diagonal prior)."""

    mean: torch.Tensor  # (D,)
    kappa: float
    shape: float
    scale: torch.Tensor  # (D,)

    @classmethod
    def from_data(cls, X, kappa=1e-4, shape=1.0, variance_fraction=0.1):
        scale = shape * variance_fraction * X.var(0).clamp_min(1e-12)
        return cls(X.mean(0), kappa, shape, scale)

    def log_marginal(self, X):
        """Log marginal likelihood of the rows ``X`` under one component."""
        n = X.shape[0]
        kappa_n = self.kappa + n
        shape_n = self.shape + n / 2
        mean = X.mean(0)
        scatter = ((X - mean) ** 2).sum(0)
        scale_n = (
            self.scale + scatter / 2 + self.kappa * n * (mean - self.mean) ** 2 / (2 * kappa_n)
        )
        per_dimension = (
            math.lgamma(shape_n)
            - math.lgamma(self.shape)
            + self.shape * torch.log(self.scale)
            - shape_n * torch.log(scale_n)
            + 0.5 * math.log(self.kappa / kappa_n)
            - n / 2 * _LOG_2PI
        )
        return float(per_dimension.sum())


def _log_split_ratio(prior, parts, concentration):
    """Log Hastings ratio of splitting ``cat(parts)`` into ``parts`` (DeepDPM, Eq. 8)."""
    whole = torch.cat(parts)
    ratio = math.log(concentration) - math.lgamma(whole.shape[0]) - prior.log_marginal(whole)
    for part in parts:
        ratio += math.lgamma(part.shape[0]) + prior.log_marginal(part)
    return ratio


def _log_split_ratio_along(X, parts, direction, concentration):
    """:func:`_log_split_ratio` of the parts projected on ``direction``.

    In many dimensions the likelihood gained by cutting any non-Gaussian
    cluster in two, summed over the dimensions, outweighs the Dirichlet
    process's penalty (about ``n log 2`` for an even cut), and the moves
    split without end on learned embeddings. Measured along the line that
    separates the two parts, a Gaussian cluster gains ``0.51 n`` from the
    cut and is kept, while two separated modes gain far more.
    """
    unit = direction / direction.norm().clamp_min(1e-12)
    prior = _Prior.from_data(X @ unit[:, None])
    return _log_split_ratio(prior, [part @ unit[:, None] for part in parts], concentration)


def _two_means(X, generator):
    """Split ``X`` in two by 2-means: the parts and the direction between them."""
    halves, _, _ = ncd_kmeans(X, X[:0], 2, n_init=3, generator=generator)
    side = _squared_distances(X, halves).argmin(1)
    return [X[side == s] for s in (0, 1)], side, halves[1] - halves[0]


def _shed(X, labelled, generator):
    """2-means of a known component's rows with one centre fixed on its labelled mean."""
    anchor = X[labelled].mean(0, keepdim=True)
    centres, _, _ = ncd_kmeans(X, anchor, 1, n_init=3, generator=generator)
    side = _squared_distances(X, centres).argmin(1)
    return [X[side == s] for s in (0, 1)], side, centres[1] - centres[0]


def known_class_split_evidence(X, codes, n_known, *, generator, concentration=1.0, min_size=5):
    """Calibrate the moves on the known classes' labelled samples.

    The known classes show what one class and what two classes look like in
    this embedding, measured as per-sample log split ratios (see
    :func:`_log_split_ratio_along`). Returns two thresholds:

    - ``split``: the largest ratio of a known class cut in two by 2-means
      (at least 0, DeepDPM's own rule); a component must show more
      evidence of two modes than any known class to be split;
    - ``merge``: the smallest ratio of a known class and its nearest known
      class, cut along their labels (at most ``split``); two components
      must look less like two classes than any pair of known classes to
      be merged.

    Where the two groups overlap (classes that are not compact in the
    embedding), the moves between the thresholds are not made: the mixture
    keeps the number of classes it has rather than guess.
    """
    one, two = [], []
    members = [X[codes == k] for k in range(n_known)]
    centres = torch.stack([m.mean(0) if len(m) else X.mean(0) for m in members])
    for k, rows in enumerate(members):
        if rows.shape[0] < 2 * min_size:
            continue
        parts, _, direction = _two_means(rows, generator)
        if min(part.shape[0] for part in parts) >= min_size:
            one.append(_log_split_ratio_along(X, parts, direction, concentration) / len(rows))
        distances = ((centres - centres[k]) ** 2).sum(1)
        distances[k] = math.inf
        nearest = int(distances.argmin()) if n_known > 1 else k
        if nearest != k and members[nearest].shape[0] >= min_size:
            pair = [rows, members[nearest]]
            ratio = _log_split_ratio_along(X, pair, centres[nearest] - centres[k], concentration)
            two.append(ratio / (len(rows) + len(members[nearest])))
    split = max([0.0, *one])
    return split, min([split, *two])


def split_and_merge(
    X,
    codes,
    log_resp,
    n_known,
    *,
    generator,
    concentration=1.0,
    min_size=5,
    thresholds=(0.0, 0.0),
    max_components=None,
):
    """One round of split and merge moves on a fitted mixture.

    Each row is put in its most responsible component. A component with at
    least ``2 * min_size`` rows is split by 2-means when its log split ratio
    is above the threshold (a known component only into the part nearer its
    labelled mean and a part whose share of labelled rows is under a
    quarter of the component's: that part becomes a novel component);
    then each novel component not just split is
    merged with its nearest non-empty component (novel or known, each
    component in at most one merge) when the log split ratio of the pair is
    below the merge threshold. A merge into a known component removes the
    novel one.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
    codes : torch.Tensor of shape (n_samples,)
        Known component of the labelled rows, -1 elsewhere.
    log_resp : torch.Tensor of shape (n_samples, n_components)
    n_known : int
        Components ``0 .. n_known - 1`` are the known classes'.
    generator : torch.Generator
        Seeds the 2-means of the splits.
    concentration : float, default=1.0
        The Dirichlet process's ``alpha`` (GPC's value).
    min_size : int, default=5
        Smallest part a split may leave (GPC's value).
    thresholds : (float, float), default=(0.0, 0.0)
        Per-sample log ratios a split must exceed and a merge must fall
        below ((0, 0) is DeepDPM's rule; see
        :func:`known_class_split_evidence`).
    max_components : int or None, default=None
        Most components after the splits: when more splits qualify, those
        with the largest log split ratio per row (above the threshold) are
        made.

    Returns
    -------
    assignment : torch.Tensor of shape (n_samples,)
        A hard assignment to the new components (known ones first).
    n_components : int
    moves : dict
        ``{"splits": int, "merges": int}``.
    """
    n_components = log_resp.shape[1]
    assignment = log_resp.argmax(1)
    means = torch.stack(
        [
            X[assignment == k].mean(0) if (assignment == k).any() else X.mean(0)
            for k in range(n_components)
        ]
    )
    sizes = torch.bincount(assignment, minlength=n_components).tolist()
    new_assignment = assignment.clone()
    next_component = n_components
    split, candidates = set(), []
    for k in range(n_components):
        if sizes[k] < 2 * min_size:
            continue
        members = torch.nonzero(assignment == k).squeeze(1)
        if k < n_known:
            # A known component keeps its labelled samples; it may only shed
            # a part that holds (almost) none of them: a novel class hidden
            # inside it. 2-means with one centre held on the labelled mean.
            is_labelled = (codes[members] == k).to(X.dtype)
            parts, side, direction = _shed(X[members], is_labelled > 0, generator)
            shed_share = is_labelled[side == 1].mean() if (side == 1).any() else 1.0
            if float(shed_share) > 0.25 * float(is_labelled.mean()):
                continue
        else:
            parts, side, direction = _two_means(X[members], generator)
        if min(part.shape[0] for part in parts) < min_size:
            continue
        ratio = _log_split_ratio_along(X, parts, direction, concentration)
        if ratio > thresholds[0] * sizes[k]:
            candidates.append((ratio / sizes[k] - thresholds[0], k, members[side == 1]))
    room = len(candidates) if max_components is None else max_components - n_components
    strongest = sorted(candidates, key=lambda candidate: -candidate[0])[: max(room, 0)]
    for _, k, shed in sorted(strongest, key=lambda candidate: candidate[1]):
        new_assignment[shed] = next_component
        next_component += 1
        split.add(k)
    merged_into = {}
    taken = set(split)
    for k in range(n_known, n_components):
        if k in taken or sizes[k] == 0:
            continue
        distances = ((means - means[k]) ** 2).sum(1)
        distances[k] = math.inf
        for j in taken:
            distances[j] = math.inf
        for j, size in enumerate(sizes):
            if size == 0:
                distances[j] = math.inf
        nearest = int(distances.argmin())
        if not math.isfinite(float(distances[nearest])):
            continue
        parts = [X[assignment == k], X[assignment == nearest]]
        direction = means[nearest] - means[k]
        ratio = _log_split_ratio_along(X, parts, direction, concentration)
        if ratio < thresholds[1] * (sizes[k] + sizes[nearest]):
            keep, drop = (nearest, k) if nearest < n_known or nearest < k else (k, nearest)
            merged_into[drop] = keep
            taken.update((k, nearest))
    for drop, keep in merged_into.items():
        new_assignment[assignment == drop] = keep
    new_assignment = torch.where(codes >= 0, codes, new_assignment)
    # Renumber: known components first, then the surviving novel ones.
    survivors = [k for k in range(next_component) if k < n_known or k not in merged_into]
    survivors = [k for k in survivors if k < n_known or (new_assignment == k).any()]
    lookup = torch.full((next_component,), -1, dtype=torch.long, device=X.device)
    lookup[torch.tensor(survivors, device=X.device)] = torch.arange(len(survivors), device=X.device)
    moves = {"splits": len(split), "merges": len(merged_into)}
    return lookup[new_assignment], len(survivors), moves
