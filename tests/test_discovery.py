"""Novel class discovery: NCD k-means, PBN, GMMGCD and the number of novel classes."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from _helpers import small_gmmgcd, small_pbn
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_deepclust.discovery import (
    GMMGCD,
    NCDKMeans,
    estimate_n_novel_clusters,
    ncd_kmeans,
)
from sklearn_deepclust.discovery._base import _group_sums, _mean_variance, _squared_distances
from sklearn_deepclust.discovery._mixture import (
    GaussianMixtureState,
    initial_state,
    known_class_split_evidence,
    semi_supervised_em,
    split_and_merge,
)
from sklearn_deepclust.metrics import gcd_accuracy, novel_class_accuracy
from sklearn_deepclust.pretext import supervised_contrastive_loss


@pytest.fixture
def hidden_blobs():
    """Six separated blobs; classes 3, 4, 5 have no label (NCD: unlabelled = novel)."""
    X, y = make_blobs(600, n_features=6, centers=6, cluster_std=0.7, random_state=3)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    return X, y, np.where(y < 3, y, -1)


@pytest.fixture
def gcd_blobs(hidden_blobs):
    """The same blobs with half of the known classes' samples unlabelled too (GCD)."""
    X, y, _ = hidden_blobs
    half = np.random.RandomState(0).rand(len(y)) < 0.5
    return X, y, np.where((y < 3) & half, y, -1)


FAST_ESTIMATORS = pytest.mark.parametrize(
    "make",
    [lambda **p: NCDKMeans(**{"random_state": 0, **p}), small_pbn, small_gmmgcd],
    ids=["NCDKMeans", "PBN", "GMMGCD"],
)


def _n_novel(make, n):
    """The estimator's own way of being told the number of novel classes."""
    probe = make()
    return {"n_clusters": 3 + n} if isinstance(probe, GMMGCD) else {"n_novel_clusters": n}


# ------------------------------------------------------------ conventions
@FAST_ESTIMATORS
def test_known_classes_kept_and_novel_ones_found(hidden_blobs, make):
    X, y, y_partial = hidden_blobs
    model = make(**_n_novel(make, 3)).fit(X, y_partial)
    assert model.n_clusters_ == 6 and model.n_novel_clusters_ == 3
    assert model.classes_.tolist() == [0, 1, 2, 3, 4, 5]
    known = y < 3
    assert np.mean(model.labels_[known] == y[known]) >= 0.99
    assert novel_class_accuracy(y, model.labels_, [3, 4, 5]) >= 0.95
    # New labels are never known ones.
    assert set(model.labels_[~known]) <= {3, 4, 5}
    np.testing.assert_array_equal(model.predict(X), model.labels_)


@FAST_ESTIMATORS
def test_new_labels_start_after_the_largest_known_label(hidden_blobs, make):
    X, y, _ = hidden_blobs
    relabelled = np.select([y == 0, y == 1, y == 2], [7, 20, 3], default=-1)
    model = make(**_n_novel(make, 3)).fit(X, relabelled)
    assert model.known_classes_.tolist() == [3, 7, 20]
    assert model.classes_.tolist() == [3, 7, 20, 21, 22, 23]
    assert set(model.predict(X)) == {3, 7, 20, 21, 22, 23}


@FAST_ESTIMATORS
@pytest.mark.parametrize(
    ("y_bad", "message"),
    [
        (lambda y: np.full_like(y, -1), "no labelled sample"),
        (lambda y: np.where(y < 3, y, -1).astype(str), "Unknown label type"),
        (lambda y: np.array([str(v) if v < 3 else None for v in y]), "Unknown label type"),
        (lambda y: np.where(y < 3, y + 0.5, -1), "integer class labels"),
        (lambda y: np.where(y < 3, y, -2), "labels >= 0 and -1"),
        (lambda y: y[:-1], "one label per sample"),
        (lambda y: None, "requires y to be passed"),
    ],
    ids=[
        "all-unlabelled",
        "strings",
        "strings-and-none",
        "fractions",
        "below-minus-one",
        "short",
        "none",
    ],
)
def test_bad_labels_are_rejected_with_a_clear_error(hidden_blobs, make, y_bad, message):
    X, y, _ = hidden_blobs
    with pytest.raises(ValueError, match=message):
        make().fit(X, y_bad(y))


def test_gmmgcd_rejects_fewer_clusters_than_known_classes(hidden_blobs):
    X, _, y_partial = hidden_blobs
    with pytest.raises(ValueError, match="smaller than the 3 known classes"):
        small_gmmgcd(n_clusters=2).fit(X, y_partial)


@pytest.mark.parametrize("make", [lambda **p: NCDKMeans(**p), small_pbn], ids=["NCDKMeans", "PBN"])
def test_more_novel_clusters_than_unlabelled_samples_is_rejected(hidden_blobs, make):
    X, y, _ = hidden_blobs
    y_partial = np.where(np.arange(len(y)) < 595, y, -1)
    with pytest.raises(ValueError, match="n_novel_clusters=6 is larger than the 5 unlabelled"):
        make(n_novel_clusters=6).fit(X, y_partial)


def test_no_unlabelled_sample_means_no_novel_cluster(hidden_blobs):
    X, y, _ = hidden_blobs
    model = NCDKMeans(random_state=0).fit(X, y)
    assert model.n_novel_clusters_ == 0
    assert np.mean(model.labels_ == y) >= 0.99


# ---------------------------------------------------------------- NCD k-means
def test_ncd_kmeans_keeps_known_centroids_fixed():
    X, _ = make_blobs(300, centers=5, random_state=1)
    X = torch.tensor(X, dtype=torch.float32)
    known = torch.tensor([[100.0, 100.0], [-100.0, 50.0]])  # far from every sample
    generator = torch.Generator().manual_seed(0)
    centroids, inertia, _ = ncd_kmeans(X, known, 5, generator=generator)
    torch.testing.assert_close(centroids[:2], known)
    assert centroids.shape == (7, 2)
    # With the known centroids out of reach, the novel ones are plain k-means:
    # scikit-learn's KMeans is the reference.
    reference = KMeans(5, n_init=10, random_state=0).fit(X.numpy())
    labels = torch.cdist(X, centroids[2:]).argmin(1).numpy()
    assert adjusted_rand_score(reference.labels_, labels) >= 0.99
    assert inertia == pytest.approx(reference.inertia_, rel=1e-3)


def test_ncd_kmeans_assigns_rows_to_known_centroids_within_reach():
    """Known centroids on two real blobs take those rows; the novel ones find
    the other three blobs. The reference is a plain numpy Lloyd loop with the
    known rows of the centroid matrix held fixed, started from the result's
    own novel centroids: it must not move them, and it gives the same
    assignment and inertia."""
    X, y, centres = make_blobs(400, centers=5, cluster_std=0.8, random_state=4, return_centers=True)
    X32 = torch.tensor(X, dtype=torch.float32)
    known = torch.tensor(centres[:2], dtype=torch.float32)
    found, inertia, _ = ncd_kmeans(X32, known, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.cdist(X32, found).argmin(1).numpy()
    np.testing.assert_array_equal(labels[y == 0], 0)
    np.testing.assert_array_equal(labels[y == 1], 1)
    assert adjusted_rand_score(y, labels) == 1.0

    centroids = found.double().numpy()
    for _ in range(100):  # numpy Lloyd: every row to its nearest, novel rows move
        nearest = ((X[:, None, :] - centroids) ** 2).sum(2).argmin(1)
        for k in range(2, 5):
            centroids[k] = X[nearest == k].mean(0)
    np.testing.assert_allclose(centroids, found.double().numpy(), atol=1e-4)
    assert inertia == pytest.approx(((X - centroids[nearest]) ** 2).sum(), rel=1e-5)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 40), st.integers(1, 6), st.integers(1, 5), st.integers(0, 10_000))
def test_kmeans_arithmetic_agrees_with_direct_formulas(n_samples, n_features, n_groups, seed):
    # The distances, variance and group sums avoid copies of X; they must
    # still equal the textbook computations.
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n_samples, n_features, generator=generator, dtype=torch.float64)
    centroids = torch.randn(n_groups, n_features, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(_squared_distances(X, centroids), torch.cdist(X, centroids) ** 2)
    for chunk_size in (1, 3, n_samples):
        torch.testing.assert_close(_mean_variance(X, chunk_size), X.var(0).mean())
    groups = torch.randint(-1, n_groups, (n_samples,), generator=generator)
    sums, counts = _group_sums(X, groups, n_groups)
    for g in range(n_groups):
        torch.testing.assert_close(sums[g], X[groups == g].sum(0))
        assert counts[g] == (groups == g).sum()


def test_ncd_kmeans_is_repeatable_with_the_same_generator():
    X = torch.randn(200, 3, generator=torch.Generator().manual_seed(0))
    runs = [
        ncd_kmeans(X, X[:1], 4, n_init=3, generator=torch.Generator().manual_seed(5))[0]
        for _ in range(2)
    ]
    torch.testing.assert_close(runs[0], runs[1])


def test_ncd_kmeans_in_a_pipeline_on_a_pbn_embedding(hidden_blobs):
    X, y, y_partial = hidden_blobs
    pipe = make_pipeline(small_pbn(n_novel_clusters=3), NCDKMeans(3, random_state=0))
    labels = pipe.fit(X, y_partial).predict(X)
    assert novel_class_accuracy(y, labels, [3, 4, 5]) >= 0.95


# ---------------------------------------------------- number of novel classes
@pytest.mark.parametrize("n_classes", [2, 4, 7])
def test_estimate_n_novel_clusters_on_separated_blobs(n_classes):
    X, _ = make_blobs(
        100 * n_classes, centers=n_classes, cluster_std=0.4, center_box=(-20, 20), random_state=0
    )
    estimate, scores = estimate_n_novel_clusters(X, max_clusters=10, random_state=0)
    assert estimate == n_classes
    assert sorted(scores) == list(range(2, 11))


def test_estimate_n_novel_clusters_rejects_too_few_samples():
    with pytest.raises(ValueError, match="at least 3 samples"):
        estimate_n_novel_clusters(np.zeros((2, 2)))


@FAST_ESTIMATORS
def test_number_of_novel_classes_is_estimated_when_not_given(hidden_blobs, make):
    X, _, y_partial = hidden_blobs
    model = make().fit(X, y_partial)
    assert model.n_novel_clusters_ == 3
    # The cap holds even where the data have more novel classes.
    capped = make(max_novel_clusters=2).fit(X, y_partial)
    assert 1 <= capped.n_novel_clusters_ <= 2


# ------------------------------------------------------------------ the GMM
def _random_state(X, n_components, seed):
    rng = np.random.RandomState(seed)
    return (
        np.full(n_components, 1 / n_components),
        X[rng.choice(len(X), n_components, replace=False)],
        np.ones((n_components, X.shape[1])),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_em_without_labels_is_scikit_learns_gaussian_mixture(seed):
    X, _ = make_blobs(500, n_features=3, centers=4, random_state=seed)
    weights, means, variances = _random_state(X, 4, seed)
    reference = GaussianMixture(
        4,
        covariance_type="diag",
        weights_init=weights,
        means_init=means,
        precisions_init=1 / variances,
        reg_covar=1e-6,
        tol=1e-3,
        max_iter=100,
    ).fit(X)
    start = GaussianMixtureState(*(torch.tensor(a) for a in (weights, means, variances)))
    state, log_resp, log_likelihood, converged = semi_supervised_em(
        torch.tensor(X), torch.full((500,), -1), start, tol=1e-3, reg_covar=1e-6
    )
    assert converged == reference.converged_
    assert log_likelihood == pytest.approx(reference.lower_bound_, rel=1e-9)
    np.testing.assert_allclose(state.means.numpy(), reference.means_, rtol=1e-8)
    np.testing.assert_allclose(state.variances.numpy(), reference.covariances_, rtol=1e-8)
    np.testing.assert_allclose(state.weights.numpy(), reference.weights_, rtol=1e-8)
    np.testing.assert_array_equal(log_resp.argmax(1).numpy(), reference.predict(X))


def test_em_keeps_labelled_samples_in_their_class():
    X, y = make_blobs(300, n_features=2, centers=3, random_state=0)
    X = torch.tensor(X)
    codes = torch.full((300,), -1)
    codes[:30] = (torch.tensor(y[:30]) + 1) % 3  # deliberately "wrong" labels
    start = initial_state(X, torch.tensor(y), 3, 1e-6)
    _, log_resp, _, _ = semi_supervised_em(X, codes, start)
    resp = log_resp.exp()
    np.testing.assert_array_equal(resp[:30].argmax(1).numpy(), codes[:30].numpy())
    assert torch.all(resp[:30].max(1).values == 1.0)
    torch.testing.assert_close(resp.sum(1), torch.ones(300, dtype=resp.dtype))


def _moves_until_stable(X, codes, n_known, n_components, seed=0):
    generator = torch.Generator().manual_seed(seed)
    thresholds = known_class_split_evidence(X, codes, n_known, generator=generator)
    start = torch.randint(n_known, n_components, codes.shape, generator=generator)
    assignment = torch.where(codes >= 0, codes, start)
    for _ in range(10):
        state = initial_state(X, assignment, n_components, 1e-6)
        _, log_resp, _, _ = semi_supervised_em(X, codes, state)
        assignment, n_components, moves = split_and_merge(
            X, codes, log_resp, n_known, generator=generator, thresholds=thresholds
        )
        if moves["splits"] == moves["merges"] == 0:
            break
    return n_components


@pytest.mark.parametrize("start", [4, 5, 12])
def test_split_and_merge_recovers_the_number_of_blobs(start):
    X, y = make_blobs(900, n_features=4, centers=8, cluster_std=0.5, random_state=4)
    X = torch.tensor(X)
    codes = torch.tensor(np.where((y < 3) & (np.arange(900) % 2 == 0), y, -1))
    assert _moves_until_stable(X, codes, 3, start) == 8


def test_splits_stop_at_max_components_keeping_the_strongest():
    """Two components each hold two blobs, one pair far apart and one pair
    close: with room for one more component only the far pair is split."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [0.0, 30.0], [40.0, 0.0], [40.0, 6.0]])
    X = torch.tensor(np.repeat(centres, 50, axis=0) + rng.normal(size=(200, 2)))
    codes = torch.full((200,), -1)
    log_resp = torch.log(torch.tensor([[1.0, 1e-9]] * 100 + [[1e-9, 1.0]] * 100))

    def split(max_components):
        return split_and_merge(
            X,
            codes,
            log_resp,
            0,
            generator=torch.Generator().manual_seed(0),
            max_components=max_components,
        )

    _, n_free, moves_free = split(None)
    assert n_free == 4 and moves_free["splits"] == 2
    assignment, n_capped, moves_capped = split(3)
    assert n_capped == 3 and moves_capped["splits"] == 1
    # The far pair (rows 0-99) was cut; the close pair (rows 100-199) was not.
    assert len(set(assignment[:50].tolist()) | set(assignment[50:100].tolist())) == 2
    assert len(set(assignment[100:].tolist())) == 1


# -------------------------------------------------------------- GMMGCD / PBN
def test_gmmgcd_finds_known_and_novel_classes_among_unlabelled_samples(gcd_blobs):
    X, y, y_partial = gcd_blobs
    model = small_gmmgcd().fit(X, y_partial)
    unlabelled = y_partial < 0
    scores = gcd_accuracy(y[unlabelled], model.labels_[unlabelled], known_classes=[0, 1, 2])
    assert model.n_clusters_ == 6
    assert scores["old"] >= 0.98 and scores["new"] >= 0.95
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(model.classes_[proba.argmax(1)], model.labels_)
    assert model.split_merge_history_[-1]["n_clusters"] == 6


def test_pbn_loss_weights_change_what_the_embedding_keeps(hidden_blobs):
    X, _, y_partial = hidden_blobs
    models = {
        w: small_pbn(classification_weight=w, n_novel_clusters=3).fit(X, y_partial)
        for w in (0.0, 1.0)
    }

    def reconstruction_error(model):
        network = model.network_module_
        with torch.no_grad():
            X_tensor = torch.from_numpy(X)
            return float(((network(X_tensor)[1] - X_tensor) ** 2).mean())

    # Reconstruction alone reconstructs far better than classification alone.
    assert reconstruction_error(models[0.0]) < 0.5 * reconstruction_error(models[1.0])
    # The classifier's head tells the known classes apart only when trained.
    known = y_partial >= 0
    logits = {
        w: m.network_module_(torch.from_numpy(X[known]))[2].argmax(1).numpy()
        for w, m in models.items()
    }
    assert np.mean(logits[1.0] == y_partial[known]) >= 0.99
    assert np.mean(logits[0.0] == y_partial[known]) < 0.9


@FAST_ESTIMATORS
def test_same_seed_same_labels(hidden_blobs, make):
    X, _, y_partial = hidden_blobs
    first = make(random_state=7).fit(X, y_partial).labels_
    second = make(random_state=7).fit(X, y_partial).labels_
    np.testing.assert_array_equal(first, second)


# --------------------------------------------- scikit-learn integration
@FAST_ESTIMATORS
def test_clone_pickle_and_pandas(hidden_blobs, make):
    X, y, y_partial = hidden_blobs
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    model = make(**_n_novel(make, 3)).set_output(transform="pandas").fit(frame, y_partial)
    assert clone(model).get_params() == model.get_params()
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(frame), model.predict(frame))
    out = model.transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(model.get_feature_names_out())
    assert model.feature_names_in_.tolist() == list(frame.columns)


@pytest.mark.parametrize("weight", [0.0, 0.35, 1.0])
def test_gmmgcd_loss_mixes_infonce_and_supcon_by_supervised_weight(weight):
    """GCD's loss: ``(1 - w)`` InfoNCE between the two views of every row plus
    ``w`` SupCon over the labelled rows of both views (Vaze et al., Eq. 3)."""
    from sklearn_deepclust.discovery._gmm_gcd import _GCDContrastiveLoss
    from sklearn_deepclust.pretext import info_nce_loss

    generator = torch.Generator().manual_seed(1)
    views = torch.randn(16, 4, generator=generator, dtype=torch.float64)  # 2 views x 8 rows
    codes = torch.tensor([0, 1, -1, 0, 2, -1, 1, 2, 0, -1])  # the data set's labels
    index = torch.tensor([3, 0, 1, 2, 6, 4, 7, 9])  # the batch's rows
    loss = _GCDContrastiveLoss(codes, weight, 0.5, 0.1)(views, index, None)
    unsupervised = info_nce_loss(views[:8], views[8:], 0.5)
    supervised = supervised_contrastive_loss(views, codes[index].repeat(2), 0.1)
    torch.testing.assert_close(loss, (1 - weight) * unsupervised + weight * supervised)


def test_supervised_contrastive_loss_matches_a_direct_computation():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(12, 5, generator=generator, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, -1, 0, 1, -1, 2, -1, 0])
    z_n = torch.nn.functional.normalize(z, dim=1)
    losses = []
    for i in range(12):
        if labels[i] < 0:
            continue
        others = [j for j in range(12) if j != i and labels[j] >= 0]
        positives = [j for j in others if labels[j] == labels[i]]
        if not positives:
            continue
        logits = torch.stack([z_n[i] @ z_n[j] / 0.1 for j in others])
        log_prob = logits - torch.logsumexp(logits, 0)
        losses.append(-torch.stack([log_prob[others.index(j)] for j in positives]).mean())
    expected = torch.stack(losses).mean()
    torch.testing.assert_close(supervised_contrastive_loss(z, labels, 0.1), expected)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**16), st.integers(4, 30))
def test_supervised_contrastive_loss_is_finite_and_ignores_unlabelled_rows(seed, n_rows):
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n_rows, 4, generator=generator)
    labels = torch.randint(-1, 3, (n_rows,), generator=generator)
    loss = supervised_contrastive_loss(z, labels)
    assert torch.isfinite(loss) and loss >= 0
    # Moving unlabelled rows changes nothing.
    moved = torch.where((labels < 0)[:, None], torch.randn_like(z), z)
    torch.testing.assert_close(supervised_contrastive_loss(moved, labels), loss)


@FAST_ESTIMATORS
def test_predict_novel_chooses_among_discovered_classes_only(hidden_blobs, make):
    X, y, y_partial = hidden_blobs
    model = make(**_n_novel(make, 3)).fit(X, y_partial)
    novel_only = model.predict_novel(X)
    assert set(novel_only) <= {3, 4, 5}
    # Samples of novel classes get the same answer either way here.
    novel = y >= 3
    assert np.mean(novel_only[novel] == model.predict(X)[novel]) >= 0.99


def test_predict_novel_without_novel_clusters_is_rejected(hidden_blobs):
    X, y, _ = hidden_blobs
    model = NCDKMeans(random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="no novel cluster"):
        model.predict_novel(X)


def test_estimate_with_labelled_samples_counts_only_the_novel_classes():
    # GCD: unlabelled rows of 2 known and 3 novel blobs; the labelled rows
    # anchor the known ones, so only the novel ones are counted.
    X, y = make_blobs(
        700, n_features=3, centers=7, cluster_std=0.4, center_box=(-15, 15), random_state=5
    )
    labelled = (y < 4) & (np.arange(700) % 2 == 0)
    unlabelled = ~labelled & ~np.isin(y, [2, 3])  # known classes 2, 3: all labelled
    estimate, scores = estimate_n_novel_clusters(
        X[unlabelled], X_known=X[labelled], y_known=y[labelled], max_clusters=8, random_state=0
    )
    assert estimate == 3
    assert min(scores) == 1


def test_gmmgcd_predictions_do_not_depend_on_the_other_rows_of_the_batch(gcd_blobs):
    # What check_methods_subset_invariance and check_methods_sample_order_invariance
    # test, with an n_clusters that the labels allow.
    X, _, y_partial = gcd_blobs
    model = small_gmmgcd(n_clusters=6)
    params = model.get_params()
    model.fit(X, y_partial)
    assert model.get_params() == params
    order = np.random.RandomState(0).permutation(len(X))
    for method in ("predict", "predict_proba", "transform", "predict_novel"):
        full = getattr(model, method)(X)
        np.testing.assert_allclose(getattr(model, method)(X[order]), full[order], rtol=1e-5)
        np.testing.assert_allclose(getattr(model, method)(X[:7]), full[:7], rtol=1e-5)


def test_gmmgcd_on_one_feature_and_public_attributes(gcd_blobs):
    # What check_fit2d_1feature, check_fit2d_predict1d and
    # check_dont_overwrite_parameters test, with an n_clusters the labels allow.
    X, _, y_partial = gcd_blobs
    model = small_gmmgcd(n_clusters=6)
    public_before = {k for k in vars(model) if not k.startswith("_")}
    model.fit(X, y_partial)
    added = {k for k in vars(model) if not k.startswith("_")} - public_before
    assert added and all(k.endswith("_") for k in added), added
    with pytest.raises(ValueError, match="2D array"):
        model.predict(X[0])
    one_feature = small_gmmgcd(n_clusters=6).fit(X[:, :1], y_partial)
    assert one_feature.predict(X[:, :1]).shape == (len(X),)


def test_scores_match_independent_references(gcd_blobs):
    """``score`` is what GridSearchCV maximises without a scorer: NCDKMeans's
    is minus k-means's inertia, GMMGCD's the mean log-likelihood of its
    diagonal mixture in the embedding, both recomputed here with numpy and
    scipy from the fitted attributes (and predict_proba its posteriors)."""
    from scipy.special import logsumexp, softmax
    from scipy.stats import norm

    X, _, y_partial = gcd_blobs
    kmeans = NCDKMeans(3, random_state=0).fit(X, y_partial)
    squared = ((X[:, None, :].astype(np.float64) - kmeans.cluster_centers_) ** 2).sum(2)
    assert kmeans.score(X) == pytest.approx(-squared.min(1).sum(), rel=1e-4)
    assert kmeans.score(X) > kmeans.score(X + 1.0)

    gmm = small_gmmgcd(n_clusters=6).fit(X, y_partial)
    Z = gmm.transform(X).astype(np.float64)
    log_joint = np.log(gmm.weights_) + norm.logpdf(
        Z[:, None, :], gmm.means_, np.sqrt(gmm.variances_)
    ).sum(2)
    assert gmm.score(X) == pytest.approx(logsumexp(log_joint, axis=1).mean(), rel=1e-5)
    np.testing.assert_allclose(gmm.predict_proba(X), softmax(log_joint, axis=1), atol=1e-5)


def test_refit_clears_what_only_an_estimating_fit_sets(hidden_blobs):
    X, _, y_partial = hidden_blobs
    model = NCDKMeans(random_state=0).fit(X, y_partial)
    assert hasattr(model, "n_novel_scores_")
    model.set_params(n_novel_clusters=3).fit(X, y_partial)
    assert not hasattr(model, "n_novel_scores_")


@pytest.mark.parametrize("offset", [1e4, 3e4])
def test_ncdkmeans_does_not_depend_on_where_the_data_sit(offset):
    # Three tight blobs one unit apart, far from the origin: uncentred float32
    # distances |x|^2 + |c|^2 - 2 x.c cancel to noise there.
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    y_true = np.repeat([0, 1, 2], 50)
    X = centres[y_true] + 0.05 * rng.normal(size=(150, 2))
    y = np.where(y_true == 0, 0, -1)
    near = NCDKMeans(2, random_state=0).fit(X, y)
    far = NCDKMeans(2, random_state=0).fit(X + offset, y)
    np.testing.assert_array_equal(far.labels_, near.labels_)
    assert adjusted_rand_score(y_true, far.labels_) == 1.0
    np.testing.assert_allclose(far.cluster_centers_ - offset, near.cluster_centers_, atol=0.02)
    np.testing.assert_array_equal(far.predict(X[::7] + offset), near.predict(X[::7]))
    np.testing.assert_allclose(far.transform(X[:5] + offset), near.transform(X[:5]), atol=0.02)
    assert far.score(X + offset) == pytest.approx(near.score(X), rel=0.05)
    X_float32 = (X + offset).astype(np.float32)
    before = X_float32.copy()
    NCDKMeans(2, random_state=0).fit(X_float32, y).predict(X_float32)
    np.testing.assert_array_equal(X_float32, before)  # centred in a copy, not in place


def test_ncd_kmeans_says_what_to_do_when_distances_overflow():
    X = torch.tensor([[0.0, 0.0], [3e19, 0.0], [0.0, 3e19], [3e19, 3e19]])
    with pytest.raises(ValueError, match="overflow float32. Scale the features"):
        ncd_kmeans(X, X[:0], 2, n_init=2, generator=torch.Generator().manual_seed(0))


def test_pbn_warns_that_one_known_class_teaches_its_classifier_nothing():
    X, y = make_blobs(90, centers=3, random_state=0)
    y_partial = np.where(y == 0, 0, -1)
    with pytest.warns(UserWarning, match="one known class: a classifier over one class"):
        small_pbn(n_novel_clusters=2, pretext_epochs=1, max_epochs=1).fit(X, y_partial)
