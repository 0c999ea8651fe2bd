"""Command line: ``python -m sklearn_deepclust`` (or ``sklearn-deepclust``).

``demo`` runs every method on scikit-learn's bundled digits
(:mod:`sklearn_deepclust._demo`). ``fit`` clusters the rows of a CSV or
Parquet file with any method of the package and writes one label per row,
optionally the learned embedding and the fitted model::

    sklearn-deepclust fit data.csv --method scan --n-clusters 10 -o labels.csv
    sklearn-deepclust fit data.csv --method pbn --label-column species \\
        -o labels.csv --embedding embedding.csv --model pbn.pkl

For the discovery methods (``ncdkmeans``, ``pbn``, ``gmmgcd``) the label
column holds the known classes' labels and an empty cell (or ``-1``) for
every unlabelled row; the written labels are the known labels and ``novel_<j>``
for the discovered classes. A problem with the input is reported as one
line on standard error with exit status 2.
"""

import argparse
import csv
import os
import pickle
import sys
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from .cluster import DEC, P2OT, SCAN, SwAVClustering
from .discovery import GMMGCD, PBN, NCDKMeans

__all__ = ["encode_partial_labels", "main", "make_estimator", "read_table"]

CLUSTERING_METHODS = ("dec", "idec", "kmeans", "p2ot", "scan", "swav")
DISCOVERY_METHODS = ("gmmgcd", "ncdkmeans", "pbn")
METHODS = CLUSTERING_METHODS + DISCOVERY_METHODS
_PRETEXT_METHODS = {"p2ot": P2OT, "scan": SCAN, "swav": SwAVClustering}
_NOVEL_PREFIX = "novel_"


class CommandLineError(Exception):
    """A problem with the user's input, reported as one line and exit status 2."""


def make_estimator(
    method, n_clusters=None, *, n_known=0, random_state=None, device="cpu", verbose=0, **training
):
    """The estimator behind a ``--method`` name of the command line.

    Parameters
    ----------
    method : {"dec", "idec", "kmeans", "p2ot", "scan", "swav", \
"gmmgcd", "ncdkmeans", "pbn"}
        ``"idec"`` is :class:`~sklearn_deepclust.DEC` with
        ``reconstruction_weight=10``; ``"scan"`` is
        :class:`~sklearn_deepclust.SCAN` with self-labelling; ``"swav"`` is
        :class:`~sklearn_deepclust.SwAVClustering` and ``"p2ot"``
        :class:`~sklearn_deepclust.P2OT` (for imbalanced clusters). The
        discovery methods are :class:`~sklearn_deepclust.GMMGCD`,
        :class:`~sklearn_deepclust.NCDKMeans` and
        :class:`~sklearn_deepclust.PBN`.
    n_clusters : int or None
        Total number of clusters, known classes included. Required by the
        clustering methods; None lets a discovery method estimate it.
    n_known : int, default=0
        Number of known classes (discovery methods): ``NCDKMeans`` and
        ``PBN`` are given ``n_clusters - n_known`` novel clusters.
    random_state, device, verbose
        Passed on to the estimator (``device`` and ``verbose`` where it has
        them).
    **training
        Training overrides for deep estimators (``pretrain_epochs``,
        ``max_epochs``, ...); for the estimators that start from a pretext
        task (SCAN, SwAV, P2OT, PBN), ``pretrain_epochs`` sets their
        ``pretext_epochs``.

    Returns
    -------
    estimator : scikit-learn estimator
    """
    if method == "kmeans":
        return KMeans(n_clusters, n_init=20, random_state=random_state)
    if method == "ncdkmeans":
        return NCDKMeans(
            _novel_count(n_clusters, n_known), random_state=random_state, device=device
        )
    common = dict(random_state=random_state, device=device, verbose=verbose)
    if method in _PRETEXT_METHODS or method == "pbn":
        if "pretrain_epochs" in training:
            training["pretext_epochs"] = training.pop("pretrain_epochs")
    if method in _PRETEXT_METHODS:
        return _PRETEXT_METHODS[method](n_clusters, **common, **training)
    if method == "pbn":
        return PBN(_novel_count(n_clusters, n_known), **common, **training)
    if method == "gmmgcd":
        return GMMGCD(n_clusters, **common, **training)
    weight = {"dec": 0.0, "idec": 10.0}[method]
    return DEC(n_clusters, reconstruction_weight=weight, **common, **training)


def _novel_count(n_clusters, n_known):
    return None if n_clusters is None else n_clusters - n_known


def read_table(path, columns=None, label_column=None):
    """Read the feature columns (and a label column) of a CSV or Parquet file.

    A CSV file has a header row; ``.parquet`` / ``.pq`` files are read with
    pyarrow (``pip install pyarrow``).

    Parameters
    ----------
    path : str or Path
    columns : sequence of str or None, default=None
        Feature columns by name; None takes every column but the label
        column. Each must hold numbers only.
    label_column : str or None, default=None
        A column returned as strings, with ``""`` for an empty cell.

    Returns
    -------
    X : ndarray of shape (n_rows, n_features)
    feature_names : list of str
    labels : ndarray of str, or None
        The label column, when one was asked for.

    Raises
    ------
    CommandLineError
        For a missing or unreadable file, an unknown column, or a feature
        cell that is not a number.
    """
    path = Path(path)
    if not path.is_file():
        raise CommandLineError(f"{path}: no such file")
    parquet = path.suffix.lower() in (".parquet", ".pq")
    names, chunks = _parquet_chunks(path) if parquet else _csv_chunks(path)
    wanted = _chosen_columns(path, names, columns, label_column)
    kept = [*wanted, *([label_column] if label_column is not None else [])]
    feature_chunks, label_chunks, first_row = [], [], 1
    for chunk in chunks(kept):
        n_rows = len(chunk[wanted[0]])
        feature_chunks.append(
            np.column_stack([_numeric(path, name, chunk[name], first_row) for name in wanted])
        )
        if label_column is not None:
            cells = chunk[label_column]
            label_chunks.append(
                np.array(["" if cell is None else str(cell).strip() for cell in cells])
            )
        first_row += n_rows
    if first_row == 1:
        raise CommandLineError(f"{path}: expected a header row and at least one data row")
    labels = np.concatenate(label_chunks) if label_column is not None else None
    return np.concatenate(feature_chunks), wanted, labels


def _chosen_columns(path, names, columns, label_column):
    """The feature columns: ``columns``, or every column but the label column."""
    wanted = list(columns) if columns else [n for n in names if n != label_column]
    if label_column is not None and label_column in wanted:
        raise CommandLineError(
            f"column {label_column!r} is the label column; leave it out of --columns"
        )
    unnamed = [j for j, name in enumerate(names) if not str(name).strip() and name in wanted]
    if unnamed:
        raise CommandLineError(
            f"{path}: column {unnamed[0] + 1} has no name in the header (a row index "
            "written by pandas?); name it, drop it, or choose the features with --columns"
        )
    missing = [n for n in [*wanted, *([label_column] if label_column else [])] if n not in names]
    if missing:
        raise CommandLineError(
            f"{path}: no column {missing[0]!r}; its columns are {', '.join(map(repr, names))}"
        )
    if not wanted:
        raise CommandLineError(f"{path}: no feature column left besides the label column")
    return wanted


# Rows converted to numbers at a time: the text of a chunk is all that is
# held besides the numbers, whatever the size of the file.
_CHUNK_ROWS = 4096


def _csv_chunks(path):
    """The header's names, and ``chunks(kept)``: an iterator of
    ``{name: cells}`` for the ``kept`` columns over successive blocks of rows."""
    header = next(_csv_rows(path), (None, None))[1]
    if header is None:
        raise CommandLineError(f"{path}: expected a header row and at least one data row")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise CommandLineError(f"{path}: the header names column {repeated[0]!r} more than once")

    def chunks(kept):
        positions = [header.index(name) for name in kept]
        rows = _csv_rows(path)
        next(rows)  # the header
        block = []
        for line, row in rows:
            if len(row) != len(header):
                raise CommandLineError(
                    f"{path}, line {line}: {len(row)} cells, but the header has {len(header)}"
                )
            block.append([row[j] for j in positions])
            if len(block) == _CHUNK_ROWS:
                yield dict(zip(kept, zip(*block)))
                block = []
        if block:
            yield dict(zip(kept, zip(*block)))

    return header, chunks


def _csv_rows(path):
    """``(line number, cells)`` of each row that is not blank.

    utf-8-sig: the byte-order mark of Excel's "CSV UTF-8" is not part of the
    first column's name. Only blank lines are skipped: a row of empty cells
    is a row, and its cells are reported if they are features.
    """
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            for row in reader:
                if row:
                    yield reader.line_num, row
        except UnicodeDecodeError as exc:
            reason = f"{exc.reason} at byte {exc.start}"
            raise CommandLineError(f"{path}: not UTF-8 text ({reason})") from None


def _parquet_chunks(path):
    """As :func:`_csv_chunks`, for a Parquet file: its columns, read whole."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise CommandLineError(
            f"{path}: reading Parquet needs pyarrow (pip install pyarrow), or give a CSV file"
        ) from None
    try:
        names = pq.read_schema(path).names
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise CommandLineError(f"{path}: not a readable Parquet file ({exc})") from None

    def chunks(kept):
        try:
            table = pq.read_table(path, columns=kept)
        except Exception as exc:
            raise CommandLineError(f"{path}: not a readable Parquet file ({exc})") from None
        if table.num_rows:
            yield {name: table.column(name).to_pylist() for name in kept}

    return names, chunks


def _numeric(path, name, cells, first_row=1):
    """``cells`` as float64; the first cell that is not a finite number is
    reported by its row (counted from ``first_row``)."""
    try:
        values = np.array(cells, dtype=float)
    except (TypeError, ValueError):
        values = None
    if values is not None and values.ndim == 1 and np.isfinite(values).all():
        return values
    values = np.empty(len(cells))
    for i, cell in enumerate(cells):
        row = first_row + i
        try:
            values[i] = float(cell)
        except (TypeError, ValueError):
            if cell is None or not str(cell).strip():
                problem = f"has an empty cell (row {row}); fill it in or leave the column out"
            else:
                problem = f"holds {cell!r} (row {row}), which is not a number; leave it out"
            raise CommandLineError(
                f"{path}: column {name!r} {problem} (choose the feature columns with --columns)"
            ) from None
        if not np.isfinite(values[i]):
            raise CommandLineError(
                f"{path}: column {name!r} holds {cell!r} (row {row}), which is not a finite "
                "number; fill it in or leave the column out (choose the feature columns "
                "with --columns)"
            )
    return values


def encode_partial_labels(labels):
    """Known-class labels as integers, ``-1`` for empty (or ``-1``) cells.

    Integer labels keep their values; other labels are numbered in sorted
    order. Returns the integer labels and a function
    ``decode(predicted, classes)`` that turns predicted integers back into the
    file's labels: ``classes`` are the fitted model's labels in order
    (``classes_``), and its new classes are named ``novel_0``, ``novel_1``,
    ... in that order, whether or not a row is predicted in them.
    """
    labelled = (labels != "") & (labels != "-1")
    if not labelled.any():
        raise CommandLineError(
            "the label column is empty on every row: a discovery method needs the "
            "labels of the known classes"
        )
    names = np.unique(labels[labelled])
    try:
        as_int = names.astype(np.int64)
    except (ValueError, OverflowError):  # not integers, or beyond int64: names
        as_int = None
    if as_int is not None and (as_int >= 0).all():
        known_codes, known_names = as_int, as_int
    else:
        known_codes, known_names = np.arange(len(names)), names
    y = np.full(len(labels), -1, dtype=np.int64)
    y[labelled] = known_codes[np.searchsorted(names, labels[labelled])]

    def decode(predicted, classes):
        lookup = dict(zip(known_codes.tolist(), map(str, known_names)))
        novel = [code for code in np.asarray(classes).tolist() if code not in lookup]
        lookup.update({code: f"{_NOVEL_PREFIX}{j}" for j, code in enumerate(novel)})
        return np.array([lookup[code] for code in predicted.tolist()])

    return y, decode


def _fit_command(args):
    discovery = args.method in DISCOVERY_METHODS
    if discovery and args.label_column is None:
        raise CommandLineError(
            f"--method {args.method} discovers new classes from known ones: give "
            "--label-column (empty cells for unlabelled rows)"
        )
    if not discovery and args.label_column is not None:
        raise CommandLineError(
            f"--label-column applies to the discovery methods ({', '.join(DISCOVERY_METHODS)})"
        )
    if not discovery and args.n_clusters is None:
        raise CommandLineError(f"--method {args.method} needs --n-clusters")
    columns = args.columns.split(",") if args.columns else None
    X, _, labels = read_table(args.data, columns, args.label_column)
    if args.n_clusters is not None and not 1 <= args.n_clusters <= X.shape[0]:
        raise CommandLineError(
            f"--n-clusters {args.n_clusters} must be between 1 and the {X.shape[0]} rows "
            f"of {args.data}"
        )
    epochs = {
        k: v
        for k, v in (("pretrain_epochs", args.pretrain_epochs), ("max_epochs", args.max_epochs))
        if v is not None
    }
    if epochs and args.method in ("kmeans", "ncdkmeans"):
        raise CommandLineError("--pretrain-epochs/--max-epochs apply to deep methods only")
    if args.pretrain_epochs is not None and args.method == "gmmgcd":
        raise CommandLineError("--pretrain-epochs: gmmgcd trains in one phase (--max-epochs)")
    if args.embedding and args.method == "kmeans":
        raise CommandLineError("--embedding: k-means learns no embedding")
    if args.method == "kmeans" and args.device.split(":")[0] != "cpu":
        raise CommandLineError("--device: kmeans is scikit-learn's KMeans, which runs on the CPU")
    y, decode = None, None
    n_known = 0
    if discovery:
        y, decode = encode_partial_labels(labels)
        n_known = len(np.unique(y[y >= 0]))
        if args.n_clusters is not None and args.n_clusters < n_known:
            raise CommandLineError(
                f"--n-clusters {args.n_clusters} is smaller than the {n_known} known "
                f"classes of column {args.label_column!r}"
            )
        n_unlabelled = int((y < 0).sum())
        if args.n_clusters is not None and args.n_clusters - n_known > n_unlabelled:
            raise CommandLineError(
                f"--n-clusters {args.n_clusters} leaves {args.n_clusters - n_known} novel "
                f"classes for the {n_unlabelled} unlabelled rows; use --n-clusters <= "
                f"{n_known + n_unlabelled}"
            )
    if args.method == "scan" and X.shape[0] <= SCAN().n_neighbors:
        raise CommandLineError(
            f"--method scan mines {SCAN().n_neighbors} neighbours per row and needs more "
            f"rows than that; {args.data} has {X.shape[0]}"
        )
    for path in (args.output, args.embedding, args.model):
        if path is not None:
            _check_writable(path)
    estimator = make_estimator(
        args.method,
        args.n_clusters,
        n_known=n_known,
        random_state=args.random_state,
        device=args.device,
        verbose=args.verbose,
        **epochs,
    )
    if not args.no_scale:
        estimator = make_pipeline(StandardScaler(), estimator)
    estimator.fit(X, y)
    predicted = estimator.predict(X)
    if decode is None:
        written = predicted
    else:
        model = estimator[-1] if isinstance(estimator, Pipeline) else estimator
        written = decode(predicted, model.classes_)
    _write_column(args.output, "label", written)
    if args.embedding:
        embedding = estimator.transform(X)
        _write_rows(
            args.embedding, [f"z{j}" for j in range(embedding.shape[1])], embedding.tolist()
        )
    if args.model:
        try:
            with open(args.model, "wb") as handle:
                pickle.dump(estimator, handle)
        except OSError as exc:
            raise CommandLineError(f"{args.model}: cannot write ({exc.strerror})") from None
    clusters, sizes = np.unique(written, return_counts=True)
    print(
        f"wrote {len(written)} labels in {len(clusters)} clusters to {args.output} "
        f"(sizes {dict(zip(clusters.tolist(), sizes.tolist()))})"
    )


def _check_writable(path):
    """Fail before a long fit, not after it, when an output file cannot be written."""
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise CommandLineError(f"{path}: cannot write (no folder {folder})")
    if Path(path).is_dir():
        raise CommandLineError(f"{path}: cannot write (it is a folder)")
    if not os.access(folder, os.W_OK):
        raise CommandLineError(f"{path}: cannot write (folder {folder} is read-only)")


def _write_column(path, name, values):
    _write_rows(path, [name], ([value] for value in values))


def _write_rows(path, header, rows):
    try:
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
    except OSError as exc:
        raise CommandLineError(f"{path}: cannot write ({exc.strerror})") from None


class _Parser(argparse.ArgumentParser):
    """Bad options: one line on standard error and exit status 2."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = _Parser(
        prog="sklearn-deepclust",
        description="Deep clustering and novel class discovery with scikit-learn estimators.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("demo", help="every method on scikit-learn's digits table")
    fit = commands.add_parser("fit", help="cluster the rows of a CSV or Parquet file")
    fit.add_argument("data", help="CSV file with a header row, or a .parquet file")
    fit.add_argument("-o", "--output", required=True, help="CSV file to write the labels to")
    fit.add_argument("--method", choices=METHODS, default="dec")
    fit.add_argument(
        "--n-clusters",
        type=int,
        help="number of clusters; for discovery methods the total with the known "
        "classes, estimated when left out",
    )
    fit.add_argument(
        "--columns", help="comma-separated feature columns (default: all but the label column)"
    )
    fit.add_argument(
        "--label-column",
        help="discovery methods: the known classes' labels, empty for unlabelled rows",
    )
    fit.add_argument(
        "--embedding",
        help="CSV file to write the learned embedding to (ncdkmeans: the distances to its "
        "centroids)",
    )
    fit.add_argument(
        "--model",
        help="file to pickle the fitted model (with its scaler) to; a discovery model "
        "predicts integer codes: integer labels as they are, text labels by their sorted "
        "position, new classes after them",
    )
    fit.add_argument(
        "--pretrain-epochs",
        type=int,
        help="autoencoder (DEC, IDEC) or pretext (SCAN, SwAV, P2OT, PBN) epochs",
    )
    fit.add_argument("--max-epochs", type=int)
    fit.add_argument(
        "--no-scale", action="store_true", help="do not standardise the columns before clustering"
    )
    fit.add_argument("--device", default="cpu", help='torch device, e.g. "cuda" (default cpu)')
    fit.add_argument("--random-state", type=int)
    fit.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v: a line per epoch, -vv: progress (methods that train a network)",
    )
    return parser


def main(argv=None):
    """Entry point of ``python -m sklearn_deepclust`` and ``sklearn-deepclust``."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from ._demo import run_demo

            run_demo()
        else:
            _fit_command(args)
    except (CommandLineError, ValueError) as exc:
        message = " ".join(str(exc).split())
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0
