"""Tabular views: shape, dtype, device, seeded repeatability, rates on average."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_deepclust.augment import (
    TabularView,
    feature_corruption,
    feature_masking,
    gaussian_noise,
)

shapes = st.tuples(st.integers(1, 30), st.integers(1, 12))
rates = st.floats(0.0, 1.0)


def batch(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def views(reference):
    """Each view as a function of (x, generator)."""
    return {
        "noise": lambda x, g: gaussian_noise(x, 0.5, g),
        "masking": lambda x, g: feature_masking(x, 0.3, g),
        "corruption": lambda x, g: feature_corruption(x, reference, 0.6, g),
        "composed": TabularView(0.6, 0.2, 0.1).fit(reference),
    }


@settings(max_examples=30, deadline=None)
@given(shapes, st.sampled_from(["noise", "masking", "corruption", "composed"]))
def test_views_keep_shape_dtype_device_and_leave_input_alone(shape, name):
    x = batch(shape)
    before = x.clone()
    out = views(batch((50, shape[1]), seed=1))[name](x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert torch.equal(x, before)


@settings(max_examples=30, deadline=None)
@given(
    shapes,
    st.sampled_from(["noise", "masking", "corruption", "composed"]),
    st.integers(0, 2**31 - 1),
)
def test_same_generator_seed_gives_the_same_view(shape, name, seed):
    x = batch(shape)
    view = views(batch((50, shape[1]), seed=1))[name]
    first = view(x, torch.Generator().manual_seed(seed))
    second = view(x, torch.Generator().manual_seed(seed))
    assert torch.equal(first, second)


@settings(max_examples=25, deadline=None)
@given(rates)
def test_masking_rate_is_respected_on_average(rate):
    x = torch.ones(400, 50)
    masked = feature_masking(x, rate, torch.Generator().manual_seed(0))
    assert abs((masked == 0).float().mean().item() - rate) < 0.02  # 20,000 cells


@settings(max_examples=25, deadline=None)
@given(rates)
def test_corruption_rate_is_respected_on_average(rate):
    # Reference values never equal the batch's, so every corrupted cell shows.
    x = torch.zeros(400, 50)
    reference = torch.rand(100, 50) + 1.0
    corrupted = feature_corruption(x, reference, rate, torch.Generator().manual_seed(0))
    assert abs((corrupted != 0).float().mean().item() - rate) < 0.02


def test_corruption_draws_from_each_features_own_marginal():
    # Feature j of the reference only takes values in {10 j, 10 j + 1}.
    reference = torch.tensor([[10.0 * j + (i % 2) for j in range(4)] for i in range(20)])
    out = feature_corruption(
        torch.full((200, 4), -1.0), reference, 1.0, torch.Generator().manual_seed(0)
    )
    for j in range(4):
        assert set(out[:, j].tolist()) == {10.0 * j, 10.0 * j + 1}


def test_noise_follows_each_features_scale():
    x = torch.zeros(20000, 2)
    scale = torch.tensor([0.1, 3.0])
    noisy = gaussian_noise(x, scale, torch.Generator().manual_seed(0))
    np.testing.assert_allclose(noisy.std(0).numpy(), scale.numpy(), rtol=0.05)


def test_view_noise_is_in_units_of_the_reference_std():
    reference = torch.randn(5000, 3, generator=torch.Generator().manual_seed(0))
    reference = reference * torch.tensor([1.0, 10.0, 100.0])
    view = TabularView(corruption_rate=0.0, noise_scale=0.5).fit(reference)
    noise = view(torch.zeros(5000, 3), torch.Generator().manual_seed(1))
    np.testing.assert_allclose(noise.std(0).numpy(), [0.5, 5.0, 50.0], rtol=0.06)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_rates_outside_zero_one_are_rejected(bad):
    with pytest.raises(ValueError, match="must be in \\[0, 1\\]"):
        feature_masking(torch.zeros(2, 2), bad)
    with pytest.raises(ValueError, match="corruption_rate must be in \\[0, 1\\]"):
        TabularView(corruption_rate=bad).fit(torch.zeros(3, 2))
