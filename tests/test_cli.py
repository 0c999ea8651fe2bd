"""Command line: clusters a CSV, and fails with one clear line on bad input."""

import csv
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from sklearn_deepclust.cli import main
from sklearn_deepclust.metrics import cluster_accuracy


@pytest.fixture
def blob_csv(tmp_path):
    X, y = make_blobs(n_samples=120, centers=3, n_features=4, cluster_std=0.5, random_state=0)
    path = tmp_path / "data.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"x{i}" for i in range(4)])
        writer.writerows(X.tolist())
    return path, y


def read_labels(path):
    with open(path) as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["label"]
    return np.array([int(r[0]) for r in rows[1:]])


@pytest.mark.parametrize("method", ["dec", "idec", "kmeans", "scan", "swav", "p2ot"])
def test_fit_writes_one_label_per_row(blob_csv, tmp_path, method, capsys):
    data, y = blob_csv
    out = tmp_path / "labels.csv"
    epochs = {
        "kmeans": [],
        "dec": ["--pretrain-epochs", "150", "--max-epochs", "20"],
        "idec": ["--pretrain-epochs", "150", "--max-epochs", "20"],
        # One batch per epoch on 120 rows: SCAN's heads need more steps.
        "scan": ["--pretrain-epochs", "50", "--max-epochs", "200"],
        "swav": ["--max-epochs", "200"],
        "p2ot": ["--pretrain-epochs", "50", "--max-epochs", "200"],
    }[method]
    status = main(
        [
            "fit",
            "--method",
            method,
            "--n-clusters",
            "3",
            str(data),
            "-o",
            str(out),
            "--random-state",
            "0",
            *epochs,
        ]
    )
    assert status == 0
    labels = read_labels(out)
    assert len(labels) == 120
    assert cluster_accuracy(y, labels) >= 0.95
    assert "wrote 120 labels in 3 clusters" in capsys.readouterr().out


def test_non_numeric_column_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("a,colour\n1.0,red\n2.0,blue\n")
    status = main(["fit", "--n-clusters", "2", str(path), "-o", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.strip().count("\n") == 0
    assert "column 'colour' holds 'red', which is not a number" in err


def test_missing_file_is_a_one_line_error(tmp_path, capsys):
    status = main(["fit", "--n-clusters", "2", str(tmp_path / "nope.csv"), "-o", "x.csv"])
    assert status == 2
    assert "nope.csv: no such file" in capsys.readouterr().err


def test_too_many_clusters_is_a_one_line_error(blob_csv, tmp_path, capsys):
    data, _ = blob_csv
    status = main(["fit", "--n-clusters", "500", str(data), "-o", str(tmp_path / "o.csv")])
    assert status == 2
    assert "--n-clusters 500 is larger than the 120 rows" in capsys.readouterr().err


def test_module_entry_point_exits_non_zero_on_error(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sklearn_deepclust",
            "fit",
            "--n-clusters",
            "2",
            str(tmp_path / "missing.csv"),
            "-o",
            str(tmp_path / "o.csv"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")


def _markdown_tables(text):
    """The body rows of each markdown table in ``text``, as lists of cells."""
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            if current is None:
                current = []
                tables.append(current)
            current.append([cell.strip() for cell in line.strip("|").split("|")])
        else:
            current = None
    return [table[2:] for table in tables]  # drop header and separator


@pytest.mark.slow
def test_demo_prints_a_table_of_real_scores(capsys):
    assert main(["demo"]) == 0
    clustering, ncd, gcd = _markdown_tables(capsys.readouterr().out)
    assert [row[0] for row in clustering] == [
        "KMeans (n_init=20)",
        "DEC",
        "IDEC",
        "SCAN + self-labelling",
        "SwAVClustering",
        "P2OT",
    ]
    for row in clustering:
        assert 0.6 < float(row[1]) <= 1.0
    # The discovery section: novel-class accuracy of digits 5-9 and the
    # number of novel classes found, then GCD all/old/new.
    assert [row[0] for row in ncd] == ["KMeans (K=10, no labels)", "NCDKMeans", "PBN"]
    for row in ncd:
        assert 0.4 < float(row[1]) <= 1.0
    assert all(1 <= int(row[2]) <= 30 for row in ncd[1:])
    assert [row[0] for row in gcd] == ["KMeans (K=10, no labels)", "GMMGCD (K estimated)"]
    for row in gcd:
        assert all(0.5 < float(cell) <= 1.0 for cell in row[1:4])


def test_blank_lines_in_the_csv_are_ignored(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("a,b\n0,0\n0,1\n\n10,10\n10,11\n\n")
    out = tmp_path / "o.csv"
    assert main(["fit", "--method", "kmeans", "--n-clusters", "2", str(path), "-o", str(out)]) == 0
    assert len(read_labels(out)) == 4
