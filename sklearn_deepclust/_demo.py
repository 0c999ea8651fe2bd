"""``python -m sklearn_deepclust demo``: every method on scikit-learn's digits.

Fits k-means, a Gaussian mixture, spectral clustering, DEC, IDEC, SCAN,
SwAV-style clustering and P²OT at their defaults on the bundled digits
(standardised) and prints a table of scores, then hides digits 5-9 and discovers
them with NCDKMeans, PBN and GMMGCD. Nothing is downloaded.
"""

import sys
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits

from ._report import markdown_table
from .cli import make_estimator
from .metrics import clustering_scores

__all__ = ["run_demo"]


def run_demo(out=None):
    """Fit the classical anchors and the deep clusterers on digits; print their scores."""
    from sklearn.cluster import SpectralClustering
    from sklearn.mixture import GaussianMixture
    from sklearn.preprocessing import StandardScaler

    out = sys.stdout if out is None else out
    X, y = load_digits(return_X_y=True)
    X_scaled = StandardScaler().fit_transform(X)
    contenders = {
        "KMeans (n_init=10)": KMeans(10, n_init=10, random_state=0),
        "GaussianMixture (full, n_init=3)": GaussianMixture(10, n_init=3, random_state=0),
        "SpectralClustering (nearest neighbours)": SpectralClustering(
            10, affinity="nearest_neighbors", random_state=0
        ),
        **{
            name: make_estimator(method, 10, random_state=0)
            for name, method in (
                ("DEC", "dec"),
                ("IDEC", "idec"),
                ("SCAN + self-labelling", "scan"),
                ("SwAVClustering", "swav"),
                ("P2OT", "p2ot"),
            )
        },
    }
    print(
        f"Clustering {X.shape[0]} digits ({X.shape[1]} pixels, 10 classes), standardised\n",
        file=out,
        flush=True,
    )
    rows = []
    for name, estimator in contenders.items():
        start = time.perf_counter()
        labels = estimator.fit_predict(X_scaled)
        seconds = time.perf_counter() - start
        scores = clustering_scores(y, labels)
        cells = (f"{scores[k]:.3f}" for k in ("ACC", "F1", "NMI", "ARI"))
        rows.append([name, *cells, f"{seconds:.1f}"])
    print(markdown_table(["method", "ACC", "macro-F1", "NMI", "ARI", "fit s"], rows), file=out)
    print(
        "\nEvery estimator at its defaults, random_state=0 (IDEC is "
        "DEC(reconstruction_weight=10)). One table and one seed: the development "
        "suite (python -m benchmarks tables) says which to try first.",
        file=out,
    )
    X = X / 16.0  # discovery below: pixel intensities 0..16 -> [0, 1]
    _discovery_demo(X, y, out)


def _discovery_demo(X, y, out):
    """Digits 5-9 hidden: discover them with NCDKMeans, PBN and GMMGCD."""
    from sklearn.model_selection import train_test_split

    from .datasets import make_ncd_split
    from .discovery import GMMGCD, PBN, NCDKMeans
    from .metrics import cluster_accuracy, gcd_accuracy

    novel = [5, 6, 7, 8, 9]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    print(
        "\nNovel class discovery: digits 0-4 labelled, 5-9 never labelled "
        f"({len(y_train)} training, {len(y_test)} test rows)\n",
        file=out,
        flush=True,
    )
    # NCD: every training row of 0-4 labelled, the unlabelled rows are 5-9.
    y_ncd, _ = make_ncd_split(y_train, novel)
    rows = []
    contenders = {
        "KMeans (K=10, no labels)": KMeans(10, n_init=20, random_state=0),
        "NCDKMeans": NCDKMeans(random_state=0),
        "PBN": PBN(random_state=0),
    }
    for name, estimator in contenders.items():
        start = time.perf_counter()
        estimator.fit(X_train, None if isinstance(estimator, KMeans) else y_ncd)
        seconds = time.perf_counter() - start
        is_novel = np.isin(y_test, novel)
        # NCD's protocol: the novel test rows, among the discovered classes.
        assign = getattr(estimator, "predict_novel", estimator.predict)
        accuracy = cluster_accuracy(y_test[is_novel], assign(X_test[is_novel]))
        found = getattr(estimator, "n_novel_clusters_", "(given 10 in all)")
        rows.append([name, f"{accuracy:.3f}", str(found), f"{seconds:.1f}"])
    print(
        markdown_table(["NCD method", "novel ACC (test)", "novel classes found", "fit s"], rows),
        file=out,
    )
    # GCD: half of each known class labelled; the unlabelled rows mix all ten.
    y_gcd, _ = make_ncd_split(y_train, novel, labelled_fraction=0.5, random_state=0)
    unlabelled = y_gcd < 0
    rows = []
    for name, estimator in {
        "KMeans (K=10, no labels)": KMeans(10, n_init=20, random_state=0),
        "GMMGCD (K estimated)": GMMGCD(random_state=0),
    }.items():
        start = time.perf_counter()
        estimator.fit(X_train, None if isinstance(estimator, KMeans) else y_gcd)
        seconds = time.perf_counter() - start
        scores = gcd_accuracy(y_train[unlabelled], estimator.labels_[unlabelled], range(5))
        found = str(getattr(estimator, "n_clusters_", "(given)"))
        cells = [f"{scores[k]:.3f}" for k in ("all", "old", "new")]
        rows.append([name, *cells, found, f"{seconds:.1f}"])
    print(
        "\n" + markdown_table(["GCD method", "all", "old", "new", "classes found", "fit s"], rows),
        file=out,
    )
    print(
        "\nNCD: accuracy (Hungarian map) on the test rows of 5-9, each assigned to "
        "a discovered class (predict_novel; KMeans: any of its 10 clusters). GCD: "
        "accuracy on the unlabelled training rows, all / known (old) / novel (new) "
        "classes. Estimators at their defaults, random_state=0.",
        file=out,
    )
