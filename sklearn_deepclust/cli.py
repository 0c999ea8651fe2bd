"""Command line: ``python -m sklearn_deepclust demo`` and ``... fit``.

``demo`` fits k-means, DEC, IDEC, SCAN, SwAV-style clustering and P²OT on
scikit-learn's bundled digits and prints a table, then hides digits 5-9 and
discovers them with NCDKMeans, PBN and GMMGCD. ``fit`` clusters the numeric
columns of a CSV file and writes one label per row.
"""

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._report import markdown_table
from .cluster import DEC, P2OT, SCAN, SwAVClustering
from .metrics import clustering_scores

__all__ = ["main", "make_estimator", "read_numeric_csv", "run_demo"]

METHODS = ("dec", "idec", "kmeans", "p2ot", "scan", "swav")
_PRETEXT_METHODS = {"p2ot": P2OT, "scan": SCAN, "swav": SwAVClustering}


class CommandLineError(Exception):
    """A problem with the user's input, reported as one line and exit status 2."""


def make_estimator(method, n_clusters, *, random_state=None, device="cpu", verbose=0, **training):
    """The estimator behind a ``--method`` name of the command line.

    Parameters
    ----------
    method : {"dec", "idec", "kmeans", "p2ot", "scan", "swav"}
        ``"idec"`` is :class:`~sklearn_deepclust.DEC` with
        ``reconstruction_weight=10``; ``"scan"`` is
        :class:`~sklearn_deepclust.SCAN` with self-labelling; ``"swav"`` is
        :class:`~sklearn_deepclust.SwAVClustering` and ``"p2ot"``
        :class:`~sklearn_deepclust.P2OT` (for imbalanced clusters).
    n_clusters : int
    random_state, device, verbose
        Passed on to the estimator (``device`` and ``verbose`` to deep ones).
    **training
        Training overrides for deep estimators (``pretrain_epochs``,
        ``max_epochs``, ``update_interval``, ...); for SCAN, SwAV and
        P2OT, ``pretrain_epochs`` sets their ``pretext_epochs``.

    Returns
    -------
    estimator : scikit-learn estimator
    """
    if method == "kmeans":
        return KMeans(n_clusters, n_init=20, random_state=random_state)
    common = dict(random_state=random_state, device=device, verbose=verbose)
    if method in _PRETEXT_METHODS:
        if "pretrain_epochs" in training:
            training["pretext_epochs"] = training.pop("pretrain_epochs")
        return _PRETEXT_METHODS[method](n_clusters, **common, **training)
    weight = {"dec": 0.0, "idec": 10.0}[method]
    return DEC(n_clusters, reconstruction_weight=weight, **common, **training)


def read_numeric_csv(path):
    """Read a CSV file with a header row into a float array.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    X : ndarray of shape (n_rows, n_columns)
    columns : list of str

    Raises
    ------
    CommandLineError
        If the file is missing, empty or has a non-numeric cell.
    """
    path = Path(path)
    if not path.is_file():
        raise CommandLineError(f"{path}: no such file")
    with path.open(newline="") as handle:
        rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise CommandLineError(f"{path}: expected a header row and at least one data row")
    columns, body = rows[0], rows[1:]
    values = np.empty((len(body), len(columns)))
    for i, row in enumerate(body, start=2):
        if len(row) != len(columns):
            raise CommandLineError(
                f"{path}, line {i}: {len(row)} cells, but the header has {len(columns)}"
            )
        for j, cell in enumerate(row):
            try:
                values[i - 2, j] = float(cell)
            except ValueError:
                raise CommandLineError(
                    f"{path}, line {i}: column {columns[j]!r} holds {cell!r}, which "
                    "is not a number; remove non-numeric columns first"
                ) from None
    return values, columns


def run_demo(out=None):
    """Fit k-means and the deep clusterers on the digits table and print their scores."""
    out = sys.stdout if out is None else out
    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixel intensities 0..16 -> [0, 1]
    deep = dict(pretrain_epochs=100, max_epochs=50, update_interval=20)
    scan = dict(pretrain_epochs=100, max_epochs=200, self_label_epochs=50)
    contenders = {
        "KMeans (n_init=20)": make_estimator("kmeans", 10, random_state=0),
        "DEC": make_estimator("dec", 10, random_state=0, **deep),
        "IDEC": make_estimator("idec", 10, random_state=0, **deep),
        "SCAN + self-labelling": make_estimator("scan", 10, random_state=0, **scan),
        "SwAVClustering": make_estimator("swav", 10, random_state=0),
        "P2OT": make_estimator("p2ot", 10, random_state=0),
    }
    print(
        f"Clustering {X.shape[0]} digits ({X.shape[1]} pixels, 10 classes)\n", file=out, flush=True
    )
    rows = []
    for name, estimator in contenders.items():
        start = time.perf_counter()
        labels = estimator.fit_predict(X)
        seconds = time.perf_counter() - start
        scores = clustering_scores(y, labels)
        cells = (f"{scores[k]:.3f}" for k in ("ACC", "F1", "NMI", "ARI"))
        rows.append([name, *cells, f"{seconds:.1f}"])
    print(markdown_table(["method", "ACC", "macro-F1", "NMI", "ARI", "fit s"], rows), file=out)
    print(
        "\nDEC/IDEC: network 64-500-500-2000-10, "
        f"{deep['pretrain_epochs']} pretraining epochs, at most "
        f"{deep['max_epochs']} clustering epochs. SCAN: network 64-512-512-128, "
        f"{scan['pretrain_epochs']} contrastive pretext epochs, "
        f"{scan['max_epochs']} clustering and {scan['self_label_epochs']} "
        "self-labelling epochs. SwAVClustering and P2OT: their defaults (100 "
        "contrastive pretext epochs, then 200 and 100 clustering epochs). "
        "random_state=0.",
        file=out,
    )
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


def _fit_command(args):
    X, _ = read_numeric_csv(args.data)
    if args.n_clusters > X.shape[0]:
        raise CommandLineError(
            f"--n-clusters {args.n_clusters} is larger than the {X.shape[0]} rows of {args.data}"
        )
    epochs = {
        k: v
        for k, v in (("pretrain_epochs", args.pretrain_epochs), ("max_epochs", args.max_epochs))
        if v is not None
    }
    if epochs and args.method == "kmeans":
        raise CommandLineError("--pretrain-epochs/--max-epochs apply to deep methods only")
    estimator = make_estimator(
        args.method,
        args.n_clusters,
        random_state=args.random_state,
        device=args.device,
        verbose=args.verbose,
        **epochs,
    )
    if not args.no_scale:
        estimator = make_pipeline(StandardScaler(), estimator)
    labels = estimator.fit_predict(X)
    with open(args.output, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label"])
        writer.writerows([label] for label in labels)
    clusters, sizes = np.unique(labels, return_counts=True)
    print(
        f"wrote {len(labels)} labels in {len(clusters)} clusters to {args.output} "
        f"(sizes {sizes.tolist()})"
    )


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_deepclust",
        description="Deep clustering with scikit-learn estimators.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="k-means and the deep clusterers on the digits table")
    fit = commands.add_parser("fit", help="cluster the rows of a numeric CSV file")
    fit.add_argument("data", help="CSV file with a header row and numeric columns")
    fit.add_argument("-o", "--output", required=True, help="CSV file to write labels to")
    fit.add_argument("--method", choices=METHODS, default="dec")
    fit.add_argument("--n-clusters", type=int, required=True)
    fit.add_argument(
        "--pretrain-epochs",
        type=int,
        help="autoencoder (DEC, IDEC) or pretext (SCAN, SwAV, P2OT) epochs",
    )
    fit.add_argument("--max-epochs", type=int)
    fit.add_argument(
        "--no-scale", action="store_true", help="do not standardise the columns before clustering"
    )
    fit.add_argument("--device", default="cpu")
    fit.add_argument("--random-state", type=int)
    fit.add_argument("-v", "--verbose", action="count", default=0)
    return parser


def main(argv=None):
    """Entry point of ``python -m sklearn_deepclust`` and ``sklearn-deepclust``."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            run_demo()
        else:
            _fit_command(args)
    except (CommandLineError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
