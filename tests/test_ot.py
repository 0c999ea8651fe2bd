"""Log-domain Sinkhorn against POT, its properties, and its distributed form."""

import os
import socket

import numpy as np
import ot as pot
import pytest
import torch
import torch.multiprocessing as mp
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_deepclust.ot import sinkhorn_log


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
    assert (plan >= 0).all()
    torch.testing.assert_close(
        plan.sum(1), torch.full((n_samples,), 1 / n_samples), rtol=1e-4, atol=1e-7
    )
    order = torch.randperm(n_samples, generator=torch.Generator().manual_seed(seed))
    permuted = sinkhorn_log(scores[order], epsilon, n_iters=500).exp()
    torch.testing.assert_close(permuted, plan[order], rtol=1e-4, atol=1e-7)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="2-D"):
        sinkhorn_log(torch.zeros(3))
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        sinkhorn_log(torch.zeros(3, 2), epsilon=0)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank, world_size, port, scores, out):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        rows = scores.chunk(world_size)[rank]
        out[rank] = sinkhorn_log(rows, 0.05, n_iters=3)
    finally:
        torch.distributed.destroy_process_group()


def test_two_gloo_processes_give_the_codes_of_the_whole_batch():
    scores = torch.tensor(_problem(5, 24, 4)[0], dtype=torch.float64)
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_worker, args=(2, _free_port(), scores, out), nprocs=2, join=True)
    distributed = torch.cat([out[0], out[1]])
    torch.testing.assert_close(distributed, sinkhorn_log(scores, 0.05, n_iters=3))
