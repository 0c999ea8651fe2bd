"""DEC / IDEC: the equations, recovered structure, stopping rule, determinism."""

import warnings

import numpy as np
import pytest
import torch
from _helpers import seeded_module
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sklearn_deepclust import DEC
from sklearn_deepclust.cluster import soft_assignment, target_distribution
from sklearn_deepclust.metrics import cluster_accuracy

FAST = dict(hidden_dims=(32,), embedding_dim=4, batch_size=64, random_state=0)

finite = st.floats(-10, 10, allow_nan=False, width=32)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float32, (7, 3), elements=finite),
    arrays(np.float32, (4, 3), elements=finite),
    st.sampled_from([0.5, 1.0, 3.0]),
)
def test_soft_assignment_matches_the_papers_equation(z, mu, alpha):
    # Eq. 1 of Xie et al. (2016), written out in numpy.
    squared = ((z[:, None, :].astype(np.float64) - mu[None, :, :]) ** 2).sum(-1)
    kernel = (1 + squared / alpha) ** (-(alpha + 1) / 2)
    expected = kernel / kernel.sum(1, keepdims=True)
    q = soft_assignment(torch.from_numpy(z), torch.from_numpy(mu), alpha).exp().numpy()
    np.testing.assert_allclose(q, expected, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(q.sum(1), 1.0, rtol=1e-5)


@given(arrays(np.float32, (6, 3), elements=st.floats(0.0625, 1, width=32)))
def test_target_distribution_matches_the_papers_equation(raw):
    q = raw / raw.sum(1, keepdims=True)
    weight = q.astype(np.float64) ** 2 / q.sum(0)  # Eq. 3
    expected = weight / weight.sum(1, keepdims=True)
    p = target_distribution(torch.from_numpy(q)).numpy()
    np.testing.assert_allclose(p, expected, rtol=1e-4)


def test_target_distribution_sharpens_a_balanced_assignment():
    q = torch.tensor([[0.6, 0.4], [0.4, 0.6]])
    p = target_distribution(q)
    assert p[0, 0] > q[0, 0] and p[1, 1] > q[1, 1]


@pytest.mark.parametrize("reconstruction_weight", [0.0, 10.0], ids=["DEC", "IDEC"])
def test_dec_recovers_separated_blobs(blobs, reconstruction_weight):
    X, y = blobs
    dec = DEC(
        n_clusters=4,
        reconstruction_weight=reconstruction_weight,
        pretrain_epochs=60,
        max_epochs=30,
        update_interval=20,
        **FAST,
    ).fit(X)
    assert cluster_accuracy(y, dec.labels_) >= 0.99
    proba = dec.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(axis=1), dec.labels_)
    assert dec.cluster_centers_.shape == (4, 4)
    assert (dec.module_.decoder is None) == (reconstruction_weight == 0)


def test_same_random_state_gives_same_labels(blobs):
    X, _ = blobs
    params = dict(n_clusters=4, pretrain_epochs=5, max_epochs=5, **FAST)
    first = DEC(**params).fit(X)
    second = DEC(**params).fit(X)
    np.testing.assert_array_equal(first.labels_, second.labels_)
    np.testing.assert_array_equal(first.transform(X), second.transform(X))


def test_fit_leaves_the_global_torch_rng_alone(blobs):
    X, _ = blobs
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    DEC(n_clusters=4, pretrain_epochs=1, max_epochs=1, **FAST).fit(X)
    np.testing.assert_array_equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    ("update_interval", "tol"), [(7, 1.0), (3, 1.0), (7, 0.5)], ids=["boundary", "mid", "half"]
)
def test_tol_stops_the_clustering_phase_early(blobs, update_interval, tol):
    X, _ = blobs
    # 400 samples in batches of 64: 7 batches per epoch. The first comparison of
    # labels happens update_interval batches in; on these blobs fewer than half
    # of the labels change, so every tol here stops the phase right there.
    dec = DEC(
        n_clusters=4,
        pretrain_epochs=5,
        max_epochs=50,
        update_interval=update_interval,
        tol=tol,
        **FAST,
    ).fit(X)
    history = dec.history_["cluster"]
    assert dec.n_iter_ == len(history) == 1  # epoch 1 (whole or partial) only
    assert history[-1, "label_change"] < tol
    assert np.isfinite(history[-1, "train_loss"]) and history[-1, "dur"] > 0


def test_phase_runs_to_max_epochs_when_labels_keep_changing(blobs):
    X, _ = blobs
    dec = DEC(n_clusters=4, pretrain_epochs=2, max_epochs=3, tol=0.0, **FAST).fit(X)
    assert dec.n_iter_ == 3


def test_history_has_one_row_per_epoch_for_each_phase(blobs):
    X, _ = blobs
    dec = DEC(n_clusters=4, pretrain_epochs=3, max_epochs=4, tol=0.0, **FAST).fit(X)
    assert len(dec.history_["pretrain"]) == 3
    assert len(dec.history_["cluster"]) == dec.n_iter_ == 4
    losses = dec.history_["pretrain"][:, "train_loss"]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_score_is_minus_the_training_objective(blobs):
    X, _ = blobs
    dec = DEC(n_clusters=4, pretrain_epochs=5, max_epochs=5, **FAST).fit(X)
    log_q = torch.from_numpy(np.log(dec.predict_proba(X)))
    p = target_distribution(log_q.exp())
    kl = (p * (p.log() - log_q)).sum(1).mean()
    assert dec.score(X) == pytest.approx(-kl.item(), rel=1e-4, abs=1e-6)


def test_the_clustering_phase_lowers_its_loss_and_sharpens_the_assignments(blobs):
    """What DEC's second phase is for, beyond the k-means it starts from
    (which alone solves these blobs): self-training on the sharpened target
    lowers KL(P || Q) and makes the soft assignments more confident."""
    X, _ = blobs
    settings = dict(n_clusters=4, pretrain_epochs=40, tol=0.0, update_interval=20, **FAST)
    start = DEC(max_epochs=0, **settings).fit(X)
    dec = DEC(max_epochs=20, **settings).fit(X)
    losses = dec.history_["cluster"][:, "train_loss"]
    assert losses[-1] < 0.95 * losses[0]
    confidence = dec.predict_proba(X).max(1).mean()
    assert confidence > start.predict_proba(X).max(1).mean() + 0.01  # 0.83 -> 0.86
    assert not np.allclose(dec.cluster_centers_, start.cluster_centers_)


def test_custom_module_is_used_and_not_modified(blobs):
    X, y = blobs
    encoder = seeded_module(
        lambda: torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    )
    before = [p.detach().clone() for p in encoder.parameters()]
    dec = DEC(
        n_clusters=4,
        module=encoder,
        pretrain_epochs=60,
        max_epochs=20,
        hidden_dims=(16,),
        batch_size=64,
        random_state=0,
    ).fit(X)
    assert dec.transform(X).shape == (400, 3)
    assert dec.get_feature_names_out().tolist() == ["dec0", "dec1", "dec2"]
    assert all(torch.equal(a, b) for a, b in zip(before, encoder.parameters()))
    assert encoder.training  # not even switched to eval mode
    assert cluster_accuracy(y, dec.labels_) > 0.9


def test_idec_from_a_module_without_its_decoder_warns(blobs):
    """IDEC from a pretrained encoder needs its decoder too: a plain DEC fit
    keeps none, so ``module_.decoder`` is None and a new decoder is random."""
    X, _ = blobs
    settings = dict(n_clusters=4, max_epochs=2, **FAST)
    autoencoder = DEC(pretrain_epochs=5, reconstruction_weight=10.0, **settings).fit(X)
    start = dict(module=autoencoder.module_.encoder, pretrain_epochs=0, reconstruction_weight=10.0)
    with pytest.warns(UserWarning, match="untrained decoder"):
        DEC(**start, **settings).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DEC(**start, decoder=autoencoder.module_.decoder, **settings).fit(X)
        DEC(**{**start, "reconstruction_weight": 0.0}, **settings).fit(X)  # plain DEC


class _NaNEncoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(5, 2)

    def forward(self, x):
        return self.linear(x) * float("nan")


def test_nan_loss_stops_training_with_advice(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="training loss became nan.*'pretrain'.*StandardScaler"):
        DEC(n_clusters=4, module=_NaNEncoder(), pretrain_epochs=2, **FAST).fit(X)


def test_verbose_prints_one_line_per_epoch_and_phase_names(blobs, capsys):
    X, _ = blobs
    DEC(n_clusters=4, pretrain_epochs=2, max_epochs=2, tol=0.0, verbose=1, **FAST).fit(X)
    out = capsys.readouterr().out
    assert "[pretrain]" in out and "[cluster]" in out
    assert out.count("train_loss") == 2  # one header per phase


def test_dec_and_idec_can_start_from_one_pretrained_autoencoder(blobs):
    X, y = blobs
    pretrained = DEC(
        n_clusters=4, reconstruction_weight=10.0, pretrain_epochs=60, max_epochs=0, **FAST
    ).fit(X)
    assert pretrained.n_iter_ == 0  # k-means in the embedding only
    shared = dict(
        module=pretrained.module_.encoder,
        decoder=pretrained.module_.decoder,
        pretrain_epochs=0,
        max_epochs=5,
        **FAST,
    )
    dec = DEC(n_clusters=4, **shared).fit(X)
    idec = DEC(n_clusters=4, reconstruction_weight=10.0, **shared).fit(X)
    assert "pretrain" not in dec.history_
    # Same start, same k-means: both begin from the pretrained model's clusters.
    for model in (dec, idec):
        assert cluster_accuracy(y, model.labels_) >= 0.99
    np.testing.assert_array_equal(pretrained.labels_, dec.labels_)


def test_pretrain_dropout_corrupts_the_input_in_training_only(blobs):
    """DEC's denoising pretraining (Xie et al., Sec. 3.2): a fraction of the
    input features is zeroed, the rest rescaled, in training mode only."""
    from sklearn_deepclust.nn import Autoencoder

    autoencoder = Autoencoder(torch.nn.Identity(), torch.nn.Identity(), input_dropout=0.25)
    x = torch.ones(200, 50)
    torch.manual_seed(0)
    corrupted = autoencoder.train()(x)
    torch.testing.assert_close(corrupted.unique(), torch.tensor([0.0, 4 / 3]))
    assert (corrupted == 0).float().mean().item() == pytest.approx(0.25, abs=0.02)
    torch.testing.assert_close(autoencoder.eval()(x), x)
    # And DEC passes its parameter on: the pretraining losses differ.
    X, _ = blobs
    settings = dict(n_clusters=4, pretrain_epochs=5, max_epochs=0, **FAST)
    clean = DEC(pretrain_dropout=0.0, **settings).fit(X).history_["pretrain"][:, "train_loss"]
    noisy = DEC(pretrain_dropout=0.3, **settings).fit(X).history_["pretrain"][:, "train_loss"]
    assert noisy[-1] > clean[-1]
