"""scikit-learn's estimator checks over every public estimator."""

from _helpers import seeded_module
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

from sklearn_deepclust import DEC, P2OT, SCAN, SwAVClustering
from sklearn_deepclust.discovery import GMMGCD, PBN, NCDKMeans


def _small(estimator):
    """A fast configuration: the checks test the API, not the clustering power."""
    if isinstance(estimator, DEC):
        epochs = {"pretrain_epochs": 10, "max_epochs": 10}
    else:
        epochs = {"pretext_epochs": 5, "max_epochs": 100}
    return estimator.set_params(
        hidden_dims=(16,),
        embedding_dim=3,
        batch_size=32,
        random_state=0,
        **epochs,
    )


def _lazy_encoder():
    return nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.Linear(8, 3))


ESTIMATORS = [
    _small(DEC(n_clusters=3)),
    _small(DEC(n_clusters=3, reconstruction_weight=10.0)),  # IDEC
    # A user encoder: the checks that parameters are left unchanged then also
    # cover the module (LazyLinear adapts to each check's number of features).
    # Built under a fixed seed: its Linear draws from torch's global generator.
    _small(DEC(n_clusters=3, module=seeded_module(_lazy_encoder))),
    # SCAN: few neighbours, as some checks fit on a handful of rows; 100
    # epochs (200 steps on check_clustering's 50 rows) for its heads to spread
    # over three clusters; a low threshold so that self-labelling runs.
    _small(SCAN(n_clusters=3, n_neighbors=2, self_label_threshold=0.5, self_label_epochs=3)),
    _small(SCAN(n_clusters=3, n_neighbors=2, pretext="autoencoder", self_label=False)),
    _small(SwAVClustering(n_clusters=3)),
    # P2OT with its cluster sizes held (constant KL weight 10): with the
    # defaults' falling weight it merges two of check_clustering's three
    # 17-row blobs at every seed we tried (0-3), leaving a cluster empty and
    # the labels not consecutive; it trades small balanced clusters for long
    # tails (see its final_kl_weight).
    _small(P2OT(n_clusters=3, kl_weight=10.0, final_kl_weight=None)),
    # Discovery estimators: the checks' y are fully labelled, so no novel
    # class is made (test_discovery.py covers the discovery itself).
    NCDKMeans(random_state=0),
    PBN(
        hidden_dims=(16,),
        embedding_dim=3,
        batch_size=32,
        pretext_epochs=5,
        max_epochs=10,
        random_state=0,
    ),
    GMMGCD(
        hidden_dims=(16,),
        embedding_dim=3,
        projection_dim=8,
        batch_size=32,
        max_epochs=5,
        random_state=0,
    ),
]

CUSTOM_MODULE_XFAILS = {
    "check_estimators_overwrite_params": (
        "the check compares joblib.hash of each parameter with the hash of its "
        "deepcopy, and a torch module's pickle differs from its deepcopy's even "
        "untouched; test_custom_module_is_used_and_not_modified checks that fit "
        "leaves the module's weights and training flag unchanged"
    ),
}


_SEMI_SUPERVISED = (
    "a semi-supervised clusterer cannot be fitted without y, and this check calls fit(X)"
)
_TOO_FEW_CLUSTERS = (
    "the check sets n_clusters to 1 or 2 while its y has more classes, which "
    "GMMGCD rejects by design (n_clusters counts known classes too); "
    "test_gmmgcd_predictions_do_not_depend_on_the_other_rows_of_the_batch "
    "checks subset and order invariance and unchanged parameters, and "
    "test_gmmgcd_on_one_feature_and_public_attributes the 1-feature checks and "
    "the attributes fit adds, with a valid n_clusters"
)
DISCOVERY_XFAILS = {
    "check_clustering": _SEMI_SUPERVISED,
    "check_clustering(readonly_memmap=True)": _SEMI_SUPERVISED,
}
GMMGCD_XFAILS = {
    name: _TOO_FEW_CLUSTERS
    for name in (
        "check_dont_overwrite_parameters",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_fit2d_1feature",
        "check_fit2d_predict1d",
    )
}


def expected_failed_checks(estimator):
    if isinstance(estimator, GMMGCD):
        return {**DISCOVERY_XFAILS, **GMMGCD_XFAILS}
    if isinstance(estimator, (PBN, NCDKMeans)):
        return DISCOVERY_XFAILS
    return CUSTOM_MODULE_XFAILS if estimator.module is not None else {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_fits_on_accelerators_are_tagged_non_deterministic():
    """Atomic adds on a GPU reorder float sums: only CPU fits repeat bit for bit."""
    from sklearn.base import clone
    from sklearn.utils import get_tags

    for estimator in ESTIMATORS:
        assert not get_tags(clone(estimator).set_params(device="cpu")).non_deterministic
        assert get_tags(clone(estimator).set_params(device="cuda")).non_deterministic
