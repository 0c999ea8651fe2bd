"""Log-domain Sinkhorn against POT, its properties, and its distributed form."""

import warnings

import numpy as np
import ot as pot
import pytest
import torch
import torch.multiprocessing as mp
from _helpers import free_port, join_gloo_group
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_deepclust.ot import relaxed_partial_sinkhorn_log, sinkhorn_log


def _problem(seed, n_samples, n_clusters, uniform=True):
    rng = np.random.default_rng(seed)
    scores = rng.uniform(-1, 1, size=(n_samples, n_clusters))
    if uniform:
        a = np.full(n_samples, 1 / n_samples)
        b = np.full(n_clusters, 1 / n_clusters)
    else:
        a = rng.uniform(0.5, 1.5, n_samples)
        a /= a.sum()
        b = rng.uniform(0.5, 1.5, n_clusters)
        b /= b.sum()
    return scores, a, b


@pytest.mark.parametrize("uniform", [True, False], ids=["uniform", "weighted"])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_matches_pot_sinkhorn(seed, uniform, dtype):
    scores, a, b = _problem(seed, 40, 6, uniform)
    epsilon = 0.2
    expected = pot.sinkhorn(a, b, -scores, reg=epsilon, numItermax=10_000, stopThr=1e-12)
    plan = sinkhorn_log(
        torch.tensor(scores, dtype=dtype),
        epsilon,
        n_iters=10_000,
        sample_weights=torch.tensor(a, dtype=dtype),
        cluster_weights=torch.tensor(b, dtype=dtype),
        tol=1e-10 if dtype == torch.float64 else 1e-8,
    ).exp()
    relative = np.abs(plan.double().numpy() - expected).max() / expected.max()
    assert relative < 1e-5


def test_stays_finite_where_plain_scaling_overflows():
    scores, a, b = _problem(0, 64, 8)
    epsilon = 0.005  # exp(1 / 0.005) = exp(200) overflows float32 (and float64 near 710)
    with np.errstate(all="ignore"), pytest.warns(UserWarning):
        plain = pot.sinkhorn(a, b, -scores.astype(np.float32), reg=epsilon, numItermax=50)
    assert not np.all(np.isfinite(plain)) or np.abs(plain.sum(0) - b).max() > 1e-3
    plan = sinkhorn_log(torch.tensor(scores, dtype=torch.float32), epsilon, n_iters=2000).exp()
    assert torch.isfinite(plan).all()
    torch.testing.assert_close(plan.sum(1), torch.full((64,), 1 / 64), rtol=1e-4, atol=0)
    reference = pot.sinkhorn(a, b, -scores, reg=epsilon, method="sinkhorn_log", numItermax=2000)
    assert np.abs(plan.double().numpy() - reference).max() / reference.max() < 1e-3


def test_swav_mode_matches_its_reference_iterations():
    # SwAV's procedure: Q = exp(S / eps), total mass 1, then 3 x (rows of
    # prototypes to 1/K, columns of samples to 1/B); codes = Q * B.
    scores, _, _ = _problem(3, 32, 5)
    q = np.exp(scores / 0.05).T
    q /= q.sum()
    for _ in range(3):
        q /= q.sum(axis=1, keepdims=True) * 5
        q /= q.sum(axis=0, keepdims=True) * 32
    expected_codes = (q * 32).T
    codes = sinkhorn_log(torch.tensor(scores), 0.05, n_iters=3).exp() * 32
    np.testing.assert_allclose(codes.numpy(), expected_codes, rtol=1e-10)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_samples=st.integers(2, 30),
    n_clusters=st.integers(2, 8),
    epsilon=st.sampled_from([0.01, 0.05, 0.5]),
)
def test_properties(seed, n_samples, n_clusters, epsilon):
    scores = torch.tensor(_problem(seed, n_samples, n_clusters)[0], dtype=torch.float32)
    log_plan = sinkhorn_log(scores, epsilon, n_iters=500)
    plan = log_plan.exp()
    assert torch.isfinite(log_plan).all()
    torch.testing.assert_close(
        plan.sum(1), torch.full((n_samples,), 1 / n_samples), rtol=1e-4, atol=1e-7
    )
    # The last row scaling makes the rows exact by construction; the columns
    # hold only as the iterations converge. At epsilon 0.01 a plan near a
    # permutation needs far more iterations than a test can afford.
    if epsilon >= 0.05:
        a, b = np.full(n_samples, 1 / n_samples), np.full(n_clusters, 1 / n_clusters)
        # 500 float32 iterations: worst 1.1e-3 over 4,500 random problems.
        np.testing.assert_allclose(plan.sum(0).numpy(), b, rtol=5e-3)
        # POT's log-domain iterations, as many of them: the same plan, to
        # float64 rounding, converged or not (a few 2 x 2 plans are still
        # 2e-5 off after 20,000).
        n_iters = 20_000
        converged = sinkhorn_log(scores.double(), epsilon, n_iters=n_iters, tol=1e-12).exp()
        np.testing.assert_allclose(converged.sum(0).numpy(), b, rtol=1e-4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "did not converge" for those few
            expected = pot.sinkhorn(
                a,
                b,
                -scores.double().numpy(),
                reg=epsilon,
                method="sinkhorn_log",
                numItermax=n_iters,
                stopThr=1e-12,
            )
        np.testing.assert_allclose(converged.numpy(), expected, atol=1e-6 * expected.max())
    order = torch.randperm(n_samples, generator=torch.Generator().manual_seed(seed))
    permuted = sinkhorn_log(scores[order], epsilon, n_iters=500).exp()
    torch.testing.assert_close(permuted, plan[order], rtol=1e-4, atol=1e-7)


def test_marginals_follow_the_scores_device_and_dtype():
    """Weights given on the CPU meet scores on another device (``meta`` stands
    in for a GPU here: an operation mixing it with a CPU tensor fails as on
    CUDA) and in another dtype."""
    scores = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    weights = dict(
        sample_weights=torch.full((6,), 1 / 6), cluster_weights=torch.tensor([0.5, 0.3, 0.2])
    )
    on_meta = sinkhorn_log(scores.to("meta"), epsilon=0.5, n_iters=5, **weights)
    assert on_meta.device.type == "meta" and on_meta.shape == (6, 3)
    in_float64 = sinkhorn_log(scores.double(), epsilon=0.5, n_iters=5, **weights)
    assert in_float64.dtype == torch.float64
    torch.testing.assert_close(
        in_float64.float(), sinkhorn_log(scores, epsilon=0.5, n_iters=5, **weights)
    )


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="2-D"):
        sinkhorn_log(torch.zeros(3))
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        sinkhorn_log(torch.zeros(3, 2), epsilon=0)
    for mass in (0.0, 1.5):
        with pytest.raises(ValueError, match=r"mass must be in \(0, 1\]"):
            relaxed_partial_sinkhorn_log(torch.zeros(3, 2), mass=mass)
    with pytest.raises(ValueError, match="kl_weight must be > 0"):
        relaxed_partial_sinkhorn_log(torch.zeros(3, 2), kl_weight=0.0)


def _worker(rank, world_size, port, scores, out, solve=None):
    join_gloo_group(rank, world_size, port)
    try:
        rows = scores.chunk(world_size)[rank]
        out[rank] = (solve or _swav_codes)(rows)
    finally:
        torch.distributed.destroy_process_group()


def _swav_codes(scores):
    return sinkhorn_log(scores, 0.05, n_iters=3)


def _relaxed_until_converged(scores):
    return relaxed_partial_sinkhorn_log(scores, mass=0.5, n_iters=200, tol=1e-3)


def test_two_gloo_processes_give_the_codes_of_the_whole_batch():
    scores = torch.tensor(_problem(5, 24, 4)[0], dtype=torch.float64)
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_worker, args=(2, free_port(), scores, out), nprocs=2, join=True)
    distributed = torch.cat([out[0], out[1]])
    torch.testing.assert_close(distributed, sinkhorn_log(scores, 0.05, n_iters=3))


def test_two_gloo_processes_stop_the_relaxed_transport_together():
    # With a tolerance, each process used to test only its own rows: one
    # stopped, the other waited in all_reduce until gloo timed out.
    scores = 3 * torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    scores[:4] = 0  # flat rows: the first process converges later than the second
    log_p = torch.log_softmax(scores, 1)
    manager = mp.Manager()
    out = manager.dict()
    solve = _relaxed_until_converged
    mp.spawn(_worker, args=(2, free_port(), log_p.double(), out, solve), nprocs=2, join=True)
    distributed = torch.cat([out[0], out[1]])
    torch.testing.assert_close(distributed, solve(log_p.double()))


@pytest.mark.filterwarnings("ignore:If reg_type = entropy")
def test_relaxed_cluster_marginal_matches_pot_semi_relaxed_unbalanced():
    log_p = np.log(np.random.default_rng(1).dirichlet(np.ones(5), size=30))
    a, b = np.full(30, 1 / 30), np.full(5, 1 / 5)
    expected = pot.unbalanced.sinkhorn_unbalanced(
        a,
        b,
        -log_p,
        reg=0.1,
        reg_m=(float("inf"), 1.0),
        reg_type="entropy",
        numItermax=20_000,
        stopThr=1e-13,
    )
    plan = relaxed_partial_sinkhorn_log(
        torch.tensor(log_p), mass=1.0, epsilon=0.1, kl_weight=1.0, n_iters=20_000, tol=1e-13
    ).exp()
    assert np.abs(plan.numpy() - expected).max() / expected.max() < 1e-5
    assert np.abs(plan.numpy().sum(0) - b).max() > 1e-3  # sizes did move off 1/K


def test_partial_transport_with_exact_sizes_is_balanced_ot_with_a_virtual_cluster():
    log_p = np.log(np.random.default_rng(2).dirichlet(np.ones(4), size=25))
    mass = 0.6
    augmented = -np.hstack([log_p, np.zeros((25, 1))])
    b = np.r_[np.full(4, mass / 4), 1 - mass]
    expected = pot.sinkhorn(
        np.full(25, 1 / 25), b, augmented, reg=0.1, numItermax=20_000, stopThr=1e-13
    )[:, :4]
    plan = relaxed_partial_sinkhorn_log(
        torch.tensor(log_p),
        mass=mass,
        epsilon=0.1,
        kl_weight=float("inf"),
        n_iters=20_000,
        tol=1e-13,
    ).exp()
    assert np.abs(plan.numpy() - expected).max() / expected.max() < 1e-5


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    mass=st.sampled_from([0.1, 0.5, 0.9, 1.0]),
    kl_weight=st.sampled_from([0.1, 1.0, 10.0]),
)
def test_partial_transport_properties(seed, mass, kl_weight):
    rng = np.random.default_rng(seed)
    log_p = torch.tensor(np.log(rng.dirichlet(np.ones(6), size=40)), dtype=torch.float32)
    plan = relaxed_partial_sinkhorn_log(log_p, mass, 0.1, kl_weight, n_iters=1000).exp()
    assert torch.isfinite(plan).all() and (plan >= 0).all()
    assert (plan.sum(1) <= 1 / 40 * (1 + 1e-4)).all()  # a sample's mass is an upper bound
    assert float(plan.sum()) == pytest.approx(mass, rel=1e-2)
    order = torch.randperm(40, generator=torch.Generator().manual_seed(seed))
    permuted = relaxed_partial_sinkhorn_log(log_p[order], mass, 0.1, kl_weight, 1000).exp()
    torch.testing.assert_close(permuted, plan[order], rtol=1e-4, atol=1e-7)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    mass=st.sampled_from([0.3, 0.7, 1.0]),
    kl_weight=st.sampled_from([0.05, 0.5, 5.0]),
)
def test_partial_transport_meets_its_optimality_conditions(seed, mass, kl_weight):
    """P²OT's actual setting (partial mass, finite KL weight), checked by the
    stationarity of its objective rather than against another solver: at the
    optimum ``epsilon * log Q_ij = scores_ij + f_i - kl_weight * log(c_j / b_j)``
    for the real clusters (column sums ``c``, targets ``b = mass / K``), so the
    column part of ``log Q - scores / epsilon`` moves with ``log c`` at the rate
    ``-kl_weight / epsilon``; the rows carry ``1 / n`` with the virtual
    cluster, which takes exactly ``1 - mass``."""
    rng = np.random.default_rng(seed)
    n_samples, n_clusters, epsilon = 30, 5, 0.1
    log_p = np.log(rng.dirichlet(np.full(n_clusters, 0.5), size=n_samples))
    log_plan = relaxed_partial_sinkhorn_log(
        torch.tensor(log_p), mass, epsilon, kl_weight, n_iters=50_000, tol=1e-13
    ).numpy()
    plan = np.exp(log_plan)
    sizes = plan.sum(0)
    assert plan.sum() == pytest.approx(mass, rel=1e-9)
    assert np.all(plan.sum(1) <= 1 / n_samples * (1 + 1e-9))
    column_part = (log_plan - log_p / epsilon).mean(0)
    expected = -kl_weight / epsilon * np.log(sizes / (mass / n_clusters))
    np.testing.assert_allclose(
        column_part - column_part.mean(), expected - expected.mean(), atol=1e-6
    )
    # And the relaxation is a relaxation: a larger weight, sizes nearer mass / K.
    tighter = relaxed_partial_sinkhorn_log(
        torch.tensor(log_p), mass, epsilon, 10 * kl_weight, n_iters=50_000, tol=1e-13
    ).exp()
    target = mass / n_clusters
    assert np.abs(tighter.sum(0).numpy() - target).max() <= np.abs(sizes - target).max() + 1e-12


def test_partial_transport_keeps_the_confident_samples():
    # 20 confident samples, five per cluster, carry exactly the mass 0.5.
    confident = torch.full((20, 4), 0.01)
    confident[torch.arange(20), torch.arange(20) % 4] = 0.97
    unsure = torch.full((20, 4), 0.25)
    log_p = torch.cat([confident, unsure]).log()
    plan = relaxed_partial_sinkhorn_log(log_p, mass=0.5, n_iters=500).exp()
    transported = plan.sum(1)
    assert transported[:20].min() > 5 * transported[20:].max()
