"""Pretext tasks: the InfoNCE loss by hand, the views fed to the network."""

import math

import numpy as np
import pytest
import torch

from sklearn_deepclust.augment import TabularView
from sklearn_deepclust.pretext import (
    RandomViews,
    info_nce_loss,
    supervised_contrastive_loss,
    train_pretext,
)


def test_info_nce_equals_a_hand_computed_value():
    z_a = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    z_b = torch.tensor([[1.0, 1.0], [-1.0, 1.0]])
    z = np.array([[1, 0], [0, 1], [1, 1], [-1, 1]], dtype=float)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    similarity = z @ z.T / 0.5
    positive = {0: 2, 1: 3, 2: 0, 3: 1}
    losses = []
    for i in range(4):
        others = [similarity[i, j] for j in range(4) if j != i]
        losses.append(-similarity[i, positive[i]] + math.log(sum(math.exp(s) for s in others)))
    assert info_nce_loss(z_a, z_b, temperature=0.5).item() == pytest.approx(np.mean(losses))


def test_info_nce_is_lowest_when_views_agree():
    torch.manual_seed(0)
    z = torch.randn(32, 8)
    aligned = info_nce_loss(z, z + 0.01 * torch.randn(32, 8), 0.2)
    shuffled = info_nce_loss(z, z[torch.randperm(32)], 0.2)
    assert aligned < shuffled


@pytest.mark.parametrize("seed", [0, 1])
def test_contrastive_losses_have_exact_gradients(seed):
    # Both losses scale and mask their similarity matrix in place; autograd
    # must still give the true gradient (finite differences, float64).
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(10, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, -1, 2, 0, -1, 1, 2])
    assert torch.autograd.gradcheck(lambda z: info_nce_loss(z[:5], z[5:], 0.5), (z,))
    assert torch.autograd.gradcheck(lambda z: supervised_contrastive_loss(z, labels, 0.3), (z,))


def test_random_views_stack_seeded_views_of_the_batch():
    X = torch.randn(50, 6)
    view = TabularView(corruption_rate=0.5).fit(X)
    out = RandomViews(view, 3, seed=0, device=X.device)(X[:8], torch.arange(8))
    assert out.shape == (24, 6)
    again = RandomViews(view, 3, seed=0, device=X.device)(X[:8], torch.arange(8))
    assert torch.equal(out, again)
    assert not torch.equal(out[:8], out[8:16])


def test_unknown_pretext_is_a_clear_error():
    with pytest.raises(ValueError, match="pretext must be one of"):
        train_pretext(
            "simclr",
            None,
            torch.zeros(4, 2),
            train_phase=None,
            max_epochs=1,
            seed=0,
            embedding_dim=2,
        )
